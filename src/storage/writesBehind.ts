/**
 * Writes that follow a step instead of holding it up (audit anchors, dashboard index rows): one key's writes run one
 * after another, in the order they were asked for, whether the one before succeeded or not; different keys' run side
 * by side. Whoever composes the store awaits `settled()` before the process may be frozen.
 */
export class WritesBehind {
    /** The last write of each key still under way: it resolves after every earlier write of that key. */
    private readonly last = new Map<string, Promise<void>>();

    /** Runs `write` after the key's earlier writes; the returned promise is the write's own outcome. */
    run(key: string, write: () => Promise<void>): Promise<void> {
        const before = this.last.get(key);
        const done = before ? before.then(write, write) : write();
        this.last.set(key, done);
        const forget = () => {
            if (this.last.get(key) === done) {
                this.last.delete(key);
            }
        };
        done.then(forget, forget);
        return done;
    }

    /**
     * Resolves once every write begun before the call has ended. Not the ones begun later: under a steady stream of
     * concurrent invocations, waiting for an empty set would hold an invocation for the others' work.
     */
    async settled(): Promise<void> {
        await Promise.allSettled([...this.last.values()]);
    }
}

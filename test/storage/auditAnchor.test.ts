import {
    AnchoredAuditLog,
    digestOf,
    InMemoryAuditAnchors,
    type AnchorFailureSink,
    type AnchorHead,
} from '../../src/storage/auditAnchor';
import { TableAuditLog } from '../../src/storage/auditLog';
import { azuriteTable } from './azuriteTable';

/**
 * The anchoring decorator over the real audit table (Azurite) and the anchor store's in-memory double; the blob
 * adapter itself is driven by test/ops/auditAnchors.test.ts.
 */
describe('AnchoredAuditLog', () => {
    const input = (requestId: string) => ({
        requestId,
        action: 'requested' as const,
        actor: { kind: 'system' as const },
        correlationId: 'c1',
    });

    it('anchors each appended entry’s head, in order', async () => {
        const anchors = new InMemoryAuditAnchors();
        const log = new AnchoredAuditLog(new TableAuditLog(azuriteTable('anc').table), anchors, () => {
            throw new Error('no anchor may fail here');
        });
        const first = await log.append(input('r1'), { first: true });
        const second = await log.append({ ...input('r1'), action: 'card-posted' });
        expect(await anchors.heads('r1')).toEqual([
            { requestId: 'r1', seq: 1, hash: first.hash, at: first.at },
            { requestId: 'r1', seq: 2, hash: second.hash, at: second.at },
        ]);
        expect(await anchors.listRequestIds()).toEqual(['r1']);
    });

    it('keeps the entry when the anchor write fails, and hands the failure on instead of swallowing it', async () => {
        const anchors = new InMemoryAuditAnchors();
        anchors.failWrites = new Error('blob service down');
        const failures: [AnchorHead, string][] = [];
        const trail = new TableAuditLog(azuriteTable('anc').table);
        const log = new AnchoredAuditLog(trail, anchors, (head, error) => failures.push([head, error.message]));
        const entry = await log.append(input('r2'), { first: true });
        expect(await trail.list('r2')).toEqual([entry]);
        expect(failures).toEqual([[{ requestId: 'r2', seq: 1, hash: entry.hash, at: entry.at }, 'blob service down']]);
        expect(await anchors.heads('r2')).toEqual([]);
    });

    it('prepare() has the anchor store load its client ahead, and writes nothing', async () => {
        const anchors = new InMemoryAuditAnchors();
        const log = new AnchoredAuditLog(new TableAuditLog(azuriteTable('anc').table), anchors, () => undefined);
        log.prepare();
        expect(anchors.prepared).toBe(1);
        expect(await anchors.listRequestIds()).toEqual([]);
    });

    it('does not anchor an entry that was never appended', async () => {
        const anchors = new InMemoryAuditAnchors();
        const log = new AnchoredAuditLog(
            { append: () => Promise.reject(new Error('table down')), list: () => Promise.resolve([]) },
            anchors,
            () => undefined,
        );
        await expect(log.append(input('r3'))).rejects.toThrow('table down');
        expect(await anchors.listRequestIds()).toEqual([]);
    });

    describe('in the background', () => {
        /** The decorator in background mode over the real audit table. */
        const backgroundLog = (
            anchors: Pick<InMemoryAuditAnchors, 'anchor'>,
            sink: AnchorFailureSink = () => undefined,
        ) => new AnchoredAuditLog(new TableAuditLog(azuriteTable('anc').table), anchors, sink, { background: true });

        /** An anchor store whose writes wait until the test lets each one through, recording the order they ran in. */
        function gatedAnchors() {
            const started: number[] = [];
            const written: number[] = [];
            const gates: (() => void)[] = [];
            const anchors = {
                anchor: (head: AnchorHead) => {
                    started.push(head.seq);
                    return new Promise<void>((resolve) => {
                        gates.push(() => {
                            written.push(head.seq);
                            resolve();
                        });
                    });
                },
            };
            const release = async () => {
                // Lets every write waiting now through, and the microtasks that start the next one run.
                for (const open of gates.splice(0)) {
                    open();
                }
                await new Promise((r) => setImmediate(r));
            };
            return { anchors, started, written, gates, release };
        }

        it('returns the entry before its anchor is written, anchors a request’s heads in order, and settles after the last', async () => {
            const gated = gatedAnchors();
            const log = backgroundLog(gated.anchors, () => {
                throw new Error('no anchor may fail here');
            });
            await log.append(input('b1'), { first: true });
            await log.append({ ...input('b1'), action: 'card-posted' });
            // Both appends are done; the first head's write is under way and the second waits for it (the first
            // creates the blob the second appends to).
            expect(gated.started).toEqual([1]);
            let settled = false;
            const settling = log.settled().then(() => (settled = true));
            await gated.release();
            expect(gated.started).toEqual([1, 2]);
            expect(settled).toBe(false);
            await gated.release();
            await settling;
            expect(gated.written).toEqual([1, 2]);
        });

        it('settles once the writes begun before it ended, not waiting for those begun after', async () => {
            const gated = gatedAnchors();
            const log = backgroundLog(gated.anchors);
            await log.append(input('b6'), { first: true });
            const settling = log.settled();
            // Another invocation's entry, appended meanwhile: its anchor stays on its way.
            await log.append(input('b7'), { first: true });
            gated.gates.shift()!();
            await settling;
            expect(gated.written).toEqual([1]);
            expect(gated.started).toEqual([1, 1]);
            await gated.release();
            await log.settled();
            expect(gated.written).toEqual([1, 1]);
        });

        it('anchors different requests side by side', async () => {
            const gated = gatedAnchors();
            const log = backgroundLog(gated.anchors);
            await log.append(input('b2'), { first: true });
            await log.append(input('b3'), { first: true });
            expect(gated.started).toEqual([1, 1]);
            await gated.release();
            await log.settled();
        });

        it('hands a failure to the sink, and a sink that throws ends in an ALERT line, not an unhandled rejection', async () => {
            const anchors = new InMemoryAuditAnchors();
            anchors.failWrites = new Error('blob service down');
            const failures: string[] = [];
            const errors = jest.spyOn(console, 'error').mockImplementation(() => undefined);
            const unhandled: unknown[] = [];
            const onUnhandled = (reason: unknown) => unhandled.push(reason);
            process.on('unhandledRejection', onUnhandled);
            try {
                const trail = new TableAuditLog(azuriteTable('anc').table);
                const reporting = new AnchoredAuditLog(trail, anchors, (_, e) => failures.push(e.message), {
                    background: true,
                });
                const entry = await reporting.append(input('b4'), { first: true });
                await reporting.settled();
                expect(failures).toEqual(['blob service down']);
                expect(await trail.list('b4')).toEqual([entry]);

                const throwing = new AnchoredAuditLog(
                    trail,
                    anchors,
                    () => {
                        throw new Error('telemetry down');
                    },
                    { background: true },
                );
                await throwing.append(input('b5'), { first: true });
                await throwing.settled();
                await new Promise((r) => setImmediate(r));
                expect(unhandled).toEqual([]);
                expect(errors).toHaveBeenCalledWith(
                    expect.stringMatching(/^ALERT audit anchor of b5 #1 failed .*telemetry down/),
                );
            } finally {
                process.off('unhandledRejection', onUnhandled);
                errors.mockRestore();
            }
        });
    });
});

describe('digestOf', () => {
    it('is the same for the same heads in any order, and changes with any head', () => {
        const heads: AnchorHead[] = [
            { requestId: 'a', seq: 2, hash: '1'.repeat(64), at: 'x' },
            { requestId: 'b', seq: 5, hash: '2'.repeat(64), at: 'y' },
        ];
        const at = '2026-12-04T00:00:00.000Z';
        expect(digestOf(heads, at)).toEqual(digestOf([...heads].reverse(), at));
        expect(digestOf(heads, at).chains).toBe(2);
        expect(digestOf([heads[0]!, { ...heads[1]!, seq: 4 }], at).digest).not.toBe(digestOf(heads, at).digest);
    });
});

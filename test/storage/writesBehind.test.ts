import { WritesBehind } from '../../src/storage/writesBehind';

describe('WritesBehind', () => {
    it('runs one key’s writes in order, even after one fails, and different keys’ side by side', async () => {
        const writes = new WritesBehind();
        const ran: string[] = [];
        let openFirst!: () => void;
        const first = writes.run('a', async () => {
            await new Promise<void>((resolve) => (openFirst = resolve));
            ran.push('a1');
            throw new Error('a1 failed');
        });
        const second = writes.run('a', async () => {
            ran.push('a2');
        });
        await writes.run('b', async () => {
            ran.push('b1');
        });
        expect(ran).toEqual(['b1']);
        openFirst();
        await expect(first).rejects.toThrow('a1 failed');
        await second;
        expect(ran).toEqual(['b1', 'a1', 'a2']);
    });

    it('settles once the writes begun before it ended, whatever their outcome', async () => {
        const writes = new WritesBehind();
        let openEarly!: () => void;
        void writes.run('a', () => new Promise<void>((resolve) => (openEarly = resolve)));
        const settling = writes.settled();
        // Begun after: never finishes, and the settle does not wait for it.
        void writes.run('b', () => new Promise<void>(() => undefined));
        openEarly();
        await expect(settling).resolves.toBeUndefined();
    });
});

import { AnchoredAuditLog, digestOf, InMemoryAuditAnchors, type AnchorHead } from '../../src/storage/auditAnchor';
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

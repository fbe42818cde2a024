import { TableConnectionMarks } from '../../src/storage/connectionMarks';
import { TableRequestStore } from '../../src/storage/requestStore';
import { azuriteTable } from './azuriteTable';

const { table } = azuriteTable('marks');
const pecId = (n: number) =>
    `/subscriptions/0b1c2d3e-aaaa-4bbb-8ccc-000000000001/resourceGroups/rg/providers/Microsoft.DBforPostgreSQL/flexibleServers/pg/privateEndpointConnections/pe-${n}`;

describe('TableConnectionMarks on Azurite', () => {
    it('lets exactly one of many concurrent inserts win, and tells a retry of the winner it won', async () => {
        const marks = new TableConnectionMarks(table);
        const id = pecId(1);
        const attempts = Array.from({ length: 8 }, (_, i) =>
            marks.insertIfNone({ pecId: id, source: 'bypass', requestId: `req-${i}`, at: new Date().toISOString() }),
        );
        const won = await Promise.all(attempts);
        expect(won.filter(Boolean)).toHaveLength(1);
        const winner = (await marks.get(id))!;
        expect(won[Number(winner.requestId.slice(4))]).toBe(true);
        // The same insert again (a retry whose first answer was lost) is recognised as its own.
        expect(await marks.insertIfNone(winner)).toBe(true);
        expect(await marks.insertIfNone({ ...winner, requestId: 'someone-else' })).toBe(false);
    });

    it('finds a mark case-insensitively, replaces it with put, removes it, and lists every mark in one query', async () => {
        const marks = new TableConnectionMarks(table);
        const at = new Date().toISOString();
        await marks.put({ pecId: pecId(2), source: 'gate', requestId: 'r2', at });
        await marks.put({ pecId: pecId(3), source: 'baseline', requestId: 'r3', at });
        expect(await marks.get(pecId(2).toUpperCase())).toMatchObject({ source: 'gate', requestId: 'r2' });
        await marks.put({ pecId: pecId(2), source: 'gate', requestId: 'r2b', at });
        expect((await marks.get(pecId(2)))?.requestId).toBe('r2b');
        const listed = await marks.listMarked();
        expect(listed.get(pecId(2).toLowerCase())).toMatchObject({ source: 'gate', requestId: 'r2b' });
        expect(listed.get(pecId(3).toLowerCase())).toMatchObject({ source: 'baseline', requestId: 'r3', at });
        await marks.remove(pecId(3));
        await marks.remove(pecId(3));
        expect(await marks.get(pecId(3))).toBeUndefined();
    });

    it('removes a mark only while it names the request asking, never one written since', async () => {
        const marks = new TableConnectionMarks(table);
        const at = new Date().toISOString();
        await marks.put({ pecId: pecId(5), source: 'bypass', requestId: 'alert-1', at });
        expect(await marks.removeIfNamed(pecId(5), { requestId: 'someone-else' })).toBe(false);
        expect((await marks.get(pecId(5)))?.requestId).toBe('alert-1');
        expect(await marks.removeIfNamed(pecId(5).toUpperCase(), { requestId: 'alert-1' })).toBe(true);
        expect(await marks.get(pecId(5))).toBeUndefined();
        expect(await marks.removeIfNamed(pecId(5), { requestId: 'alert-1' })).toBe(false);
        // Two removers that read the same stale mark, with a new report's mark written in between: it stays.
        await marks.put({ pecId: pecId(5), source: 'bypass', requestId: 'alert-1', at });
        expect(await marks.removeIfNamed(pecId(5), { requestId: 'alert-1' })).toBe(true);
        expect(await marks.insertIfNone({ pecId: pecId(5), source: 'bypass', requestId: 'alert-2', at })).toBe(true);
        expect(await marks.removeIfNamed(pecId(5), { requestId: 'alert-1' })).toBe(false);
        expect((await marks.get(pecId(5)))?.requestId).toBe('alert-2');
        // A Keep's gate mark names the alert too: a removal that expects the alert's own bypass mark leaves it.
        await marks.put({ pecId: pecId(5), source: 'gate', requestId: 'alert-2', at });
        expect(await marks.removeIfNamed(pecId(5), { requestId: 'alert-2', sources: ['bypass'] })).toBe(false);
        // And one that expects the mark as a listing saw it leaves a mark rewritten since.
        const later = new Date(Date.parse(at) + 1000).toISOString();
        await marks.put({ pecId: pecId(5), source: 'gate', requestId: 'alert-2', at: later });
        expect(await marks.removeIfNamed(pecId(5), { requestId: 'alert-2', at })).toBe(false);
        expect(await marks.removeIfNamed(pecId(5), { requestId: 'alert-2', at: later })).toBe(true);
    });

    it('records a baseline per subscription and kind, remembered across processes', async () => {
        const marks = new TableConnectionMarks(table);
        const sub = '0B1C2D3E-AAAA-4BBB-8CCC-000000000001';
        expect(await marks.isBaselined(sub, 'postgres-flexible')).toBe(false);
        await marks.markBaselined(sub, 'postgres-flexible', new Date().toISOString());
        expect(await new TableConnectionMarks(table).isBaselined(sub.toLowerCase(), 'postgres-flexible')).toBe(true);
        expect(await marks.isBaselined(sub, 'mysql-single')).toBe(false);
    });

    it('shares the requests table without showing up among the requests', async () => {
        const marks = new TableConnectionMarks(table);
        await marks.put({ pecId: pecId(4), source: 'gate', requestId: 'r4', at: new Date().toISOString() });
        const store = new TableRequestStore(table);
        const listed = [];
        for await (const stored of store.listRequests()) {
            listed.push(stored);
        }
        for await (const stored of store.listForSweep()) {
            listed.push(stored);
        }
        expect(listed).toEqual([]);
    });
});

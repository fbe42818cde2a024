import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { requestLayoutVersion, TableRequestStore, type StoredRequest } from '../../src/storage/requestStore';
import { azuriteTable } from './azuriteTable';

/**
 * Upgrading over a table the previous release wrote. The fixture holds the rows (requests and PEC claims) that the
 * previous release's TableRequestStore wrote for a pending, a decided, a failed and an applied request: its own code
 * produced them against Azurite, so they carry exactly its columns (no `layout`, `sweep` false on the failed one).
 */

interface Row {
    partitionKey: string;
    rowKey: string;
    [column: string]: unknown;
}

const fixture = JSON.parse(readFileSync(path.join(__dirname, 'fixtures', 'requests-layout1.json'), 'utf8')) as Row[];

async function previousReleaseTable() {
    const { table } = azuriteTable('upgrade');
    const client = await table();
    for (const row of fixture) {
        await client.createEntity(row);
    }
    return table;
}

async function all(iterable: AsyncIterable<StoredRequest>): Promise<string[]> {
    const ids: string[] = [];
    for await (const { request } of iterable) {
        ids.push(request.status);
    }
    return ids.sort();
}

describe('request table: upgrade from the previous release', () => {
    it('reads every row of the previous layout as it is', async () => {
        const store = new TableRequestStore(await previousReleaseTable());
        for (const row of fixture.filter((r) => r.rowKey.startsWith('request-'))) {
            const id = row.rowKey.slice('request-'.length);
            const stored = await store.get(id);
            expect(stored?.request).toMatchObject({ id, status: row.status, pecId: row.pecId });
        }
        // The claims of the open requests still answer for their PECs.
        const decided = fixture.find((r) => r.status === 'decided');
        expect((await store.getActiveForPec(String(decided?.pecId)))?.request.status).toBe('decided');
    });

    it('migrates once: the failed row becomes visible to the sweep, the rest is left alone', async () => {
        const table = await previousReleaseTable();
        const store = new TableRequestStore(table);
        // Before: the previous release wrote the failed request as final, so the sweep's query does not see it.
        expect(await all(store.listForSweep())).toEqual(['decided', 'pending']);

        expect(await store.migrateLayout()).toEqual({ from: 1, to: requestLayoutVersion, rewritten: 1 });
        expect(await all(store.listForSweep())).toEqual(['decided', 'failed', 'pending']);
        const client = await table();
        expect(await client.getEntity('layout', 'version')).toMatchObject({ version: requestLayoutVersion });
        const failed = fixture.find((r) => r.status === 'failed');
        const rewritten = await client.getEntity<{ layout: number; data: string }>(
            String(failed?.partitionKey),
            String(failed?.rowKey),
        );
        // The request itself is unchanged: only the columns are this release's.
        expect(rewritten.layout).toBe(requestLayoutVersion);
        expect(JSON.parse(rewritten.data)).toEqual(JSON.parse(String(failed?.data)));

        // Again: nothing to do, one point read.
        expect(await store.migrateLayout()).toEqual({
            from: requestLayoutVersion,
            to: requestLayoutVersion,
            rewritten: 0,
        });
    });

    it('writes every row in the current layout', async () => {
        const table = await previousReleaseTable();
        const store = new TableRequestStore(table);
        const pending = fixture.find((r) => r.status === 'pending');
        const stored = await store.get(String(pending?.rowKey).slice('request-'.length));
        if (!stored) {
            throw new Error('fixture request missing');
        }
        await store.update(stored, { ...stored.request, updatedAt: new Date().toISOString() });
        const client = await table();
        const row = await client.getEntity<{ layout?: number }>(String(pending?.partitionKey), String(pending?.rowKey));
        expect(row.layout).toBe(requestLayoutVersion);
    });
});

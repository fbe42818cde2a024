import { randomBytes } from 'node:crypto';
import { openTable } from '../../src/storage/tables';
import { FaultyStorage } from '../emulators/faultyStorage';
import { azuriteConnectionString, noCredential } from './azuriteTable';

/**
 * The table clients' bounds and retries, through a proxy in front of Azurite that throttles, fails and stays silent
 * the way Azure Storage can: each try is bounded by the setting, and what the service asks (Retry-After) is honoured.
 */

describe('openTable under storage faults', () => {
    let proxy: FaultyStorage;
    const settings = () => ({
        connectionString: proxy.connectionString,
        timeoutMs: 300,
        maxRetries: 2,
        retryDelayInMs: 10,
    });

    beforeAll(async () => {
        proxy = await FaultyStorage.start(azuriteConnectionString());
    });
    afterAll(() => proxy.close());
    afterEach(() => proxy.faults.clear());

    const tableName = () => `tbl${randomBytes(6).toString('hex')}`;

    it('gives up on a read that gets no answer after timeoutMs and retries it, instead of waiting forever', async () => {
        const name = tableName();
        const table = await openTable(settings(), name, noCredential);
        await table.createEntity({ partitionKey: 'p', rowKey: 'r', value: 1 });
        proxy.faults.add({ kind: 'hang', afterProcessing: false, dropAfterMs: 120_000 }, { method: 'GET' });
        const before = proxy.requests.length;

        await expect(table.getEntity('p', 'r')).resolves.toMatchObject({ value: 1 });

        expect(proxy.requests.slice(before).map((r) => `${r.method} ${r.fault ?? 'ok'}`)).toEqual([
            'GET hang',
            'GET ok',
        ]);
    });

    it("retries storage's throttle (503 ServerBusy with Retry-After) and 500s within the settings", async () => {
        const table = await openTable(settings(), tableName(), noCredential);
        proxy.faults.add({ kind: 'throttle', retryAfterSeconds: 0 }, { method: 'POST' });
        proxy.faults.add({ kind: 'error', status: 500 }, { method: 'POST' });

        await table.createEntity({ partitionKey: 'p', rowKey: 'r', value: 2 });

        expect(proxy.faults.injected).toMatchObject({ throttle: 1, error: 1 });
        await expect(table.getEntity('p', 'r')).resolves.toMatchObject({ value: 2 });
    });

    it('creates a missing table on its first use, once for concurrent callers, and makes no call to open one', async () => {
        const name = tableName();
        const before = proxy.requests.length;
        const table = await openTable(settings(), name, noCredential);
        expect(proxy.requests.length).toBe(before);

        await expect(table.getEntity('p', 'r')).rejects.toMatchObject({ statusCode: 404 });
        await Promise.all(
            Array.from({ length: 5 }, (_, i) => table.createEntity({ partitionKey: 'p', rowKey: `r${i}`, value: i })),
        );
        const creations = proxy.requests.slice(before).filter((r) => r.method === 'POST' && /\/Tables$/.test(r.path));
        expect(creations).toHaveLength(1);
        const rows: unknown[] = [];
        for await (const row of table.listEntities()) {
            rows.push(row);
        }
        expect(rows).toHaveLength(5);
        // A second process (a new client) finds the table there and creates nothing.
        const again = await openTable(settings(), name, noCredential);
        const mark = proxy.requests.length;
        await again.getEntity('p', 'r1');
        expect(proxy.requests.slice(mark).map((r) => r.method)).toEqual(['GET']);
    });

    it('fails the call that needed the table with the storage error when the table cannot be created', async () => {
        const table = await openTable(settings(), tableName(), noCredential);
        proxy.faults.add({ kind: 'error', status: 403, code: 'AuthorizationPermissionMismatch' }, { method: 'POST' });
        await expect(table.createEntity({ partitionKey: 'p', rowKey: 'r' })).rejects.toMatchObject({ statusCode: 403 });
        await expect(table.createEntity({ partitionKey: 'p', rowKey: 'r' })).resolves.toBeDefined();
    });
});

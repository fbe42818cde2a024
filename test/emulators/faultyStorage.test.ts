import { randomBytes } from 'node:crypto';
import { RestError } from '@azure/core-rest-pipeline';
import { TableClient } from '@azure/data-tables';
import { QueueClient } from '@azure/storage-queue';
import { azuriteConnectionString } from '../storage/azuriteTable';
import { FaultyStorage } from './faultyStorage';

/**
 * The storage proxy itself: what it passes through reaches Azurite unchanged (Shared Key signatures, 409s), and what
 * it injects reads to the real SDKs as Azure Storage's own errors, in each service's format.
 */

describe('FaultyStorage', () => {
    let proxy: FaultyStorage;
    const name = `fs${randomBytes(6).toString('hex')}`;
    const noRetries = { retryOptions: { maxRetries: 0 }, allowInsecureConnection: true };

    beforeAll(async () => {
        proxy = await FaultyStorage.start(azuriteConnectionString());
    });
    afterAll(async () => {
        await new QueueClient(azuriteConnectionString(), name).deleteIfExists();
        await proxy.close();
    });
    afterEach(() => proxy.faults.clear());

    it('points the Table and Queue endpoints at itself and leaves the rest of the connection string alone', () => {
        const original = azuriteConnectionString();
        const proxied = proxy.connectionString;
        expect(proxied).not.toBe(original);
        expect(proxied).toMatch(/TableEndpoint=http:\/\/127\.0\.0\.1:\d+\/devstoreaccount1/);
        const keep = (cs: string) => cs.split(';').filter((p) => !/^(Table|Queue)Endpoint=/.test(p));
        expect(keep(proxied)).toEqual(keep(original));
    });

    it('passes requests through to Azurite, signed and all, and counts them per service', async () => {
        const table = TableClient.fromConnectionString(proxy.connectionString, name, noRetries);
        await table.createTable();
        await table.createEntity({ partitionKey: 'p', rowKey: 'r', n: 1 });
        await expect(table.createEntity({ partitionKey: 'p', rowKey: 'r', n: 2 })).rejects.toMatchObject({
            statusCode: 409,
        });
        const queue = new QueueClient(proxy.connectionString, name);
        await queue.createIfNotExists();
        await queue.sendMessage('hello');
        expect(proxy.counts().table).toBeGreaterThanOrEqual(3);
        expect(proxy.counts().queue).toBeGreaterThanOrEqual(2);
    });

    it('throttles as Azure Storage does: 503 ServerBusy with Retry-After, OData JSON for tables', async () => {
        const table = TableClient.fromConnectionString(proxy.connectionString, name, noRetries);
        proxy.faults.add({ kind: 'throttle', retryAfterSeconds: 1 });
        const error = (await table.getEntity('p', 'r').catch((e: unknown) => e)) as RestError;
        expect(error.statusCode).toBe(503);
        // Read where the SDK puts Azurite's own errors: the parsed OData error and the error-code header.
        expect(error.details).toMatchObject({ errorCode: 'ServerBusy', odataError: { code: 'ServerBusy' } });
        expect(error.response?.headers.get('retry-after')).toBe('1');
        expect(JSON.parse(error.response?.bodyAsText ?? '{}')).toMatchObject({
            'odata.error': { code: 'ServerBusy', message: { lang: 'en-US' } },
        });
    });

    it('fails a queue request with the XML error body the queue service writes', async () => {
        const queue = new QueueClient(proxy.connectionString, name, { retryOptions: { maxTries: 1 } });
        proxy.faults.add({ kind: 'error', status: 500 });
        const error = (await queue.sendMessage('x').catch((e: unknown) => e)) as RestError;
        expect(error.statusCode).toBe(500);
        expect(error.code).toBe('InternalError');
        expect(error.response?.bodyAsText).toMatch(/^<\?xml .*<Error><Code>InternalError<\/Code><Message>/);
    });
});

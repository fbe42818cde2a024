import { randomBytes } from 'node:crypto';
import { QueueClient } from '@azure/storage-queue';
import { RestError, createHttpHeaders, createPipelineRequest } from '@azure/core-rest-pipeline';
import { TransientError } from '../../src/domain/errors';
import { StorageApplyQueue, withRetries, type QueueRetrySettings } from '../../src/storage/applyQueue';
import { FaultyStorage } from '../emulators/faultyStorage';
import { azuriteConnectionString, noCredential } from './azuriteTable';

/**
 * The apply queue's sender. Its retries are its own (the storage SDK's retry policy neither retries a 429 nor honours
 * Retry-After, and bounds no try), so they are tested on their own and through a proxy in front of Azurite.
 */

const settings: QueueRetrySettings = { timeoutMs: 200, maxRetries: 3, retryDelayInMs: 10 };

function answered(status: number, retryAfter?: string): RestError {
    const request = createPipelineRequest({ url: 'http://127.0.0.1/queue' });
    const headers = createHttpHeaders(retryAfter === undefined ? {} : { 'retry-after': retryAfter });
    return new RestError(`answered ${status}`, { statusCode: status, request, response: { status, headers, request } });
}

describe('withRetries', () => {
    it("waits what the service's Retry-After says before trying a throttled call again", async () => {
        const waits: number[] = [];
        const outcomes = [answered(429, '2'), answered(503, '0'), 'ok'];
        const result = await withRetries(
            settings,
            async () => {
                const next = outcomes.shift();
                if (next instanceof Error) {
                    throw next;
                }
                return next;
            },
            async (ms) => {
                waits.push(ms);
            },
        );
        expect(result).toBe('ok');
        expect(waits).toEqual([2000, 0]);
    });

    it('backs off exponentially on a 500 or a network failure without Retry-After', async () => {
        const waits: number[] = [];
        const network = new RestError('socket hang up', { code: 'ECONNRESET' });
        const outcomes = [answered(500), network, 'ok'];
        await withRetries(
            settings,
            async () => {
                const next = outcomes.shift();
                if (next instanceof Error) {
                    throw next;
                }
                return next;
            },
            async (ms) => {
                waits.push(ms);
            },
        );
        expect(waits).toHaveLength(2);
        expect(waits[0]).toBeGreaterThanOrEqual(8);
        expect(waits[1]).toBeGreaterThan(waits[0]!);
    });

    it('does not retry what will answer the same (a 403), nor an error that is not an answer', async () => {
        let calls = 0;
        await expect(
            withRetries(settings, async () => {
                calls += 1;
                throw answered(403);
            }),
        ).rejects.toMatchObject({ statusCode: 403 });
        await expect(
            withRetries(settings, async () => {
                calls += 1;
                throw new TypeError('a bug');
            }),
        ).rejects.toBeInstanceOf(TypeError);
        expect(calls).toBe(2);
    });

    it('bounds each try: a call that never answers is abandoned, retried, and ends transient', async () => {
        let calls = 0;
        const error = await withRetries({ ...settings, maxRetries: 2 }, (signal) => {
            calls += 1;
            return new Promise<never>((_, reject) => signal.addEventListener('abort', () => reject(signal.reason)));
        }).catch((e: unknown) => e);
        expect(calls).toBe(3);
        expect(error).toBeInstanceOf(TransientError);
        expect((error as Error).message).toMatch(/no answer within 200 ms \(3 tries\)/);
    });
});

describe('StorageApplyQueue through a faulty proxy', () => {
    const message = { requestId: randomBytes(16).toString('base64url'), correlationId: 'corr-1' };

    async function messagesIn(queueName: string): Promise<string[]> {
        const direct = new QueueClient(azuriteConnectionString(), queueName);
        const { peekedMessageItems } = await direct.peekMessages({ numberOfMessages: 32 });
        return peekedMessageItems.map((m) => Buffer.from(m.messageText, 'base64').toString('utf8'));
    }

    it('retries a 429 with Retry-After and a try that never answers, and sends the message', async () => {
        // A table service in front of Cosmos DB throttles with 429; the storage SDK alone would give up at once.
        const proxy = await FaultyStorage.start(azuriteConnectionString(), { throttleStatus: 429 });
        const queueName = `q-${randomBytes(6).toString('hex')}`;
        try {
            const queue = new StorageApplyQueue(
                { connectionString: proxy.connectionString, timeoutMs: 300, maxRetries: 3, retryDelayInMs: 10 },
                noCredential,
                queueName,
            );
            proxy.faults.add({ kind: 'throttle', retryAfterSeconds: 0 }, { method: 'POST' });
            proxy.faults.add({ kind: 'hang', afterProcessing: false, dropAfterMs: 120_000 }, { method: 'POST' });

            await queue.send(message);

            expect(proxy.faults.injected).toMatchObject({ throttle: 1, hang: 1 });
            expect((await messagesIn(queueName)).map((m) => JSON.parse(m) as unknown)).toEqual([message]);
        } finally {
            await new QueueClient(azuriteConnectionString(), queueName).deleteIfExists();
            await proxy.close();
        }
    });

    it('reports a send that keeps failing as transient, for the caller to retry', async () => {
        const proxy = await FaultyStorage.start(azuriteConnectionString());
        const queueName = `q-${randomBytes(6).toString('hex')}`;
        try {
            const queue = new StorageApplyQueue(
                { connectionString: proxy.connectionString, timeoutMs: 300, maxRetries: 1, retryDelayInMs: 10 },
                noCredential,
                queueName,
            );
            await queue.send(message); // the queue exists
            proxy.faults.add({ kind: 'error', status: 500 }, { times: 2, method: 'POST' });
            await expect(queue.send(message)).rejects.toBeInstanceOf(TransientError);
        } finally {
            await new QueueClient(azuriteConnectionString(), queueName).deleteIfExists();
            await proxy.close();
        }
    });
});

import type { TokenCredential } from '@azure/core-auth';
import type { QueueClient } from '@azure/storage-queue';
import { z } from 'zod';
import { ensureErrorType, isTransientStatus, statusCodeOf, TransientError } from '../domain/errors';
import type { StorageSettings } from '../config';
import { lazy } from './tables';

/**
 * The queue between a recorded decision and its application through ARM. The name is fixed rather than a setting: the
 * trigger's binding and the sender must agree, and a binding expression over an unset setting fails the whole host.
 */
export const applyQueueName = 'pec-apply';

/**
 * How many times the host delivers a message before it moves it to `pec-apply-poison`. It must equal
 * `extensions.queues.maxDequeueCount` in host.json (a test checks), because the last attempt marks the request failed.
 */
export const applyMaxAttempts = 5;

export const applyMessageSchema = z.strictObject({
    requestId: z.string().regex(/^[A-Za-z0-9_-]{22,64}$/, 'expected a request id'),
    correlationId: z.string().min(1).max(200),
});
export type ApplyMessage = z.infer<typeof applyMessageSchema>;

export interface ApplyQueue {
    send(message: ApplyMessage): Promise<void>;
}

/**
 * Sends through @azure/storage-queue, base64-encoded: the Functions host's queue trigger decodes base64 by default.
 * The SDK is loaded on the first send, off the cold path of the other functions.
 */
export class StorageApplyQueue implements ApplyQueue {
    private readonly client: () => Promise<QueueClient>;

    constructor(storage: StorageSettings, credential: () => TokenCredential, queueName = applyQueueName) {
        this.client = lazy(async () => {
            const { QueueClient } = await import('@azure/storage-queue');
            const client = storage.connectionString
                ? new QueueClient(storage.connectionString, queueName)
                : new QueueClient(`${requireUri(storage.queueServiceUri)}/${queueName}`, credential());
            await client.createIfNotExists();
            return client;
        });
    }

    async send(message: ApplyMessage): Promise<void> {
        const body = Buffer.from(JSON.stringify(applyMessageSchema.parse(message)), 'utf8').toString('base64');
        try {
            await (await this.client()).sendMessage(body);
        } catch (err) {
            const e = ensureErrorType(err);
            if (isTransientStatus(statusCodeOf(err))) {
                throw new TransientError(`Queue: could not send the decision: ${e.message}`, { cause: e });
            }
            throw e;
        }
    }
}

/** The in-memory double, for use-case tests that do not need the queue itself. */
export class InMemoryApplyQueue implements ApplyQueue {
    readonly messages: ApplyMessage[] = [];

    send(message: ApplyMessage): Promise<void> {
        this.messages.push(applyMessageSchema.parse(message));
        return Promise.resolve();
    }
}

function requireUri(uri: string | undefined): string {
    if (!uri) {
        throw new Error('AzureWebJobsStorage: no queue service URI');
    }
    return uri.replace(/\/+$/, '');
}

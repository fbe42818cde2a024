import type { TokenCredential } from '@azure/core-auth';
import type { QueueClient } from '@azure/storage-queue';
import * as z from 'zod';
import { ensureErrorType, isTransientStatus, statusCodeOf, TransientError } from '../domain/errors';
import { defaultHttpTimeoutMs } from '../http/timeout';
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
 *
 * The retries are this class's own, not the SDK's: the storage retry policy neither retries a 429 nor honours
 * Retry-After, backs off for seconds (4 s, then 12 s) where a click waits for its card, and bounds no try, so a
 * connection that never answers would hold the invocation until the host kills it. Here every try is bounded by
 * `timeoutMs`, and a throttle, a 5xx, a network failure or a timed-out try is retried after Retry-After or a backoff,
 * like the other clients' pipelines do. A retried send can leave a duplicate message when a try's answer was lost;
 * the apply's lease and its status check make a duplicate harmless.
 */
export class StorageApplyQueue implements ApplyQueue {
    private readonly client: () => Promise<QueueClient>;
    private readonly retry: QueueRetrySettings;

    constructor(storage: StorageSettings, credential: () => TokenCredential, queueName = applyQueueName) {
        this.retry = {
            timeoutMs: storage.timeoutMs ?? defaultHttpTimeoutMs,
            maxRetries: storage.maxRetries ?? 4,
            retryDelayInMs: storage.retryDelayInMs ?? 1000,
        };
        this.client = lazy(async () => {
            const { QueueClient } = await import('@azure/storage-queue');
            // One try per SDK call: the retries are done in `withRetries`.
            const options = { retryOptions: { maxTries: 1 } };
            const client = storage.connectionString
                ? new QueueClient(storage.connectionString, queueName, options)
                : new QueueClient(`${requireUri(storage.queueServiceUri)}/${queueName}`, credential(), options);
            await withRetries(this.retry, (abortSignal) => client.createIfNotExists({ abortSignal }));
            return client;
        });
    }

    async send(message: ApplyMessage): Promise<void> {
        const body = Buffer.from(JSON.stringify(applyMessageSchema.parse(message)), 'utf8').toString('base64');
        try {
            const client = await this.client();
            await withRetries(this.retry, (abortSignal) => client.sendMessage(body, { abortSignal }));
        } catch (err) {
            const e = ensureErrorType(err);
            if (e instanceof TransientError || isTransientStatus(statusCodeOf(err))) {
                throw new TransientError(`Queue: could not send the decision: ${e.message}`, { cause: e });
            }
            throw e;
        }
    }
}

export interface QueueRetrySettings {
    /** Bound on each try. */
    timeoutMs: number;
    maxRetries: number;
    /** Base of the exponential backoff when the service sends no Retry-After. */
    retryDelayInMs: number;
}

/**
 * Runs one storage call with a bounded try and retries: a throttle (429, or storage's 503 ServerBusy), a 5xx, a
 * network failure or a try with no answer in time is tried again, after the service's Retry-After when it sends one.
 * Anything else (a 4xx, a bug) is thrown at once. Exported for its tests.
 */
export async function withRetries<T>(
    settings: QueueRetrySettings,
    call: (abortSignal: AbortSignal) => Promise<T>,
    sleep: (ms: number) => Promise<void> = (ms) => new Promise((r) => setTimeout(r, ms)),
): Promise<T> {
    for (let attempt = 0; ; attempt++) {
        const controller = new AbortController();
        const timer = setTimeout(() => controller.abort(), settings.timeoutMs);
        try {
            return await call(controller.signal);
        } catch (err) {
            const timedOut = controller.signal.aborted;
            const answered = (err as { name?: unknown } | undefined)?.name === 'RestError';
            const retryable = timedOut || (answered && isTransientStatus(statusCodeOf(err)));
            if (!retryable || attempt >= settings.maxRetries) {
                if (timedOut) {
                    throw new TransientError(
                        `no answer within ${settings.timeoutMs} ms (${attempt + 1} tr${attempt === 0 ? 'y' : 'ies'})`,
                        { cause: err },
                    );
                }
                throw err;
            }
            await sleep(retryAfterMs(err) ?? backoffMs(settings, attempt));
        } finally {
            clearTimeout(timer);
        }
    }
}

/** The wait the service asked for (Retry-After in seconds, or an HTTP date), if any. */
function retryAfterMs(err: unknown): number | undefined {
    const headers = (err as { response?: { headers?: { get(name: string): string | undefined } } }).response?.headers;
    const value = headers?.get('retry-after');
    if (value === undefined || value.trim() === '') {
        return undefined;
    }
    const seconds = Number(value);
    if (Number.isFinite(seconds)) {
        return Math.max(0, seconds * 1000);
    }
    const date = Date.parse(value);
    return Number.isFinite(date) ? Math.max(0, date - Date.now()) : undefined;
}

/** Exponential with jitter, capped at 16 times the base like the other clients' pipelines. */
function backoffMs(settings: QueueRetrySettings, attempt: number): number {
    const base = settings.retryDelayInMs * 2 ** attempt;
    return Math.min(base * (0.8 + Math.random() * 0.4), settings.retryDelayInMs * 16);
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

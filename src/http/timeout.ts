import { createDefaultHttpClient, RestError, type HttpClient, type PipelineRequest } from '@azure/core-rest-pipeline';

/**
 * A bound on each try of an outgoing request, shared by every client the app builds on the Azure core pipeline (ARM,
 * the Bot Connector, the Workflows webhook, Table storage).
 *
 * Without it a connection that never answers holds the invocation until the host kills it: the core pipeline sets no
 * timeout of its own, and its `request.timeout` ends in an AbortError, which the retry policy does not retry. Here a
 * try that gets no answer in time fails as a network error (`ETIMEDOUT`), which the pipeline's retry policy retries
 * with its backoff like a 5xx, and which the app's error mapping counts as transient when the retries run out.
 */

/** The default bound on one try, when a client is built without a setting. */
export const defaultHttpTimeoutMs = 30_000;

/** The code of the error a timed-out try fails with: one the retry policies treat as a network failure. */
export const timeoutErrorCode = 'ETIMEDOUT';

export function timeoutHttpClient(timeoutMs: number, inner: HttpClient = createDefaultHttpClient()): HttpClient {
    return {
        async sendRequest(request: PipelineRequest) {
            const callerSignal = request.abortSignal;
            const controller = new AbortController();
            const timer = setTimeout(() => controller.abort(), timeoutMs);
            const forward = () => controller.abort();
            callerSignal?.addEventListener('abort', forward, { once: true });
            if (callerSignal?.aborted) {
                controller.abort();
            }
            // The try runs under its own signal; the caller's is put back afterwards, because the retry policy reads
            // it to tell a caller's abort (never retried) from this try's timeout.
            request.abortSignal = controller.signal;
            try {
                // The whole answer, body included, is read within the bound: a server that sends headers and then
                // stalls is as stuck as one that sends nothing.
                return await inner.sendRequest(request);
            } catch (err) {
                if (controller.signal.aborted && !callerSignal?.aborted) {
                    throw new RestError(`No answer from ${new URL(request.url).host} within ${timeoutMs} ms`, {
                        code: timeoutErrorCode,
                        request,
                    });
                }
                throw err;
            } finally {
                clearTimeout(timer);
                callerSignal?.removeEventListener('abort', forward);
                request.abortSignal = callerSignal;
            }
        },
    };
}

/** One client per bound, so every client with the same bound shares its connection pool. */
const shared = new Map<number, HttpClient>();

export function sharedTimeoutHttpClient(timeoutMs: number = defaultHttpTimeoutMs): HttpClient {
    let client = shared.get(timeoutMs);
    if (!client) {
        client = timeoutHttpClient(timeoutMs);
        shared.set(timeoutMs, client);
    }
    return client;
}

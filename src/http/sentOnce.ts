import { RestError, type HttpClient, type PipelineRequest } from '@azure/core-rest-pipeline';
import { ensureErrorType } from '../domain/errors';

/** The code of the error a request sent once fails with when its outcome is unknown: no answer, or a 5xx answer. */
export const outcomeUnknownCode = 'OutcomeUnknown';

/**
 * Sends the requests `guarded` selects at most once. The core pipeline's retry policies re-send any request that timed
 * out, lost its connection or got a 5xx; for a write that is not idempotent (an ARM PUT while its operation runs, a
 * Bot Connector post that creates a thread) that is a second write the service may carry out too. Here such a failure
 * becomes an error the retry policies do not retry (no system error code, no response attached), still transient for
 * the app's error mapping (no status, or a 5xx status), so the caller finds out what became of the first one. A 429
 * is returned as it came: a throttled request was not carried out, and the throttling policy may send it again after
 * Retry-After.
 */
export function sentOnce(inner: HttpClient, guarded: (request: PipelineRequest) => boolean): HttpClient {
    return {
        async sendRequest(request: PipelineRequest) {
            if (!guarded(request)) {
                return inner.sendRequest(request);
            }
            let response;
            try {
                response = await inner.sendRequest(request);
            } catch (err) {
                if (request.abortSignal?.aborted) {
                    throw err;
                }
                throw new RestError(`${request.method} sent once, outcome unknown: ${ensureErrorType(err).message}`, {
                    code: outcomeUnknownCode,
                    request,
                });
            }
            if (response.status >= 500) {
                throw new RestError(
                    `${request.method} sent once, outcome unknown: ${response.status} ${errorDetail(response.bodyAsText)}`.trim(),
                    { code: outcomeUnknownCode, statusCode: response.status, request },
                );
            }
            return response;
        },
    };
}

/** The service's error code and message, from an ARM- or Bot Framework-style error body, if there is one. */
function errorDetail(body: string | null | undefined): string {
    try {
        const parsed = JSON.parse(body ?? '') as { error?: { code?: string; message?: string } };
        return [parsed.error?.code, parsed.error?.message].filter(Boolean).join(': ');
    } catch {
        return '';
    }
}

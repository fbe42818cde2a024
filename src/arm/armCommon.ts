import type { TokenCredential } from '@azure/core-auth';
import type { CommonClientOptions } from '@azure/core-client';
import type { HttpClient } from '@azure/core-rest-pipeline';
import { outcomeUnknownCode, sentOnce } from '../http/sentOnce';
import { sharedTimeoutHttpClient } from '../http/timeout';
import { ensureErrorType, isTransientStatus, PermanentError, statusCodeOf, TransientError } from '../domain/errors';
import type { PecRef, ServerRef } from '../domain/ids';
import { formatServerId } from '../domain/ids';
import { isSettled, normalisePublicNetworkAccess, normaliseStatus, type Pec, type ServerContext } from '../domain/pec';

export interface ArmSettings {
    endpoint: string;
    credential: TokenCredential;
    maxRetries: number;
    retryDelayInMs: number;
    /** Bound on every long-running operation, polling included. */
    lroDeadlineMs: number;
    /** Bound on a single read (with its retries). */
    readDeadlineMs?: number;
    /** Bound on each try of a request (HTTP_TIMEOUT_MS); a try without an answer in time is retried like a 5xx. */
    timeoutMs?: number;
    /** Where oddities in ARM's answers are reported (a body id that points elsewhere, a connection listed twice). */
    warn?: (message: string) => void;
}

const userAgentPrefix = 'pec-gate';

/** The token scope of an ARM endpoint (its origin, as the SDKs ask for it). */
export function armScope(endpoint: string): string {
    return `${new URL(endpoint).origin}/.default`;
}

/**
 * Options shared by every ARM client. The SDKs build URLs from `$host` but take the token scope from `endpoint`, so
 * both are set: a sovereign cloud or the emulator then works with no other change.
 */
export function armClientOptions(settings: ArmSettings): CommonClientOptions & {
    endpoint: string;
    $host: string;
    credentialScopes: string[];
} {
    const endpoint = settings.endpoint.replace(/\/+$/, '');
    return {
        endpoint,
        $host: endpoint,
        credentialScopes: [armScope(endpoint)],
        retryOptions: {
            maxRetries: settings.maxRetries,
            retryDelayInMs: settings.retryDelayInMs,
            maxRetryDelayInMs: Math.max(settings.retryDelayInMs * 16, settings.retryDelayInMs),
        },
        userAgentOptions: { userAgentPrefix },
        httpClient: writesSentOnce(sharedTimeoutHttpClient(settings.timeoutMs)),
    };
}

/** The code of the error an ARM write fails with when its outcome is unknown: no answer, or a 5xx answer. */
export const writeOutcomeUnknownCode = outcomeUnknownCode;

/**
 * The pipeline's retry policies re-send any request that timed out, lost its connection or got a 5xx. For a PUT that
 * is a second write while the first may still run: ARM answers it with 409, or starts a second operation. So an ARM
 * write is sent once (see `sentOnce`), and the caller finds out from ARM itself what became of it. Reads are untouched.
 */
export function writesSentOnce(inner: HttpClient): HttpClient {
    return sentOnce(inner, (request) => request.method !== 'GET' && request.method !== 'HEAD');
}

/**
 * Whether ARM refused a write because another operation runs on the resource (409 AnotherOperationInProgress and its
 * relatives). Not permanent: once that operation ends, the write may go through.
 */
export function isOperationInProgress(err: unknown): boolean {
    const inner = (err as { cause?: unknown } | undefined)?.cause;
    for (const e of [err, inner]) {
        const code = (e as { code?: unknown } | undefined)?.code;
        if (statusCodeOf(e) === 409 || (typeof code === 'string' && /operation.*in.?progress/i.test(code))) {
            return true;
        }
    }
    return false;
}

/** Provisioning states of an operation still running on the connection (single: …ing; flexible: Updating, …). */
export function isInFlight(provisioningState: string): boolean {
    const state = provisioningState.toLowerCase();
    return state !== '' && !isSettled(state) && !['failed', 'canceled', 'cancelled'].includes(state);
}

/** Sleeps, or rejects as soon as the signal aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
    return new Promise((resolve, reject) => {
        if (signal?.aborted) {
            reject(new TransientError('aborted'));
            return;
        }
        const onAbort = () => {
            clearTimeout(timer);
            reject(new TransientError('aborted'));
        };
        const timer = setTimeout(() => {
            signal?.removeEventListener('abort', onAbort);
            resolve();
        }, ms);
        signal?.addEventListener('abort', onAbort, { once: true });
    });
}

/** The flattened shape every SDK returns for a PEC; the generic adapter maps its raw JSON to it as well. */
export interface FlatPec {
    id?: string;
    name?: string;
    privateEndpoint?: { id?: string };
    privateLinkServiceConnectionState?: { status?: string; description?: string };
    provisioningState?: string;
}

/**
 * A connection as a server's list answer carries it inline, in either shape ARM's models use: nested under
 * `properties` (the REST body, and the single-server SDKs' `ServerPrivateEndpointConnection`, which has only `id` and
 * `properties`), or flattened by an SDK (@azure/arm-postgresql-flexible's `PrivateEndpointConnection`).
 */
export function inlinePec(raw: unknown): FlatPec {
    const item = (raw ?? {}) as FlatPec & { properties?: FlatPec & { privateLinkServiceConnectionState?: object } };
    const at: FlatPec = item.properties ?? item;
    const state = at.privateLinkServiceConnectionState;
    return {
        ...(typeof item.id === 'string' ? { id: item.id } : {}),
        ...(typeof item.name === 'string' ? { name: item.name } : {}),
        ...(at.privateEndpoint ? { privateEndpoint: at.privateEndpoint } : {}),
        ...(state
            ? { privateLinkServiceConnectionState: { status: state.status, description: state.description } }
            : {}),
        ...(typeof at.provisioningState === 'string' ? { provisioningState: at.provisioningState } : {}),
    };
}

export function toPec(server: ServerRef, raw: FlatPec): Pec {
    const name = raw.name ?? raw.id?.split('/').pop() ?? '';
    const status = normaliseStatus(raw.privateLinkServiceConnectionState?.status);
    if (!name || !status) {
        throw new PermanentError(
            `ARM returned a private endpoint connection without a name or a known status on ${formatServerId(server)}`,
        );
    }
    return {
        ref: { server, name },
        // The identity is what we asked for (server and name), never the body's id: see ArmPecAdapter.toPec.
        id: `${formatServerId(server)}/privateEndpointConnections/${name}`,
        privateEndpointId: raw.privateEndpoint?.id ?? '',
        status,
        description: raw.privateLinkServiceConnectionState?.description ?? '',
        provisioningState: raw.provisioningState ?? '',
    };
}

export interface RawServer {
    id?: string;
    location?: string;
    tags?: Record<string, string>;
    publicNetworkAccess?: string;
}

export function toServerContext(server: ServerRef, raw: RawServer, pecs: readonly Pec[]): ServerContext {
    return {
        ref: server,
        id: raw.id ?? formatServerId(server),
        location: raw.location ?? '',
        publicNetworkAccess: normalisePublicNetworkAccess(raw.publicNetworkAccess),
        tags: { ...(raw.tags ?? {}) },
        approvedPecs: pecs.filter((p) => p.status === 'Approved'),
    };
}

export function isNotFound(err: unknown): boolean {
    return statusCodeOf(err) === 404;
}

/**
 * Maps whatever an SDK threw to our error types. The pipeline has already retried 429 and 5xx (honouring
 * Retry-After), so reaching here with one of those means the retries ran out: still transient for the caller.
 */
export function toArmError(err: unknown, what: string): Error {
    const e = ensureErrorType(err);
    if (e instanceof TransientError || e instanceof PermanentError) {
        return e;
    }
    const status = statusCodeOf(err);
    const code = (err as { code?: unknown }).code;
    const detail = `${what}: ${status ?? (typeof code === 'string' ? code : e.name)} ${e.message}`.trim();
    if (isOperationInProgress(err)) {
        return new TransientError(`${what}: another operation is in progress on the resource`, { cause: e });
    }
    if (e.name === 'AbortError') {
        return new TransientError(`${what}: deadline exceeded`, { cause: e });
    }
    if (isTransientStatus(status)) {
        return new TransientError(detail, { cause: e });
    }
    return new PermanentError(detail, { cause: e });
}

/**
 * Runs `work` with an AbortSignal that fires at the deadline, and rejects at the deadline even if `work` ignores the
 * signal somewhere (the legacy SDK pollers sleep between polls without it).
 */
export async function withDeadline<T>(ms: number, what: string, work: (signal: AbortSignal) => Promise<T>): Promise<T> {
    const controller = new AbortController();
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<never>((_, reject) => {
        timer = setTimeout(() => {
            controller.abort();
            reject(new TransientError(`${what}: deadline of ${ms} ms exceeded`));
        }, ms);
    });
    try {
        return await Promise.race([work(controller.signal), deadline]);
    } catch (err) {
        throw toArmError(err, what);
    } finally {
        clearTimeout(timer);
    }
}

export function pecLabel(pec: PecRef): string {
    return `${formatServerId(pec.server)}/privateEndpointConnections/${pec.name}`;
}

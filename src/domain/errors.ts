/**
 * Typed errors. Anything thrown anywhere is passed through `ensureErrorType` before it is inspected, so callers can
 * rely on `instanceof Error` and on `retryable` without guessing what a library threw.
 */

export class PecGateError extends Error {
    /** Whether trying the same thing again later may succeed (throttling, timeouts, 5xx). */
    readonly retryable: boolean;

    constructor(message: string, options?: { cause?: unknown; retryable?: boolean }) {
        super(message, options?.cause === undefined ? undefined : { cause: options.cause });
        this.name = new.target.name;
        this.retryable = options?.retryable ?? false;
    }
}

/** Input that can never be valid (a malformed id, event or setting). Never retried. */
export class ValidationError extends PecGateError {}

/** A setting is missing or malformed. Raised once, at start-up. */
export class ConfigError extends ValidationError {}

/** A transient fault: throttling, a 5xx, a deadline hit. Worth retrying with backoff. */
export class TransientError extends PecGateError {
    constructor(message: string, options?: { cause?: unknown }) {
        super(message, { ...options, retryable: true });
    }
}

/** A fault that retrying will not fix (403, 404 on something that must exist, a contract violation). */
export class PermanentError extends PecGateError {}

/** The caller's identity is not proven (no token, a bad signature, the wrong audience...): HTTP 401. */
export class UnauthorizedError extends PecGateError {}

/** The caller is who they say, but may not do this (not an approver, another tenant, the wrong conversation): 403. */
export class ForbiddenError extends PecGateError {}

/** A conditional write lost the race: someone else changed the entity first. */
export class ConcurrencyError extends PecGateError {}

export function ensureErrorType(err: unknown): Error {
    if (err instanceof Error) {
        return err;
    }
    let message: string;
    if (err === undefined || err === null) {
        message = 'Unknown error';
    } else if (typeof err === 'string') {
        message = err;
    } else {
        try {
            message = JSON.stringify(err);
        } catch {
            message = String(err);
        }
    }
    return new PecGateError(message, { cause: err });
}

export function isRetryable(err: unknown): boolean {
    const e = ensureErrorType(err);
    return e instanceof PecGateError ? e.retryable : false;
}

/** The HTTP status an SDK error carries (RestError and friends), if any. */
export function statusCodeOf(err: unknown): number | undefined {
    const code = (err as { statusCode?: unknown } | undefined)?.statusCode;
    return typeof code === 'number' ? code : undefined;
}

/**
 * Whether an HTTP outcome is worth retrying: no answer at all (network, timeout), 408, 429 or a 5xx. Everything else
 * (400, 401, 403, 404, 409, 412) will answer the same way next time.
 */
export function isTransientStatus(status: number | undefined): boolean {
    return status === undefined || status === 408 || status === 429 || status >= 500;
}

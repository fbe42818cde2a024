import { AsyncLocalStorage } from 'node:async_hooks';
import type { Logger } from './logger';

/**
 * The ids every log line and telemetry item carries. They live in async-local storage rather than in parameters, so
 * a use case deep in the call tree logs with the request it works on without threading ids through every signature,
 * and the sweep's concurrent per-request work cannot mix up whose line is whose.
 */
export interface TraceFields {
    /** Our request id (the PEC's approval request), once known. */
    requestId?: string;
    /** The ARM correlation id of the event that started the request (or the sweep's own run id). */
    correlationId?: string;
    /** The Functions invocation, to find the host's own lines for the same work. */
    invocationId?: string;
    /** The W3C trace id of the invocation, which Application Insights shows as operation_Id. */
    operationId?: string;
}

const storage = new AsyncLocalStorage<TraceFields>();

/** Runs `fn` with `fields` added to (and overriding) the ids already in scope. */
export function withTrace<T>(fields: TraceFields, fn: () => T): T {
    const next: TraceFields = { ...storage.getStore() };
    for (const [key, value] of Object.entries(fields) as [keyof TraceFields, string | undefined][]) {
        if (value) {
            next[key] = value;
        }
    }
    return storage.run(next, fn);
}

export function currentTrace(): TraceFields {
    return storage.getStore() ?? {};
}

/**
 * `requestId=… correlationId=…`, with `-` for an id not known yet, so every line has the same greppable shape. The ids
 * may come from an event (an ARM correlation id is whatever the caller sent), and the ALERT rule matches a line by
 * what follows the label: so everything but id characters is percent-encoded, and no id can close the label early and
 * make the rest of an ordinary line read as `ALERT …`.
 */
export function traceLabel(fields: TraceFields = currentTrace()): string {
    return `[requestId=${labelValue(fields.requestId)} correlationId=${labelValue(fields.correlationId)}]`;
}

function labelValue(value: string | undefined): string {
    if (!value) {
        return '-';
    }
    return value.replace(/[^\w.:-]/g, (c) =>
        [...Buffer.from(c, 'utf8')].map((b) => `%${b.toString(16).toUpperCase().padStart(2, '0')}`).join(''),
    );
}

/** The longest a logged value may be; an event or a form can carry tens of kilobytes, and nobody reads that in a log. */
export const maxLoggedChars = 2000;

/**
 * One log line, whatever the caller put in it: messages quote event fields, form keys and ids that anyone who can
 * reach the endpoints controls, so line breaks and other control or bidi characters are escaped (a value cannot start
 * a forged line or reorder what the reader sees), and each value is cut at `maxLoggedChars`.
 */
export function safeLogText(value: unknown): string {
    const text =
        typeof value === 'string' ? value : value instanceof Error ? (value.stack ?? value.message) : String(value);
    const cut = text.length > maxLoggedChars ? `${text.slice(0, maxLoggedChars)}… (${text.length} chars)` : text;
    // eslint-disable-next-line no-control-regex
    return cut.replace(/[\u0000-\u001f\u007f-\u009f\u200b-\u200f\u2028-\u202e\u2066-\u2069\ufeff]/g, (c) =>
        c === '\n'
            ? '\\n'
            : c === '\r'
              ? '\\r'
              : c === '\t'
                ? '\\t'
                : `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`,
    );
}

/**
 * A logger that prefixes each line with the ids in scope at the time of the call (not at creation), and makes every
 * argument safe to log (see `safeLogText`); the ids in the label are escaped too, as a correlation id comes from an event.
 */
export function tracedLogger(base: Logger): Logger {
    const line = (args: unknown[]) => [safeLogText(traceLabel()), ...args.map(safeLogText)];
    return {
        info: (...args: unknown[]) => base.info(...line(args)),
        warn: (...args: unknown[]) => base.warn(...line(args)),
        error: (...args: unknown[]) => base.error(...line(args)),
    };
}

/** The trace id of a W3C traceparent (`00-<trace id>-<span id>-<flags>`), or undefined. */
export function traceIdOf(traceParent: string | null | undefined): string | undefined {
    const match = /^[0-9a-f]{2}-([0-9a-f]{32})-[0-9a-f]{16}-[0-9a-f]{2}$/i.exec(traceParent ?? '');
    return match?.[1]?.toLowerCase();
}

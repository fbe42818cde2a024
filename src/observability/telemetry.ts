import type { AuditAction, AuditEntry, AuditInput } from '../domain/audit';
import { ensureErrorType } from '../domain/errors';
import type { AppendOptions, AuditLog } from '../storage/auditLog';
import type { Logger } from './logger';
import { currentTrace, type TraceFields } from './trace';

/**
 * Custom events for the milestones of a request. They are derived from the audit entries, not emitted beside them,
 * so a dashboard and the audit trail can never disagree about whether something happened.
 */
export const milestoneEvents = {
    requested: 'PecRequested',
    decided: 'PecDecided',
    applied: 'PecApplied',
    superseded: 'PecSuperseded',
    expired: 'PecExpired',
    failed: 'PecFailed',
} as const satisfies Partial<Record<AuditAction, string>>;

export type MilestoneEvent = (typeof milestoneEvents)[keyof typeof milestoneEvents];

export interface TelemetryEvent {
    name: string;
    time: Date;
    /** Always includes requestId and correlationId. */
    properties: Record<string, string>;
    trace: TraceFields;
}

/** The one port for Application Insights custom events. Tracking never throws and never waits on the network. */
export interface Telemetry {
    trackEvent(event: TelemetryEvent): void;
    /** Sends what is buffered; called at the end of every invocation, before the host may freeze the process. */
    flush(log?: Logger): Promise<void>;
}

/** No Application Insights configured (local runs): events go nowhere. */
export const noTelemetry: Telemetry = {
    trackEvent: () => undefined,
    flush: async () => undefined,
};

export class InMemoryTelemetry implements Telemetry {
    readonly events: TelemetryEvent[] = [];
    trackEvent(event: TelemetryEvent): void {
        this.events.push(event);
    }
    async flush(): Promise<void> {}
}

/** Decorates the audit log: each milestone entry, once durably appended, becomes a custom event. */
export class TrackedAuditLog implements AuditLog {
    constructor(
        private readonly inner: AuditLog,
        private readonly telemetry: Telemetry,
    ) {}

    async append(input: AuditInput, options?: AppendOptions): Promise<AuditEntry> {
        const entry = await this.inner.append(input, options);
        const name = (milestoneEvents as Partial<Record<AuditAction, string>>)[entry.action];
        if (name) {
            this.telemetry.trackEvent({
                name,
                time: new Date(entry.at),
                properties: milestoneProperties(entry),
                trace: { ...currentTrace(), requestId: entry.requestId, correlationId: entry.correlationId },
            });
        }
        return entry;
    }

    list(requestId: string): Promise<AuditEntry[]> {
        return this.inner.list(requestId);
    }

    prepare(): void {
        this.inner.prepare?.();
    }
}

function milestoneProperties(entry: AuditEntry): Record<string, string> {
    const properties: Record<string, string> = {
        requestId: entry.requestId,
        correlationId: entry.correlationId,
        actorKind: entry.actor.kind,
        auditSeq: String(entry.seq),
        // The chain's head as App Insights saw it, a copy the app cannot take back once ingested: a trail rewritten
        // later, hashes recomputed and all, no longer matches the hashes here.
        auditHash: entry.hash,
        auditPrevHash: entry.prevHash,
    };
    if (entry.actor.id) {
        properties.actorId = entry.actor.id;
    }
    if (entry.detail) {
        properties.detail = entry.detail.slice(0, 1000);
    }
    // Only the facts a dashboard slices by: which PEC, its state, and whether its endpoint is from outside.
    const after = entry.after as
        | {
              status?: unknown;
              pec?: { id?: unknown };
              facts?: { serverKind?: unknown; privateEndpointTrusted?: unknown };
          }
        | undefined;
    if (typeof after?.status === 'string') {
        properties.status = after.status;
    }
    if (typeof after?.pec?.id === 'string') {
        properties.pecId = after.pec.id;
    }
    if (typeof after?.facts?.serverKind === 'string') {
        properties.serverKind = after.facts.serverKind;
    }
    if (typeof after?.facts?.privateEndpointTrusted === 'boolean') {
        properties.privateEndpointTrusted = String(after.facts.privateEndpointTrusted);
    }
    return properties;
}

/**
 * Holds events until the first flush, and only then loads the real sink: the ingestion client stays off the cold
 * path of an invocation that tracks nothing (an irrelevant event, a refused call).
 */
export class LazyTelemetry implements Telemetry {
    private pending: TelemetryEvent[] = [];
    private sink: Promise<Telemetry> | undefined;

    constructor(private readonly load: () => Promise<Telemetry>) {}

    trackEvent(event: TelemetryEvent): void {
        this.pending.push(event);
    }

    async flush(log?: Logger): Promise<void> {
        if (this.pending.length === 0) {
            return;
        }
        const events = this.pending;
        this.pending = [];
        try {
            this.sink ??= this.load();
            const sink = await this.sink;
            for (const event of events) {
                sink.trackEvent(event);
            }
            await sink.flush(log);
        } catch (err) {
            this.sink = undefined;
            log?.warn(`Telemetry: ${events.length} event(s) not sent: ${ensureErrorType(err).message}`);
        }
    }
}

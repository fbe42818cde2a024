import type { PecProvider } from '../arm/pecProvider';
import type { Telemetry } from '../observability/telemetry';
import type { ServerKind } from '../domain/ids';
import type { Policy } from '../domain/policy';
import type { ReconcileSettings } from '../domain/reconcile';
import type { AuditLog } from '../storage/auditLog';
import type { RequestStore } from '../storage/requestStore';
import type { ApplyQueue } from '../storage/applyQueue';
import type { ApproverDirectory } from '../teams/directory';
import type { TeamsChannel, WebhookChannel } from '../teams/teamsChannel';

/** Kept for code written against this module; the Logger type lives in observability/logger.ts. */
export type { Logger } from '../observability/logger';

export interface WorkflowSettings {
    tenantId: string;
    clientId: string;
    watchedSubscriptionIds: readonly string[];
    /** The resource kinds watched (WATCHED_RESOURCE_KINDS); the four database kinds when absent. */
    watchedKinds?: readonly ServerKind[];
    trustedSubscriptionIds: readonly string[];
    portalUrl: string;
    publicBaseUrl: string;
    approverGroupIds: readonly string[];
    allowSelfApproval: boolean;
    linkTokenTtlHours: number;
    lroDeadlineMs: number;
    /** Reminders, expiry and stuck applies, for the sweep. */
    reconcile: ReconcileSettings;
    /** Validated at start-up; no rules means one manual approval for everything. */
    policy: Policy;
}

/** Everything a use case touches, as interfaces: real adapters in production, doubles or emulators in tests. */
export interface WorkflowDeps {
    settings: WorkflowSettings;
    arm: PecProvider;
    requests: RequestStore;
    audit: AuditLog;
    /** Undefined when only the webhook is configured. */
    teams?: TeamsChannel;
    webhook?: WebhookChannel;
    directory: ApproverDirectory;
    applyQueue: ApplyQueue;
    /** Custom events for the milestones (the audit log feeds it); flushed at the end of each invocation. */
    telemetry: Telemetry;
    now(): Date;
    newId(): string;
}

/** The card options every renderer shares. */
export function cardOptions(deps: WorkflowDeps) {
    return {
        portalUrl: deps.settings.portalUrl,
        publicBaseUrl: deps.settings.publicBaseUrl,
        ourTenantId: deps.settings.tenantId,
    };
}

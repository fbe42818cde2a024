import type { PecProvider } from '../arm/pecProvider';
import type { SubscriptionTenantLookup } from '../identity/subscriptionTenants';
import type { Telemetry } from '../observability/telemetry';
import type { ServerKind } from '../domain/ids';
import type { Policy } from '../domain/policy';
import type { ReconcileSettings } from '../domain/reconcile';
import type { AuditLog } from '../storage/auditLog';
import type { ConnectionMarks } from '../storage/connectionMarks';
import type { RequestStore } from '../storage/requestStore';
import type { SweepCheckpoints } from '../storage/sweepCheckpoint';
import type { ApplyQueue } from '../storage/applyQueue';
import type { ApproverDirectory } from '../teams/directory';
import type { ApproverTeamsIds } from '../teams/approverTeamsIds';
import type { ChannelCardFinder } from '../teams/channelCards';
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
    /** SUBSCRIPTION_TENANTS: subscription id (lower case) to its home tenant, asked of nobody. */
    subscriptionTenants?: Readonly<Record<string, string>>;
    /**
     * UNKNOWN_REQUESTER_APPROVALS: approvals a request needs while nobody knows who created its endpoint (the
     * self-approval rule cannot hold then); 2 when absent. A policy rule that asks for more still wins.
     */
    unknownRequesterApprovals?: number;
    portalUrl: string;
    publicBaseUrl: string;
    approverGroupIds: readonly string[];
    /** DASHBOARD_READER_GROUP_IDS: who may read requests (never decide) besides the approvers; none when absent. */
    readerGroupIds?: readonly string[];
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
    /** The home tenant of an endpoint's subscription; absent means no lookup: such origins are `unknown`. */
    tenants?: SubscriptionTenantLookup;
    requests: RequestStore;
    /** Why Approved connections are Approved, and which scopes have a baseline; absent turns bypass detection off. */
    marks?: ConnectionMarks;
    /** Where a sweep that ran out of time got to; absent, every run lists every scope whatever its budget. */
    sweepCheckpoints?: SweepCheckpoints;
    audit: AuditLog;
    /** Undefined when only the webhook is configured. */
    teams?: TeamsChannel;
    webhook?: WebhookChannel;
    /** Reads the channel for a card whose post went unanswered; undefined when the channel cannot be read. */
    channelCards?: ChannelCardFinder;
    directory: ApproverDirectory;
    /**
     * The approvers' Teams user ids, for the cards' `refresh.userIds`; undefined where the roster cannot be read (no
     * bot), and then cards name nobody there.
     */
    approverTeamsIds?: ApproverTeamsIds;
    applyQueue: ApplyQueue;
    /** Custom events for the milestones (the audit log feeds it); flushed at the end of each invocation. */
    telemetry: Telemetry;
    now(): Date;
    newId(): string;
    /**
     * The sweep's hook into the audit anchors (auditAnchor.ts): anchors every chain head whose anchor lags and appends
     * a digest of all chains. Undefined where nothing is anchored (the in-memory tests).
     */
    anchorAudit?: (now: Date) => Promise<{ anchored: number }>;
    /**
     * Resolves once the work the steps left running behind them has ended (the audit anchors and the dashboard's index
     * rows, written while the next call is on the way). Awaited at the end of every invocation, before the host may
     * freeze the process.
     */
    settle?: () => Promise<void>;
}

/** The card options every renderer shares. */
export function cardOptions(deps: WorkflowDeps) {
    return {
        portalUrl: deps.settings.portalUrl,
        publicBaseUrl: deps.settings.publicBaseUrl,
        ourTenantId: deps.settings.tenantId,
    };
}

import { randomBytes } from 'node:crypto';
import type { AccessToken, GetTokenOptions, TokenCredential } from '@azure/core-auth';
import { createArmPecProvider } from './arm';
import { getConfig, type Config } from './config';
import { armScope } from './arm/armCommon';
import { ManagedIdentityCredential } from './identity/managedIdentity';
import { ArmSubscriptionTenants } from './identity/subscriptionTenants';
import { ingestionScope, parseAuthenticationString, parseConnectionString } from './observability/connectionString';
import { currentTrace } from './observability/trace';
import { LazyTelemetry, noTelemetry, TrackedAuditLog, type Telemetry } from './observability/telemetry';
import { safeLogText, traceLabel } from './observability/trace';
import { StorageApplyQueue } from './storage/applyQueue';
import { TableAuditLog } from './storage/auditLog';
import { AnchoredAuditLog, anchorLagging, BlobAuditAnchors, type AnchorFailureSink } from './storage/auditAnchor';
import { TableConnectionMarks } from './storage/connectionMarks';
import { indexTableName } from './storage/requestIndex';
import { TableRequestStore } from './storage/requestStore';
import { TableSweepCheckpoints } from './storage/sweepCheckpoint';
import { lazy, openTable, storageTokenScope } from './storage/tables';
import type { BotTokenVerifier } from './teams/botAuth';
import { withApproverTeamsIds } from './teams/approverTeamsIds';
import { BotConnectorChannel, WorkflowsWebhookChannel } from './teams/botConnector';
import { GraphChannelCards } from './teams/channelCards';
import { GraphDirectory } from './teams/graphDirectory';
import type { WorkflowDeps } from './workflow/deps';

/**
 * The composition root: builds the real adapters from the validated settings, once per process. Nothing here runs at
 * import time, and @azure/identity is loaded on the first token request only, to keep cold start small.
 */

/** A 128-bit random request id, URL-safe. */
export function newRequestId(): string {
    return randomBytes(16).toString('base64url');
}

/**
 * The managed identity in Azure, through the endpoint the platform sets in IDENTITY_ENDPOINT and IDENTITY_HEADER (the
 * token emulator locally speaks the same protocol); a developer's Azure CLI login where there is none, through
 * DefaultAzureCredential, which is loaded only then.
 */
export function createCredential(config: Config): TokenCredential {
    if (config.IDENTITY_ENDPOINT && config.IDENTITY_HEADER) {
        return new ManagedIdentityCredential({
            endpoint: config.IDENTITY_ENDPOINT,
            secret: config.IDENTITY_HEADER,
            clientId: config.AZURE_CLIENT_ID,
            maxRetries: config.ARM_MAX_RETRIES,
            retryDelayInMs: config.ARM_RETRY_DELAY_MS,
        });
    }
    const load = lazy(async () => {
        const { DefaultAzureCredential } = await import('@azure/identity');
        return new DefaultAzureCredential({
            managedIdentityClientId: config.AZURE_CLIENT_ID,
            authorityHost: config.AZURE_AUTHORITY_HOST,
        });
    });
    return {
        getToken: async (scopes: string | string[], options?: GetTokenOptions): Promise<AccessToken | null> =>
            (await load()).getToken(scopes, options),
    };
}

export function createDeps(config: Config): WorkflowDeps {
    const credential = createCredential(config);
    const requestTable = lazy(() => openTable(config.storage, config.REQUESTS_TABLE, () => credential));
    const trail = new TableAuditLog(lazy(() => openTable(config.storage, config.AUDIT_TABLE, () => credential)));
    const anchors = new BlobAuditAnchors(config.storage, config.AUDIT_ANCHOR_CONTAINER, () => credential);
    const http = {
        maxRetries: config.ARM_MAX_RETRIES,
        retryDelayInMs: config.ARM_RETRY_DELAY_MS,
        timeoutMs: config.HTTP_TIMEOUT_MS,
    };
    const lroDeadlineMs = config.ARM_LRO_DEADLINE_SECONDS * 1000;
    const telemetry = createTelemetry(config, credential);
    // Anchored behind each step (a new PEC's card goes out while its first head is written); `settle` at the end of
    // every invocation (observe) waits for them and for the index rows.
    const anchored = new AnchoredAuditLog(trail, anchors, anchorFailureSink(telemetry), { background: true });
    // The dashboard's index rows likewise follow each request write instead of holding up the next step.
    const requests = new TableRequestStore(
        requestTable,
        undefined,
        lazy(() => openTable(config.storage, indexTableName(config.REQUESTS_TABLE), () => credential)),
        { indexBehind: true },
    );
    const directory = new GraphDirectory({ endpoint: config.GRAPH_ENDPOINT, credential });
    const tenants = new ArmSubscriptionTenants({ endpoint: config.ARM_ENDPOINT, ...http });
    prefetchTrustedTenants(tenants, config.TRUSTED_SUBSCRIPTION_IDS, config.SUBSCRIPTION_TENANTS);
    prefetchTokens(credential, [
        armScope(config.ARM_ENDPOINT),
        // Storage is the first call of nearly every invocation, and Graph answers every click (membership) and a new
        // card's approvers: their tokens are asked for while the app loads, not when the first call needs them.
        ...(config.storage.connectionString ? [] : [storageTokenScope]),
        directory.tokenScope,
        ...(config.TEAMS_CHANNEL_ID ? [config.BOT_TOKEN_SCOPE] : []),
        ...(telemetrySharesCredential(config) ? [ingestionScope] : []),
    ]);
    return {
        settings: {
            tenantId: config.AZURE_TENANT_ID,
            clientId: config.AZURE_CLIENT_ID,
            watchedSubscriptionIds: config.WATCHED_SUBSCRIPTION_IDS,
            watchedKinds: config.WATCHED_RESOURCE_KINDS,
            trustedSubscriptionIds: config.TRUSTED_SUBSCRIPTION_IDS,
            subscriptionTenants: config.SUBSCRIPTION_TENANTS,
            unknownRequesterApprovals: config.UNKNOWN_REQUESTER_APPROVALS,
            portalUrl: config.PORTAL_URL,
            publicBaseUrl: config.PUBLIC_BASE_URL,
            approverGroupIds: config.APPROVER_GROUP_IDS,
            readerGroupIds: config.DASHBOARD_READER_GROUP_IDS,
            allowSelfApproval: config.ALLOW_SELF_APPROVAL,
            linkTokenTtlHours: config.LINK_TOKEN_TTL_HOURS,
            lroDeadlineMs,
            reconcile: {
                reminderIntervalHours: config.REMINDER_INTERVAL_HOURS,
                reminderMaxCount: config.REMINDER_MAX_COUNT,
                expiryHours: config.EXPIRY_HOURS,
                expiryAction: config.EXPIRY_ACTION,
                expiryRejectText: config.EXPIRY_REJECT_TEXT,
                stuckApplyMinutes: config.STUCK_APPLY_MINUTES,
            },
            policy: config.policy,
        },
        arm: createArmPecProvider({
            endpoint: config.ARM_ENDPOINT,
            credential,
            ...http,
            lroDeadlineMs,
            // Oddities in ARM's answers (a body id pointing elsewhere, a connection listed twice): logged, not followed.
            warn: (message) => console.warn(`${traceLabel()} ${safeLogText(message)}`),
        }),
        tenants,
        requests,
        marks: new TableConnectionMarks(requestTable),
        sweepCheckpoints: new TableSweepCheckpoints(requestTable),
        audit: new TrackedAuditLog(anchored, telemetry),
        settle: async () => {
            await Promise.all([anchored.settled(), requests.settled()]);
        },
        // The heads this invocation anchors behind its steps are written before the sweep looks for lagging ones.
        anchorAudit: async (now) => {
            await anchored.settled();
            return anchorLagging(trail, anchors, now);
        },
        // The bot both posts the cards and reads the team's roster, for the approvers' ids in `refresh.userIds`.
        ...(config.TEAMS_CHANNEL_ID
            ? withApproverTeamsIds(
                  new BotConnectorChannel({
                      serviceUrl: config.TEAMS_SERVICE_URL,
                      tenantId: config.AZURE_TENANT_ID,
                      channelId: config.TEAMS_CHANNEL_ID,
                      ...(config.TEAMS_TEAM_ID ? { teamId: config.TEAMS_TEAM_ID } : {}),
                      credential,
                      tokenScope: config.BOT_TOKEN_SCOPE,
                      ...http,
                  }),
                  directory,
                  config.APPROVER_GROUP_IDS,
              )
            : {}),
        ...(config.WORKFLOWS_WEBHOOK_URL
            ? { webhook: new WorkflowsWebhookChannel(config.WORKFLOWS_WEBHOOK_URL, http) }
            : {}),
        directory,
        // A card whose post went unanswered is looked for in the channel (Graph, ChannelMessage.Read.Group by
        // resource-specific consent) before it is posted again; Graph names the team by its group id.
        ...(config.TEAMS_CHANNEL_ID && config.TEAMS_GROUP_ID
            ? {
                  channelCards: new GraphChannelCards(directory, {
                      groupId: config.TEAMS_GROUP_ID,
                      channelId: config.TEAMS_CHANNEL_ID,
                      botAppId: config.AZURE_CLIENT_ID,
                      serviceUrl: config.TEAMS_SERVICE_URL,
                  }),
              }
            : {}),
        applyQueue: new StorageApplyQueue(config.storage, () => credential),
        telemetry,
        now: () => new Date(),
        newId: newRequestId,
    };
}

/**
 * Asks the identity endpoint for the tokens a new process is about to need, all at once, while its first storage
 * read is on the way: otherwise each client fetches its own just before its first call, one after another, on the
 * cold path. Only the platform's endpoint (cheap, local, and cached per resource by ManagedIdentityCredential) is
 * asked ahead; a failure here is nobody's, since the client that needs the token asks again and reports it.
 */
function prefetchTokens(credential: TokenCredential, scopes: string[]): void {
    if (!(credential instanceof ManagedIdentityCredential)) {
        return;
    }
    for (const scope of scopes) {
        credential.getToken(scope).catch(() => undefined);
    }
}

/** The most trusted subscriptions whose tenants a new process asks ARM for ahead, one after another. */
export const maxPrefetchedTenants = 5;

/**
 * Asks ARM for the home tenants of the trusted subscriptions (those SUBSCRIPTION_TENANTS does not map) as a process
 * starts: judging an endpoint from a trusted subscription needs it (see workflow/origin.ts), and otherwise a new
 * process's first such event waits for it after ARM's listing, one more round trip on its path. The answer is cached
 * a day; a failure is not kept (`warm`), so the judgement that needs the tenant asks again and reports its own.
 */
function prefetchTrustedTenants(
    tenants: ArmSubscriptionTenants,
    trusted: readonly string[],
    mapped: Readonly<Record<string, string>> | undefined,
): void {
    // One after another, on one connection: the first also opens (and shakes hands on) the connection the event's ARM
    // reads then take from the pool, while the first storage read is on the way.
    let chain: Promise<unknown> = Promise.resolve();
    for (const subscriptionId of trusted.filter((id) => !mapped?.[id.toLowerCase()]).slice(0, maxPrefetchedTenants)) {
        chain = chain.then(() => tenants.warm(subscriptionId));
    }
}

/** Whether Application Insights takes its token from the app's own identity (see createTelemetry). */
function telemetrySharesCredential(config: Config): boolean {
    if (!config.APPLICATIONINSIGHTS_CONNECTION_STRING || !config.APPLICATIONINSIGHTS_AUTHENTICATION_STRING) {
        return false;
    }
    const auth = parseAuthenticationString(config.APPLICATIONINSIGHTS_AUTHENTICATION_STRING);
    return !!auth && (!auth.clientId || auth.clientId.toLowerCase() === config.AZURE_CLIENT_ID.toLowerCase());
}

/**
 * Application Insights custom events when a connection string is set. With `Authorization=AAD` the events carry a
 * token of the identity the authentication string names (the app's own identity unless it names another).
 */
export function createTelemetry(config: Config, credential: TokenCredential): Telemetry {
    const target = config.APPLICATIONINSIGHTS_CONNECTION_STRING
        ? parseConnectionString(config.APPLICATIONINSIGHTS_CONNECTION_STRING)
        : undefined;
    if (!target) {
        return noTelemetry;
    }
    const auth = config.APPLICATIONINSIGHTS_AUTHENTICATION_STRING
        ? parseAuthenticationString(config.APPLICATIONINSIGHTS_AUTHENTICATION_STRING)
        : undefined;
    const tokenCredential =
        auth?.clientId && auth.clientId.toLowerCase() !== config.AZURE_CLIENT_ID.toLowerCase()
            ? createCredential({ ...config, AZURE_CLIENT_ID: auth.clientId })
            : credential;
    return new LazyTelemetry(async () => {
        const { AppInsightsTelemetry } = await import('./observability/appInsights');
        return new AppInsightsTelemetry({
            ...target,
            ...(auth ? { credential: tokenCredential } : {}),
            cloudRole: config.WEBSITE_SITE_NAME ?? 'pec-gate',
            maxRetries: Math.min(config.ARM_MAX_RETRIES, 2),
            retryDelayInMs: config.ARM_RETRY_DELAY_MS,
        });
    });
}

let deps: WorkflowDeps | undefined;

/** The process-wide dependencies; the first call validates every setting and fails with a message naming the bad ones. */
export function getDeps(): WorkflowDeps {
    deps ??= createDeps(getConfig());
    return deps;
}

/**
 * A failed anchor write (already retried) is an alert, never swallowed: an ALERT line for the alert rules and a custom
 * event carrying the head, so App Insights holds the hash the anchor store missed. The sweep anchors it again.
 */
function anchorFailureSink(telemetry: Telemetry): AnchorFailureSink {
    return (head, error) => {
        console.error(
            `ALERT audit anchor for request ${head.requestId} entry ${head.seq} failed (the sweep retries it): ${error.message}`,
        );
        telemetry.trackEvent({
            name: 'PecAuditAnchorFailed',
            time: new Date(),
            properties: {
                requestId: head.requestId,
                correlationId: currentTrace().correlationId ?? '',
                auditSeq: String(head.seq),
                auditHash: head.hash,
                error: error.message.slice(0, 500),
            },
            trace: { ...currentTrace(), requestId: head.requestId },
        });
    };
}

let botVerifier: Promise<BotTokenVerifier> | undefined;

/**
 * The Bot Framework token check of `/api/messages`, with its key cache kept for the life of the process. jose is loaded
 * here, on the first message, not by the functions that never see one.
 */
export function getBotTokenVerifier(): Promise<BotTokenVerifier> {
    const config = getConfig();
    botVerifier ??= import('./teams/botAuth').then(
        ({ BotTokenVerifier }) =>
            new BotTokenVerifier({
                openIdMetadataUrl: config.BOT_OPENID_METADATA_URL,
                issuer: config.BOT_TOKEN_ISSUER,
                audience: config.AZURE_CLIENT_ID,
                // A single-tenant bot's tokens may come from our tenant itself; the cloud is the authority's.
                tenant: { tenantId: config.AZURE_TENANT_ID, authorityHost: config.AZURE_AUTHORITY_HOST },
            }),
    );
    return botVerifier;
}

/** The dependencies if something in this process already built them; never validates settings itself. */
export function peekDeps(): WorkflowDeps | undefined {
    return deps;
}

export function resetDeps(): void {
    deps = undefined;
    botVerifier = undefined;
}

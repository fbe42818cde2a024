import './workflow/validation';
import { readFileSync } from 'node:fs';
import * as z from 'zod';
import { ConfigError } from './domain/errors';
import type { Policy } from './domain/policy';
import { expiryActions } from './domain/reconcile';
import { isServerKind, serverKinds, type ServerKind } from './domain/ids';
import { defaultWatchedKinds } from './domain/resourceKinds';
import { parseAuthenticationString, parseConnectionString } from './observability/connectionString';
import { loadPolicy, PolicyConfigError } from './policy/policyConfig';

/**
 * Every setting the app reads, validated once at start-up. A missing or malformed setting stops the app with a message
 * that names it and says what is expected, instead of failing later on the first event. Endpoints are settings so that
 * sovereign clouds and the local emulators work through the same code path as Azure public cloud.
 */

const guidPattern = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
/** A Teams conversation id of a team or channel: `19:…@thread.tacv2` (older teams: `@thread.skype`). */
const threadIdPattern = /^19:[^\s@]+@thread\.(tacv2|skype)$/i;

const guid = (what: string) =>
    z
        .string({ error: `required: ${what} (a GUID)` })
        .trim()
        .regex(guidPattern, `expected ${what} as a GUID`);

const guidList = (what: string, options: { required: boolean }) =>
    z
        .string({ error: `required: comma-separated ${what} (GUIDs)` })
        .optional()
        .transform((value, ctx) => {
            const items = (value ?? '')
                .split(/[,;\s]+/)
                .map((s) => s.trim())
                .filter(Boolean);
            const bad = items.filter((s) => !guidPattern.test(s));
            if (bad.length > 0) {
                ctx.addIssue({
                    code: 'custom',
                    message: `expected comma-separated ${what} (GUIDs); bad: ${bad.join(', ')}`,
                });
            } else if (options.required && items.length === 0) {
                ctx.addIssue({ code: 'custom', message: `required: at least one of ${what} (GUIDs, comma-separated)` });
            }
            return [...new Set(items.map((s) => s.toLowerCase()))];
        });

/**
 * `subId=tenantId,…`: the home tenant of subscriptions the app should not look up (or cannot: a sovereign cloud's
 * endpoint policy, a test). A subscription listed twice with two tenants is refused: which one would be meant?
 */
const subscriptionTenantMap = () =>
    z
        .string()
        .optional()
        .transform((value, ctx) => {
            const map: Record<string, string> = {};
            const items = (value ?? '')
                .split(/[,;\s]+/)
                .map((s) => s.trim())
                .filter(Boolean);
            for (const item of items) {
                const [sub = '', tenant = '', ...rest] = item.split('=').map((s) => s.trim());
                if (rest.length > 0 || !guidPattern.test(sub) || !guidPattern.test(tenant)) {
                    ctx.addIssue({
                        code: 'custom',
                        message: `expected comma-separated subscriptionId=tenantId pairs (GUIDs); bad: ${item}`,
                    });
                    continue;
                }
                const key = sub.toLowerCase();
                if (map[key] !== undefined && map[key] !== tenant.toLowerCase()) {
                    ctx.addIssue({ code: 'custom', message: `subscription ${sub} is mapped to two tenants` });
                }
                map[key] = tenant.toLowerCase();
            }
            return map;
        });

const httpsUrl = (fallback?: string) => {
    const base = z
        .string()
        .trim()
        .refine((value) => {
            try {
                return new URL(value).protocol === 'https:';
            } catch {
                return false;
            }
        }, 'expected an absolute https:// URL');
    return fallback === undefined ? base : base.default(fallback);
};

const positiveInt = (fallback: number, max: number) =>
    z.coerce
        .number({ error: 'expected a whole number' })
        .int('expected a whole number')
        .min(0, 'expected 0 or more')
        .max(max, `expected at most ${max}`)
        .default(fallback);

const bool = (fallback: boolean) =>
    z
        .string()
        .trim()
        .toLowerCase()
        .refine((v) => ['true', 'false', '1', '0', 'yes', 'no'].includes(v), 'expected true or false')
        .transform((v) => ['true', '1', 'yes'].includes(v))
        .default(fallback);

/**
 * A Functions timer schedule: six NCRONTAB fields (second minute hour day month day-of-week). Only the shape is checked
 * here, so a typo or a missing setting is reported with this setting's name, not only as a host error about a binding.
 */
const ncrontab = () =>
    z
        .string({
            error: 'required: an NCRONTAB schedule for the sweep, e.g. "0 */15 * * * *" (the host reads it too)',
        })
        .trim()
        .refine(
            (v) => /^(\S+\s+){5}\S+$/.test(v) && v.split(/\s+/).every((f) => /^[0-9*/,\-A-Za-z]+$/.test(f)),
            'expected an NCRONTAB schedule of six fields: second minute hour day month day-of-week, e.g. "0 */15 * * * *"',
        );

const tableName = (fallback: string) =>
    z
        .string()
        .trim()
        .regex(/^[A-Za-z][A-Za-z0-9]{2,62}$/, 'expected a table name: 3-63 letters and digits, starting with a letter')
        .default(fallback);

/**
 * The resource kinds the gate watches: kind ids from the registry (src/domain/resourceKinds.ts), comma-separated. An
 * unknown id stops the app, naming the setting and listing the known ids: a typo must not silently leave a kind
 * unguarded.
 */
const kindList = () =>
    z
        .string()
        .optional()
        .transform((value, ctx): ServerKind[] => {
            const items = (value ?? '')
                .split(/[,;\s]+/)
                .map((s) => s.trim().toLowerCase())
                .filter(Boolean);
            if (items.length === 0) {
                return [...defaultWatchedKinds];
            }
            const bad = items.filter((s) => !isServerKind(s));
            if (bad.length > 0) {
                ctx.addIssue({
                    code: 'custom',
                    message: `unknown resource kind${bad.length === 1 ? '' : 's'} ${bad.map((b) => `"${b}"`).join(', ')}; known kinds: ${serverKinds.join(', ')}`,
                });
            }
            return [...new Set(items.filter(isServerKind))];
        });

const schema = z.object({
    WATCHED_SUBSCRIPTION_IDS: guidList('subscription ids', { required: true }),
    TRUSTED_SUBSCRIPTION_IDS: guidList('subscription ids', { required: false }),
    SUBSCRIPTION_TENANTS: subscriptionTenantMap(),
    UNKNOWN_REQUESTER_APPROVALS: positiveInt(2, 5).refine(
        (v) => v >= 1,
        'expected 1 to 5: the approvals a request with no known requester needs (2 means a second approver)',
    ),
    WATCHED_RESOURCE_KINDS: kindList(),
    AZURE_TENANT_ID: guid('tenant id'),
    AZURE_CLIENT_ID: guid('client id of the user-assigned managed identity'),
    ARM_ENDPOINT: httpsUrl('https://management.azure.com'),
    GRAPH_ENDPOINT: httpsUrl('https://graph.microsoft.com'),
    BOT_OPENID_METADATA_URL: httpsUrl('https://login.botframework.com/v1/.well-known/openidconfiguration'),
    // The issuer of the Bot Connector's tokens is the cloud's, like the metadata URL: api.botframework.us in US Gov.
    BOT_TOKEN_ISSUER: httpsUrl('https://api.botframework.com'),
    BOT_TOKEN_SCOPE: z.string().trim().min(1).default('https://api.botframework.com/.default'),
    TEAMS_SERVICE_URL: httpsUrl('https://smba.trafficmanager.net/teams/'),
    // A team has two ids: the Bot Connector names it by its General channel's thread id (the roster), Graph by its
    // Microsoft 365 group id (the channel's messages). Each call takes only its own, so each has its own setting.
    TEAMS_TEAM_ID: z
        .string()
        .trim()
        .regex(
            threadIdPattern,
            "expected the team's thread id (19:…@thread.tacv2, in the team's link before /conversations); its group id (a GUID) goes in TEAMS_GROUP_ID",
        )
        .optional(),
    TEAMS_GROUP_ID: guid("the team's Microsoft 365 group id (groupId= in the team's link)").optional(),
    TEAMS_CHANNEL_ID: z
        .string()
        .trim()
        .regex(threadIdPattern, 'expected the channel id (19:…@thread.tacv2)')
        .optional(),
    WORKFLOWS_WEBHOOK_URL: httpsUrl().optional(),
    APPROVER_GROUP_IDS: guidList('Entra group ids', { required: true }),
    // Who may read the dashboard besides the approvers (security team, auditors); they can never decide.
    DASHBOARD_READER_GROUP_IDS: guidList('Entra group ids', { required: false }),
    PUBLIC_BASE_URL: httpsUrl(),
    PORTAL_URL: httpsUrl('https://portal.azure.com'),
    AZURE_AUTHORITY_HOST: httpsUrl('https://login.microsoftonline.com'),
    ARM_MAX_RETRIES: positiveInt(4, 10),
    ARM_RETRY_DELAY_MS: positiveInt(1000, 60_000),
    ARM_LRO_DEADLINE_SECONDS: positiveInt(120, 3600),
    HTTP_TIMEOUT_MS: positiveInt(30_000, 300_000).refine(
        (v) => v >= 100,
        'expected at least 100 (milliseconds): a try bounded tighter than a round trip never succeeds',
    ),
    REQUESTS_TABLE: tableName('pecrequests'),
    AUDIT_TABLE: tableName('pecaudit'),
    // The append-only (WORM) container the audit chains are anchored in; same storage account as the tables.
    AUDIT_ANCHOR_CONTAINER: z
        .string()
        .trim()
        .regex(
            /^(?=.{3,63}$)[a-z0-9]+(-[a-z0-9]+)*$/,
            'expected a blob container name (3-63 lower-case letters, digits and single hyphens)',
        )
        .default('pecauditanchors'),
    ALLOW_SELF_APPROVAL: bool(false),
    LINK_TOKEN_TTL_HOURS: positiveInt(168, 24 * 90),
    DEV_TRUST_CLIENT_PRINCIPAL: bool(false),
    WEBSITE_AUTH_ENABLED: bool(false),
    WEBSITE_SITE_NAME: z.string().trim().optional(),
    // Set by App Service and Functions for an app with a managed identity; the credential uses them when present.
    IDENTITY_ENDPOINT: z
        .string()
        .trim()
        .refine((v) => /^https?:\/\/[^\s]+$/i.test(v) && URL.canParse(v), 'expected the identity endpoint URL')
        .optional(),
    IDENTITY_HEADER: z.string().trim().min(1).optional(),
    // Read by the host too (its own request and trace telemetry); the app adds custom events for each milestone.
    APPLICATIONINSIGHTS_CONNECTION_STRING: z
        .string()
        .trim()
        .refine(
            (v) => parseConnectionString(v) !== undefined,
            'expected an Application Insights connection string (InstrumentationKey=…;IngestionEndpoint=https://…)',
        )
        .optional(),
    APPLICATIONINSIGHTS_AUTHENTICATION_STRING: z
        .string()
        .trim()
        .refine(
            (v) => parseAuthenticationString(v) !== undefined,
            'expected Authorization=AAD (with ClientId=<managed identity client id> for a user-assigned identity)',
        )
        .optional(),
    // No default: the Functions host resolves %SWEEP_SCHEDULE% itself and cannot index the timer without the setting.
    SWEEP_SCHEDULE: ncrontab(),
    REMINDER_INTERVAL_HOURS: positiveInt(24, 24 * 30),
    REMINDER_MAX_COUNT: positiveInt(3, 20),
    EXPIRY_HOURS: positiveInt(168, 24 * 90),
    EXPIRY_ACTION: z
        .string()
        .trim()
        .toLowerCase()
        .pipe(z.enum(expiryActions, { error: 'expected leave or reject' }))
        .default('leave'),
    EXPIRY_REJECT_TEXT: z
        .string()
        .trim()
        .max(500, 'expected at most 500 characters (it becomes the connection description)')
        .default('No approver decided in time. Create a new private endpoint connection to ask again.'),
    STUCK_APPLY_MINUTES: positiveInt(30, 24 * 60).refine((v) => v >= 1, 'expected 1 or more'),
});

export interface StorageSettings {
    /** A connection string (Azurite locally), or undefined for identity-based access. */
    connectionString?: string;
    tableServiceUri?: string;
    queueServiceUri?: string;
    /** For the audit anchors (AUDIT_ANCHOR_CONTAINER): `__blobServiceUri`, or derived from `__accountName`. */
    blobServiceUri?: string;
    /** Bound on each try of a storage request (HTTP_TIMEOUT_MS); the clients' defaults when absent. */
    timeoutMs?: number;
    /** Retries of a throttled, failed or timed-out request (ARM_MAX_RETRIES, ARM_RETRY_DELAY_MS). */
    maxRetries?: number;
    retryDelayInMs?: number;
}

export type Config = Omit<
    z.output<typeof schema>,
    | 'TEAMS_TEAM_ID'
    | 'TEAMS_GROUP_ID'
    | 'TEAMS_CHANNEL_ID'
    | 'WORKFLOWS_WEBHOOK_URL'
    | 'WEBSITE_SITE_NAME'
    | 'IDENTITY_ENDPOINT'
    | 'IDENTITY_HEADER'
    | 'APPLICATIONINSIGHTS_CONNECTION_STRING'
    | 'APPLICATIONINSIGHTS_AUTHENTICATION_STRING'
> & {
    WEBSITE_SITE_NAME?: string;
    IDENTITY_ENDPOINT?: string;
    IDENTITY_HEADER?: string;
    APPLICATIONINSIGHTS_CONNECTION_STRING?: string;
    APPLICATIONINSIGHTS_AUTHENTICATION_STRING?: string;
    TEAMS_TEAM_ID?: string;
    TEAMS_GROUP_ID?: string;
    TEAMS_CHANNEL_ID?: string;
    WORKFLOWS_WEBHOOK_URL?: string;
    storage: StorageSettings;
    /** From POLICY or POLICY_FILE; no rules when neither is set (every request needs one manual approval). */
    policy: Policy;
};

/**
 * Storage follows the Functions host's own conventions: `AzureWebJobsStorage` as a connection string, or the
 * identity-based `AzureWebJobsStorage__accountName` (or `__tableServiceUri` and `__queueServiceUri`).
 */
function readStorage(env: NodeJS.ProcessEnv, problems: string[]): StorageSettings {
    const connectionString = env.AzureWebJobsStorage?.trim();
    if (connectionString) {
        if (
            connectionString !== 'UseDevelopmentStorage=true' &&
            !/AccountName=|TableEndpoint=/i.test(connectionString)
        ) {
            problems.push(
                'AzureWebJobsStorage: expected a storage connection string (or UseDevelopmentStorage=true for Azurite)',
            );
        }
        return { connectionString };
    }
    const account = env.AzureWebJobsStorage__accountName?.trim();
    const tableServiceUri = env.AzureWebJobsStorage__tableServiceUri?.trim();
    const queueServiceUri = env.AzureWebJobsStorage__queueServiceUri?.trim();
    const blobServiceUri = env.AzureWebJobsStorage__blobServiceUri?.trim();
    if (account) {
        if (!/^[a-z0-9]{3,24}$/.test(account)) {
            problems.push(
                'AzureWebJobsStorage__accountName: expected a storage account name (3-24 lower-case letters and digits)',
            );
        }
        return {
            tableServiceUri: tableServiceUri ?? `https://${account}.table.core.windows.net`,
            queueServiceUri: queueServiceUri ?? `https://${account}.queue.core.windows.net`,
            blobServiceUri: blobServiceUri ?? `https://${account}.blob.core.windows.net`,
        };
    }
    if (tableServiceUri && queueServiceUri) {
        if (!blobServiceUri) {
            problems.push(
                'AzureWebJobsStorage__blobServiceUri: required with __tableServiceUri and __queueServiceUri (the audit anchors are blobs)',
            );
        }
        return { tableServiceUri, queueServiceUri, ...(blobServiceUri ? { blobServiceUri } : {}) };
    }
    problems.push(
        'AzureWebJobsStorage: required: a connection string, or AzureWebJobsStorage__accountName for identity-based access',
    );
    return {};
}

/** Reads POLICY_FILE (a relative path resolves against the working directory, the app root under the host). */
export function readPolicyFile(path: string): string {
    return readFileSync(path, 'utf8');
}

export function loadConfig(
    env: NodeJS.ProcessEnv = process.env,
    readFile: (path: string) => string = readPolicyFile,
): Config {
    const problems: string[] = [];
    const input: Record<string, string | undefined> = {};
    for (const key of Object.keys(schema.shape)) {
        const value = env[key];
        // An empty setting in local.settings.json means "not set": let the default or the "required" message apply.
        input[key] = value === undefined || value.trim() === '' ? undefined : value;
    }
    const parsed = schema.safeParse(input);
    if (!parsed.success) {
        for (const issue of parsed.error.issues) {
            const name = String(issue.path[0] ?? '(settings)');
            const message = input[name] === undefined && issue.code === 'invalid_type' ? 'required' : issue.message;
            problems.push(`${name}: ${message}`);
        }
    }
    const storage = readStorage(env, problems);
    if (parsed.success && !parsed.data.TEAMS_CHANNEL_ID && !parsed.data.WORKFLOWS_WEBHOOK_URL) {
        problems.push(
            'TEAMS_CHANNEL_ID: required: the Teams channel that receives approval cards (or set WORKFLOWS_WEBHOOK_URL)',
        );
    }
    if (parsed.success && parsed.data.DEV_TRUST_CLIENT_PRINCIPAL && parsed.data.WEBSITE_SITE_NAME) {
        // The stand-in trusts a header anyone can send; in Azure only the platform's Easy Auth may vouch for a user.
        problems.push(
            'DEV_TRUST_CLIENT_PRINCIPAL: must not be set in Azure (WEBSITE_SITE_NAME is set); turn on App Service Authentication instead',
        );
    }
    let policy: Policy = { rules: [] };
    try {
        policy = loadPolicy({ POLICY: env.POLICY, POLICY_FILE: env.POLICY_FILE }, readFile) ?? policy;
    } catch (err) {
        if (!(err instanceof PolicyConfigError)) {
            throw err;
        }
        problems.push(...err.problems);
    }
    if (problems.length > 0 || !parsed.success) {
        throw new ConfigError(`Invalid settings:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    }
    const { HTTP_TIMEOUT_MS, ARM_MAX_RETRIES, ARM_RETRY_DELAY_MS } = parsed.data;
    // Storage gets the same bounds as the other services: the SDKs' own defaults wait forever for an answer, and the
    // queue's back off for seconds (4 s, then 12 s) where a click is waiting for its card.
    return {
        ...parsed.data,
        storage: {
            ...storage,
            timeoutMs: HTTP_TIMEOUT_MS,
            maxRetries: ARM_MAX_RETRIES,
            retryDelayInMs: ARM_RETRY_DELAY_MS,
        },
        policy,
    };
}

let cached: Config | undefined;

/** The validated settings of this process, read on first use. */
export function getConfig(): Config {
    cached ??= loadConfig();
    return cached;
}

/** For tests and the demo, which change settings between runs in one process. */
export function resetConfig(): void {
    cached = undefined;
}

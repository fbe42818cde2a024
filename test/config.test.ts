import { loadConfig } from '../src/config';
import { ConfigError } from '../src/domain/errors';

const valid = {
    WATCHED_SUBSCRIPTION_IDS: '0b1c2d3e-aaaa-4bbb-8ccc-000000000001, 0B1C2D3E-AAAA-4BBB-8CCC-000000000002',
    TRUSTED_SUBSCRIPTION_IDS: '0b1c2d3e-aaaa-4bbb-8ccc-000000000001',
    AZURE_TENANT_ID: '72f988bf-86f1-41af-91ab-2d7cd011db47',
    AZURE_CLIENT_ID: '5e1f0c2a-1111-4222-8333-444455556666',
    TEAMS_TEAM_ID: '19:abc@thread.tacv2',
    TEAMS_CHANNEL_ID: '19:def@thread.tacv2',
    APPROVER_GROUP_IDS: 'a9a9a9a9-0000-4000-8000-000000000001',
    PUBLIC_BASE_URL: 'https://pec-gate.azurewebsites.net',
    AzureWebJobsStorage: 'UseDevelopmentStorage=true',
    SWEEP_SCHEDULE: '0 */15 * * * *',
};

function errorOf(env: Record<string, string | undefined>): string {
    try {
        loadConfig(env);
    } catch (err) {
        expect(err).toBeInstanceOf(ConfigError);
        return (err as Error).message;
    }
    throw new Error('expected a ConfigError');
}

describe('web page settings', () => {
    it('refuses the local Easy Auth stand-in on an app running in Azure, naming the setting', () => {
        expect(loadConfig({ ...valid, DEV_TRUST_CLIENT_PRINCIPAL: 'true' }).DEV_TRUST_CLIENT_PRINCIPAL).toBe(true);
        expect(errorOf({ ...valid, DEV_TRUST_CLIENT_PRINCIPAL: 'true', WEBSITE_SITE_NAME: 'pec-gate' })).toMatch(
            /DEV_TRUST_CLIENT_PRINCIPAL: must not be set in Azure/,
        );
    });

    it('validates the link lifetime', () => {
        expect(loadConfig({ ...valid, LINK_TOKEN_TTL_HOURS: '24' }).LINK_TOKEN_TTL_HOURS).toBe(24);
        expect(errorOf({ ...valid, LINK_TOKEN_TTL_HOURS: 'a week' })).toMatch(
            /LINK_TOKEN_TTL_HOURS: expected a whole number/,
        );
        expect(errorOf({ ...valid, LINK_TOKEN_TTL_HOURS: '5000' })).toMatch(
            /LINK_TOKEN_TTL_HOURS: expected at most 2160/,
        );
    });
});

describe('watched resource kinds', () => {
    it('watches the four database kinds by default, so an upgrade changes nothing', () => {
        expect(loadConfig(valid).WATCHED_RESOURCE_KINDS).toEqual([
            'postgres-single',
            'postgres-flexible',
            'mysql-single',
            'mysql-flexible',
        ]);
        expect(loadConfig({ ...valid, WATCHED_RESOURCE_KINDS: ' ' }).WATCHED_RESOURCE_KINDS).toHaveLength(4);
    });

    it('reads a list of kind ids, ignoring case, spaces and repeats', () => {
        const config = loadConfig({
            ...valid,
            WATCHED_RESOURCE_KINDS: 'Key-Vault, sql-server;storage-account key-vault',
        });
        expect(config.WATCHED_RESOURCE_KINDS).toEqual(['key-vault', 'sql-server', 'storage-account']);
    });

    it('refuses an unknown kind at start-up, naming the setting and the known kinds', () => {
        const message = errorOf({ ...valid, WATCHED_RESOURCE_KINDS: 'sql-server,keyvault,Microsoft.Web/sites' });
        expect(message).toContain(
            'WATCHED_RESOURCE_KINDS: unknown resource kinds "keyvault", "microsoft.web/sites"; known kinds: postgres-single, mysql-single, postgres-flexible, mysql-flexible, sql-server, storage-account, key-vault,',
        );
        expect(message).toMatch(/known kinds: .*\bredis\b/);
    });
});

describe('settings', () => {
    it('reads a valid configuration with the documented defaults', () => {
        const config = loadConfig(valid);
        expect(config.WATCHED_SUBSCRIPTION_IDS).toEqual([
            '0b1c2d3e-aaaa-4bbb-8ccc-000000000001',
            '0b1c2d3e-aaaa-4bbb-8ccc-000000000002',
        ]);
        expect(config.ARM_ENDPOINT).toBe('https://management.azure.com');
        expect(config.GRAPH_ENDPOINT).toBe('https://graph.microsoft.com');
        expect(config.BOT_OPENID_METADATA_URL).toBe(
            'https://login.botframework.com/v1/.well-known/openidconfiguration',
        );
        expect(config.TEAMS_SERVICE_URL).toBe('https://smba.trafficmanager.net/teams/');
        expect(config.BOT_TOKEN_ISSUER).toBe('https://api.botframework.com');
        expect(loadConfig({ ...valid, BOT_TOKEN_ISSUER: 'https://api.botframework.us' }).BOT_TOKEN_ISSUER).toBe(
            'https://api.botframework.us',
        );
        expect(errorOf({ ...valid, BOT_TOKEN_ISSUER: 'http://api.botframework.com' })).toMatch(/BOT_TOKEN_ISSUER/);
        expect(config.ALLOW_SELF_APPROVAL).toBe(false);
        expect(config.LINK_TOKEN_TTL_HOURS).toBe(168);
        expect(config.DEV_TRUST_CLIENT_PRINCIPAL).toBe(false);
        // Optional: without it only the approvers can read the dashboard.
        expect(config.DASHBOARD_READER_GROUP_IDS).toEqual([]);
        expect(
            loadConfig({ ...valid, DASHBOARD_READER_GROUP_IDS: ' 5EC0A1D1-0000-4000-8000-00000000CAFE, ' })
                .DASHBOARD_READER_GROUP_IDS,
        ).toEqual(['5ec0a1d1-0000-4000-8000-00000000cafe']);
        expect(config.HTTP_TIMEOUT_MS).toBe(30_000);
        // Storage is bounded and retried like the other services.
        expect(config.storage).toEqual({
            connectionString: 'UseDevelopmentStorage=true',
            timeoutMs: 30_000,
            maxRetries: 4,
            retryDelayInMs: 1000,
        });
    });

    it.each([
        ['WATCHED_SUBSCRIPTION_IDS', undefined, /WATCHED_SUBSCRIPTION_IDS: required/],
        [
            'WATCHED_SUBSCRIPTION_IDS',
            'prod-sub',
            /WATCHED_SUBSCRIPTION_IDS: expected comma-separated subscription ids \(GUIDs\); bad: prod-sub/,
        ],
        ['AZURE_TENANT_ID', undefined, /AZURE_TENANT_ID: required/],
        ['AZURE_CLIENT_ID', 'my-identity', /AZURE_CLIENT_ID: expected client id .* as a GUID/],
        ['APPROVER_GROUP_IDS', '', /APPROVER_GROUP_IDS: required/],
        [
            'DASHBOARD_READER_GROUP_IDS',
            'security-team',
            /DASHBOARD_READER_GROUP_IDS: expected comma-separated Entra group ids \(GUIDs\); bad: security-team/,
        ],
        ['PUBLIC_BASE_URL', 'http://insecure.example', /PUBLIC_BASE_URL: expected an absolute https:\/\/ URL/],
        ['ARM_ENDPOINT', 'management.azure.com', /ARM_ENDPOINT: expected an absolute https:\/\/ URL/],
        ['ARM_MAX_RETRIES', 'lots', /ARM_MAX_RETRIES: expected a whole number/],
        ['HTTP_TIMEOUT_MS', '50', /HTTP_TIMEOUT_MS: expected at least 100 \(milliseconds\)/],
        ['HTTP_TIMEOUT_MS', '600000', /HTTP_TIMEOUT_MS: expected at most 300000/],
        ['HTTP_TIMEOUT_MS', '2s', /HTTP_TIMEOUT_MS: expected a whole number/],
        ['ALLOW_SELF_APPROVAL', 'maybe', /ALLOW_SELF_APPROVAL: expected true or false/],
        ['REQUESTS_TABLE', 'bad-name', /REQUESTS_TABLE: expected a table name/],
        ['AzureWebJobsStorage', undefined, /AzureWebJobsStorage: required/],
        ['AzureWebJobsStorage', 'nonsense', /AzureWebJobsStorage: expected a storage connection string/],
    ])('names %s when it is %p', (name, value, message) => {
        expect(errorOf({ ...valid, [name]: value })).toMatch(message);
    });

    it('lists every problem at once', () => {
        const message = errorOf({});
        for (const name of [
            'WATCHED_SUBSCRIPTION_IDS',
            'AZURE_TENANT_ID',
            'AZURE_CLIENT_ID',
            'APPROVER_GROUP_IDS',
            'PUBLIC_BASE_URL',
            'AzureWebJobsStorage',
        ]) {
            expect(message).toContain(name);
        }
    });

    it('needs somewhere to post cards', () => {
        expect(errorOf({ ...valid, TEAMS_CHANNEL_ID: undefined })).toMatch(/TEAMS_CHANNEL_ID: required/);
        expect(() =>
            loadConfig({
                ...valid,
                TEAMS_CHANNEL_ID: '',
                WORKFLOWS_WEBHOOK_URL: 'https://prod.westeurope.logic.azure.com/x',
            }),
        ).not.toThrow();
    });

    it("takes each of a team's two ids in its own setting, refusing one in the other's place", () => {
        const group = '7e4a0c1d-2b3f-4c5d-8e9f-0a1b2c3d4e5f';
        expect(loadConfig({ ...valid, TEAMS_GROUP_ID: group })).toMatchObject({
            TEAMS_TEAM_ID: '19:abc@thread.tacv2',
            TEAMS_GROUP_ID: group,
        });
        // The Bot Connector's roster needs the thread id; Graph answers a thread id with 400: a GUID belongs there.
        expect(errorOf({ ...valid, TEAMS_TEAM_ID: group })).toMatch(/TEAMS_TEAM_ID: .*thread id.*TEAMS_GROUP_ID/);
        expect(errorOf({ ...valid, TEAMS_GROUP_ID: '19:abc@thread.tacv2' })).toMatch(/TEAMS_GROUP_ID: .*GUID/);
        expect(errorOf({ ...valid, TEAMS_CHANNEL_ID: 'approvals' })).toMatch(
            /TEAMS_CHANNEL_ID: expected the channel id/,
        );
        expect(loadConfig({ ...valid, TEAMS_CHANNEL_ID: '19:old@thread.skype' }).TEAMS_CHANNEL_ID).toBe(
            '19:old@thread.skype',
        );
    });

    it('supports identity-based storage like the Functions host', () => {
        const config = loadConfig({
            ...valid,
            AzureWebJobsStorage: undefined,
            AzureWebJobsStorage__accountName: 'stpecgate',
        });
        expect(config.storage).toMatchObject({
            tableServiceUri: 'https://stpecgate.table.core.windows.net',
            queueServiceUri: 'https://stpecgate.queue.core.windows.net',
        });
        expect(config.storage.connectionString).toBeUndefined();
        expect(
            errorOf({ ...valid, AzureWebJobsStorage: undefined, AzureWebJobsStorage__accountName: 'Bad_Name' }),
        ).toMatch(/AzureWebJobsStorage__accountName/);
    });

    it('accepts sovereign-cloud endpoints', () => {
        const config = loadConfig({
            ...valid,
            ARM_ENDPOINT: 'https://management.usgovcloudapi.net/',
            PORTAL_URL: 'https://portal.azure.us',
        });
        expect(config.ARM_ENDPOINT).toBe('https://management.usgovcloudapi.net/');
    });
});

describe('reconcile settings', () => {
    it('has documented defaults', () => {
        const config = loadConfig(valid);
        expect(config).toMatchObject({
            SWEEP_SCHEDULE: '0 */15 * * * *',
            REMINDER_INTERVAL_HOURS: 24,
            REMINDER_MAX_COUNT: 3,
            EXPIRY_HOURS: 168,
            EXPIRY_ACTION: 'leave',
            STUCK_APPLY_MINUTES: 30,
        });
        expect(config.EXPIRY_REJECT_TEXT).toMatch(/No approver decided in time/);
        expect(config.policy).toEqual({ rules: [] });
    });

    it('reads each setting', () => {
        const config = loadConfig({
            ...valid,
            SWEEP_SCHEDULE: '0 0 * * * *',
            REMINDER_INTERVAL_HOURS: '4',
            REMINDER_MAX_COUNT: '0',
            EXPIRY_HOURS: '72',
            EXPIRY_ACTION: 'Reject',
            EXPIRY_REJECT_TEXT: 'Too late',
            STUCK_APPLY_MINUTES: '10',
        });
        expect(config).toMatchObject({
            SWEEP_SCHEDULE: '0 0 * * * *',
            REMINDER_INTERVAL_HOURS: 4,
            REMINDER_MAX_COUNT: 0,
            EXPIRY_HOURS: 72,
            EXPIRY_ACTION: 'reject',
            EXPIRY_REJECT_TEXT: 'Too late',
            STUCK_APPLY_MINUTES: 10,
        });
    });

    it('names each bad setting', () => {
        const message = errorOf({
            ...valid,
            SWEEP_SCHEDULE: '*/15 * * * *',
            REMINDER_MAX_COUNT: 'lots',
            EXPIRY_ACTION: 'approve',
            EXPIRY_REJECT_TEXT: 'x'.repeat(501),
            STUCK_APPLY_MINUTES: '0',
        });
        expect(message).toMatch(/SWEEP_SCHEDULE: expected an NCRONTAB schedule of six fields/);
        expect(message).toMatch(/REMINDER_MAX_COUNT: expected a whole number/);
        expect(message).toMatch(/EXPIRY_ACTION: expected leave or reject/);
        expect(message).toMatch(/EXPIRY_REJECT_TEXT: expected at most 500 characters/);
        expect(message).toMatch(/STUCK_APPLY_MINUTES: expected 1 or more/);
        expect(errorOf({ ...valid, SWEEP_SCHEDULE: undefined })).toMatch(/SWEEP_SCHEDULE: required/);
    });
});

describe('policy setting', () => {
    const policy = JSON.stringify({
        rules: [
            { id: 'prod', match: { tags: { environment: 'prod' } }, action: { type: 'requireApprovals', count: 2 } },
        ],
    });

    it('reads POLICY, or POLICY_FILE through the reader', () => {
        expect(loadConfig({ ...valid, POLICY: policy }).policy.rules[0]?.id).toBe('prod');
        const read: string[] = [];
        const config = loadConfig({ ...valid, POLICY_FILE: 'policy.json' }, (path) => {
            read.push(path);
            return policy;
        });
        expect(read).toEqual(['policy.json']);
        expect(config.policy.rules[0]?.action).toEqual({ type: 'requireApprovals', count: 2 });
    });

    it('stops the app on an invalid policy, naming the rule and the field, with the other problems', () => {
        const bad = JSON.stringify({
            rules: [{ id: 'prod', match: { tags: { environment: 'prod' } }, action: { type: 'requireApprovals' } }],
        });
        const message = errorOf({ ...valid, POLICY: bad, EXPIRY_ACTION: 'never' });
        expect(message).toMatch(/POLICY: rule "prod".*action.*count/);
        expect(message).toMatch(/EXPIRY_ACTION/);
    });

    it('refuses an unreadable policy file, naming the setting', () => {
        const message = errorOf({ ...valid, POLICY_FILE: 'missing.json' });
        expect(message).toMatch(/POLICY_FILE: cannot read "missing.json"/);
    });
});

describe('origin settings', () => {
    const sub = '0b1c2d3e-aaaa-4bbb-8ccc-000000000009';
    const tenant = '9a1b2c3d-0000-4000-8000-00000000beef';
    const base = () => ({ ...valid });

    it('reads SUBSCRIPTION_TENANTS as a map, and UNKNOWN_REQUESTER_APPROVALS with its default of 2', () => {
        const config = loadConfig({
            ...base(),
            SUBSCRIPTION_TENANTS: `${sub.toUpperCase()}=${tenant}, ${tenant}=${sub}`,
        });
        expect(config.SUBSCRIPTION_TENANTS).toEqual({ [sub]: tenant, [tenant]: sub });
        expect(config.UNKNOWN_REQUESTER_APPROVALS).toBe(2);
        expect(loadConfig({ ...base(), UNKNOWN_REQUESTER_APPROVALS: '1' }).UNKNOWN_REQUESTER_APPROVALS).toBe(1);
        expect(loadConfig(base()).SUBSCRIPTION_TENANTS).toEqual({});
    });

    it('names each bad origin setting', () => {
        expect(() => loadConfig({ ...base(), SUBSCRIPTION_TENANTS: `${sub}:${tenant}` })).toThrow(
            /SUBSCRIPTION_TENANTS: expected comma-separated subscriptionId=tenantId pairs/,
        );
        expect(() => loadConfig({ ...base(), SUBSCRIPTION_TENANTS: `${sub}=${tenant},${sub}=${sub}` })).toThrow(
            /SUBSCRIPTION_TENANTS: subscription .* is mapped to two tenants/,
        );
        expect(() => loadConfig({ ...base(), UNKNOWN_REQUESTER_APPROVALS: '0' })).toThrow(
            /UNKNOWN_REQUESTER_APPROVALS/,
        );
        expect(() => loadConfig({ ...base(), UNKNOWN_REQUESTER_APPROVALS: '6' })).toThrow(
            /UNKNOWN_REQUESTER_APPROVALS/,
        );
    });
});

describe('audit anchor settings', () => {
    it('defaults the anchor container, validates its name, and finds its blob endpoint like the tables’', () => {
        expect(loadConfig(valid).AUDIT_ANCHOR_CONTAINER).toBe('pecauditanchors');
        expect(loadConfig({ ...valid, AUDIT_ANCHOR_CONTAINER: 'audit-anchors-1' }).AUDIT_ANCHOR_CONTAINER).toBe(
            'audit-anchors-1',
        );
        for (const bad of ['ab', 'Audit', 'audit--anchors', '-audit', 'audit_anchors']) {
            expect(errorOf({ ...valid, AUDIT_ANCHOR_CONTAINER: bad })).toMatch(
                /AUDIT_ANCHOR_CONTAINER: expected a blob container name/,
            );
        }
        const byAccount = loadConfig({
            ...valid,
            AzureWebJobsStorage: undefined,
            AzureWebJobsStorage__accountName: 'stpecgate',
        });
        expect(byAccount.storage.blobServiceUri).toBe('https://stpecgate.blob.core.windows.net');
        const byUris = {
            ...valid,
            AzureWebJobsStorage: undefined,
            AzureWebJobsStorage__tableServiceUri: 'https://t.example.net',
            AzureWebJobsStorage__queueServiceUri: 'https://q.example.net',
        };
        expect(errorOf(byUris)).toMatch(/AzureWebJobsStorage__blobServiceUri: required/);
        expect(
            loadConfig({ ...byUris, AzureWebJobsStorage__blobServiceUri: 'https://b.example.net' }).storage
                .blobServiceUri,
        ).toBe('https://b.example.net');
    });
});

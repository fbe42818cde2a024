import { randomUUID } from 'node:crypto';
import { InvocationContext } from '@azure/functions';
import { loadConfig, resetConfig, type Config } from '../src/config';
import { kindInfo, type ServerKind } from '../src/domain/ids';
import { createDeps, resetDeps } from '../src/runtime';
import type { WorkflowDeps } from '../src/workflow/deps';
import { ArmEmulator, type ArmEmulatorOptions } from './emulators/arm';
import { BotConnectorEmulator } from './emulators/botConnector';
import { TokenEmulator } from './emulators/tokenEmulator';
import { azuriteConnectionString } from './storage/azuriteTable';

/**
 * Starts the emulators and wires the production composition root to them through settings only: the ARM endpoint,
 * the Bot Connector service URL, the managed-identity endpoint and Azurite. No test-only code path in src/.
 */

export const ids = {
    tenant: '72f988bf-86f1-41af-91ab-2d7cd011db47',
    foreignTenant: '9a1b2c3d-0000-4000-8000-00000000beef',
    client: '5e1f0c2a-1111-4222-8333-444455556666',
    ours: '0b1c2d3e-aaaa-4bbb-8ccc-000000000001',
    second: '0b1c2d3e-aaaa-4bbb-8ccc-000000000002',
    foreign: 'f0f0f0f0-dead-4bee-8f00-00000000f0f0',
    approvers: 'a9a9a9a9-0000-4000-8000-000000000001',
};

export interface Harness {
    token: TokenEmulator;
    arm: ArmEmulator;
    bot: BotConnectorEmulator;
    env: Record<string, string>;
    config: Config;
    deps: WorkflowDeps;
    close(): Promise<void>;
}

/**
 * MSAL remembers the managed-identity endpoint for the life of the process (per test file under Jest), so every
 * harness in a file shares one token emulator; it is closed after the file's last test.
 */
let sharedToken: Promise<TokenEmulator> | undefined;
function tokenEmulator(): Promise<TokenEmulator> {
    sharedToken ??= TokenEmulator.start({ tenantId: ids.tenant });
    return sharedToken;
}
afterAll(async () => {
    await (await sharedToken)?.close();
    sharedToken = undefined;
});

export async function startHarness(
    options: { settings?: Record<string, string>; arm?: ArmEmulatorOptions } = {},
): Promise<Harness> {
    const token = await tokenEmulator();
    const arm = await ArmEmulator.start({ expectedAudience: 'self', ...options.arm });
    const bot = await BotConnectorEmulator.start();
    const suffix = randomUUID().replace(/-/g, '').slice(0, 12);
    const connectionString = azuriteConnectionString();
    const env: Record<string, string> = {
        ...token.env,
        WATCHED_SUBSCRIPTION_IDS: `${ids.ours},${ids.second}`,
        TRUSTED_SUBSCRIPTION_IDS: `${ids.ours},${ids.second}`,
        AZURE_TENANT_ID: ids.tenant,
        AZURE_CLIENT_ID: ids.client,
        ARM_ENDPOINT: arm.url,
        TEAMS_SERVICE_URL: bot.serviceUrl,
        TEAMS_TEAM_ID: '19:team0000000000000000000000000000@thread.tacv2',
        TEAMS_CHANNEL_ID: '19:chan0000000000000000000000000000@thread.tacv2',
        APPROVER_GROUP_IDS: ids.approvers,
        PUBLIC_BASE_URL: 'https://pec-gate.example.net',
        AzureWebJobsStorage: connectionString,
        REQUESTS_TABLE: `req${suffix}`,
        AUDIT_TABLE: `aud${suffix}`,
        ARM_MAX_RETRIES: '3',
        ARM_RETRY_DELAY_MS: '20',
        ARM_LRO_DEADLINE_SECONDS: '10',
        ...options.settings,
    };
    const previous = new Map<string, string | undefined>();
    for (const [k, v] of Object.entries(env)) {
        previous.set(k, process.env[k]);
        process.env[k] = v;
    }
    resetConfig();
    resetDeps();
    const config = loadConfig(process.env);
    const deps = createDeps(config);
    return {
        token,
        arm,
        bot,
        env,
        config,
        deps,
        async close() {
            await Promise.all([arm.close(), bot.close()]);
            for (const [k, v] of previous) {
                if (v === undefined) {
                    delete process.env[k];
                } else {
                    process.env[k] = v;
                }
            }
            resetConfig();
            resetDeps();
        },
    };
}

export function privateEndpointId(subscriptionId: string, name: string): string {
    return `/subscriptions/${subscriptionId}/resourceGroups/rg-clients/providers/Microsoft.Network/privateEndpoints/${name}`;
}

export interface SeededPec {
    kind: ServerKind;
    serverId: string;
    pecId: string;
    pecName: string;
}

/** One server of the given kind with one pending PEC (and optionally approved ones). */
export function seedPendingPec(
    arm: ArmEmulator,
    kind: ServerKind,
    options: {
        subscriptionId?: string;
        peSubscriptionId?: string;
        serverName?: string;
        message?: string;
        approved?: string[];
        publicNetworkAccess?: 'Enabled' | 'Disabled';
    } = {},
): SeededPec {
    const { provider, type } = kindInfo[kind];
    const serverId = arm.addServer({
        subscriptionId: options.subscriptionId ?? ids.ours,
        resourceGroup: 'rg-data',
        provider,
        type,
        name: options.serverName ?? `${kind}-01`,
        publicNetworkAccess: options.publicNetworkAccess ?? 'Disabled',
        tags: { environment: 'prod' },
    });
    for (const [i, sub] of (options.approved ?? []).entries()) {
        arm.addPec(serverId, {
            name: `pe-existing-${i}.${randomUUID()}`,
            privateEndpointId: privateEndpointId(sub, `pe-existing-${i}`),
            status: 'Approved',
            description: 'Approved earlier',
        });
    }
    const pecName = `pe-${kind}.${randomUUID()}`;
    const pecId = arm.addPec(serverId, {
        name: pecName,
        privateEndpointId: privateEndpointId(options.peSubscriptionId ?? ids.ours, `pe-${kind}`),
        status: 'Pending',
        description: options.message ?? 'Please approve: app tier needs the database',
    });
    return { kind, serverId, pecId, pecName };
}

/** A subscription system-topic event as Event Grid delivers it (Event Grid schema). */
export function resourceWriteEvent(
    resourceUri: string,
    options: {
        operation?: string;
        eventType?: string;
        claims?: Record<string, unknown>;
        subscriptionId?: string;
    } = {},
): Record<string, unknown> {
    const provider = /providers\/(Microsoft\.DBfor\w+)\/(\w+)/i.exec(resourceUri);
    const child = /\/(privateEndpointConnection\w*)\//i.exec(resourceUri)?.[1] ?? 'privateEndpointConnections';
    return {
        id: randomUUID(),
        topic: `/subscriptions/${options.subscriptionId ?? ids.ours}`,
        subject: resourceUri,
        eventType: options.eventType ?? 'Microsoft.Resources.ResourceWriteSuccess',
        eventTime: new Date().toISOString(),
        dataVersion: '2',
        metadataVersion: '1',
        data: {
            operationName: options.operation ?? `${provider?.[1]}/${provider?.[2]}/${child}/write`,
            resourceUri,
            resourceProvider: provider?.[1],
            subscriptionId: options.subscriptionId ?? ids.ours,
            tenantId: ids.tenant,
            status: 'Succeeded',
            correlationId: randomUUID(),
            authorization: { scope: resourceUri, action: `${provider?.[1]}/${provider?.[2]}/${child}/write` },
            claims: options.claims ?? {
                'http://schemas.microsoft.com/identity/claims/objectidentifier': '0a0a0a0a-1111-4111-8111-000000000abc',
                'http://schemas.xmlsoap.org/ws/2005/05/identity/claims/upn': 'dev@contoso.com',
                name: 'Dev Eloper',
                'http://schemas.microsoft.com/identity/claims/tenantid': ids.tenant,
                appid: '04b07795-8ddb-461a-bbee-02f9e1bf7b46',
                ipaddr: '203.0.113.7',
            },
        },
    };
}

export function testContext(functionName = 'test'): InvocationContext & { logs: string[] } {
    const logs: string[] = [];
    const context = new InvocationContext({
        functionName,
        invocationId: randomUUID(),
        logHandler: (level, ...args) => logs.push(`${level}: ${args.map(String).join(' ')}`),
    });
    return Object.assign(context, { logs });
}

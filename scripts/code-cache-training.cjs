'use strict';
/**
 * The training run behind the package's V8 code cache (see scripts/package.ts): loads the staged main.js in the
 * stand-in worker of scripts/functions-host.cjs, runs its appStart hooks, and sends one relevant event per server kind
 * through the registered pecEvents, the way the worker would. Every endpoint is a closed local port, so nothing leaves
 * the machine: each event gets as far as its first storage call, compiling on the way the settings, the credential,
 * the clients and their pipelines, and loading the four ARM SDKs. The loader writes the cache when this process exits,
 * covering those functions too, not only what loading compiles.
 *
 *   PEC_GATE_WRITE_CODE_CACHE=1 node scripts/code-cache-training.cjs <staged main.js>
 *
 * A failure of the training itself is reported and ends it early; the cache is still written, and covers less.
 */
const { installFunctionsHost } = require('./functions-host.cjs');

const host = installFunctionsHost();

// Valid settings whose every endpoint is a closed port (9, discard): calls fail at once, with no retry or wait.
const closed = '127.0.0.1:9';
const subscription = '00000000-0000-4000-8000-000000000001';
const tenant = '00000000-0000-4000-8000-000000000002';
Object.assign(process.env, {
    WATCHED_SUBSCRIPTION_IDS: subscription,
    AZURE_TENANT_ID: tenant,
    AZURE_CLIENT_ID: '00000000-0000-4000-8000-000000000003',
    APPROVER_GROUP_IDS: '00000000-0000-4000-8000-000000000004',
    PUBLIC_BASE_URL: 'https://pec-gate.invalid',
    SWEEP_SCHEDULE: '0 */15 * * * *',
    TEAMS_CHANNEL_ID: '19:training@thread.tacv2',
    ARM_ENDPOINT: `https://${closed}`,
    TEAMS_SERVICE_URL: `https://${closed}/teams/`,
    IDENTITY_ENDPOINT: `http://${closed}/msi/token`,
    IDENTITY_HEADER: 'training',
    AzureWebJobsStorage: [
        'DefaultEndpointsProtocol=http',
        'AccountName=devstoreaccount1',
        // Azurite's published development key: nothing is ever sent with it.
        'AccountKey=Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==',
        `TableEndpoint=http://${closed}/devstoreaccount1`,
        `QueueEndpoint=http://${closed}/devstoreaccount1`,
    ].join(';'),
    ARM_MAX_RETRIES: '0',
    ARM_RETRY_DELAY_MS: '0',
    HTTP_TIMEOUT_MS: '1000',
});

const kinds = [
    ['DBforPostgreSQL', 'flexibleServers'],
    ['DBforMySQL', 'flexibleServers'],
    ['DBforPostgreSQL', 'servers'],
    ['DBforMySQL', 'servers'],
];

function event(provider, type) {
    const resourceUri =
        `/subscriptions/${subscription}/resourceGroups/rg-training/providers/Microsoft.${provider}/${type}` +
        '/srv-training/privateEndpointConnections/pe-training';
    return {
        id: 'training',
        topic: `/subscriptions/${subscription}`,
        subject: resourceUri,
        eventType: 'Microsoft.Resources.ResourceWriteSuccess',
        eventTime: new Date().toISOString(),
        dataVersion: '2',
        metadataVersion: '1',
        data: {
            operationName: `Microsoft.${provider}/${type}/privateEndpointConnections/write`,
            resourceUri,
            subscriptionId: subscription,
            tenantId: tenant,
            status: 'Succeeded',
            correlationId: '00000000-0000-4000-8000-000000000005',
            claims: {},
        },
    };
}

async function train() {
    await host.runAppStart();
    for (const [provider, type] of kinds) {
        // Expected to fail at the first storage call (the closed port).
        await host.invoke('pecEvents', { json: JSON.stringify(event(provider, type)) }).catch(() => undefined);
    }
}

require(process.argv[2]);
train().then(
    () => process.exit(0),
    (err) => {
        process.stderr.write(`code cache training ended early: ${err && err.message ? err.message : String(err)}\n`);
        process.exit(0);
    },
);

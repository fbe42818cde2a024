'use strict';
/**
 * The training run behind the package's V8 code cache (see scripts/package.ts): loads the staged main.js in the
 * stand-in worker of scripts/functions-host.cjs, runs its appStart hooks, and sends one relevant event per server kind
 * through the registered pecEvents, the way the worker would. The loader writes the cache when this process exits,
 * covering every function the run compiled, not only what loading compiles.
 *
 * The events go the whole way a first event goes in Azure, against the local answers of scripts/code-cache-world.cjs
 * (token, storage, ARM, Bot Connector, Application Insights; nothing leaves the machine): so the cache covers the
 * storage-blob and Bot Connector clients and the card too, which a first event would otherwise compile from source
 * (about a third of its time). That needs the HTTPS server's key and certificate (PEC_GATE_TRAINING_KEY and
 * PEC_GATE_TRAINING_CERT, PEM files, the certificate trusted through NODE_EXTRA_CA_CERTS); without them every endpoint
 * is a closed local port instead, and each event gets as far as its first storage call.
 *
 *   PEC_GATE_WRITE_CODE_CACHE=1 node scripts/code-cache-training.cjs <staged main.js>
 *
 * A failure of the training itself is reported and ends it early; the cache is still written, and covers less.
 */
const fs = require('node:fs');
const { installFunctionsHost } = require('./functions-host.cjs');
const { startTrainingWorld, trainingConnectionName } = require('./code-cache-world.cjs');

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
    TEAMS_TEAM_ID: '19:training-team@thread.tacv2',
    ARM_ENDPOINT: `https://${closed}`,
    TEAMS_SERVICE_URL: `https://${closed}/teams/`,
    IDENTITY_ENDPOINT: `http://${closed}/msi/token`,
    IDENTITY_HEADER: 'training',
    AzureWebJobsStorage: storage(`http://${closed}/devstoreaccount1`, `http://${closed}/devstoreaccount1`),
    ARM_MAX_RETRIES: '0',
    ARM_RETRY_DELAY_MS: '0',
    HTTP_TIMEOUT_MS: '1000',
});

function storage(tableEndpoint, blobEndpoint) {
    return [
        'DefaultEndpointsProtocol=http',
        'AccountName=devstoreaccount1',
        // Azurite's published development key: nothing is ever sent with it beyond this machine.
        'AccountKey=Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==',
        `TableEndpoint=${tableEndpoint}`,
        `BlobEndpoint=${blobEndpoint}`,
        `QueueEndpoint=http://${closed}/devstoreaccount1`,
    ].join(';');
}

/** The local answers, when the packaging gave this run a key and certificate for them; undefined otherwise. */
async function startWorld() {
    const { PEC_GATE_TRAINING_KEY: keyFile, PEC_GATE_TRAINING_CERT: certFile } = process.env;
    if (!keyFile || !certFile) {
        return undefined;
    }
    const world = await startTrainingWorld({ key: fs.readFileSync(keyFile), cert: fs.readFileSync(certFile) });
    const { tableEndpoint, blobEndpoint, ...settings } = world.env;
    Object.assign(process.env, settings, { AzureWebJobsStorage: storage(tableEndpoint, blobEndpoint) });
    return world;
}

const kinds = [
    ['DBforPostgreSQL', 'flexibleServers'],
    ['DBforMySQL', 'flexibleServers'],
    ['DBforPostgreSQL', 'servers'],
    ['DBforMySQL', 'servers'],
];

function event(provider, type) {
    // One server per kind, so each event is a new request.
    const resourceUri =
        `/subscriptions/${subscription}/resourceGroups/rg-training/providers/Microsoft.${provider}/${type}` +
        `/srv-training-${provider.toLowerCase()}-${type.toLowerCase()}/privateEndpointConnections/${trainingConnectionName}`;
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
    const world = await startWorld();
    // After the settings are in place: the app reads them in its appStart hook.
    require(process.argv[2]);
    await host.runAppStart();
    const failures = [];
    for (const [provider, type] of kinds) {
        await host.invoke('pecEvents', { json: JSON.stringify(event(provider, type)) }).then(
            ({ logs }) => failures.push(...logs.filter((l) => /^error/i.test(l)).map((l) => `${type}: ${l}`)),
            // Against closed ports, expected at the first storage call.
            (err) => failures.push(`${provider}/${type}: ${err && err.message ? err.message : String(err)}`),
        );
    }
    if (world) {
        // For the packaging's report and its test: each event should have gone the whole way.
        const { cards, anchors, telemetry } = world.counts;
        process.stderr.write(
            `training: ${kinds.length} events, ${cards} cards posted, ${anchors} audit anchors, ${telemetry} telemetry batches\n`,
        );
        for (const failure of failures.slice(0, 3)) {
            process.stderr.write(`training: ${failure.slice(0, 300)}\n`);
        }
        world.close();
    }
}

train().then(
    () => process.exit(0),
    (err) => {
        process.stderr.write(`code cache training ended early: ${err && err.message ? err.message : String(err)}\n`);
        process.exit(0);
    },
);

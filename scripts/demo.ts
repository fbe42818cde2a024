/**
 * The detection loop on a laptop with no Azure account: Azurite, the ARM emulator with a pending PEC on each of the
 * four server kinds (one from a foreign subscription), the Bot Connector emulator and a managed-identity token
 * endpoint. Events go through the real `pecEvents` handler; the cards that arrive are printed and written to a folder.
 *
 *   npm run demo
 */
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { InvocationContext, type EventGridEvent } from '@azure/functions';
import { kindInfo, serverKinds } from '../src/domain/ids';
import { ArmEmulator } from '../test/emulators/arm';
import { BotConnectorEmulator } from '../test/emulators/botConnector';
import { TokenEmulator } from '../test/emulators/tokenEmulator';

const root = path.join(__dirname, '..', '..');
const tenant = '72f988bf-86f1-41af-91ab-2d7cd011db47';
const ours = '0b1c2d3e-aaaa-4bbb-8ccc-000000000001';
const foreign = 'f0f0f0f0-dead-4bee-8f00-00000000f0f0';
const devKey = 'Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==';

async function freePort(): Promise<number> {
    return new Promise((resolve) => {
        const s = net.createServer().listen(0, '127.0.0.1', () => {
            const port = (s.address() as net.AddressInfo).port;
            s.close(() => resolve(port));
        });
    });
}

async function startAzurite(): Promise<{ connectionString: string; stop(): Promise<void> }> {
    const [queue, table, blob] = [await freePort(), await freePort(), await freePort()];
    const bin = path.join(root, 'node_modules', 'azurite', 'dist', 'src', 'azurite.js');
    const args = ['--silent', '--inMemoryPersistence', '--skipApiVersionCheck'];
    for (const [service, port] of [
        ['blob', blob],
        ['queue', queue],
        ['table', table],
    ] as const) {
        args.push(`--${service}Host`, '127.0.0.1', `--${service}Port`, String(port));
    }
    const child = spawn(process.execPath, [bin, ...args], { stdio: 'ignore' });
    for (let i = 0; i < 100; i++) {
        const up = await new Promise<boolean>((resolve) => {
            const socket = net.connect(table, '127.0.0.1', () => resolve(!!socket.end()));
            socket.once('error', () => resolve(false));
        });
        if (up) {
            break;
        }
        await new Promise((r) => setTimeout(r, 100));
    }
    return {
        connectionString: [
            'DefaultEndpointsProtocol=http',
            'AccountName=devstoreaccount1',
            `AccountKey=${devKey}`,
            `BlobEndpoint=http://127.0.0.1:${blob}/devstoreaccount1`,
            `QueueEndpoint=http://127.0.0.1:${queue}/devstoreaccount1`,
            `TableEndpoint=http://127.0.0.1:${table}/devstoreaccount1`,
        ].join(';'),
        // Azurite can miss a SIGTERM that arrives while it is still starting up; make sure it ends with the demo.
        stop: async () => {
            child.kill('SIGTERM');
            const exited = await Promise.race([
                new Promise<boolean>((resolve) => child.once('exit', () => resolve(true))),
                new Promise<boolean>((resolve) => setTimeout(() => resolve(false), 2000)),
            ]);
            if (!exited) {
                child.kill('SIGKILL');
            }
        },
    };
}

function step(label: string, text: string): void {
    console.log(`${label.padEnd(8)} ${text}`);
}

async function main(): Promise<void> {
    const azurite = await startAzurite();
    const token = await TokenEmulator.start({ tenantId: tenant });
    const arm = await ArmEmulator.start({ expectedAudience: 'self' });
    const bot = await BotConnectorEmulator.start();
    Object.assign(process.env, {
        ...token.env,
        AzureWebJobsStorage: azurite.connectionString,
        WATCHED_SUBSCRIPTION_IDS: ours,
        TRUSTED_SUBSCRIPTION_IDS: ours,
        AZURE_TENANT_ID: tenant,
        AZURE_CLIENT_ID: '5e1f0c2a-1111-4222-8333-444455556666',
        ARM_ENDPOINT: arm.url,
        TEAMS_SERVICE_URL: bot.serviceUrl,
        TEAMS_CHANNEL_ID: '19:demo-approvals@thread.tacv2',
        APPROVER_GROUP_IDS: 'a9a9a9a9-0000-4000-8000-000000000001',
        PUBLIC_BASE_URL: 'https://pec-gate-demo.example.net',
    });
    // Imported after the settings are in place: the handler validates them on first use.
    const { pecEvents } = await import('../functions/pecEvents');
    const { getDeps } = await import('../src/runtime');

    const outDir = path.join(root, 'demo-output', new Date().toISOString().replace(/[:.]/g, '-'));
    mkdirSync(outDir, { recursive: true });
    try {
        for (const [i, kind] of serverKinds.entries()) {
            const { provider, type } = kindInfo[kind];
            const peSubscription = kind === 'mysql-flexible' ? foreign : ours;
            const serverId = arm.addServer({
                subscriptionId: ours,
                resourceGroup: 'rg-data',
                provider,
                type,
                name: `${kind}-prod`,
                publicNetworkAccess: i % 2 === 0 ? 'Disabled' : 'Enabled',
                tags: { environment: 'prod' },
            });
            const pecId = arm.addPec(serverId, {
                name: `pe-${kind}.${randomUUID()}`,
                privateEndpointId: `/subscriptions/${peSubscription}/resourceGroups/rg-app/providers/Microsoft.Network/privateEndpoints/pe-${kind}`,
                status: 'Pending',
                description:
                    peSubscription === foreign ? 'urgent: [vendor sync](https://evil.example)' : 'App tier access',
            });
            step(
                'PEC',
                `${kind}: pending, private endpoint in ${peSubscription === foreign ? 'a FOREIGN' : 'our'} subscription`,
            );

            const event = {
                id: randomUUID(),
                subject: pecId,
                eventType: 'Microsoft.Resources.ResourceWriteSuccess',
                eventTime: new Date().toISOString(),
                dataVersion: '2',
                data: {
                    operationName: `${provider}/${type}/privateEndpointConnectionProxies/write`,
                    resourceUri: pecId.replace('privateEndpointConnections', 'privateEndpointConnectionProxies'),
                    subscriptionId: ours,
                    tenantId: tenant,
                    correlationId: randomUUID(),
                    claims: {
                        upn: 'dev@contoso.com',
                        name: 'Dev Eloper',
                        tid: peSubscription === foreign ? foreign : tenant,
                    },
                },
            };
            const context = new InvocationContext({ functionName: 'pecEvents', logHandler: () => undefined });
            await pecEvents(event as unknown as EventGridEvent, context);
            // Event Grid delivers at least once: a duplicate must not post a second card.
            await pecEvents(event as unknown as EventGridEvent, context);

            const stored = await getDeps().requests.getActiveForPec(pecId);
            const card = bot.cards()[i];
            writeFileSync(path.join(outDir, `${kind}.json`), JSON.stringify(card, null, 2));
            step(
                'CARD',
                `request ${stored?.request.id} posted to the channel (${bot.conversations.length} card(s) so far)`,
            );
            const audit = await getDeps().audit.list(stored!.request.id);
            step('AUDIT', audit.map((e) => `${e.seq}:${e.action}`).join(' → '));
        }
        console.log(`\n${bot.conversations.length} cards for ${serverKinds.length} pending PECs (duplicates ignored).`);
        console.log(`Cards written to ${path.relative(process.cwd(), outDir)}`);
        console.log('Deciding in Teams and applying through ARM come with the decision workflow (next milestone).');
    } finally {
        await Promise.all([token.close(), arm.close(), bot.close()]);
        await azurite.stop();
    }
}

main().catch((err: unknown) => {
    console.error(err);
    process.exit(1);
});

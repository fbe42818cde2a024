/**
 * The whole product on a laptop with no Azure account: Azurite, the ARM emulator with a pending PEC on each of the four
 * server kinds (one from a foreign subscription) and one more whose event is lost, the Bot Connector emulator, the Bot
 * Framework's token keys, Microsoft Graph (with one approver) and a managed-identity token endpoint, all wired in
 * through settings only, with a policy that approves trusted endpoints on dev servers by itself.
 *
 * 1. Detection: events go through the real `pecEvents` handler (each twice, as Event Grid may deliver), and the cards
 *    that arrive in the channel are printed and written to a folder under demo-output/.
 * 2. Decision: a scripted approver clicks in three of the cards (two approvals, one reject, each with a text). Each
 *    click is an `adaptiveCard/action` invoke with a Bot Framework token, posted to the real `teamsMessages` handler.
 * 3. Apply: the apply queue is drained into the real `applyDecision` handler, as the Functions host would.
 * 4. Reconcile: the real `sweep` timer runs as the clock moves on. It finds the PEC whose event was lost and opens it,
 *    and the policy approves it; it reminds the approvers of the card nobody decided, and after a week it rejects that
 *    one (EXPIRY_ACTION=reject).
 * 5. The ARM state, card updates and hash-chained audit trail of every request are checked and printed, and the cards
 *    written next to the posted ones.
 *
 * The demo doubles as a smoke test: it exits non-zero if anything did not happen as expected.
 *
 *   npm run demo
 */
// First: the worker's side of @azure/functions-core, before @azure/functions looks for it.
import './demoHost';
import { spawn } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { HttpRequest, InvocationContext, type EventGridEvent } from '@azure/functions';
import { QueueClient } from '@azure/storage-queue';
import { kindInfo, type ServerKind } from '../src/domain/ids';
import { defaultWatchedKinds } from '../src/domain/resourceKinds';

/** The demo's PECs: one on each database kind, the kinds watched by default. */
const serverKinds = defaultWatchedKinds;
import type { CardRef } from '../src/domain/request';
import { applyMaxAttempts, applyQueueName } from '../src/storage/applyQueue';
import { verifyChain } from '../src/storage/auditLog';
import type { Timer } from '@azure/functions';
import { ArmEmulator } from '../test/emulators/arm';
import { BotConnectorEmulator } from '../test/emulators/botConnector';
import { BotIdentityEmulator } from '../test/emulators/botIdentity';
import { GraphEmulator } from '../test/emulators/graph';
import { TokenEmulator } from '../test/emulators/tokenEmulator';

const root = path.join(__dirname, '..', '..');
const tenant = '72f988bf-86f1-41af-91ab-2d7cd011db47';
const ours = '0b1c2d3e-aaaa-4bbb-8ccc-000000000001';
const foreign = 'f0f0f0f0-dead-4bee-8f00-00000000f0f0';
const foreignTenant = '9a1b2c3d-0000-4000-8000-00000000beef';
const clientId = '5e1f0c2a-1111-4222-8333-444455556666';
const approverGroup = 'a9a9a9a9-0000-4000-8000-000000000001';
const channelId = '19:demo-approvals@thread.tacv2';
const devKey = 'Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==';

const alice = { objectId: 'a11ce000-0000-4000-8000-00000000a11c', name: 'Alice Approver', upn: 'alice@contoso.com' };

/** What the scripted approver does with each card; a kind left out stays pending. */
const plan: Partial<Record<ServerKind, { verb: 'approve' | 'reject'; text: string }>> = {
    'postgres-single': { verb: 'approve', text: 'Reporting tier, CHG-1042' },
    'postgres-flexible': { verb: 'approve', text: 'Analytics workers, CHG-1043' },
    'mysql-flexible': { verb: 'reject', text: 'Private endpoint from an unknown subscription' },
};
const armStatusFor = { approve: 'Approved', reject: 'Rejected' } as const;

/** The policy: trusted endpoints on dev servers need nobody; everything else one manual approval. */
const policy = {
    rules: [
        {
            id: 'dev-trusted-auto',
            description: 'Endpoints from our own subscriptions on dev servers are approved without asking',
            match: { tags: { environment: 'dev' }, endpointOrigin: ['trusted'] },
            action: { type: 'autoApprove' },
        },
    ],
};
const expiryRejectText = 'No approver decided within a week; create the endpoint again to ask again';

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

/** Things that did not happen as they should; any of them makes the demo exit non-zero. */
const problems: string[] = [];
function check(ok: boolean, problem: string): boolean {
    if (!ok) {
        problems.push(problem);
        step('PROBLEM', problem);
    }
    return ok;
}

/** An invocation context whose warnings and errors are kept, to be shown when something goes wrong. */
function contextFor(functionName: string, triggerMetadata?: Record<string, unknown>) {
    const logs: string[] = [];
    const all: string[] = [];
    const context = new InvocationContext({
        functionName,
        invocationId: randomUUID(),
        logHandler: (level, ...args) => {
            const line = `${functionName} ${level}: ${args.map(String).join(' ')}`;
            all.push(line);
            if (level === 'warning' || level === 'error' || level === 'critical') {
                logs.push(line);
            }
        },
        ...(triggerMetadata ? { triggerMetadata } : {}),
    });
    return { context, logs, all };
}

/** The status line of a rendered card: the first RichTextBlock after the title. */
function statusLineOf(card: unknown): string {
    const body = (card as { body?: { type?: string; inlines?: { text?: string }[] }[] } | undefined)?.body ?? [];
    const block = body.find((e) => e.type === 'RichTextBlock');
    return (block?.inlines ?? []).map((r) => r.text ?? '').join('');
}

interface Tracked {
    /** The server kind, or the dev server's name for the PEC the sweep found. */
    label: string;
    kind: ServerKind;
    pecId: string;
    requestId: string;
    card: CardRef;
    /** What should become of it, and what ARM's description should then say. */
    expect: { status: 'Approved' | 'Rejected'; description: string; actions: string[] };
}

const timer: Timer = {
    isPastDue: false,
    schedule: { adjustForDST: true },
    scheduleStatus: { last: '', next: '', lastUpdated: '' },
};

async function main(): Promise<void> {
    const azurite = await startAzurite();
    const token = await TokenEmulator.start({ tenantId: tenant });
    const arm = await ArmEmulator.start({ expectedAudience: 'self' });
    // What ARM answers about each subscription's home tenant: the endpoint's origin is looked up, not claimed.
    arm.setSubscriptionTenant(ours, tenant);
    arm.setSubscriptionTenant(foreign, foreignTenant);
    const bot = await BotConnectorEmulator.start();
    const botIdentity = await BotIdentityEmulator.start();
    const graph = await GraphEmulator.start();
    graph.expectedAudience = graph.url;
    graph.addUser({ id: alice.objectId, displayName: alice.name, userPrincipalName: alice.upn });
    graph.addGroup(approverGroup, { members: [alice.objectId] });
    Object.assign(process.env, {
        ...token.env,
        AzureWebJobsStorage: azurite.connectionString,
        WATCHED_SUBSCRIPTION_IDS: ours,
        TRUSTED_SUBSCRIPTION_IDS: ours,
        AZURE_TENANT_ID: tenant,
        AZURE_CLIENT_ID: clientId,
        ARM_ENDPOINT: arm.url,
        GRAPH_ENDPOINT: graph.url,
        BOT_OPENID_METADATA_URL: botIdentity.metadataUrl,
        TEAMS_SERVICE_URL: bot.serviceUrl,
        TEAMS_CHANNEL_ID: channelId,
        APPROVER_GROUP_IDS: approverGroup,
        PUBLIC_BASE_URL: 'https://pec-gate-demo.example.net',
        SWEEP_SCHEDULE: '0 */15 * * * *',
        POLICY: JSON.stringify(policy),
        EXPIRY_ACTION: 'reject',
        EXPIRY_REJECT_TEXT: expiryRejectText,
    });
    // Imported after the settings are in place: the handlers validate them on first use.
    const { pecEvents } = await import('../functions/pecEvents');
    const { teamsMessages } = await import('../functions/teamsMessages');
    const { applyDecisionFunction } = await import('../functions/applyDecision');
    const { sweepFunction } = await import('../functions/sweep');
    const { getDeps } = await import('../src/runtime');

    const outDir = path.join(root, 'demo-output', new Date().toISOString().replace(/[:.]/g, '-'));
    mkdirSync(outDir, { recursive: true });
    let written = 0;
    const write = (name: string, json: unknown) => {
        writeFileSync(path.join(outDir, name), JSON.stringify(json, null, 2));
        written += 1;
    };
    const logs: string[] = [];
    try {
        // 1. Detection.
        const tracked: Tracked[] = [];
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
            const { context, logs: eventLogs } = contextFor('pecEvents');
            await pecEvents(event as unknown as EventGridEvent, context);
            // Event Grid delivers at least once: a duplicate must not post a second card.
            await pecEvents(event as unknown as EventGridEvent, context);
            logs.push(...eventLogs);

            const stored = await getDeps().requests.getActiveForPec(pecId);
            const card = bot.cards()[i];
            if (
                !check(!!stored?.request.card, `${kind}: no open request with a posted card`) ||
                !check(bot.conversations.length === i + 1, `${kind}: ${bot.conversations.length} cards in all`)
            ) {
                continue;
            }
            write(`${kind}.json`, card);
            const decision = plan[kind];
            tracked.push({
                label: kind,
                kind,
                pecId,
                requestId: stored!.request.id,
                card: stored!.request.card!,
                expect: decision
                    ? {
                          status: armStatusFor[decision.verb],
                          description: `${armStatusFor[decision.verb]} by ${alice.upn}: ${decision.text}`,
                          actions: ['requested', 'card-posted', 'decided', 'applied'],
                      }
                    : {
                          status: 'Rejected',
                          description: `Auto-rejected: no decision within 168 hours: ${expiryRejectText}`,
                          actions: ['requested', 'card-posted', 'reminded', 'expired', 'applied'],
                      },
            });
            step('CARD', `request ${stored!.request.id} posted: "${statusLineOf(card)}"`);
            const audit = await getDeps().audit.list(stored!.request.id);
            step('AUDIT', audit.map((e) => `${e.seq}:${e.action}`).join(' → '));
        }
        console.log(
            `\n${bot.conversations.length} cards for ${serverKinds.length} pending PECs (duplicates ignored).\n`,
        );

        // One more PEC, on a dev server, whose event never arrives: only the sweep can find it.
        const devServer = arm.addServer({
            subscriptionId: ours,
            resourceGroup: 'rg-analytics',
            provider: kindInfo['postgres-flexible'].provider,
            type: kindInfo['postgres-flexible'].type,
            name: 'analytics-dev',
            publicNetworkAccess: 'Disabled',
            tags: { environment: 'dev' },
        });
        const lostPecId = arm.addPec(devServer, {
            name: `pe-notebooks.${randomUUID()}`,
            privateEndpointId: `/subscriptions/${ours}/resourceGroups/rg-notebooks/providers/Microsoft.Network/privateEndpoints/pe-notebooks`,
            status: 'Pending',
            description: 'Notebook workers',
        });
        step('PEC', 'analytics-dev (postgres-flexible, tagged environment=dev): pending, its event is lost');

        // 2. Decision: the approver clicks in the cards, as Teams would deliver it to /api/messages.
        for (const t of tracked) {
            const decision = plan[t.kind];
            if (!decision) {
                step('WAIT', `${t.kind}: nobody decides; the sweep will remind, then expire it`);
                continue;
            }
            const activity = {
                type: 'invoke',
                name: 'adaptiveCard/action',
                id: `f:${randomBytes(8).toString('hex')}`,
                channelId: 'msteams',
                serviceUrl: t.card.serviceUrl,
                from: { id: `29:${alice.objectId}`, aadObjectId: alice.objectId, name: alice.name },
                recipient: { id: `28:${clientId}`, name: 'PEC gate' },
                conversation: { id: t.card.conversationId, conversationType: 'channel', tenantId: tenant },
                replyToId: t.card.activityId,
                channelData: { tenant: { id: tenant }, channel: { id: channelId } },
                value: {
                    action: {
                        type: 'Action.Execute',
                        verb: decision.verb,
                        data: { requestId: t.requestId, responseText: decision.text },
                    },
                    trigger: 'manual',
                },
            };
            const bearer = await botIdentity.tokenFor({ audience: clientId, serviceUrl: String(t.card.serviceUrl) });
            const { context, logs: clickLogs } = contextFor('teamsMessages');
            const response = await teamsMessages(
                new HttpRequest({
                    url: 'https://pec-gate-demo.example.net/api/messages',
                    method: 'POST',
                    headers: { 'content-type': 'application/json', authorization: `Bearer ${bearer}` },
                    body: { string: JSON.stringify(activity) },
                }),
                context,
            );
            logs.push(...clickLogs);
            const body = response.jsonBody as { statusCode?: number; value?: unknown } | undefined;
            const line = statusLineOf(body?.value);
            const shown = `${decision.verb === 'approve' ? 'Approving' : 'Rejecting'}… by ${alice.name}`;
            step(
                'CLICK',
                `${t.kind}: ${alice.name} clicks ${decision.verb}, "${decision.text}" → card shows "${line}"`,
            );
            check(
                (response.status ?? 200) === 200 && body?.statusCode === 200 && line === shown,
                `${t.kind}: the click got HTTP ${response.status ?? 200}, invoke ${body?.statusCode}, "${line}"`,
            );
        }

        // 3. Apply: the Functions host's part for the apply queue.
        const queue = new QueueClient(azurite.connectionString, applyQueueName);
        await queue.createIfNotExists();
        const labelOf = (requestId: string) =>
            tracked.find((t) => t.requestId === requestId)?.label ?? `request ${requestId}`;
        const drain = async () => {
            // At most a few redeliveries per decision; a queue that keeps refilling is a failure, not a reason to hang.
            const maxDeliveries = applyMaxAttempts * (tracked.length + 1);
            let deliveries = 0;
            while (deliveries < maxDeliveries) {
                const { receivedMessageItems } = await queue.receiveMessages({
                    numberOfMessages: 32,
                    visibilityTimeout: 60,
                });
                if (receivedMessageItems.length === 0) {
                    break;
                }
                for (const message of receivedMessageItems) {
                    deliveries += 1;
                    const item = JSON.parse(Buffer.from(message.messageText, 'base64').toString('utf8')) as {
                        requestId?: string;
                    };
                    const { context, logs: applyLogs } = contextFor('applyDecision', {
                        id: message.messageId,
                        dequeueCount: message.dequeueCount,
                    });
                    const label = labelOf(String(item.requestId));
                    try {
                        await applyDecisionFunction(item, context);
                        await queue.deleteMessage(message.messageId, message.popReceipt);
                        const status = (await getDeps().requests.get(String(item.requestId)))?.request.status;
                        step('APPLY', `${label}: delivery ${message.dequeueCount} of its message → request ${status}`);
                    } catch (err) {
                        step('APPLY', `${label}: delivery ${message.dequeueCount} failed: ${String(err)}`);
                        if (message.dequeueCount >= applyMaxAttempts) {
                            check(false, `${label}: gave up after ${message.dequeueCount} deliveries`);
                            await queue.deleteMessage(message.messageId, message.popReceipt);
                        } else {
                            await queue.updateMessage(message.messageId, message.popReceipt, undefined, 0);
                        }
                    }
                    logs.push(...applyLogs);
                }
            }
            const left = (await queue.getProperties()).approximateMessagesCount ?? 0;
            check(left === 0, `${left} message(s) still on the apply queue`);
        };
        await drain();
        console.log('');

        // 4. Reconcile: the timer's sweep, with the workflow's clock moved on between runs.
        const started = getDeps().now().getTime();
        const runSweep = async (afterHours: number, why: string) => {
            const at = new Date(started + afterHours * 3_600_000);
            getDeps().now = () => at;
            const { context, logs: sweepLogs, all } = contextFor('sweep');
            await sweepFunction(timer, context);
            logs.push(...sweepLogs);
            const summary = all.find((l) => / servers, /.test(l)) ?? '(no summary)';
            step('SWEEP', `+${afterHours} h, ${why}: ${summary.replace(/^sweep information: (\[[^\]]*\] )?/, '')}`);
        };
        await runSweep(0, 'right away');
        const waiting = await getDeps().requests.getActiveForPec(lostPecId);
        check(!waiting, 'the sweep opened the lost PEC before its event had a chance to arrive');
        step('WAIT', 'analytics-dev: seen, but its own event gets 10 minutes to arrive first (it names the requester)');

        await runSweep(25, 'a day later');
        const found = await getDeps().requests.getActiveForPec(lostPecId);
        if (check(!!found?.request.card, 'analytics-dev: the sweep opened no request with a card')) {
            const card = bot.cards().at(-1);
            write('analytics-dev.json', card);
            step('CARD', `request ${found!.request.id} posted by the sweep: "${statusLineOf(card)}"`);
            tracked.push({
                label: 'analytics-dev',
                kind: 'postgres-flexible',
                pecId: lostPecId,
                requestId: found!.request.id,
                card: found!.request.card!,
                expect: {
                    status: 'Approved',
                    description: 'Auto-approved by policy dev-trusted-auto',
                    actions: ['requested', 'decided', 'card-posted', 'applied'],
                },
            });
        }
        for (const t of tracked.filter((t) => t.expect.actions.includes('reminded'))) {
            const reminder = bot.activities.find(
                (a) => a.conversationId === t.card.conversationId && a.replyToId !== undefined,
            );
            const content = (reminder?.activity.attachments as { content?: unknown }[] | undefined)?.[0]?.content;
            if (check(!!content, `${t.label}: no reminder in the card's thread`)) {
                write(`${t.label}.reminder.json`, content);
                step('REMIND', `${t.label}: ${String(reminder?.activity.summary ?? '')}`);
            }
        }
        await drain();

        await runSweep(24 * 7 + 1, 'a week later');
        await drain();
        console.log('');

        // The side door: a connection created already Approved (its creator holds the approval right on the server),
        // from another tenant's subscription, by a guest whose token carries OUR tenant. No request ever existed.
        const ordersServer = arm.addServer({
            subscriptionId: ours,
            resourceGroup: 'rg-data',
            provider: kindInfo['mysql-flexible'].provider,
            type: kindInfo['mysql-flexible'].type,
            name: 'orders-prod',
            publicNetworkAccess: 'Disabled',
            tags: { environment: 'prod' },
        });
        const sidePecId = arm.addPec(ordersServer, {
            name: `pe-vendor-sync.${randomUUID()}`,
            privateEndpointId: `/subscriptions/${foreign}/resourceGroups/rg-vendor/providers/Microsoft.Network/privateEndpoints/pe-vendor-sync`,
            status: 'Approved',
            description: 'Auto-Approved',
        });
        step('PEC', 'orders-prod: created already APPROVED, from a FOREIGN subscription, by a guest of our tenant');
        const sideEvent = {
            id: randomUUID(),
            subject: sidePecId,
            eventType: 'Microsoft.Resources.ResourceWriteSuccess',
            eventTime: new Date().toISOString(),
            dataVersion: '2',
            data: {
                operationName: `${kindInfo['mysql-flexible'].provider}/flexibleServers/privateEndpointConnections/write`,
                resourceUri: sidePecId,
                subscriptionId: ours,
                tenantId: tenant,
                correlationId: randomUUID(),
                claims: { upn: 'vendor-guest@contoso.com', name: 'Vendor Guest', tid: tenant },
            },
        };
        {
            const { context, logs: sideLogs } = contextFor('pecEvents');
            await pecEvents(sideEvent as unknown as EventGridEvent, context);
            // Redelivered: still one alert.
            await pecEvents(sideEvent as unknown as EventGridEvent, context);
            logs.push(...sideLogs.filter((l) => !/ALERT BYPASS/.test(l)));
        }
        const alert = await getDeps().requests.getActiveForPec(sidePecId);
        if (check(alert?.request.bypass?.action === 'revoke', 'orders-prod: the bypass was not judged for a revoke')) {
            const card = bot.cards().at(-1);
            write('orders-prod.bypass.json', card);
            step('ALERT', `request ${alert!.request.id} posted: "${statusLineOf(card)}"`);
            await drain();
            const state = (
                arm.getPec(sidePecId) as {
                    properties: { privateLinkServiceConnectionState: { status: string; description: string } };
                }
            ).properties.privateLinkServiceConnectionState;
            step('ARM', `orders-prod: ${state.status}, "${state.description}"`);
            check(state.status === 'Rejected', `orders-prod: ARM says ${state.status}, expected Rejected (revoked)`);
            const audit = await getDeps().audit.list(alert!.request.id);
            step('AUDIT', audit.map((e) => `${e.seq}:${e.action}`).join(' → '));
            check(
                audit.map((e) => e.action).join(',') === 'bypassed,decided,card-posted,applied',
                `orders-prod: audit ${audit.map((e) => e.action).join(',')}`,
            );
            check(
                bot.cards().filter((c) => JSON.stringify(c).includes('approved without the gate')).length === 1,
                'orders-prod: not exactly one alert card',
            );
        }
        console.log('');

        // 5. What came of it, per PEC.
        const finalStatuses: string[] = [];
        for (const t of tracked) {
            const state = (
                arm.getPec(t.pecId) as
                    | { properties?: { privateLinkServiceConnectionState?: { status?: string; description?: string } } }
                    | undefined
            )?.properties?.privateLinkServiceConnectionState;
            const status = state?.status ?? '(missing)';
            finalStatuses.push(status);
            step('ARM', `${t.label}: ${status}, "${state?.description ?? ''}"`);
            check(status === t.expect.status, `${t.label}: ARM says ${status}, expected ${t.expect.status}`);
            check(
                state?.description === t.expect.description,
                `${t.label}: ARM description "${state?.description}", expected "${t.expect.description}"`,
            );

            const updates = bot.updates.filter(
                (u) => u.conversationId === t.card.conversationId && u.activityId === t.card.activityId,
            );
            const last = updates[updates.length - 1];
            const updatedCard = (last?.activity.attachments as { content?: unknown }[] | undefined)?.[0]?.content;
            if (check(!!updatedCard, `${t.label}: card not updated`)) {
                write(`${t.label}.updated.json`, updatedCard);
                step(
                    'CARD',
                    `updated for everyone (${updates.length} PUT${updates.length === 1 ? '' : 's'}): "${statusLineOf(updatedCard)}"`,
                );
            }
            const replies = bot.activities.filter(
                (a) => a.conversationId === t.card.conversationId && a.replyToId !== undefined,
            );
            for (const reply of replies) {
                step('THREAD', `reply: "${String(reply.activity.text ?? reply.activity.summary ?? '')}"`);
            }

            const stored = await getDeps().requests.get(t.requestId);
            const audit = await getDeps().audit.list(t.requestId);
            const chain = verifyChain(audit);
            step(
                'AUDIT',
                `${audit.map((e) => `${e.seq}:${e.action}`).join(' → ')} (${chain.length === 0 ? 'chain intact' : chain.join('; ')})`,
            );
            check(chain.length === 0, `${t.label}: audit chain broken`);
            const actions = audit.map((e) => e.action).join(',');
            check(
                actions === t.expect.actions.join(','),
                `${t.label}: audit ${actions}, expected ${t.expect.actions.join(',')}`,
            );
            check(
                stored?.request.status === 'applied',
                `${t.label}: request ${stored?.request.status}, expected applied`,
            );
        }
        check(
            tracked.length === serverKinds.length + 1,
            `${tracked.length} of ${serverKinds.length + 1} PECs got a card`,
        );

        // 6. Summary.
        console.log('\nAudit trail:');
        for (const t of tracked) {
            const audit = await getDeps().audit.list(t.requestId);
            console.log(`  ${t.label.padEnd(18)} ${t.requestId}`);
            for (const e of audit) {
                const who =
                    e.actor.kind === 'system' ? 'system' : `${e.actor.kind} ${e.actor.name ?? e.actor.id ?? ''}`;
                const text = e.text ? ` "${e.text}"` : '';
                console.log(`    ${String(e.seq).padStart(2)} ${e.at} ${e.action.padEnd(12)} ${who}${text}`);
            }
        }
        const count = (status: string) => finalStatuses.filter((s) => s === status).length;
        console.log(`\n${written} cards written to ${path.relative(process.cwd(), outDir)}`);
        // 7. The dashboard of this run, as static pages next to the cards.
        const { writeDashboardPages } = await import('./demo-dashboard');
        const pages = await writeDashboardPages(outDir, { ...alice, tenantId: tenant }, tracked).catch(
            (err: unknown) => {
                check(false, `dashboard: ${String(err)}`);
                return [];
            },
        );
        console.log(
            `Dashboard: open ${path.relative(process.cwd(), path.join(outDir, pages[0] ?? 'dashboard.html'))} in a browser`,
        );
        if (problems.length > 0) {
            console.error(`\n${problems.length} problem(s):\n  ${problems.join('\n  ')}`);
            if (logs.length > 0) {
                console.error(`\nWarnings and errors the functions logged:\n  ${logs.join('\n  ')}`);
            }
            process.exitCode = 1;
        }
        console.log(`\n${count('Approved')} approved, ${count('Rejected')} rejected`);
    } finally {
        await Promise.all([token.close(), arm.close(), bot.close(), botIdentity.close(), graph.close()]);
        await azurite.stop();
    }
}

main().catch((err: unknown) => {
    console.error(err);
    process.exit(1);
});

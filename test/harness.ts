import { randomBytes, randomUUID } from 'node:crypto';
import { HttpRequest, InvocationContext, type EventGridEvent } from '@azure/functions';
import { decisionPage } from '../functions/decisionPage';
import { QueueClient } from '@azure/storage-queue';
import { applyDecisionFunction } from '../functions/applyDecision';
import { pecEvents } from '../functions/pecEvents';
import { teamsMessages } from '../functions/teamsMessages';
import { loadConfig, resetConfig, type Config } from '../src/config';
import { kindInfo, serverKinds, type ServerKind } from '../src/domain/ids';
import type { ApprovalRequest } from '../src/domain/request';
import { getDeps, resetDeps } from '../src/runtime';
import { encodeClientPrincipal } from '../src/web/easyAuth';
import { applyMaxAttempts, StorageApplyQueue } from '../src/storage/applyQueue';
import type { WorkflowDeps } from '../src/workflow/deps';
import { AppInsightsEmulator } from './emulators/appInsights';
import { ArmEmulator, type ArmEmulatorOptions } from './emulators/arm';
import { BotConnectorEmulator, type RecordedConversation } from './emulators/botConnector';
import { BotIdentityEmulator } from './emulators/botIdentity';
import { GraphEmulator, type ChatMessageRecord } from './emulators/graph';
import { TokenEmulator } from './emulators/tokenEmulator';
import { azuriteConnectionString, noCredential } from './storage/azuriteTable';

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

/** The people of the tests: two approvers, one colleague who is not one, and the requester of the default event. */
export const people = {
    alice: { objectId: 'a11ce000-0000-4000-8000-00000000a11c', name: 'Alice Approver', upn: 'alice@contoso.com' },
    bob: { objectId: 'b0b00000-0000-4000-8000-000000000b0b', name: 'Bob Approver', upn: 'bob@contoso.com' },
    mallory: { objectId: 'bad00000-0000-4000-8000-0000000bad00', name: 'Mallory', upn: 'mallory@contoso.com' },
    /** The requester in `resourceWriteEvent`'s default claims; also an approver, to test self-approval. */
    dev: { objectId: '0a0a0a0a-1111-4111-8111-000000000abc', name: 'Dev Eloper', upn: 'dev@contoso.com' },
};
export type TestPerson = (typeof people)[keyof typeof people];

/** A person's Teams user id (MRI): what the roster lists, `refresh.userIds` names and a click's `from.id` carries. */
export function mriOf(person: { objectId: string }): string {
    return `29:${person.objectId}`;
}

export interface Harness {
    token: TokenEmulator;
    arm: ArmEmulator;
    bot: BotConnectorEmulator;
    botIdentity: BotIdentityEmulator;
    graph: GraphEmulator;
    /** Application Insights ingestion, with Entra auth required as deployed. */
    appInsights: AppInsightsEmulator;
    /** This harness's own apply queue on Azurite (test files run in parallel against one Azurite). */
    queue: QueueClient;
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
export async function closeSharedTokenEmulator(): Promise<void> {
    await (await sharedToken)?.close();
    sharedToken = undefined;
}
// Under Jest, after each file; the benchmark (plain node) calls closeSharedTokenEmulator itself.
if (typeof afterAll === 'function') {
    afterAll(closeSharedTokenEmulator);
}

export async function startHarness(
    options: {
        settings?: Record<string, string>;
        arm?: ArmEmulatorOptions;
        /** Home tenants ARM answers from the start, over the defaults below (a process asks as it starts). */
        subscriptionTenants?: Record<string, string>;
    } = {},
): Promise<Harness> {
    const token = await tokenEmulator();
    const arm = await ArmEmulator.start({ expectedAudience: 'self', ...options.arm });
    // Our two subscriptions are in our tenant, the foreign one in another: what ARM says about their home tenants.
    arm.setSubscriptionTenant(ids.ours, ids.tenant);
    arm.setSubscriptionTenant(ids.second, ids.tenant);
    arm.setSubscriptionTenant(ids.foreign, ids.foreignTenant);
    for (const [subscriptionId, tenantId] of Object.entries(options.subscriptionTenants ?? {})) {
        arm.setSubscriptionTenant(subscriptionId, tenantId);
    }
    const bot = await BotConnectorEmulator.start();
    const botIdentity = await BotIdentityEmulator.start();
    // Our tenant's own Entra metadata and keys, for the tokens a single-tenant bot receives from it.
    await botIdentity.addTenant(ids.tenant);
    const graph = await GraphEmulator.start();
    const appInsights = await AppInsightsEmulator.start();
    graph.expectedAudience = graph.url;
    for (const person of Object.values(people)) {
        graph.addUser({ id: person.objectId, displayName: person.name, userPrincipalName: person.upn });
    }
    graph.addGroup(ids.approvers, { members: [people.alice.objectId, people.dev.objectId, 'nested-approvers'] });
    graph.addGroup('nested-approvers', { members: [people.bob.objectId] });
    const suffix = randomUUID().replace(/-/g, '').slice(0, 12);
    const connectionString = azuriteConnectionString();
    const env: Record<string, string> = {
        ...token.env,
        WATCHED_SUBSCRIPTION_IDS: `${ids.ours},${ids.second}`,
        // Every registered kind, so the whole loop runs for each of them; the default (the four database kinds) is
        // tested in test/config.test.ts.
        WATCHED_RESOURCE_KINDS: serverKinds.join(','),
        TRUSTED_SUBSCRIPTION_IDS: `${ids.ours},${ids.second}`,
        AZURE_TENANT_ID: ids.tenant,
        AZURE_CLIENT_ID: ids.client,
        ARM_ENDPOINT: arm.url,
        GRAPH_ENDPOINT: graph.url,
        BOT_OPENID_METADATA_URL: botIdentity.metadataUrl,
        AZURE_AUTHORITY_HOST: botIdentity.authorityHost,
        TEAMS_SERVICE_URL: bot.serviceUrl,
        TEAMS_TEAM_ID: '19:team0000000000000000000000000000@thread.tacv2',
        TEAMS_GROUP_ID: '7e4a0c1d-2b3f-4c5d-8e9f-0a1b2c3d4e5f',
        TEAMS_CHANNEL_ID: '19:chan0000000000000000000000000000@thread.tacv2',
        APPROVER_GROUP_IDS: ids.approvers,
        PUBLIC_BASE_URL: 'https://pec-gate.example.net',
        AzureWebJobsStorage: connectionString,
        REQUESTS_TABLE: `req${suffix}`,
        AUDIT_TABLE: `aud${suffix}`,
        ARM_MAX_RETRIES: '3',
        ARM_RETRY_DELAY_MS: '20',
        ARM_LRO_DEADLINE_SECONDS: '10',
        SWEEP_SCHEDULE: '0 */15 * * * *',
        APPLICATIONINSIGHTS_CONNECTION_STRING: appInsights.connectionString,
        APPLICATIONINSIGHTS_AUTHENTICATION_STRING: `Authorization=AAD;ClientId=${ids.client}`,
        ...options.settings,
    };
    // Graph reads the channel the Bot Connector emulator posts into: the bot's threads are its root messages.
    graph.channelMessages = (teamId, channelId) =>
        teamId === env.TEAMS_GROUP_ID && channelId === env.TEAMS_CHANNEL_ID
            ? bot.conversations.map((c) => chatMessageOf(bot, c, teamId, channelId, env.AZURE_CLIENT_ID ?? ids.client))
            : undefined;
    // Everyone in the tests is a member of the approval channel's team, as Teams lists them.
    bot.setRoster(
        env.TEAMS_TEAM_ID ?? '',
        Object.values(people).map((p) => ({
            id: mriOf(p),
            objectId: p.objectId,
            name: p.name,
            userPrincipalName: p.upn,
            tenantId: ids.tenant,
            userRole: 'user' as const,
        })),
    );
    const previous = new Map<string, string | undefined>();
    for (const [k, v] of Object.entries(env)) {
        previous.set(k, process.env[k]);
        process.env[k] = v;
    }
    resetConfig();
    resetDeps();
    const config = loadConfig(process.env);
    // The functions and the tests share the process's dependencies; only the queue is this harness's own.
    const deps = getDeps();
    // A new process asks ARM for the trusted subscriptions' tenants as it starts (runtime.ts); those answers are in
    // before a test makes its own (asking again joins the lookup under way, and then reads the cache).
    await Promise.all(config.TRUSTED_SUBSCRIPTION_IDS.map((id) => deps.tenants?.tenantOf(id)));
    // A test's count of ARM calls starts with its own.
    arm.requests.length = 0;
    const queueName = `pec-apply-${suffix}`;
    deps.applyQueue = new StorageApplyQueue(config.storage, noCredential, queueName);
    const queue = new QueueClient(connectionString, queueName);
    // Teams stamps a new thread with the time it was created, on the same clock as ours: the workflow's, which tests
    // move forward (the channel read that finds a lost card compares the two).
    bot.now = () => deps.now();
    return {
        token,
        arm,
        bot,
        botIdentity,
        graph,
        appInsights,
        queue,
        env,
        config,
        deps,
        async close() {
            await Promise.all([arm.close(), bot.close(), botIdentity.close(), graph.close(), appInsights.close()]);
            await queue.deleteIfExists();
            await new QueueClient(connectionString, `${queueName}-poison`).deleteIfExists();
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

/** Every line any test context logs while `lines` is set: a test's view of all the invocations in a flow. */
export const logTap: { lines?: string[] } = {};

export function testContext(
    functionName = 'test',
    triggerMetadata?: Record<string, unknown>,
): InvocationContext & { logs: string[] } {
    const logs: string[] = [];
    const context = new InvocationContext({
        functionName,
        invocationId: randomUUID(),
        logHandler: (level, ...args) => {
            const line = `${level}: ${args.map(String).join(' ')}`;
            logs.push(line);
            logTap.lines?.push(line);
        },
        ...(triggerMetadata ? { triggerMetadata } : {}),
    });
    return Object.assign(context, { logs });
}

/** The open request of a PEC. */
export async function requestOf(h: Harness, pecId: string): Promise<ApprovalRequest> {
    const stored = await h.deps.requests.getActiveForPec(pecId);
    if (!stored) {
        throw new Error(`No open request for ${pecId}`);
    }
    return stored.request;
}

/** A pending PEC of the given kind, its event through the real `pecEvents`, and the request (with its card) that opened. */
export async function openCard(
    h: Harness,
    kind: ServerKind,
    options: Parameters<typeof seedPendingPec>[2] = {},
): Promise<{ seeded: SeededPec; request: ApprovalRequest }> {
    const seeded = seedPendingPec(h.arm, kind, options);
    await pecEvents(resourceWriteEvent(seeded.pecId) as unknown as EventGridEvent, testContext('pecEvents'));
    return { seeded, request: await requestOf(h, seeded.pecId) };
}

export interface ClickOptions {
    verb?: 'approve' | 'reject' | 'refresh';
    text?: string;
    who?: TestPerson;
    /** Changes to the activity, applied last (a wrong tenant, another conversation...). */
    activity?: Record<string, unknown>;
    /** The Authorization header to send; by default a valid Bot Framework token for the activity. */
    authorization?: string | null;
}

/** An `adaptiveCard/action` invoke for a request's card, as Teams sends it when someone clicks. */
export function cardActionActivity(h: Harness, request: ApprovalRequest, options: ClickOptions = {}) {
    const who = options.who ?? people.alice;
    return {
        type: 'invoke',
        name: 'adaptiveCard/action',
        id: `f:${randomBytes(8).toString('hex')}`,
        channelId: 'msteams',
        serviceUrl: request.card?.serviceUrl ?? h.bot.serviceUrl,
        from: { id: mriOf(who), aadObjectId: who.objectId, name: who.name },
        recipient: { id: `28:${ids.client}`, name: 'PEC gate' },
        conversation: { id: request.card?.conversationId ?? 'none', conversationType: 'channel', tenantId: ids.tenant },
        replyToId: request.card?.activityId,
        channelData: { tenant: { id: ids.tenant }, channel: { id: h.env.TEAMS_CHANNEL_ID } },
        value: {
            action: {
                type: 'Action.Execute',
                verb: options.verb ?? 'approve',
                data: { requestId: request.id, ...(options.text === undefined ? {} : { responseText: options.text }) },
            },
            trigger: 'manual',
        },
        ...options.activity,
    };
}

export interface ClickResult {
    status: number;
    body: { statusCode?: number; type?: string; value?: unknown } | undefined;
    text: string;
}

/** Posts an activity to `/api/messages` through the registered handler, with a Bot Framework token. */
export async function postActivity(
    h: Harness,
    activity: Record<string, unknown>,
    authorization?: string | null,
): Promise<ClickResult> {
    const auth =
        authorization === undefined
            ? `Bearer ${await h.botIdentity.tokenFor({ audience: ids.client, serviceUrl: String(activity.serviceUrl) })}`
            : authorization;
    const request = new HttpRequest({
        url: 'https://pec-gate.example.net/api/messages',
        method: 'POST',
        headers: { 'content-type': 'application/json', ...(auth === null ? {} : { authorization: auth }) },
        body: { string: JSON.stringify(activity) },
    });
    const response = await teamsMessages(request, testContext('teamsMessages'));
    const body = response.jsonBody as ClickResult['body'];
    assertInvokeContract(activity, response.status ?? 200, body);
    return { status: response.status ?? 200, body, text: JSON.stringify(body ?? '') };
}

/**
 * Every answer to an `adaptiveCard/action` invoke is one the Universal Actions response format allows: a card or a
 * message with 200, an error with 400 or 500 (Microsoft's Teams SDK: `AdaptiveCardActionResponse`). Checked on every
 * click any test makes that the channel accepted (HTTP 200), so no path can answer with a status Teams does not know.
 */
const invokeContract: Record<string, readonly number[]> = {
    'application/vnd.microsoft.card.adaptive': [200],
    'application/vnd.microsoft.activity.message': [200],
    'application/vnd.microsoft.error': [400, 500],
    'application/vnd.microsoft.activity.loginRequest': [401],
    'application/vnd.microsoft.error.incorrectAuthCode': [401],
    'application/vnd.microsoft.error.preconditionFailed': [412],
};
function assertInvokeContract(activity: Record<string, unknown>, httpStatus: number, body: unknown): void {
    // A request refused at the HTTP level (no valid Bot Framework token: 401) carries no invoke response.
    if (activity.type !== 'invoke' || activity.name !== 'adaptiveCard/action' || httpStatus !== 200) {
        return;
    }
    const { statusCode, type } = body as { statusCode?: unknown; type?: unknown };
    const allowed = typeof type === 'string' ? invokeContract[type] : undefined;
    if (!allowed || typeof statusCode !== 'number' || !allowed.includes(statusCode)) {
        throw new Error(`invoke answered outside the Universal Actions contract: ${JSON.stringify(body)}`);
    }
}

export async function click(h: Harness, request: ApprovalRequest, options: ClickOptions = {}): Promise<ClickResult> {
    return postActivity(h, cardActionActivity(h, request, options), options.authorization);
}

/**
 * Plays the Functions host's part for the apply queue: delivers each visible message to the handler with its dequeue
 * count, deletes it on success, and on failure leaves it for redelivery or, after the last attempt, moves it to the
 * poison queue. Returns the number of deliveries.
 */
export async function drainApplyQueue(h: Harness, options: { maxDeliveries?: number } = {}): Promise<number> {
    await h.queue.createIfNotExists();
    let deliveries = 0;
    const max = options.maxDeliveries ?? 50;
    for (;;) {
        if (deliveries >= max) {
            return deliveries;
        }
        const { receivedMessageItems } = await h.queue.receiveMessages({
            numberOfMessages: Math.min(32, max - deliveries),
            visibilityTimeout: 60,
        });
        if (receivedMessageItems.length === 0) {
            return deliveries;
        }
        for (const message of receivedMessageItems) {
            deliveries += 1;
            const text = Buffer.from(message.messageText, 'base64').toString('utf8');
            let item: unknown = text;
            try {
                item = JSON.parse(text);
            } catch {
                // As the host does: a non-JSON message reaches the handler as a string.
            }
            const context = testContext('applyDecision', {
                id: message.messageId,
                dequeueCount: message.dequeueCount,
            });
            try {
                await applyDecisionFunction(item, context);
                await h.queue.deleteMessage(message.messageId, message.popReceipt);
            } catch {
                if (message.dequeueCount >= applyMaxAttempts) {
                    const poison = new QueueClient(azuriteConnectionString(), `${h.queue.name}-poison`);
                    await poison.createIfNotExists();
                    await poison.sendMessage(message.messageText);
                    await h.queue.deleteMessage(message.messageId, message.popReceipt);
                } else {
                    await h.queue.updateMessage(message.messageId, message.popReceipt, undefined, 0);
                }
            }
        }
    }
}

export async function poisonMessages(h: Harness): Promise<string[]> {
    const poison = new QueueClient(azuriteConnectionString(), `${h.queue.name}-poison`);
    if (!(await poison.exists())) {
        return [];
    }
    const { peekedMessageItems } = await poison.peekMessages({ numberOfMessages: 32 });
    return peekedMessageItems.map((m) => Buffer.from(m.messageText, 'base64').toString('utf8'));
}

/** The web link on the posted card, as an approver would click it. */
export function cardLink(h: Harness, requestId: string): URL {
    for (const card of h.bot.cards()) {
        const text = JSON.stringify(card);
        const m = /"url":"(https:\/\/pec-gate\.example\.net\/api\/requests\/[^"]+)"/.exec(text);
        if (m && text.includes(requestId)) {
            return new URL(m[1]!);
        }
    }
    throw new Error(`No web link on the card of ${requestId}`);
}

export interface WebCall {
    method?: 'GET' | 'POST';
    url: URL;
    who?: TestPerson | null;
    form?: Record<string, string>;
    principalHeader?: string;
    /**
     * The headers a browser adds to a POST: by default `Origin` is the page's own (the form posts back to its URL's
     * origin), as from the decision page; given here to play another site, an opaque origin or a client without them.
     */
    browser?: { origin?: string; secFetchSite?: string };
}

export async function web(call: WebCall): Promise<{ status: number; html: string; headers: Record<string, string> }> {
    const who = call.who === undefined ? people.alice : call.who;
    const headers: Record<string, string> = {};
    if (call.principalHeader !== undefined) {
        headers['x-ms-client-principal'] = call.principalHeader;
    } else if (who) {
        headers['x-ms-client-principal'] = encodeClientPrincipal({ ...who, tenantId: ids.tenant });
    }
    let body: string | undefined;
    if (call.method === 'POST') {
        body = new URLSearchParams(call.form ?? {}).toString();
        headers['content-type'] = 'application/x-www-form-urlencoded';
        const browser = call.browser ?? { origin: call.url.origin };
        if (browser.origin !== undefined) {
            headers.origin = browser.origin;
        }
        if (browser.secFetchSite !== undefined) {
            headers['sec-fetch-site'] = browser.secFetchSite;
        }
    }
    const id = decodeURIComponent(call.url.pathname.split('/').pop() ?? '');
    const request = new HttpRequest({
        url: call.url.toString(),
        method: call.method ?? 'GET',
        headers,
        params: { id },
        ...(body === undefined ? {} : { body: { string: body } }),
    });
    const response = await decisionPage(request, testContext('decisionPage'));
    return {
        status: response.status ?? 200,
        html: String(response.body ?? ''),
        headers: Object.fromEntries(Object.entries(response.headers ?? {}).map(([k, v]) => [k, String(v)])),
    };
}

export function hiddenField(html: string, name: string): string {
    const m = new RegExp(`name="${name}"[^>]*value="([^"]*)"|value="([^"]*)"[^>]*name="${name}"`).exec(html);
    const value = m?.[1] ?? m?.[2];
    if (value === undefined) {
        throw new Error(`No hidden field ${name} on the page`);
    }
    return value.replace(/&amp;/g, '&');
}

/** A Bot Connector emulator thread as Graph lists it: the root message, from the bot, with its card as it now stands. */
function chatMessageOf(
    bot: BotConnectorEmulator,
    conversation: RecordedConversation,
    teamId: string,
    channelId: string,
    botAppId: string,
): ChatMessageRecord {
    const updated = bot.updates.filter(
        (u) => u.conversationId === conversation.id && u.activityId === conversation.activityId,
    );
    const activity = (updated.at(-1)?.activity ?? conversation.parameters.activity) as
        { attachments?: { contentType?: string; content?: unknown }[] } | undefined;
    const attachments = (activity?.attachments ?? []).map((a, i) => ({
        id: `${conversation.activityId}-${i}`,
        contentType: a.contentType ?? '',
        contentUrl: null,
        content: JSON.stringify(a.content ?? null),
        name: null,
        thumbnailUrl: null,
    }));
    return {
        id: conversation.activityId,
        replyToId: null,
        messageType: 'message',
        createdDateTime: conversation.createdAt,
        lastModifiedDateTime: updated.at(-1)?.updatedAt ?? conversation.createdAt,
        from: {
            application: { id: botAppId, displayName: 'PEC gate', applicationIdentityType: 'bot' },
            user: null,
            device: null,
        },
        body: {
            contentType: 'html',
            content: attachments.map((a) => `<attachment id="${a.id}"></attachment>`).join(''),
        },
        channelIdentity: { teamId, channelId },
        attachments,
    };
}

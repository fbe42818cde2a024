import type { EventGridEvent } from '@azure/functions';
import { pecEvents } from '../../functions/pecEvents';
import { TransientError } from '../../src/domain/errors';
import { serverKinds } from '../../src/domain/ids';
import { loadConfig } from '../../src/config';
import { BlobAuditAnchors, headOf } from '../../src/storage/auditAnchor';
import { verifyChain } from '../../src/storage/auditLog';
import { sendJson, startServer, type RunningServer } from '../emulators/server';
import { FaultyStorage } from '../emulators/faultyStorage';
import { azuriteConnectionString, noCredential } from '../storage/azuriteTable';
import { ids, people, resourceWriteEvent, seedPendingPec, startHarness, testContext, type Harness } from '../harness';

/**
 * End to end through the registered handler: an Event Grid event goes in, the real SDK clients read the emulated ARM,
 * the request lands in Azurite, and the card arrives at the Bot Connector emulator.
 */

const asEvent = (e: Record<string, unknown>) => e as unknown as EventGridEvent;

function cardText(h: Harness, index: number): string {
    return JSON.stringify(h.bot.cards()[index]);
}

describe('pecEvents end to end', () => {
    let h: Harness;
    beforeEach(async () => {
        h = await startHarness();
    });
    afterEach(async () => {
        await h.close();
    });

    it.each(serverKinds)('posts one approval card with the right facts for a pending PEC on a %s', async (kind) => {
        const seeded = seedPendingPec(h.arm, kind, {
            message: 'Reporting tier needs read access',
            approved: [ids.ours, ids.foreign],
            publicNetworkAccess: 'Enabled',
        });
        await pecEvents(asEvent(resourceWriteEvent(seeded.pecId)), testContext());

        expect(h.bot.conversations).toHaveLength(1);
        const conversation = h.bot.conversations[0]!;
        expect(conversation.parameters).toMatchObject({
            isGroup: true,
            channelData: { channel: { id: h.env.TEAMS_CHANNEL_ID }, tenant: { id: ids.tenant } },
        });
        const card = cardText(h, 0);
        expect(card).toContain(`${kind}-01`);
        expect(card).toContain('rg-data');
        expect(card).toContain(ids.ours);
        expect(card).toContain('Reporting tier needs read access');
        expect(card).toContain('Enabled');
        expect(card).toContain('dev@contoso.com');
        expect(card).toMatch(/"type":"Action.Execute"/);

        const stored = await h.deps.requests.getActiveForPec(seeded.pecId);
        expect(stored?.request).toMatchObject({
            status: 'pending',
            card: { channel: 'bot', conversationId: conversation.id, activityId: conversation.activityId },
            facts: { approvedPecCount: 2, approvedUntrustedPecCount: 1, publicNetworkAccess: 'Enabled' },
            requester: { upn: 'dev@contoso.com', tenantId: ids.tenant },
        });
        // Request ids are random and at least 128 bits.
        expect(stored!.request.id).toMatch(/^[A-Za-z0-9_-]{22,}$/);

        const audit = await h.deps.audit.list(stored!.request.id);
        expect(audit.map((e) => e.action)).toEqual(['requested', 'card-posted']);
        expect(audit[0]!.actor).toMatchObject({ kind: 'requester', name: 'dev@contoso.com' });
        expect(verifyChain(audit)).toEqual([]);
        // The bot token was minted by the managed identity for the Bot Framework.
        expect(h.token.issued.map((t) => t.resource)).toContain('https://api.botframework.com');
    });

    it('flags a private endpoint from a foreign subscription and tenant on the card', async () => {
        const seeded = seedPendingPec(h.arm, 'postgres-flexible', { peSubscriptionId: ids.foreign });
        const claims = {
            oid: '0a0a0a0a-1111-4111-8111-00000000ffff',
            upn: 'mallory@fabrikam.example',
            tid: ids.foreignTenant,
        };
        await pecEvents(asEvent(resourceWriteEvent(seeded.pecId, { claims })), testContext());

        const card = cardText(h, 0);
        expect(card).toContain(ids.foreign);
        expect(card).toMatch(/not in the trusted list/i);
        expect(card).toContain(ids.foreignTenant);
        const stored = await h.deps.requests.getActiveForPec(seeded.pecId);
        expect(stored?.request.facts.privateEndpointTrusted).toBe(false);
        expect(stored?.request.requesterForeignTenant).toBe(true);
    });

    it('accepts the proxy write the network service makes, and CloudEvents', async () => {
        const seeded = seedPendingPec(h.arm, 'mysql-single');
        const proxyId = seeded.pecId.replace('privateEndpointConnections', 'privateEndpointConnectionProxies');
        const event = resourceWriteEvent(proxyId);
        const cloudEvent = {
            specversion: '1.0',
            id: 'ce-1',
            source: event.topic,
            type: event.eventType,
            subject: event.subject,
            time: event.eventTime,
            data: event.data,
        };
        await pecEvents(asEvent(cloudEvent), testContext());
        await pecEvents(asEvent(event), testContext());
        expect(h.bot.conversations).toHaveLength(1);
        // The requester is attached to the PEC the proxy names.
        expect((await h.deps.requests.getActiveForPec(seeded.pecId))?.request.requester?.upn).toBe('dev@contoso.com');
    });

    it('gives exactly one card when the same event is delivered twice and concurrently', async () => {
        const seeded = seedPendingPec(h.arm, 'postgres-single');
        const event = asEvent(resourceWriteEvent(seeded.pecId));
        await pecEvents(event, testContext());
        await pecEvents(event, testContext());
        await Promise.all(Array.from({ length: 6 }, () => pecEvents(event, testContext())));
        expect(h.bot.conversations).toHaveLength(1);

        const other = seedPendingPec(h.arm, 'mysql-flexible');
        const burst = asEvent(resourceWriteEvent(other.pecId));
        await Promise.all(Array.from({ length: 8 }, () => pecEvents(burst, testContext())));
        expect(h.bot.conversations).toHaveLength(2);
        const stored = await h.deps.requests.getActiveForPec(other.pecId);
        expect((await h.deps.audit.list(stored!.request.id)).filter((e) => e.action === 'requested')).toHaveLength(1);
    });

    it('asks the identity endpoint for the ARM token once, ahead of the first call, and shares it', async () => {
        await Promise.all(
            (['postgres-single', 'mysql-flexible'] as const).map(async (kind) => {
                const seeded = seedPendingPec(h.arm, kind, { serverName: `${kind}-token` });
                await pecEvents(asEvent(resourceWriteEvent(seeded.pecId)), testContext());
            }),
        );
        expect(h.bot.conversations).toHaveLength(2);
        // This harness's ARM emulator has a port of its own, so its resource is asked by this harness only.
        const arm = h.token.issued.filter((i) => i.resource === new URL(h.arm.url).origin);
        expect(arm).toEqual([{ resource: new URL(h.arm.url).origin, clientId: ids.client }]);
    });

    it('answers a redelivery from the request alone, and a new write with one read of the connection: no write', async () => {
        const seeded = seedPendingPec(h.arm, 'postgres-flexible');
        const event = asEvent(resourceWriteEvent(seeded.pecId));
        await pecEvents(event, testContext());
        const stored = await h.deps.requests.getActiveForPec(seeded.pecId);
        const armCalls = h.arm.requests.length;
        const botCalls = h.bot.requests.length;
        // The same event again (Event Grid delivers at least once): the request says it came from this operation.
        await pecEvents(event, testContext());
        expect(h.arm.requests.length).toBe(armCalls);
        // A second write about the same connection is a new operation, with the same answer.
        await pecEvents(asEvent(resourceWriteEvent(seeded.pecId)), testContext());
        // One GET of the connection: the write may be an approval in the portal (the side door), which must be
        // judged at once; a connection still Pending changes nothing.
        const reads = h.arm.requests.slice(armCalls);
        expect(reads).toHaveLength(1);
        expect(reads.every((r) => r.method === 'GET' && r.path.toLowerCase() === seeded.pecId.toLowerCase())).toBe(
            true,
        );
        expect(h.bot.requests.length).toBe(botCalls);
        expect((await h.deps.requests.get(stored!.request.id))?.etag).toBe(stored!.etag);
        expect(await h.deps.audit.list(stored!.request.id)).toHaveLength(2);
    });

    it('posts the card, trail intact, when the delivery that opened the request failed before auditing it', async () => {
        const seeded = seedPendingPec(h.arm, 'postgres-flexible');
        const audit = h.deps.audit;
        let failed = false;
        // Storage refuses the first entry of the new request's trail once (the request itself was written).
        h.deps.audit = {
            append: async (input, options) => {
                if (!failed && input.action === 'requested') {
                    failed = true;
                    throw new TransientError('Audit: could not append: 503 ServerBusy');
                }
                return audit.append(input, options);
            },
            list: (id) => audit.list(id),
        };
        const event = asEvent(resourceWriteEvent(seeded.pecId));
        await expect(pecEvents(event, testContext())).rejects.toThrow(/ServerBusy/);
        expect(h.bot.conversations).toHaveLength(0);

        // Event Grid redelivers within seconds: the card goes out at once, after the missing entry.
        await pecEvents(event, testContext());
        expect(h.bot.conversations).toHaveLength(1);
        const stored = await h.deps.requests.getActiveForPec(seeded.pecId);
        const trail = await audit.list(stored!.request.id);
        expect(trail.map((e) => e.action)).toEqual(['requested', 'card-posted']);
        expect(trail[0]!.detail).toMatch(/recorded late/);
        expect(verifyChain(trail)).toEqual([]);
    });

    it('opens only the PEC the event names; its siblings wait for their own events, with their own requesters', async () => {
        const first = seedPendingPec(h.arm, 'postgres-flexible');
        const second = h.arm.addPec(first.serverId, {
            name: 'pe-sibling.0000',
            privateEndpointId: `/subscriptions/${ids.ours}/resourceGroups/rg/providers/Microsoft.Network/privateEndpoints/pe-sibling`,
            status: 'Pending',
            description: 'created at the same time by someone else',
        });
        await pecEvents(asEvent(resourceWriteEvent(first.pecId)), testContext());
        expect(h.bot.conversations).toHaveLength(1);
        expect(await h.deps.requests.getActiveForPec(second)).toBeUndefined();

        const bobsClaims = {
            'http://schemas.microsoft.com/identity/claims/objectidentifier': people.bob.objectId,
            'http://schemas.xmlsoap.org/ws/2005/05/identity/claims/upn': people.bob.upn,
            'http://schemas.microsoft.com/identity/claims/tenantid': ids.tenant,
        };
        await pecEvents(asEvent(resourceWriteEvent(second, { claims: bobsClaims })), testContext());
        expect(h.bot.conversations).toHaveLength(2);
        expect((await h.deps.requests.getActiveForPec(second))?.request.requester?.upn).toBe(people.bob.upn);
    });

    it('opens every pending PEC, blaming nobody, when the event names none of them (level-triggered)', async () => {
        const first = seedPendingPec(h.arm, 'postgres-flexible');
        const proxyName = `${first.pecId.split('/').slice(0, -1).join('/')}/pe-named-differently.1111`;
        await pecEvents(asEvent(resourceWriteEvent(proxyName)), testContext());
        expect(h.bot.conversations).toHaveLength(1);
        const opened = await h.deps.requests.getActiveForPec(first.pecId);
        expect(opened?.request.requester).toBeUndefined();
        const card = h.bot
            .cards()
            .map((c) => JSON.stringify(c))
            .find((c) => c.includes(opened!.request.id));
        expect(card).toContain('found while checking the server');
        expect(card).not.toContain('dev@contoso.com');
    });

    it('does nothing for a PEC that is no longer pending', async () => {
        const seeded = seedPendingPec(h.arm, 'mysql-single');
        h.arm.setPecStatus(seeded.pecId, 'Approved', 'approved in the portal');
        await pecEvents(asEvent(resourceWriteEvent(seeded.pecId)), testContext());
        expect(h.bot.conversations).toHaveLength(0);
    });

    const calls = (x: Harness) => x.arm.requests.length + x.bot.requests.length + x.token.issued.length;

    it.each([
        ['a non-object', 'hello'],
        ['null', null],
        ['an event without data', { id: '1', eventType: 'Microsoft.Resources.ResourceWriteSuccess', subject: '/x' }],
        ['an event with a non-string operation', { ...resourceWriteEvent('/x'), data: { operationName: 42 } }],
    ])('drops %s with a logged reason and no network call', async (_, input) => {
        const before = calls(h);
        const context = testContext();
        await expect(pecEvents(asEvent(input as Record<string, unknown>), context)).resolves.toBeUndefined();
        expect(calls(h)).toBe(before);
        expect(context.logs.join('\n')).toMatch(/Dropped an invalid event/);
    });

    it.each([
        ['a failed write', { eventType: 'Microsoft.Resources.ResourceWriteFailure' }],
        ['a firewall rule write', { operation: 'Microsoft.DBforPostgreSQL/servers/firewallRules/write' }],
        ['an unwatched subscription', { subscriptionId: ids.foreign }],
        ['our own approval write', { claims: { appid: ids.client.toUpperCase() } }],
    ])('ignores %s before any I/O', async (_, options) => {
        const seeded = seedPendingPec(h.arm, 'postgres-single', {
            ...('subscriptionId' in options ? { subscriptionId: options.subscriptionId } : {}),
        });
        const before = calls(h);
        const context = testContext();
        await pecEvents(asEvent(resourceWriteEvent(seeded.pecId, options)), context);
        expect(calls(h)).toBe(before);
        expect(context.logs.join('\n')).toMatch(/Ignored event/);
    });

    it('ignores, rather than throws on, an event about a server that does not exist (deleted since)', async () => {
        // Found by the fuzzer: the 404 of the PEC list made pecEvents throw, so Event Grid redelivered it for a day.
        const gone = `/subscriptions/${ids.ours}/resourceGroups/rg-data/providers/Microsoft.DBforMySQL/flexibleServers/gone-01/privateEndpointConnections/pe-app.1`;
        for (const eventType of [
            'Microsoft.Resources.ResourceWriteSuccess',
            'Microsoft.Resources.ResourceDeleteSuccess',
        ]) {
            const context = testContext();
            await expect(pecEvents(asEvent(resourceWriteEvent(gone, { eventType })), context)).resolves.toBeUndefined();
            expect(context.logs.join('\n')).toMatch(/Ignored event .*: server gone-01 was not found/);
        }
        expect(h.arm.requests.filter((r) => r.method !== 'GET')).toEqual([]);
        // No card: the only Bot Connector call allowed is the roster read that starts beside ARM's (approvers' ids).
        expect(h.bot.requests.filter((r) => r.method !== 'GET')).toEqual([]);
        expect(await h.deps.requests.getActiveForPec(gone)).toBeUndefined();
    });

    it.each([
        ['a query in the server name', 'flexibleServers/x?api-version=1'],
        ['a fragment in the server name', 'flexibleServers/pg#x'],
        ['a server name ARM would refuse', 'flexibleServers/-pg'],
    ])('ignores %s without reading ARM', async (_, server) => {
        // Found by the fuzzer: `x?api-version=1` reached ARM as another URL; ARM answered 400 and pecEvents threw.
        const before = calls(h);
        const uri = `/subscriptions/${ids.ours}/resourceGroups/rg-data/providers/Microsoft.DBforMySQL/${server}/privateEndpointConnections/pe-app.1`;
        const context = testContext();
        await expect(pecEvents(asEvent(resourceWriteEvent(uri)), context)).resolves.toBeUndefined();
        expect(calls(h)).toBe(before);
        expect(context.logs.join('\n')).toMatch(/names nothing ARM could hold/);
    });

    it('ignores an event for a resource type the registry does not know without reading ARM', async () => {
        const before = calls(h);
        await pecEvents(
            asEvent(
                resourceWriteEvent(
                    `/subscriptions/${ids.ours}/resourceGroups/rg/providers/Microsoft.Search/searchServices/s1/privateEndpointConnections/p`,
                ),
            ),
            testContext(),
        );
        expect(calls(h)).toBe(before);
    });

    it('retries a transient bot failure through redelivery and still posts one card', async () => {
        const seeded = seedPendingPec(h.arm, 'postgres-flexible');
        h.bot.faults.add({ kind: 'error', status: 503 }, { times: 10, method: 'POST' });
        const event = asEvent(resourceWriteEvent(seeded.pecId));
        await expect(pecEvents(event, testContext())).rejects.toThrow(/Bot Connector/);
        const stored = await h.deps.requests.getActiveForPec(seeded.pecId);
        expect(stored?.request.card).toBeUndefined();
        const audit = await h.deps.audit.list(stored!.request.id);
        expect(audit.map((e) => e.action)).toEqual(['requested', 'card-failed']);

        // The failed attempt gave its claim back, so Event Grid's redelivery (seconds later) posts the card, once.
        expect(stored?.request.cardClaimedAt).toBeUndefined();
        h.bot.faults.clear();
        await pecEvents(event, testContext());
        await pecEvents(event, testContext());
        expect(h.bot.conversations).toHaveLength(1);
        const after = await h.deps.requests.getActiveForPec(seeded.pecId);
        expect(after?.request.card?.channel).toBe('bot');
        expect((await h.deps.audit.list(after!.request.id)).map((e) => e.action)).toEqual([
            'requested',
            'card-failed',
            'card-posted',
        ]);
    });
});

/** The harness with the app's blob calls (the audit anchors) through a fault-injecting proxy. */
async function withBlobProxy(run: (h: Harness, storage: FaultyStorage) => Promise<void>): Promise<void> {
    const storage = await FaultyStorage.start(azuriteConnectionString(), { services: ['blob'] });
    const h = await startHarness({ settings: { AzureWebJobsStorage: storage.connectionString } });
    try {
        await run(h, storage);
    } finally {
        await h.close();
        await storage.close();
    }
}

describe('pecEvents audit anchors', () => {
    it('posts the card while the chain’s first head is anchored, and ends only once every head is', async () => {
        // Blob calls through a proxy that holds each anchor write for a while: long enough to see what waits for them.
        await withBlobProxy(async (h, storage) => {
            storage.faults.add({ kind: 'slow', delayMs: 400 }, { times: 10, pathIncludes: '/heads/' });
            const anchorWrites = () =>
                storage.requests.filter((r) => r.service === 'blob' && r.path.includes('/heads/'));
            const seeded = seedPendingPec(h.arm, serverKinds[0]);
            let ended = false;
            const invocation = pecEvents(asEvent(resourceWriteEvent(seeded.pecId)), testContext()).finally(
                () => (ended = true),
            );
            while (h.bot.conversations.length === 0 && !ended) {
                await new Promise((r) => setTimeout(r, 5));
            }
            expect(h.bot.conversations).toHaveLength(1);
            // The card went out before any anchor write was answered: the first head's was still on its way.
            expect(anchorWrites().filter((r) => r.answered)).toEqual([]);
            expect(ended).toBe(false);

            await invocation;
            expect(anchorWrites().filter((r) => !r.answered)).toEqual([]);
            const stored = await h.deps.requests.getActiveForPec(seeded.pecId);
            const trail = await h.deps.audit.list(stored!.request.id);
            const anchors = new BlobAuditAnchors(
                { connectionString: azuriteConnectionString() },
                loadConfig(h.env).AUDIT_ANCHOR_CONTAINER,
                noCredential,
            );
            expect(trail.map((e) => e.action)).toEqual(['requested', 'card-posted']);
            expect(await anchors.heads(stored!.request.id)).toEqual(trail.map((e) => headOf(e)));
        });
    });
});

describe('pecEvents audit anchors down', () => {
    it('still posts the card, and reports every head it could not anchor to the telemetry before the invocation ends', async () => {
        await withBlobProxy(async (h, storage) => {
            storage.faults.add({ kind: 'error', status: 500 }, { times: 100, pathIncludes: '/heads/' });
            const seeded = seedPendingPec(h.arm, serverKinds[0]);
            await pecEvents(asEvent(resourceWriteEvent(seeded.pecId)), testContext());
            expect(h.bot.conversations).toHaveLength(1);
            const stored = await h.deps.requests.getActiveForPec(seeded.pecId);
            const trail = await h.deps.audit.list(stored!.request.id);
            expect(trail.map((e) => e.action)).toEqual(['requested', 'card-posted']);
            // Sent by the invocation itself: nothing is left to a later one.
            expect(h.appInsights.events('PecAuditAnchorFailed').map((e) => e.properties.auditSeq)).toEqual(['1', '2']);
        });
    });
});

describe('pecEvents delivery fallback', () => {
    let h: Harness;
    let webhook: RunningServer;
    const posts: unknown[] = [];

    beforeAll(async () => {
        webhook = await startServer(
            (_req, res, body) => {
                posts.push(JSON.parse(body));
                sendJson(res, 202, {});
            },
            { https: true },
        );
        h = await startHarness({ settings: { WORKFLOWS_WEBHOOK_URL: `${webhook.url}/workflows/hook` } });
    });
    afterAll(async () => {
        await h.close();
        await webhook.close();
    });

    it('falls back to the Workflows webhook when the bot post fails for good, with links only', async () => {
        const seeded = seedPendingPec(h.arm, 'mysql-flexible');
        h.bot.faults.add({ kind: 'error', status: 403, code: 'BotNotInConversationRoster' }, { times: 5 });
        await pecEvents(asEvent(resourceWriteEvent(seeded.pecId)), testContext());

        expect(h.bot.conversations).toHaveLength(0);
        expect(posts).toHaveLength(1);
        const text = JSON.stringify(posts[0]);
        expect(text).toContain('application/vnd.microsoft.card.adaptive');
        expect(text).toContain('Action.OpenUrl');
        // Clicks on a webhook card never reach us, so it must not offer buttons that do nothing.
        expect(text).not.toContain('Action.Execute');
        const stored = await h.deps.requests.getActiveForPec(seeded.pecId);
        expect(stored?.request.card?.channel).toBe('webhook');
        const audit = await h.deps.audit.list(stored!.request.id);
        expect(audit.map((e) => e.action)).toEqual(['requested', 'card-fallback']);
        expect(audit[1]!.detail).toMatch(/403/);
    });
});

import { randomUUID } from 'node:crypto';
import type { EventGridEvent, Timer } from '@azure/functions';
import { pecEvents } from '../../functions/pecEvents';
import { sweepFunction } from '../../functions/sweep';
import { kindInfo, serverKinds, type ServerKind } from '../../src/domain/ids';
import type { ApprovalRequest } from '../../src/domain/request';
import { sweep, sweepGraceMs } from '../../src/workflow/sweep';
import {
    click,
    drainApplyQueue,
    ids,
    openCard,
    people,
    privateEndpointId,
    requestOf,
    resourceWriteEvent,
    seedPendingPec,
    startHarness,
    testContext,
    type Harness,
} from '../harness';

/**
 * The sweep through the registered timer handler, against the ARM, Bot Connector and Graph emulators and Azurite,
 * with the workflow's clock moved forward instead of waiting: reminders, expiry and stuck applies in milliseconds.
 */

const timer = { isPastDue: false } as unknown as Timer;

async function runSweep(): Promise<string[]> {
    const context = testContext('sweep');
    await sweepFunction(timer, context);
    return context.logs;
}

/**
 * A sweep that sees a PEC, then one past the grace time: the first sighting waits for the PEC's own event (which names
 * the requester), the second opens it.
 */
async function sweepPastGrace(h: Harness): Promise<string[]> {
    await runSweep();
    const later = new Date(h.deps.now().getTime() + sweepGraceMs + 60_000);
    h.deps.now = () => later;
    return runSweep();
}

async function stored(h: Harness, id: string): Promise<ApprovalRequest> {
    const s = await h.deps.requests.get(id);
    if (!s) {
        throw new Error(`no request ${id}`);
    }
    return s.request;
}

async function auditActions(h: Harness, id: string): Promise<string[]> {
    return (await h.deps.audit.list(id)).map((e) => e.action);
}

/** Moves the workflow's clock: everything the use cases do reads `deps.now`. */
function advance(h: Harness, hours: number): void {
    const at = new Date(Date.now() + hours * 3_600_000);
    h.deps.now = () => at;
}

function armPec(h: Harness, pecId: string) {
    return h.arm.getPec(pecId) as {
        properties: { privateLinkServiceConnectionState: { status: string; description: string } };
    };
}

describe('sweep: what events missed, and what happened outside', () => {
    let h: Harness;
    beforeEach(async () => {
        h = await startHarness();
    });
    afterEach(async () => {
        await h.close();
    });

    it('opens a request and posts a card for a Pending PEC that no event reported, once', async () => {
        const seeded = seedPendingPec(h.arm, 'postgres-flexible');
        expect((await runSweep()).join('\n')).toMatch(/1 waiting for their event/);
        expect(h.bot.conversations).toHaveLength(0);
        const later = new Date(Date.now() + sweepGraceMs + 60_000);
        h.deps.now = () => later;
        const logs = await runSweep();
        const request = await requestOf(h, seeded.pecId);
        expect(request.status).toBe('pending');
        // No event means no requester: nobody is blamed, and the card says the requester is unknown.
        expect(request.requester).toBeUndefined();
        expect(h.bot.conversations).toHaveLength(1);
        // Nobody can be kept from approving their own connection, so a second approver is needed (the default).
        expect(request.requiredApprovals).toBe(2);
        expect(await auditActions(h, request.id)).toEqual(['requested', 'policy', 'card-posted']);
        expect(logs.join('\n')).toMatch(/opened 1/);

        await runSweep();
        expect(h.bot.conversations).toHaveLength(1);
        expect(await auditActions(h, request.id)).toEqual(['requested', 'policy', 'card-posted']);
    });

    it('gives one card when a sweep and an event race for the same PEC, and the late event names the requester', async () => {
        const seeded = seedPendingPec(h.arm, 'mysql-single');
        await runSweep();
        h.deps.now = () => new Date(Date.now() + sweepGraceMs + 60_000);
        // The event arrives just as the sweep, past the grace time, decides to open the PEC itself.
        const event = resourceWriteEvent(seeded.pecId) as unknown as EventGridEvent;
        await Promise.all([runSweep(), pecEvents(event, testContext('pecEvents')), runSweep()]);
        expect(h.bot.conversations).toHaveLength(1);
        const request = await requestOf(h, seeded.pecId);
        expect((await auditActions(h, request.id)).filter((a) => a === 'requested')).toHaveLength(1);
        // Whoever won, the requester is known, so they cannot approve their own connection.
        expect(request.requester?.upn).toBe(people.dev.upn);
        const self = await click(h, request, { who: people.dev, text: 'mine' });
        // Whoever won: with the requester known the extra approval is dropped, or the requester counts for nothing.
        expect(self.text).toMatch(/someone else has to decide it|cannot be one of its approvers/);
        expect((await stored(h, request.id)).status).toBe('pending');
    });

    it('learns the requester from an event that comes after the sweep opened the request', async () => {
        const seeded = seedPendingPec(h.arm, 'postgres-flexible');
        await sweepPastGrace(h);
        const opened = await requestOf(h, seeded.pecId);
        expect(opened.requester).toBeUndefined();
        await pecEvents(resourceWriteEvent(seeded.pecId) as unknown as EventGridEvent, testContext('pecEvents'));
        const request = await requestOf(h, seeded.pecId);
        expect(opened.requiredApprovals).toBe(2);
        expect(request).toMatchObject({ id: opened.id, requester: { upn: people.dev.upn } });
        // Known now, so the self-approval rule holds, and the second approver asked for the unknown one is dropped.
        expect(request.requiredApprovals).toBeUndefined();
        expect(h.bot.conversations).toHaveLength(1);
        expect(await auditActions(h, request.id)).toEqual(['requested', 'policy', 'card-posted', 'identified']);
        expect((await click(h, request, { who: people.dev, text: 'mine' })).text).toContain(
            'someone else has to decide it',
        );
    });

    it("refuses the requester's click when the event naming them lands while the click is being checked", async () => {
        const seeded = seedPendingPec(h.arm, 'postgres-flexible', { serverName: 'raced' });
        await sweepPastGrace(h);
        const opened = await requestOf(h, seeded.pecId);
        expect(opened).toMatchObject({ status: 'pending', requiredApprovals: 2 });
        // The event lands after the click's approver check (Graph) and before its write: the write's re-read sees the
        // requester, and with them known only one approval is needed, which must not be theirs.
        const directory = h.deps.directory;
        const isMember = directory.isMemberOfAny.bind(directory);
        let landed = false;
        directory.isMemberOfAny = async (objectId, groups) => {
            const member = await isMember(objectId, groups);
            if (!landed && objectId === people.dev.objectId) {
                landed = true;
                await pecEvents(
                    resourceWriteEvent(seeded.pecId) as unknown as EventGridEvent,
                    testContext('pecEvents'),
                );
            }
            return member;
        };
        try {
            const self = await click(h, opened, { who: people.dev, text: 'mine' });
            expect(landed).toBe(true);
            expect(self.text).toContain('someone else has to decide it');
        } finally {
            directory.isMemberOfAny = isMember;
        }
        await drainApplyQueue(h);
        const after = await stored(h, opened.id);
        expect(after).toMatchObject({ status: 'pending', requester: { upn: people.dev.upn } });
        expect(after.approvals ?? []).toEqual([]);
        expect(h.arm.commits.filter((c) => c.pecId === seeded.pecId)).toEqual([]);
        const refused = (await h.deps.audit.list(opened.id)).filter((e) => e.action === 'refused');
        expect(refused.map((e) => e.actor.name ?? e.actor.id)).toEqual([people.dev.upn]);
    });

    it('does not supersede a request opened after its listing of ARM, nor open a PEC decided since', async () => {
        const early = seedPendingPec(h.arm, 'postgres-single', { serverName: 'early' });
        const late = seedPendingPec(h.arm, 'postgres-single', { serverName: 'late' });
        await runSweep();
        h.deps.now = () => new Date(Date.now() + sweepGraceMs + 60_000);
        const real = h.deps.arm;
        let once = false;
        h.deps.arm = {
            ...real,
            // The single server's list carries its connections inline: the race is hooked after that listing.
            listServersWithPecs: async (subscriptionId, kind) => {
                const listed = await real.listServersWithPecs!(subscriptionId, kind);
                if (!once && listed.some(({ server }) => server.name === 'late')) {
                    once = true;
                    // While this sweep holds its listing: "late" is removed and re-created under a new name, whose
                    // event opens a request; "early" is approved in the portal.
                    h.arm.removePec(late.pecId);
                    const recreated = h.arm.addPec(late.serverId, {
                        name: 'pe-recreated.2222',
                        privateEndpointId: `/subscriptions/${ids.ours}/resourceGroups/rg/providers/Microsoft.Network/privateEndpoints/x`,
                    });
                    h.deps.arm = real;
                    await pecEvents(resourceWriteEvent(recreated) as unknown as EventGridEvent, testContext());
                    h.deps.arm = wrapped;
                    h.arm.setPecStatus(early.pecId, 'Approved', 'approved in the portal');
                }
                return listed;
            },
        };
        const wrapped = h.deps.arm;
        const report = await sweep(h.deps, testContext('sweep'));
        h.deps.arm = real;
        // The request opened meanwhile is not in the listing, but ARM says it is Pending: it stays.
        const recreatedId = `${late.serverId}/privateEndpointConnections/pe-recreated.2222`;
        expect((await requestOf(h, recreatedId)).status).toBe('pending');
        expect(report.superseded).toEqual([]);
        // "early" was listed as Pending but is Approved now: no request, no card for it.
        expect(await h.deps.requests.getActiveForPec(early.pecId)).toBeUndefined();
        expect(h.bot.conversations).toHaveLength(1);
    });

    // A database kind, a kind whose bodies carry another resource's id, and one whose PUT answers at once.
    it.each(['postgres-single', 'storage-account', 'service-bus'] as const)(
        'supersedes a request whose PEC was approved in the portal, and updates its card (%s)',
        async (kind) => {
            const { seeded, request } = await openCard(h, kind);
            h.arm.setPecStatus(seeded.pecId, 'Approved', 'Approved in the portal by ops');
            await runSweep();
            const after = await stored(h, request.id);
            expect(after.status).toBe('superseded');
            expect(after.outcome?.reason).toMatch(
                /set to Approved outside this app \("Approved in the portal by ops"\)/,
            );
            const audit = await h.deps.audit.list(request.id);
            expect(audit.at(-1)).toMatchObject({ action: 'superseded', actor: { kind: 'system' } });
            expect(audit.at(-1)?.detail).toMatch(/Approved in the portal by ops/);
            expect(JSON.stringify(h.bot.updates.at(-1)?.activity)).toContain('Superseded');
            expect(after.cardShows).toBe('superseded');
            // ARM is left as the admin set it.
            expect(armPec(h, seeded.pecId).properties.privateLinkServiceConnectionState.status).toBe('Approved');
        },
    );

    it('supersedes a request whose PEC was removed', async () => {
        const { seeded, request } = await openCard(h, 'mysql-flexible');
        h.arm.removePec(seeded.pecId);
        await runSweep();
        const after = await stored(h, request.id);
        expect(after).toMatchObject({ status: 'superseded', outcome: { reason: 'the connection was removed' } });
        expect(await auditActions(h, request.id)).toContain('superseded');
        expect(JSON.stringify(h.bot.updates.at(-1)?.activity)).toContain('the connection was removed');
    });

    it('re-queues a decision whose apply message was lost, after the stuck-apply time', async () => {
        const { seeded, request } = await openCard(h, 'postgres-flexible');
        expect((await click(h, request, { text: 'ok' })).status).toBe(200);
        // The message never arrives (a storage outage after the decision was recorded).
        await h.queue.clearMessages();
        h.deps.now = () => new Date(Date.now() + 29 * 60_000);
        await runSweep();
        expect(await auditActions(h, request.id)).not.toContain('requeued');
        h.deps.now = () => new Date(Date.now() + 31 * 60_000);
        await runSweep();
        expect(await auditActions(h, request.id)).toContain('requeued');
        // A second sweep right after does not queue it again.
        await runSweep();
        expect((await auditActions(h, request.id)).filter((a) => a === 'requeued')).toHaveLength(1);
        await drainApplyQueue(h);
        expect((await stored(h, request.id)).status).toBe('applied');
        expect(armPec(h, seeded.pecId).properties.privateLinkServiceConnectionState.status).toBe('Approved');
    });

    it('brings a card that fell behind its request up to date', async () => {
        const { request } = await openCard(h, 'postgres-single');
        await click(h, request, { text: 'fine' });
        await drainApplyQueue(h);
        const s = await h.deps.requests.get(request.id);
        // As if the last card update had failed: the request records that the card still shows "pending".
        await h.deps.requests.update(s!, { ...s!.request, cardShows: 'pending' });
        const updates = h.bot.updates.length;
        await runSweep();
        expect(h.bot.updates.length).toBe(updates + 1);
        expect((await stored(h, request.id)).cardShows).toBe('applied');
        await runSweep();
        expect(h.bot.updates.length).toBe(updates + 1);
    });

    it('keeps going when one subscription cannot be listed, and reports it', async () => {
        const seeded = seedPendingPec(h.arm, 'postgres-flexible');
        await runSweep();
        h.deps.now = () => new Date(Date.now() + sweepGraceMs + 60_000);
        h.arm.faults.add(
            { kind: 'error', status: 403, code: 'AuthorizationFailed' },
            { method: 'GET', pathIncludes: `/subscriptions/${ids.second}/providers/`, times: 100 },
        );
        const report = await sweep(h.deps, testContext('sweep'));
        expect(report.opened).toHaveLength(1);
        expect((await requestOf(h, seeded.pecId)).status).toBe('pending');
        expect(report.errors.length).toBeGreaterThan(0);
        expect(report.errors.every((e) => e.what.includes(ids.second) && !e.transient)).toBe(true);
    });
});

describe('sweep: many servers across two subscriptions, with paging', () => {
    let h: Harness;
    beforeAll(async () => {
        h = await startHarness({ arm: { pageSize: 2 } });
    });
    afterAll(async () => {
        await h.close();
    });

    it('finds every Pending PEC on every kind in both subscriptions, and nothing else', async () => {
        const pending: string[] = [];
        for (const subscriptionId of [ids.ours, ids.second]) {
            for (const kind of serverKinds) {
                for (let n = 0; n < 3; n++) {
                    const { provider, type } = kindInfo[kind];
                    const serverId = h.arm.addServer({
                        subscriptionId,
                        resourceGroup: `rg-${n}`,
                        provider,
                        type,
                        name: `${kind}-${subscriptionId.slice(-2)}-${n}`,
                        tags: {},
                    });
                    // Three PECs per server (two pages): two approved, and a pending one on servers 0 and 1.
                    for (let p = 0; p < 3; p++) {
                        const status = p === 2 && n < 2 ? 'Pending' : 'Approved';
                        const id = h.arm.addPec(serverId, {
                            name: `pe-${p}.${randomUUID()}`,
                            privateEndpointId: privateEndpointId(ids.ours, `pe-${p}`),
                            status,
                            description: status === 'Approved' ? 'earlier' : 'please',
                        });
                        if (status === 'Pending') {
                            pending.push(id);
                        }
                    }
                }
            }
        }
        // A server in a subscription we do not watch is never looked at.
        const { provider, type } = kindInfo['postgres-flexible' as ServerKind];
        const unwatched = h.arm.addServer({
            subscriptionId: ids.foreign,
            resourceGroup: 'rg',
            provider,
            type,
            name: 'elsewhere',
        });
        h.arm.addPec(unwatched, { name: 'pe-x.1', privateEndpointId: privateEndpointId(ids.foreign, 'x') });

        const expected = 2 * serverKinds.length * 2;
        expect((await sweep(h.deps, testContext('sweep'))).waiting).toHaveLength(expected);
        h.deps.now = () => new Date(Date.now() + sweepGraceMs + 60_000);
        const from = h.arm.requests.length;
        const report = await sweep(h.deps, testContext('sweep'));
        expect(report.errors).toEqual([]);
        expect(report.servers).toBe(2 * serverKinds.length * 3);
        expect(report.pendingPecs).toBe(expected);
        expect(report.opened).toHaveLength(expected);
        expect(h.bot.conversations).toHaveLength(expected);
        for (const pecId of pending) {
            expect((await requestOf(h, pecId)).status).toBe('pending');
        }
        // Paging was followed: flexible server lists and every PEC list came in more than one page.
        expect(h.arm.requests.some((r) => /\/flexibleServers$/i.test(r.path) && r.method === 'GET')).toBe(true);
        // Kinds whose subscription-wide list carries the connections inline cost no call per resource; the others
        // list each resource's connections (three PECs at two a page: two pages each).
        const listsOf = (kind: ServerKind) =>
            h.arm.requests
                .slice(from)
                .filter(
                    (r) =>
                        r.method === 'GET' &&
                        /privateEndpointConnections$/.test(r.path) &&
                        r.path
                            .toLowerCase()
                            .includes(`/providers/${kindInfo[kind].provider}/${kindInfo[kind].type}/`.toLowerCase()),
                ).length;
        for (const kind of serverKinds) {
            expect(`${kind}: ${listsOf(kind)}`).toBe(`${kind}: ${kindInfo[kind].inlineConnections ? 0 : 2 * 3 * 2}`);
        }
        expect(h.arm.requests.some((r) => r.path.includes(ids.foreign))).toBe(false);
        // 28 requests opened with their cards: about 10 s on a quiet machine, several times that on a shared one.
    }, 120_000);
});

describe('sweep: reminders', () => {
    let h: Harness;
    beforeEach(async () => {
        h = await startHarness({
            settings: { REMINDER_INTERVAL_HOURS: '24', REMINDER_MAX_COUNT: '2', EXPIRY_HOURS: '0' },
        });
    });
    afterEach(async () => {
        await h.close();
    });

    it('replies in the thread mentioning the approvers who can act, at the interval, and stops at the maximum', async () => {
        const { request } = await openCard(h, 'postgres-flexible');
        const activityId = request.card!.activityId!;
        await runSweep();
        expect(h.bot.replies(activityId)).toHaveLength(0);

        advance(h, 24);
        await runSweep();
        await runSweep();
        const first = h.bot.replies(activityId);
        expect(first).toHaveLength(1);
        const card = JSON.stringify(h.bot.adaptiveCards(first[0]!));
        expect(card).toContain('<at>Alice Approver</at>');
        expect(card).toContain('<at>Bob Approver</at>');
        expect(card).toContain(people.alice.objectId);
        // The requester (dev) is an approver too, but is never asked to approve their own connection.
        expect(card).not.toContain(people.dev.objectId);

        advance(h, 48);
        await runSweep();
        advance(h, 72);
        await runSweep();
        advance(h, 24 * 10);
        await runSweep();
        expect(h.bot.replies(activityId)).toHaveLength(2);
        const after = await stored(h, request.id);
        expect(after.reminders?.count).toBe(2);
        expect(after.status).toBe('pending');
        expect((await auditActions(h, request.id)).filter((a) => a === 'reminded')).toHaveLength(2);
    });

    it('still reminds, without names, when Graph is down', async () => {
        const { request } = await openCard(h, 'mysql-single');
        h.graph.faults.add(
            { kind: 'error', status: 403, code: 'Authorization_RequestDenied' },
            { method: 'GET', pathIncludes: 'transitiveMembers', times: 100 },
        );
        advance(h, 25);
        await runSweep();
        const replies = h.bot.replies(request.card!.activityId!);
        expect(replies).toHaveLength(1);
        expect(JSON.stringify(h.bot.adaptiveCards(replies[0]!))).not.toContain('<at>');
    });
});

describe('sweep: expiry', () => {
    it('"leave": the request expires, the card says so, the PEC stays Pending and gets no new request', async () => {
        const h = await startHarness({ settings: { EXPIRY_HOURS: '48', EXPIRY_ACTION: 'leave' } });
        try {
            const { seeded, request } = await openCard(h, 'postgres-single');
            advance(h, 47);
            await runSweep();
            expect((await stored(h, request.id)).status).toBe('pending');

            advance(h, 48);
            await runSweep();
            const expired = await stored(h, request.id);
            expect(expired.status).toBe('expired');
            expect(expired.outcome?.reason).toMatch(/no decision within 48 hours.*stays Pending/);
            expect(armPec(h, seeded.pecId).properties.privateLinkServiceConnectionState.status).toBe('Pending');
            expect(JSON.stringify(h.bot.updates.at(-1)?.activity)).toContain('Expired');
            expect(
                h.bot
                    .replies(request.card!.activityId!)
                    .map((r) => JSON.stringify(r.activity))
                    .join(),
            ).toMatch(/Expired/);
            const entry = (await h.deps.audit.list(request.id)).find((e) => e.action === 'expired');
            expect(entry).toMatchObject({
                actor: { kind: 'system' },
                after: { status: 'expired', defaultAction: 'leave' },
            });

            // Neither the sweep nor another event about the server opens a new request for the PEC left alone.
            await runSweep();
            await pecEvents(resourceWriteEvent(seeded.pecId) as unknown as EventGridEvent, testContext('pecEvents'));
            expect(h.bot.conversations).toHaveLength(1);

            // Once an admin decides it in the portal, the expired request lets go of the PEC.
            h.arm.setPecStatus(seeded.pecId, 'Rejected', 'Rejected in the portal');
            await runSweep();
            expect((await stored(h, request.id)).pecReleasedAt).toBeDefined();
            expect(await auditActions(h, request.id)).toContain('released');
            expect(await h.deps.requests.getActiveForPec(seeded.pecId)).toBeUndefined();
        } finally {
            await h.close();
        }
    });

    // The generic adapter's kinds: PUT answered 202 + Azure-AsyncOperation (sql-server, app-service) or 200 at once.
    it.each(['mysql-flexible', 'sql-server', 'app-service', 'key-vault'] as const)(
        '"reject": the request is rejected automatically through ARM with the configured text (%s)',
        async (kind) => {
            const h = await startHarness({
                settings: { EXPIRY_HOURS: '48', EXPIRY_ACTION: 'reject', EXPIRY_REJECT_TEXT: 'Nobody decided in time' },
            });
            try {
                const { seeded, request } = await openCard(h, kind);
                advance(h, 49);
                await runSweep();
                expect((await stored(h, request.id)).status).toBe('decided');
                expect(JSON.stringify(h.bot.updates.at(-1)?.activity)).toContain('Rejecting… by automatic expiry');
                await drainApplyQueue(h);
                const after = await stored(h, request.id);
                expect(after.status).toBe('applied');
                expect(armPec(h, seeded.pecId).properties.privateLinkServiceConnectionState).toMatchObject({
                    status: 'Rejected',
                    description: 'Auto-rejected: no decision within 48 hours: Nobody decided in time',
                });
                expect(await auditActions(h, request.id)).toEqual(['requested', 'card-posted', 'expired', 'applied']);
                expect(JSON.stringify(h.bot.updates.at(-1)?.activity)).toContain('Rejected by automatic expiry');
            } finally {
                await h.close();
            }
        },
    );
});

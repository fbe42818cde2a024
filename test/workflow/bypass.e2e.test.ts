import type { EventGridEvent, Timer } from '@azure/functions';
import { randomUUID } from 'node:crypto';
import { pecEvents } from '../../functions/pecEvents';
import { sweepFunction } from '../../functions/sweep';
import { TransientError } from '../../src/domain/errors';
import { kindInfo, type ServerKind } from '../../src/domain/ids';
import { onResourceEvent } from '../../src/workflow/onResourceEvent';
import type { ApprovalRequest } from '../../src/domain/request';
import {
    click,
    drainApplyQueue,
    hiddenField,
    ids,
    openCard,
    people,
    privateEndpointId,
    requestOf,
    resourceWriteEvent,
    seedPendingPec,
    startHarness,
    testContext,
    web,
    type Harness,
} from '../harness';

/**
 * Issue 15, the side door, end to end through the registered functions against the emulators and Azurite: connections
 * that became Approved without a decision of ours are reported once, judged by the policy's bypass rules, and can be
 * revoked or kept through every check a normal decision has. What was Approved before the gate is the baseline.
 */

const timer = { isPastDue: false } as unknown as Timer;

async function runSweep(): Promise<string[]> {
    const context = testContext('sweep');
    await sweepFunction(timer, context);
    return context.logs;
}

function armState(h: Harness, pecId: string) {
    return (
        h.arm.getPec(pecId) as {
            properties: { privateLinkServiceConnectionState: { status: string; description: string } };
        }
    ).properties.privateLinkServiceConnectionState;
}

function addServer(h: Harness, kind: ServerKind, name = `${kind}-bp-${randomUUID().slice(0, 6)}`): string {
    const { provider, type } = kindInfo[kind];
    return h.arm.addServer({
        subscriptionId: ids.ours,
        resourceGroup: 'rg-data',
        provider,
        type,
        name,
        publicNetworkAccess: 'Disabled',
        tags: { environment: 'prod' },
    });
}

/** A connection created already Approved (its creator may approve: Owner, Contributor). */
function addApproved(h: Harness, serverId: string, peSubscriptionId: string, description = 'Auto-Approved'): string {
    return h.arm.addPec(serverId, {
        name: `pe-side.${randomUUID()}`,
        privateEndpointId: privateEndpointId(peSubscriptionId, `pe-side-${randomUUID().slice(0, 4)}`),
        status: 'Approved',
        description,
    });
}

const insiderClaims = {
    'http://schemas.microsoft.com/identity/claims/objectidentifier': people.mallory.objectId,
    'http://schemas.xmlsoap.org/ws/2005/05/identity/claims/upn': people.mallory.upn,
    name: people.mallory.name,
    'http://schemas.microsoft.com/identity/claims/tenantid': ids.tenant,
    appid: '04b07795-8ddb-461a-bbee-02f9e1bf7b46',
};

async function deliver(pecId: string, claims: Record<string, unknown> = insiderClaims) {
    return pecEvents(resourceWriteEvent(pecId, { claims }) as unknown as EventGridEvent, testContext('pecEvents'));
}

async function alertOf(h: Harness, pecId: string): Promise<ApprovalRequest> {
    return requestOf(h, pecId);
}

async function current(h: Harness, id: string): Promise<ApprovalRequest> {
    return (await h.deps.requests.get(id))!.request;
}

async function actions(h: Harness, id: string): Promise<string[]> {
    return (await h.deps.audit.list(id)).map((e) => e.action);
}

describe('bypass: connections approved without the gate', () => {
    let h: Harness;
    afterEach(async () => {
        await h.close();
    });

    describe('with the default bypass policy', () => {
        beforeEach(async () => {
            h = await startHarness({ settings: { TRUSTED_SUBSCRIPTION_IDS: ids.ours, WEBSITE_AUTH_ENABLED: 'true' } });
        });

        it('reports a connection approved again after its alert was superseded by a reject', async () => {
            const server = addServer(h, 'postgres-flexible');
            await runSweep();
            const pecId = addApproved(h, server, ids.second);
            await deliver(pecId);
            const first = await alertOf(h, pecId);
            expect(first).toMatchObject({ status: 'pending', bypass: { action: 'alert' } });
            // The insider rejects it (the alert goes away with the sweep), then approves it again.
            h.arm.setPecStatus(pecId, 'Rejected', 'nothing to see');
            await runSweep();
            expect((await current(h, first.id)).status).toBe('superseded');
            h.arm.setPecStatus(pecId, 'Approved', 'back again');
            await deliver(pecId);
            const second = await alertOf(h, pecId);
            expect(second.id).not.toBe(first.id);
            expect(second).toMatchObject({ status: 'pending', bypass: { action: 'alert' } });
            expect(await actions(h, second.id)).toContain('bypassed');
        });

        it('revokes a foreign connection approved again after its revoke found it rejected', async () => {
            const server = addServer(h, 'postgres-flexible');
            await runSweep();
            const pecId = addApproved(h, server, ids.foreign);
            await deliver(pecId);
            const first = await alertOf(h, pecId);
            expect(first.status).toBe('decided');
            // Rejected by the insider before the queued revoke runs: the revoke supersedes its alert.
            h.arm.setPecStatus(pecId, 'Rejected', 'x');
            await drainApplyQueue(h);
            expect((await current(h, first.id)).status).toBe('superseded');
            // Approved again: a new bypass, revoked again.
            h.arm.setPecStatus(pecId, 'Approved', 'again');
            await deliver(pecId);
            await drainApplyQueue(h);
            const second = await alertOf(h, pecId).catch(() => undefined);
            expect(armState(h, pecId).status).toBe('Rejected');
            expect(second?.id ?? '').not.toBe(first.id);
        });

        it('never takes an approval made while it revoked for its own outcome', async () => {
            const server = addServer(h, 'postgres-flexible');
            await runSweep();
            const pecId = addApproved(h, server, ids.foreign);
            await deliver(pecId);
            const alert = await alertOf(h, pecId);
            // The insider approves again between ARM finishing the revoke and the apply reading it back.
            const arm = h.deps.arm;
            const setPecState = arm.setPecState.bind(arm);
            arm.setPecState = async (ref, status, description, known, options) => {
                await setPecState(ref, status, description, known, options);
                h.arm.setPecStatus(pecId, 'Approved', 'approved again, right after the revoke');
                return (await arm.getPec(ref))!;
            };
            try {
                await drainApplyQueue(h);
            } finally {
                arm.setPecState = setPecState;
            }
            expect((await current(h, alert.id)).status).toBe('superseded');
            expect(await h.deps.marks?.get(pecId)).toBeUndefined();
            // The approval is judged as a new bypass (the sweep here; its own event would do the same), and revoked.
            await runSweep();
            await drainApplyQueue(h);
            expect(armState(h, pecId).status).toBe('Rejected');
        });

        it('clears the mark of a connection the sweep lists as rejected, so approving it again outside is reported', async () => {
            const server = addServer(h, 'postgres-flexible');
            await runSweep();
            const pecId = h.arm.addPec(server, {
                name: `pe-gate.${randomUUID()}`,
                privateEndpointId: privateEndpointId(ids.second, 'pe-gate'),
                status: 'Pending',
                description: 'please',
            });
            await deliver(pecId);
            const request = await requestOf(h, pecId);
            await click(h, request, { verb: 'approve', text: 'ok', who: people.alice });
            await drainApplyQueue(h);
            expect(await h.deps.marks?.get(pecId)).toMatchObject({ source: 'gate', requestId: request.id });
            // Rejected outside, and that event is lost: only the sweep's listing says so.
            h.arm.setPecStatus(pecId, 'Rejected', 'quietly');
            await runSweep();
            expect(await h.deps.marks?.get(pecId)).toBeUndefined();
            h.arm.setPecStatus(pecId, 'Approved', 'and back');
            await deliver(pecId);
            const alert = await alertOf(h, pecId);
            expect(alert).toMatchObject({ status: 'pending', bypass: { action: 'alert', detectedBy: 'event' } });
        });

        it('writes who kept it to ARM even when the first delivery of the Keep died before its PUT', async () => {
            const server = addServer(h, 'postgres-flexible');
            await runSweep();
            const pecId = addApproved(h, server, ids.second);
            await deliver(pecId);
            const alert = await alertOf(h, pecId);
            await click(h, alert, { who: people.alice, verb: 'approve', text: 'migration, CHG-1' });
            const arm = h.deps.arm;
            const getPec = arm.getPec.bind(arm);
            let failed = false;
            arm.getPec = async (ref) => {
                if (!failed) {
                    failed = true;
                    throw new TransientError('ARM read: 503 after retries');
                }
                return getPec(ref);
            };
            try {
                await drainApplyQueue(h);
            } finally {
                arm.getPec = getPec;
            }
            expect(failed).toBe(true);
            expect(armState(h, pecId).description).toBe(`Kept by ${people.alice.upn}: migration, CHG-1`);
            expect((await current(h, alert.id)).status).toBe('applied');
        });

        it('revokes a connection created already approved from a foreign tenant, within its event', async () => {
            const server = addServer(h, 'postgres-flexible');
            await runSweep();
            const pecId = addApproved(h, server, ids.foreign);
            await deliver(pecId);
            const alert = await alertOf(h, pecId);
            expect(alert).toMatchObject({
                status: 'decided',
                bypass: { detectedBy: 'event', ruleId: 'bypass-foreign-revoke', action: 'revoke' },
                requester: { upn: people.mallory.upn },
            });
            expect(alert.facts).toMatchObject({
                privateEndpointTenantId: ids.foreignTenant,
                originSource: 'looked-up',
            });
            await drainApplyQueue(h);
            expect(armState(h, pecId)).toEqual(
                expect.objectContaining({
                    status: 'Rejected',
                    description:
                        'Revoked by policy bypass-foreign-revoke: Revoked: approved without the approval gate, ' +
                        'from a subscription of another tenant',
                }),
            );
            expect(await actions(h, alert.id)).toEqual(['bypassed', 'decided', 'card-posted', 'applied']);
            const bypassed = (await h.deps.audit.list(alert.id))[0];
            expect(bypassed).toMatchObject({
                actor: { kind: 'requester', name: people.mallory.upn },
                after: {
                    origin: { tenantId: ids.foreignTenant, trusted: false, source: 'looked-up' },
                    action: 'revoke',
                    rule: 'bypass-foreign-revoke',
                },
            });
            const card = JSON.stringify(h.bot.updates.at(-1)?.activity ?? h.bot.cards().at(-1));
            expect(card).toContain('approved without the gate');
            expect(card).toContain('Revoked by policy rule bypass-foreign-revoke');
        });

        it('alerts, with Keep and Revoke, on a connection from an untrusted subscription of our tenant', async () => {
            const server = addServer(h, 'mysql-flexible');
            await runSweep();
            const pecId = addApproved(h, server, ids.second, 'Approved by mallory');
            await deliver(pecId);
            const alert = await alertOf(h, pecId);
            expect(alert).toMatchObject({
                status: 'pending',
                bypass: { action: 'alert', description: 'Approved by mallory' },
            });
            // The channel's card says who may act; an approver's own view (its refresh) has Keep and Revoke.
            const card = JSON.stringify(h.bot.cards().at(-1));
            expect(card).toContain('they see Keep and Revoke in their own view');
            expect(card).not.toContain('"title":"Keep"');
            expect(card).toContain('Approved by mallory');
            const own = (await click(h, alert, { who: people.alice, verb: 'refresh' })).text;
            expect(own).toContain('"title":"Keep"');
            expect(own).toContain('"title":"Revoke"');
            expect(armState(h, pecId).status).toBe('Approved');
        });

        it('reports one alert for a redelivered event, and for an event racing two sweeps', async () => {
            const server = addServer(h, 'postgres-single');
            await runSweep();
            const pecId = addApproved(h, server, ids.second);
            const event = resourceWriteEvent(pecId, { claims: insiderClaims }) as unknown as EventGridEvent;
            await Promise.all([
                pecEvents(event, testContext('pecEvents')),
                pecEvents(event, testContext('pecEvents')),
                runSweep(),
                runSweep(),
            ]);
            await pecEvents(event, testContext('pecEvents'));
            const posted = h.bot.cards().filter((c) => JSON.stringify(c).includes('approved without the gate'));
            expect(posted).toHaveLength(1);
            const alert = await alertOf(h, pecId);
            expect((await actions(h, alert.id)).filter((a) => a === 'bypassed')).toHaveLength(1);
        });

        it('finds a bypass in the sweep when its event was lost', async () => {
            const server = addServer(h, 'mysql-single');
            await runSweep();
            const pecId = addApproved(h, server, ids.foreign);
            const logs = (await runSweep()).join('\n');
            expect(logs).toMatch(/bypasses 1/);
            const alert = await alertOf(h, pecId);
            expect(alert.bypass).toMatchObject({ detectedBy: 'sweep', action: 'revoke' });
            expect(alert.requester).toBeUndefined();
            await drainApplyQueue(h);
            expect(armState(h, pecId).status).toBe('Rejected');
            // The next sweep finds the connection Rejected: nothing more.
            expect((await runSweep()).join('\n')).toMatch(/bypasses 0/);
        });

        it('asks two people for the Keep of an alert the sweep found, since who approved it is unknown', async () => {
            const server = addServer(h, 'postgres-flexible');
            await runSweep();
            const pecId = addApproved(h, server, ids.second);
            await runSweep();
            const alert = await alertOf(h, pecId);
            expect(alert).toMatchObject({
                status: 'pending',
                bypass: { detectedBy: 'sweep', action: 'alert' },
                requiredApprovals: 2,
                unknownRequester: true,
            });
            expect(await actions(h, alert.id)).toEqual(['bypassed', 'policy', 'card-posted']);
            await click(h, alert, { who: people.dev, verb: 'approve', text: 'mine, fine' });
            expect(await current(h, alert.id)).toMatchObject({ status: 'pending' });
        });

        it('supersedes a request whose connection was approved in the portal, and alerts on it', async () => {
            await runSweep();
            const { seeded, request } = await openCard(h, 'postgres-flexible', { peSubscriptionId: ids.second });
            h.arm.setPecStatus(seeded.pecId, 'Approved', 'ok by portal');
            await deliver(seeded.pecId);
            expect((await current(h, request.id)).status).toBe('superseded');
            const alert = await alertOf(h, seeded.pecId);
            expect(alert.id).not.toBe(request.id);
            expect(alert.bypass).toMatchObject({ action: 'alert', description: 'ok by portal' });
        });

        it("reads ARM for an approval sent with the opening write's correlation id, which its caller chose", async () => {
            await runSweep();
            const { seeded, request } = await openCard(h, 'postgres-flexible', { peSubscriptionId: ids.second });
            h.arm.setPecStatus(seeded.pecId, 'Approved', 'ok by cli');
            // `az rest … --headers x-ms-correlation-request-id=<the request's>`: ARM passes the caller's id on.
            const event = resourceWriteEvent(seeded.pecId, { claims: insiderClaims }) as {
                data: { correlationId: string };
            };
            event.data.correlationId = request.correlationId;
            await pecEvents(event as unknown as EventGridEvent, testContext('pecEvents'));
            expect((await current(h, request.id)).status).toBe('superseded');
            expect((await alertOf(h, seeded.pecId)).bypass).toMatchObject({
                action: 'alert',
                description: 'ok by cli',
            });
        });

        it('finishes a report cut short between the mark and the alert, once, under the id the mark names', async () => {
            await runSweep();
            const id = addApproved(h, addServer(h, 'postgres-flexible'), ids.second);
            const audit = h.deps.audit;
            const append = audit.append.bind(audit);
            audit.append = (entry, options) =>
                entry.action === 'bypassed'
                    ? Promise.reject(new TransientError('simulated outage right after the mark'))
                    : append(entry, options);
            try {
                await expect(deliver(id)).rejects.toThrow();
            } finally {
                audit.append = append;
            }
            const mark = (await h.deps.marks!.get(id))!;
            expect(mark.source).toBe('bypass');
            // Within the grace a report may still be on its way: nothing is done twice.
            await deliver(id);
            expect(await h.deps.requests.get(mark.requestId)).toBeUndefined();
            // Later, Event Grid's redelivery or the sweep finishes it: one entry, one alert, one card.
            const now = h.deps.now;
            h.deps.now = () => new Date(now().getTime() + 5 * 60_000);
            try {
                await deliver(id);
                await runSweep();
            } finally {
                h.deps.now = now;
            }
            const alert = (await h.deps.requests.get(mark.requestId))!.request;
            expect(alert.bypass).toMatchObject({ action: 'alert' });
            expect(await actions(h, alert.id)).toEqual(['bypassed', 'card-posted']);
            expect(h.bot.cards().filter((c) => JSON.stringify(c).includes(alert.id))).toHaveLength(1);
        });

        it('skips the ARM read only for a redelivery of the event that opened the request', async () => {
            await runSweep();
            const seeded = seedPendingPec(h.arm, 'mysql-flexible', { peSubscriptionId: ids.second });
            const opening = resourceWriteEvent(seeded.pecId, { claims: insiderClaims });
            await pecEvents(opening as unknown as EventGridEvent, testContext('pecEvents'));
            const request = await requestOf(h, seeded.pecId);
            expect(request.eventId).toBe((opening as { id: string }).id);
            const reads = () => h.arm.requests.filter((r) => r.method === 'GET').length;
            const before = reads();
            await pecEvents(opening as unknown as EventGridEvent, testContext('pecEvents'));
            expect(reads()).toBe(before);
            // Another event of the same write (the proxy's), or anyone's, is read.
            await deliver(seeded.pecId);
            expect(reads()).toBeGreaterThan(before);
            expect((await current(h, request.id)).status).toBe('pending');
        });

        it('never reports our own approval: not from its event, not in the sweep', async () => {
            await runSweep();
            const { seeded, request } = await openCard(h, 'mysql-flexible', { peSubscriptionId: ids.second });
            expect((await click(h, request, { who: people.alice, text: 'fine' })).status).toBe(200);
            await drainApplyQueue(h);
            expect(armState(h, seeded.pecId).status).toBe('Approved');
            // ARM's event for our own write names our identity.
            await deliver(seeded.pecId, {
                appid: ids.client,
                'http://schemas.microsoft.com/identity/claims/tenantid': ids.tenant,
            });
            // An event naming someone else about the same write (or a lost one) is judged: the mark says it is ours.
            await deliver(seeded.pecId);
            expect((await runSweep()).join('\n')).toMatch(/bypasses 0/);
            expect(h.bot.cards().filter((c) => JSON.stringify(c).includes('approved without the gate'))).toHaveLength(
                0,
            );
        });

        it('Keep and Revoke go through every check a decision has, and Keep is written to ARM', async () => {
            const server = addServer(h, 'postgres-flexible');
            await runSweep();
            const pecId = addApproved(h, server, ids.second);
            await deliver(pecId);
            const alert = await alertOf(h, pecId);

            // Not an approver; the creator themself; another conversation; no text to revoke: all refused.
            expect((await click(h, alert, { who: people.mallory, verb: 'approve' })).text).toContain(
                'Only members of the approver groups',
            );
            const forged = await click(h, alert, {
                activity: { conversation: { id: '19:other@thread.tacv2;messageid=1', tenantId: ids.tenant } },
            });
            expect(forged.body).toMatchObject({ statusCode: 400 });
            const otherMessage = await click(h, alert, { activity: { replyToId: '1700000000000' } });
            expect(otherMessage.body).toMatchObject({ statusCode: 400 });
            expect((await click(h, alert, { who: people.alice, verb: 'reject', text: '' })).text).toContain(
                'needs a response text',
            );
            expect((await current(h, alert.id)).status).toBe('pending');

            // Keep, with text; a second click finds it decided.
            expect(
                (await click(h, alert, { who: people.alice, verb: 'approve', text: 'migration, CHG-1' })).status,
            ).toBe(200);
            expect((await click(h, alert, { who: people.bob, verb: 'reject', text: 'no' })).text).not.toContain(
                'Revoking',
            );
            await drainApplyQueue(h);
            expect(armState(h, pecId)).toEqual(
                expect.objectContaining({
                    status: 'Approved',
                    description: 'Kept by alice@contoso.com: migration, CHG-1',
                }),
            );
            expect(await actions(h, alert.id)).toEqual(['bypassed', 'card-posted', 'refused', 'decided', 'applied']);
            expect(JSON.stringify(h.bot.updates.at(-1)?.activity)).toContain('Kept by Alice Approver');
            // Kept is the gate's decision now: no report again.
            expect((await runSweep()).join('\n')).toMatch(/bypasses 0/);
        });

        it("refuses the creator's own Keep, and revokes through the web page", async () => {
            const server = addServer(h, 'mysql-flexible');
            await runSweep();
            const pecId = addApproved(h, server, ids.second);
            const devClaims = {
                'http://schemas.microsoft.com/identity/claims/objectidentifier': people.dev.objectId,
                'http://schemas.xmlsoap.org/ws/2005/05/identity/claims/upn': people.dev.upn,
                'http://schemas.microsoft.com/identity/claims/tenantid': ids.tenant,
            };
            await deliver(pecId, devClaims);
            const alert = await alertOf(h, pecId);
            expect((await click(h, alert, { who: people.dev, verb: 'approve' })).text).toContain(
                'someone else has to decide it',
            );
            const card = JSON.stringify(h.bot.cards().at(-1));
            const url = new URL(/"url":"(https:\/\/pec-gate\.example\.net\/api\/requests\/[^"]+)"/.exec(card)![1]!);
            const page = await web({ url, who: people.bob });
            expect(page.html).toContain('>Revoke</button>');
            expect(page.html).toContain('>Keep</button>');
            const form = {
                verb: 'reject',
                token: hiddenField(page.html, 'token'),
                csrf: hiddenField(page.html, 'csrf'),
                responseText: 'not agreed',
            };
            const posted = await web({ method: 'POST', url, who: people.bob, form });
            expect(posted.status).toBe(200);
            await drainApplyQueue(h);
            expect(armState(h, pecId)).toEqual(
                expect.objectContaining({ status: 'Rejected', description: 'Revoked by bob@contoso.com: not agreed' }),
            );
        });
    });

    describe('baseline', () => {
        beforeEach(async () => {
            h = await startHarness({ settings: { TRUSTED_SUBSCRIPTION_IDS: ids.ours, WEBSITE_AUTH_ENABLED: 'true' } });
        });

        it('records what was approved before the gate, revokes nothing, and lists the untrusted on one card', async () => {
            const server = addServer(h, 'postgres-flexible');
            const trusted = addApproved(h, server, ids.ours);
            const foreign = addApproved(h, server, ids.foreign);
            const ours = addApproved(h, server, ids.second);
            const logs = (await runSweep()).join('\n');
            expect(logs).toMatch(/baselined 3/);
            expect([trusted, foreign, ours].map((id) => armState(h, id).status)).toEqual([
                'Approved',
                'Approved',
                'Approved',
            ]);
            const summaries = h.bot.cards().filter((c) => JSON.stringify(c).includes('Baseline'));
            expect(summaries).toHaveLength(1);
            const summary = JSON.stringify(summaries[0]);
            expect(summary).toContain(`ANOTHER tenant ${ids.foreignTenant}`);
            expect(summary).toContain('our tenant, untrusted subscription');
            expect(summary).not.toContain(privateEndpointId(ids.ours, '').slice(0, 60));
            await drainApplyQueue(h);
            expect(armState(h, foreign).status).toBe('Approved');

            const review = await requestOf(h, foreign);
            // Who approved it is unknown, so a Keep needs two people, as an unknown requester's request does.
            expect(review).toMatchObject({
                status: 'pending',
                bypass: { detectedBy: 'baseline' },
                requiredApprovals: 2,
            });
            expect(await actions(h, review.id)).toEqual(['baseline', 'policy']);

            // A second sweep: nothing new, no second summary, no bypass.
            const again = (await runSweep()).join('\n');
            expect(again).toMatch(/bypasses 0/);
            expect(again).toMatch(/baselined 0/);
            expect(h.bot.cards().filter((c) => JSON.stringify(c).includes('Baseline'))).toHaveLength(1);

            // Revoke from the summary's link, on the decision page.
            const links = [...summary.matchAll(/"url":"(https:\/\/pec-gate\.example\.net\/api\/requests\/[^"]+)"/g)]
                .map((m) => new URL(m[1]!))
                .filter((u) => u.pathname.endsWith(review.id));
            expect(links).toHaveLength(1);
            const page = await web({ url: links[0]!, who: people.alice });
            const form = {
                verb: 'reject',
                token: hiddenField(page.html, 'token'),
                csrf: hiddenField(page.html, 'csrf'),
                responseText: 'unknown partner',
            };
            expect((await web({ method: 'POST', url: links[0]!, who: people.alice, form })).status).toBe(200);
            await drainApplyQueue(h);
            expect(armState(h, foreign)).toEqual(
                expect.objectContaining({
                    status: 'Rejected',
                    description: 'Revoked by alice@contoso.com: unknown partner',
                }),
            );
        });
    });

    describe('with a policy that asks two approvals of prod servers', () => {
        const prodTwo = JSON.stringify({
            rules: [
                {
                    id: 'prod-two',
                    match: { tags: { environment: 'prod' } },
                    action: { type: 'requireApprovals', count: 2 },
                },
            ],
        });
        beforeEach(async () => {
            h = await startHarness({
                settings: { TRUSTED_SUBSCRIPTION_IDS: ids.ours, WEBSITE_AUTH_ENABLED: 'true', POLICY: prodTwo },
            });
        });

        it("an approver who approved outside cannot Keep the sweep's alert alone", async () => {
            await runSweep();
            const seeded = seedPendingPec(h.arm, 'postgres-flexible', { peSubscriptionId: ids.second });
            await deliver(seeded.pecId);
            const request = await requestOf(h, seeded.pecId);
            expect(request.requiredApprovals).toBe(2);
            // dev, an approver who is also an Owner of the server, approves in the CLI; the event is lost.
            h.arm.setPecStatus(seeded.pecId, 'Approved', 'ok');
            await runSweep();
            const alert = await alertOf(h, seeded.pecId);
            expect(alert.id).not.toBe(request.id);
            expect(alert).toMatchObject({ status: 'pending', requiredApprovals: 2 });
            expect(await actions(h, alert.id)).toEqual(['bypassed', 'policy', 'card-posted']);
            await click(h, alert, { who: people.dev, verb: 'approve', text: 'fine' });
            await drainApplyQueue(h);
            expect(await current(h, alert.id)).toMatchObject({ status: 'pending', approvals: [expect.anything()] });
            // A second approver makes the Keep; one Revoke alone would have closed it.
            await click(h, await current(h, alert.id), { who: people.alice, verb: 'approve', text: 'agreed' });
            await drainApplyQueue(h);
            expect((await current(h, alert.id)).status).toBe('applied');
            expect(armState(h, seeded.pecId).status).toBe('Approved');
        });

        it("an alert from an event, whose approver is known, still needs the policy's two for a Keep", async () => {
            await runSweep();
            const id = addApproved(h, addServer(h, 'mysql-flexible'), ids.second);
            await deliver(id);
            const alert = await alertOf(h, id);
            expect(alert).toMatchObject({ status: 'pending', requiredApprovals: 2 });
            expect(alert.unknownRequester).toBeUndefined();
            await click(h, alert, { who: people.alice, verb: 'reject', text: 'no' });
            await drainApplyQueue(h);
            expect(armState(h, id).status).toBe('Rejected');
        });
    });

    describe('with bypass rules', () => {
        it('accepts trusted automation with an audit entry and no card', async () => {
            const policy = {
                rules: [],
                bypassRules: [{ id: 'terraform', match: { endpointOrigin: ['trusted'] }, action: { type: 'accept' } }],
            };
            h = await startHarness({
                settings: { TRUSTED_SUBSCRIPTION_IDS: ids.ours, POLICY: JSON.stringify(policy) },
            });
            const server = addServer(h, 'mysql-single');
            await runSweep();
            const cards = h.bot.cards().length;
            const pecId = addApproved(h, server, ids.ours);
            const outcome = await onResourceEvent(
                h.deps,
                resourceWriteEvent(pecId, { claims: insiderClaims }),
                testContext('pecEvents'),
            );
            expect(h.bot.cards()).toHaveLength(cards);
            expect(await h.deps.requests.getActiveForPec(pecId)).toBeUndefined();
            expect(outcome).toMatchObject({ kind: 'handled' });
            const requestId = (outcome as { bypass?: { requestId?: string } }).bypass?.requestId;
            expect(requestId).toBeDefined();
            expect(await actions(h, requestId!)).toEqual(['bypassed']);
            expect(armState(h, pecId).status).toBe('Approved');
        });
    });
});

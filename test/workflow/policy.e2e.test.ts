import type { EventGridEvent, Timer } from '@azure/functions';
import { pecEvents } from '../../functions/pecEvents';
import { sweepFunction } from '../../functions/sweep';
import type { ServerKind } from '../../src/domain/ids';
import { sweepGraceMs } from '../../src/workflow/sweep';
import type { ApprovalRequest } from '../../src/domain/request';
import {
    cardLink,
    click,
    drainApplyQueue,
    hiddenField,
    ids,
    openCard,
    people,
    requestOf,
    resourceWriteEvent,
    seedPendingPec,
    startHarness,
    testContext,
    type Harness,
    type TestPerson,
    web,
} from '../harness';

/**
 * The policy from the POLICY setting, applied on events and in the sweep, end to end: event or sweep → policy →
 * card → (clicks) → queue → ARM, with every policy decision audited under its rule's id.
 */

const policy = {
    rules: [
        {
            id: 'block-foreign',
            match: { endpointOrigin: ['foreign'] },
            action: { type: 'autoReject', text: 'Endpoints from other tenants are not allowed' },
        },
        {
            id: 'trusted-dev',
            match: { endpointOrigin: ['trusted'], serverName: 'dev-*' },
            action: { type: 'autoApprove' },
        },
        { id: 'prod-two', match: { tags: { environment: 'prod' } }, action: { type: 'requireApprovals', count: 2 } },
    ],
};

function armState(h: Harness, pecId: string) {
    return (
        h.arm.getPec(pecId) as {
            properties: { privateLinkServiceConnectionState: { status: string; description: string } };
        }
    ).properties.privateLinkServiceConnectionState;
}

/** A private endpoint in another tenant's subscription, created by a user of that tenant (as the event's claims say). */
async function openForeign(h: Harness, kind: ServerKind, serverName?: string) {
    const seeded = seedPendingPec(h.arm, kind, {
        peSubscriptionId: ids.foreign,
        ...(serverName ? { serverName } : {}),
    });
    const event = resourceWriteEvent(seeded.pecId, {
        claims: {
            'http://schemas.microsoft.com/identity/claims/objectidentifier': 'e0e0e0e0-0000-4000-8000-00000000e0e0',
            'http://schemas.microsoft.com/identity/claims/tenantid': ids.foreignTenant,
            name: 'Guest From Elsewhere',
        },
    });
    await pecEvents(event as unknown as EventGridEvent, testContext('pecEvents'));
    return { seeded, request: await requestOf(h, seeded.pecId) };
}

async function current(h: Harness, id: string): Promise<ApprovalRequest> {
    return (await h.deps.requests.get(id))!.request;
}

describe('policy', () => {
    let h: Harness;
    beforeEach(async () => {
        // Self-approval is allowed here, to show that the requester still never counts toward two approvals.
        h = await startHarness({
            settings: { POLICY: JSON.stringify(policy), ALLOW_SELF_APPROVAL: 'true', WEBSITE_AUTH_ENABLED: 'true' },
        });
    });
    afterEach(async () => {
        await h.close();
    });

    it('autoApprove: a trusted endpoint on a dev server is approved by the rule, shown on a card, audited', async () => {
        const { seeded, request } = await openCard(h, 'postgres-flexible', { serverName: 'dev-01' });
        expect(request).toMatchObject({ status: 'decided', policyRuleId: 'trusted-dev' });
        // The channel still sees it: a card without buttons that says who decided.
        expect(h.bot.conversations).toHaveLength(1);
        const posted = JSON.stringify(h.bot.cards()[0]);
        expect(posted).toContain('Approving… by policy rule trusted-dev');
        expect(posted).not.toMatch(/"verb":"approve"/);

        await drainApplyQueue(h);
        expect(armState(h, seeded.pecId)).toEqual(
            expect.objectContaining({ status: 'Approved', description: 'Auto-approved by policy trusted-dev' }),
        );
        expect((await current(h, request.id)).status).toBe('applied');
        const audit = await h.deps.audit.list(request.id);
        expect(audit.map((e) => e.action)).toEqual(['requested', 'decided', 'card-posted', 'applied']);
        expect(audit[1]).toMatchObject({ actor: { kind: 'policy', id: 'trusted-dev' }, after: { action: 'approve' } });
        expect(JSON.stringify(h.bot.updates.at(-1)?.activity)).toContain('Approved by policy rule trusted-dev');
    });

    it('autoReject: an endpoint from another tenant is rejected by the rule with its text', async () => {
        const { seeded, request } = await openForeign(h, 'mysql-single');
        expect(request.policyRuleId).toBe('block-foreign');
        await drainApplyQueue(h);
        expect(armState(h, seeded.pecId)).toEqual(
            expect.objectContaining({
                status: 'Rejected',
                description: 'Auto-rejected by policy block-foreign: Endpoints from other tenants are not allowed',
            }),
        );
        const decided = (await h.deps.audit.list(request.id)).find((e) => e.action === 'decided');
        expect(decided).toMatchObject({
            actor: { kind: 'policy', id: 'block-foreign' },
            text: 'Endpoints from other tenants are not allowed',
        });
    });

    it('first match wins: a foreign endpoint on a dev server is rejected, not approved', async () => {
        const { request } = await openForeign(h, 'postgres-single', 'dev-02');
        expect(request.decision).toMatchObject({ action: 'reject', auto: { kind: 'policy', ruleId: 'block-foreign' } });
    });

    it('requireApprovals 2: "1 of 2", the same approver twice and the requester are refused, a second approver decides', async () => {
        const { seeded, request } = await openCard(h, 'postgres-flexible', { serverName: 'prod-01' });
        expect(request).toMatchObject({ status: 'pending', requiredApprovals: 2, policyRuleId: 'prod-two' });
        const policyEntry = (await h.deps.audit.list(request.id)).find((e) => e.action === 'policy');
        expect(policyEntry).toMatchObject({
            actor: { kind: 'policy', id: 'prod-two' },
            after: { requiredApprovals: 2 },
        });
        expect(JSON.stringify(h.bot.cards()[0])).toContain('Waiting for approvals: 0 of 2');

        const first = await click(h, request, { who: people.alice, text: 'Looks right' });
        expect(first.status).toBe(200);
        expect(first.text).toContain('Waiting for approvals: 1 of 2 (Alice Approver)');
        let now = await current(h, request.id);
        expect(now.status).toBe('pending');
        expect(now.approvals).toHaveLength(1);
        // Everyone's card shows the count, and the thread says who approved.
        expect(JSON.stringify(h.bot.updates.at(-1)?.activity)).toContain('1 of 2');
        expect(JSON.stringify(h.bot.replies(request.card!.activityId!).at(-1)?.activity)).toContain(
            'Alice Approver approved (1 of 2)',
        );

        const again = await click(h, request, { who: people.alice, text: 'Still fine' });
        expect(again.text).toContain('You have already approved this request');
        const self = await click(h, request, { who: people.dev, text: 'My own' });
        expect(self.text).toContain('you cannot be one of its approvers');
        now = await current(h, request.id);
        expect(now.status).toBe('pending');
        expect(now.approvals).toHaveLength(1);
        await h.queue.createIfNotExists();
        expect((await h.queue.peekMessages()).peekedMessageItems).toHaveLength(0);

        const second = await click(h, request, { who: people.bob, text: '' });
        expect(second.status).toBe(200);
        expect((await current(h, request.id)).status).toBe('decided');
        await drainApplyQueue(h);
        expect(armState(h, seeded.pecId)).toEqual(
            expect.objectContaining({
                status: 'Approved',
                description: 'Approved by alice@contoso.com and bob@contoso.com: Looks right',
            }),
        );
        const actions = (await h.deps.audit.list(request.id)).map((e) => e.action);
        expect(actions).toEqual([
            'requested',
            'policy',
            'card-posted',
            'approval',
            'refused',
            'refused',
            'decided',
            'applied',
        ]);
        expect(JSON.stringify(h.bot.updates.at(-1)?.activity)).toContain('Approved by Alice Approver and Bob Approver');
    });

    it('on the web page, the card link serves both approvers, and nobody counts twice', async () => {
        const { seeded, request } = await openCard(h, 'postgres-single', { serverName: 'prod-03' });
        const url = cardLink(h, request.id);
        const post = async (who: TestPerson) => {
            const page = await web({ url, who });
            const form = {
                verb: 'approve',
                token: hiddenField(page.html, 'token'),
                csrf: hiddenField(page.html, 'csrf'),
                responseText: `ok from ${who.name}`,
            };
            return web({ method: 'POST', url, who, form });
        };
        const alicePage = await web({ url, who: people.alice });
        const aliceForm = {
            verb: 'approve',
            token: hiddenField(alicePage.html, 'token'),
            csrf: hiddenField(alicePage.html, 'csrf'),
            responseText: 'ok from Alice',
        };
        const alice = await web({ method: 'POST', url, who: people.alice, form: aliceForm });
        expect(alice.status).toBe(200);
        expect(alice.html).toContain('More approvals are needed');
        // The link is not spent by the first of two approvals.
        expect((await current(h, request.id)).link?.usedAt).toBeUndefined();
        // Alice is not offered the form again, and a replay of her form does not count twice.
        const again = await web({ url, who: people.alice });
        expect(again.html).toContain('You have approved this request');
        expect(again.html).not.toContain('name="csrf"');
        expect((await web({ method: 'POST', url, who: people.alice, form: aliceForm })).html).toContain(
            'You have already approved this request',
        );
        expect((await current(h, request.id)).approvals).toHaveLength(1);
        expect((await post(people.bob)).status).toBe(200);
        const decided = await current(h, request.id);
        expect(decided.status).toBe('decided');
        expect(decided.link?.usedAt).toBeDefined();
        await drainApplyQueue(h);
        expect(armState(h, seeded.pecId).description).toBe(
            'Approved by alice@contoso.com and bob@contoso.com: ok from Bob Approver',
        );
    });

    it('requireApprovals 2: an approval the requester gave before an event named them stops counting', async () => {
        const seeded = seedPendingPec(h.arm, 'postgres-flexible', { serverName: 'prod-07' });
        const sweepNow = () => sweepFunction({ isPastDue: false } as unknown as Timer, testContext('sweep'));
        await sweepNow();
        const later = new Date(Date.now() + sweepGraceMs + 60_000);
        h.deps.now = () => later;
        await sweepNow();
        const opened = await requestOf(h, seeded.pecId);
        expect(opened).toMatchObject({ status: 'pending', requiredApprovals: 2 });
        expect(opened.requester).toBeUndefined();
        // The endpoint's creator, an approver too, approves while nobody knows the endpoint is theirs: 1 of 2.
        expect((await click(h, opened, { who: people.dev, text: 'mine' })).status).toBe(200);
        expect((await current(h, opened.id)).approvals).toHaveLength(1);

        await pecEvents(resourceWriteEvent(seeded.pecId) as unknown as EventGridEvent, testContext('pecEvents'));

        const known = await current(h, opened.id);
        expect(known).toMatchObject({ status: 'pending', requester: { upn: people.dev.upn }, requiredApprovals: 2 });
        expect(known.approvals ?? []).toEqual([]);
        const identified = (await h.deps.audit.list(opened.id)).find((e) => e.action === 'identified');
        expect(identified?.after).toMatchObject({ approvalsTakenBack: 1 });
        // Two other people must look, even with ALLOW_SELF_APPROVAL on: one more is not enough.
        await click(h, known, { who: people.alice, text: 'ok' });
        expect((await current(h, opened.id)).status).toBe('pending');
        await click(h, await current(h, opened.id), { who: people.bob, text: 'ok too' });
        const decided = await current(h, opened.id);
        expect(decided.status).toBe('decided');
        expect(decided.decision?.approvers?.map((a) => a.upn)).toEqual([people.alice.upn, people.bob.upn]);
    });

    it('one reject decides a request that needs two approvals', async () => {
        const { seeded, request } = await openCard(h, 'mysql-flexible', { serverName: 'prod-02' });
        await click(h, request, { who: people.alice, text: 'ok' });
        await click(h, request, { verb: 'reject', who: people.bob, text: 'Not this one' });
        await drainApplyQueue(h);
        expect(armState(h, seeded.pecId)).toEqual(
            expect.objectContaining({ status: 'Rejected', description: 'Rejected by bob@contoso.com: Not this one' }),
        );
    });

    it('is applied in the sweep too, to a PEC no event reported', async () => {
        const seeded = seedPendingPec(h.arm, 'mysql-single', { serverName: 'dev-03' });
        await sweepFunction({ isPastDue: false } as unknown as Timer, testContext('sweep'));
        // The first sighting waits for the PEC's own event; the next sweep, past the grace time, opens it.
        const later = new Date(Date.now() + sweepGraceMs + 60_000);
        h.deps.now = () => later;
        await sweepFunction({ isPastDue: false } as unknown as Timer, testContext('sweep'));
        const request = await requestOf(h, seeded.pecId);
        expect(request.decision?.auto).toEqual({ kind: 'policy', ruleId: 'trusted-dev' });
        await drainApplyQueue(h);
        expect(armState(h, seeded.pecId).description).toBe('Auto-approved by policy trusted-dev');
        const decided = (await h.deps.audit.list(request.id)).find((e) => e.action === 'decided');
        expect(decided?.actor).toEqual({ kind: 'policy', id: 'trusted-dev' });
    });
});

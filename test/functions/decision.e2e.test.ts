import { serverKinds } from '../../src/domain/ids';
import { verifyChain } from '../../src/storage/auditLog';
import { click, drainApplyQueue, people, openCard, startHarness, type Harness } from '../harness';

/**
 * The whole loop, per server kind: an event goes in and a card comes out; an approver clicks in the card; the queue
 * applies the decision through the real SDK clients against the ARM emulator; the audit chain is complete and the
 * card is updated for everyone.
 */

function pecState(h: Harness, pecId: string) {
    return (h.arm.getPec(pecId) as { properties: { privateLinkServiceConnectionState: unknown } }).properties
        .privateLinkServiceConnectionState;
}

describe('decision end to end', () => {
    let h: Harness;
    beforeEach(async () => {
        h = await startHarness();
    });
    afterEach(async () => {
        await h.close();
    });

    const cases = serverKinds.flatMap((kind) => [
        { kind, verb: 'approve' as const, text: 'Reporting tier, ticket CHG-1042', state: 'Approved' },
        { kind, verb: 'reject' as const, text: 'Not one of our subscriptions', state: 'Rejected' },
    ]);

    it.each(cases)('$verb on a $kind: ARM, audit and card all agree', async ({ kind, verb, text, state }) => {
        const { seeded, request } = await openCard(h, kind);
        expect(h.bot.conversations).toHaveLength(1);

        const answer = await click(h, request, { verb, text, who: people.alice });
        expect(answer.status).toBe(200);
        expect(answer.body).toMatchObject({ statusCode: 200, type: 'application/vnd.microsoft.card.adaptive' });
        expect(answer.text).toContain(`${verb === 'approve' ? 'Approving' : 'Rejecting'}… by Alice Approver`);
        expect(answer.text).not.toMatch(/"verb":"(approve|reject)"/);
        // Nothing reaches ARM until the queue runs.
        expect(pecState(h, seeded.pecId)).toMatchObject({ status: 'Pending' });

        expect(await drainApplyQueue(h)).toBe(1);

        const description = `${state} by alice@contoso.com: ${text}`;
        expect(pecState(h, seeded.pecId)).toEqual(expect.objectContaining({ status: state, description }));
        const stored = await h.deps.requests.get(request.id);
        expect(stored?.request).toMatchObject({
            status: 'applied',
            cardShows: 'applied',
            decision: { action: verb, text, by: { objectId: people.alice.objectId, upn: 'alice@contoso.com' } },
        });
        expect(stored?.request.applying).toBeUndefined();

        const audit = await h.deps.audit.list(request.id);
        expect(audit.map((e) => e.action)).toEqual(['requested', 'card-posted', 'decided', 'applied']);
        expect(verifyChain(audit)).toEqual([]);
        expect(audit[2]).toMatchObject({
            actor: { kind: 'approver', id: people.alice.objectId, name: 'alice@contoso.com' },
            text,
            correlationId: request.correlationId,
        });
        expect(audit[3]).toMatchObject({ before: { status: 'Pending' }, after: { status: state, description } });

        // The card was replaced for everyone twice: "Approving… by" when the decision was recorded, then the outcome,
        // with no buttons either time.
        expect(h.bot.updates).toHaveLength(2);
        expect(JSON.stringify(h.bot.updates[0]!.activity)).toContain(
            `${verb === 'approve' ? 'Approving' : 'Rejecting'}… by Alice Approver`,
        );
        expect(JSON.stringify(h.bot.updates[0]!.activity)).not.toMatch(/"verb":"(approve|reject)"/);
        const updated = JSON.stringify(h.bot.updates[1]!.activity);
        expect(updated).toMatch(
            new RegExp(`${state} by Alice Approver at \\d{4}-\\d{2}-\\d{2} \\d{2}:\\d{2} UTC: ${text}`),
        );
        expect(updated).not.toMatch(/"verb":"(approve|reject)"/);
        expect(h.bot.updates[1]).toMatchObject({
            conversationId: request.card!.conversationId,
            activityId: request.card!.activityId,
        });
        // And a reply in the card's thread says so.
        const replies = h.bot.activities.filter((a) => a.conversationId === request.card!.conversationId).slice(1);
        expect(replies).toHaveLength(1);
        expect(JSON.stringify(replies[0]!.activity)).toContain(
            `${state} by Alice Approver (alice@contoso.com): ${text}. The connection is now ${state}.`,
        );
    });

    it('answers a second click with the final card and never decides twice', async () => {
        const { request } = await openCard(h, 'postgres-flexible');

        const [first, second] = await Promise.all([
            click(h, request, { verb: 'approve', who: people.alice }),
            click(h, request, { verb: 'reject', text: 'no', who: people.bob }),
        ]);
        const texts = [first.text, second.text];
        expect(texts.filter((t) => /Approving… by Alice|Rejecting… by Bob/.test(t))).toHaveLength(2);
        await drainApplyQueue(h);
        const audit = await h.deps.audit.list(request.id);
        expect(audit.filter((e) => e.action === 'decided')).toHaveLength(1);
        expect(audit.filter((e) => e.action === 'applied')).toHaveLength(1);

        const again = await click(h, request, { verb: 'reject', text: 'changed my mind', who: people.bob });
        expect(again.text).toMatch(/(Approved by Alice|Rejected by Bob)/);
        expect(again.text).not.toMatch(/"verb":"(approve|reject)"/);
        expect((await h.deps.audit.list(request.id)).length).toBe(audit.length);
    });
});

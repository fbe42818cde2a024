import { main } from '../../scripts/pec';
import type { ApprovalRequest } from '../../src/domain/request';
import { verifyChain } from '../../src/storage/auditLog';
import { resendCard } from '../../src/workflow/resend';
import { click, drainApplyQueue, openCard, people, startHarness, testContext, type Harness } from '../harness';
import { memoryOutput } from '../ops/helpers';

/**
 * `pec resend`: a lost card posted again, through the production composition root, against the Bot Connector
 * emulator and Azurite. The new card replaces the old one: the request points at it, the old one's buttons stop
 * working, and the audit trail says so.
 */

describe('resendCard', () => {
    // One harness for the file: each test works on PECs of its own, and counts cards relative to its start.
    let h: Harness;
    beforeAll(async () => {
        h = await startHarness();
    });
    afterAll(async () => {
        await h.close();
    });

    async function stored(id: string): Promise<ApprovalRequest> {
        const s = await h.deps.requests.get(id);
        if (!s) {
            throw new Error(`no request ${id}`);
        }
        return s.request;
    }

    it('posts a new card for a pending request, points the request at it, and the old card stops working', async () => {
        const { request: before } = await openCard(h, 'postgres-flexible');
        const cards = h.bot.conversations.length;

        const outcome = await resendCard(h.deps, before.id, testContext('resend'), { operator: 'ops@laptop' });
        expect(outcome).toMatchObject({ kind: 'posted', previous: before.card });

        expect(h.bot.conversations).toHaveLength(cards + 1);
        const posted = h.bot.conversations.at(-1)!;
        const after = await stored(before.id);
        expect(after.card).toMatchObject({
            channel: 'bot',
            conversationId: posted.id,
            activityId: posted.activityId,
        });
        expect(after.card?.conversationId).not.toBe(before.card?.conversationId);
        expect(after.cardShows).toBe('pending');
        expect(after.cardClaimedAt).toBeUndefined();
        // A fresh single-use link for the new card; the old card's link is no longer the one the request accepts.
        expect(after.link?.tokenHash).toBeDefined();
        expect(after.link?.tokenHash).not.toBe(before.link?.tokenHash);
        const card = JSON.stringify(h.bot.activities.find((a) => a.activityId === posted.activityId)?.activity);
        expect(card).toContain(before.id);
        // The shared view, as any posted card: approvers get the buttons when it refreshes for them.
        expect(card).toMatch(/"verb":"refresh"/);
        expect(card).not.toMatch(/"verb":"approve"/);

        const audit = await h.deps.audit.list(before.id);
        expect(audit.map((e) => e.action)).toEqual(['requested', 'card-posted', 'card-resent']);
        expect(audit[2]).toMatchObject({
            actor: { kind: 'system', name: 'pec resend' },
            before: before.card,
            after: after.card,
            detail: expect.stringContaining('(run by ops@laptop)'),
        });
        expect(verifyChain(audit)).toEqual([]);

        // The old card's buttons no longer decide anything; the new card's do.
        const old = await click(h, before, { text: 'from the old card' });
        expect(old.body).toMatchObject({ statusCode: 400 });
        expect((await stored(before.id)).status).toBe('pending');
        const fresh = await click(h, after, { who: people.alice, text: 'from the new card' });
        expect(fresh.body).toMatchObject({ statusCode: 200 });
        expect((await stored(before.id)).status).toBe('decided');
    });

    it('posts a card for a pending request that never got one (card-failed)', async () => {
        h.bot.faults.add(
            { kind: 'error', status: 403 },
            { times: 1, method: 'POST', pathIncludes: '/v3/conversations' },
        );
        const { request } = await openCard(h, 'mysql-flexible');
        expect(request.card).toBeUndefined();

        const outcome = await resendCard(h.deps, request.id, testContext('resend'));
        expect(outcome).toMatchObject({ kind: 'posted' });
        expect(outcome).not.toHaveProperty('previous');
        expect((await stored(request.id)).card?.conversationId).toBe(h.bot.conversations.at(-1)?.id);
        const actions = (await h.deps.audit.list(request.id)).map((e) => e.action);
        expect(actions).toEqual(['requested', 'card-failed', 'card-resent']);
    });

    it('posts a status card for a decided request, and the apply then updates that card', async () => {
        const { request } = await openCard(h, 'mysql-flexible');
        await click(h, request, { text: 'ok' });
        expect((await stored(request.id)).status).toBe('decided');

        const outcome = await resendCard(h.deps, request.id, testContext('resend'));
        expect(outcome).toMatchObject({ kind: 'posted', request: { status: 'decided' } });
        const card = (await stored(request.id)).card!;
        const posted = h.bot.activities.find((a) => a.activityId === card.activityId);
        expect(JSON.stringify(posted?.activity)).not.toMatch(/"verb":"(approve|reject)"/);

        await drainApplyQueue(h);
        expect((await stored(request.id)).status).toBe('applied');
        expect(h.bot.updates.map((u) => u.activityId)).toContain(card.activityId);
    });

    it('refuses an applied request, a request being posted right now, and an unknown one, posting nothing', async () => {
        const { request } = await openCard(h, 'postgres-single');
        await click(h, request, { text: 'ok' });
        await drainApplyQueue(h);
        expect((await stored(request.id)).status).toBe('applied');
        const cards = h.bot.conversations.length;
        const trail = (await h.deps.audit.list(request.id)).length;

        const applied = await resendCard(h.deps, request.id, testContext('resend'));
        expect(applied).toMatchObject({ kind: 'not-open', status: 'applied' });
        expect(applied.kind !== 'posted' && applied.reason).toMatch(/is applied: there is no open question/);

        const { request: other } = await openCard(h, 'mysql-single');
        const current = await h.deps.requests.get(other.id);
        await h.deps.requests.update(current!, { ...other, cardClaimedAt: new Date().toISOString() });
        const busy = await resendCard(h.deps, other.id, testContext('resend'));
        expect(busy).toMatchObject({ kind: 'busy' });

        expect(await resendCard(h.deps, 'A'.repeat(22), testContext('resend'))).toMatchObject({ kind: 'not-found' });
        expect(await resendCard(h.deps, 'no such id', testContext('resend'))).toMatchObject({ kind: 'invalid-id' });

        expect(h.bot.conversations).toHaveLength(cards + 1);
        expect(await h.deps.audit.list(request.id)).toHaveLength(trail);
    });

    it('gives the claim and the old link back when the post fails', async () => {
        const { request: before } = await openCard(h, 'postgres-flexible');
        h.bot.faults.add(
            { kind: 'error', status: 403 },
            { times: 1, method: 'POST', pathIncludes: '/v3/conversations' },
        );

        const outcome = await resendCard(h.deps, before.id, testContext('resend'));
        expect(outcome).toMatchObject({ kind: 'failed', retryable: false });
        const after = await stored(before.id);
        expect(after.card).toEqual(before.card);
        expect(after.link).toEqual(before.link);
        expect(after.cardClaimedAt).toBeUndefined();
        expect((await h.deps.audit.list(before.id)).at(-1)).toMatchObject({
            action: 'card-failed',
            detail: expect.stringMatching(/^resend: /),
        });
    });

    it('runs as `pec resend ID`, with the app settings, and refuses through the CLI with exit 1', async () => {
        const { request } = await openCard(h, 'postgres-flexible');
        const cards = h.bot.conversations.length;
        const output = memoryOutput();
        expect(await main(['resend', request.id], output, { env: { ...process.env, ...h.env }, cwd: __dirname })).toBe(
            0,
        );
        expect(output.stdout[0]).toMatch(
            new RegExp(`^Posted a new card for request ${request.id} \\(pending\\) to the Teams channel`),
        );
        expect(output.stdout[1]).toMatch(/whose buttons and web link no longer work\.$/);
        expect(h.bot.conversations).toHaveLength(cards + 1);

        const unknown = memoryOutput();
        const id = 'B'.repeat(22);
        expect(await main(['resend', id], unknown, { env: { ...process.env, ...h.env }, cwd: __dirname })).toBe(1);
        expect(unknown.stderr).toEqual([`No request ${id}`]);
    });
});

import type { ApprovalRequest } from '../../src/domain/request';
import {
    cardActionActivity,
    click,
    drainApplyQueue,
    ids,
    people,
    postActivity,
    openCard,
    startHarness,
    type Harness,
} from '../harness';

/** The bot endpoint beyond the security matrix: per-user refresh, other activities, and Graph trouble. */

describe('teamsMessages', () => {
    let h: Harness;
    let request: ApprovalRequest;

    async function setUp(settings: Record<string, string> = {}) {
        h = await startHarness({ settings });
        ({ request } = await openCard(h, 'mysql-flexible'));
    }

    afterEach(async () => {
        await h.close();
    });

    it('refresh gives approvers the buttons and everyone else the status', async () => {
        await setUp();
        const approver = await click(h, request, { verb: 'refresh', who: people.bob });
        expect(approver.text).toMatch(/"verb":"(approve|reject)"/);
        expect(approver.text).toContain('Waiting for approval');
        const viewer = await click(h, request, { verb: 'refresh', who: people.mallory });
        expect(viewer.text).not.toMatch(/"verb":"(approve|reject)"/);
        expect(viewer.text).toContain('Waiting for approval');
        const requester = await click(h, request, { verb: 'refresh', who: people.dev });
        expect(requester.text).not.toMatch(/"verb":"(approve|reject)"/);
        // A refresh is a view, never a write.
        expect((await h.deps.audit.list(request.id)).map((e) => e.action)).toEqual(['requested', 'card-posted']);

        await click(h, request, { verb: 'approve', who: people.alice });
        const after = await click(h, request, { verb: 'refresh', who: people.bob });
        expect(after.text).toContain('Approving… by Alice Approver');
        expect(after.text).not.toMatch(/"verb":"(approve|reject)"/);
    });

    it('lets the requester decide only when ALLOW_SELF_APPROVAL says so', async () => {
        await setUp({ ALLOW_SELF_APPROVAL: 'true' });
        const result = await click(h, request, { who: people.dev, text: 'my own, allowed by policy' });
        expect(result.text).toContain('Approving… by Dev Eloper');
    });

    it('refuses for now, and writes nothing, when Graph cannot answer', async () => {
        await setUp();
        h.graph.faults.add({ kind: 'error', status: 503 }, { times: 100 });
        const result = await click(h, request, { who: people.alice, text: 'ok' });
        expect(result.text).toContain('Could not check approver membership just now');
        expect((await h.deps.requests.get(request.id))?.request.status).toBe('pending');
        expect((await h.deps.audit.list(request.id)).map((e) => e.action)).toEqual(['requested', 'card-posted']);
    });

    it('gives the card back with "try again", and records nothing, when ARM cannot answer', async () => {
        await setUp();
        // ARM down for longer than the pipeline's retries: the stale-PEC read fails.
        h.arm.faults.add({ kind: 'error', status: 503, code: 'ServiceUnavailable' }, { times: 100, method: 'GET' });
        const result = await click(h, request, { who: people.alice, text: 'ok' });
        expect(result.status).toBe(200);
        expect(result.body?.type).toBe('application/vnd.microsoft.card.adaptive');
        expect(result.text).toMatch(/Could not check the connection now/);
        // The approver's text is kept on the card, so a second click does not make them type it again.
        expect(result.text).toContain('"value":"ok"');
        expect((await h.deps.requests.get(request.id))?.request.status).toBe('pending');
        expect((await h.deps.audit.list(request.id)).map((e) => e.action)).toEqual(['requested', 'card-posted']);
        expect(
            await h.queue
                .peekMessages()
                .then((r) => r.peekedMessageItems.length)
                .catch(() => 0),
        ).toBe(0);
    });

    it('answers once the decision is recorded: the card for everyone is updated by the apply, not the click', async () => {
        await setUp();
        const updates = h.bot.updates.length;
        const result = await click(h, request, { who: people.alice, text: 'ok' });
        expect(result.body?.type).toBe('application/vnd.microsoft.card.adaptive');
        expect((await h.deps.requests.get(request.id))?.request.status).toBe('decided');
        // The click touched neither the shared card nor ARM's PEC.
        expect(h.bot.updates.length).toBe(updates);
        expect(h.arm.requests.filter((r) => r.method === 'PUT')).toHaveLength(0);

        await drainApplyQueue(h);
        const shown = h.bot.updates.slice(updates).map((u) => JSON.stringify(u.activity));
        // First "decided" (no buttons), then the outcome.
        expect(shown.length).toBeGreaterThanOrEqual(2);
        expect(shown.at(-1)).toMatch(/Approved/);
        expect((await h.deps.requests.get(request.id))?.request.status).toBe('applied');
    });

    it('answers with an error message, never a failed invocation, when storage cannot answer', async () => {
        await setUp();
        const requests = h.deps.requests;
        h.deps.requests = {
            ...requests,
            get: () => Promise.reject(new Error('Storage: 503 ServerBusy')),
        } as typeof requests;
        try {
            const result = await click(h, request, { who: people.alice, text: 'ok' });
            expect(result.status).toBe(200);
            expect(result.body).toMatchObject({ statusCode: 500, type: 'application/vnd.microsoft.error' });
        } finally {
            h.deps.requests = requests;
        }
        expect((await h.deps.requests.get(request.id))?.request.status).toBe('pending');
    });

    it('answers other activities with 200 and touches nothing', async () => {
        await setUp();
        const message = {
            type: 'message',
            id: '1',
            channelId: 'msteams',
            serviceUrl: h.bot.serviceUrl,
            text: 'hello bot',
            from: { id: '29:x', aadObjectId: people.mallory.objectId },
            conversation: { id: request.card!.conversationId },
        };
        // Posting the card asked Graph for the approvers (its refresh.userIds); the message must ask nothing more.
        const before = h.graph.requests.length;
        const result = await postActivity(h, message);
        expect(result.status).toBe(200);
        expect(result.body).toBeUndefined();
        expect(h.graph.requests).toHaveLength(before);
    });

    it('answers a malformed card action with an error, not an exception', async () => {
        await setUp();
        const broken = cardActionActivity(h, request, { activity: { value: { action: { verb: 'delete' } } } });
        const result = await postActivity(h, broken);
        expect(result.body).toMatchObject({ statusCode: 400, type: 'application/vnd.microsoft.error' });
        // Another channel: the Bot Framework's keys are endorsed for msteams only, so the token itself is refused.
        const notTeams = cardActionActivity(h, request, { activity: { channelId: 'webchat' } });
        expect((await postActivity(h, notTeams)).status).toBe(401);
        const noObjectId = cardActionActivity(h, request, { activity: { from: { id: '29:x' } } });
        expect((await postActivity(h, noObjectId)).body).toMatchObject({ statusCode: 400 });
        expect((await h.deps.requests.get(request.id))?.request.status).toBe('pending');
    });

    it('checks the token audience against this app (AZURE_CLIENT_ID)', async () => {
        await setUp();
        const token = await h.botIdentity.tokenFor({ audience: ids.client, serviceUrl: h.bot.serviceUrl });
        expect((await click(h, request, { verb: 'refresh', authorization: `Bearer ${token}` })).status).toBe(200);
    });
});

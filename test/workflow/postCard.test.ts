import type { EventGridEvent, Timer } from '@azure/functions';
import { pecEvents } from '../../functions/pecEvents';
import { sweepFunction } from '../../functions/sweep';
import { TransientError } from '../../src/domain/errors';
import { DUPLICATE_NOTE_ID } from '../../src/teams/duplicateNote';
import { checkLinkToken } from '../../src/workflow/linkToken';
import { updateRequest } from '../../src/workflow/requestUpdate';
import {
    click,
    people,
    requestOf,
    resourceWriteEvent,
    seedPendingPec,
    startHarness,
    testContext,
    type Harness,
} from '../harness';

/** Recording the card once it is out, whatever else wrote the request while it was being posted. */
describe('ensureCard', () => {
    let h: Harness;
    beforeEach(async () => {
        h = await startHarness();
    });
    afterEach(async () => {
        await h.close();
    });

    it('adopts the card of a claim that lapsed after its post, whose record was lost, instead of posting a second', async () => {
        await sweepFunction({ isPastDue: false } as unknown as Timer, testContext('sweep'));
        const seeded = seedPendingPec(h.arm, 'postgres-flexible');
        const requests = h.deps.requests;
        const update = requests.update.bind(requests);
        let failed = 0;
        requests.update = async (stored, next) => {
            if (next.card && !stored.request.card && failed++ === 0) {
                // Storage unavailable after the SDK's retries, or the process dies right after the post.
                throw new TransientError('could not update the request: simulated 503');
            }
            return update(stored, next);
        };
        const event = resourceWriteEvent(seeded.pecId) as unknown as EventGridEvent;
        try {
            await expect(pecEvents(event, testContext('pecEvents'))).rejects.toThrow();
        } finally {
            requests.update = update;
        }
        expect(h.bot.cards()).toHaveLength(1);
        // Event Grid redelivers at once (the claim still held), and the sweep runs once the claim has lapsed.
        await pecEvents(event, testContext('pecEvents'));
        const now = h.deps.now;
        h.deps.now = () => new Date(now().getTime() + 15 * 60_000);
        try {
            await sweepFunction({ isPastDue: false } as unknown as Timer, testContext('sweep'));
        } finally {
            h.deps.now = now;
        }
        const request = await requestOf(h, seeded.pecId);
        expect(h.bot.cards()).toHaveLength(1);
        expect(request.card).toMatchObject({ channel: 'bot' });
    });

    it('records a posted card even when the request was written during the post, and never posts a second', async () => {
        const seeded = seedPendingPec(h.arm, 'postgres-single');
        h.bot.faults.add({ kind: 'slow', delayMs: 400 }, { method: 'POST', pathIncludes: '/v3/conversations' });
        const event = pecEvents(
            resourceWriteEvent(seeded.pecId) as unknown as EventGridEvent,
            testContext('pecEvents'),
        );

        // While the bot post is in flight, another writer changes the request (as the sweep or a late event may).
        let written = false;
        for (let i = 0; i < 50 && !written; i++) {
            await new Promise((r) => setTimeout(r, 20));
            const stored = await h.deps.requests.getActiveForPec(seeded.pecId);
            if (stored?.request.cardClaimedAt) {
                await updateRequest(h.deps.requests, stored, (r) => ({ ...r, updatedAt: new Date().toISOString() }));
                written = true;
            }
        }
        expect(written).toBe(true);
        await event;

        const request = await requestOf(h, seeded.pecId);
        expect(request.card).toMatchObject({ channel: 'bot' });
        expect(request.cardClaimedAt).toBeUndefined();
        expect(h.bot.conversations).toHaveLength(1);
        // A redelivery, and a later sweep's look, find the card recorded and post nothing.
        await pecEvents(resourceWriteEvent(seeded.pecId) as unknown as EventGridEvent, testContext('pecEvents'));
        expect(h.bot.conversations).toHaveLength(1);
    });

    describe('a post slower than the card claim', () => {
        /** Whether the thread's root message is now a duplicate note (its current content, after any edit). */
        function isNote(conversationId: string | undefined): boolean {
            const root = h.bot.activities.find((a) => a.conversationId === conversationId && !a.replyToId);
            return JSON.stringify(root?.activity ?? {}).includes(`"id":"${DUPLICATE_NOTE_ID}"`);
        }

        /** Delivers the event, and again once its first post is on its way and its claim has lapsed (61 s later). */
        async function deliverAcrossLapsedClaim(pecId: string): Promise<void> {
            const event = resourceWriteEvent(pecId) as unknown as EventGridEvent;
            const first = pecEvents(event, testContext('pecEvents'));
            for (let i = 0; i < 50 && h.bot.requests.filter((r) => r.method === 'POST').length === 0; i++) {
                await new Promise((r) => setTimeout(r, 20));
            }
            const now = h.deps.now;
            h.deps.now = () => new Date(now().getTime() + 61_000);
            try {
                await Promise.all([first, pecEvents(event, testContext('pecEvents'))]);
            } finally {
                h.deps.now = now;
            }
        }

        // The first post is still on its way when its claim lapses and a redelivery takes the claim over and posts
        // too. Whichever card is recorded first is the request's card; the other poster turns its own into a note.
        it.each([
            ['the later post records first', 900, 0],
            ['the slow post records first', 400, 1500],
        ])('keeps one card to decide in when %s', async (_name, firstDelayMs, secondDelayMs) => {
            const seeded = seedPendingPec(h.arm, 'postgres-flexible');
            const post = { method: 'POST', pathIncludes: '/v3/conversations' };
            h.bot.faults.add({ kind: 'slow', delayMs: firstDelayMs }, { times: 1, ...post });
            if (secondDelayMs) {
                h.bot.faults.add({ kind: 'slow', delayMs: secondDelayMs }, { times: 1, ...post });
            }
            await deliverAcrossLapsedClaim(seeded.pecId);

            expect(h.bot.conversations).toHaveLength(2);
            const request = await requestOf(h, seeded.pecId);
            const kept = request.card?.conversationId;
            const other = h.bot.conversations.map((c) => c.id).find((id) => id !== kept);
            expect(isNote(kept)).toBe(false);
            expect(isNote(other)).toBe(true);
            expect(request.cardClaimedAt).toBeUndefined();
            const trail = (await h.deps.audit.list(request.id)).map((e) => e.action);
            expect(trail.filter((a) => a === 'card-duplicate')).toHaveLength(1);
            // The card kept carries the link token whose hash the request holds.
            const keptCard = JSON.stringify(h.bot.conversations.find((c) => c.id === kept)?.parameters ?? {});
            const token = /token=([A-Za-z0-9_-]{43})/.exec(keptCard)?.[1];
            expect(token).toBeDefined();
            expect(checkLinkToken(request, token, new Date())).toEqual({ ok: true });
        });
        it('leaves its card alone when another invocation found it in the channel and adopted it', async () => {
            const seeded = seedPendingPec(h.arm, 'postgres-flexible');
            // The first post lands at once, but its answer is held until the claim has lapsed and a redelivery has
            // looked in the channel and adopted that very card.
            const teams = h.deps.teams!;
            const post = teams.postCard.bind(teams);
            let answer!: () => void;
            const held = new Promise<void>((resolve) => (answer = resolve));
            let landed = false;
            teams.postCard = async (card, summary) => {
                const ref = await post(card, summary);
                if (!landed) {
                    landed = true;
                    await held;
                }
                return ref;
            };
            const event = resourceWriteEvent(seeded.pecId) as unknown as EventGridEvent;
            const first = pecEvents(event, testContext('pecEvents'));
            for (let i = 0; i < 200 && !landed; i++) {
                await new Promise((r) => setTimeout(r, 20));
            }
            const now = h.deps.now;
            h.deps.now = () => new Date(now().getTime() + 61_000);
            try {
                await pecEvents(event, testContext('pecEvents'));
            } finally {
                h.deps.now = now;
                teams.postCard = post;
            }
            answer();
            await first;

            const request = await requestOf(h, seeded.pecId);
            expect(h.bot.conversations).toHaveLength(1);
            expect(request.card?.conversationId).toBe(h.bot.conversations[0]?.id);
            expect(isNote(request.card?.conversationId)).toBe(false);
            expect((await h.deps.audit.list(request.id)).map((e) => e.action)).not.toContain('card-duplicate');
        });

        it('marks its card for the sweep when it cannot turn it into a note at once', async () => {
            const seeded = seedPendingPec(h.arm, 'postgres-flexible');
            const post = { method: 'POST', pathIncludes: '/v3/conversations' };
            h.bot.faults.add({ kind: 'slow', delayMs: 900 }, { times: 1, ...post });
            // The Bot Connector refuses the edit that would turn the slow post's card into a note.
            h.bot.faults.add({ kind: 'error', status: 403, code: 'BotNotInConversationRoster' }, { method: 'PUT' });
            await deliverAcrossLapsedClaim(seeded.pecId);
            let request = await requestOf(h, seeded.pecId);
            expect(request.cardDuplicateCheckSince).toBeDefined();
            const other = h.bot.conversations.map((c) => c.id).find((id) => id !== request.card?.conversationId);
            expect(isNote(other)).toBe(false);

            await sweepFunction({ isPastDue: false } as unknown as Timer, testContext('sweep'));
            request = await requestOf(h, seeded.pecId);
            expect(request.cardDuplicateCheckSince).toBeUndefined();
            expect(isNote(other)).toBe(true);
            expect(isNote(request.card?.conversationId)).toBe(false);
        });
    });

    describe('a post whose answer was lost', () => {
        beforeEach(async () => {
            // A try without an answer is given up after half a second, as HTTP_TIMEOUT_MS does in production.
            await h.close();
            h = await startHarness({ settings: { HTTP_TIMEOUT_MS: '500' } });
        });

        async function deliverUntilDone(pecId: string, attempts = 4): Promise<number> {
            for (let i = 1; i <= attempts; i++) {
                try {
                    await pecEvents(resourceWriteEvent(pecId) as unknown as EventGridEvent, testContext('pecEvents'));
                    return i;
                } catch {
                    // Event Grid redelivers.
                }
            }
            return attempts;
        }

        it('finds the card in the channel through Graph and adopts it instead of posting a second', async () => {
            const seeded = seedPendingPec(h.arm, 'postgres-flexible');
            // The Bot Connector creates the thread, and the answer never arrives (the try is given up).
            h.bot.faults.add(
                { kind: 'hang', afterProcessing: true, dropAfterMs: 120_000 },
                { times: 1, method: 'POST', pathIncludes: '/v3/conversations' },
            );
            expect(await deliverUntilDone(seeded.pecId)).toBe(2);

            expect(h.bot.conversations).toHaveLength(1);
            const request = await requestOf(h, seeded.pecId);
            expect(request.card).toMatchObject({
                channel: 'bot',
                conversationId: h.bot.conversations[0]?.id,
                activityId: h.bot.conversations[0]?.activityId,
            });
            expect(request.cardPostUnknownAt).toBeUndefined();
            const trail = await h.deps.audit.list(request.id);
            expect(trail.filter((e) => e.action === 'card-posted')).toHaveLength(1);
            expect(trail.find((e) => e.action === 'card-posted')?.detail).toMatch(/found in the channel/);
            expect(h.graph.requests.some((r) => r.path.endsWith('/messages'))).toBe(true);

            // The adopted card works: its buttons reach this request.
            const answer = await click(h, request, { who: people.alice, text: 'ok' });
            expect(answer.body?.type).toBe('application/vnd.microsoft.card.adaptive');
            expect((await requestOf(h, seeded.pecId)).status).toBe('decided');
        });

        it('posts again when the first post never reached the channel', async () => {
            const seeded = seedPendingPec(h.arm, 'mysql-single');
            // No answer, and nothing created.
            h.bot.faults.add(
                { kind: 'hang', afterProcessing: false, dropAfterMs: 120_000 },
                { times: 1, method: 'POST', pathIncludes: '/v3/conversations' },
            );
            await deliverUntilDone(seeded.pecId);
            expect(h.bot.conversations).toHaveLength(1);
            expect((await requestOf(h, seeded.pecId)).card).toMatchObject({ channel: 'bot' });
        });

        /** Whether the thread's root message is now a duplicate note (its current content, after any edit). */
        function isNote(conversationId: string | undefined): boolean {
            const root = h.bot.activities.find((a) => a.conversationId === conversationId && !a.replyToId);
            return JSON.stringify(root?.activity ?? {}).includes(`"id":"${DUPLICATE_NOTE_ID}"`);
        }

        it('when the channel cannot be read, posts again and turns the lost card into a note as soon as it can', async () => {
            const seeded = seedPendingPec(h.arm, 'postgres-flexible');
            h.bot.faults.add(
                { kind: 'hang', afterProcessing: true, dropAfterMs: 120_000 },
                { times: 1, method: 'POST', pathIncludes: '/v3/conversations' },
            );
            // The channel cannot be read for the look before posting, nor for the check right after.
            h.graph.faults.add(
                { kind: 'error', status: 403, code: 'Forbidden' },
                { times: 2, pathIncludes: '/messages' },
            );
            expect(await deliverUntilDone(seeded.pecId)).toBe(2);

            // Approvers are not left without a card: the second post went out, and the first is still unknown.
            expect(h.bot.conversations).toHaveLength(2);
            let request = await requestOf(h, seeded.pecId);
            expect(request.card?.activityId).toBe(h.bot.conversations[1]?.activityId);
            expect(request.cardDuplicateCheckSince).toBeDefined();
            expect(isNote(h.bot.conversations[0]?.id)).toBe(false);

            // The sweep looks again once the channel can be read: the card the answer was lost for becomes a note.
            await sweepFunction({ isPastDue: false } as unknown as Timer, testContext('sweep'));
            expect(isNote(h.bot.conversations[0]?.id)).toBe(true);
            expect(isNote(h.bot.conversations[1]?.id)).toBe(false);
            request = await requestOf(h, seeded.pecId);
            expect(request.cardDuplicateCheckSince).toBeUndefined();
            const trail = await h.deps.audit.list(request.id);
            const noted = trail.filter((e) => e.action === 'card-duplicate');
            expect(noted).toHaveLength(1);
            expect(noted[0]?.before).toMatchObject({ activityId: h.bot.conversations[0]?.activityId });
            expect(noted[0]?.after).toMatchObject({ activityId: request.card?.activityId });

            // Another sweep finds nothing more to do, and the card that stays decides.
            await sweepFunction({ isPastDue: false } as unknown as Timer, testContext('sweep'));
            expect((await h.deps.audit.list(request.id)).filter((e) => e.action === 'card-duplicate')).toHaveLength(1);
            const answer = await click(h, request, { who: people.alice, text: 'ok' });
            expect(answer.body?.type).toBe('application/vnd.microsoft.card.adaptive');
            expect((await requestOf(h, seeded.pecId)).status).toBe('decided');
        });

        it('turns the lost card into a note at once when the channel can be read right after the second post', async () => {
            const seeded = seedPendingPec(h.arm, 'mysql-flexible');
            h.bot.faults.add(
                { kind: 'hang', afterProcessing: true, dropAfterMs: 120_000 },
                { times: 1, method: 'POST', pathIncludes: '/v3/conversations' },
            );
            h.graph.faults.add(
                { kind: 'error', status: 403, code: 'Forbidden' },
                { times: 1, pathIncludes: '/messages' },
            );
            await deliverUntilDone(seeded.pecId);

            expect(h.bot.conversations).toHaveLength(2);
            expect(isNote(h.bot.conversations[0]?.id)).toBe(true);
            const request = await requestOf(h, seeded.pecId);
            expect(request.card?.activityId).toBe(h.bot.conversations[1]?.activityId);
            expect(request.cardDuplicateCheckSince).toBeUndefined();
        });

        it('ignores a message that is not from the bot, even when it names the request', async () => {
            const seeded = seedPendingPec(h.arm, 'mysql-flexible');
            h.bot.faults.add(
                { kind: 'hang', afterProcessing: false, dropAfterMs: 120_000 },
                { times: 1, method: 'POST', pathIncludes: '/v3/conversations' },
            );
            const original = h.graph.channelMessages;
            // Someone pasted a look-alike card (through a webhook, say) naming the request.
            h.graph.channelMessages = (team, channel) => {
                const real = original?.(team, channel) ?? [];
                const id = (globalThis as { lastRequestId?: string }).lastRequestId;
                return id
                    ? [
                          ...real,
                          {
                              id: '1700000000000',
                              replyToId: null,
                              messageType: 'message',
                              createdDateTime: new Date().toISOString(),
                              from: {
                                  application: null,
                                  user: { id: people.dev.objectId, displayName: 'Dev', userIdentityType: 'aadUser' },
                                  device: null,
                              },
                              body: { contentType: 'html', content: '' },
                              channelIdentity: { teamId: team, channelId: channel },
                              attachments: [
                                  {
                                      id: 'x',
                                      contentType: 'application/vnd.microsoft.card.adaptive',
                                      contentUrl: null,
                                      content: JSON.stringify({ body: [{ type: 'TextBlock', text: `Request ${id}` }] }),
                                      name: null,
                                      thumbnailUrl: null,
                                  },
                              ],
                          },
                      ]
                    : real;
            };
            try {
                await pecEvents(
                    resourceWriteEvent(seeded.pecId) as unknown as EventGridEvent,
                    testContext('pecEvents'),
                ).catch(() => undefined);
                const pending = await h.deps.requests.getActiveForPec(seeded.pecId);
                (globalThis as { lastRequestId?: string }).lastRequestId = pending?.request.id;
                await deliverUntilDone(seeded.pecId);
            } finally {
                h.graph.channelMessages = original;
                delete (globalThis as { lastRequestId?: string }).lastRequestId;
            }
            const request = await requestOf(h, seeded.pecId);
            // The bot's own post is the card; the look-alike was never adopted.
            expect(request.card).toMatchObject({ channel: 'bot', activityId: h.bot.conversations[0]?.activityId });
            expect(h.bot.conversations).toHaveLength(1);
        });
    });
});

import type { AccessToken, TokenCredential } from '@azure/core-auth';
import { PermanentError, TransientError } from '../../src/domain/errors';
import type { CardRef } from '../../src/domain/request';
import type { AdaptiveCardJson } from '../../src/teams/adaptiveCard';
import { BotConnectorChannel } from '../../src/teams/botConnector';
import { BotConnectorEmulator } from '../emulators/botConnector';

/**
 * The Bot Connector client against the emulator. The credential is a stand-in that mints emulator-shaped tokens for
 * whatever scope is asked (the managed-identity path itself is covered end to end in test/functions).
 */

const scopesAsked: string[] = [];
const credential: TokenCredential = {
    getToken: async (scopes): Promise<AccessToken> => {
        const scope = Array.isArray(scopes) ? scopes[0]! : scopes;
        scopesAsked.push(scope);
        const payload = Buffer.from(JSON.stringify({ aud: scope.replace(/\/\.default$/, '') })).toString('base64url');
        return { token: `e30.${payload}.x`, expiresOnTimestamp: Date.now() + 3_600_000 };
    },
};

const card = (text: string) =>
    ({ type: 'AdaptiveCard', version: '1.5', body: [{ type: 'TextBlock', text }] }) as unknown as AdaptiveCardJson;

describe('BotConnectorChannel', () => {
    let bot: BotConnectorEmulator;
    let channel: BotConnectorChannel;

    beforeAll(async () => {
        bot = await BotConnectorEmulator.start();
        channel = new BotConnectorChannel({
            serviceUrl: bot.serviceUrl,
            tenantId: 'tenant-1',
            teamId: '19:team@thread.tacv2',
            channelId: '19:approvals@thread.tacv2',
            credential,
            tokenScope: 'https://api.botframework.com/.default',
            maxRetries: 2,
            retryDelayInMs: 10,
        });
    });
    afterAll(() => bot.close());
    afterEach(() => bot.faults.clear());

    async function post(): Promise<CardRef> {
        const ref = await channel.postCard(card('pending'), 'A PEC waits');
        return { channel: 'bot', ...ref, postedAt: new Date().toISOString() };
    }

    it('posts a card as a new thread in the channel, with a token for the Bot Framework scope', async () => {
        const ref = await post();
        const conversation = bot.conversations.find((c) => c.id === ref.conversationId);
        expect(conversation?.parameters).toMatchObject({
            isGroup: true,
            channelData: { channel: { id: '19:approvals@thread.tacv2' }, team: { id: '19:team@thread.tacv2' } },
            activity: { type: 'message', summary: 'A PEC waits' },
        });
        expect(ref.activityId).toBe(conversation?.activityId);
        expect(ref.serviceUrl).toBe(bot.serviceUrl);
        expect(scopesAsked).toContain('https://api.botframework.com/.default');
    });

    it('replaces the posted card for everyone', async () => {
        const ref = await post();
        await channel.updateCard(ref, card('approved'));
        const update = bot.updates.find((u) => u.activityId === ref.activityId);
        expect(JSON.stringify(update?.activity)).toContain('approved');
    });

    it('replies in the card thread as plain text', async () => {
        const ref = await post();
        await channel.reply(ref, 'Approved by ann@contoso.com: **ok**');
        const reply = bot.activities.find((a) => a.replyToId === ref.activityId);
        expect(reply?.activity).toMatchObject({ text: 'Approved by ann@contoso.com: **ok**', textFormat: 'plain' });
    });

    it('replies in the card thread with an Adaptive Card and a summary', async () => {
        const ref = await post();
        const reminder = {
            ...card('Reminder: <at>Ann</at>'),
            msteams: {
                width: 'Full',
                entities: [{ type: 'mention', text: '<at>Ann</at>', mentioned: { id: 'oid-ann', name: 'Ann' } }],
            },
        } as unknown as AdaptiveCardJson;
        await channel.replyCard(ref, reminder, 'Reminder 1 of 3: a PEC waits');

        const [reply, ...more] = bot.replies(ref.activityId!);
        expect(more).toEqual([]);
        expect(reply).toMatchObject({ conversationId: ref.conversationId });
        expect(reply!.activity).toMatchObject({
            type: 'message',
            summary: 'Reminder 1 of 3: a PEC waits',
            replyToId: ref.activityId,
            attachments: [{ contentType: 'application/vnd.microsoft.card.adaptive' }],
        });
        // A reply, not an update: the posted card is untouched, and the card comes back as sent, mentions included.
        expect(reply!.activityId).not.toBe(ref.activityId);
        expect(bot.updates.filter((u) => u.activityId === ref.activityId)).toEqual([]);
        expect(bot.adaptiveCards(reply!)).toEqual([reminder]);
    });

    it('retries a card reply on 503 and refuses one for a card the bot did not post', async () => {
        const ref = await post();
        bot.faults.add({ kind: 'error', status: 503 }, { times: 1, method: 'POST' });
        await channel.replyCard(ref, card('reminder'), 'Reminder');
        expect(bot.replies(ref.activityId!)).toHaveLength(1);

        const webhookRef: CardRef = { channel: 'webhook', postedAt: new Date().toISOString() };
        await expect(channel.replyCard(webhookRef, card('x'), 'x')).rejects.toBeInstanceOf(PermanentError);
    });

    it('retries 429 with Retry-After, and never re-sends a card post answered 5xx (it may have created the card)', async () => {
        bot.faults.add({ kind: 'throttle', retryAfterSeconds: 0 }, { times: 1, method: 'POST' });
        const before = bot.requests.length;
        await expect(post()).resolves.toMatchObject({ channel: 'bot' });
        expect(bot.requests.length - before).toBe(2);

        bot.faults.add({ kind: 'error', status: 502 }, { times: 1, method: 'POST' });
        const again = bot.requests.length;
        await expect(post()).rejects.toBeInstanceOf(TransientError);
        expect(bot.requests.length - again).toBe(1);
    });

    it('retries 412 and a 429 without Retry-After with backoff, a card post too, as Teams asks of bots', async () => {
        bot.faults.add({ kind: 'error', status: 412, code: 'PreconditionFailed' }, { times: 1, method: 'POST' });
        bot.faults.add({ kind: 'error', status: 429, code: 'TooManyRequests' }, { times: 1, method: 'POST' });
        const before = bot.requests.length;
        const ref = await post();
        expect(bot.requests.length - before).toBe(3);

        bot.faults.add({ kind: 'error', status: 412, code: 'PreconditionFailed' }, { times: 1, method: 'PUT' });
        await channel.updateCard(ref, card('approved'));
        expect(bot.updates.filter((u) => u.activityId === ref.activityId)).toHaveLength(1);

        // Still refused after every retry: transient, for the caller's own retry, never a permanent failure.
        bot.faults.add({ kind: 'error', status: 412, code: 'PreconditionFailed' }, { times: 10 });
        await expect(channel.updateCard(ref, card('rejected'))).rejects.toBeInstanceOf(TransientError);
    });

    it('reports a lasting 5xx as transient and a 403 as permanent, without retrying the 403', async () => {
        bot.faults.add({ kind: 'error', status: 503 }, { times: 10 });
        await expect(post()).rejects.toBeInstanceOf(TransientError);
        bot.faults.clear();
        bot.faults.add({ kind: 'error', status: 403, code: 'BotNotInConversationRoster' }, { times: 10 });
        const before = bot.requests.length;
        await expect(post()).rejects.toBeInstanceOf(PermanentError);
        expect(bot.requests.length - before).toBe(1);
    });

    it('gives up on a card post that gets no answer after timeoutMs, and does not send it again', async () => {
        const bounded = new BotConnectorChannel({
            serviceUrl: bot.serviceUrl,
            tenantId: 'tenant-1',
            channelId: '19:approvals@thread.tacv2',
            credential,
            tokenScope: 'https://api.botframework.com/.default',
            maxRetries: 2,
            retryDelayInMs: 10,
            timeoutMs: 200,
        });
        // The post went through and its answer never came: one try, one card, and a transient failure (the trigger
        // retries, and the next attempt finds the card in the channel), never a hung invocation or a second card.
        bot.faults.add({ kind: 'hang', afterProcessing: true, dropAfterMs: 120_000 }, { times: 1, method: 'POST' });
        const before = { requests: bot.requests.length, cards: bot.conversations.length };
        await expect(bounded.postCard(card('pending'), 'A PEC waits')).rejects.toBeInstanceOf(TransientError);
        expect(bot.requests.length - before.requests).toBe(1);
        expect(bot.conversations.length - before.cards).toBe(1);

        // A reply that gets no answer is still tried again: sent twice it is only noise.
        const ref: CardRef = {
            channel: 'bot',
            ...(await bounded.postCard(card('pending'), 'A PEC waits')),
            postedAt: '',
        };
        bot.faults.add({ kind: 'hang', afterProcessing: false, dropAfterMs: 120_000 }, { times: 1, method: 'POST' });
        await bounded.reply(ref, 'Approved');
        expect(bot.replies(ref.activityId!)).toHaveLength(1);
    });

    it('refuses to update or reply to a card the bot did not post', async () => {
        const webhookRef: CardRef = { channel: 'webhook', postedAt: new Date().toISOString() };
        await expect(channel.updateCard(webhookRef, card('x'))).rejects.toBeInstanceOf(PermanentError);
        await expect(channel.reply(webhookRef, 'x')).rejects.toBeInstanceOf(PermanentError);
    });
});

import { GraphChannelCards, type ChannelMessagesSource } from '../../src/teams/channelCards';
import { renderDuplicateNote } from '../../src/teams/duplicateNote';

const groupId = '7e4a0c1d-2b3f-4c5d-8e9f-0a1b2c3d4e5f';
const channelId = '19:channel@thread.tacv2';
const botAppId = '00000000-0000-0000-0000-00000000b07a';
const serviceUrl = 'https://smba.trafficmanager.net/teams/';

interface Message {
    id: string;
    createdDateTime: string;
    lastModifiedDateTime?: string;
    from: { application: { id: string } | null };
    attachments: { contentType: string; content: string }[];
}

function message(id: number, at: Date, requestId: string, options: { from?: string; card?: unknown } = {}): Message {
    const card = options.card ?? {
        type: 'AdaptiveCard',
        body: [{ type: 'TextBlock', text: `Request ${requestId}` }],
        actions: [{ type: 'Action.Execute', verb: 'approve', data: { requestId } }],
    };
    return {
        id: String(id),
        createdDateTime: at.toISOString(),
        from: { application: { id: options.from ?? botAppId } },
        attachments: [{ contentType: 'application/vnd.microsoft.card.adaptive', content: JSON.stringify(card) }],
    };
}

/** Graph's listing as the finder sees it: newest first, 50 a page, `nextLink` while more remain. */
function source(messages: Message[]): ChannelMessagesSource & { pages: number } {
    const sorted = [...messages].sort((a, b) => b.createdDateTime.localeCompare(a.createdDateTime));
    const result = {
        pages: 0,
        async channelMessagesPage(_team: string, _channel: string, nextLink?: string) {
            result.pages += 1;
            const offset = nextLink ? Number(nextLink) : 0;
            const page = sorted.slice(offset, offset + 50);
            return {
                messages: page,
                ...(offset + 50 < sorted.length ? { nextLink: String(offset + 50) } : {}),
            };
        },
    };
    return result;
}

describe('GraphChannelCards', () => {
    const now = new Date('2026-12-04T12:00:00Z');
    const finder = (s: ChannelMessagesSource, maxPages?: number) =>
        new GraphChannelCards(s, { groupId, channelId, botAppId, serviceUrl, ...(maxPages ? { maxPages } : {}) });

    it('finds a lost card below a burst of newer cards, past the first pages', async () => {
        // 300 other cards came after the lost post: six pages of 50.
        const burst = Array.from({ length: 300 }, (_, i) =>
            message(2000 + i, new Date(now.getTime() + 1000 + i), `other${i}`),
        );
        const s = source([message(1000, new Date(now.getTime() + 500), 'mine'), ...burst]);
        const found = await finder(s).findCards('mine', now);
        expect(found).toEqual([{ serviceUrl, conversationId: `${channelId};messageid=1000`, activityId: '1000' }]);
        expect(s.pages).toBe(7);
    });

    it('says it cannot tell, instead of "no card", when more messages came since than it reads', async () => {
        const burst = Array.from({ length: 120 }, (_, i) =>
            message(2000 + i, new Date(now.getTime() + 1000 + i), `other${i}`),
        );
        const s = source([message(1000, new Date(now.getTime() + 500), 'mine'), ...burst]);
        await expect(finder(s, 2).findCards('mine', now)).rejects.toThrow(/cannot tell whether the card is among them/);
    });

    it('stops at the first message older than the post (with the skew allowed), and answers none', async () => {
        const old = Array.from({ length: 200 }, (_, i) =>
            message(i, new Date(now.getTime() - 3_600_000 - i), `old${i}`),
        );
        const s = source([...old, message(5000, new Date(now.getTime() + 10), 'someone-else')]);
        await expect(finder(s).findCards('mine', now)).resolves.toEqual([]);
        expect(s.pages).toBe(1);
    });

    it('reads past old threads changed recently (the listing may be ordered by last change)', async () => {
        // 60 old cards, each updated (decided) after the lost post: listed first when the order is by last change.
        const updated = Array.from({ length: 60 }, (_, i) => ({
            ...message(i, new Date(now.getTime() - 86_400_000 - i), `old${i}`),
            lastModifiedDateTime: new Date(now.getTime() + 5000 + i).toISOString(),
        }));
        const lost = { ...message(1000, new Date(now.getTime() + 500), 'mine') };
        lost.lastModifiedDateTime = lost.createdDateTime;
        const byChange = [...updated, lost].sort((a, b) =>
            (b.lastModifiedDateTime ?? '').localeCompare(a.lastModifiedDateTime ?? ''),
        );
        const s = {
            pages: 0,
            async channelMessagesPage(_t: string, _c: string, nextLink?: string) {
                s.pages += 1;
                const offset = nextLink ? Number(nextLink) : 0;
                return {
                    messages: byChange.slice(offset, offset + 50),
                    ...(offset + 50 < byChange.length ? { nextLink: String(offset + 50) } : {}),
                };
            },
        };
        const found = await finder(s).findCards('mine', now);
        expect(found.map((f) => f.activityId)).toEqual(['1000']);
        expect(s.pages).toBe(2);
    });

    it('gives every card of the request, oldest first, and never a look-alike or a note', async () => {
        const s = source([
            message(1001, new Date(now.getTime() + 100), 'mine'),
            message(1002, new Date(now.getTime() + 200), 'mine'),
            // Someone else's message naming the request (a pasted card).
            message(1003, new Date(now.getTime() + 300), 'mine', { from: 'ffffffff-0000-0000-0000-000000000000' }),
            // A second card already turned into a note.
            message(1004, new Date(now.getTime() + 400), 'mine', {
                card: renderDuplicateNote({ requestId: 'mine', pecName: 'pe-1', originalPostedAt: 'x' }),
            }),
        ]);
        const found = await finder(s).findCards('mine', now);
        expect(found.map((f) => f.activityId)).toEqual(['1001', '1002']);
    });
});

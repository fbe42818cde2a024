import type { ApprovalRequest } from '../../src/domain/request';
import { isOwnCardMessage } from '../../src/workflow/decide';
import { activityEnvelopeSchema, cardActionSchema } from '../../src/workflow/teamsInvoke';
import capture from './fixtures/teams-invoke-adaptive-card-action.json';

/**
 * The Teams side of a click, held against an `adaptiveCard/action` invoke captured from Teams and published in
 * Microsoft's own Teams SDK tests, rather than against the activities our Bot Connector emulator builds. Real invokes
 * carry a regional, tenant-scoped serviceUrl, `entities`, `trigger`, `localTimestamp` and legacy channel data.
 */

function clone<T>(value: T): T {
    return JSON.parse(JSON.stringify(value)) as T;
}

const requestId = 'r-6f0d2c8e4b1a4f3c9e7d5b2a1c0e8f6d';

/** The published invoke, clicked on one of our cards: only `value.action` is ours, everything around it is Teams'. */
function ourClick() {
    const activity = clone(capture.activity);
    return {
        ...activity,
        conversation: clone(capture.channelConversation),
        replyToId: '1759881511856',
        value: {
            ...activity.value,
            action: {
                type: 'Action.Execute',
                title: 'Approve',
                verb: 'approve',
                data: { requestId, responseText: 'ok for the reporting job' },
            },
        },
    };
}

describe('an adaptiveCard/action invoke as Teams sends it (microsoft/teams.net test capture)', () => {
    it('passes the envelope check exactly as published', () => {
        const parsed = activityEnvelopeSchema.safeParse(clone(capture.activity));
        expect(parsed.success).toBe(true);
    });

    it("refuses the published click itself: it is not one of our cards' actions (no verb, no request id)", () => {
        expect(cardActionSchema.safeParse(clone(capture.activity)).success).toBe(false);
    });

    it('reads our click from where Teams puts it, leaving the fields Teams adds alone', () => {
        const parsed = cardActionSchema.safeParse(ourClick());
        if (!parsed.success) {
            throw new Error(parsed.error.message);
        }
        const click = parsed.data;
        expect(click.serviceUrl).toBe('https://smba.trafficmanager.net/amer/56653e9d-2158-46ee-90d7-675c39642038/');
        expect(click.from.aadObjectId).toBe('c5e99701-2a32-49c1-a660-4629ceeb8c61');
        expect(click.channelData.tenant.id).toBe('56653e9d-2158-46ee-90d7-675c39642038');
        expect(click.value.action.verb).toBe('approve');
        expect(click.value.action.data).toEqual({ requestId, responseText: 'ok for the reporting job' });
    });

    it("matches a click to the card by the channel thread's conversation id (with ;messageid=) and the card's activity", () => {
        const card = {
            channel: 'bot' as const,
            serviceUrl: 'https://smba.trafficmanager.net/amer/56653e9d-2158-46ee-90d7-675c39642038/',
            conversationId: capture.channelConversation.id,
            activityId: '1759881511856',
            postedAt: '2026-12-04T10:00:00.000Z',
        };
        // Only the card reference matters to this check; the rest of the request is not read.
        const request = { card } as ApprovalRequest;
        const click = ourClick();
        expect(isOwnCardMessage(request, { conversationId: click.conversation.id, replyToId: click.replyToId })).toBe(
            true,
        );
        // The channel itself, without the thread, or another message in the thread, is not the card.
        expect(
            isOwnCardMessage(request, {
                conversationId: '19:6848757105754c8981c67612732d9aa7@thread.tacv2',
                replyToId: click.replyToId,
            }),
        ).toBe(false);
        expect(isOwnCardMessage(request, { conversationId: click.conversation.id, replyToId: '1759881599999' })).toBe(
            false,
        );
    });
});

import type { CardRef } from '../domain/request';

/**
 * Finding a card the bot posted when the post's answer was lost. Posting a card through the Bot Connector is not
 * idempotent: when the answer of `POST /v3/conversations` never arrives, the card may be in the channel or not, and
 * posting again may leave two. The card carries its request's id in its buttons' data, so reading the channel's
 * recent root messages (Microsoft Graph) tells which it is; a card found there is adopted instead of posting again.
 */

/** Where a found card lives, as the Bot Connector addresses it. */
export type FoundCard = Required<Pick<CardRef, 'serviceUrl' | 'conversationId' | 'activityId'>>;

export interface ChannelCardFinder {
    /**
     * The bot's own card for this request in the channel, posted at or after `since`; undefined when there is none.
     * Throws when the channel cannot be read (no permission, Graph down): then nobody knows.
     */
    findCard(requestId: string, since: Date): Promise<FoundCard | undefined>;
}

/** The Graph call the finder needs: one page of a channel's root messages, newest first. */
export interface ChannelMessagesSource {
    channelMessagesPage(
        teamId: string,
        channelId: string,
        nextLink?: string,
    ): Promise<{ messages: unknown[]; nextLink?: string }>;
}

export interface GraphChannelCardsOptions {
    teamId: string;
    channelId: string;
    /** The bot's app id: only messages the bot itself sent count (anyone can paste text that looks like a card). */
    botAppId: string;
    /** The Bot Connector service URL the bot posts through (the card is updated through it). */
    serviceUrl: string;
    /** Pages read at most (50 messages each); a lost post is seconds old, so the first page nearly always holds it. */
    maxPages?: number;
    /** Clock skew allowed between our clock and Teams' `createdDateTime`. */
    skewMs?: number;
}

interface ChatMessage {
    id?: unknown;
    createdDateTime?: unknown;
    from?: { application?: { id?: unknown } | null } | null;
    attachments?: { contentType?: unknown; content?: unknown }[] | null;
}

export class GraphChannelCards implements ChannelCardFinder {
    constructor(
        private readonly graph: ChannelMessagesSource,
        private readonly options: GraphChannelCardsOptions,
    ) {}

    async findCard(requestId: string, since: Date): Promise<FoundCard | undefined> {
        const { teamId, channelId, botAppId } = this.options;
        const cutoff = since.getTime() - (this.options.skewMs ?? 5 * 60_000);
        let nextLink: string | undefined;
        for (let page = 0; page < (this.options.maxPages ?? 4); page++) {
            const answer = await this.graph.channelMessagesPage(teamId, channelId, nextLink);
            let older = false;
            for (const raw of answer.messages as ChatMessage[]) {
                const created = typeof raw.createdDateTime === 'string' ? Date.parse(raw.createdDateTime) : NaN;
                if (Number.isFinite(created) && created < cutoff) {
                    older = true;
                    continue;
                }
                if (typeof raw.id !== 'string' || !isFrom(raw, botAppId) || !carriesRequest(raw, requestId)) {
                    continue;
                }
                // A new thread's Bot Connector conversation is the channel with the root message's id; the root
                // message's id is the activity id the post would have answered.
                return {
                    serviceUrl: this.options.serviceUrl,
                    conversationId: `${channelId};messageid=${raw.id}`,
                    activityId: raw.id,
                };
            }
            nextLink = answer.nextLink;
            if (older || !nextLink) {
                return undefined;
            }
        }
        return undefined;
    }
}

function isFrom(message: ChatMessage, botAppId: string): boolean {
    const id = message.from?.application?.id;
    return typeof id === 'string' && id.toLowerCase() === botAppId.toLowerCase();
}

/** Whether one of the message's Adaptive Cards has an action whose data names this request. */
function carriesRequest(message: ChatMessage, requestId: string): boolean {
    for (const attachment of message.attachments ?? []) {
        if (attachment.contentType !== 'application/vnd.microsoft.card.adaptive') {
            continue;
        }
        // Graph gives the card as a JSON string.
        let card: unknown = attachment.content;
        if (typeof card === 'string') {
            try {
                card = JSON.parse(card);
            } catch {
                continue;
            }
        }
        if (namesRequest(card, requestId, 0)) {
            return true;
        }
    }
    return false;
}

function namesRequest(node: unknown, requestId: string, depth: number): boolean {
    if (depth > 32 || typeof node !== 'object' || node === null) {
        return false;
    }
    if (Array.isArray(node)) {
        return node.some((item) => namesRequest(item, requestId, depth + 1));
    }
    const record = node as Record<string, unknown>;
    const data = record.data as { requestId?: unknown } | undefined;
    if (typeof record.type === 'string' && record.type.startsWith('Action.') && data?.requestId === requestId) {
        return true;
    }
    // Every card also shows "Request {id}" (a card without buttons, for a request a policy decided, has only that).
    if (typeof record.text === 'string' && record.text.includes(requestId)) {
        return true;
    }
    return Object.values(record).some((value) => namesRequest(value, requestId, depth + 1));
}

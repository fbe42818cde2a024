import { TransientError } from '../domain/errors';
import type { CardRef } from '../domain/request';
import { DUPLICATE_NOTE_ID } from './duplicateNote';

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
     * The bot's own cards for this request in the channel, posted at or after `since` (allowing for clock skew),
     * oldest first; empty when there is none. Throws when that cannot be told: the channel cannot be read (no
     * permission, Graph down), or more messages came since than the finder reads.
     */
    findCards(requestId: string, since: Date): Promise<FoundCard[]>;
}

/** The Graph call the finder needs: one page of a channel's root messages, newest first. */
export interface ChannelMessagesSource {
    channelMessagesPage(
        groupId: string,
        channelId: string,
        nextLink?: string,
    ): Promise<{ messages: unknown[]; nextLink?: string }>;
}

export interface GraphChannelCardsOptions {
    /** The team's Microsoft 365 group id (a GUID): Graph's `{team-id}`, not the Bot Connector's thread id. */
    groupId: string;
    channelId: string;
    /** The bot's app id: only messages the bot itself sent count (anyone can paste text that looks like a card). */
    botAppId: string;
    /** The Bot Connector service URL the bot posts through (the card is updated through it). */
    serviceUrl: string;
    /**
     * Pages read at most (50 messages each). A lost post is seconds old, so the first page nearly always reaches past
     * it; a burst of cards (a baseline, many new endpoints at once) can push it further down.
     */
    maxPages?: number;
    /** Clock skew allowed between our clock and Teams' `createdDateTime`. */
    skewMs?: number;
}

interface ChatMessage {
    id?: unknown;
    createdDateTime?: unknown;
    lastModifiedDateTime?: unknown;
    from?: { application?: { id?: unknown } | null } | null;
    attachments?: { contentType?: unknown; content?: unknown }[] | null;
}

export class GraphChannelCards implements ChannelCardFinder {
    constructor(
        private readonly graph: ChannelMessagesSource,
        private readonly options: GraphChannelCardsOptions,
    ) {}

    async findCards(requestId: string, since: Date): Promise<FoundCard[]> {
        const { groupId, channelId, botAppId } = this.options;
        const cutoff = since.getTime() - (this.options.skewMs ?? 5 * 60_000);
        const maxPages = this.options.maxPages ?? 20;
        const found: FoundCard[] = [];
        let nextLink: string | undefined;
        for (let page = 0; page < maxPages; page++) {
            const answer = await this.graph.channelMessagesPage(groupId, channelId, nextLink);
            let older = false;
            for (const raw of answer.messages as ChatMessage[]) {
                const created = timeOf(raw.createdDateTime);
                // Graph does not document the listing's order: newest first by creation or by last change (our own
                // card updates change old threads). A message last changed before the cutoff was created before it
                // too, and under either order everything after it is older still, so the reading stops there.
                if (timeOf(raw.lastModifiedDateTime) < cutoff || (!raw.lastModifiedDateTime && created < cutoff)) {
                    older = true;
                }
                if (created < cutoff) {
                    continue;
                }
                if (typeof raw.id !== 'string' || !isFrom(raw, botAppId) || !carriesRequest(raw, requestId)) {
                    continue;
                }
                // A new thread's Bot Connector conversation is the channel with the root message's id; the root
                // message's id is the activity id the post would have answered.
                found.push({
                    serviceUrl: this.options.serviceUrl,
                    conversationId: `${channelId};messageid=${raw.id}`,
                    activityId: raw.id,
                });
            }
            nextLink = answer.nextLink;
            if (older || !nextLink) {
                // Newest first in the listing; the oldest card is the one that was posted first.
                return found.reverse();
            }
        }
        // Stopping here would answer "no card" for a card that may be on the next page: say it cannot be told.
        throw new TransientError(
            `more than ${maxPages * 50} messages in the channel since ${new Date(cutoff).toISOString()}: ` +
                'cannot tell whether the card is among them',
        );
    }
}

/** A Graph timestamp in ms; one that is absent or unreadable counts as new, so it never ends the reading early. */
function timeOf(value: unknown): number {
    const t = typeof value === 'string' ? Date.parse(value) : NaN;
    return Number.isFinite(t) ? t : Number.POSITIVE_INFINITY;
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
        // A card already turned into a duplicate note is no longer a card of the request.
        if (!isDuplicateNote(card) && namesRequest(card, requestId, 0)) {
            return true;
        }
    }
    return false;
}

function isDuplicateNote(card: unknown): boolean {
    const body = (card as { body?: unknown } | null)?.body;
    return Array.isArray(body) && body.some((e) => (e as { id?: unknown } | null)?.id === DUPLICATE_NOTE_ID);
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

import type { CardRef } from '../domain/request';
import type { AdaptiveCardJson } from './adaptiveCard';

export type { AdaptiveCardJson };

/** Where approval cards go. One real adapter (Bot Connector, with the Workflows webhook as fallback) and a double. */
export interface TeamsChannel {
    /** Posts a new card as a new thread in the channel; returns where it landed. */
    postCard(card: AdaptiveCardJson, summary: string): Promise<Omit<CardRef, 'postedAt' | 'channel'>>;
    /** Replaces a posted card for everyone. */
    updateCard(ref: CardRef, card: AdaptiveCardJson): Promise<void>;
    /** Adds a text reply in the card's thread. */
    reply(ref: CardRef, text: string): Promise<void>;
    /** Adds a reply in the card's thread that carries an Adaptive Card (reminders with @mentions). */
    replyCard(ref: CardRef, card: AdaptiveCardJson, summary: string): Promise<void>;
}

/** The fallback delivery: a Teams Workflows incoming webhook. Clicks never come back, so its cards only link out. */
export interface WebhookChannel {
    postCard(card: AdaptiveCardJson): Promise<void>;
}

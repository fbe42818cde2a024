import type { AdaptiveCardJson } from './adaptiveCard';

/**
 * What a second card of one request becomes. Posting through the Bot Connector is not idempotent: when a post's answer
 * is lost and the channel cannot tell whether it landed, the gate posts again rather than leave approvers without a
 * card, and a card that turns up later beside the recorded one is replaced by this note. The note has no buttons, so
 * only one card per request can take a decision; it says which one.
 */

/** The `id` of the note's text, by which tests and operators can tell a note from a card. */
export const DUPLICATE_NOTE_ID = 'duplicate-note';

export function renderDuplicateNote(input: {
    requestId: string;
    /** The connection's name, as the card shows it. */
    pecName: string;
    /** When the card that stays was posted (UTC, as the cards show times). */
    originalPostedAt: string;
}): AdaptiveCardJson {
    return {
        type: 'AdaptiveCard',
        $schema: 'http://adaptivecards.io/schemas/adaptive-card.json',
        version: '1.5',
        body: [
            {
                type: 'TextBlock',
                id: DUPLICATE_NOTE_ID,
                text: 'Duplicate card',
                weight: 'Bolder',
                wrap: true,
            },
            {
                type: 'RichTextBlock',
                inlines: [
                    {
                        type: 'TextRun',
                        // TextRuns are never run through markdown: the connection's name reaches the reader literally.
                        text:
                            `This is a second copy of the card for ${input.pecName} (request ${input.requestId}). ` +
                            `Decide on the card posted at ${input.originalPostedAt}.`,
                    },
                ],
            },
        ],
        actions: [],
        msteams: { width: 'Full' },
        fallbackText: `Duplicate card for request ${input.requestId}`,
    };
}

import { cleanText, stripInvisible } from '../domain/card';
import { escapeMarkdown, type AdaptiveCardJson, type CardElementJson } from './adaptiveCard';

/**
 * The reminder posted as a reply under a request card that still waits, @mentioning the approvers so Teams notifies
 * them. Pure rendering: who to mention and when to remind is the workflow's business.
 *
 * Teams resolves a mention only in a TextBlock (or a FactSet), by finding each entity's `text` verbatim in it, so the
 * names must sit in markdown-processed text. They come from the directory, so they are escaped with `escapeMarkdown`,
 * and the escaped form is what goes between the `<at>` tags in both places. Everything else untrusted (the note, which
 * may name people) goes into a TextRun, as in adaptiveCard.ts.
 */

export interface ReminderMention {
    /** The Entra object id (Teams accepts an object id or a UPN for mentions in Adaptive Cards). */
    id: string;
    name: string;
}

export interface ReminderInput {
    /** E.g. the request card's title. */
    title: string;
    /** Already formatted, e.g. '2026-11-20 10:00 UTC'. */
    waitingSince: string;
    /** 1-based. */
    reminderNumber: number;
    maxReminders: number;
    mentions: ReminderMention[];
    /** E.g. 'Needs 2 approvals; 1 so far (Alice).' */
    note?: string;
}

export interface MentionEntity {
    type: 'mention';
    /** `<at>NAME</at>`, exactly as it appears in the card's text. */
    text: string;
    mentioned: { id: string; name: string };
}

/** A reminder card: an Adaptive Card whose `msteams` also carries the mention entities. */
export type ReminderCardJson = AdaptiveCardJson & { msteams: { width: 'Full'; entities: MentionEntity[] } };

/** At most this many people are mentioned; the rest are counted. A wall of mentions is noise, and the card grows. */
export const MAX_REMINDER_MENTIONS = 20;

const SCHEMA_URL = 'http://adaptivecards.io/schemas/adaptive-card.json';
const SUMMARY_MAX_LENGTH = 250;
// Entra allows 256 characters; a mention that long would crowd out the reminder itself.
const NAME_MAX_LENGTH = 64;
const TITLE_MAX_LENGTH = 200;
const NOTE_MAX_LENGTH = 500;
const SINCE_MAX_LENGTH = 100;

export function renderReminderCard(input: ReminderInput): ReminderCardJson {
    const { shown, hidden } = pickMentions(input.mentions);
    const entities: MentionEntity[] = shown.map((m) => ({
        type: 'mention',
        text: `<at>${escapeMarkdown(m.name)}</at>`,
        mentioned: { id: m.id, name: m.name },
    }));
    const names = entities.map((e) => e.text);
    // No one to mention (an empty group, the directory unreachable): the words still tell a reader who is meant.
    const who = names.length === 0 ? 'Approvers' : listInWords(names, hidden);
    const since = escapeMarkdown(cleanText(input.waitingSince, SINCE_MAX_LENGTH));

    const body: CardElementJson[] = [
        {
            type: 'TextBlock',
            text: escapeMarkdown(`${reminderLabel(input)}: ${cleanText(input.title, TITLE_MAX_LENGTH)}`),
            size: 'Medium',
            weight: 'Bolder',
            wrap: true,
        },
        {
            type: 'TextBlock',
            text: `${who}: this request has been waiting for a decision since ${since}.`,
            wrap: true,
        },
    ];
    const note = cleanText(input.note, NOTE_MAX_LENGTH);
    if (note) {
        body.push(textRuns(note));
    }
    if (isLast(input)) {
        body.push({ ...textRuns('This is the last reminder.', { subtle: true }), spacing: 'Small' });
    }

    return {
        type: 'AdaptiveCard',
        $schema: SCHEMA_URL,
        version: '1.5',
        body,
        actions: [],
        msteams: { width: 'Full', entities },
        fallbackText: reminderSummary(input),
    };
}

/** One line of plain text for the notification and previews. Not escaped: do not put it where markdown is processed. */
export function reminderSummary(input: ReminderInput): string {
    return cleanText(
        `${reminderLabel(input)}: ${cleanText(input.title, TITLE_MAX_LENGTH)} has been waiting for a decision since ` +
            cleanText(input.waitingSince, SINCE_MAX_LENGTH),
        SUMMARY_MAX_LENGTH,
    );
}

/** Distinct people (by object id, case-insensitively, as Entra compares them), the first 20 shown, the rest counted. */
function pickMentions(mentions: readonly ReminderMention[]): { shown: ReminderMention[]; hidden: number } {
    const seen = new Set<string>();
    const distinct: ReminderMention[] = [];
    for (const mention of mentions) {
        const id = mention.id.trim();
        if (id === '' || seen.has(id.toLowerCase())) {
            continue;
        }
        seen.add(id.toLowerCase());
        // A mention needs some text between the tags; the id is a poor name but still reaches the person.
        const name = cleanText(mention.name, NAME_MAX_LENGTH) || cleanText(id, NAME_MAX_LENGTH);
        distinct.push({ id, name });
    }
    return {
        shown: distinct.slice(0, MAX_REMINDER_MENTIONS),
        hidden: Math.max(0, distinct.length - MAX_REMINDER_MENTIONS),
    };
}

/** "A", "A and B", "A, B and C", "A, B and 3 more". */
function listInWords(items: string[], more: number): string {
    const parts = more > 0 ? [...items, `${more} more`] : items;
    if (parts.length <= 1) {
        return parts.join('');
    }
    return `${parts.slice(0, -1).join(', ')} and ${parts[parts.length - 1]}`;
}

function reminderLabel(input: ReminderInput): string {
    const known = Number.isSafeInteger(input.maxReminders) && input.maxReminders >= input.reminderNumber;
    return `Reminder ${input.reminderNumber}${known ? ` of ${input.maxReminders}` : ''}`;
}

function isLast(input: ReminderInput): boolean {
    return Number.isSafeInteger(input.maxReminders) && input.reminderNumber === input.maxReminders;
}

/**
 * Text shown literally: a TextRun gets no markdown, only the date/time functions, whose `{{` a word joiner breaks
 * without changing what the reader sees (as adaptiveCard.ts does for its TextRuns).
 */
function textRuns(text: string, options: { subtle?: boolean } = {}): CardElementJson {
    const run: CardElementJson = { type: 'TextRun', text: stripInvisible(text).replace(/\{\{/g, '{\u2060{') };
    if (options.subtle) {
        run.isSubtle = true;
    }
    return { type: 'RichTextBlock', inlines: [run] };
}

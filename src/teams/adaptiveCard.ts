import type { CardAction, CardFact, CardTone, CardView } from '../domain/card';
import { cleanText, RESPONSE_TEXT_MAX_LENGTH, stripInvisible } from '../domain/card';

/**
 * Renders the card view as an Adaptive Card (schema 1.5, the highest Teams supports).
 *
 * Untrusted text must reach the reader literally. Teams runs markdown over TextBlock text and FactSet titles/values,
 * and never over a RichTextBlock's TextRuns. So:
 * - free text, every fact (label and value) and the status line with the approver's text go into TextRuns, unescaped;
 * - the few TextBlocks left (title, headings, the risk list) go through `escapeMarkdown`.
 * Escaping is not the primary defence because Teams mobile clients have been seen to show the backslashes: an escaped
 * id would look different from the real one on a phone.
 */

export { RESPONSE_TEXT_MAX_LENGTH };

export const ADAPTIVE_CARD_CONTENT_TYPE = 'application/vnd.microsoft.card.adaptive';
const SCHEMA_URL = 'http://adaptivecards.io/schemas/adaptive-card.json';
const SUMMARY_MAX_LENGTH = 250;

export type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue };
export type CardElementJson = { type: string; [key: string]: JsonValue };

// A type alias, not an interface, so a card passes wherever plain JSON (`Record<string, unknown>`) is expected.
export type AdaptiveCardJson = {
    type: 'AdaptiveCard';
    $schema: string;
    version: '1.5';
    body: CardElementJson[];
    actions: CardElementJson[];
    msteams: { width: 'Full' };
    fallbackText?: string;
    refresh?: { action: CardElementJson; userIds?: string[] };
};

export interface CardAttachment {
    contentType: typeof ADAPTIVE_CARD_CONTENT_TYPE;
    content: AdaptiveCardJson;
}

/**
 * The id of the shared card's line on who may decide: present only while the request can be decided, so it also tells
 * a reader of the channel (tests, operators) that the card is still open for decisions.
 */
export const SHARED_NOTE_ID = 'decide-note';

/** The id of the container a compact card keeps its details in, and of the toggle that shows them. */
export const DETAILS_ID = 'details';

/**
 * The card is compact: what decides the click comes first, in about one screen at Teams' width (title, status, risks,
 * where the endpoint comes from and who asked, the request message, the response box, the buttons); the full facts
 * (server, connection, requester) and the request id sit in a container that a "Details" toggle shows
 * (`Action.ToggleVisibility`, a client-side action: nothing reaches the bot). Every card state has the same shape.
 */
export function renderAdaptiveCard(view: CardView): AdaptiveCardJson {
    const body: CardElementJson[] = [
        { type: 'TextBlock', text: escapeMarkdown(view.title), size: 'Medium', weight: 'Bolder', wrap: true },
        runs([{ text: view.statusLine.text, tone: view.statusLine.tone, bold: true }]),
    ];
    if (view.note) {
        body.push({ ...runs([{ text: view.note, subtle: true }]), id: SHARED_NOTE_ID });
    }
    if (view.error) {
        body.push(runs([{ text: view.error, tone: 'attention', bold: true }]));
    }
    body.push(warningsContainer(view.warnings));
    body.push({ type: 'Container', spacing: 'Small', items: factElements(view.keyFacts) });
    body.push(heading('Request message'));
    body.push(
        view.message
            ? runs([{ text: view.message, multiline: true }])
            : runs([{ text: '(no message)', subtle: true, italic: true }]),
    );
    if (view.responseInput) {
        const input = view.responseInput;
        const field: CardElementJson = {
            type: 'Input.Text',
            id: 'responseText',
            label: input.label,
            placeholder: input.placeholder,
            isMultiline: true,
            maxLength: Math.min(input.maxLength, RESPONSE_TEXT_MAX_LENGTH),
            spacing: 'Medium',
        };
        if (input.value) {
            // Inputs are not formatted, and whatever is here is submitted back: no word joiners, just the text.
            field.value = input.value.slice(0, RESPONSE_TEXT_MAX_LENGTH);
        }
        body.push(field);
    }
    const details: CardElementJson[] = [];
    for (const section of view.sections) {
        details.push(heading(section.title), ...factElements(section.facts));
    }
    // The id is compared character by character (audit, `npm run pec`), so it goes in a TextRun: no markdown escapes.
    details.push({ ...runs([{ text: `Request ${view.requestId}`, subtle: true }]), spacing: 'Medium' });
    body.push(
        {
            type: 'ActionSet',
            spacing: 'Medium',
            actions: [
                {
                    type: 'Action.ToggleVisibility',
                    title: 'Details',
                    tooltip: 'Show or hide the server, connection and requester details',
                    targetElements: [DETAILS_ID],
                },
            ],
        },
        { type: 'Container', id: DETAILS_ID, isVisible: false, spacing: 'None', items: details },
    );

    const card: AdaptiveCardJson = {
        type: 'AdaptiveCard',
        $schema: SCHEMA_URL,
        version: '1.5',
        body,
        actions: view.actions.map(actionJson),
        msteams: { width: 'Full' },
        fallbackText: cardSummary(view),
    };
    if (view.refresh) {
        card.refresh = {
            action: { type: 'Action.Execute', verb: view.refresh.verb, data: { ...view.refresh.data } },
            // Teams user MRIs, at most 60. Without userIds Teams refreshes for everyone in conversations of up to 60
            // people and offers a manual refresh beyond that; an empty list refreshes nobody by itself.
            ...(view.refresh.userIds ? { userIds: [...view.refresh.userIds] } : {}),
        };
    }
    return card;
}

export function cardAttachment(card: AdaptiveCardJson): CardAttachment {
    return { contentType: ADAPTIVE_CARD_CONTENT_TYPE, content: card };
}

/** One line of plain text for notifications and previews. Not escaped: do not put it where markdown is processed. */
export function cardSummary(view: CardView): string {
    const risks = view.warnings.length;
    const riskText = risks ? ` (${risks} risk warning${risks === 1 ? '' : 's'})` : '';
    const status = view.statusLine.text;
    return cleanText(
        `${status}${riskText}: private endpoint connection ${view.connection.name} to ${view.server.name}`,
        SUMMARY_MAX_LENGTH,
    );
}

/*
 * Characters with inline meaning anywhere in a line (emphasis, links, images, code, raw HTML, entities, tables,
 * strikethrough, and the `{{DATE()}}` / `{{TIME()}}` functions). Block markers (`#`, `-`, `+`, `>`, `=`, `1.`) only mean
 * something at the start of a line, so they are escaped only there: escaping every `-` and `.` would litter GUIDs and
 * server names with backslashes on clients that display them.
 */
const inlineSpecials = /[\\`*_[\]()<>!|~{}&]/g;
const lineStartMarker = /^(\s*)([#>+=-]|\d+(?=[.)]))/;

/**
 * Escapes text for a single line of Adaptive Card markdown (TextBlock text, FactSet titles and values) so that it
 * renders as typed: control characters are stripped, CR/LF collapse to one space, inline markdown characters are
 * backslash-escaped, a leading block marker is neutralised, and `://` is broken so no URL is auto-linked.
 */
export function escapeMarkdown(text: string): string {
    const line = cleanText(text, Number.MAX_SAFE_INTEGER);
    return line
        .replace(inlineSpecials, (c) => `\\${c}`)
        .replace(/:\/\//g, '\\://')
        .replace(lineStartMarker, (_m, space: string, marker: string) =>
            /^\d/.test(marker) ? `${space}${marker}\\` : `${space}\\${marker}`,
        );
}

/**
 * Prepares text for a TextRun, which is shown as plain text: only the date/time functions are still expanded there,
 * so a word joiner breaks their `{{` without changing what the reader sees.
 */
function literal(text: string, multiline = false): string {
    return stripInvisible(text, { multiline }).replace(/\{\{/g, '{\u2060{');
}

interface Run {
    text: string;
    tone?: CardTone;
    bold?: boolean;
    subtle?: boolean;
    italic?: boolean;
    monospace?: boolean;
    multiline?: boolean;
}

function runs(parts: Run[]): CardElementJson {
    return {
        type: 'RichTextBlock',
        inlines: parts.map((part) => {
            const run: CardElementJson = { type: 'TextRun', text: literal(part.text, part.multiline) };
            if (part.tone && part.tone !== 'default') {
                run.color = capitalise(part.tone);
            }
            if (part.bold) {
                run.weight = 'Bolder';
            }
            if (part.subtle) {
                run.isSubtle = true;
            }
            if (part.italic) {
                run.italic = true;
            }
            if (part.monospace) {
                run.fontType = 'Monospace';
            }
            return run;
        }),
    };
}

function heading(title: string): CardElementJson {
    return {
        type: 'TextBlock',
        text: escapeMarkdown(title),
        weight: 'Bolder',
        wrap: true,
        separator: true,
        spacing: 'Medium',
    };
}

function warningsContainer(warnings: string[]): CardElementJson {
    if (!warnings.length) {
        return {
            type: 'Container',
            style: 'good',
            items: [
                runs([
                    {
                        text: 'No risk flags: trusted subscription, no foreign tenant, public access off, no untrusted approvals.',
                    },
                ]),
            ],
        };
    }
    return {
        type: 'Container',
        style: 'attention',
        items: [
            {
                type: 'TextBlock',
                text: escapeMarkdown('Risks to check'),
                weight: 'Bolder',
                color: 'Attention',
                wrap: true,
            },
            ...warnings.map((w) => runs([{ text: `• ${w}`, tone: 'attention' }])),
        ],
    };
}

/** Consecutive markdown-safe facts share one FactSet; each literal fact becomes its own row of TextRuns. */
/**
 * One "Label: value" line per fact, as text runs. A FactSet would look tidier, but its facts cannot carry a colour, and
 * the colour is the point on this card: "Public network access: Enabled" and "Trusted: NO" must stand out. Text runs
 * are also never read as markdown, so requester-controlled values need no escaping to show literally.
 */
function factElements(facts: CardFact[]): CardElementJson[] {
    return facts.map((fact) => {
        const value = fact.value || '\u2014';
        const tone = fact.tone && fact.tone !== 'default' ? { tone: fact.tone } : {};
        // Only the id itself is set in monospace; a note after it, such as "(another tenant)", reads as prose.
        const id = idPrefix(value);
        return runs([
            { text: `${fact.label}: `, bold: true },
            ...(id
                ? [
                      { text: id, monospace: true, ...tone },
                      ...(value.length > id.length ? [{ text: value.slice(id.length), ...tone }] : []),
                  ]
                : [{ text: value, ...tone }]),
        ]);
    });
}

function idPrefix(value: string): string | undefined {
    return /^(\/subscriptions\/\S+|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})/i.exec(value)?.[1];
}

function actionJson(action: CardAction): CardElementJson {
    if (action.type === 'openUrl') {
        return { type: 'Action.OpenUrl', title: action.title, url: action.url };
    }
    return {
        type: 'Action.Execute',
        title: action.title,
        verb: action.verb,
        data: { requestId: action.data.requestId },
        style: action.verb === 'approve' ? 'positive' : 'destructive',
    };
}

function capitalise(s: string): string {
    return s.charAt(0).toUpperCase() + s.slice(1);
}

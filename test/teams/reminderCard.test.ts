/** @jest-environment jsdom */
import type { CardElementJson } from '../../src/teams/adaptiveCard';
import {
    MAX_REMINDER_MENTIONS,
    renderReminderCard,
    reminderSummary,
    type ReminderCardJson,
    type ReminderInput,
} from '../../src/teams/reminderCard';

// The package's `main` is ES modules, which jest's CommonJS runtime cannot load; its UMD bundle is the same library.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const AC = require('adaptivecards/dist/adaptivecards.js') as typeof import('adaptivecards');

/*
 * The same reference-renderer set-up as adaptiveCard.test.ts: DOM members typed locally (the tsconfig has no DOM lib),
 * innerText mapped to textContent (jsdom lacks it), and a hostile markdown processor that honours backslash escapes,
 * turns markdown into HTML and lets raw HTML through, so anything not escaped shows up as markup.
 */
interface DomElement {
    tagName: string;
    textContent: string | null;
    querySelectorAll(selector: string): ArrayLike<DomElement>;
    appendChild(child: DomElement): void;
    remove(): void;
}
const dom = globalThis as unknown as { document: { body: DomElement }; HTMLElement: { prototype: object } };

beforeAll(() => {
    Object.defineProperty(dom.HTMLElement.prototype, 'innerText', {
        configurable: true,
        get(this: DomElement) {
            return this.textContent ?? '';
        },
        set(this: DomElement, value: string) {
            this.textContent = value;
        },
    });
});

function hostileMarkdown(text: string): string {
    const held: string[] = [];
    let s = text.replace(/\\([!-/:-@[-`{-~])/g, (_m, c: string) => {
        held.push(c);
        return `\uE000${held.length - 1}\uE001`;
    });
    s = s
        .replace(/!\[([^\]]*)\]\(([^)\s]*)\)/g, '<img alt="$1" src="$2">')
        .replace(/\[([^\]]*)\]\(([^)\s]*)\)/g, '<a href="$2">$1</a>')
        .replace(/(^|\s)(https?:\/\/[^\s<]+)/g, '$1<a href="$2">$2</a>')
        .replace(/\*\*(.+?)\*\*/g, '<strong>$1</strong>')
        .replace(/(^|[^\w])_(.+?)_(?![\w])/g, '$1<em>$2</em>')
        .replace(/(^|[^*])\*([^*]+)\*/g, '$1<em>$2</em>')
        .replace(/`([^`]+)`/g, '<code>$1</code>');
    s = s.replace(/\uE000(\d+)\uE001/g, (_m, i: string) => htmlEscape(held[Number(i)] ?? ''));
    return `<p>${s}</p>`;
}

function htmlEscape(s: string): string {
    return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

// `at` is not here: the mention tags are ours and meant to reach Teams as tags.
const markupSelector = 'a, strong, em, script, img, code';

const processed: string[] = [];

beforeEach(() => {
    processed.length = 0;
    AC.AdaptiveCard.onProcessMarkdown = (text, result) => {
        processed.push(text);
        result.outputHtml = hostileMarkdown(text);
        result.didProcess = true;
    };
});

afterEach(() => {
    AC.AdaptiveCard.onProcessMarkdown = undefined;
});

/** Parses, validates and renders with the reference renderer, failing with every message it logged. */
function parseAndRender(json: ReminderCardJson): DomElement {
    const card = new AC.AdaptiveCard();
    const context = new AC.SerializationContext();
    card.parse(JSON.parse(JSON.stringify(json)), context);
    const parseEvents: string[] = [];
    for (let i = 0; i < context.eventCount; i++) {
        parseEvents.push(context.getEventAt(i).message);
    }
    expect(parseEvents).toEqual([]);
    expect(card.validateProperties().validationEvents.map((e) => e.message)).toEqual([]);
    const rendered = card.render() as unknown as DomElement | undefined;
    expect(rendered).toBeInstanceOf(dom.HTMLElement as never);
    dom.document.body.appendChild(rendered!);
    return rendered!;
}

/** The markdown-processed text of the card: where Teams looks for the mentions. */
function textBlocks(json: ReminderCardJson): string[] {
    return json.body.filter((e) => e.type === 'TextBlock').map((e) => String(e.text));
}

function textRuns(json: ReminderCardJson): string[] {
    return json.body
        .filter((e) => e.type === 'RichTextBlock')
        .flatMap((e) => (e.inlines as CardElementJson[]).map((r) => String(r.text)));
}

const oid = (n: number) => `00000000-0000-4000-8000-${String(n).padStart(12, '0')}`;

const input = (overrides: Partial<ReminderInput> = {}): ReminderInput => ({
    title: 'Private endpoint connection to mysql-prod',
    waitingSince: '2026-11-20 10:00 UTC',
    reminderNumber: 1,
    maxReminders: 3,
    mentions: [
        { id: oid(1), name: 'Ann Smith' },
        { id: oid(2), name: 'Bob' },
    ],
    ...overrides,
});

describe('renderReminderCard', () => {
    it('mentions the approvers in a TextBlock that carries every entity text, and validates', () => {
        const json = renderReminderCard(input({ note: 'Needs 2 approvals; 1 so far (Alice).' }));
        expect(json).toMatchObject({
            type: 'AdaptiveCard',
            $schema: 'http://adaptivecards.io/schemas/adaptive-card.json',
            version: '1.5',
            actions: [],
            msteams: {
                width: 'Full',
                entities: [
                    { type: 'mention', text: '<at>Ann Smith</at>', mentioned: { id: oid(1), name: 'Ann Smith' } },
                    { type: 'mention', text: '<at>Bob</at>', mentioned: { id: oid(2), name: 'Bob' } },
                ],
            },
        });
        const blocks = textBlocks(json);
        expect(blocks[0]).toBe('Reminder 1 of 3: Private endpoint connection to mysql-prod');
        expect(blocks[1]).toBe(
            '<at>Ann Smith</at> and <at>Bob</at>: this request has been waiting for a decision since 2026-11-20 10:00 UTC.',
        );
        for (const entity of json.msteams.entities) {
            expect(blocks.join('\n')).toContain(entity.text);
        }
        expect(textRuns(json)).toEqual(['Needs 2 approvals; 1 so far (Alice).']);
        expect(json.fallbackText).toBe(reminderSummary(input()));

        const root = parseAndRender(json);
        const text = root.textContent ?? '';
        expect(text).toContain('Ann Smith and Bob: this request has been waiting');
        expect(text).toContain('Needs 2 approvals; 1 so far (Alice).');
        expect(text).not.toContain('last reminder');
        root.remove();
    });

    it('says "approvers" in words when there is no one to mention', () => {
        const json = renderReminderCard(input({ mentions: [] }));
        expect(json.msteams.entities).toEqual([]);
        expect(textBlocks(json)[1]).toMatch(/^Approvers: this request has been waiting for a decision since /);
        expect(textBlocks(json).join('\n')).not.toContain('<at>');
        parseAndRender(json).remove();
    });

    it('lists three or more as "A, B and C", and caps the mentions at 20 with "and N more"', () => {
        const three = renderReminderCard(input({ mentions: [1, 2, 3].map((n) => ({ id: oid(n), name: `P${n}` })) }));
        expect(textBlocks(three)[1]).toMatch(/^<at>P1<\/at>, <at>P2<\/at> and <at>P3<\/at>: /);

        const many = Array.from({ length: 23 }, (_, i) => ({ id: oid(i + 1), name: `Person ${i + 1}` }));
        const json = renderReminderCard(input({ mentions: many }));
        expect(MAX_REMINDER_MENTIONS).toBe(20);
        expect(json.msteams.entities).toHaveLength(20);
        expect(json.msteams.entities.map((e) => e.mentioned.id)).toEqual(many.slice(0, 20).map((m) => m.id));
        const line = textBlocks(json)[1]!;
        expect(line).toMatch(/<at>Person 20<\/at> and 3 more: this request/);
        expect(line).not.toContain('Person 21');
        expect(line.match(/<at>/g)).toHaveLength(20);
        parseAndRender(json).remove();
    });

    it('mentions each person once, comparing ids case-insensitively, and falls back to the id for a blank name', () => {
        const json = renderReminderCard(
            input({
                mentions: [
                    { id: oid(1), name: 'Ann' },
                    { id: oid(1).toUpperCase(), name: 'Ann again' },
                    { id: ` ${oid(2)} `, name: '  ' },
                    { id: '', name: 'No id' },
                ],
            }),
        );
        expect(json.msteams.entities).toEqual([
            { type: 'mention', text: '<at>Ann</at>', mentioned: { id: oid(1), name: 'Ann' } },
            { type: 'mention', text: `<at>${oid(2)}</at>`, mentioned: { id: oid(2), name: oid(2) } },
        ]);
    });

    it('neutralises markdown and HTML in names, keeping the tag text identical to the entity text', () => {
        const hostile = [
            { id: oid(1), name: '**Boss** [click](https://evil.example)' },
            { id: oid(2), name: '<script>alert(1)</script>' },
            { id: oid(3), name: 'Mal</at><at>lory' },
            { id: oid(4), name: '_under_ `code` {{DATE(2026-01-01T00:00:00Z)}}' },
            { id: oid(5), name: '# Head\nline\u202E two' },
        ];
        const json = renderReminderCard(
            input({
                mentions: hostile,
                title: 'PEC to [db](https://x.example)',
                note: '**Alice** <b>hi</b> {{TIME(x)}}',
            }),
        );
        const line = textBlocks(json)[1]!;
        for (const entity of json.msteams.entities) {
            expect(line).toContain(entity.text);
            // Exactly one opening and one closing tag per entity: a name cannot close its mention early.
            expect(entity.text.match(/<at>/g)).toHaveLength(1);
            expect(entity.text.match(/<\/at>/g)).toHaveLength(1);
            expect(entity.text.startsWith('<at>') && entity.text.endsWith('</at>')).toBe(true);
        }
        expect(line.match(/<at>/g)).toHaveLength(hostile.length);
        expect(line.match(/<\/at>/g)).toHaveLength(hostile.length);
        expect(json.msteams.entities[0]!.text).toBe(
            '<at>\\*\\*Boss\\*\\* \\[click\\]\\(https\\://evil.example\\)</at>',
        );
        // The entity's name is plain data, not markdown: cleaned but not escaped.
        expect(json.msteams.entities[4]!.mentioned.name).toBe('# Head line two');
        // The note may name people, so it is a TextRun (no markdown), with the date function broken.
        expect(textRuns(json)).toEqual(['**Alice** <b>hi</b> {\u2060{TIME(x)}}']);

        const root = parseAndRender(json);
        // The processor did run over the mention line, so the names reached it and came out as text.
        expect(processed).toContain(line);
        expect(root.querySelectorAll(markupSelector)).toHaveLength(0);
        const text = (root.textContent ?? '').replace(/\u2060/g, '');
        expect(text).toContain('**Boss** [click](https://evil.example)');
        expect(text).toContain('<script>alert(1)</script>');
        expect(text).toContain('_under_ `code` {{DATE(2026-01-01T00:00:00Z)}}');
        expect(text).toContain('PEC to [db](https://x.example)');
        expect(text).toContain('**Alice** <b>hi</b>');
        expect(text).not.toContain('\\');
        root.remove();
    });

    it('says when it is the last reminder', () => {
        const json = renderReminderCard(input({ reminderNumber: 3, maxReminders: 3 }));
        expect(textBlocks(json)[0]).toMatch(/^Reminder 3 of 3: /);
        expect(textRuns(json)).toEqual(['This is the last reminder.']);
        parseAndRender(json).remove();
    });
});

describe('reminderSummary', () => {
    it('is one plain line with the number, the title and the time', () => {
        expect(reminderSummary(input())).toBe(
            'Reminder 1 of 3: Private endpoint connection to mysql-prod has been waiting for a decision since ' +
                '2026-11-20 10:00 UTC',
        );
        const long = reminderSummary(input({ title: `a\nb **c** ${'x'.repeat(400)}` }));
        expect(long).not.toContain('\n');
        expect(long).toContain('a b **c**');
        expect(long.length).toBeLessThanOrEqual(250);
    });
});

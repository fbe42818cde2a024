/** @jest-environment jsdom */
import type { CardElementJson } from '../../src/teams/adaptiveCard';
import {
    MAX_REMINDER_MENTIONS,
    renderReminderCard,
    reminderSummary,
    type ReminderCardJson,
    type ReminderInput,
} from '../../src/teams/reminderCard';
import { parseAndRender, useReferenceRenderer, type DomElement } from './referenceRenderer';

const { processed } = useReferenceRenderer();
// `at` is not here: the mention tags are ours and meant to reach Teams as tags.
const markupSelector = 'a, strong, em, script, img, code';

/** The reference renderer's output for a reminder card. */
function render(json: ReminderCardJson): DomElement {
    return parseAndRender(JSON.parse(JSON.stringify(json)) as ReminderCardJson).root;
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

        const root = render(json);
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
        render(json).remove();
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
        render(json).remove();
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

        const root = render(json);
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
        render(json).remove();
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

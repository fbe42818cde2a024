import type { AdaptiveCardJson } from '../../src/teams/adaptiveCard';

/**
 * The Adaptive Cards reference renderer (the `adaptivecards` package) set up for card tests under jsdom, shared by every
 * test that renders a card. Test files that use it need `@jest-environment jsdom` and call `useReferenceRenderer()` at
 * their top level.
 */

// The package's `main` is ES modules, which jest's CommonJS runtime cannot load; its UMD bundle is the same library.
// eslint-disable-next-line @typescript-eslint/no-require-imports
export const AC = require('adaptivecards/dist/adaptivecards.js') as typeof import('adaptivecards');

/** The tsconfig has no DOM lib (src must not use DOM globals), so the few DOM members used here are typed locally. */
export interface DomElement {
    tagName: string;
    textContent: string | null;
    innerHTML: string;
    getAttribute(name: string): string | null;
    querySelectorAll(selector: string): ArrayLike<DomElement>;
    appendChild(child: DomElement): void;
    remove(): void;
}
const dom = globalThis as unknown as {
    document: { body: DomElement };
    HTMLElement: { prototype: object };
};

/**
 * Registers the hooks every rendering test needs, and returns the texts the markdown processor was given (reset
 * before each test):
 * - jsdom does not implement `innerText`: assigning it only sets a JS property, so every plain-text TextBlock and
 *   TextRun the library renders would be missing from the DOM. It is mapped to textContent (a browser, minus layout).
 * - every test renders through `hostileMarkdown` (without a processor the library only warns and shows raw text).
 */
export function useReferenceRenderer(): { processed: string[] } {
    const processed: string[] = [];
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
    return { processed };
}

/**
 * No markdown package is installed, so this is a small but hostile stand-in: it honours backslash escapes as
 * CommonMark does, turns emphasis, links, images, headings, lists and bare URLs into HTML, and lets raw HTML
 * through as a processor with HTML enabled would. Escaped text must come out as plain text anyway.
 */
export function hostileMarkdown(text: string): string {
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
        .replace(/~~(.+?)~~/g, '<del>$1</del>')
        .replace(/`([^`]+)`/g, '<code>$1</code>')
        .replace(/^#{1,6}\s(.*)$/gm, '<h1>$1</h1>')
        .replace(/^[-+*]\s(.*)$/gm, '<ul><li>$1</li></ul>')
        .replace(/^\d+[.)]\s(.*)$/gm, '<ol><li>$1</li></ol>');
    s = s.replace(/\uE000(\d+)\uE001/g, (_m, i: string) => htmlEscape(held[Number(i)] ?? ''));
    return `<p>${s}</p>`;
}

function htmlEscape(s: string): string {
    return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

/** Parses, validates and renders a card with the reference renderer, failing with every message it logged. */
export function parseAndRender(json: AdaptiveCardJson): {
    card: InstanceType<typeof AC.AdaptiveCard>;
    root: DomElement;
} {
    const card = new AC.AdaptiveCard();
    const context = new AC.SerializationContext();
    card.parse(json, context);
    const parseEvents: string[] = [];
    for (let i = 0; i < context.eventCount; i++) {
        parseEvents.push(context.getEventAt(i).message);
    }
    expect(parseEvents).toEqual([]);
    const validation = card.validateProperties().validationEvents.map((e) => e.message);
    expect(validation).toEqual([]);
    const rendered = card.render() as unknown as DomElement | undefined;
    expect(rendered).toBeInstanceOf(dom.HTMLElement as never);
    dom.document.body.appendChild(rendered!);
    return { card, root: rendered! };
}

import { createHash } from 'node:crypto';
import type { CardFact, CardTone, CardView } from '../domain/card';
import { cleanText, RESPONSE_TEXT_MAX_LENGTH } from '../domain/card';

/**
 * The web decision page as server-rendered HTML, from the same `CardView` the Teams card shows, so both show the same
 * facts and the same risk warnings.
 *
 * The page is reached through a link carrying a single-use token and shows text the requester controls (message, names,
 * tags, the connection's name). So:
 * - every value goes through `escapeHtml`, in text and in (always double-quoted) attributes alike;
 * - there is no script at all, and the Content-Security-Policy allows none: an escaping slip cannot become script;
 * - the one inline style block is allowed by its hash, computed here from the exact bytes we send;
 * - links leave only to https URLs, without a referrer (the page URL holds the link token).
 * No I/O here: the function handler owns the request, the tokens and the response.
 */

export interface DecisionForm {
    /** The URL the form posts to (the page's own, so `form-action 'self'` holds). */
    action: string;
    csrfToken: string;
    linkToken: string;
    /** Prefill, e.g. what the approver typed before an inline error. */
    responseText?: string;
    responseMaxLength: number;
    /** The buttons' words; a bypass alert says Keep and Revoke. Approve and Reject when absent. */
    labels?: { approve: string; reject: string };
}

export interface DecisionPageModel {
    view: CardView;
    /** Only while the viewer may decide. */
    form?: DecisionForm;
    /** E.g. an "Approving… by X" confirmation, or an inline error. */
    notice?: { tone: 'good' | 'attention'; text: string };
    signedInAs?: string;
}

const APP_NAME = 'PEC approval gate';
const SHORT_TEXT_MAX_LENGTH = 300;
const NOTICE_MAX_LENGTH = 1000;
const RESPONSE_LABEL = 'Response text (required to reject; saved as the connection description)';

const STYLE = `
:root { color-scheme: light dark; --fg: #1b1b1b; --bg: #ffffff; --muted: #5c5c5c; --line: #d0d0d0;
  --accent: #0f5bb5; --good: #0b6a0b; --good-bg: #e7f4e7; --warning: #8a5300; --attention: #b3141b;
  --attention-bg: #fdecea; }
@media (prefers-color-scheme: dark) {
  :root { --fg: #ececec; --bg: #1e1e1e; --muted: #b0b0b0; --line: #4a4a4a; --accent: #7db4ff; --good: #8fd18f;
    --good-bg: #1f3320; --warning: #ffc46b; --attention: #ff9a9f; --attention-bg: #3d1d1f; }
}
* { box-sizing: border-box; }
body { margin: 0; font: 16px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--fg);
  background: var(--bg); }
.top { display: flex; flex-wrap: wrap; justify-content: space-between; gap: 0.5rem; padding: 0.5rem 1rem;
  border-bottom: 1px solid var(--line); color: var(--muted); font-size: 0.9rem; }
main { max-width: 60rem; margin: 0 auto; padding: 1rem; }
h1 { font-size: 1.5rem; margin: 0.5rem 0; overflow-wrap: anywhere; }
h2 { font-size: 1.15rem; margin: 1.5rem 0 0.5rem; border-bottom: 1px solid var(--line); }
.status { font-weight: 600; font-size: 1.1rem; }
.box { border: 2px solid; border-radius: 6px; padding: 0.75rem 1rem; margin: 1rem 0; }
.box h2 { border: 0; margin: 0 0 0.25rem; }
.box ul { margin: 0; padding-left: 1.25rem; }
.box.attention { border-color: var(--attention); background: var(--attention-bg); }
.box.good { border-color: var(--good); background: var(--good-bg); }
.notice { font-weight: 600; }
dl { display: grid; grid-template-columns: minmax(9rem, max-content) 1fr; gap: 0.25rem 1rem; margin: 0; }
dl > div { display: contents; }
dt { font-weight: 600; }
dd { margin: 0; overflow-wrap: anywhere; }
.mono { font-family: ui-monospace, Consolas, "Courier New", monospace; font-size: 0.95em; word-break: break-all; }
.message { white-space: pre-wrap; overflow-wrap: anywhere; font: inherit; margin: 0; padding: 0.75rem;
  border: 1px solid var(--line); border-radius: 6px; }
.subtle { color: var(--muted); font-style: italic; }
.tone-accent { color: var(--accent); }
.tone-good { color: var(--good); }
.tone-warning { color: var(--warning); }
.tone-attention { color: var(--attention); }
form { margin-top: 1.5rem; }
label { display: block; font-weight: 600; margin-bottom: 0.25rem; }
.hint { color: var(--muted); font-size: 0.9rem; margin: 0 0 0.25rem; }
textarea { width: 100%; min-height: 6rem; font: inherit; padding: 0.5rem; color: var(--fg); background: var(--bg);
  border: 1px solid var(--line); border-radius: 4px; }
.buttons { display: flex; gap: 1rem; margin-top: 0.75rem; }
button { font: inherit; font-weight: 600; padding: 0.5rem 1.5rem; border-radius: 4px; border: 2px solid; cursor: pointer;
  background: var(--bg); }
button.approve { color: var(--good); border-color: var(--good); }
button.reject { color: var(--attention); border-color: var(--attention); }
:focus-visible { outline: 3px solid var(--accent); outline-offset: 2px; }
.links { padding-left: 1.25rem; }
a { color: var(--accent); }
footer { margin-top: 2rem; color: var(--muted); font-size: 0.85rem; }
`;

/**
 * The headers every server-rendered page of the app carries: one strict policy (no script at all, the page's own
 * stylesheet by its hash, no framing), so the decision page and the dashboard cannot drift apart.
 */
export function pageSecurityHeaders(
    style: string,
    referrer: 'same-origin' | 'no-referrer',
): Readonly<Record<string, string>> {
    const styleHash = `sha256-${createHash('sha256').update(style, 'utf8').digest('base64')}`;
    return Object.freeze({
        'Content-Type': 'text/html; charset=utf-8',
        'Content-Security-Policy': [
            "default-src 'none'",
            `style-src '${styleHash}'`,
            "img-src 'self' data:",
            "form-action 'self'",
            "frame-ancestors 'none'",
            "base-uri 'none'",
        ].join('; '),
        'X-Content-Type-Options': 'nosniff',
        'Referrer-Policy': referrer,
        'Cache-Control': 'no-store',
        'X-Frame-Options': 'DENY',
    });
}

/**
 * Every response of the page (the review page, refusals, errors) carries these. The page URL carries the link token:
 * no referrer may take it to another site. `same-origin`, not `no-referrer`: under no-referrer a browser sends
 * `Origin: null` even on the page's own form POST (the Fetch standard's rule for serialising Origin), and the POST is
 * refused unless its Origin is the app's (see sameOrigin.ts).
 */
export const pageHeaders = pageSecurityHeaders(STYLE, 'same-origin');

const htmlEscapes: Record<string, string> = {
    '&': '&amp;',
    '<': '&lt;',
    '>': '&gt;',
    '"': '&quot;',
    "'": '&#39;',
    // Old IE treated a backtick as an attribute quote; escaping it costs nothing.
    '`': '&#96;',
};

/** Escapes text for HTML text content and for double- or single-quoted attribute values. */
export function escapeHtml(value: string): string {
    return String(value).replace(/[&<>"'`]/g, (c) => htmlEscapes[c] ?? c);
}

export function renderDecisionPage(model: DecisionPageModel): string {
    const { view } = model;
    const body: string[] = [
        `<h1>${escapeHtml(view.title)}</h1>`,
        `<p class="status ${toneClass(view.statusLine.tone)}">${escapeHtml(view.statusLine.text)}</p>`,
    ];
    const notice = cleanText(model.notice?.text, NOTICE_MAX_LENGTH);
    if (model.notice && notice) {
        body.push(noticeBox(model.notice.tone, notice));
    }
    if (view.error) {
        body.push(noticeBox('attention', view.error));
    }
    body.push(warningsBox(view.warnings));
    for (const section of view.sections) {
        body.push(
            `<section aria-label="${escapeHtml(section.title)}">`,
            `<h2>${escapeHtml(section.title)}</h2>`,
            factList(section.facts),
            '</section>',
        );
    }
    body.push('<section aria-labelledby="message-heading">', '<h2 id="message-heading">Request message</h2>');
    // The parser drops one newline right after <pre>; the leading one here keeps a message's own first newline.
    body.push(
        view.message
            ? `<pre class="message">\n${escapeHtml(view.message)}</pre>`
            : '<p class="subtle">(no message)</p>',
    );
    body.push('</section>');
    if (model.form) {
        body.push(decisionForm(model.form));
    }
    const links = linksOf(view);
    if (links.length) {
        body.push(
            '<nav aria-labelledby="links-heading">',
            '<h2 id="links-heading">Links</h2>',
            `<ul class="links">${links.join('')}</ul>`,
            '</nav>',
        );
    }
    body.push(`<footer>Request <span class="mono">${escapeHtml(view.requestId)}</span></footer>`);
    return documentHtml(view.title, body, model.signedInAs);
}

/** Refusals and errors: same look, same headers, nothing but a title and one message. */
export function renderMessagePage(title: string, message: string): string {
    const cleanTitle = cleanText(title, SHORT_TEXT_MAX_LENGTH) || APP_NAME;
    return documentHtml(cleanTitle, [
        `<h1>${escapeHtml(cleanTitle)}</h1>`,
        `<p>${escapeHtml(cleanText(message, NOTICE_MAX_LENGTH, { multiline: true }))}</p>`,
    ]);
}

function documentHtml(title: string, body: string[], signedInAs?: string): string {
    return htmlDocument({
        title,
        body,
        style: STYLE,
        label: APP_NAME,
        signedInAs: cleanText(signedInAs, SHORT_TEXT_MAX_LENGTH),
        referrer: 'same-origin',
    });
}

/**
 * The frame both server-rendered pages share: every value escaped, the page's own stylesheet (allowed by its hash in
 * the CSP), no script. The referrer policy is the page's: the decision page keeps `same-origin` (with `no-referrer`
 * Chromium sends `Origin: null` on the page's own POST, which the same-origin check must refuse).
 */
export function htmlDocument(page: {
    title: string;
    body: string[];
    style: string;
    label: string;
    signedInAs?: string | undefined;
    referrer: 'same-origin' | 'no-referrer';
}): string {
    const header = [`<span>${escapeHtml(page.label)}</span>`];
    if (page.signedInAs) {
        header.push(`<span>Signed in as <strong>${escapeHtml(page.signedInAs)}</strong></span>`);
    }
    return [
        '<!doctype html>',
        '<html lang="en">',
        '<head>',
        '<meta charset="utf-8">',
        // No favicon request to a route that does not exist (a 404 in every console); CSP allows data: images.
        '<link rel="icon" href="data:,">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        // Also in the headers; the meta tag covers a save-as-file copy opened from disk.
        `<meta name="referrer" content="${page.referrer}">`,
        `<title>${escapeHtml(`${page.title} - ${APP_NAME}`)}</title>`,
        `<style>${page.style}</style>`,
        '</head>',
        '<body>',
        `<header class="top">${header.join('')}</header>`,
        '<main>',
        ...page.body,
        '</main>',
        '</body>',
        '</html>',
        '',
    ].join('\n');
}

function noticeBox(tone: 'good' | 'attention', text: string): string {
    // An error must be announced; a confirmation is a polite status update.
    const role = tone === 'attention' ? 'alert' : 'status';
    return `<p class="box notice ${tone} ${toneClass(tone)}" role="${role}">${escapeHtml(text)}</p>`;
}

function warningsBox(warnings: string[]): string {
    if (!warnings.length) {
        // Same wording as the Teams card: nothing was flagged, which is not the same as safe.
        return (
            '<section class="box good" aria-label="Risk check"><p>No risk flags: trusted subscription, no foreign ' +
            'tenant, public access off, no untrusted approvals.</p></section>'
        );
    }
    return [
        '<section class="box attention" aria-labelledby="risks-heading">',
        '<h2 id="risks-heading" class="tone-attention">Risks to check</h2>',
        `<ul>${warnings.map((w) => `<li><strong>${escapeHtml(w)}</strong></li>`).join('')}</ul>`,
        '</section>',
    ].join('\n');
}

function factList(facts: CardFact[]): string {
    const rows = facts.map((fact) => {
        const value = fact.value || '\u2014';
        const classes = [looksLikeId(value) ? 'mono' : '', fact.tone ? toneClass(fact.tone) : '']
            .filter(Boolean)
            .join(' ');
        const classAttr = classes ? ` class="${classes}"` : '';
        // Colour alone does not carry meaning for everyone: a flagged value is also bold.
        const text = fact.tone === 'attention' ? `<strong>${escapeHtml(value)}</strong>` : escapeHtml(value);
        return `<div><dt>${escapeHtml(fact.label)}</dt><dd${classAttr}>${text}</dd></div>`;
    });
    return `<dl>${rows.join('')}</dl>`;
}

function decisionForm(form: DecisionForm): string {
    const max = clampMaxLength(form.responseMaxLength);
    const prefill = cleanText(form.responseText, max, { multiline: true });
    return [
        `<form method="post" action="${escapeHtml(form.action)}" aria-labelledby="decide-heading">`,
        '<h2 id="decide-heading">Decision</h2>',
        `<input type="hidden" name="csrf" value="${escapeHtml(form.csrfToken)}">`,
        `<input type="hidden" name="token" value="${escapeHtml(form.linkToken)}">`,
        `<label for="responseText">${escapeHtml(RESPONSE_LABEL)}</label>`,
        `<p id="responseText-hint" class="hint">${escapeHtml(responseHint(max))}</p>`,
        // The parser drops one newline right after <textarea>; this one, so a prefill's own first newline survives.
        `<textarea id="responseText" name="responseText" maxlength="${max}" rows="4" ` +
            `aria-describedby="responseText-hint">\n${escapeHtml(prefill)}</textarea>`,
        '<div class="buttons">',
        `<button type="submit" name="verb" value="approve" class="approve">${escapeHtml(form.labels?.approve ?? 'Approve')}</button>`,
        `<button type="submit" name="verb" value="reject" class="reject">${escapeHtml(form.labels?.reject ?? 'Reject')}</button>`,
        '</div>',
        '</form>',
    ].join('\n');
}

function responseHint(max: number): string {
    // The description is visible from the private endpoint's side: say so before anyone writes internal details there.
    return `At most ${max} characters. The owner of the private endpoint can read it.`;
}

function clampMaxLength(value: number): number {
    if (!Number.isFinite(value) || value < 1) {
        return RESPONSE_TEXT_MAX_LENGTH;
    }
    return Math.min(Math.floor(value), RESPONSE_TEXT_MAX_LENGTH);
}

function linksOf(view: CardView): string[] {
    const ownPath = `/api/requests/${encodeURIComponent(view.requestId)}`;
    const links: string[] = [];
    for (const action of view.actions) {
        if (action.type !== 'openUrl') {
            continue;
        }
        const url = safeHttpsUrl(action.url);
        // The card's "Review page" / "Decide in browser" link points here: a link to the page itself only confuses.
        if (!url || url.pathname.replace(/\/+$/, '') === ownPath) {
            continue;
        }
        links.push(
            `<li><a href="${escapeHtml(url.href)}" rel="noopener noreferrer" target="_blank">` +
                `${escapeHtml(cleanText(action.title, SHORT_TEXT_MAX_LENGTH) || url.host)}</a></li>`,
        );
    }
    return links;
}

/** Only https, and no user:password@ prefix, which can make a link read as another host. */
function safeHttpsUrl(value: string): URL | undefined {
    let url: URL;
    try {
        url = new URL(value);
    } catch {
        return undefined;
    }
    if (url.protocol !== 'https:' || url.username || url.password) {
        return undefined;
    }
    return url;
}

function toneClass(tone: CardTone): string {
    return `tone-${tone}`;
}

function looksLikeId(value: string): boolean {
    return value.startsWith('/subscriptions/') || /^[0-9a-f]{8}-[0-9a-f]{4}-/i.test(value);
}

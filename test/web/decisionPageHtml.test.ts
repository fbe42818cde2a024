import { createHash } from 'node:crypto';
import { buildCardView, RESPONSE_TEXT_MAX_LENGTH } from '../../src/domain/card';
import type { CardOptions, CardView } from '../../src/domain/card';
import type { ApprovalRequest } from '../../src/domain/request';
import { escapeHtml, pageHeaders, renderDecisionPage, renderMessagePage } from '../../src/web/decisionPageHtml';
import type { DecisionForm, DecisionPageModel } from '../../src/web/decisionPageHtml';

/*
 * The tsconfig has no DOM lib (src must not use DOM globals), and importing jsdom's types would pull it in for the whole
 * program; so jsdom is required untyped and the few DOM members used here are typed locally.
 */
interface DomElement {
    tagName: string;
    textContent: string | null;
    attributes: ArrayLike<{ name: string; value: string }>;
    getAttribute(name: string): string | null;
    querySelector(selector: string): DomElement | null;
    querySelectorAll(selector: string): ArrayLike<DomElement>;
}
interface DomDocument extends DomElement {
    documentElement: DomElement;
    body: DomElement;
    doctype: { name: string } | null;
}
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { JSDOM } = require('jsdom') as { JSDOM: new (html: string) => { window: { document: DomDocument } } };

function parse(html: string): DomDocument {
    return new JSDOM(html).window.document;
}

function all(root: DomElement, selector: string): DomElement[] {
    return Array.from(root.querySelectorAll(selector));
}

const ourSub = '11111111-1111-1111-1111-111111111111';
const theirSub = '99999999-9999-9999-9999-999999999999';
const ourTenant = 'aaaaaaaa-aaaa-aaaa-aaaa-aaaaaaaaaaaa';
const theirTenant = 'bbbbbbbb-bbbb-bbbb-bbbb-bbbbbbbbbbbb';
const serverId = `/subscriptions/${ourSub}/resourceGroups/rg-data/providers/Microsoft.DBforPostgreSQL/flexibleServers/pg-prod`;
const peId = `/subscriptions/${theirSub}/resourceGroups/rg-other/providers/Microsoft.Network/privateEndpoints/pe_exfil`;

interface Texts {
    pecName: string;
    message: string;
    requesterName: string;
    upn: string;
    tagKey: string;
    tagValue: string;
}

const benign: Texts = {
    pecName: 'pe_exfil.6c1b2d3e-0000-4000-8000-000000000001',
    message: 'Please approve, reporting job',
    requesterName: 'Mallory',
    upn: 'mallory@contoso.example',
    tagKey: 'env',
    tagValue: 'prod',
};

const hostile: Texts = {
    pecName: '"><img src=x onerror=alert(1)>',
    message: [
        '<script>alert(1)</script>',
        '"><img src=x onerror=alert(1)>',
        "'><svg onload=alert(1)>",
        '[click](https://evil.example) javascript:alert(1) `code` &amp; </pre></textarea>',
    ].join('\n'),
    requesterName: '<script>alert(1)</script>',
    upn: '"><img src=x onerror=alert(1)>@evil.example',
    tagKey: '<b onmouseover=alert(1)>k</b>',
    tagValue: "' onfocus='alert(1)' autofocus='",
};

function makeRequest(texts: Texts, overrides: Partial<ApprovalRequest> = {}): ApprovalRequest {
    return {
        id: 'Req_abcdefghijklmnopqrstuv',
        pecId: `${serverId}/privateEndpointConnections/${texts.pecName}`,
        status: 'pending',
        facts: {
            serverKind: 'postgres-flexible',
            serverId,
            serverLocation: 'westeurope',
            publicNetworkAccess: 'Enabled',
            serverTags: { [texts.tagKey]: texts.tagValue },
            pecName: texts.pecName,
            privateEndpointId: peId,
            privateEndpointSubscriptionId: theirSub,
            privateEndpointTrusted: false,
            privateEndpointTenantId: ourTenant,
            originSource: 'looked-up',
            requestMessage: texts.message,
            approvedPecCount: 3,
            approvedUntrustedPecCount: 1,
        },
        requester: { name: texts.requesterName, upn: texts.upn, objectId: 'oid-1', tenantId: theirTenant },
        requesterForeignTenant: true,
        correlationId: 'corr-1',
        createdAt: '2024-05-01T10:07:33.123Z',
        updatedAt: '2024-05-01T10:07:33.123Z',
        ...overrides,
    };
}

const webOptions: CardOptions = {
    portalUrl: 'https://portal.azure.com/',
    publicBaseUrl: 'https://pec-gate.azurewebsites.net',
    ourTenantId: ourTenant,
    audience: 'approver',
    delivery: 'webhook',
};

const form: DecisionForm = {
    action: '/api/requests/Req_abcdefghijklmnopqrstuv',
    csrfToken: 'csrf-token-value',
    linkToken: 'link-token-value',
    responseMaxLength: RESPONSE_TEXT_MAX_LENGTH,
};

function view(texts: Texts = benign, overrides: Partial<ApprovalRequest> = {}): CardView {
    return buildCardView(makeRequest(texts, overrides), webOptions);
}

function tagNames(doc: DomDocument): string[] {
    return all(doc, '*').map((e) => e.tagName.toLowerCase());
}

const allowedTags = new Set([
    'html',
    'head',
    'meta',
    'link',
    'title',
    'style',
    'body',
    'header',
    'main',
    'footer',
    'nav',
    'section',
    'h1',
    'h2',
    'p',
    'span',
    'strong',
    'ul',
    'li',
    'dl',
    'div',
    'dt',
    'dd',
    'pre',
    'a',
    'form',
    'input',
    'label',
    'textarea',
    'button',
]);

const allowedAttributes = new Set([
    'lang',
    'charset',
    'name',
    'content',
    'class',
    'role',
    'id',
    'aria-label',
    'aria-labelledby',
    'aria-describedby',
    'href',
    'rel',
    'target',
    'method',
    'action',
    'type',
    'value',
    'for',
    'maxlength',
    'rows',
]);

describe('escapeHtml', () => {
    it('escapes the characters that matter in text and quoted attributes, and the backtick', () => {
        expect(escapeHtml(`<a href="x" title='y'>&\`</a>`)).toBe(
            '&lt;a href=&quot;x&quot; title=&#39;y&#39;&gt;&amp;&#96;&lt;/a&gt;',
        );
        expect(escapeHtml('plain text, 100% fine')).toBe('plain text, 100% fine');
    });
});

describe('renderDecisionPage', () => {
    it('is a full document in English with no script of any kind', () => {
        const html = renderDecisionPage({ view: view(), form });
        expect(html.startsWith('<!doctype html>')).toBe(true);
        const doc = parse(html);
        expect(doc.doctype?.name).toBe('html');
        expect(doc.documentElement.getAttribute('lang')).toBe('en');
        expect(html.toLowerCase()).not.toContain('<script');
        expect(all(doc, 'script')).toHaveLength(0);
        expect(all(doc, 'style')).toHaveLength(1);
    });

    it('shows hostile requester text, names, tags and the connection name only as text', () => {
        const model = (texts: Texts): DecisionPageModel => ({
            view: view(texts),
            form: { ...form, responseText: texts.message },
            notice: { tone: 'attention', text: texts.requesterName },
            signedInAs: texts.upn,
        });
        const html = renderDecisionPage(model(hostile));
        const doc = parse(html);

        expect(html.toLowerCase()).not.toContain('<script');
        expect(html.toLowerCase()).not.toContain('<img');
        expect(html.toLowerCase()).not.toContain('<svg');
        for (const tag of ['script', 'img', 'svg', 'iframe', 'object', 'embed', 'b']) {
            expect(all(doc, tag)).toHaveLength(0);
        }
        // Same structure as a benign page with the same shape: the hostile strings added no element.
        expect(tagNames(doc)).toEqual(tagNames(parse(renderDecisionPage(model(benign)))));
        for (const element of all(doc, '*')) {
            expect(allowedTags.has(element.tagName.toLowerCase())).toBe(true);
            for (const attribute of Array.from(element.attributes)) {
                expect(attribute.name.startsWith('on')).toBe(false);
                expect(allowedAttributes.has(attribute.name)).toBe(true);
            }
        }
        for (const a of all(doc, 'a')) {
            expect(a.getAttribute('href')).toMatch(/^https:\/\/portal\.azure\.com\//);
        }

        const text = doc.body.textContent ?? '';
        expect(text).toContain(hostile.pecName);
        expect(text).toContain(hostile.requesterName);
        expect(text).toContain(hostile.upn);
        expect(text).toContain(`Tag ${hostile.tagKey}`);
        expect(text).toContain(hostile.tagValue);
        expect(doc.querySelector('pre.message')?.textContent).toBe(hostile.message);
        expect(doc.querySelector('textarea')?.textContent).toBe(hostile.message);
        expect(doc.querySelector('header')?.textContent).toContain(`Signed in as ${hostile.upn}`);
        expect(doc.querySelector('[role="alert"]')?.textContent).toBe(hostile.requesterName);
    });

    it('keeps a leading newline of the message and of the prefill (the parser eats one after <pre> and <textarea>)', () => {
        const v = view();
        v.message = '\nline two';
        const doc = parse(renderDecisionPage({ view: v, form: { ...form, responseText: '\n\nkept' } }));
        expect(doc.querySelector('pre.message')?.textContent).toBe('\nline two');
        // cleanText trims the prefill, like the card input: nothing leading is left to lose.
        expect(doc.querySelector('textarea')?.textContent).toBe('kept');
    });

    it('carries a CSP whose style hash is the inline style block, and the other headers', () => {
        const doc = parse(renderDecisionPage({ view: view(), form }));
        const style = doc.querySelector('style')?.textContent ?? '';
        const hash = createHash('sha256').update(style, 'utf8').digest('base64');
        const csp = pageHeaders['Content-Security-Policy'] ?? '';
        expect(csp).toBe(
            `default-src 'none'; style-src 'sha256-${hash}'; img-src 'self' data:; form-action 'self'; ` +
                "frame-ancestors 'none'; base-uri 'none'",
        );
        expect(csp).not.toContain('script-src');
        expect(csp).not.toContain('unsafe-inline');
        expect(pageHeaders).toMatchObject({
            'Content-Type': 'text/html; charset=utf-8',
            'X-Content-Type-Options': 'nosniff',
            'Referrer-Policy': 'same-origin',
            'Cache-Control': 'no-store',
            'X-Frame-Options': 'DENY',
        });
        expect(Object.isFrozen(pageHeaders)).toBe(true);
    });

    it('has the decision form, with hidden tokens, the labelled response text and both buttons', () => {
        const doc = parse(
            renderDecisionPage({
                view: view(),
                form: { ...form, csrfToken: 'c"s<rf', responseText: 'ok for reporting', responseMaxLength: 300 },
            }),
        );
        const f = doc.querySelector('form');
        expect(f?.getAttribute('method')).toBe('post');
        expect(f?.getAttribute('action')).toBe(form.action);
        expect(doc.querySelector('input[type="hidden"][name="csrf"]')?.getAttribute('value')).toBe('c"s<rf');
        expect(doc.querySelector('input[type="hidden"][name="token"]')?.getAttribute('value')).toBe(form.linkToken);
        const textarea = doc.querySelector('textarea[name="responseText"]');
        expect(textarea?.getAttribute('maxlength')).toBe('300');
        expect(textarea?.textContent).toBe('ok for reporting');
        const label = doc.querySelector(`label[for="${textarea?.getAttribute('id') ?? ''}"]`);
        expect(label?.textContent).toMatch(/required to reject/);
        expect(label?.textContent).toMatch(/connection description/);
        const buttons = all(doc, 'button[type="submit"][name="verb"]').map((b) => b.getAttribute('value'));
        expect(buttons).toEqual(['approve', 'reject']);
    });

    it('caps maxlength at the response text limit', () => {
        const doc = parse(renderDecisionPage({ view: view(), form: { ...form, responseMaxLength: 100000 } }));
        expect(doc.querySelector('textarea')?.getAttribute('maxlength')).toBe(String(RESPONSE_TEXT_MAX_LENGTH));
    });

    it('has no form, tokens or buttons without `form`', () => {
        const decided = view(benign, {
            status: 'decided',
            decision: { action: 'approve', by: { name: 'Alice' }, text: 'ok', at: '2024-05-02T08:00:00Z' },
        });
        const html = renderDecisionPage({
            view: decided,
            notice: { tone: 'good', text: decided.statusLine.text },
        });
        const doc = parse(html);
        expect(all(doc, 'form')).toHaveLength(0);
        expect(all(doc, 'input')).toHaveLength(0);
        expect(all(doc, 'textarea')).toHaveLength(0);
        expect(all(doc, 'button')).toHaveLength(0);
        expect(html).not.toContain(form.csrfToken);
        expect(doc.querySelector('[role="status"]')?.textContent).toBe('Approving… by Alice');
    });

    it('shows the warnings prominently, in a labelled box', () => {
        const doc = parse(renderDecisionPage({ view: view(), form }));
        const box = doc.querySelector('section.box.attention');
        expect(box?.querySelector('h2')?.textContent).toBe('Risks to check');
        const items = all(box ?? doc, 'li').map((li) => li.textContent);
        expect(items).toEqual([
            `Private endpoint subscription ${theirSub} is not in the trusted list`,
            `Requester is from another tenant ${theirTenant}`,
            'Public network access is Enabled',
            '1 approved connection already comes from an untrusted subscription',
        ]);
        // Before the facts: the risk comes first.
        const headings = all(doc, 'h2').map((h) => h.textContent);
        expect(headings[0]).toBe('Risks to check');
    });

    it('says nothing was flagged when there are no warnings', () => {
        const v = view();
        v.warnings = [];
        const doc = parse(renderDecisionPage({ view: v }));
        expect(all(doc, 'section.box.attention')).toHaveLength(0);
        expect(doc.querySelector('section.box.good')?.textContent).toMatch(/No risk flags/);
    });

    it("renders each section's facts as a definition list", () => {
        const doc = parse(renderDecisionPage({ view: view() }));
        const sections = all(doc, 'main > section').filter((s) => s.querySelector('dl'));
        expect(sections.map((s) => s.querySelector('h2')?.textContent)).toEqual([
            'Server',
            'Private endpoint connection',
            'Requested by',
        ]);
        const connection = sections[1];
        const terms = all(connection ?? doc, 'dt').map((dt) => dt.textContent);
        expect(terms).toContain('Private endpoint');
        const peValue = all(connection ?? doc, 'dd').find((dd) => dd.textContent === peId);
        expect(peValue?.getAttribute('class')).toContain('mono');
    });

    it('renders only https links, without referrer, and not the link back to this page', () => {
        const v = view();
        v.actions = [
            // The card's own link to this page (with its link token): pointless here, and the token stays out of links.
            {
                type: 'openUrl',
                title: 'Decide in browser',
                url: `https://pec-gate.azurewebsites.net/api/requests/${v.requestId}?token=secret-link-token`,
            },
            ...v.actions.filter((a) => a.type !== 'openUrl' || a.title === 'Open in Azure portal'),
            { type: 'openUrl', title: 'Plain http', url: 'http://portal.example/x' },
            { type: 'openUrl', title: 'Script', url: 'javascript:alert(1)' },
            { type: 'openUrl', title: 'Data', url: 'data:text/html,<script>alert(1)</script>' },
            { type: 'openUrl', title: 'Credentials', url: 'https://portal.azure.com@evil.example/' },
            { type: 'openUrl', title: 'Unparseable', url: 'https://' },
            { type: 'openUrl', title: '<img src=x onerror=alert(1)>', url: 'https://docs.example/a?b="c"&d=<e>' },
        ];
        const doc = parse(renderDecisionPage({ view: v, form }));
        const links = all(doc, 'a');
        expect(links.map((a) => a.textContent)).toEqual(['Open in Azure portal', '<img src=x onerror=alert(1)>']);
        for (const a of links) {
            expect(a.getAttribute('href')).toMatch(/^https:\/\//);
            expect(a.getAttribute('rel')).toBe('noopener noreferrer');
        }
        expect(links[1]?.getAttribute('href')).toBe('https://docs.example/a?b=%22c%22&d=%3Ce%3E');
        expect(renderDecisionPage({ view: v })).not.toContain('secret-link-token');
    });

    it('does not link a portal URL that is not https', () => {
        const v = buildCardView(makeRequest(benign), { ...webOptions, portalUrl: 'javascript:alert(1)//' });
        const doc = parse(renderDecisionPage({ view: v }));
        expect(all(doc, 'a')).toHaveLength(0);
        expect(all(doc, 'nav')).toHaveLength(0);
    });

    it('shows a markdown link in the message as text, not as a link', () => {
        const doc = parse(
            renderDecisionPage({ view: view({ ...benign, message: 'see [click](https://evil.example)' }) }),
        );
        expect(doc.querySelector('pre.message')?.textContent).toBe('see [click](https://evil.example)');
        expect(all(doc, 'a[href*="evil"]')).toHaveLength(0);
    });

    it('leaves the signed-in line out when nobody is named', () => {
        const doc = parse(renderDecisionPage({ view: view() }));
        expect(doc.querySelector('header')?.textContent).not.toContain('Signed in as');
    });
});

describe('renderMessagePage', () => {
    it('has the same shell and style, and escapes title and message', () => {
        const html = renderMessagePage('<script>alert(1)</script>', '"><img src=x onerror=alert(1)>');
        const doc = parse(html);
        expect(html.toLowerCase()).not.toContain('<script');
        expect(all(doc, 'script, img')).toHaveLength(0);
        expect(doc.documentElement.getAttribute('lang')).toBe('en');
        expect(doc.querySelector('h1')?.textContent).toBe('<script>alert(1)</script>');
        expect(doc.querySelector('main p')?.textContent).toBe('"><img src=x onerror=alert(1)>');
        const style = doc.querySelector('style')?.textContent ?? '';
        const hash = createHash('sha256').update(style, 'utf8').digest('base64');
        expect(pageHeaders['Content-Security-Policy']).toContain(`'sha256-${hash}'`);
    });
});

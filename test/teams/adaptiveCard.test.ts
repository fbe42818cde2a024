/** @jest-environment jsdom */
import { buildCardView } from '../../src/domain/card';
import type { CardOptions } from '../../src/domain/card';
import type { ApprovalRequest, RequestStatus } from '../../src/domain/request';
import {
    ADAPTIVE_CARD_CONTENT_TYPE,
    cardAttachment,
    cardSummary,
    escapeMarkdown,
    renderAdaptiveCard,
    RESPONSE_TEXT_MAX_LENGTH,
} from '../../src/teams/adaptiveCard';
import type { AdaptiveCardJson, CardElementJson } from '../../src/teams/adaptiveCard';
import { parseAndRender, useReferenceRenderer, type DomElement } from './referenceRenderer';

const { processed } = useReferenceRenderer();
const markupSelector = 'a, strong, em, script, img, h1, ul, ol, li, del, code';

const ourSub = '11111111-1111-1111-1111-111111111111';
const theirSub = '99999999-9999-9999-9999-999999999999';
const ourTenant = 'aaaaaaaa-aaaa-aaaa-aaaa-aaaaaaaaaaaa';
const serverId = `/subscriptions/${ourSub}/resourceGroups/rg-data/providers/Microsoft.DBforMySQL/servers/mysql-prod`;
const pecName = 'pe_exfil_01.6c1b2d3e-0000-4000-8000-000000000001';
const peId = `/subscriptions/${theirSub}/resourceGroups/rg-other/providers/Microsoft.Network/privateEndpoints/pe_exfil_01`;

function makeRequest(overrides: Partial<ApprovalRequest> = {}): ApprovalRequest {
    return {
        id: 'Req_abcdefghijklmnopqrstuv',
        pecId: `${serverId}/privateEndpointConnections/${pecName}`,
        status: 'pending',
        facts: {
            serverKind: 'mysql-single',
            serverId,
            serverLocation: 'westeurope',
            publicNetworkAccess: 'Enabled',
            serverTags: { env: 'prod', owner: 'team_data' },
            pecName,
            privateEndpointId: peId,
            privateEndpointSubscriptionId: theirSub,
            privateEndpointTrusted: false,
            privateEndpointTenantId: ourTenant,
            originSource: 'looked-up',
            requestMessage: 'Line one\nLine two',
            approvedPecCount: 2,
            approvedUntrustedPecCount: 1,
        },
        requester: { name: 'Mallory', upn: 'mallory@contoso.example', objectId: 'oid-1', tenantId: 'other-tenant' },
        requesterForeignTenant: true,
        correlationId: 'corr-1',
        createdAt: '2024-05-01T10:07:33.123Z',
        updatedAt: '2024-05-01T10:07:33.123Z',
        ...overrides,
    };
}

const baseOptions: CardOptions = {
    portalUrl: 'https://portal.azure.com',
    publicBaseUrl: 'https://pec-gate.azurewebsites.net',
    ourTenantId: ourTenant,
    audience: 'approver',
    delivery: 'bot',
    linkToken: 'link-token',
};

const approve = {
    action: 'approve' as const,
    by: { name: 'Alice', objectId: 'oid-alice' },
    text: 'fine',
    at: '2024-05-02T08:09:59Z',
};
const outcome = { at: '2024-05-03T00:00:00Z', reason: 'some reason' };

const states: [string, Partial<ApprovalRequest>][] = [
    ['pending', { status: 'pending' }],
    ['decided', { status: 'decided', decision: approve }],
    ['applied', { status: 'applied', decision: approve }],
    ['rejected', { status: 'applied', decision: { ...approve, action: 'reject', text: 'no' } }],
    ['failed', { status: 'failed', decision: approve, outcome }],
    ['superseded', { status: 'superseded', outcome }],
    ['expired', { status: 'expired', outcome }],
];
const variants: [CardOptions['audience'], CardOptions['delivery']][] = [
    ['approver', 'bot'],
    ['viewer', 'bot'],
    ['approver', 'webhook'],
    ['viewer', 'webhook'],
];
const matrix = states.flatMap(([name, overrides]) =>
    variants.map(([audience, delivery]) => [name, audience, delivery, overrides] as const),
);

function allElements(json: AdaptiveCardJson): CardElementJson[] {
    const found: CardElementJson[] = [];
    const visit = (value: unknown): void => {
        if (Array.isArray(value)) {
            value.forEach(visit);
        } else if (value && typeof value === 'object') {
            const object = value as Record<string, unknown>;
            if (typeof object.type === 'string') {
                found.push(object as CardElementJson);
            }
            Object.values(object).forEach(visit);
        }
    };
    visit(json);
    return found;
}

describe('renderAdaptiveCard with the adaptivecards reference renderer', () => {
    it.each(matrix)('%s card for %s via %s parses, validates and renders', (_name, audience, delivery, overrides) => {
        const view = buildCardView(makeRequest(overrides), { ...baseOptions, audience, delivery });
        const json = renderAdaptiveCard(view);
        expect(json).toMatchObject({
            type: 'AdaptiveCard',
            $schema: 'http://adaptivecards.io/schemas/adaptive-card.json',
            version: '1.5',
            msteams: { width: 'Full' },
        });
        // What Teams gets must survive JSON, and parse exactly as rendered.
        const { root } = parseAndRender(JSON.parse(JSON.stringify(json)) as AdaptiveCardJson);
        expect(root.textContent).toContain(view.statusLine.text);
        expect(root.querySelectorAll(markupSelector)).toHaveLength(0);
        root.remove();

        const types = allElements(json).map((e) => e.type);
        const canDecide = overrides.status === 'pending' && audience === 'approver' && delivery === 'bot';
        expect(json.actions.some((a) => a.type === 'Action.Execute')).toBe(canDecide);
        expect(types.includes('Input.Text')).toBe(canDecide);
        if (delivery === 'webhook') {
            expect(json.actions.every((a) => a.type === 'Action.OpenUrl')).toBe(true);
        }
    });

    it('renders the decision controls as Teams expects them', () => {
        const json = renderAdaptiveCard(buildCardView(makeRequest(), { ...baseOptions, responseText: 'draft' }));
        expect(json.actions).toEqual([
            {
                type: 'Action.Execute',
                title: 'Approve',
                verb: 'approve',
                data: { requestId: 'Req_abcdefghijklmnopqrstuv' },
                style: 'positive',
            },
            {
                type: 'Action.Execute',
                title: 'Reject',
                verb: 'reject',
                data: { requestId: 'Req_abcdefghijklmnopqrstuv' },
                style: 'destructive',
            },
            {
                type: 'Action.OpenUrl',
                title: 'Review page',
                url: 'https://pec-gate.azurewebsites.net/api/requests/Req_abcdefghijklmnopqrstuv?token=link-token',
            },
            {
                type: 'Action.OpenUrl',
                title: 'Open in Azure portal',
                url: `https://portal.azure.com/#@${ourTenant}/resource${serverId}/privateEndpointConnections/${pecName}`,
            },
        ]);
        const input = allElements(json).find((e) => e.type === 'Input.Text');
        expect(input).toMatchObject({
            id: 'responseText',
            isMultiline: true,
            maxLength: RESPONSE_TEXT_MAX_LENGTH,
            value: 'draft',
        });
        expect(input!.label).toEqual(expect.any(String));
        expect(input!.placeholder).toEqual(expect.any(String));
    });

    it('puts the warnings in an attention container', () => {
        const json = renderAdaptiveCard(buildCardView(makeRequest(), baseOptions));
        const container = json.body.find((e) => e.type === 'Container' && e.style === 'attention');
        expect(JSON.stringify(container)).toContain(
            `Private endpoint subscription ${theirSub} is not in the trusted list`,
        );
        expect(JSON.stringify(container)).toContain('Public network access is Enabled');
    });

    it('adds refresh for per-user views when asked to, and it parses', () => {
        const view = buildCardView(makeRequest(), { ...baseOptions, audience: 'viewer', refreshUserIds: ['29:abc'] });
        const json = renderAdaptiveCard(view);
        expect(json.refresh).toEqual({
            action: { type: 'Action.Execute', verb: 'refresh', data: { requestId: 'Req_abcdefghijklmnopqrstuv' } },
            userIds: ['29:abc'],
        });
        parseAndRender(json).root.remove();
    });

    it('shows an inline error and keeps the typed text', () => {
        const view = buildCardView(makeRequest(), {
            ...baseOptions,
            error: 'A reject needs a response text',
            responseText: 'half typed',
        });
        const { root } = parseAndRender(renderAdaptiveCard(view));
        expect(root.textContent).toContain('A reject needs a response text');
        root.remove();
    });

    it('stays well under the 28 KB webhook limit even with maximal untrusted text', () => {
        const request = makeRequest({ requester: { name: 'n'.repeat(5000), upn: 'u'.repeat(5000) } });
        const tags = Object.fromEntries(
            Array.from({ length: 50 }, (_, i) => [`k${i}${'k'.repeat(500)}`, 'v'.repeat(500)]),
        );
        request.facts = {
            ...request.facts,
            requestMessage: '*'.repeat(50000),
            serverTags: tags,
            pecName: 'p'.repeat(5000),
        };
        const json = renderAdaptiveCard(buildCardView(request, { ...baseOptions, delivery: 'webhook' }));
        const payload = { type: 'message', attachments: [cardAttachment(json)] };
        expect(Buffer.byteLength(JSON.stringify(payload))).toBeLessThan(28 * 1024);
    });
});

describe('untrusted text renders literally', () => {
    it('the stand-in processor really produces markup (positive control)', () => {
        const { root } = parseAndRender({
            type: 'AdaptiveCard',
            $schema: 'http://adaptivecards.io/schemas/adaptive-card.json',
            version: '1.5',
            msteams: { width: 'Full' },
            body: [{ type: 'TextBlock', text: '**b** [click](https://evil.example) <script>alert(1)</script>' }],
            actions: [],
        });
        expect(root.querySelectorAll('strong')).toHaveLength(1);
        expect(root.querySelectorAll('a[href*="evil"]')).toHaveLength(1);
        expect(root.querySelectorAll('script')).toHaveLength(1);
        root.remove();
    });

    const message = [
        '[click](https://evil.example)',
        '**urgent**',
        '<script>alert(1)</script>',
        '# Heading',
        '- item',
        'see https://evil.example/x and _this_ and {{DATE(2024-01-01T00:00:00Z, SHORT)}}',
    ].join('\n');
    const hostile = {
        requesterName: '[boss](https://evil)',
        upn: '**ceo**@evil.example',
        pecName: '[pec](https://evil.example)_x_.guid',
        tagKey: '**owner**',
        tagValue: '[click](https://evil.example) <b>x</b>',
        location: '<script>alert(2)</script>',
        decisionText: '**done** [here](https://evil.example)',
        reason: '<img src=x onerror=alert(3)> _why_',
    };

    function hostileRequest(overrides: Partial<ApprovalRequest> = {}): ApprovalRequest {
        const request = makeRequest({
            requester: { name: hostile.requesterName, upn: hostile.upn, tenantId: 'evil-tenant' },
            ...overrides,
        });
        request.pecId = `${serverId}/privateEndpointConnections/${hostile.pecName}`;
        request.facts = {
            ...request.facts,
            requestMessage: message,
            pecName: hostile.pecName,
            serverLocation: hostile.location,
            serverTags: { [hostile.tagKey]: hostile.tagValue },
        };
        return request;
    }

    function visibleText(root: DomElement): string {
        // The word joiner that defuses `{{DATE(` is invisible; the reader sees the characters around it.
        return (root.textContent ?? '').replace(/\u2060/g, '');
    }

    it.each<[string, RequestStatus, Partial<ApprovalRequest>]>([
        ['pending', 'pending', {}],
        ['applied', 'applied', { decision: { ...approve, by: { name: '_Alice_' }, text: hostile.decisionText } }],
        ['failed', 'failed', { decision: approve, outcome: { at: outcome.at, reason: hostile.reason } }],
    ])('in a %s card, nothing untrusted becomes markup', (_name, status, overrides) => {
        const view = buildCardView(hostileRequest({ status, ...overrides }), baseOptions);
        const json = renderAdaptiveCard(view);
        const { root } = parseAndRender(json);

        // The processor did run over the markdown-processed places (title, headings), and never saw an untrusted value:
        // every fact, tags included, is a text run.
        expect(processed.length).toBeGreaterThan(0);
        expect(processed.join('\n')).not.toContain('evil.example');

        expect(root.querySelectorAll(markupSelector)).toHaveLength(0);
        const text = visibleText(root);
        for (const line of message.split('\n')) {
            expect(text).toContain(line);
        }
        expect(text).toContain(hostile.requesterName);
        expect(text).toContain(hostile.upn);
        expect(text).toContain(`Connection: ${hostile.pecName}`);
        expect(text).toContain(hostile.tagKey);
        expect(text).toContain(hostile.tagValue);
        expect(text).toContain(hostile.location);
        if (status === 'applied') {
            expect(text).toContain(hostile.decisionText);
            expect(text).toContain('_Alice_');
        }
        if (status === 'failed') {
            expect(text).toContain(hostile.reason);
        }
        // No backslashes from escaping leaked into what the reader sees.
        expect(text).not.toContain('\\');
        root.remove();
    });

    it('keeps free text out of markdown-processed places entirely', () => {
        const json = renderAdaptiveCard(buildCardView(hostileRequest(), baseOptions));
        const markdownPlaces = allElements(json).flatMap((e) => {
            if (e.type === 'TextBlock') {
                return [String(e.text)];
            }
            if (e.type === 'FactSet') {
                return (e.facts as { title: string; value: string }[]).flatMap((f) => [f.title, f.value]);
            }
            return [];
        });
        const joined = markdownPlaces.join('\n');
        expect(joined).not.toContain('urgent');
        expect(joined).not.toContain('boss');
        expect(joined).not.toContain('pec](');
        const runs = allElements(json)
            .filter((e) => e.type === 'TextRun')
            .map((e) => String(e.text));
        expect(runs).toContain(message.replace('{{', '{\u2060{'));
        expect(runs).toContain(hostile.requesterName);
    });

    it('the private endpoint id reaches the reader unescaped, as an identifier', () => {
        const json = renderAdaptiveCard(buildCardView(makeRequest(), baseOptions));
        const run = allElements(json).find((e) => e.type === 'TextRun' && e.text === peId);
        expect(run).toMatchObject({ fontType: 'Monospace' });
    });
});

describe('escapeMarkdown', () => {
    it.each([
        ['**bold**', '\\*\\*bold\\*\\*'],
        ['[a](b)', '\\[a\\]\\(b\\)'],
        ['![img](x)', '\\!\\[img\\]\\(x\\)'],
        ['pe_name_1', 'pe\\_name\\_1'],
        ['a\\b', 'a\\\\b'],
        ['`code`', '\\`code\\`'],
        ['<script>', '\\<script\\>'],
        ['a|b ~~c~~', 'a\\|b \\~\\~c\\~\\~'],
        ['&lt;', '\\&lt;'],
        ['{{DATE(2024-01-01T00:00:00Z)}}', '\\{\\{DATE\\(2024-01-01T00:00:00Z\\)\\}\\}'],
        ['https://evil.example', 'https\\://evil.example'],
        ['# heading', '\\# heading'],
        ['- item', '\\- item'],
        ['+ item', '\\+ item'],
        ['= setext', '\\= setext'],
        ['1. first', '1\\. first'],
        ['12) twelfth', '12\\) twelfth'],
    ])('escapes %j', (input, expected) => {
        expect(escapeMarkdown(input)).toBe(expected);
    });

    it('leaves GUIDs, names and times readable', () => {
        expect(escapeMarkdown('11111111-1111-1111-1111-111111111111')).toBe('11111111-1111-1111-1111-111111111111');
        expect(escapeMarkdown('pg-prod-01.westeurope')).toBe('pg-prod-01.westeurope');
        expect(escapeMarkdown('2024-05-01 10:07 UTC')).toBe('2024-05-01 10:07 UTC');
        expect(escapeMarkdown('user#EXT#@x.example')).toBe('user#EXT#@x.example');
    });

    it('collapses line breaks so nothing starts a new block', () => {
        expect(escapeMarkdown('a\r\n# b\n- c\rd')).toBe('a # b - c d');
        expect(escapeMarkdown('  \n- leading')).toBe('\\- leading');
    });

    it('strips control and bidi characters', () => {
        expect(escapeMarkdown('a\u0000b\u0007c\u202Ed\u200Be')).toBe('abcde');
    });
});

describe('cardAttachment and cardSummary', () => {
    it('wraps the card as an Adaptive Card attachment', () => {
        const json = renderAdaptiveCard(buildCardView(makeRequest(), baseOptions));
        expect(cardAttachment(json)).toEqual({ contentType: ADAPTIVE_CARD_CONTENT_TYPE, content: json });
        expect(ADAPTIVE_CARD_CONTENT_TYPE).toBe('application/vnd.microsoft.card.adaptive');
    });

    it('summarises on one line with the risk count', () => {
        const view = buildCardView(makeRequest(), baseOptions);
        expect(cardSummary(view)).toBe(
            `Waiting for approval (4 risk warnings): private endpoint connection ${pecName} to mysql-prod`,
        );
        const applied = buildCardView(
            makeRequest({ status: 'applied', decision: { ...approve, text: 'multi\nline' } }),
            baseOptions,
        );
        expect(cardSummary(applied)).not.toContain('\n');
    });
});

describe('the compact card and its Details toggle', () => {
    const states: RequestStatus[] = ['pending', 'decided', 'applied', 'failed', 'expired', 'superseded'];

    function textOf(elements: readonly CardElementJson[]): string {
        return JSON.stringify(elements);
    }

    it.each(states)('%s: what decides the click is outside the toggle, the full facts behind it', (status) => {
        const request = makeRequest({
            status,
            ...(status === 'pending'
                ? {}
                : {
                      decision: { action: 'approve', by: { name: 'Alice' }, text: 'ok', at: '2024-05-01T11:00:00Z' },
                  }),
        });
        const card = renderAdaptiveCard(buildCardView(request, baseOptions));
        const details = card.body.filter((e) => e.type === 'Container' && e.id === 'details');
        expect(details).toHaveLength(1);
        expect(details[0]).toMatchObject({ isVisible: false });
        const toggles = card.body.filter(
            (e) =>
                e.type === 'ActionSet' &&
                JSON.stringify(e).includes('"Action.ToggleVisibility"') &&
                JSON.stringify(e).includes('"targetElements":["details"]'),
        );
        expect(toggles).toHaveLength(1);
        const visible = card.body.filter((e) => e !== details[0]);
        // The risks, the origin, the requester and the message are visible without a click...
        expect(textOf(visible)).toContain('Risks to check');
        expect(textOf(visible)).toContain(`"text":"${theirSub}"`);
        expect(textOf(visible)).toContain('(NOT TRUSTED)');
        expect(textOf(visible)).toContain('Mallory <mallory@contoso.example> (ANOTHER TENANT)');
        expect(textOf(visible)).toContain('Line one');
        // ...the full facts and the request id only behind the toggle.
        expect(textOf(visible)).not.toContain('Resource group: ');
        expect(textOf(details)).toContain('Resource group: ');
        expect(textOf(details)).toContain(`Request ${request.id}`);
        // The response box is never hidden: it belongs to the buttons.
        if (status === 'pending') {
            expect(visible.some((e) => e.type === 'Input.Text')).toBe(true);
        }
        expect(textOf(details)).not.toContain('Input.Text');
    });

    it('renders the toggle in the reference renderer and it shows the details', () => {
        const { root } = parseAndRender(renderAdaptiveCard(buildCardView(makeRequest(), baseOptions)));
        const details = root.querySelectorAll('#details')[0] as unknown as { style: { display: string } } | undefined;
        expect(details).toBeDefined();
        expect(details!.style.display).toBe('none');
        const toggle = Array.from(root.querySelectorAll('button')).find((b) => b.textContent === 'Details');
        expect(toggle).toBeDefined();
        (toggle as unknown as { click(): void }).click();
        expect(details!.style.display).not.toBe('none');
    });
});

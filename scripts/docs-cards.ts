/**
 * Card previews for the docs: the real card builder's output for a few fixed sample requests, rendered by the Adaptive
 * Cards reference renderer (the `adaptivecards` package) in headless Chromium with a Teams-like host config, and
 * written to docs/cards as `<name>.png` with the card JSON next to it as `<name>.json`, so a review can diff what a
 * card says as well as look at it.
 *
 *   npm run docs:cards
 *
 * The samples go through the app's own path: ARM-shaped PECs and servers → `buildFacts` → `openRequest` → policy →
 * approvals and transitions → `buildCardView` with the options the app uses for that card → `renderAdaptiveCard`.
 * Everything is fixed (ids, tokens, clock), so re-running changes the JSON only when the builder changed;
 * test/scripts/docsCards.test.ts fails when the committed JSON is behind the builder.
 *
 * Exits non-zero, and writes no image for that card, when the renderer reports anything: a parse or validation event,
 * a console warning or error (e.g. markdown not processed), a network request, or an element that sticks out of the
 * card or is cut off. Images are reduced to 256 colours to stay small (see `toPalettePng`), and over the byte budget
 * also fail. Chromium is never downloaded: it is /usr/bin/chromium unless CHROMIUM_PATH says otherwise.
 */
import { existsSync, mkdirSync, readdirSync, unlinkSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { deflateSync, inflateSync } from 'node:zlib';
import { buildCardView, type CardOptions } from '../src/domain/card';
import { addApproval, outsideChange } from '../src/domain/decision';
import { formatPecId, formatServerId, type ServerKind, type ServerRef } from '../src/domain/ids';
import { endpointSubscriptionOf, isForeignTenant, originFrom } from '../src/domain/origin';
import type { Pec, PublicNetworkAccess, ServerContext } from '../src/domain/pec';
import { applyPolicy, evaluatePolicy, policySubject, type Policy } from '../src/domain/policy';
import { openRequest, transition, type ApprovalRequest, type Person, type Requester } from '../src/domain/request';
import { renderAdaptiveCard, type AdaptiveCardJson } from '../src/teams/adaptiveCard';
import { buildFacts } from '../src/workflow/onResourceEvent';

export const DOCS_CARDS_DIR = path.join(__dirname, '..', 'docs', 'cards');
/** The card's width in CSS pixels: a Teams chat column on a laptop, narrow enough to show where text wraps. */
export const CARD_WIDTH = 460;
/** The light chat background around the card in the image, on every side. */
export const CARD_MARGIN = 12;
export const DEVICE_SCALE_FACTOR = 2;
/** Committed images stay small: the repository keeps every version of them. */
export const PNG_MAX_BYTES = 240 * 1024;

/*
 * Sample data: made-up GUIDs, `.example` domains and TEST-NET addresses, so nothing in the docs points at a real
 * tenant, person or host. Change anything here and re-run `npm run docs:cards`.
 */
export const sample = {
    settings: {
        ourTenantId: '3c5e1a7b-2f4d-4b8e-9a61-7d0c2e9f4b13',
        portalUrl: 'https://portal.azure.com',
        publicBaseUrl: 'https://pec-gate-prod.azurewebsites.net',
        trustedSubscriptionIds: ['6f1d2c3b-4a5e-4f60-8a9b-0c1d2e3f4a5b', '2b7e9c41-8d3a-4f15-b6c2-7a9e0d1f3c58'],
    },
    partner: {
        tenantId: 'e8b2d4f6-1a3c-4e5f-8b7d-9c0a1e2f3d4b',
        subscriptionId: '9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d',
    },
    clock: {
        opened: '2025-03-12T08:41:17.000Z',
        firstApproval: '2025-03-12T09:02:44.000Z',
        decided: '2025-03-12T09:15:03.000Z',
        superseded: '2025-03-12T10:30:00.000Z',
    },
    /** The single-use web page link token of a freshly posted card; real ones are 32 random bytes. */
    linkToken: 'DOCS-SAMPLE-link-token-not-a-real-secret-00',
    requestIds: {
        foreign: 'Dq7vN8kLm2PzR7tYw9bC4A',
        twoApprovals: 'Tw0aPpr0va1sXk3mQ8rLzA',
        trusted: 'Ok5nJ2hG6fD1sA9pL4kWxA',
        sweep: 'Sw3epF0undPecZ8yX6vB2A',
    },
};

const platformSub = sample.settings.trustedSubscriptionIds[0]!;
const dataSub = sample.settings.trustedSubscriptionIds[1]!;

const people = {
    requester: {
        name: 'Jordan Reyes',
        upn: 'jordan.reyes@fabrikam-analytics.example',
        objectId: '5d2f8a1c-7e3b-4c9d-a0f6-1b8e4d2c7a93',
        tenantId: sample.partner.tenantId,
        ipAddress: '203.0.113.45',
    } satisfies Requester,
    colleague: {
        name: 'Priya Nair',
        upn: 'priya.nair@contoso.example',
        objectId: '0e4a9c2d-3b7f-4a16-8d5e-6c1f2b9a0e47',
        tenantId: sample.settings.ourTenantId,
        ipAddress: '198.51.100.23',
    } satisfies Requester,
    alex: {
        name: 'Alex Kim',
        upn: 'alex.kim@contoso.example',
        objectId: '7b3e1f9a-2c6d-4e8b-9f0a-4d5c3b2a1e68',
        tenantId: sample.settings.ourTenantId,
    } satisfies Person,
    sam: {
        name: 'Sam Okafor',
        upn: 'sam.okafor@contoso.example',
        objectId: 'c1d9e7f5-8a2b-4c3d-b4e5-f6a7b8c9d0e1',
        tenantId: sample.settings.ourTenantId,
    } satisfies Person,
};

/** The policy of the two-approvals sample: endpoints from another tenant need two distinct approvers. */
const twoApproverPolicy: Policy = {
    rules: [
        {
            id: 'foreign-endpoints-need-two',
            description: 'Endpoints outside our tenant need a second pair of eyes',
            match: { endpointOrigin: ['foreign'] },
            action: { type: 'requireApprovals', count: 2 },
        },
    ],
};

function server(
    kind: ServerKind,
    resourceGroup: string,
    name: string,
    location: string,
    publicNetworkAccess: PublicNetworkAccess,
    tags: Record<string, string>,
): ServerContext {
    const ref: ServerRef = { kind, subscriptionId: platformSub, resourceGroup, name };
    return { ref, id: formatServerId(ref), location, publicNetworkAccess, tags, approvedPecs: [] };
}

function pec(
    on: ServerContext,
    endpoint: { subscriptionId: string; resourceGroup: string; name: string; guid: string },
    status: Pec['status'],
    description: string,
): Pec {
    const ref = { server: on.ref, name: `${endpoint.name}.${endpoint.guid}` };
    return {
        ref,
        id: formatPecId(ref),
        privateEndpointId:
            `/subscriptions/${endpoint.subscriptionId}/resourceGroups/${endpoint.resourceGroup}` +
            `/providers/Microsoft.Network/privateEndpoints/${endpoint.name}`,
        status,
        description,
        provisioningState: 'Succeeded',
    };
}

/** A production PostgreSQL server that already serves two internal apps and one partner, with public access left on. */
const paymentsServer = server('postgres-flexible', 'rg-payments-prod', 'psql-payments-prod', 'westeurope', 'Enabled', {
    env: 'prod',
    owner: 'payments-platform',
    'data-classification': 'confidential',
});
paymentsServer.approvedPecs = [
    pec(
        paymentsServer,
        {
            subscriptionId: platformSub,
            resourceGroup: 'rg-payments-app',
            name: 'pe-payments-api',
            guid: '1f2e3d4c-5b6a-4978-8695-a4b3c2d1e0f9',
        },
        'Approved',
        'Approved by alex.kim@contoso.example: payments API',
    ),
    pec(
        paymentsServer,
        {
            subscriptionId: dataSub,
            resourceGroup: 'rg-reporting',
            name: 'pe-reporting',
            guid: '2a3b4c5d-6e7f-4809-9a1b-2c3d4e5f6a7b',
        },
        'Approved',
        'Approved by sam.okafor@contoso.example: monthly reporting',
    ),
    pec(
        paymentsServer,
        {
            subscriptionId: sample.partner.subscriptionId,
            resourceGroup: 'rg-fraud-scoring',
            name: 'pe-fraud-scoring',
            guid: '3c4d5e6f-7a8b-49c0-8d1e-2f3a4b5c6d7e',
        },
        'Approved',
        'Approved by alex.kim@contoso.example: fraud scoring pilot, ends June',
    ),
];

/** A locked-down MySQL server: public access off, only internal endpoints. */
const ordersServer = server('mysql-flexible', 'rg-orders-prod', 'mysql-orders-prod', 'northeurope', 'Disabled', {
    env: 'prod',
    owner: 'orders',
});
ordersServer.approvedPecs = [
    pec(
        ordersServer,
        {
            subscriptionId: platformSub,
            resourceGroup: 'rg-orders-app',
            name: 'pe-orders-api',
            guid: '4d5e6f7a-8b9c-4ad0-9e1f-3a4b5c6d7e8f',
        },
        'Approved',
        'Approved by priya.nair@contoso.example: orders API',
    ),
];

/** The exfiltration case this gate exists for: a partner tenant's endpoint, from a subscription nobody trusts. */
const partnerPec = pec(
    paymentsServer,
    {
        subscriptionId: sample.partner.subscriptionId,
        resourceGroup: 'rg-analytics-ingest',
        name: 'pe-settlement-sync',
        guid: '8f3e2a1b-4c5d-4e6f-9a0b-1c2d3e4f5a6b',
    },
    'Pending',
    'Nightly sync of settlement data to the Fabrikam analytics warehouse.\nTicket CHG-20417, agreed with data governance.',
);

const internalPec = pec(
    ordersServer,
    {
        subscriptionId: dataSub,
        resourceGroup: 'rg-orders-etl',
        name: 'pe-orders-etl',
        guid: '5e6f7a8b-9c0d-4be1-8f2a-4b5c6d7e8f9a',
    },
    'Pending',
    'Read replica access for the orders ETL job (CHG-20388).',
);

/** Found by the sweep: no event named who created it. */
const sweepPec = pec(
    ordersServer,
    {
        subscriptionId: sample.partner.subscriptionId,
        resourceGroup: 'rg-legacy',
        name: 'pe-legacy-export',
        guid: '6f7a8b9c-0d1e-4cf2-9a3b-5c6d7e8f9a0b',
    },
    'Pending',
    '',
);

/** Opens a request the way `openRequestForPec` does: facts from ARM, the requester's tenant, the policy. */
function open(id: string, target: Pec, on: ServerContext, requester: Requester | undefined, policy: Policy) {
    // The endpoint's tenant as ARM would answer for its subscription: the partner's for the partner's subscription.
    const subscription = endpointSubscriptionOf(target.privateEndpointId);
    const tenantId =
        subscription === sample.partner.subscriptionId ? sample.partner.tenantId : sample.settings.ourTenantId;
    const origin = originFrom(
        target.privateEndpointId,
        sample.settings.trustedSubscriptionIds,
        { tenantId, source: 'looked-up' },
        sample.settings.ourTenantId,
    );
    const facts = buildFacts(target, on, sample.settings.trustedSubscriptionIds, origin);
    const foreign = isForeignTenant(requester?.tenantId, sample.settings.ourTenantId);
    const now = new Date(sample.clock.opened);
    const decision = evaluatePolicy(policy, policySubject(facts, { ourTenantId: sample.settings.ourTenantId }));
    return applyPolicy(
        openRequest({
            id,
            pecId: target.id,
            facts,
            ...(requester ? { requester } : {}),
            ...(foreign === undefined ? {} : { requesterForeignTenant: foreign }),
            correlationId: `docs-${id}`,
            now,
        }),
        decision,
        now,
    );
}

function decide(request: ApprovalRequest, action: 'approve' | 'reject', by: Person, text: string): ApprovalRequest {
    const at = sample.clock.decided;
    const decided = transition(request, { type: 'decide', decision: { action, by, text, at } }, new Date(at));
    return transition(decided, { type: 'apply' }, new Date(at));
}

export interface DocCardSample {
    /** File name without extension. */
    name: string;
    /** What the card shows, for the script's output. */
    caption: string;
    request: ApprovalRequest;
    options: CardOptions;
}

/** The options the app renders with (`cardOptions`), plus who the card is for. */
function optionsFor(audience: CardOptions['audience'], extra: Pick<CardOptions, 'linkToken'> = {}): CardOptions {
    const { portalUrl, publicBaseUrl, ourTenantId } = sample.settings;
    return { portalUrl, publicBaseUrl, ourTenantId, audience, delivery: 'bot', ...extra };
}

export function docCardSamples(): DocCardSample[] {
    const noPolicy: Policy = { rules: [] };
    const foreign = open(sample.requestIds.foreign, partnerPec, paymentsServer, people.requester, noPolicy);
    const twoNeeded = open(
        sample.requestIds.twoApprovals,
        partnerPec,
        paymentsServer,
        people.requester,
        twoApproverPolicy,
    );
    const oneGiven = addApproval(
        twoNeeded,
        {
            action: 'approve',
            by: people.alex,
            text: 'Matches CHG-20417; data governance sign-off attached to the ticket.',
            at: sample.clock.firstApproval,
        },
        new Date(sample.clock.firstApproval),
    );
    const internal = open(sample.requestIds.trusted, internalPec, ordersServer, people.colleague, noPolicy);
    const swept = open(sample.requestIds.sweep, sweepPec, ordersServer, undefined, noPolicy);
    const outside = outsideChange({
        ...sweepPec,
        status: 'Approved',
        description: 'Approved in the portal by the legacy migration team',
    });
    if (!outside) {
        throw new Error('The sample PEC must have been decided outside the app');
    }
    return [
        {
            name: 'pending',
            caption: 'pending, as first posted: foreign tenant and subscription, public access on, every risk flag',
            request: foreign,
            // `postCard`: the approvers' card, with the web page link that only the first posting carries.
            options: optionsFor('approver', { linkToken: sample.linkToken }),
        },
        {
            name: 'pending-two-approvals',
            caption: 'pending under a policy that needs two approvers, one given',
            request: oneGiven,
            // `syncPostedCard` after the first approval: the shared card keeps the buttons for the second approver.
            options: optionsFor('approver'),
        },
        {
            name: 'approved',
            caption: 'approved: an internal endpoint from a trusted subscription, no risk flags',
            request: decide(internal, 'approve', people.sam, 'Matches CHG-20388; read replica only.'),
            // `syncPostedCard` once the request is final: everyone shares the status-only card.
            options: optionsFor('viewer'),
        },
        {
            name: 'rejected',
            caption: 'rejected: the foreign request, with the approver’s reason',
            request: decide(
                foreign,
                'reject',
                people.alex,
                'Settlement data may not leave our tenant. Raise a data-sharing request (DG-112) first.',
            ),
            options: optionsFor('viewer'),
        },
        {
            name: 'superseded',
            caption: 'superseded: found by the sweep (requester unknown), then approved in the portal',
            request: transition(swept, { type: 'supersede', reason: outside }, new Date(sample.clock.superseded)),
            options: optionsFor('viewer'),
        },
    ];
}

export interface DocCard {
    name: string;
    caption: string;
    json: AdaptiveCardJson;
}

/** The cards docs/cards holds, as the builder renders them now. Pure: no browser, no files. */
export function buildDocCards(): DocCard[] {
    return docCardSamples().map((s) => ({
        name: s.name,
        caption: s.caption,
        json: renderAdaptiveCard(buildCardView(s.request, s.options)),
    }));
}

/*
 * A Teams-like host config (light theme, Fluent 2 type ramp and colours). Not Teams' own: Teams does not publish the
 * one its clients use, and the point here is a faithful look at layout and wording, not pixel equality. Where Segoe UI
 * is not installed (Linux), Chromium falls back to the system sans-serif (DejaVu Sans on Debian), which is wider: text
 * wraps somewhat earlier than in Teams, so a layout that fits here fits there.
 */
const fontFamily =
    "'Segoe UI', 'Segoe UI Web (West European)', -apple-system, BlinkMacSystemFont, Roboto, 'Helvetica Neue', sans-serif";
const monospaceFamily = "Consolas, 'Cascadia Mono', Menlo, 'DejaVu Sans Mono', monospace";
const fontWeights = { lighter: 300, default: 400, bolder: 600 };
const foregroundColors = {
    default: { default: '#242424', subtle: '#616161' },
    dark: { default: '#242424', subtle: '#616161' },
    light: { default: '#ffffff', subtle: '#f5f5f5' },
    accent: { default: '#5b5fc7', subtle: '#7f85f5' },
    good: { default: '#0e700e', subtle: '#107c10' },
    warning: { default: '#835b00', subtle: '#8a6400' },
    attention: { default: '#c4314b', subtle: '#d13438' },
};

export const teamsHostConfig = {
    supportsInteractivity: true,
    fontTypes: {
        default: {
            fontFamily,
            fontSizes: { small: 12, default: 14, medium: 16, large: 20, extraLarge: 24 },
            fontWeights,
        },
        monospace: {
            fontFamily: monospaceFamily,
            fontSizes: { small: 12, default: 13, medium: 15, large: 19, extraLarge: 23 },
            fontWeights,
        },
    },
    spacing: { small: 4, default: 8, medium: 16, large: 20, extraLarge: 24, padding: 16 },
    separator: { lineThickness: 1, lineColor: '#e0e0e0' },
    containerStyles: {
        default: { backgroundColor: '#ffffff', foregroundColors },
        emphasis: { backgroundColor: '#f5f5f5', foregroundColors },
        accent: { backgroundColor: '#ebebf5', foregroundColors },
        good: { backgroundColor: '#f1faf1', foregroundColors },
        attention: { backgroundColor: '#fdf3f4', foregroundColors },
        warning: { backgroundColor: '#fff9f5', foregroundColors },
    },
    inputs: {
        label: {
            inputSpacing: 'Small',
            requiredInputs: { weight: 'Bolder', suffix: ' *', suffixColor: 'Attention' },
            optionalInputs: { weight: 'Bolder' },
        },
        errorMessage: { color: 'Attention' },
    },
    actions: {
        maxActions: 6,
        spacing: 'Medium',
        buttonSpacing: 8,
        showCard: { actionMode: 'Inline', inlineTopMargin: 16 },
        actionsOrientation: 'Horizontal',
        actionAlignment: 'Left',
    },
    adaptiveCard: { allowCustomStyle: true },
    factSet: {
        title: { color: 'Default', size: 'Default', isSubtle: false, weight: 'Bolder', wrap: true, maxWidth: 150 },
        value: { color: 'Default', size: 'Default', isSubtle: false, weight: 'Default', wrap: true },
        spacing: 12,
    },
};

/** Fluent 2 buttons and inputs: the reference renderer leaves their look to the host's stylesheet. */
const pageCss = `
html, body { margin: 0; background: #f5f5f5; }
#shot { display: inline-block; padding: ${CARD_MARGIN}px; background: #f5f5f5; }
#frame {
    width: ${CARD_WIDTH}px; background: #ffffff; border-radius: 8px; overflow: hidden;
    box-shadow: 0 0 2px rgba(0, 0, 0, 0.12), 0 1px 2px rgba(0, 0, 0, 0.14);
}
/* Teams wraps buttons that do not fit on one row; the reference renderer squeezes and cuts their titles instead, and
   leaves wrapping to the host (microsoft/AdaptiveCards#8792). Its spacer divs give way to the gap. */
.ac-actionSet { flex-wrap: wrap; gap: 8px; }
.ac-actionSet > div { display: none; }
.ac-pushButton {
    font-family: ${fontFamily}; font-size: 14px; font-weight: 600; height: 32px; padding: 0 12px;
    border-radius: 4px; border: 1px solid #d1d1d1; background: #ffffff; color: #242424;
    overflow: hidden; text-overflow: ellipsis; white-space: nowrap;
}
.ac-pushButton.style-positive { background: #5b5fc7; border-color: #5b5fc7; color: #ffffff; }
.ac-pushButton.style-destructive { color: #c4314b; }
.ac-input { font-family: ${fontFamily}; font-size: 14px; color: #242424; }
.ac-input.ac-textInput {
    box-sizing: border-box; width: 100%; padding: 6px 10px; background: #ffffff; resize: none;
    border: 1px solid #d1d1d1; border-bottom-color: #616161; border-radius: 4px;
}
.ac-input.ac-textInput.ac-multiline { height: 72px; }
.ac-input::placeholder { color: #707070; }
`;

/*
 * Runs in the page, so it is plain JavaScript in a string: a function passed to page.evaluate would be serialised
 * after tsx compiled it, with helper calls (`__name`) the page does not have.
 *
 * Teams runs markdown over TextBlocks and FactSets; without a processor the reference renderer warns and shows the raw
 * text, backslash escapes included. This one does what the card needs and nothing more: backslash escapes, bold,
 * italics and http(s) links, over HTML-escaped input, so no card text can inject markup into the page.
 */
const pageScript = String.raw`
(() => {
    const AC = window.AdaptiveCards;
    const escapeHtml = (s) =>
        s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&#39;');
    const markdown = (text) => {
        const held = [];
        let s = text.replace(/\\([!-\/:-@[-${'`'}{-~])/g, (_m, c) => {
            held.push(c);
            return '\uE000' + (held.length - 1) + '\uE001';
        });
        s = escapeHtml(s)
            .replace(/\[([^\]]+)\]\((https?:\/\/[^)\s]+)\)/g, '<a href="$2">$1</a>')
            .replace(/\*\*(.+?)\*\*/g, '<strong>$1</strong>')
            .replace(/(^|[^*])\*([^*]+)\*/g, '$1<em>$2</em>')
            .replace(/(^|\W)_(.+?)_(?!\w)/g, '$1<em>$2</em>');
        s = s.replace(/\uE000(\d+)\uE001/g, (_m, i) => escapeHtml(held[Number(i)]));
        return '<p>' + s + '</p>';
    };
    const describe = (el) => {
        const text = (el.textContent || '').replace(/\s+/g, ' ').trim().slice(0, 60);
        return '<' + el.tagName.toLowerCase() + (el.className ? ' class="' + el.className + '"' : '') + '> "' + text + '"';
    };
    window.renderDocCard = (json, hostConfig) => {
        const problems = [];
        AC.AdaptiveCard.onProcessMarkdown = (text, result) => {
            result.outputHtml = markdown(text);
            result.didProcess = true;
        };
        const card = new AC.AdaptiveCard();
        card.hostConfig = new AC.HostConfig(hostConfig);
        const context = new AC.SerializationContext();
        card.parse(json, context);
        for (let i = 0; i < context.eventCount; i++) {
            problems.push('parse: ' + context.getEventAt(i).message);
        }
        for (const event of card.validateProperties().validationEvents) {
            problems.push('validation: ' + event.message);
        }
        const rendered = card.render();
        if (!rendered) {
            return problems.concat('the card rendered to nothing');
        }
        document.getElementById('frame').appendChild(rendered);
        return problems.concat(window.checkDocCardLayout());
    };
    window.checkDocCardLayout = () => {
        const problems = [];
        const frame = document.getElementById('frame');
        const bounds = frame.getBoundingClientRect();
        for (const el of frame.querySelectorAll('*')) {
            const box = el.getBoundingClientRect();
            if (box.width === 0 && box.height === 0) {
                continue;
            }
            if (box.right > bounds.right + 0.5 || box.left < bounds.left - 0.5) {
                problems.push('layout: ' + describe(el) + ' sticks out of the card (' + Math.round(box.left - bounds.left) +
                    '..' + Math.round(box.right - bounds.left) + ' of ' + Math.round(bounds.width) + ' px)');
            }
            const style = getComputedStyle(el);
            if (el.scrollWidth > el.clientWidth + 1 && style.overflowX !== 'visible' && el.tagName !== 'TEXTAREA') {
                problems.push('layout: ' + describe(el) + ' is cut off (' + el.scrollWidth + ' px of content in ' +
                    el.clientWidth + ' px)');
            }
        }
        return problems;
    };
})();
`;

function pageHtml(): string {
    return (
        `<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><style>${pageCss}</style></head>` +
        '<body><div id="shot"><div id="frame"></div></div></body></html>'
    );
}

/** The PNG's pixel size, from its IHDR chunk; undefined when the bytes are not a PNG. */
export function pngSize(bytes: Uint8Array): { width: number; height: number } | undefined {
    const signature = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];
    if (bytes.length < 24 || signature.some((b, i) => bytes[i] !== b)) {
        return undefined;
    }
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    if (String.fromCharCode(...bytes.subarray(12, 16)) !== 'IHDR') {
        return undefined;
    }
    return { width: view.getUint32(16), height: view.getUint32(20) };
}

/** Pixels allowed to take a neighbouring palette colour: antialiasing shades nobody can tell apart. */
const MAX_REMAPPED_SHARE = 0.02;

/**
 * Re-encodes Chromium's truecolour screenshot as an 8-bit palette PNG, about half the bytes. A card is a few flat
 * colours and their antialiasing shades: the 256 commonest colours cover nearly every pixel, and the rest take the
 * nearest of them. Returns the share of pixels that changed, so a colourful card cannot quietly lose quality.
 */
export function toPalettePng(png: Buffer): { png: Buffer; remapped: number } {
    const size = pngSize(png);
    if (!size) {
        throw new Error('The screenshot is not a PNG');
    }
    const { width, height } = size;
    const bitDepth = png[24];
    const colourType = png[25];
    const interlace = png[28];
    if (bitDepth !== 8 || (colourType !== 2 && colourType !== 6) || interlace !== 0) {
        throw new Error(`Unexpected screenshot format: bit depth ${bitDepth}, colour type ${colourType}`);
    }
    const channels = colourType === 6 ? 4 : 3;
    const data: Buffer[] = [];
    for (let at = 8; at < png.length;) {
        const length = png.readUInt32BE(at);
        if (png.toString('latin1', at + 4, at + 8) === 'IDAT') {
            data.push(png.subarray(at + 8, at + 8 + length));
        }
        at += 12 + length;
    }
    const pixels = unfilter(inflateSync(Buffer.concat(data)), width, height, channels);

    const counts = new Map<number, number>();
    const colours = new Uint32Array(width * height);
    for (let i = 0; i < colours.length; i++) {
        const p = i * channels;
        if (channels === 4 && pixels[p + 3] !== 255) {
            throw new Error('The screenshot has transparent pixels: the page background must be opaque');
        }
        const colour = (pixels[p]! << 16) | (pixels[p + 1]! << 8) | pixels[p + 2]!;
        colours[i] = colour;
        counts.set(colour, (counts.get(colour) ?? 0) + 1);
    }
    // Ties broken by colour value, so the same screenshot always gives the same file.
    const palette = [...counts.entries()]
        .sort((a, b) => b[1] - a[1] || a[0] - b[0])
        .slice(0, 256)
        .map(([colour]) => colour);
    const index = new Map(palette.map((colour, i) => [colour, i]));
    const nearest = (colour: number): number => {
        let best = 0;
        let bestDistance = Infinity;
        palette.forEach((candidate, i) => {
            const dr = ((colour >> 16) & 255) - ((candidate >> 16) & 255);
            const dg = ((colour >> 8) & 255) - ((candidate >> 8) & 255);
            const db = (colour & 255) - (candidate & 255);
            const distance = dr * dr + dg * dg + db * db;
            if (distance < bestDistance) {
                bestDistance = distance;
                best = i;
            }
        });
        index.set(colour, best);
        return best;
    };
    let remapped = 0;
    // Filter type 0 on every row: palette indices are not magnitudes, so the predicting filters only add noise.
    const rows = Buffer.alloc((width + 1) * height);
    for (let y = 0; y < height; y++) {
        for (let x = 0; x < width; x++) {
            const colour = colours[y * width + x]!;
            let i = index.get(colour);
            if (i === undefined || palette[i] !== colour) {
                remapped++;
                i = i ?? nearest(colour);
            }
            rows[y * (width + 1) + 1 + x] = i;
        }
    }
    const header = Buffer.alloc(13);
    header.writeUInt32BE(width, 0);
    header.writeUInt32BE(height, 4);
    header.set([8, 3, 0, 0, 0], 8);
    const plte = Buffer.alloc(palette.length * 3);
    palette.forEach((colour, i) => plte.set([(colour >> 16) & 255, (colour >> 8) & 255, colour & 255], i * 3));
    return {
        png: Buffer.concat([
            png.subarray(0, 8),
            chunk('IHDR', header),
            chunk('PLTE', plte),
            chunk('IDAT', deflateSync(rows, { level: 9 })),
            chunk('IEND', Buffer.alloc(0)),
        ]),
        remapped: remapped / colours.length,
    };
}

/** Undoes PNG's per-row filters (None, Sub, Up, Average, Paeth) into plain pixel bytes. */
function unfilter(filtered: Buffer, width: number, height: number, channels: number): Buffer {
    const stride = width * channels;
    const out = Buffer.alloc(stride * height);
    for (let y = 0; y < height; y++) {
        const type = filtered[y * (stride + 1)];
        const row = y * stride;
        for (let x = 0; x < stride; x++) {
            const raw = filtered[y * (stride + 1) + 1 + x]!;
            const a = x >= channels ? out[row + x - channels]! : 0;
            const b = y > 0 ? out[row - stride + x]! : 0;
            const c = x >= channels && y > 0 ? out[row - stride + x - channels]! : 0;
            let predicted: number;
            switch (type) {
                case 0:
                    predicted = 0;
                    break;
                case 1:
                    predicted = a;
                    break;
                case 2:
                    predicted = b;
                    break;
                case 3:
                    predicted = (a + b) >> 1;
                    break;
                case 4: {
                    const p = a + b - c;
                    const pa = Math.abs(p - a);
                    const pb = Math.abs(p - b);
                    const pc = Math.abs(p - c);
                    predicted = pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
                    break;
                }
                default:
                    throw new Error(`Unknown PNG filter type ${type} in row ${y}`);
            }
            out[row + x] = (raw + predicted) & 255;
        }
    }
    return out;
}

const crcTable = Array.from({ length: 256 }, (_, n) => {
    let c = n;
    for (let k = 0; k < 8; k++) {
        c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    }
    return c >>> 0;
});

function crc32(bytes: Buffer): number {
    let c = 0xffffffff;
    for (const byte of bytes) {
        c = crcTable[(c ^ byte) & 255]! ^ (c >>> 8);
    }
    return (c ^ 0xffffffff) >>> 0;
}

function chunk(type: string, body: Buffer): Buffer {
    const head = Buffer.alloc(8);
    head.writeUInt32BE(body.length, 0);
    head.write(type, 4, 'latin1');
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE(crc32(Buffer.concat([head.subarray(4), body])), 0);
    return Buffer.concat([head, body, crc]);
}

async function writeJson(file: string, json: unknown): Promise<void> {
    // Formatted as prettier would, so `prettier --check .` (npm run lint) passes on the committed files.
    const prettier = await import('prettier');
    const options = (await prettier.resolveConfig(file)) ?? {};
    writeFileSync(file, await prettier.format(JSON.stringify(json), { ...options, filepath: file }));
}

export interface RenderOptions {
    /** Where the PNG and JSON files go. */
    dir: string;
    chromiumPath: string;
}

/**
 * The collapsed card's height at most, in CSS pixels at CARD_WIDTH: about one screen of a Teams channel on a laptop
 * (a 1080p display less Teams' own header, compose box and the message's frame). Everything that decides the click
 * has to fit in it; test/scripts/cardHeight.browser.test.ts holds every sample card to it.
 */
export const COLLAPSED_MAX_HEIGHT = 900;

/** What a rendered card looks like: its problems, and its height in CSS pixels. */
export interface RenderedCard {
    problems: string[];
    height: number;
}

export interface CardBrowser {
    /** Renders the card on a fresh page of its own, collapsed. */
    open(card: DocCard): Promise<{ page: import('playwright-core').Page; rendered: RenderedCard }>;
    /** Clicks the card's Details toggle and gives the new height and any new problems. */
    expand(page: import('playwright-core').Page): Promise<RenderedCard>;
    close(): Promise<void>;
}

/** Chromium with the reference renderer and the Teams-like host config, as the docs images are drawn. */
export async function launchCardBrowser(chromiumPath: string): Promise<CardBrowser> {
    if (!existsSync(chromiumPath)) {
        throw new Error(
            `Chromium is not installed at ${chromiumPath}. Install it (Debian: ` +
                '`apt-get install -y --no-install-recommends chromium`) or point CHROMIUM_PATH at one; ' +
                'this script never downloads a browser.',
        );
    }
    // Loaded here, not at the top: the test imports this file for buildDocCards and must not pay for a browser stack.
    const { chromium } = await import('playwright-core');
    const rendererPath = require.resolve('adaptivecards/dist/adaptivecards.min.js');
    const browser = await chromium.launch({
        executablePath: chromiumPath,
        args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking'],
    });
    const context = await browser.newContext({
        viewport: { width: CARD_WIDTH + 2 * CARD_MARGIN, height: 800 },
        deviceScaleFactor: DEVICE_SCALE_FACTOR,
        colorScheme: 'light',
        locale: 'en-US',
        timezoneId: 'UTC',
    });
    const problemsOf = new WeakMap<object, string[]>();
    const height = async (page: import('playwright-core').Page) =>
        Math.round((await page.locator('#frame').boundingBox())?.height ?? 0);
    return {
        async open(card) {
            const problems: string[] = [];
            const page = await context.newPage();
            problemsOf.set(page, problems);
            // Everything the page needs is inlined; a request would mean the card (or the renderer) reaches out.
            await page.route('**/*', (route) => {
                problems.push(`network: the page asked for ${route.request().url()}`);
                return route.abort();
            });
            page.on('console', (message) => {
                if (message.type() === 'warning' || message.type() === 'error') {
                    problems.push(`console ${message.type()}: ${message.text()}`);
                }
            });
            page.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
            await page.setContent(pageHtml());
            await page.addScriptTag({ path: rendererPath });
            await page.addScriptTag({ content: pageScript });
            const rendered = (await page.evaluate(
                `window.renderDocCard(${JSON.stringify(card.json)}, ${JSON.stringify(teamsHostConfig)})`,
            )) as string[];
            problems.push(...rendered);
            return { page, rendered: { problems: [...problems], height: await height(page) } };
        },
        async expand(page) {
            const problems = problemsOf.get(page) ?? [];
            const before = problems.length;
            const toggle = page.locator('.ac-pushButton', { hasText: 'Details' });
            if ((await toggle.count()) !== 1) {
                return { problems: ['the card has no Details toggle'], height: await height(page) };
            }
            await toggle.click();
            const layout = (await page.evaluate('window.checkDocCardLayout()')) as string[];
            return { problems: [...problems.slice(before), ...layout], height: await height(page) };
        },
        async close() {
            await context.close();
            await browser.close();
        },
    };
}

/**
 * Renders each card in Chromium and writes `<name>.json` and, when the renderer had nothing to say, `<name>.png` (the
 * card as posted, collapsed) and `<name>-details.png` (with its Details shown). Returns how many cards failed; every
 * reason has been printed.
 */
export async function renderDocCards(cards: DocCard[], options: RenderOptions): Promise<number> {
    const { dir, chromiumPath } = options;
    mkdirSync(dir, { recursive: true });
    const browser = await launchCardBrowser(chromiumPath);
    let failed = 0;
    try {
        for (const card of cards) {
            const { page, rendered } = await browser.open(card);
            const problems = [...rendered.problems];
            if (rendered.height > COLLAPSED_MAX_HEIGHT) {
                problems.push(`the collapsed card is ${rendered.height} px tall, over ${COLLAPSED_MAX_HEIGHT} px`);
            }
            const jsonFile = path.join(dir, `${card.name}.json`);
            await writeJson(jsonFile, card.json);
            console.log(`wrote ${path.relative(process.cwd(), jsonFile)}`);
            const shots: { file: string; what: string; shot?: Buffer }[] = [
                { file: path.join(dir, `${card.name}.png`), what: `collapsed, ${rendered.height} px` },
            ];
            if (problems.length === 0) {
                shots[0]!.shot = await page.locator('#shot').screenshot({ animations: 'disabled', caret: 'hide' });
                const expanded = await browser.expand(page);
                problems.push(...expanded.problems);
                shots.push({
                    file: path.join(dir, `${card.name}-details.png`),
                    what: `details shown, ${expanded.height} px`,
                    shot: await page.locator('#shot').screenshot({ animations: 'disabled', caret: 'hide' }),
                });
            }
            for (const { file, what, shot } of shots) {
                if (problems.length > 0 || !shot) {
                    // No image for a card the renderer complained about: a stale one would pass for a current one.
                    if (existsSync(file)) {
                        unlinkSync(file);
                    }
                    continue;
                }
                const { png, remapped } = toPalettePng(shot);
                writeFileSync(file, png);
                const size = `${Math.round(png.length / 1024)} KB, ${(remapped * 100).toFixed(2)}% of pixels remapped`;
                console.log(`wrote ${path.relative(process.cwd(), file)} (${what}; ${size}): ${card.caption}`);
                if (remapped > MAX_REMAPPED_SHARE) {
                    problems.push(
                        `${(remapped * 100).toFixed(1)}% of the pixels lost their colour to the 256-colour palette`,
                    );
                }
                if (png.length > PNG_MAX_BYTES) {
                    problems.push(
                        `${path.basename(file)} is ${png.length} bytes, over the ${PNG_MAX_BYTES} byte budget`,
                    );
                }
            }
            if (problems.length > 0) {
                failed++;
                console.error(`${card.name}: ${problems.length} problem(s):`);
                for (const problem of problems) {
                    console.error(`  - ${problem}`);
                }
            }
            await page.close();
        }
    } finally {
        await browser.close();
    }

    // Files of cards that are no longer in the list would stay behind and mislead: the test flags them too.
    const expected = new Set(cards.flatMap((c) => docCardFiles(c.name)));
    for (const file of readdirSync(dir)) {
        if (!expected.has(file)) {
            console.warn(`${path.relative(process.cwd(), path.join(dir, file))} is not a card this script writes`);
        }
    }
    return failed;
}

/** The files docs/cards holds for one card. */
export function docCardFiles(name: string): string[] {
    return [`${name}.json`, `${name}.png`, `${name}-details.png`];
}

async function main(): Promise<void> {
    const failed = await renderDocCards(buildDocCards(), {
        dir: DOCS_CARDS_DIR,
        chromiumPath: process.env.CHROMIUM_PATH || '/usr/bin/chromium',
    });
    if (failed > 0) {
        throw new Error(`${failed} card(s) did not render cleanly: see above`);
    }
}

if (require.main === module) {
    main().catch((err: unknown) => {
        console.error(err instanceof Error ? err.message : err);
        process.exit(1);
    });
}

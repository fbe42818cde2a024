import { kindInfo, parsePrivateEndpointId, parseServerId } from './ids';
import { originSourceLabel } from './origin';
import type { PublicNetworkAccess } from './pec';
import {
    type BypassInfo,
    requiredApprovalsOf,
    type ApprovalRequest,
    type DecisionAction,
    type Person,
    type RequestStatus,
} from './request';

/**
 * The card as plain data, independent of Adaptive Cards or HTML, so the Teams card and the web page show the same facts
 * and the same risk warnings. Every string here is already stripped of control characters and capped, but NOT escaped
 * for any markup: each renderer escapes for its own format.
 */

/** Longer response texts are refused by the input and cut here, so one approver cannot blow the card's size budget. */
export const RESPONSE_TEXT_MAX_LENGTH = 500;
export const MESSAGE_MAX_LENGTH = 2000;
/** Teams' limit: at most 60 users get an automatic refresh (a user specific view) of one card. */
export const REFRESH_USER_IDS_MAX = 60;
const VALUE_MAX_LENGTH = 300;
const REASON_MAX_LENGTH = 500;
const TAG_MAX_COUNT = 15;
const TAG_PART_MAX_LENGTH = 100;

export type CardTone = 'default' | 'accent' | 'good' | 'warning' | 'attention';
/**
 * Who a card is drawn for: an approver who may decide now (the buttons), a viewer (the status only), or everyone at
 * once: the card posted to a channel, which Teams shows to whoever has no view of their own. The shared card never
 * carries live decide buttons; it says who may decide, and each approver's client asks the bot for their own view.
 */
export type CardAudience = 'approver' | 'viewer' | 'shared';
export type CardDelivery = 'bot' | 'webhook';

export interface CardOptions {
    /** e.g. https://portal.azure.com (sovereign clouds have their own). */
    portalUrl: string;
    /** The function app's public URL, for the web decision page. */
    publicBaseUrl: string;
    ourTenantId: string;
    audience: CardAudience;
    delivery: CardDelivery;
    /** An inline error to show, e.g. 'A reject needs a response text'. */
    error?: string;
    /** Prefill for the response-text input (what the approver typed before the error). */
    responseText?: string;
    /**
     * The single-use token for the web page link. Only the card as first posted has it (the store keeps its hash), so
     * cards rendered later carry no link while the request is pending.
     */
    linkToken?: string;
    /**
     * Teams users (MRIs, `29:…`) whose client asks the bot for their own view by itself (`refresh.userIds`, at most
     * 60). Undefined leaves the list out (Teams then refreshes for everyone in conversations of up to 60 people); an
     * empty list refreshes nobody by itself. Only used for bot delivery while the request is open.
     */
    refreshUserIds?: readonly string[];
}

export interface CardFact {
    label: string;
    value: string;
    /**
     * The value must reach the reader exactly as is, never through a markup processor: text the requester controls, and
     * identifiers an approver compares character by character (a backslash-escaped id on a client that shows the
     * backslashes is a different-looking id).
     */
    literal?: boolean;
    tone?: CardTone;
}

export interface CardSection {
    title: string;
    facts: CardFact[];
}

export type CardAction =
    | { type: 'execute'; verb: DecisionAction; title: string; data: { requestId: string } }
    | { type: 'openUrl'; title: string; url: string };

export interface CardServer {
    kindLabel: string;
    /** What one resource of the kind is called ("Server", "Vault", "Account"...), for the labels. */
    noun: string;
    name: string;
    resourceGroup: string;
    subscriptionId: string;
    location: string;
    publicNetworkAccess: PublicNetworkAccess;
    approvedPecCount: number;
    approvedUntrustedPecCount: number;
    tags: { key: string; value: string }[];
}

export interface CardConnection {
    name: string;
    /** The private endpoint's full resource id: the one thing that says where the data can go. */
    privateEndpointId: string;
    /** Undefined when the id could not be parsed; never treated as trusted then. */
    privateEndpointSubscriptionId?: string;
    trusted: boolean;
    /** The home tenant of the endpoint's subscription, when established; never the caller's claim. */
    tenantId?: string;
    /** Whether that tenant is another than ours; undefined when the tenant is unknown or the endpoint trusted. */
    foreignTenant?: boolean;
    /** How the origin was established, in words: trusted list, looked up, mapped, unknown. */
    originLabel: string;
}

export interface CardRequester {
    /** False when the sweep found the PEC and no event told us who created it. */
    known: boolean;
    /** Name, else UPN, else object or app id, else 'unknown (found while checking the server)'. */
    display: string;
    name?: string;
    upn?: string;
    objectId?: string;
    appId?: string;
    tenantId?: string;
    foreignTenant?: boolean;
    ipAddress?: string;
}

export interface CardResponseInput {
    label: string;
    placeholder: string;
    value: string;
    maxLength: number;
}

export interface CardView {
    requestId: string;
    status: RequestStatus;
    audience: CardAudience;
    delivery: CardDelivery;
    title: string;
    statusLine: { text: string; tone: CardTone };
    /** A line under the status for everyone: on the shared card, who may decide and where. */
    note?: string;
    error?: string;
    /** Risk warnings, most important first. Empty means nothing was flagged, not that the request is safe. */
    warnings: string[];
    server: CardServer;
    connection: CardConnection;
    requester: CardRequester;
    /** The requester's message (untrusted free text, may hold newlines); '' when there is none. */
    message: string;
    /** `createdAt` as `YYYY-MM-DD HH:MM UTC`. */
    openedAt: string;
    /**
     * What decides the click, for the top of a compact card: the server, where the endpoint comes from, who asked.
     * Repeated in `sections`, which a compact card keeps behind its Details toggle.
     */
    keyFacts: CardFact[];
    /** The facts above, labelled and ordered for display: server, connection, requester. */
    sections: CardSection[];
    /** Only with the execute actions. */
    responseInput?: CardResponseInput;
    actions: CardAction[];
    /** `userIds` undefined: not known, left out of the card. */
    refresh?: { verb: 'refresh'; data: { requestId: string }; userIds?: string[] };
}

export function buildCardView(request: ApprovalRequest, options: CardOptions): CardView {
    const { facts } = request;
    const server = serverOf(request);
    const connection = connectionOf(request, options);
    const requester = requesterOf(request);
    const canDecide = request.status === 'pending' && options.audience === 'approver' && options.delivery === 'bot';

    const actions: CardAction[] = [];
    if (canDecide) {
        actions.push(
            { type: 'execute', verb: 'approve', title: 'Approve', data: { requestId: request.id } },
            { type: 'execute', verb: 'reject', title: 'Reject', data: { requestId: request.id } },
        );
    }
    if (request.status === 'pending' && options.linkToken) {
        actions.push({
            type: 'openUrl',
            // Webhook cards cannot carry clicks back to us, so the page is where the decision is made.
            title:
                options.delivery === 'webhook' && options.audience === 'approver' ? 'Decide in browser' : 'Review page',
            url: reviewUrl(options.publicBaseUrl, request.id, options.linkToken),
        });
    }
    actions.push({ type: 'openUrl', title: 'Open in Azure portal', url: portalLink(request.pecId, options) });

    const view: CardView = {
        requestId: request.id,
        status: request.status,
        audience: options.audience,
        delivery: options.delivery,
        title: `Private endpoint connection to ${server.kindLabel} ${server.name}`,
        statusLine: statusLineOf(request),
        warnings: warningsOf(server, connection, requester),
        server,
        connection,
        requester,
        message: cleanText(facts.requestMessage, MESSAGE_MAX_LENGTH, { multiline: true }),
        openedAt: formatUtc(request.createdAt),
        keyFacts: keyFactsOf(server, connection, requester),
        sections: sectionsOf(server, connection, requester, formatUtc(request.createdAt)),
        actions,
    };
    const error = cleanText(options.error, REASON_MAX_LENGTH);
    if (error) {
        view.error = error;
    }
    if (canDecide) {
        view.responseInput = {
            label: 'Response text (saved as the connection description; required to reject)',
            placeholder: 'Why approve or reject this connection?',
            value: cleanText(options.responseText, RESPONSE_TEXT_MAX_LENGTH, { multiline: true }),
            maxLength: RESPONSE_TEXT_MAX_LENGTH,
        };
    }
    // Every bot card asks for a per-user view while the request is open: approvers get the buttons, everyone else the
    // status. The userIds name who refreshes automatically; left out, Teams decides by the conversation's size.
    if (request.bypass) {
        asBypassAlert(view, request);
    }
    if (options.audience === 'shared' && options.delivery === 'bot' && request.status === 'pending') {
        view.note = sharedNote(request.bypass ? 'Keep and Revoke' : 'Approve and Reject', !!options.linkToken);
    }
    if (options.delivery === 'bot' && (request.status === 'pending' || request.status === 'decided')) {
        view.refresh = { verb: 'refresh', data: { requestId: request.id } };
        if (options.refreshUserIds) {
            // Teams honours at most 60; the caller already picked which (refreshIds.ts), this only keeps the card valid.
            view.refresh.userIds = options.refreshUserIds.filter((id) => id.length > 0).slice(0, REFRESH_USER_IDS_MAX);
        }
    }
    return view;
}

/** The shared card's line on who may decide, and where the buttons are. */
function sharedNote(buttons: string, hasLink: boolean): string {
    return (
        `Only members of the approver groups can decide: they see ${buttons} in their own view of this card. ` +
        `If the buttons do not appear, choose Refresh card in the message's menu${hasLink ? ', or open the review page' : ''}.`
    );
}

function serverOf(request: ApprovalRequest): CardServer {
    const { facts } = request;
    let name: string;
    let resourceGroup: string;
    let subscriptionId: string;
    try {
        const ref = parseServerId(facts.serverId);
        ({ name, resourceGroup, subscriptionId } = ref);
    } catch {
        // The facts were captured from ARM, so this should not happen; a card with the raw id beats no card at all.
        name = cleanText(facts.serverId, VALUE_MAX_LENGTH) || 'unknown';
        resourceGroup = 'unknown';
        subscriptionId = 'unknown';
    }
    const tags = Object.entries(facts.serverTags ?? {})
        .slice(0, TAG_MAX_COUNT)
        .map(([key, value]) => ({
            key: cleanText(key, TAG_PART_MAX_LENGTH),
            value: cleanText(String(value), TAG_PART_MAX_LENGTH),
        }));
    return {
        kindLabel: kindInfo[facts.serverKind]?.label ?? cleanText(facts.serverKind, VALUE_MAX_LENGTH),
        noun: kindInfo[facts.serverKind]?.noun ?? 'Resource',
        name: cleanText(name, VALUE_MAX_LENGTH),
        resourceGroup: cleanText(resourceGroup, VALUE_MAX_LENGTH),
        subscriptionId: cleanText(subscriptionId, VALUE_MAX_LENGTH),
        location: cleanText(facts.serverLocation, VALUE_MAX_LENGTH) || 'unknown',
        publicNetworkAccess: facts.publicNetworkAccess,
        approvedPecCount: facts.approvedPecCount,
        approvedUntrustedPecCount: facts.approvedUntrustedPecCount,
        tags,
    };
}

function connectionOf(request: ApprovalRequest, options: { ourTenantId: string }): CardConnection {
    const { facts } = request;
    let subscriptionId = facts.privateEndpointSubscriptionId;
    if (!subscriptionId) {
        try {
            subscriptionId = parsePrivateEndpointId(facts.privateEndpointId).subscriptionId;
        } catch {
            subscriptionId = undefined;
        }
    }
    const connection: CardConnection = {
        name: cleanText(facts.pecName, VALUE_MAX_LENGTH) || 'unknown',
        privateEndpointId: cleanText(facts.privateEndpointId, VALUE_MAX_LENGTH * 2) || 'unknown',
        // An unknown subscription is never trusted, whatever the stored flag says.
        trusted: facts.privateEndpointTrusted && subscriptionId !== undefined,
        originLabel: originSourceLabel(
            facts.privateEndpointTrusted && subscriptionId !== undefined ? 'trusted-list' : facts.originSource,
        ),
    };
    if (facts.privateEndpointTenantId && !connection.trusted) {
        connection.tenantId = cleanText(facts.privateEndpointTenantId, VALUE_MAX_LENGTH);
        connection.foreignTenant = facts.privateEndpointTenantId.toLowerCase() !== options.ourTenantId.toLowerCase();
    }
    if (subscriptionId) {
        connection.privateEndpointSubscriptionId = cleanText(subscriptionId, VALUE_MAX_LENGTH);
    }
    return connection;
}

function requesterOf(request: ApprovalRequest): CardRequester {
    const r = request.requester;
    if (!r) {
        return { known: false, display: 'unknown (found while checking the server)' };
    }
    const requester: CardRequester = { known: true, display: '' };
    const fields = ['name', 'upn', 'objectId', 'appId', 'tenantId', 'ipAddress'] as const;
    for (const field of fields) {
        const value = cleanText(r[field], VALUE_MAX_LENGTH);
        if (value) {
            requester[field] = value;
        }
    }
    if (request.requesterForeignTenant !== undefined) {
        requester.foreignTenant = request.requesterForeignTenant;
    }
    requester.display =
        requester.name ??
        requester.upn ??
        (requester.objectId ? `object id ${requester.objectId}` : undefined) ??
        (requester.appId ? `application ${requester.appId}` : undefined) ??
        'unknown';
    return requester;
}

function warningsOf(server: CardServer, connection: CardConnection, requester: CardRequester): string[] {
    const warnings: string[] = [];
    if (!connection.trusted) {
        warnings.push(
            connection.privateEndpointSubscriptionId
                ? `Private endpoint subscription ${connection.privateEndpointSubscriptionId} is not in the trusted list`
                : 'The private endpoint id could not be parsed: its subscription is unknown, so it is not trusted',
        );
    }
    if (connection.foreignTenant === true) {
        warnings.push(`Private endpoint subscription belongs to ANOTHER tenant ${connection.tenantId ?? ''}`.trim());
    } else if (!connection.trusted && connection.tenantId === undefined) {
        warnings.push("The endpoint subscription's tenant could not be established: its origin is unknown");
    }
    if (requester.foreignTenant === true) {
        warnings.push(`Requester is from another tenant ${requester.tenantId ?? '(tenant id missing)'}`);
    }
    if (server.publicNetworkAccess === 'Enabled') {
        warnings.push('Public network access is Enabled');
    } else if (server.publicNetworkAccess === 'Unknown') {
        warnings.push('Public network access could not be read');
    }
    const n = server.approvedUntrustedPecCount;
    if (n > 0) {
        warnings.push(
            n === 1
                ? '1 approved connection already comes from an untrusted subscription'
                : `${n} approved connections already come from untrusted subscriptions`,
        );
    }
    return warnings;
}

function keyFactsOf(server: CardServer, connection: CardConnection, requester: CardRequester): CardFact[] {
    // The tenant's id is in the risk list above and in the details: here the flag is enough.
    const tenant = requester.foreignTenant
        ? ' (ANOTHER TENANT)'
        : requester.known && requester.tenantId
          ? ' (our tenant)'
          : '';
    return [
        { label: server.noun, value: `${server.name} (${server.kindLabel})`, literal: true },
        {
            label: 'Endpoint from',
            value: connection.privateEndpointSubscriptionId
                ? `${connection.privateEndpointSubscriptionId} (${connection.trusted ? 'trusted' : 'NOT TRUSTED'})`
                : 'unknown subscription (NOT TRUSTED)',
            literal: true,
            tone: connection.trusted ? 'good' : 'attention',
        },
        {
            label: 'Requested by',
            value: `${requester.upn && requester.upn !== requester.display ? `${requester.display} <${requester.upn}>` : requester.display}${tenant}`,
            literal: true,
            tone: requester.foreignTenant ? 'attention' : requester.known ? 'default' : 'warning',
        },
    ];
}

function sectionsOf(
    server: CardServer,
    connection: CardConnection,
    requester: CardRequester,
    openedAt: string,
): CardSection[] {
    const serverFacts: CardFact[] = [
        { label: 'Type', value: server.kindLabel },
        { label: server.noun, value: server.name },
        { label: 'Resource group', value: server.resourceGroup },
        { label: 'Subscription', value: server.subscriptionId },
        { label: 'Location', value: server.location },
        {
            label: 'Public network access',
            value: server.publicNetworkAccess,
            tone: server.publicNetworkAccess === 'Disabled' ? 'default' : 'attention',
        },
        {
            label: 'Approved connections',
            value:
                server.approvedUntrustedPecCount > 0
                    ? `${server.approvedPecCount} (${server.approvedUntrustedPecCount} from untrusted subscriptions)`
                    : String(server.approvedPecCount),
            tone: server.approvedUntrustedPecCount > 0 ? 'attention' : 'default',
        },
        ...server.tags.map((t) => ({ label: `Tag ${t.key}`, value: t.value || '(empty)' })),
    ];
    const connectionFacts: CardFact[] = [
        { label: 'Connection', value: connection.name, literal: true },
        { label: 'Private endpoint', value: connection.privateEndpointId, literal: true },
        {
            label: 'Endpoint subscription',
            value: connection.privateEndpointSubscriptionId ?? 'unknown',
            literal: true,
            tone: connection.trusted ? 'good' : 'attention',
        },
        {
            label: 'Trusted',
            value: connection.trusted ? 'Yes' : 'NO: not in the trusted subscription list',
            tone: connection.trusted ? 'good' : 'attention',
        },
        ...(connection.trusted
            ? []
            : [
                  {
                      label: 'Endpoint tenant',
                      value: connection.tenantId
                          ? `${connection.tenantId}${connection.foreignTenant ? ' (ANOTHER TENANT)' : ' (ours)'}`
                          : 'unknown',
                      literal: true,
                      tone: connection.foreignTenant === false ? ('default' as const) : ('attention' as const),
                  },
              ]),
        { label: 'Origin from', value: connection.originLabel },
    ];
    const requesterFacts: CardFact[] = [];
    if (!requester.known) {
        requesterFacts.push({ label: 'Requester', value: requester.display, tone: 'warning' });
    } else {
        requesterFacts.push({ label: 'Name', value: requester.display, literal: true });
        if (requester.upn && requester.upn !== requester.display) {
            requesterFacts.push({ label: 'UPN', value: requester.upn, literal: true });
        }
        if (requester.objectId) {
            requesterFacts.push({ label: 'Object id', value: requester.objectId, literal: true });
        }
        if (requester.appId) {
            requesterFacts.push({ label: 'App id', value: requester.appId, literal: true });
        }
        if (requester.tenantId || requester.foreignTenant) {
            requesterFacts.push({
                label: 'Tenant',
                value: `${requester.tenantId ?? 'unknown'}${requester.foreignTenant ? ' (ANOTHER TENANT)' : ''}`,
                literal: true,
                tone: requester.foreignTenant ? 'attention' : 'default',
            });
        }
        if (requester.ipAddress) {
            requesterFacts.push({ label: 'IP address', value: requester.ipAddress, literal: true });
        }
    }
    requesterFacts.push({ label: 'Opened', value: openedAt });
    return [
        { title: server.noun, facts: serverFacts },
        { title: 'Private endpoint connection', facts: connectionFacts },
        { title: 'Requested by', facts: requesterFacts },
    ];
}

function statusLineOf(request: ApprovalRequest): CardView['statusLine'] {
    const decision = request.decision;
    const people =
        decision?.approvers && decision.approvers.length > 1 ? decision.approvers : decision ? [decision.by] : [];
    const by = people.length > 0 ? people.map(personName).join(' and ') : 'unknown';
    const reason = cleanText(request.outcome?.reason, REASON_MAX_LENGTH);
    switch (request.status) {
        case 'pending': {
            const required = requiredApprovalsOf(request);
            const given = request.approvals ?? [];
            if (required <= 1) {
                return { text: 'Waiting for approval', tone: 'accent' };
            }
            const names = given.length > 0 ? ` (${given.map((a) => personName(a.by)).join(', ')})` : '';
            return { text: `Waiting for approvals: ${given.length} of ${required}${names}`, tone: 'accent' };
        }
        case 'decided':
            return { text: `${decision?.action === 'reject' ? 'Rejecting' : 'Approving'}… by ${by}`, tone: 'accent' };
        case 'applied': {
            const text = cleanText(decision?.text, RESPONSE_TEXT_MAX_LENGTH);
            const verb = decision?.action === 'reject' ? 'Rejected' : 'Approved';
            const at = decision ? ` at ${formatUtc(decision.at)}` : '';
            return {
                text: `${verb} by ${by}${at}${text ? `: ${text}` : ''}`,
                tone: decision?.action === 'reject' ? 'attention' : 'good',
            };
        }
        case 'failed': {
            const what = decision
                ? `the ${decision.action === 'reject' ? 'rejection' : 'approval'} by ${by}`
                : 'the decision';
            return { text: `Could not apply ${what}: ${reason || 'unknown error'}`, tone: 'attention' };
        }
        case 'expired':
            return { text: reason ? `Expired: ${reason}` : 'Expired', tone: 'warning' };
        case 'superseded':
            return { text: reason ? `Superseded: ${reason}` : 'Superseded', tone: 'warning' };
    }
}

function personName(person: Person): string {
    return (
        cleanText(person.name, VALUE_MAX_LENGTH) ||
        cleanText(person.upn, VALUE_MAX_LENGTH) ||
        cleanText(person.objectId, VALUE_MAX_LENGTH) ||
        'unknown'
    );
}

function portalLink(pecId: string, options: CardOptions): string {
    // ARM ids hold only path-safe characters, but the id came from an event: encode each segment so nothing in it can
    // turn into a query, a fragment or another host.
    const path = pecId
        .trim()
        .split('/')
        .map((s) => encodeURIComponent(s))
        .join('/');
    const resource = path.startsWith('/') ? path : `/${path}`;
    return `${trimSlashes(options.portalUrl)}/#@${encodeURIComponent(options.ourTenantId)}/resource${resource}`;
}

/** The web decision page of a request, with its link token. */
export function reviewUrl(publicBaseUrl: string, requestId: string, linkToken?: string): string {
    const url = `${trimSlashes(publicBaseUrl)}/api/requests/${encodeURIComponent(requestId)}`;
    return linkToken ? `${url}?token=${encodeURIComponent(linkToken)}` : url;
}

function trimSlashes(url: string): string {
    return url.trim().replace(/\/+$/, '');
}

/** `2024-05-01T10:07:33.123Z` → `2024-05-01 10:07 UTC`; anything unparseable is shown as given (cleaned). */
export function formatUtc(iso: string): string {
    const date = new Date(iso);
    if (Number.isNaN(date.getTime())) {
        return cleanText(iso, 64) || 'unknown';
    }
    const s = date.toISOString();
    return `${s.slice(0, 10)} ${s.slice(11, 16)} UTC`;
}

/*
 * C0/C1 controls can corrupt a renderer or a log; bidi overrides and isolates (Trojan Source) can make an id read as a
 * different id; zero-width spaces and the BOM hide differences between look-alike values. ZWJ/ZWNJ stay: some scripts
 * and emoji need them.
 */
const invisible =
    // eslint-disable-next-line no-control-regex -- matching control characters is the point
    /[\u0000-\u0008\u000B\u000C\u000E-\u001F\u007F-\u009F\u061C\u200B\u200E\u200F\u202A-\u202E\u2060\u2066-\u2069\uFEFF]/g;

/**
 * Strips invisible and control characters and normalises line breaks (kept only when `multiline`, otherwise each
 * break and the spaces around it become one space). No trimming, no cap, no markup escaping.
 */
export function stripInvisible(value: string, options?: { multiline?: boolean }): string {
    const text = String(value)
        .replace(/\r\n?|[\u2028\u2029\u0085]/g, '\n')
        .replace(/\t/g, ' ')
        .replace(invisible, '');
    return options?.multiline ? text : text.replace(/[^\S\n]*\n\s*/g, ' ');
}

/**
 * Makes untrusted text safe to show: `stripInvisible`, then trims, squeezes blank lines, and caps the length with '…'.
 * No markup escaping.
 */
export function cleanText(value: string | undefined | null, max: number, options?: { multiline?: boolean }): string {
    if (value === undefined || value === null) {
        return '';
    }
    let text = stripInvisible(value, options);
    text = options?.multiline
        ? text
              .replace(/[ ]+\n/g, '\n')
              .replace(/\n{3,}/g, '\n\n')
              .trim()
        : text.trim();
    if (text.length <= max) {
        return text;
    }
    let cut = Math.max(0, max - 1);
    // Never split a surrogate pair: a lone half renders as a replacement character.
    const code = text.charCodeAt(cut - 1);
    if (code >= 0xd800 && code <= 0xdbff) {
        cut -= 1;
    }
    return `${text.slice(0, cut)}…`;
}

/**
 * A bypass alert is drawn on the request card's layout with its own words: the connection is already Approved, so
 * Approve means Keep and Reject means Revoke, and the card says how it was found and what ARM's description held.
 */
function asBypassAlert(view: CardView, request: ApprovalRequest): void {
    const bypass = request.bypass;
    if (!bypass) {
        return;
    }
    view.title = `ALERT: connection to ${view.server.kindLabel} ${view.server.name} approved without the gate`;
    const decision = request.decision;
    const by = decision ? personName(decision.by) : 'unknown';
    const text = cleanText(decision?.text, RESPONSE_TEXT_MAX_LENGTH);
    const verb = decision?.action === 'approve' ? 'Kept' : 'Revoked';
    switch (request.status) {
        case 'pending':
            view.statusLine = {
                text:
                    bypass.detectedBy === 'baseline'
                        ? 'Approved before the gate watched this server: Revoke or Keep'
                        : 'Approved without the gate: Revoke or Keep',
                tone: 'attention',
            };
            break;
        case 'decided':
            view.statusLine = { text: `${verb === 'Kept' ? 'Keeping' : 'Revoking'}… by ${by}`, tone: 'accent' };
            break;
        case 'applied':
            view.statusLine = {
                text: `${verb} by ${by}${text ? `: ${text}` : ''}`,
                tone: verb === 'Kept' ? 'good' : 'attention',
            };
            break;
        default:
            break;
    }
    for (const action of view.actions) {
        if (action.type === 'execute') {
            action.title = action.verb === 'approve' ? 'Keep' : 'Revoke';
        }
    }
    if (view.responseInput) {
        view.responseInput.label = 'Response text (saved as the connection description; required to revoke)';
        view.responseInput.placeholder = 'Why keep or revoke this connection?';
    }
    view.warnings.unshift(
        bypass.detectedBy === 'baseline'
            ? 'This connection was already approved when the gate started watching this server'
            : 'This connection was approved WITHOUT the gate (by its creator, or in the portal or CLI)',
    );
    const seenBy: Record<BypassInfo['detectedBy'], string> = {
        event: 'its event',
        sweep: 'the sweep (no event reported it)',
        baseline: "the sweep's first look at this server (baseline)",
        superseded: 'a request that was pending when it was approved outside',
    };
    view.sections.unshift({
        title: 'Approved without the gate',
        facts: [
            {
                label: 'Description in ARM',
                value: cleanText(bypass.description, MESSAGE_MAX_LENGTH) || '(none)',
                literal: true,
            },
            { label: 'Found by', value: seenBy[bypass.detectedBy] },
            {
                label: 'Policy',
                value: bypass.ruleId ? `bypass rule ${bypass.ruleId}: ${bypass.action}` : `default: ${bypass.action}`,
            },
        ],
    });
}

import { ValidationError } from './errors';
import type { ServerKind } from './ids';
import type { OriginSource } from './origin';
import type { PublicNetworkAccess } from './pec';

/**
 * A request: one approval question about one pending PEC. Its lifecycle, from the design:
 *
 *   pending → decided → applied | failed
 *   pending → expired | superseded
 *   decided → superseded (the PEC was decided outside, or removed, before we applied)
 *
 * Every function here is pure: the store makes each transition a conditional write, so the first writer wins.
 */

export const requestStatuses = ['pending', 'decided', 'applied', 'failed', 'expired', 'superseded'] as const;
export type RequestStatus = (typeof requestStatuses)[number];

export type DecisionAction = 'approve' | 'reject';

export interface Person {
    objectId?: string;
    name?: string;
    upn?: string;
    tenantId?: string;
    appId?: string;
}

/** Who created the private endpoint, from the event's claims. Absent when the request came from a sweep. */
export type Requester = Person & { ipAddress?: string };

/** Why a decision was made without a person: a policy rule, or the request's time-to-live running out. */
export type AutoCause = { kind: 'policy'; ruleId: string } | { kind: 'expiry'; afterHours: number };

export interface Decision {
    /** For a bypass alert: approve is Keep, reject is Revoke. */
    action: DecisionAction;
    /** The person who decided (the last of several approvers); for an automatic decision, a label naming the cause. */
    by: Person;
    text: string;
    at: string;
    /** Set when no person decided. */
    auto?: AutoCause;
    /** Every approver, in order, when the request needed more than one approval. */
    approvers?: Person[];
    /** Set on a decision about a bypass alert: ARM's description then says Kept or Revoked. */
    bypass?: true;
}

/**
 * A connection that became Approved without a decision of ours. Its request is an alert: it waits for Revoke (reject)
 * or Keep (approve), or was decided by a bypass rule (revoke) on arrival.
 */
export interface BypassInfo {
    /** Which path saw it first: an event, the sweep, the sweep's first look at a scope (baseline), or a pending request
     * whose connection was approved outside. */
    detectedBy: 'event' | 'sweep' | 'baseline' | 'superseded';
    /** The bypass rule that matched; absent for the default (alert). */
    ruleId?: string;
    action: 'alert' | 'revoke';
    /** ARM's description of the connection when it was found Approved: whatever the approver outside wrote. */
    description: string;
}

/** Where the card was delivered, so it can be updated later. */
export interface CardRef {
    channel: 'bot' | 'webhook';
    serviceUrl?: string;
    conversationId?: string;
    activityId?: string;
    postedAt: string;
}

/** The facts shown to the approver, captured from ARM when the request was opened. */
export interface RequestFacts {
    serverKind: ServerKind;
    serverId: string;
    serverLocation: string;
    publicNetworkAccess: PublicNetworkAccess;
    serverTags: Record<string, string>;
    pecName: string;
    privateEndpointId: string;
    privateEndpointSubscriptionId?: string;
    privateEndpointTrusted: boolean;
    /**
     * The home tenant of the endpoint's subscription, when it was established (SUBSCRIPTION_TENANTS, or looked up from
     * ARM); never the event's `tid` claim.
     */
    privateEndpointTenantId?: string;
    /** How the origin was established; absent on requests opened before origins were looked up (read as unknown). */
    originSource?: OriginSource;
    requestMessage: string;
    approvedPecCount: number;
    /** Approved PECs whose private endpoint sits in an untrusted subscription: existing exposure. */
    approvedUntrustedPecCount: number;
}

/**
 * The web page link on the card. Only the token's hash is stored; the key signs the page's CSRF tokens and never
 * leaves the store, so holding the link is not enough to forge a form post for someone else.
 */
export interface LinkGrant {
    tokenHash: string;
    expiresAt: string;
    usedAt?: string;
    pageKey: string;
}

export interface ApprovalRequest {
    /** Random, at least 128 bits. Correlation only: everything is re-read before acting. */
    id: string;
    pecId: string;
    status: RequestStatus;
    facts: RequestFacts;
    requester?: Requester;
    /** Whether the requester's tenant differs from ours; undefined when the event carried no tenant. */
    requesterForeignTenant?: boolean;
    correlationId: string;
    /**
     * The Event Grid event that opened the request, when one did. A redelivery carries the same id, so it can skip the
     * ARM read; the correlation id cannot serve so, since whoever calls ARM may choose it.
     */
    eventId?: string;
    createdAt: string;
    updatedAt: string;
    decision?: Decision;
    card?: CardRef;
    /** Set while one invocation posts the card, so concurrent deliveries post it once. */
    cardClaimedAt?: string;
    /**
     * When a bot post of this request's card went without an answer (timeout, 5xx, a dropped connection): the card may
     * be in the channel. The next attempt looks for it there before it posts again.
     */
    cardPostUnknownAt?: string;
    /**
     * Set when a card was posted although an earlier post's outcome stayed unknown (the channel could not be read, or
     * too many messages came since): the earlier one may have made a second card. From this time on, bot cards naming
     * the request other than `card` are turned into a "duplicate of" note, at once and by the sweep until it is done.
     */
    cardDuplicateCheckSince?: string;
    /** Why the request reached a final state other than applied (superseded, expired, failed). */
    outcome?: { at: string; reason: string };
    link?: LinkGrant;
    /**
     * When an apply was about to send this decision's PUT (written just before it goes out, and kept when the apply
     * fails): the evidence that a decided state found in ARM later may be the gate's own, under a description ARM
     * rewrote. Without it, only the exact description the gate sends counts as its own.
     */
    putSentAt?: string;
    /** Held by the queue message that is applying the decision, so a duplicate message does not PUT twice. */
    applying?: {
        at: string;
        messageId: string;
        /**
         * ARM's long-running operation the PUT started (the SDK poller's serialized state): a later delivery polls it
         * instead of sending the PUT again while it runs.
         */
        operation?: string;
    };
    /** The card state (`cardStateOf`) the posted card last showed; behind until the card has been updated. */
    cardShows?: string;
    /** Distinct approvals this request needs (a policy's requireApprovals); absent means one. */
    requiredApprovals?: number;
    /** Approvals given so far while more are needed; the last one needed turns the request into `decided`. */
    approvals?: Decision[];
    /**
     * Set when the request was opened with no known requester and therefore needs UNKNOWN_REQUESTER_APPROVALS
     * approvals (the self-approval rule cannot hold without knowing who asked).
     */
    unknownRequester?: boolean;
    /** The policy rule that matched when the request was opened; absent when none did. */
    policyRuleId?: string;
    /** Set when the request is an alert about a connection approved without the gate (see BypassInfo). */
    bypass?: BypassInfo;
    /** Reminders sent in the card's thread. */
    reminders?: { count: number; lastAt: string };
    /**
     * Set on a failed request once the sweep stops comparing it with ARM (the connection was decided otherwise, is
     * gone, or the re-check window passed): until then the sweep looks at it on every run.
     */
    recheckedUntil?: string;
    /** When the sweep last re-queued the apply of a decision that seemed stuck. */
    requeuedAt?: string;
    /**
     * An expired request keeps answering for its PEC while the PEC stays Pending, so that neither an event nor the
     * sweep opens a new request (and a new card) for a question that was deliberately left alone. Set once the PEC
     * is no longer Pending and a new request may be opened.
     */
    pecReleasedAt?: string;
}

export type RequestTransition =
    | { type: 'decide'; decision: Decision }
    | { type: 'apply' }
    | { type: 'fail'; reason: string }
    /** ARM shows a failed request's decision in place after all (the PUT worked; recording it did not). */
    | { type: 'recover' }
    | { type: 'expire'; reason: string }
    | { type: 'supersede'; reason: string };

const allowed: Record<RequestTransition['type'], readonly RequestStatus[]> = {
    decide: ['pending'],
    apply: ['decided'],
    fail: ['decided'],
    recover: ['failed'],
    expire: ['pending'],
    supersede: ['pending', 'decided'],
};

export class InvalidTransitionError extends ValidationError {
    constructor(
        readonly from: RequestStatus,
        readonly transition: RequestTransition['type'],
    ) {
        super(`A request that is ${from} cannot take "${transition}"`);
    }
}

/** The connection state a request's decision starts from: Pending for a request, Approved for a bypass alert. */
export function expectedPecStatus(request: Pick<ApprovalRequest, 'bypass'>): 'Pending' | 'Approved' {
    return request.bypass ? 'Approved' : 'Pending';
}

/** Open requests still block a new request for the same PEC. */
export function isOpen(status: RequestStatus): boolean {
    return status === 'pending' || status === 'decided';
}

/** Whether this request is the one that answers for its PEC: open, or expired and left pending (see pecReleasedAt). */
export function holdsPec(request: ApprovalRequest): boolean {
    return isOpen(request.status) || (request.status === 'expired' && !request.pecReleasedAt);
}

/** How many distinct approvals the request needs. */
export function requiredApprovalsOf(request: ApprovalRequest): number {
    return request.requiredApprovals ?? 1;
}

/**
 * What the posted card shows, as one comparable value: the status, and for a request waiting for more approvals, how
 * many it has. A card whose recorded state differs from this is behind and gets updated.
 */
export function cardStateOf(request: ApprovalRequest): string {
    const approvals = request.approvals?.length ?? 0;
    return request.status === 'pending' && approvals > 0 ? `pending:${approvals}` : request.status;
}

export function canTransition(from: RequestStatus, transition: RequestTransition['type']): boolean {
    return allowed[transition].includes(from);
}

export function transition(request: ApprovalRequest, change: RequestTransition, now: Date): ApprovalRequest {
    if (!canTransition(request.status, change.type)) {
        throw new InvalidTransitionError(request.status, change.type);
    }
    const at = now.toISOString();
    const next: ApprovalRequest = { ...request, updatedAt: at };
    switch (change.type) {
        case 'decide':
            return { ...next, status: 'decided', decision: change.decision };
        case 'apply':
            return { ...next, status: 'applied' };
        case 'fail':
            return { ...next, status: 'failed', outcome: { at, reason: change.reason } };
        case 'recover': {
            const { outcome: _failure, recheckedUntil: _done, ...rest } = next;
            return { ...rest, status: 'applied' };
        }
        case 'expire':
            return { ...next, status: 'expired', outcome: { at, reason: change.reason } };
        case 'supersede':
            return { ...next, status: 'superseded', outcome: { at, reason: change.reason } };
    }
}

export interface NewRequestInput {
    id: string;
    pecId: string;
    facts: RequestFacts;
    requester?: Requester;
    requesterForeignTenant?: boolean;
    correlationId: string;
    eventId?: string;
    now: Date;
}

export function openRequest(input: NewRequestInput): ApprovalRequest {
    const at = input.now.toISOString();
    return {
        id: input.id,
        pecId: input.pecId,
        status: 'pending',
        facts: input.facts,
        ...(input.requester ? { requester: input.requester } : {}),
        ...(input.requesterForeignTenant === undefined ? {} : { requesterForeignTenant: input.requesterForeignTenant }),
        correlationId: input.correlationId,
        ...(input.eventId === undefined ? {} : { eventId: input.eventId }),
        createdAt: at,
        updatedAt: at,
    };
}

const requestIdPattern = /^[A-Za-z0-9_-]{22,64}$/;

/** Request ids come back to us in clicks and URLs; anything not shaped like one is refused before any lookup. */
export function isRequestId(value: string): boolean {
    return requestIdPattern.test(value);
}

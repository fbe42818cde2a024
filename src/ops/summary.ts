import { kindInfo, parseServerId } from '../domain/ids';
import {
    cardStateOf,
    isOpen,
    requiredApprovalsOf,
    type ApprovalRequest,
    type Person,
    type RequestStatus,
} from '../domain/request';
import { cardClaimMs } from '../workflow/postCard';
import { formatAge, safe } from './output';

/**
 * One request as an operator reads it: the columns of `pec list`, also the head of `pec show`. Every string that came
 * from outside is already made safe for a terminal (`safe`).
 */

export type CardState = 'current' | 'behind' | 'posting' | 'missing' | 'none';

export interface RequestSummary {
    id: string;
    status: RequestStatus;
    /** The status as read: with the decision's direction and, while several approvals are needed, how many. */
    state: string;
    serverKind: string;
    server: string;
    pecName: string;
    pecId: string;
    requester: string;
    origin: {
        /** Whether the private endpoint's subscription is in TRUSTED_SUBSCRIPTION_IDS (as judged when it opened). */
        endpointSubscription: 'trusted' | 'untrusted' | 'unknown';
        endpointSubscriptionId?: string;
        /** The requester's tenant against ours, from the event's claims; unknown without them (found by the sweep). */
        requesterTenant: 'ours' | 'foreign' | 'unknown';
        label: string;
    };
    createdAt: string;
    updatedAt: string;
    age: string;
    card: { state: CardState; channel?: 'bot' | 'webhook'; postedAt?: string; label: string };
}

export function summarize(request: ApprovalRequest, now: Date): RequestSummary {
    const facts = request.facts;
    const endpointSubscriptionId = facts.privateEndpointSubscriptionId;
    // The card's own rule: an endpoint whose subscription is unknown is never trusted, whatever the flag says.
    const endpointSubscription = !endpointSubscriptionId
        ? 'unknown'
        : facts.privateEndpointTrusted
          ? 'trusted'
          : 'untrusted';
    const requesterTenant =
        request.requesterForeignTenant === undefined ? 'unknown' : request.requesterForeignTenant ? 'foreign' : 'ours';
    return {
        id: request.id,
        status: request.status,
        state: stateOf(request),
        serverKind: facts.serverKind,
        server: serverName(facts.serverId),
        pecName: safe(facts.pecName, 300),
        pecId: safe(request.pecId, 600),
        requester: requesterOf(request.requester),
        origin: {
            endpointSubscription,
            ...(endpointSubscriptionId ? { endpointSubscriptionId: safe(endpointSubscriptionId, 100) } : {}),
            requesterTenant,
            label: `${{ trusted: 'trusted sub', untrusted: 'UNTRUSTED sub', unknown: 'unknown sub' }[endpointSubscription]}, ${
                { ours: 'our tenant', foreign: 'FOREIGN tenant', unknown: 'tenant unknown' }[requesterTenant]
            }`,
        },
        createdAt: request.createdAt,
        updatedAt: request.updatedAt,
        age: formatAge(request.createdAt, now),
        card: cardOf(request, now),
    };
}

function stateOf(request: ApprovalRequest): string {
    const action = request.decision?.action;
    if (action && request.status !== 'superseded' && request.status !== 'expired') {
        return `${request.status} (${action === 'approve' ? 'approved' : 'rejected'})`;
    }
    const required = requiredApprovalsOf(request);
    if (request.status === 'pending' && required > 1) {
        return `pending (${request.approvals?.length ?? 0} of ${required})`;
    }
    return request.status;
}

function serverName(serverId: string): string {
    try {
        return safe(parseServerId(serverId).name, 100);
    } catch {
        return safe(serverId, 100) || '?';
    }
}

function requesterOf(person: Person | undefined): string {
    if (!person) {
        return 'unknown (sweep)';
    }
    return safe(person.upn ?? person.name ?? person.objectId ?? person.appId, 100) || 'unknown';
}

function cardOf(request: ApprovalRequest, now: Date): RequestSummary['card'] {
    const card = request.card;
    if (card) {
        const state = request.cardShows === cardStateOf(request) ? 'current' : 'behind';
        return {
            state,
            channel: card.channel,
            postedAt: card.postedAt,
            label: state === 'current' ? card.channel : `${card.channel} (behind)`,
        };
    }
    if (request.cardClaimedAt && now.getTime() - Date.parse(request.cardClaimedAt) < cardClaimMs) {
        return { state: 'posting', label: 'posting' };
    }
    // An open request without a card has nobody looking at it: the one thing in this list an operator must act on.
    return isOpen(request.status) ? { state: 'missing', label: 'MISSING (pec resend)' } : { state: 'none', label: '-' };
}

export function kindLabel(kind: string): string {
    return (kindInfo as Record<string, { label: string } | undefined>)[kind]?.label ?? safe(kind, 60);
}

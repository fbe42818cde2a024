import { addApproval, checkResponseText, hasApproved, outsideChange, selfDecisionRefusal } from '../domain/decision';
import { ensureErrorType, isRetryable } from '../domain/errors';
import { parsePecId } from '../domain/ids';
import {
    expectedPecStatus,
    isOpen,
    isRequestId,
    requiredApprovalsOf,
    transition,
    type ApprovalRequest,
    type DecisionAction,
    type Person,
} from '../domain/request';
import { withTrace } from '../observability/trace';
import type { StoredRequest } from '../storage/requestStore';
import type { WorkflowDeps } from './deps';
import type { Logger } from '../observability/logger';
import { checkLinkToken } from './linkToken';
import { syncPostedCard } from './cardUpdate';
import { updateRequest } from './requestUpdate';

/**
 * Recording a decision: the one use case behind both the Teams card and the web page. Every check that can refuse
 * runs before the single conditional write, and the write itself lets only the first decision through.
 */

/** Someone whose identity the caller has already proven (a verified Bot Framework token, or Easy Auth). */
export type Approver = Person & { objectId: string };

export interface DecisionAttempt {
    requestId: string;
    action: DecisionAction;
    /** As received: validated here. */
    text: unknown;
    approver: Approver;
    /** Where the click came from: the Teams card it was on, or the web page's link token. */
    origin: { via: 'teams'; conversationId: string; replyToId?: string } | { via: 'web'; linkToken?: string | null };
    correlationId?: string;
}

export type DecideResult =
    /** The decision was recorded and queued: show "Approving… by NAME". */
    | { kind: 'recorded'; request: ApprovalRequest }
    /** The request is no longer pending (a second click, a replay, decided outside): show its current card. */
    | { kind: 'current'; request: ApprovalRequest }
    /** Nothing was written; show the card with this inline error (and what the approver typed). */
    | { kind: 'error'; request: ApprovalRequest; error: string; responseText?: string; audience: 'approver' | 'viewer' }
    /** The click does not belong to any request we can show: a forged id, another conversation, a bad link. */
    | { kind: 'refused'; status: 403 | 404 | 410; reason: string };

export async function decide(deps: WorkflowDeps, attempt: DecisionAttempt, log: Logger): Promise<DecideResult> {
    if (!isRequestId(attempt.requestId)) {
        return { kind: 'refused', status: 404, reason: 'No such request' };
    }
    const stored = await deps.requests.get(attempt.requestId);
    if (!stored) {
        return { kind: 'refused', status: 404, reason: 'No such request' };
    }
    const { id, correlationId } = stored.request;
    return withTrace({ requestId: id, correlationId }, () => decideStored(deps, stored, attempt, log));
}

async function decideStored(
    deps: WorkflowDeps,
    stored: StoredRequest,
    attempt: DecisionAttempt,
    log: Logger,
): Promise<DecideResult> {
    const origin = checkOrigin(deps, stored.request, attempt);
    if (origin) {
        log.warn(`Refused a ${attempt.origin.via} decision on request ${attempt.requestId}: ${origin.reason}`);
        return origin;
    }
    if (stored.request.status !== 'pending') {
        return { kind: 'current', request: stored.request };
    }

    // The approver check (Graph) and the re-read of the PEC (ARM) run side by side: a click waits for the slower of the
    // two, not for both. Neither may let a decision through when it cannot answer.
    const [approver, pecNow] = await Promise.all([
        authorise(deps, stored.request, attempt.approver, log, { audit: true }),
        staleReason(
            deps,
            stored.request.pecId,
            expectedPecStatus(stored.request),
            stored.request.facts.privateEndpointId,
        ).then(
            (reason) => ({ reason }),
            (err: unknown) => ({ error: ensureErrorType(err) }),
        ),
    ]);
    if ('error' in approver) {
        return { kind: 'error', request: stored.request, error: approver.error, audience: approver.audience };
    }
    if (attempt.action === 'approve' && hasApproved(stored.request, approver.value)) {
        await auditRefusal(deps, stored.request, approver.value, alreadyApproved);
        return { kind: 'error', request: stored.request, error: alreadyApproved, audience: 'viewer' };
    }
    const text = checkResponseText(attempt.action, attempt.text);
    if ('error' in text) {
        return {
            kind: 'error',
            request: stored.request,
            error: text.error,
            responseText: typeof attempt.text === 'string' ? attempt.text : '',
            audience: 'approver',
        };
    }

    // Everything is re-read before acting: the PEC may have been decided in the portal, or removed, since the card.
    if ('error' in pecNow) {
        // ARM is down or slow: nothing is recorded, and the approver can click again with what they typed.
        log.warn(
            `Decision on request ${stored.request.id} not recorded: the PEC could not be read: ${pecNow.error.message}`,
        );
        return {
            kind: 'error',
            request: stored.request,
            error: couldNotCheck,
            responseText: typeof attempt.text === 'string' ? attempt.text : '',
            audience: 'approver',
        };
    }
    if (pecNow.reason) {
        const superseded = await supersede(deps, stored, pecNow.reason, log);
        return { kind: 'current', request: superseded.request };
    }

    const now = deps.now();
    const decision = {
        action: attempt.action,
        by: approver.value,
        text: text.value,
        at: now.toISOString(),
        ...(stored.request.bypass ? { bypass: true as const } : {}),
    };
    // If someone wrote first and it was a decision, theirs stands; anything else (a card claim, another approval) is
    // kept and the change is made again on top of it. The request written on is asked again whether this approver is
    // its requester: an event naming the requester may have arrived while the click was being checked.
    let selfRefusal: string | undefined;
    const written = await updateRequest(deps.requests, stored, (request) => {
        selfRefusal = selfDecisionRefusal(request, approver.value, deps.settings.allowSelfApproval);
        if (
            selfRefusal ||
            request.status !== 'pending' ||
            (attempt.action === 'approve' && hasApproved(request, approver.value))
        ) {
            return undefined;
        }
        const next =
            attempt.action === 'approve'
                ? addApproval(request, decision, now)
                : transition(request, { type: 'decide', decision }, now);
        // The web link is spent by the decision it carried, in the same write. While more approvals are needed it
        // stays valid: the card's one link serves every approver, and nobody counts twice anyway.
        return attempt.origin.via === 'web' && next.link && next.status === 'decided'
            ? { ...next, link: { ...next.link, usedAt: now.toISOString() } }
            : next;
    });
    if (!written) {
        return { kind: 'refused', status: 404, reason: 'No such request' };
    }
    if (!written.changed) {
        const current = written.stored.request;
        if (selfRefusal) {
            await auditRefusal(deps, current, approver.value, selfRefusal);
            return { kind: 'error', request: current, error: selfRefusal, audience: 'viewer' };
        }
        return current.status === 'pending'
            ? { kind: 'error', request: current, error: alreadyApproved, audience: 'viewer' }
            : { kind: 'current', request: current };
    }
    const request = written.stored.request;
    if (request.status === 'pending') {
        return recordedApproval(deps, written.stored, attempt, log);
    }
    // The entry goes in before the message is queued, so the apply never finds the decision without it and writes it
    // a second time. If it fails, the decision stands: the apply writes it, marked late, before ARM changes.
    await deps.audit
        .append({
            requestId: request.id,
            action: 'decided',
            actor: { kind: 'approver', id: approver.value.objectId, name: approver.value.upn ?? approver.value.name },
            correlationId: attempt.correlationId ?? request.correlationId,
            before: { status: 'pending' },
            after: { status: 'decided', action: attempt.action },
            text: text.value,
            detail: request.decision?.approvers
                ? `via ${attempt.origin.via}; the last of ${request.decision.approvers.length} approvals`
                : `via ${attempt.origin.via}`,
        })
        .catch((err: unknown) => {
            log.warn(
                `Decision on request ${request.id}: audit entry left to the apply: ${ensureErrorType(err).message}`,
            );
        });
    // The click answers now, with the card its approver sees. Everyone else's card, the thread reply and ARM's part
    // run from the queue: the apply updates the shared card to "decided" before it touches ARM.
    try {
        await deps.applyQueue.send({ requestId: request.id, correlationId: request.correlationId });
    } catch (err) {
        // The decision stands and is audited; the sweep re-queues decided requests that were never applied.
        log.error(`ALERT decision on request ${request.id} recorded but not queued: ${ensureErrorType(err).message}`);
    }
    return { kind: 'recorded', request };
}

/** The click must come from where this request's card lives: its own Teams message, or its own web link. */
function checkOrigin(
    deps: WorkflowDeps,
    request: ApprovalRequest,
    attempt: DecisionAttempt,
): Extract<DecideResult, { kind: 'refused' }> | undefined {
    if (attempt.origin.via === 'teams') {
        return isOwnCardMessage(request, attempt.origin)
            ? undefined
            : { kind: 'refused', status: 403, reason: 'This card does not belong to that request' };
    }
    if (request.status !== 'pending') {
        // A spent or outdated link still shows what happened; only deciding needs a live token.
        return undefined;
    }
    const check = checkLinkToken(request, attempt.origin.linkToken, deps.now());
    if (!check.ok) {
        return linkRefusal(check.reason);
    }
    return undefined;
}

/** Whether a Teams activity came from this request's own card message (its conversation and the card's activity). */
export function isOwnCardMessage(
    request: ApprovalRequest,
    origin: { conversationId: string; replyToId?: string },
): boolean {
    const card = request.card;
    return (
        card?.channel === 'bot' && card.conversationId === origin.conversationId && card.activityId === origin.replyToId
    );
}

export function linkRefusal(
    reason: 'missing' | 'wrong' | 'used' | 'expired',
): Extract<DecideResult, { kind: 'refused' }> {
    switch (reason) {
        case 'used':
            return { kind: 'refused', status: 410, reason: 'This link has already been used' };
        case 'expired':
            return { kind: 'refused', status: 410, reason: 'This link has expired' };
        default:
            return { kind: 'refused', status: 403, reason: 'This link is not valid for this request' };
    }
}

type Authorised = { value: Approver } | { error: string; audience: 'approver' | 'viewer' };

/**
 * Whether this person may decide this request: a transitive member of an approver group, and not the requester
 * (unless allowed). A refusal of a signed-in person is audited; a Graph outage refuses for now, never lets through.
 */
export async function authorise(
    deps: WorkflowDeps,
    request: ApprovalRequest,
    who: Approver,
    log: Logger,
    options: { audit: boolean },
): Promise<Authorised> {
    let member: boolean;
    let approver: Approver = who;
    try {
        member = await deps.directory.isMemberOfAny(who.objectId, deps.settings.approverGroupIds);
        if (member && !who.upn) {
            // ARM's description names the approver by UPN, like the portal's own "Approved by johndoe@contoso.com".
            const user = await deps.directory.getUser(who.objectId);
            approver = {
                ...who,
                ...(user?.userPrincipalName ? { upn: user.userPrincipalName } : {}),
                ...(!who.name && user?.displayName ? { name: user.displayName } : {}),
            };
        }
    } catch (err) {
        const e = ensureErrorType(err);
        log.warn(`Approver check for ${who.objectId} failed: ${e.message}`);
        return {
            error: isRetryable(e)
                ? 'Could not check approver membership just now. Please try again in a minute.'
                : 'Approver membership cannot be checked: the app lacks a Graph permission. Ask an admin.',
            audience: 'approver',
        };
    }
    const refusal = member
        ? selfDecisionRefusal(request, approver, deps.settings.allowSelfApproval)
        : 'Only members of the approver groups can decide. You can still see the request.';
    if (refusal && options.audit) {
        await auditRefusal(deps, request, approver, refusal);
    }
    if (refusal) {
        return { error: refusal, audience: 'viewer' };
    }
    return { value: approver };
}

/** What an approver sees when ARM could not be asked whether the connection still waits for a decision. */
export const couldNotCheck =
    'Could not check the connection now, so nothing was recorded. Please try again in a minute.';

const alreadyApproved = 'You have already approved this request; the other approvals must come from someone else.';

async function auditRefusal(deps: WorkflowDeps, request: ApprovalRequest, who: Approver, why: string): Promise<void> {
    await deps.audit.append({
        requestId: request.id,
        action: 'refused',
        actor: { kind: 'approver', id: who.objectId, name: who.upn ?? who.name },
        correlationId: request.correlationId,
        detail: why,
    });
}

/** One approval of several: audited and shown on everyone's card ("1 of 2"); nothing goes to ARM yet. */
async function recordedApproval(
    deps: WorkflowDeps,
    stored: StoredRequest,
    attempt: DecisionAttempt,
    log: Logger,
): Promise<DecideResult> {
    const request = stored.request;
    const approval = request.approvals?.at(-1);
    const given = request.approvals?.length ?? 0;
    await deps.audit.append({
        requestId: request.id,
        action: 'approval',
        actor: { kind: 'approver', id: approval?.by.objectId, name: approval?.by.upn ?? approval?.by.name },
        correlationId: attempt.correlationId ?? request.correlationId,
        after: { status: 'pending', approvals: given, requiredApprovals: requiredApprovalsOf(request) },
        ...(approval?.text ? { text: approval.text } : {}),
        detail: `approval ${given} of ${requiredApprovalsOf(request)} via ${attempt.origin.via}`,
    });
    const synced = await syncPostedCard(deps, stored, log).catch((err: unknown) => {
        log.warn(`Card of request ${request.id} not updated to ${given} approval(s): ${ensureErrorType(err).message}`);
        return stored;
    });
    return { kind: 'recorded', request: synced.request };
}

/**
 * Why the PEC no longer needs this decision (decided outside, removed), or undefined while it is still in the state
 * the decision starts from (Pending; Approved for a bypass alert).
 */
export async function staleReason(
    deps: WorkflowDeps,
    pecId: string,
    expected: 'Pending' | 'Approved' = 'Pending',
    privateEndpointId?: string,
): Promise<string | undefined> {
    const pec = await deps.arm.getPec(parsePecId(pecId));
    return pec ? outsideChange(pec, expected, privateEndpointId) : 'the connection was removed';
}

/**
 * Ends an open request because ARM says the question is moot; audited, and the card says so. Only while the request
 * is still in the status the caller judged ARM's state against (`stored`): a request decided meanwhile is its apply's,
 * and ARM showing that decision's state is no outside change. A slow read of ARM seen against a pending request must
 * never end a decision being applied (and, the request gone, make the gate's own approval look like a bypass).
 */
export async function supersede(
    deps: WorkflowDeps,
    stored: StoredRequest,
    reason: string,
    log: Logger,
): Promise<StoredRequest> {
    const judged = stored.request.status;
    if (stored.request.bypass && deps.marks && isOpen(judged)) {
        // A bypass alert is superseded when its connection left Approved (or another endpoint or request took over):
        // the mark its report took goes first, so approving the connection again is judged as a new bypass instead of
        // passing as already reported. A failure after this leaves the alert open, which accounts for the connection
        // until it is superseded again.
        await deps.marks.removeIfNamed(stored.request.pecId, {
            requestId: stored.request.id,
            sources: ['bypass', 'baseline'],
        });
    }
    let before = judged;
    const written = await updateRequest(deps.requests, stored, (request) => {
        before = request.status;
        return isOpen(request.status) && request.status === judged
            ? transition(request, { type: 'supersede', reason }, deps.now())
            : undefined;
    });
    if (!written?.changed) {
        return written?.stored ?? stored;
    }
    const current = written.stored;
    await deps.audit.append({
        requestId: current.request.id,
        action: 'superseded',
        actor: { kind: 'system' },
        correlationId: current.request.correlationId,
        before: { status: before },
        after: { status: 'superseded' },
        detail: reason,
    });
    return syncPostedCard(deps, current, log).catch((err: unknown) => {
        log.warn(`Card of request ${current.request.id} not updated yet: ${ensureErrorType(err).message}`);
        return current;
    });
}

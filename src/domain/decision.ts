import { RESPONSE_TEXT_MAX_LENGTH, stripInvisible } from './card';
import { sameId } from './ids';
import { isSettled, type DecisionStatus, type Pec, type PecStatus } from './pec';
import { autoApproveDescription, autoRejectDescription, bypassRevokeDescription } from './policy';
import {
    expectedPecStatus,
    requiredApprovalsOf,
    transition,
    type ApprovalRequest,
    type Decision,
    type DecisionAction,
    type Person,
} from './request';

/**
 * The rules of a decision that need no I/O: what a response text may be, who may not decide, and what ARM's
 * description says. Both the Teams callback and the web page go through these, so they cannot drift apart.
 */

export type Checked<T> = { value: T } | { error: string };

/**
 * Control and invisible characters are stripped (they would corrupt the card, the page or a log), then the text is
 * trimmed. A text over the cap is refused rather than cut, so an approver never sees a different text recorded than
 * the one they typed.
 */
export function checkResponseText(action: DecisionAction, raw: unknown): Checked<string> {
    const text = typeof raw === 'string' ? stripInvisible(raw, { multiline: true }).trim() : '';
    if (typeof raw !== 'string' && raw !== undefined && raw !== null) {
        return { error: 'The response text must be text' };
    }
    if (text.length > RESPONSE_TEXT_MAX_LENGTH) {
        return {
            error: `The response text is ${text.length} characters; the limit is ${RESPONSE_TEXT_MAX_LENGTH}`,
        };
    }
    if (action === 'reject' && text.length === 0) {
        return { error: 'A reject needs a response text: it tells the requester why' };
    }
    return { value: text };
}

export function isDecisionAction(value: unknown): value is DecisionAction {
    return value === 'approve' || value === 'reject';
}

/**
 * The requester may not decide their own connection unless explicitly allowed. The object id is the identity; the UPN
 * is compared too because a sweep-less event may carry only one of them.
 */
export function isSelfDecision(request: ApprovalRequest, approver: Person): boolean {
    const requester = request.requester;
    if (!requester) {
        return false;
    }
    return samePerson(requester, approver);
}

/**
 * Why this approver may not decide this request as its requester, or undefined when they may: the requester never
 * counts among several approvals, whatever the setting, and decides alone only with ALLOW_SELF_APPROVAL. Asked before
 * the decision is written and again on the request the write reads, since the requester may become known in between.
 */
export function selfDecisionRefusal(
    request: ApprovalRequest,
    approver: Person,
    allowSelfApproval: boolean,
): string | undefined {
    if (!isSelfDecision(request, approver)) {
        return undefined;
    }
    if (requiredApprovalsOf(request) > 1) {
        // Several approvals exist so that several other people look.
        return 'You created this private endpoint, so you cannot be one of its approvers.';
    }
    return allowSelfApproval ? undefined : 'You created this private endpoint, so someone else has to decide it.';
}

/**
 * The request without the approvals its requester gave while nobody knew they were the requester (a request the sweep
 * opened, identified by a later event): the requester never counts, so such an approval is taken back out.
 */
export function withoutRequesterApprovals(request: ApprovalRequest): ApprovalRequest {
    const given = request.approvals ?? [];
    const counted = given.filter((a) => !isSelfDecision(request, a.by));
    if (counted.length === given.length) {
        return request;
    }
    const { approvals: _given, ...rest } = request;
    return counted.length > 0 ? { ...rest, approvals: counted } : rest;
}

/** Two records of a person are the same person when their object ids or their UPNs match (case-insensitively). */
export function samePerson(a: Person, b: Person): boolean {
    const same = (x?: string, y?: string) => !!x && !!y && x.trim().toLowerCase() === y.trim().toLowerCase();
    return same(a.objectId, b.objectId) || same(a.upn, b.upn);
}

export function targetStatus(action: DecisionAction): DecisionStatus {
    return action === 'approve' ? 'Approved' : 'Rejected';
}

/** How the approver is named where only our identity shows (ARM's activity log): the UPN, else the name, else the id. */
export function approverLabel(person: Person): string {
    return person.upn?.trim() || person.name?.trim() || person.objectId?.trim() || 'unknown';
}

/**
 * The connection's description in ARM, like the portal's own example "Approved by johndoe@contoso.com", followed by
 * the approver's text. ARM's activity log shows only the app's identity, so this is where the human is recorded.
 */
export function armDescription(decision: Decision): string {
    const auto = decision.auto;
    if (decision.bypass) {
        if (auto?.kind === 'policy') {
            return bypassRevokeDescription(auto.ruleId, decision.text);
        }
        const verb = decision.action === 'approve' ? 'Kept' : 'Revoked';
        return decision.text
            ? `${verb} by ${approverLabel(decision.by)}: ${decision.text}`
            : `${verb} by ${approverLabel(decision.by)}`;
    }
    if (auto?.kind === 'policy') {
        return decision.action === 'approve'
            ? autoApproveDescription(auto.ruleId)
            : autoRejectDescription(auto.ruleId, decision.text);
    }
    if (auto?.kind === 'expiry') {
        return `Auto-rejected: no decision within ${auto.afterHours} hours${decision.text ? `: ${decision.text}` : ''}`;
    }
    const verb = decision.action === 'approve' ? 'Approved' : 'Rejected';
    const people = decision.approvers && decision.approvers.length > 1 ? decision.approvers : [decision.by];
    const head = `${verb} by ${people.map(approverLabel).join(' and ')}`;
    return decision.text ? `${head}: ${decision.text}` : head;
}

/** Whether this person already gave one of the request's approvals: nobody counts twice. */
export function hasApproved(request: ApprovalRequest, person: Person): boolean {
    return (request.approvals ?? []).some((a) => samePerson(a.by, person));
}

/**
 * Records an approve on a request that needs several: it stays pending with the approval added, or, with the last
 * approval needed, becomes `decided` with every approver named. The caller has checked who may approve; this only
 * counts. Rejects never come here: one reject decides.
 */
export function addApproval(request: ApprovalRequest, approval: Decision, now: Date): ApprovalRequest {
    const approvals = [...(request.approvals ?? []), approval];
    if (approvals.length < requiredApprovalsOf(request)) {
        return { ...request, approvals, updatedAt: now.toISOString() };
    }
    // The last approver's text goes to ARM (the audit keeps everyone's); every approver is named.
    const text = approval.text || [...approvals].reverse().find((a) => a.text)?.text || '';
    const decision: Decision = { ...approval, text, approvers: approvals.map((a) => a.by) };
    return { ...transition(request, { type: 'decide', decision }, now), approvals };
}

/**
 * Whether ARM shows the request's decision carried out by the gate: its state with the text the gate sends; or, once
 * a PUT of it went out (`putSentAt`, or an operation ARM started for it), its state reached from the one the request
 * found, settled, on the endpoint the request reviewed, since ARM may keep another description than the one sent (the
 * official examples answer so). Anything else there is someone else's change. A Keep (Approved to Approved) is shown
 * only by its text, so its PUT always goes out and names who kept it.
 */
export function showsOwnDecision(request: ApprovalRequest, pec: Pec): boolean {
    const decision = request.decision;
    if (!decision) {
        return false;
    }
    const status = targetStatus(decision.action);
    if (pec.status !== status) {
        return false;
    }
    if (pec.description === armDescription(decision)) {
        return true;
    }
    const sent = request.putSentAt !== undefined || request.applying?.operation !== undefined;
    return (
        sent &&
        pec.status !== expectedPecStatus(request) &&
        isSettled(pec.provisioningState) &&
        !outsideChange(pec, status, request.facts.privateEndpointId)
    );
}

/**
 * What ARM says happened to a PEC outside this app, or undefined while it is still in the state the decision starts
 * from: Pending for a request, Approved for a bypass alert (`expectedPecStatus`), and still the connection of the
 * private endpoint the card named (`privateEndpointId`, when given): a decision is about that endpoint, never about
 * whichever one holds the connection's name later.
 */
export function outsideChange(
    pec: Pec,
    expected: PecStatus = 'Pending',
    privateEndpointId?: string,
): string | undefined {
    if (privateEndpointId && pec.privateEndpointId && !sameId(pec.privateEndpointId, privateEndpointId)) {
        return `the connection now belongs to another private endpoint (${pec.privateEndpointId}), not the one reviewed`;
    }
    if (pec.status === expected) {
        return undefined;
    }
    const description = pec.description ? ` ("${pec.description}")` : '';
    return `the connection was set to ${pec.status} outside this app${description}`;
}

/**
 * How many distinct approvals a request needs beyond the policy's own rule: the same for a request and for a bypass
 * alert's Keep, so neither can be decided by one person where the other would need two.
 */
import { evaluatePolicy, policySubject } from '../domain/policy';
import { requiredApprovalsOf, type ApprovalRequest, type RequestFacts } from '../domain/request';
import type { WorkflowDeps } from './deps';

/** The approvals the policy's `requireApprovals` asks of a request on this server; 1 when it asks nothing of the kind. */
function policyApprovals(deps: WorkflowDeps, facts: RequestFacts): number {
    const policy = evaluatePolicy(deps.settings.policy, policySubject(facts, { ourTenantId: deps.settings.tenantId }));
    return policy.action.type === 'requireApprovals' ? policy.action.count : 1;
}

/**
 * Nobody knows who created the endpoint of a request opened without a requester (the sweep found it, or the event's
 * name matched no connection), so the self-approval rule cannot hold: the creator could approve their own connection.
 * Such a request needs UNKNOWN_REQUESTER_APPROVALS distinct approvals (2 by default: a second person looks), unless
 * the policy asks for more or decided it already. Stricter is kept when the requester becomes known later.
 */
export function withUnknownRequesterRule(deps: WorkflowDeps, request: ApprovalRequest): ApprovalRequest {
    const needed = deps.settings.unknownRequesterApprovals ?? 2;
    if (request.requester || request.status !== 'pending' || requiredApprovalsOf(request) >= needed) {
        return request;
    }
    return { ...request, requiredApprovals: needed, unknownRequester: true };
}

/**
 * Once the requester is known, the self-approval rule holds again, so the extra approval asked for an unknown
 * requester is no longer needed: the request goes back to what the policy asks. Only while nobody has approved yet,
 * so that no approval already given can suddenly decide the request without a look from the count it was given for.
 */
export function withKnownRequester(deps: WorkflowDeps, request: ApprovalRequest): ApprovalRequest {
    if (!request.unknownRequester || (request.approvals?.length ?? 0) > 0) {
        return request;
    }
    const { unknownRequester: _known, requiredApprovals: _raised, ...rest } = request;
    const needed = policyApprovals(deps, request.facts);
    return needed > 1 ? { ...rest, requiredApprovals: needed } : rest;
}

export async function auditUnknownRequester(deps: WorkflowDeps, request: ApprovalRequest): Promise<void> {
    if (!request.unknownRequester) {
        return;
    }
    await deps.audit.append({
        requestId: request.id,
        action: 'policy',
        actor: { kind: 'system' },
        correlationId: request.correlationId,
        after: { requiredApprovals: requiredApprovalsOf(request) },
        detail:
            `no requester is known, so the self-approval rule cannot apply: requires ${requiredApprovalsOf(request)} ` +
            'distinct approval(s) (UNKNOWN_REQUESTER_APPROVALS)',
    });
}

/**
 * A bypass alert asks the same question as a request (may this connection stay open?), so its Keep needs what a
 * request on the same server would: the policy's `requireApprovals` count, and, while nobody knows who approved the
 * connection outside (the sweep found it), UNKNOWN_REQUESTER_APPROVALS, since the self-decision rule cannot stop the
 * person who made the bypass. A Revoke is never held back: one decision closes the connection.
 */
export function withAlertApprovals(deps: WorkflowDeps, alert: ApprovalRequest): ApprovalRequest {
    if (alert.status !== 'pending') {
        return alert;
    }
    const needed = policyApprovals(deps, alert.facts);
    const byPolicy = needed > requiredApprovalsOf(alert) ? { ...alert, requiredApprovals: needed } : alert;
    return withUnknownRequesterRule(deps, byPolicy);
}

/** The audit entry that says why an alert's Keep needs more than one approval. */
export async function auditAlertApprovals(deps: WorkflowDeps, alert: ApprovalRequest): Promise<void> {
    if (alert.unknownRequester) {
        await auditUnknownRequester(deps, alert);
        return;
    }
    const needed = requiredApprovalsOf(alert);
    if (needed > 1) {
        await deps.audit.append({
            requestId: alert.id,
            action: 'policy',
            actor: { kind: 'system' },
            correlationId: alert.correlationId,
            after: { requiredApprovals: needed },
            detail: `Keep requires ${needed} distinct approval(s), as a request on this server would (policy)`,
        });
    }
}

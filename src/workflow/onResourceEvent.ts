import { ensureErrorType, isRetryable } from '../domain/errors';
import { sameId } from '../domain/ids';
import { assessOrigin, isForeignTenant } from '../domain/origin';
import type { Pec, ServerContext } from '../domain/pec';
import { applyPolicy, evaluatePolicy, policySubject, type PolicyDecision } from '../domain/policy';
import {
    openRequest,
    requiredApprovalsOf,
    type ApprovalRequest,
    type RequestFacts,
    type Requester,
} from '../domain/request';
import type { Logger, WorkflowDeps } from './deps';
import { ensureCard, type PostOutcome } from './postCard';
import { classifyResourceEvent, parseResourceEvent } from './resourceEvent';

export type EventOutcome =
    | { kind: 'invalid'; reason: string }
    | { kind: 'ignored'; reason: string }
    | { kind: 'handled'; pending: number; opened: string[]; cards: Record<string, PostOutcome> };

/**
 * An Event Grid event about a PEC on one of our servers. The event only says that something changed, so this lists
 * the server's PECs and opens a request for every pending one that has none (level-triggered): a missed or
 * misclassified event costs nothing as long as any later event, or the sweep, looks again.
 */
export async function onResourceEvent(deps: WorkflowDeps, input: unknown, log: Logger): Promise<EventOutcome> {
    const parsed = parseResourceEvent(input);
    if ('reason' in parsed) {
        log.warn(`Dropped an invalid event: ${parsed.reason}`);
        return { kind: 'invalid', reason: parsed.reason };
    }
    const event = parsed.value;
    const relevance = classifyResourceEvent(event, {
        watchedSubscriptionIds: deps.settings.watchedSubscriptionIds,
        ownClientId: deps.settings.clientId,
    });
    if ('reason' in relevance) {
        log.info(`Ignored event ${event.id}: ${relevance.reason}`);
        return { kind: 'ignored', reason: relevance.reason };
    }
    const { server, pecName, requester } = relevance.value;

    const pecs = await deps.arm.listPecs(server);
    const pending = pecs.filter((p) => p.status === 'Pending');
    const result: EventOutcome = { kind: 'handled', pending: pending.length, opened: [], cards: {} };
    if (pending.length === 0) {
        log.info(`Event ${event.id}: no pending PEC on ${server.name}`);
        return result;
    }

    let context: Promise<ServerContext> | undefined;
    const serverContext = () => (context ??= deps.arm.getServerContext(server, pecs));
    const failures: Error[] = [];
    for (const pec of pending) {
        try {
            // Only the PEC the event names was created by the caller in the claims; others found on the way are
            // opened without a requester rather than blaming the wrong person.
            const own = pecName !== undefined && sameId(pec.ref.name, pecName) ? requester : undefined;
            const opened = await openAndAnnounce(deps, pec, serverContext, own, event.correlationId, log);
            if (opened.created) {
                result.opened.push(opened.requestId);
            }
            result.cards[opened.requestId] = opened.card;
        } catch (err) {
            const e = ensureErrorType(err);
            log.error(`Event ${event.id}: PEC ${pec.id} failed: ${e.message}`);
            failures.push(e);
        }
    }
    const retryable = failures.find(isRetryable);
    if (retryable) {
        // Event Grid redelivers a failed invocation; everything above is idempotent, so a redelivery finishes the job.
        throw retryable;
    }
    if (failures[0]) {
        throw failures[0];
    }
    return result;
}

/**
 * A pending PEC's request opened (unless it has one), its card posted, and a policy's automatic decision queued for
 * ARM. The one path for events and the sweep, so both give the same request, card and policy outcome, once.
 */
export async function openAndAnnounce(
    deps: WorkflowDeps,
    pec: Pec,
    serverContext: () => Promise<ServerContext>,
    requester: Requester | undefined,
    correlationId: string,
    log: Logger,
): Promise<{ requestId: string; created: boolean; card: PostOutcome }> {
    const { request, created } = await openRequestForPec(deps, pec, serverContext, requester, correlationId);
    const card = await ensureCard(deps, request, log);
    const current = request.request;
    // An automatic decision is queued after its card is posted (so the card is there to be updated), by the invocation
    // that opened it or the one that finally posted its card. A lost message is re-queued by the sweep.
    if (
        current.status === 'decided' &&
        current.decision?.auto &&
        (created || card === 'posted' || card === 'fallback')
    ) {
        await deps.applyQueue.send({ requestId: current.id, correlationId: current.correlationId });
    }
    return { requestId: current.id, created, card };
}

/** Opens the request for a pending PEC unless it has an active one, with the policy's decision applied. */
export async function openRequestForPec(
    deps: WorkflowDeps,
    pec: Pec,
    serverContext: () => Promise<ServerContext>,
    requester: Requester | undefined,
    correlationId: string,
) {
    // createIfNone alone would be correct; looking first spares the server read for the usual case, a PEC that
    // already has its request (redeliveries, and every event about the server's other PECs).
    const existing = await deps.requests.getActiveForPec(pec.id);
    if (existing) {
        return { request: existing, created: false };
    }
    const facts = buildFacts(pec, await serverContext(), deps.settings.trustedSubscriptionIds);
    const foreign = isForeignTenant(requester?.tenantId, deps.settings.tenantId);
    const now = deps.now();
    const policy = evaluatePolicy(deps.settings.policy, policySubject(facts, { requesterForeignTenant: foreign }));
    const draft: ApprovalRequest = applyPolicy(
        openRequest({
            id: deps.newId(),
            pecId: pec.id,
            facts,
            ...(requester ? { requester } : {}),
            ...(foreign === undefined ? {} : { requesterForeignTenant: foreign }),
            correlationId,
            now,
        }),
        policy,
        now,
    );
    // Opening and the policy's decision are one write: no moment exists where an auto-approved request waits for a click.
    const { created, stored } = await deps.requests.createIfNone(draft);
    if (created) {
        await deps.audit.append({
            requestId: draft.id,
            action: 'requested',
            actor: requester
                ? {
                      kind: 'requester',
                      ...(requester.objectId ? { id: requester.objectId } : {}),
                      ...(requester.upn || requester.name ? { name: requester.upn ?? requester.name } : {}),
                  }
                : { kind: 'system' },
            correlationId,
            after: { status: 'pending', pec: pecSnapshot(pec), facts },
        });
        await auditPolicy(deps, draft, policy);
    }
    return { request: stored, created };
}

export function buildFacts(pec: Pec, context: ServerContext, trusted: readonly string[]): RequestFacts {
    const origin = assessOrigin(pec.privateEndpointId, trusted);
    const approvedUntrusted = context.approvedPecs.filter((p) => !assessOrigin(p.privateEndpointId, trusted).trusted);
    return {
        serverKind: context.ref.kind,
        serverId: context.id,
        serverLocation: context.location,
        publicNetworkAccess: context.publicNetworkAccess,
        serverTags: context.tags,
        pecName: pec.ref.name,
        privateEndpointId: pec.privateEndpointId,
        ...(origin.subscriptionId ? { privateEndpointSubscriptionId: origin.subscriptionId } : {}),
        privateEndpointTrusted: origin.trusted,
        requestMessage: pec.description,
        approvedPecCount: context.approvedPecs.length,
        approvedUntrustedPecCount: approvedUntrusted.length,
    };
}

function pecSnapshot(pec: Pec) {
    return {
        id: pec.id,
        status: pec.status,
        description: pec.description,
        privateEndpointId: pec.privateEndpointId,
        provisioningState: pec.provisioningState,
    };
}

/** Every policy decision is audited with its rule's id; the default (no rule matched) is not a policy decision. */
async function auditPolicy(deps: WorkflowDeps, request: ApprovalRequest, policy: PolicyDecision): Promise<void> {
    if (policy.ruleId === undefined) {
        return;
    }
    const actor = { kind: 'policy' as const, id: policy.ruleId };
    const decision = request.decision;
    if (decision?.auto) {
        await deps.audit.append({
            requestId: request.id,
            action: 'decided',
            actor,
            correlationId: request.correlationId,
            before: { status: 'pending' },
            after: { status: 'decided', action: decision.action },
            text: decision.text,
            detail: `policy rule ${policy.ruleId}: ${policy.action.type}`,
        });
        return;
    }
    await deps.audit.append({
        requestId: request.id,
        action: 'policy',
        actor,
        correlationId: request.correlationId,
        after: { requiredApprovals: requiredApprovalsOf(request) },
        detail: `policy rule ${policy.ruleId}: requires ${requiredApprovalsOf(request)} distinct approval(s)`,
    });
}

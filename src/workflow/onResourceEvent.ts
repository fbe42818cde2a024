import { ensureErrorType, isRetryable, statusCodeOf } from '../domain/errors';
import { withoutRequesterApprovals } from '../domain/decision';
import { formatPecId, parsePecId, sameId } from '../domain/ids';
import { assessOrigin, isForeignTenant, type Origin } from '../domain/origin';
import type { Pec, ServerContext } from '../domain/pec';
import { applyPolicy, evaluatePolicy, policySubject, type PolicyDecision } from '../domain/policy';
import {
    openRequest,
    requiredApprovalsOf,
    type ApprovalRequest,
    type RequestFacts,
    type Requester,
} from '../domain/request';
import { withTrace } from '../observability/trace';
import type { StoredRequest } from '../storage/requestStore';
import type { WorkflowDeps } from './deps';
import type { Logger } from '../observability/logger';
import { auditUnknownRequester, withKnownRequester, withUnknownRequesterRule } from './approvalRules';
import { ensureAlertCard, forgetIfNotApproved, judgeApproved, type BypassOutcome } from './bypass';
import { issueLinkToken } from './linkToken';
import { resolveOrigin } from './origin';
import { ensureCard, withCardClaim, withoutClaim, type PostOutcome } from './postCard';
import { updateRequest } from './requestUpdate';
import { classifyResourceEvent, parseResourceEvent, type ResourceEvent } from './resourceEvent';

export type EventOutcome =
    | { kind: 'invalid'; reason: string }
    | { kind: 'ignored'; reason: string }
    | {
          kind: 'handled';
          pending: number;
          opened: string[];
          cards: Record<string, PostOutcome>;
          /** How a connection the event named, found Approved, was judged (see bypass.ts). */
          bypass?: BypassOutcome;
      };

/**
 * An Event Grid event about a PEC on one of our servers. The event carries no resource, so this lists the server's
 * PECs and opens a request for the pending one it names (or, when the name matches none, every pending one): a missed
 * or misclassified event costs nothing as long as a later event, or the sweep, looks again.
 */
export async function onResourceEvent(deps: WorkflowDeps, input: unknown, log: Logger): Promise<EventOutcome> {
    const parsed = parseResourceEvent(input);
    if ('reason' in parsed) {
        log.warn(`Dropped an invalid event: ${parsed.reason}`);
        return { kind: 'invalid', reason: parsed.reason };
    }
    const event = parsed.value;
    return withTrace({ correlationId: event.correlationId }, () => handleEvent(deps, event, log));
}

async function handleEvent(deps: WorkflowDeps, event: ResourceEvent, log: Logger): Promise<EventOutcome> {
    const relevance = classifyResourceEvent(event, {
        watchedSubscriptionIds: deps.settings.watchedSubscriptionIds,
        ...(deps.settings.watchedKinds ? { watchedKinds: deps.settings.watchedKinds } : {}),
        ownClientId: deps.settings.clientId,
    });
    if ('reason' in relevance) {
        log.info(`Ignored event ${event.id}: ${relevance.reason}`);
        return { kind: 'ignored', reason: relevance.reason };
    }
    const { server, pecName, requester } = relevance.value;

    // Most deliveries are about a PEC that already has its request: Event Grid redelivers, and ARM raises several
    // events for one connection. Its request is looked up first, so such a delivery costs one storage read and no
    // ARM call; all that may be left to do is learning the requester and a card a failed delivery did not post.
    // A new process loads the server kind's SDK while the lookup below is on the way.
    deps.arm.prepare?.(server.kind);
    const namedId = pecName === undefined ? undefined : formatPecId({ server, name: pecName });
    const known = namedId === undefined ? undefined : await deps.requests.getActiveForPec(namedId);
    if (known && known.request.status === 'pending' && !known.request.bypass && !sameDelivery(known, event)) {
        // The write may be the one that approved the connection outside (the portal, the CLI) while its request
        // waited: ARM is asked, and such an approval is superseded and judged as a bypass at once.
        const now = await deps.arm.getPec(parsePecId(known.request.pecId));
        if (now?.status === 'Approved') {
            const judged = await judgeApproved(
                deps,
                {
                    pec: now,
                    serverContext: () => deps.arm.getServerContext(server),
                    requester,
                    correlationId: event.correlationId,
                    detectedBy: 'event',
                },
                log,
            );
            log.info(`Event ${event.id}: ${now.id} was approved outside: ${describeJudgement(judged)}`);
            return { kind: 'handled', pending: 0, opened: [], cards: {}, bypass: judged };
        }
    }
    if (known?.request.bypass) {
        // An alert about this connection is open; a redelivery only makes sure its card went out.
        const card = await ensureAlertCard(deps, known, log);
        log.info(`Event ${event.id}: alert ${known.request.id} is open for ${known.request.pecId} (card ${card})`);
        return { kind: 'handled', pending: 0, opened: [], cards: { [known.request.id]: card } };
    }
    if (known) {
        const { id, correlationId } = known.request;
        const announced = await withTrace({ requestId: id, correlationId }, () =>
            announce(deps, { request: known, created: false }, requester, log),
        );
        log.info(`Event ${event.id}: request ${id} is open already (card ${announced.card})`);
        return { kind: 'handled', pending: 1, opened: [], cards: { [id]: announced.card } };
    }

    // The PEC named has no request, so opening one is the likely next step, and it needs the server: the server is
    // read alongside the list rather than after it (one ARM round trip of waiting instead of two).
    const listing = deps.arm.listPecs(server);
    const early = namedId === undefined ? undefined : deps.arm.getServerContext(server, listing);
    // Awaited below only if a request is opened; a failure is then seen there, and must not be unhandled meanwhile.
    early?.catch(() => undefined);
    // A card is this path's likely end: the approvers' Teams ids for it (cached; a Graph and a roster read when not)
    // are looked up while ARM answers, not after the request is written.
    deps.approverTeamsIds?.prefetch();
    // And the audit anchor's client, which the request's first entry needs, loads while ARM answers.
    deps.audit.prepare?.();
    let pecs: Pec[];
    try {
        pecs = await listing;
    } catch (err) {
        const e = ensureErrorType(err);
        if (!isNotFound(e)) {
            throw e;
        }
        // A server that is not there (deleted since, or never was) has nothing to gate, now or on any redelivery:
        // throwing would only make Event Grid retry the event for a day.
        const reason = `server ${server.name} was not found`;
        log.warn(`Ignored event ${event.id}: ${reason}`);
        return { kind: 'ignored', reason };
    }
    const pending = pecs.filter((p) => p.status === 'Pending');
    const result: EventOutcome = { kind: 'handled', pending: pending.length, opened: [], cards: {} };
    const namedPec = pecName === undefined ? undefined : pecs.find((p) => sameId(p.ref.name, pecName));
    if (namedPec && namedPec.status !== 'Pending') {
        // Approved without passing Pending (its creator may approve: Owner, Contributor), or approved in the portal:
        // the side door. Rejected or Disconnected: nothing to account for any more.
        if (namedPec.status === 'Approved') {
            result.bypass = await judgeApproved(
                deps,
                {
                    pec: namedPec,
                    serverContext: () => early ?? deps.arm.getServerContext(server, pecs),
                    requester,
                    correlationId: event.correlationId,
                    detectedBy: 'event',
                },
                log,
            );
            log.info(`Event ${event.id}: ${namedPec.id} is Approved: ${describeJudgement(result.bypass)}`);
        } else {
            await forgetIfNotApproved(deps, namedPec, log);
        }
    }
    if (pending.length === 0) {
        log.info(`Event ${event.id}: no pending PEC on ${server.name}`);
        return result;
    }

    let context: Promise<ServerContext> | undefined = early;
    const serverContext = () => (context ??= deps.arm.getServerContext(server, pecs));
    const failures: Error[] = [];
    // The PEC the event names is the one its caller created. Its siblings get their own events, which carry their own
    // requesters: opening them here, without one, would let a requester approve their own connection and let a policy
    // judge it as of unknown origin, depending only on which event came first. So they are left to their events (and
    // the sweep). Only when the name matches no pending PEC (a name ARM spells differently) is every pending one
    // opened, without blaming anyone, so that a wrong guess about names costs nothing.
    const named = pending.filter((p) => pecName !== undefined && sameId(p.ref.name, pecName));
    for (const pec of named.length > 0 ? named : pending) {
        try {
            const own = named.length > 0 ? requester : undefined;
            // The named PEC was looked up above and had no request; another delivery opening it meanwhile is caught
            // by the conditional insert.
            const lookedUp = namedId !== undefined && sameId(pec.id, namedId);
            const opened = await openAndAnnounce(deps, pec, serverContext, own, event.correlationId, log, undefined, {
                lookedUp,
                eventId: event.id,
            });
            if (!opened) {
                continue;
            }
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
    const requestIds = Object.keys(result.cards);
    withTrace(requestIds.length === 1 ? { requestId: requestIds[0] } : {}, () =>
        log.info(
            `Event ${event.id}: ${result.pending} pending, opened ${result.opened.length} request(s): ${JSON.stringify(result.cards)}`,
        ),
    );
    return result;
}

/**
 * A pending PEC's request opened (unless it has one), its card posted, and a policy's automatic decision queued for
 * ARM. The one path for events and the sweep, so both give the same request, card and policy outcome, once. Resolves
 * undefined when the PEC has no request and `mayOpen` declines to open one.
 */
export async function openAndAnnounce(
    deps: WorkflowDeps,
    pec: Pec,
    serverContext: () => Promise<ServerContext>,
    requester: Requester | undefined,
    correlationId: string,
    log: Logger,
    mayOpen?: () => Promise<boolean>,
    options: { lookedUp?: boolean; eventId?: string } = {},
): Promise<{ requestId: string; created: boolean; card: PostOutcome } | undefined> {
    const opened = await openRequestForPec(deps, pec, serverContext, requester, correlationId, mayOpen, {
        ...options,
        log,
    });
    if (!opened) {
        return undefined;
    }
    const { id, correlationId: requestCorrelation } = opened.request.request;
    return withTrace({ requestId: id, correlationId: requestCorrelation }, () =>
        announce(deps, opened, requester, log),
    );
}

async function announce(
    deps: WorkflowDeps,
    opened: { request: StoredRequest; created: boolean; linkToken?: string },
    requester: Requester | undefined,
    log: Logger,
): Promise<{ requestId: string; created: boolean; card: PostOutcome }> {
    const request = opened.created ? opened.request : await identifyRequester(deps, opened.request, requester);
    const card = await ensureCard(
        deps,
        request,
        log,
        opened.linkToken
            ? { claimedWith: opened.linkToken }
            : // A request found without its card may be one whose opener failed before its first audit entry: the
              // invocation that wins the card claim makes sure the trail starts with it before the card goes out.
              { beforePost: (claimed) => recordMissingRequested(deps, claimed) },
    );
    const current = request.request;
    // An automatic decision is queued once its card is out (so the card is there to be updated), by every delivery
    // until an apply holds it: a redelivery after a failed send finishes the job, and a duplicate message is harmless
    // (the apply's lease and status check keep it to one PUT). While another invocation is posting the card, that
    // invocation queues it.
    if (current.status === 'decided' && current.decision?.auto && !current.applying && card !== 'claimed-elsewhere') {
        await deps.applyQueue.send({ requestId: current.id, correlationId: current.correlationId });
    }
    return { requestId: current.id, created: opened.created, card };
}

/** Opens the request for a pending PEC unless it has an active one, with the policy's decision applied. */
export async function openRequestForPec(
    deps: WorkflowDeps,
    pec: Pec,
    serverContext: () => Promise<ServerContext>,
    requester: Requester | undefined,
    correlationId: string,
    mayOpen?: () => Promise<boolean>,
    options: { lookedUp?: boolean; eventId?: string; log?: Logger } = {},
): Promise<{ request: StoredRequest; created: boolean; linkToken?: string } | undefined> {
    // createIfNone alone would be correct; looking first spares the server read for the usual case, a PEC that
    // already has its request (redeliveries, and every event about the server's other PECs). A caller that has just
    // looked says so, and the read is not made twice.
    const existing = options.lookedUp ? undefined : await deps.requests.getActiveForPec(pec.id);
    if (existing) {
        return { request: existing, created: false };
    }
    // The caller's last word before a new request is opened (the sweep waits for the PEC's own event).
    if (mayOpen && !(await mayOpen())) {
        return undefined;
    }
    const [context, origin] = await Promise.all([
        serverContext(),
        resolveOrigin(deps, pec.privateEndpointId, options.log),
    ]);
    const facts = buildFacts(pec, context, deps.settings.trustedSubscriptionIds, origin);
    // The requester's tenant claim is shown on the card for what it is, a claim; the origin never rests on it.
    const foreign = isForeignTenant(requester?.tenantId, deps.settings.tenantId);
    const now = deps.now();
    const policy = evaluatePolicy(deps.settings.policy, policySubject(facts, { ourTenantId: deps.settings.tenantId }));
    // Written with the right to post its card already taken by this invocation, which posts it next: the card needs
    // no claim write of its own (see ensureCard). Only the link token's hash is stored.
    const link = issueLinkToken(now, deps.settings.linkTokenTtlHours);
    const opening: ApprovalRequest = withUnknownRequesterRule(
        deps,
        applyPolicy(
            openRequest({
                id: deps.newId(),
                pecId: pec.id,
                facts,
                ...(requester ? { requester } : {}),
                ...(foreign === undefined ? {} : { requesterForeignTenant: foreign }),
                correlationId,
                ...(options.eventId === undefined ? {} : { eventId: options.eventId }),
                now,
            }),
            policy,
            now,
        ),
    );
    const draft = withCardClaim(opening, now, link.grant);
    // Opening and the policy's decision are one write: no moment exists where an auto-approved request waits for a click.
    const { created, stored } = await deps.requests.createIfNone(draft);
    if (!created) {
        return { request: stored, created };
    }
    try {
        await deps.audit.append(
            {
                requestId: draft.id,
                action: 'requested',
                actor: requester ? requesterActor(requester) : { kind: 'system' },
                correlationId,
                after: { status: 'pending', pec: pecSnapshot(pec), facts },
            },
            { first: true },
        );
        await auditPolicy(deps, draft, policy);
        await auditUnknownRequester(deps, draft);
    } catch (err) {
        // The request was written holding this invocation's card claim. Given back, the redelivery this failure brings
        // posts the card at once (and records the missing entry first, see announce) instead of waiting for the claim
        // to lapse.
        await deps.requests.update(stored, withoutClaim(stored.request)).catch(() => undefined);
        throw err;
    }
    return { request: stored, created, linkToken: link.token };
}

export function buildFacts(
    pec: Pec,
    context: ServerContext,
    trusted: readonly string[],
    origin: Origin = assessOrigin(pec.privateEndpointId, trusted),
): RequestFacts {
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
        ...(origin.tenantId ? { privateEndpointTenantId: origin.tenantId } : {}),
        originSource: origin.source,
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

/**
 * A request opened before the event that names its requester arrived (by the sweep, or by a name ARM spelled
 * differently) learns who asked as soon as that event comes, so that the self-approval rule holds from then on.
 */
async function identifyRequester(
    deps: WorkflowDeps,
    stored: StoredRequest,
    requester: Requester | undefined,
): Promise<StoredRequest> {
    if (!requester || stored.request.requester || stored.request.status !== 'pending') {
        return stored;
    }
    const foreign = isForeignTenant(requester.tenantId, deps.settings.tenantId);
    // An approval the requester gave before anyone knew it was theirs stops counting here, before the count that
    // asked for an extra approval (an unknown requester) can go back to the policy's.
    let takenBack = 0;
    const written = await updateRequest(deps.requests, stored, (current) => {
        if (current.status !== 'pending' || current.requester) {
            return undefined;
        }
        const known = withoutRequesterApprovals({
            ...current,
            requester,
            ...(foreign === undefined ? {} : { requesterForeignTenant: foreign }),
            updatedAt: deps.now().toISOString(),
        });
        takenBack = (current.approvals?.length ?? 0) - (known.approvals?.length ?? 0);
        return withKnownRequester(deps, known);
    });
    if (!written?.changed) {
        return written?.stored ?? stored;
    }
    await deps.audit.append({
        requestId: stored.request.id,
        action: 'identified',
        actor: requesterActor(requester),
        correlationId: stored.request.correlationId,
        after: { requester, ...(takenBack > 0 ? { approvalsTakenBack: takenBack } : {}) },
        detail:
            'the event that names the requester arrived after the request was opened' +
            (takenBack > 0 ? ': the approval they gave before then no longer counts (the requester never does)' : ''),
    });
    return written.stored;
}

async function recordMissingRequested(deps: WorkflowDeps, request: ApprovalRequest): Promise<void> {
    const trail = await deps.audit.list(request.id);
    if (trail.some((e) => e.action === 'requested')) {
        return;
    }
    await deps.audit.append({
        requestId: request.id,
        action: 'requested',
        actor: request.requester ? requesterActor(request.requester) : { kind: 'system' },
        correlationId: request.correlationId,
        after: { status: request.status, facts: request.facts },
        detail: 'recorded late: the invocation that opened the request failed before auditing it',
    });
}

function requesterActor(requester: Requester) {
    return {
        kind: 'requester' as const,
        ...(requester.objectId ? { id: requester.objectId } : {}),
        ...(requester.upn || requester.name ? { name: requester.upn ?? requester.name } : {}),
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

/**
 * Whether the event is Event Grid's redelivery of the one that opened the request (the same event id). It says nothing
 * the request does not record already, so it needs no ARM read. Every other event about a pending PEC is read at once,
 * since it may be the write that approved the connection outside: the correlation id cannot tell, because the caller
 * of ARM chooses it (`x-ms-correlation-request-id`; Terraform sends one for a whole run), so an approval sent with the
 * opening write's correlation id would pass for that write and be seen only by the next sweep. A request the sweep
 * opened has no event id, so every event about it is read.
 */
function sameDelivery(known: StoredRequest, event: ResourceEvent): boolean {
    return known.request.eventId !== undefined && known.request.eventId === event.id;
}

function describeJudgement(outcome: BypassOutcome): string {
    return outcome.kind === 'accounted'
        ? `not a bypass: ${outcome.reason}`
        : `bypass reported as ${outcome.requestId} (${outcome.action})`;
}

/** ARM's 404, as the adapter passes it on: its own error, with the SDK's as the cause. */
function isNotFound(e: Error): boolean {
    return statusCodeOf(e) === 404 || statusCodeOf(e.cause) === 404;
}

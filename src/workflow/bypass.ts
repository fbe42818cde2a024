import { ensureErrorType } from '../domain/errors';
import { reviewUrl } from '../domain/card';
import { idKey, sameId, serverKey, type ServerRef } from '../domain/ids';
import type { Pec, ServerContext } from '../domain/pec';
import { evaluateBypass, policySubject, type BypassDecision } from '../domain/policy';
import { openRequest, transition, type ApprovalRequest, type Decision, type Requester } from '../domain/request';
import type { Origin } from '../domain/origin';
import type { ConnectionMark } from '../storage/connectionMarks';
import type { StoredRequest } from '../storage/requestStore';
import { baselineSummary, renderBaselineCard, type BaselineEntry } from '../teams/baselineCard';
import { auditAlertApprovals, withAlertApprovals } from './approvalRules';
import { settleAll } from './concurrency';
import { supersede } from './decide';
import type { Logger, WorkflowDeps } from './deps';
import { issueLinkToken } from './linkToken';
import { buildFacts } from './onResourceEvent';
import { resolveOrigin } from './origin';
import { ensureCard, withCardClaim, type PostOutcome } from './postCard';

/**
 * The side door: a connection that is Approved without a decision of ours. Azure approves a connection on creation
 * when its creator holds `…/privateEndpointConnectionsApproval/action` on the server (Owner and Contributor do), and
 * anyone with that right can approve one in the portal; neither passes through Pending, so neither gets a request.
 * The event path and the sweep both bring such connections here; the policy's bypass rules judge them (alert, revoke,
 * accept), and a person can Revoke or Keep an alert through every check a normal decision goes through.
 *
 * Exactly one report per connection: the connection's mark is a conditional insert, taken before anything is
 * audited, posted or revoked. Connections Approved when a subscription and kind are first watched are the baseline,
 * never a bypass (see `takeBaseline`).
 */

export type BypassOutcome =
    | { kind: 'accounted'; reason: string }
    | { kind: 'reported'; requestId: string; action: BypassDecision['action']['type']; card?: PostOutcome };

export interface BypassInput {
    pec: Pec;
    serverContext: () => Promise<ServerContext>;
    requester: Requester | undefined;
    correlationId: string;
    detectedBy: 'event' | 'sweep';
    /** The sweep's one query of every mark: spares a read per Approved connection. */
    marked?: Map<string, ConnectionMark>;
}

/** Judges a connection seen Approved; reports it when nothing of ours accounts for it. */
export async function judgeApproved(deps: WorkflowDeps, input: BypassInput, log: Logger): Promise<BypassOutcome> {
    const marks = deps.marks;
    const { pec } = input;
    if (!marks) {
        return { kind: 'accounted', reason: 'bypass detection is not configured' };
    }
    const server = pec.ref.server;
    if (!(await marks.isBaselined(server.subscriptionId, server.kind))) {
        return { kind: 'accounted', reason: 'its subscription and kind have no baseline yet: the next sweep takes it' };
    }
    // Nothing is trusted blindly: the listing or the event may be minutes old, so ARM is asked again, once.
    let read: Promise<Pec | undefined> | undefined;
    const readNow = () => (read ??= deps.arm.getPec(pec.ref));
    let mark = input.marked ? input.marked.get(idKey(pec.id)) : await marks.get(pec.id);
    if (mark && namesAnotherEndpoint(mark, pec)) {
        // The connection was deleted and made again under the same name by another private endpoint: the mark
        // accounted for the old one's approval. It goes (unless rewritten since), and this approval is judged. The
        // sweep's listing may be older than the mark, so ARM says first which endpoint the connection has now.
        const now = await readNow();
        if (!now || namesAnotherEndpoint(mark, now)) {
            await marks.removeIfNamed(pec.id, { requestId: mark.requestId, at: mark.at });
            mark = undefined;
        }
    }
    const unfinished = mark ? await unfinishedReport(deps, mark) : undefined;
    if (mark && !unfinished) {
        return { kind: 'accounted', reason: 'the gate approved, kept or already reported it' };
    }
    const active = await deps.requests.getActiveForPec(pec.id);
    if (active) {
        const request = active.request;
        if (request.bypass) {
            return { kind: 'accounted', reason: `alert ${request.id} is open for it` };
        }
        if (request.status === 'decided' && request.decision?.action === 'approve') {
            // Our own approval on its way: the apply marks the connection once ARM has it.
            return { kind: 'accounted', reason: `request ${request.id} is applying our approval` };
        }
    }
    const current = await readNow();
    if (current?.status !== 'Approved') {
        return { kind: 'accounted', reason: `the connection is ${current?.status ?? 'gone'} now, not Approved` };
    }
    if (active && active.request.status === 'pending') {
        // Approved outside while its request waited: superseded as before, and judged as a bypass below.
        const after = await supersede(
            deps,
            active,
            `the connection was set to Approved outside this app ("${current.description}")`,
            log,
        );
        if (after.request.status !== 'superseded') {
            // Decided meanwhile: the Approved seen may be that decision's own apply. Its apply judges ARM's state, and
            // the next sweep judges the connection again once the request is settled.
            return { kind: 'accounted', reason: `request ${after.request.id} was ${after.request.status} meanwhile` };
        }
    }
    return report(deps, { ...input, pec: current }, log, unfinished);
}

/** A mark accounts for the approval of the endpoint it names; marks from before the field name none. */
export function namesAnotherEndpoint(mark: ConnectionMark, pec: Pec): boolean {
    return (
        mark.privateEndpointId !== undefined &&
        pec.privateEndpointId !== '' &&
        !sameId(mark.privateEndpointId, pec.privateEndpointId)
    );
}

/** A report older than this whose alert is missing was cut short (a report takes seconds): it is finished again. */
const reportGraceMs = 2 * 60_000;
/** Marks older than this are not looked into: the sweep, every few minutes, has finished any cut-short report by then. */
const reportRepairWindowMs = 24 * 60 * 60_000;

/**
 * A bypass report that took the connection's mark and died before its alert was recorded (the mark goes first, so two
 * invocations report once): without this the mark would stand for an alert nobody ever saw. Its id is kept, so the
 * finished report is the one the mark names. Only `bypass` marks young enough to matter are read (a request read,
 * and its trail when there is no request).
 */
async function unfinishedReport(deps: WorkflowDeps, mark: ConnectionMark): Promise<UnfinishedReport | undefined> {
    const age = deps.now().getTime() - Date.parse(mark.at);
    if (mark.source !== 'bypass' || !(age > reportGraceMs && age < reportRepairWindowMs)) {
        return undefined;
    }
    if (await deps.requests.get(mark.requestId)) {
        return undefined;
    }
    const opening = (await deps.audit.list(mark.requestId)).find((e) => e.action === 'bypassed');
    // An accepted bypass has its entry and, by design, no alert.
    if ((opening?.after as { action?: unknown } | undefined)?.action === 'accept') {
        return undefined;
    }
    return { requestId: mark.requestId, entryWritten: opening !== undefined };
}

/** A report to finish: the id its mark names, and whether its `bypassed` entry made it into the trail. */
interface UnfinishedReport {
    requestId: string;
    entryWritten: boolean;
}

async function report(
    deps: WorkflowDeps,
    input: BypassInput,
    log: Logger,
    resume?: UnfinishedReport,
): Promise<BypassOutcome> {
    const marks = deps.marks!;
    const { pec } = input;
    const [context, origin] = await Promise.all([
        input.serverContext(),
        resolveOrigin(deps, pec.privateEndpointId, log),
    ]);
    const facts = buildFacts(pec, context, deps.settings.trustedSubscriptionIds, origin);
    const decision = evaluateBypass(
        deps.settings.policy,
        policySubject(facts, { ourTenantId: deps.settings.tenantId }),
    );
    const now = deps.now();
    const id = resume?.requestId ?? deps.newId();
    if (resume) {
        log.warn(`Finishing the report of bypass ${id} on ${pec.id}: its mark was taken, its alert never recorded`);
    } else if (
        !(await marks.insertIfNone({
            pecId: pec.id,
            source: 'bypass',
            requestId: id,
            at: now.toISOString(),
            ...endpointOf(pec),
        }))
    ) {
        return { kind: 'accounted', reason: 'another invocation reported it first' };
    }
    const correlationId = input.correlationId;
    if (!resume?.entryWritten) {
        await deps.audit.append(
            {
                requestId: id,
                action: 'bypassed',
                actor: input.requester ? requesterActor(input.requester) : { kind: 'system' },
                correlationId,
                after: {
                    pec: { id: pec.id, status: pec.status, description: pec.description },
                    origin: originSummary(origin),
                    requester: input.requester ?? 'unknown',
                    rule: decision.ruleId ?? 'default',
                    action: decision.action.type,
                },
                detail:
                    `approved without the gate (seen by the ${input.detectedBy}); ` +
                    `${decision.ruleId ? `bypass rule ${decision.ruleId}` : 'default'}: ${decision.action.type}`,
            },
            { first: true },
        );
    }
    const logLine =
        `BYPASS ${pec.id}: approved without the gate, from ${origin.subscriptionId ?? 'an unknown subscription'} ` +
        `(${origin.source}${origin.tenantId ? `, tenant ${origin.tenantId}` : ''}); ${decision.action.type}`;
    if (decision.action.type === 'accept') {
        log.info(logLine);
        return { kind: 'reported', requestId: id, action: 'accept' };
    }
    log.warn(`ALERT ${logLine}`);

    const link = issueLinkToken(now, deps.settings.linkTokenTtlHours);
    let alert: ApprovalRequest = withAlertApprovals(deps, {
        ...openRequest({
            id,
            pecId: pec.id,
            facts,
            ...(input.requester ? { requester: input.requester } : {}),
            correlationId,
            now,
        }),
        bypass: {
            detectedBy: input.detectedBy,
            ...(decision.ruleId ? { ruleId: decision.ruleId } : {}),
            action: decision.action.type,
            description: pec.description,
        },
    });
    if (decision.action.type === 'revoke' && decision.ruleId) {
        const revoke: Decision = {
            action: 'reject',
            by: { name: `policy rule ${decision.ruleId}` },
            text: decision.action.text,
            at: now.toISOString(),
            auto: { kind: 'policy', ruleId: decision.ruleId },
            bypass: true,
        };
        alert = transition({ ...alert, policyRuleId: decision.ruleId }, { type: 'decide', decision: revoke }, now);
    }
    const { created, stored } = await deps.requests.createIfNone(withCardClaim(alert, now, link.grant));
    if (!created) {
        // A request opened for the connection meanwhile (it went back to Pending): that request is the question now.
        return { kind: 'reported', requestId: id, action: decision.action.type };
    }
    await auditAlertApprovals(deps, alert);
    if (alert.status === 'decided') {
        await deps.audit.append({
            requestId: id,
            action: 'decided',
            actor: { kind: 'policy', id: decision.ruleId },
            correlationId,
            before: { status: 'pending' },
            after: { status: 'decided', action: 'reject' },
            text: alert.decision?.text,
            detail: `bypass rule ${decision.ruleId}: revoke`,
        });
    }
    const card = await ensureCard(deps, stored, log, { claimedWith: link.token });
    if (alert.status === 'decided' && card !== 'claimed-elsewhere') {
        await deps.applyQueue.send({ requestId: id, correlationId });
    }
    return { kind: 'reported', requestId: id, action: decision.action.type, card };
}

/**
 * After an apply reached ARM: a connection the gate approved (or kept) is marked as the gate's, so it is never
 * reported; one it rejected or revoked loses any mark, so an approval outside later on is a new bypass.
 */
export async function noteAppliedState(deps: WorkflowDeps, request: ApprovalRequest, after: Pec): Promise<void> {
    if (!deps.marks) {
        return;
    }
    if (after.status === 'Approved' && request.decision?.action === 'approve') {
        await deps.marks.put({
            pecId: request.pecId,
            source: 'gate',
            requestId: request.id,
            at: deps.now().toISOString(),
            ...endpointOf(after),
        });
    } else if (after.status !== 'Approved') {
        await deps.marks.remove(request.pecId);
    }
}

/** A connection seen Rejected or Disconnected has nothing to account for; a later approval is judged anew. */
export async function forgetIfNotApproved(deps: WorkflowDeps, pec: Pec, log: Logger): Promise<void> {
    if (!deps.marks || pec.status === 'Approved' || pec.status === 'Pending') {
        return;
    }
    await deps.marks.remove(pec.id).catch((err: unknown) => {
        log.warn(`Could not clear the mark of ${pec.id}: ${ensureErrorType(err).message}`);
    });
}

function endpointOf(pec: Pec): { privateEndpointId?: string } {
    return pec.privateEndpointId ? { privateEndpointId: pec.privateEndpointId } : {};
}

export function originSummary(origin: Origin) {
    return {
        subscriptionId: origin.subscriptionId ?? 'unknown',
        tenantId: origin.tenantId ?? 'unknown',
        trusted: origin.trusted,
        source: origin.source,
    };
}

function requesterActor(requester: Requester) {
    return {
        kind: 'requester' as const,
        ...(requester.objectId ? { id: requester.objectId } : {}),
        ...(requester.upn || requester.name ? { name: requester.upn ?? requester.name } : {}),
    };
}

/** One subscription and server kind, as one sweep saw it in full (every server's connections listed). */
export interface WatchedScope {
    subscriptionId: string;
    kind: string;
    servers: { server: ServerRef; pecs: Pec[] }[];
    /** When its listing began: a mark written after that may be newer than what the listing shows. */
    listedAt?: string;
}

export interface ApprovedSweepReport {
    /** Alerts (and revokes) opened for connections approved without the gate, by request id. */
    bypasses: string[];
    /** Connections recorded as the baseline of a newly watched scope. */
    baselined: string[];
    /** The baseline requests listed on the summary card (untrusted or unknown origin). */
    baselineReview: string[];
    errors: { what: string; error: unknown }[];
}

/**
 * The sweep's part: scopes seen for the first time get their baseline; in the others, every Approved connection that
 * nothing accounts for is judged, which catches a bypass whose event was lost. Marks are read with one query.
 */
export async function sweepApproved(
    deps: WorkflowDeps,
    scopes: readonly WatchedScope[],
    correlationId: string,
    log: Logger,
): Promise<ApprovedSweepReport> {
    const result: ApprovedSweepReport = { bypasses: [], baselined: [], baselineReview: [], errors: [] };
    const marks = deps.marks;
    if (!marks || scopes.length === 0) {
        return result;
    }
    const contexts = new Map<string, Promise<ServerContext>>();
    const contextOf = (server: ServerRef, pecs: Pec[]) => () => {
        const key = serverKey(server);
        let context = contexts.get(key);
        if (!context) {
            context = deps.arm.getServerContext(server, pecs);
            contexts.set(key, context);
        }
        return context;
    };

    const fresh: WatchedScope[] = [];
    const toJudge: { pec: Pec; context: () => Promise<ServerContext> }[] = [];
    const left: { pec: Pec; listedAt: number }[] = [];
    for (const scope of scopes) {
        try {
            if (await marks.isBaselined(scope.subscriptionId, scope.kind)) {
                for (const { server, pecs } of scope.servers) {
                    for (const pec of pecs) {
                        if (pec.status === 'Approved') {
                            toJudge.push({ pec, context: contextOf(server, pecs) });
                        } else if (pec.status !== 'Pending' && scope.listedAt) {
                            left.push({ pec, listedAt: Date.parse(scope.listedAt) });
                        }
                    }
                }
            } else {
                fresh.push(scope);
            }
        } catch (err) {
            result.errors.push({ what: `read the baseline of ${scope.kind} in ${scope.subscriptionId}`, error: err });
        }
    }

    const review: BaselineEntry[] = [];
    for (const scope of fresh) {
        try {
            await takeBaseline(deps, scope, contextOf, correlationId, result, review, log);
        } catch (err) {
            result.errors.push({ what: `take the baseline of ${scope.kind} in ${scope.subscriptionId}`, error: err });
        }
    }
    if (review.length > 0) {
        await postBaselineSummary(deps, review, result.baselined.length, log).catch((err: unknown) => {
            result.errors.push({ what: 'post the baseline summary card', error: err });
        });
    }

    if (toJudge.length > 0 || left.length > 0) {
        let marked: Map<string, ConnectionMark>;
        try {
            marked = await marks.listMarked();
        } catch (err) {
            result.errors.push({ what: 'list the connection marks', error: err });
            return result;
        }
        // A mark stands for an approval. One whose connection the listing shows Rejected or Disconnected outlived it
        // (the event that said so was lost): it goes, so approving the connection again is judged, not taken as
        // accounted for. Only marks older than the listing: a newer one may be an approval the listing predates.
        for (const { pec, listedAt } of left) {
            const mark = marked.get(idKey(pec.id));
            if (mark && Date.parse(mark.at) < listedAt) {
                await marks.removeIfNamed(pec.id, { requestId: mark.requestId, at: mark.at }).then(
                    (removed) =>
                        removed && log.info(`Sweep: ${pec.id} is ${pec.status}; its ${mark.source} mark is cleared`),
                    (err: unknown) => result.errors.push({ what: `clear the mark of ${pec.id}`, error: err }),
                );
            }
        }
        // A bypass mark may stand for a report cut short before its alert: judgeApproved looks (unfinishedReport).
        // So may a mark that names another endpoint (the connection was made again under the same name).
        const unmarked = toJudge.filter(({ pec }) => {
            const mark = marked.get(idKey(pec.id));
            return !mark || mark.source === 'bypass' || namesAnotherEndpoint(mark, pec);
        });
        const judged = await settleAll(unmarked, 4, ({ pec, context }) =>
            judgeApproved(
                deps,
                { pec, serverContext: context, requester: undefined, correlationId, detectedBy: 'sweep', marked },
                log,
            ),
        );
        judged.forEach((outcome, i) => {
            if (outcome.status === 'rejected') {
                result.errors.push({ what: `judge ${unmarked[i]?.pec.id ?? '?'}`, error: outcome.reason });
            } else if (outcome.value.kind === 'reported') {
                result.bypasses.push(outcome.value.requestId);
            }
        });
    }
    return result;
}

/**
 * What was Approved before the gate watched a scope is the baseline, never a bypass: each connection gets its mark
 * and an audit entry; those from untrusted or unknown origins get an alert request without a card of its own, listed
 * on one summary card. Nothing is revoked: installing the gate must never cut a production connection. The scope is
 * recorded as baselined last, so a run that fails halfway is finished by the next one (the marks make it idempotent).
 */
async function takeBaseline(
    deps: WorkflowDeps,
    scope: WatchedScope,
    contextOf: (server: ServerRef, pecs: Pec[]) => () => Promise<ServerContext>,
    correlationId: string,
    result: ApprovedSweepReport,
    review: BaselineEntry[],
    log: Logger,
): Promise<void> {
    const marks = deps.marks!;
    for (const { server, pecs } of scope.servers) {
        for (const pec of pecs.filter((p) => p.status === 'Approved')) {
            const origin = await resolveOrigin(deps, pec.privateEndpointId, log);
            const now = deps.now();
            const id = deps.newId();
            if (
                !(await marks.insertIfNone({
                    pecId: pec.id,
                    source: 'baseline',
                    requestId: id,
                    at: now.toISOString(),
                    ...endpointOf(pec),
                }))
            ) {
                continue;
            }
            await deps.audit.append(
                {
                    requestId: id,
                    action: 'baseline',
                    actor: { kind: 'system' },
                    correlationId,
                    after: {
                        pec: { id: pec.id, status: pec.status, description: pec.description },
                        origin: originSummary(origin),
                    },
                    detail: `already Approved when ${scope.kind} servers in subscription ${scope.subscriptionId} were first watched`,
                },
                { first: true },
            );
            result.baselined.push(pec.id);
            if (origin.trusted) {
                continue;
            }
            const facts = buildFacts(
                pec,
                await contextOf(server, pecs)(),
                deps.settings.trustedSubscriptionIds,
                origin,
            );
            const link = issueLinkToken(now, deps.settings.linkTokenTtlHours);
            const request: ApprovalRequest = withAlertApprovals(deps, {
                ...openRequest({ id, pecId: pec.id, facts, correlationId, now }),
                bypass: { detectedBy: 'baseline', action: 'alert', description: pec.description },
                link: link.grant,
            });
            const { created } = await deps.requests.createIfNone(request);
            if (!created) {
                continue;
            }
            await auditAlertApprovals(deps, request);
            result.baselineReview.push(id);
            review.push({
                serverName: server.name,
                pecName: pec.ref.name,
                privateEndpointId: pec.privateEndpointId,
                origin: describeOrigin(origin, deps.settings.tenantId),
                reviewUrl: reviewUrl(deps.settings.publicBaseUrl, id, link.token),
            });
        }
    }
    await marks.markBaselined(scope.subscriptionId, scope.kind, deps.now().toISOString());
    log.info(`Baseline of ${scope.kind} in subscription ${scope.subscriptionId} recorded`);
}

async function postBaselineSummary(
    deps: WorkflowDeps,
    review: BaselineEntry[],
    recorded: number,
    log: Logger,
): Promise<void> {
    const card = renderBaselineCard(review, review.length, recorded);
    if (deps.teams) {
        try {
            await deps.teams.postCard(card, baselineSummary(review.length));
            return;
        } catch (err) {
            if (!deps.webhook) {
                throw err;
            }
            log.warn(`Baseline summary: bot post failed, trying the webhook: ${ensureErrorType(err).message}`);
        }
    }
    await deps.webhook?.postCard(card);
}

function describeOrigin(origin: Origin, ourTenantId: string): string {
    if (origin.trusted) {
        return 'trusted subscription';
    }
    if (!origin.tenantId) {
        return `unknown origin (subscription ${origin.subscriptionId ?? 'unknown'})`;
    }
    return origin.tenantId === ourTenantId.toLowerCase()
        ? `our tenant, untrusted subscription ${origin.subscriptionId ?? ''}`
        : `ANOTHER tenant ${origin.tenantId} (subscription ${origin.subscriptionId ?? 'unknown'})`;
}

/** An alert whose card never went out (a failed post) gets it from the next event or sweep that finds it. */
export async function ensureAlertCard(deps: WorkflowDeps, stored: StoredRequest, log: Logger): Promise<PostOutcome> {
    const request = stored.request;
    if (!request.bypass || request.bypass.detectedBy === 'baseline' || request.card) {
        return 'already-posted';
    }
    const card = await ensureCard(deps, stored, log);
    if (request.status === 'decided' && request.decision?.auto && !request.applying && card !== 'claimed-elsewhere') {
        await deps.applyQueue.send({ requestId: request.id, correlationId: request.correlationId });
    }
    return card;
}

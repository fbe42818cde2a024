import { approverLabel, armDescription, outsideChange, showsOwnDecision, targetStatus } from '../domain/decision';
import { ensureErrorType, isRetryable, statusCodeOf } from '../domain/errors';
import { parsePecId } from '../domain/ids';
import type { Pec } from '../domain/pec';
import { expectedPecStatus, transition, type ApprovalRequest } from '../domain/request';
import type { ApplyMessage } from '../storage/applyQueue';
import type { StoredRequest } from '../storage/requestStore';
import { syncPostedCard } from './cardUpdate';
import type { WorkflowDeps } from './deps';
import type { Logger } from '../observability/logger';
import { supersede } from './decide';
import { noteAppliedState } from './bypass';
import { updateRequest } from './requestUpdate';

/**
 * Applying a recorded decision through ARM. Runs once per queue message and may run again for the same request (a
 * redelivery, a duplicate message), so every step first checks whether it was already done.
 */

export interface ApplyDelivery {
    /** The queue message's id: the apply lease names it, so a redelivery of the same message can take over. */
    messageId: string;
    /** 1 on the first delivery. */
    attempt: number;
    maxAttempts: number;
}

export type ApplyOutcome = 'applied' | 'superseded' | 'failed' | 'already-done' | 'not-found' | 'busy';

/** A serialized operation larger than this is not stored (it is a few hundred characters; a table cell holds 64 KiB). */
const maxOperationChars = 8_000;

/** How long an apply may hold its lease before another message may assume it died: the LRO deadline and a margin. */
export function applyLeaseMs(lroDeadlineMs: number): number {
    return lroDeadlineMs + 60_000;
}

export async function applyDecision(
    deps: WorkflowDeps,
    message: ApplyMessage,
    delivery: ApplyDelivery,
    log: Logger,
): Promise<ApplyOutcome> {
    let stored = await deps.requests.get(message.requestId);
    if (!stored) {
        log.error(`Apply: request ${message.requestId} does not exist; message dropped`);
        return 'not-found';
    }
    if (stored.request.status !== 'decided') {
        // Done before (or superseded): make sure the card caught up, which a failed update may have left behind.
        await syncPostedCard(deps, stored, log);
        return 'already-done';
    }

    const now = deps.now();
    // Taking the lease survives losing a race to an unrelated write (a card sync, the sweep's re-queue mark): the
    // request is read again and the lease taken on top, unless another message now holds a live one.
    const leased = await updateRequest(deps.requests, stored, (current) =>
        current.status === 'decided' && !heldElsewhere(current, delivery.messageId, now, deps.settings.lroDeadlineMs)
            ? {
                  ...current,
                  applying: {
                      at: now.toISOString(),
                      messageId: delivery.messageId,
                      // An operation an earlier delivery started stays known, so this one polls it instead of a PUT.
                      ...(current.applying?.operation ? { operation: current.applying.operation } : {}),
                  },
              }
            : undefined,
    );
    if (!leased) {
        log.error(`Apply: request ${message.requestId} disappeared; message dropped`);
        return 'not-found';
    }
    if (!leased.changed) {
        if (leased.stored.request.status !== 'decided') {
            await syncPostedCard(deps, leased.stored, log);
            return 'already-done';
        }
        // Another message is applying this decision right now; if it dies, its own redelivery takes over.
        log.warn(
            `Apply: request ${message.requestId} is being applied by message ${leased.stored.request.applying?.messageId}`,
        );
        return 'busy';
    }
    stored = leased.stored;

    try {
        return await applyLeased(deps, stored, log);
    } catch (err) {
        const e = ensureErrorType(err);
        const last = delivery.attempt >= delivery.maxAttempts;
        if (isRetryable(e) && !last) {
            log.warn(`Apply: request ${message.requestId}, attempt ${delivery.attempt}: ${e.message}; will retry`);
            throw e;
        }
        await fail(deps, message.requestId, e, log);
        if (isRetryable(e)) {
            // The last attempt: rethrow so the host moves the message to the poison queue, where nothing is lost.
            throw e;
        }
        return 'failed';
    }
}

async function applyLeased(deps: WorkflowDeps, leased: StoredRequest, log: Logger): Promise<ApplyOutcome> {
    // Everyone's card stops offering the buttons first (the click answered only its own approver, to answer fast). It
    // runs before ARM's part, so the card's update to the outcome always comes after it; a failure leaves it to the
    // outcome's update or the sweep.
    let stored = await syncPostedCard(deps, leased, log).catch((err: unknown) => {
        log.warn(`Card of request ${leased.request.id} not updated to decided: ${ensureErrorType(err).message}`);
        return leased;
    });
    const request = stored.request;
    const decision = request.decision;
    if (!decision) {
        throw new Error(`Request ${request.id} is decided but carries no decision`);
    }
    const ref = parsePecId(request.pecId);
    const status = targetStatus(decision.action);
    const description = armDescription(decision);

    // The trail is read once, under the lease. A decision whose own entry failed after its write (the click was retried
    // and found the request decided; a policy's entry when its request opened) gets it here, before the change it
    // authorises reaches ARM, so that no PEC changes without its decision in the trail.
    const trail = await deps.audit.list(request.id);
    // An expiry's automatic reject is recorded as `expired`; every other decision as `decided`.
    const entry = decision.auto?.kind === 'expiry' ? 'expired' : 'decided';
    if (!trail.some((e) => e.action === entry)) {
        await deps.audit.append({
            requestId: request.id,
            action: entry,
            actor:
                decision.auto?.kind === 'policy'
                    ? { kind: 'policy', id: decision.auto.ruleId }
                    : decision.auto
                      ? { kind: 'system' }
                      : { kind: 'approver', id: decision.by.objectId, name: approverLabel(decision.by) },
            correlationId: request.correlationId,
            before: { status: 'pending' },
            after: { status: 'decided', action: decision.action },
            text: decision.text,
            detail: `recorded late, at the apply: the decision's own entry was not written (decided ${decision.at})`,
        });
    }

    const before = await deps.arm.getPec(ref);
    if (!before) {
        await supersede(deps, stored, 'the connection was removed before the decision was applied', log);
        return 'superseded';
    }
    let after: Pec;
    if (showsOwnDecision(request, before)) {
        // An earlier attempt got through to ARM and died before recording it.
        if (before.description !== description) {
            log.warn(`Apply: request ${request.id} found ${status} with the description "${before.description}"`);
        }
        after = before;
    } else {
        const outside = outsideChange(before, expectedPecStatus(request), request.facts.privateEndpointId);
        if (outside) {
            await supersede(deps, stored, outside, log);
            return 'superseded';
        }
        const messageId = request.applying?.messageId;
        // The evidence that a PUT of this decision may have reached ARM, written before it goes out (see putSentAt).
        const stamp = deps.now().toISOString();
        const marked = await updateRequest(deps.requests, stored, (current) =>
            current.status === 'decided' && current.applying?.messageId === messageId
                ? { ...current, putSentAt: current.putSentAt ?? stamp }
                : undefined,
        );
        if (!marked?.changed) {
            // Decided no longer, or another message took the lease: this delivery sends nothing.
            log.warn(`Apply: request ${request.id} changed hands before its PUT; this delivery sends nothing`);
            return marked ? 'busy' : 'not-found';
        }
        // The writes below start from this version, so they do not each meet it as a conflict first.
        stored = marked.stored;
        let accepted = false;
        after = await deps.arm
            .setPecState(ref, status, description, before, {
                ...(request.applying?.operation ? { operation: request.applying.operation } : {}),
                onStarted: async (operation) => {
                    accepted = true;
                    if (operation.length > maxOperationChars || !messageId) {
                        return;
                    }
                    await updateRequest(deps.requests, stored, (current) =>
                        current.status === 'decided' && current.applying?.messageId === messageId
                            ? { ...current, applying: { ...current.applying, operation } }
                            : undefined,
                    ).catch((err: unknown) => {
                        // Not fatal: a later delivery finds the operation in flight through ARM and waits for it.
                        log.warn(
                            `Apply: operation of request ${request.id} not stored: ${ensureErrorType(err).message}`,
                        );
                    });
                },
            })
            .catch(async (err: unknown) => {
                if (!accepted && isRefusal(err) && marked.stored.request.putSentAt === stamp) {
                    // ARM refused this delivery's PUT (a 4xx, not a throttle or a conflict): nothing of ours reached the
                    // connection, so its record goes and a decided state found later is not taken for the gate's.
                    await updateRequest(deps.requests, stored, (current) =>
                        current.putSentAt === stamp ? withoutPutSent(current) : undefined,
                    ).catch(() => undefined);
                }
                throw err;
            });
    }

    if (after.status === 'Approved' && status !== 'Approved') {
        // Read back Approved after a reject or revoke: someone approved the connection between ARM finishing ours and
        // the read. That approval is not this decision's outcome: it is superseded as an outside change, so the
        // approval is judged as a bypass, never marked as the gate's.
        await supersede(
            deps,
            stored,
            `the connection was set to Approved outside this app while it was being ${status.toLowerCase()} ("${after.description}")`,
            log,
        );
        return 'superseded';
    }
    // The gate's own approval (or Keep) is never reported as a bypass; a connection it revoked may be approved again
    // outside, and that is a new bypass.
    await noteAppliedState(deps, request, after);

    // The entry goes in before the request is marked applied, still under the lease: once the request is applied no
    // delivery comes back to it, so an entry that failed after the mark would be missing for good. A delivery that
    // comes back after a failure here or in the mark finds the change in ARM and, through the trail, the entry.
    if (!trail.some((e) => e.action === 'applied')) {
        await deps.audit.append({
            requestId: request.id,
            action: 'applied',
            actor: { kind: 'system' },
            correlationId: request.correlationId,
            before: { status: before.status, description: before.description },
            after: {
                status: after.status,
                description: after.description,
                provisioningState: after.provisioningState,
            },
            text: decision.text,
            detail: `${status} by ${approverLabel(decision.by)}`,
        });
    }
    // If someone else recorded the outcome meanwhile, theirs stands.
    const written = await updateRequest(deps.requests, stored, (current) =>
        current.status === 'decided' ? transition(withoutLease(current), { type: 'apply' }, deps.now()) : undefined,
    );
    if (!written?.changed) {
        return 'already-done';
    }
    await syncPostedCard(deps, written.stored, log);
    return 'applied';
}

async function fail(deps: WorkflowDeps, requestId: string, error: Error, log: Logger): Promise<void> {
    const reason = error.message.slice(0, 400);
    const stored = await deps.requests.get(requestId);
    const written =
        stored &&
        (await updateRequest(deps.requests, stored, (current) =>
            current.status === 'decided'
                ? transition(withoutLease(current), { type: 'fail', reason }, deps.now())
                : undefined,
        ));
    if (!written?.changed) {
        return;
    }
    await deps.audit.append({
        requestId,
        action: 'failed',
        actor: { kind: 'system' },
        correlationId: written.stored.request.correlationId,
        before: { status: 'decided' },
        after: { status: 'failed' },
        detail: reason,
    });
    log.error(`ALERT request ${requestId}: the decision could not be applied: ${reason}`);
    await syncPostedCard(deps, written.stored, log).catch((err: unknown) => {
        log.warn(`Card of request ${requestId} not updated: ${ensureErrorType(err).message}`);
    });
}

/** Whether another message holds a lease that has not yet run out. */
function heldElsewhere(request: ApprovalRequest, messageId: string, now: Date, lroDeadlineMs: number): boolean {
    const lease = request.applying;
    return (
        lease !== undefined &&
        lease.messageId !== messageId &&
        now.getTime() - new Date(lease.at).getTime() < applyLeaseMs(lroDeadlineMs)
    );
}

function withoutPutSent(request: ApprovalRequest): ApprovalRequest {
    const { putSentAt: _refused, ...rest } = request;
    return rest;
}

/** A 4xx that says the request itself was refused; a throttle, a conflict or a timeout says nothing of its fate. */
function isRefusal(err: unknown): boolean {
    const status = statusCodeOf(err) ?? statusCodeOf((err as { cause?: unknown } | undefined)?.cause);
    return status !== undefined && status >= 400 && status < 500 && ![408, 409, 429].includes(status);
}

/** The lease ends with the apply: a final request is never applied again. */
function withoutLease(request: ApprovalRequest): ApprovalRequest {
    const { applying: _done, ...rest } = request;
    return rest;
}

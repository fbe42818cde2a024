import { armDescription, targetStatus } from '../domain/decision';
import { ConcurrencyError, ensureErrorType, isRetryable } from '../domain/errors';
import { parsePecId } from '../domain/ids';
import type { Pec } from '../domain/pec';
import { transition } from '../domain/request';
import type { ApplyMessage } from '../storage/applyQueue';
import type { StoredRequest } from '../storage/requestStore';
import { syncPostedCard } from './cardUpdate';
import type { Logger, WorkflowDeps } from './deps';
import { supersede } from './decide';

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

    const lease = stored.request.applying;
    const now = deps.now();
    if (
        lease &&
        lease.messageId !== delivery.messageId &&
        now.getTime() - new Date(lease.at).getTime() < applyLeaseMs(deps.settings.lroDeadlineMs)
    ) {
        // Another message is applying this decision right now; if it dies, its own redelivery takes over.
        log.warn(`Apply: request ${message.requestId} is being applied by message ${lease.messageId}`);
        return 'busy';
    }
    try {
        stored = await deps.requests.update(stored, {
            ...stored.request,
            applying: { at: now.toISOString(), messageId: delivery.messageId },
        });
    } catch (err) {
        if (err instanceof ConcurrencyError) {
            log.warn(
                `Apply: request ${message.requestId} changed while taking the lease; leaving it to the other writer`,
            );
            return 'busy';
        }
        throw err;
    }

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

async function applyLeased(deps: WorkflowDeps, stored: StoredRequest, log: Logger): Promise<ApplyOutcome> {
    const request = stored.request;
    const decision = request.decision;
    if (!decision) {
        throw new Error(`Request ${request.id} is decided but carries no decision`);
    }
    const ref = parsePecId(request.pecId);
    const status = targetStatus(decision.action);
    const description = armDescription(decision);

    const before = await deps.arm.getPec(ref);
    let after: Pec;
    if (!before) {
        await supersede(deps, stored, 'the connection was removed before the decision was applied', log);
        return 'superseded';
    }
    if (before.status === status && before.description === description) {
        // An earlier attempt got through to ARM and died before recording it.
        after = before;
    } else if (before.status !== 'Pending') {
        const text = before.description ? ` ("${before.description}")` : '';
        await supersede(deps, stored, `the connection was set to ${before.status} outside this app${text}`, log);
        return 'superseded';
    } else {
        after = await deps.arm.setPecState(ref, status, description, before);
    }

    let current = stored;
    for (;;) {
        try {
            const { applying: _done, ...rest } = current.request;
            current = await deps.requests.update(current, transition(rest, { type: 'apply' }, deps.now()));
            break;
        } catch (err) {
            if (!(err instanceof ConcurrencyError)) {
                throw err;
            }
            const fresh = await deps.requests.get(request.id);
            if (!fresh || fresh.request.status !== 'decided') {
                // Someone else recorded the outcome; theirs stands.
                return 'already-done';
            }
            current = fresh;
        }
    }
    await deps.audit.append({
        requestId: request.id,
        action: 'applied',
        actor: { kind: 'system' },
        correlationId: request.correlationId,
        before: { status: before.status, description: before.description },
        after: { status: after.status, description: after.description, provisioningState: after.provisioningState },
        text: decision.text,
        detail: `${status} by ${decision.by.upn ?? decision.by.name ?? decision.by.objectId ?? 'unknown'}`,
    });
    await syncPostedCard(deps, current, log);
    return 'applied';
}

async function fail(deps: WorkflowDeps, requestId: string, error: Error, log: Logger): Promise<void> {
    const reason = error.message.slice(0, 400);
    for (let i = 0; i < 5; i++) {
        const stored = await deps.requests.get(requestId);
        if (!stored || stored.request.status !== 'decided') {
            return;
        }
        try {
            const { applying: _gone, ...rest } = stored.request;
            const failed = await deps.requests.update(stored, transition(rest, { type: 'fail', reason }, deps.now()));
            await deps.audit.append({
                requestId,
                action: 'failed',
                actor: { kind: 'system' },
                correlationId: stored.request.correlationId,
                before: { status: 'decided' },
                after: { status: 'failed' },
                detail: reason,
            });
            log.error(`ALERT request ${requestId}: the decision could not be applied: ${reason}`);
            await syncPostedCard(deps, failed, log).catch((err: unknown) => {
                log.warn(`Card of request ${requestId} not updated: ${ensureErrorType(err).message}`);
            });
            return;
        } catch (err) {
            if (!(err instanceof ConcurrencyError)) {
                throw err;
            }
        }
    }
}

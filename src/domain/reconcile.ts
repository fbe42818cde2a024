import { RESPONSE_TEXT_MAX_LENGTH } from './card';
import { transition, type ApprovalRequest, type Decision } from './request';

/**
 * What the sweep does to an open request when no event or click moves it: remind the approvers, expire it, or re-queue
 * a decision whose apply got lost. Pure, with the clock passed in, so days of waiting are tested in milliseconds.
 */

export const expiryActions = ['leave', 'reject'] as const;
export type ExpiryAction = (typeof expiryActions)[number];

export interface ReconcileSettings {
    /** Between reminders (and from the card to the first one); 0 turns reminders off. */
    reminderIntervalHours: number;
    reminderMaxCount: number;
    /** From opening to expiry; 0 means requests never expire. */
    expiryHours: number;
    expiryAction: ExpiryAction;
    /** The ARM description's text when expiry rejects. */
    expiryRejectText: string;
    /** A decision not applied this long after it was recorded (or last re-queued) is queued again. */
    stuckApplyMinutes: number;
}

export type DueAction = 'expire' | 'remind' | 'requeue';

const hour = 3_600_000;
const minute = 60_000;

/** The one thing due for this request now, if any. Expiry wins over a reminder: nobody is reminded of a closed question. */
export function dueAction(request: ApprovalRequest, now: Date, settings: ReconcileSettings): DueAction | undefined {
    const t = now.getTime();
    if (request.status === 'pending') {
        if (settings.expiryHours > 0 && t - Date.parse(request.createdAt) >= settings.expiryHours * hour) {
            return 'expire';
        }
        return reminderDue(request, t, settings) ? 'remind' : undefined;
    }
    if (request.status === 'decided' && request.decision) {
        const last = Math.max(
            Date.parse(request.decision.at),
            request.applying ? Date.parse(request.applying.at) : 0,
            request.requeuedAt ? Date.parse(request.requeuedAt) : 0,
        );
        return t - last >= settings.stuckApplyMinutes * minute ? 'requeue' : undefined;
    }
    return undefined;
}

function reminderDue(request: ApprovalRequest, t: number, settings: ReconcileSettings): boolean {
    // Reminders are replies in the card's thread, which only a bot card has.
    if (settings.reminderIntervalHours <= 0 || request.card?.channel !== 'bot') {
        return false;
    }
    const sent = request.reminders?.count ?? 0;
    if (sent >= settings.reminderMaxCount) {
        return false;
    }
    const since = Date.parse(request.reminders?.lastAt ?? request.card.postedAt);
    return t - since >= settings.reminderIntervalHours * hour;
}

/** The request after a reminder went out. */
export function recordReminder(request: ApprovalRequest, now: Date): ApprovalRequest {
    const at = now.toISOString();
    return { ...request, reminders: { count: (request.reminders?.count ?? 0) + 1, lastAt: at }, updatedAt: at };
}

/** Why the request expired, as the card and the audit say it. */
export function expiryReason(settings: ReconcileSettings): string {
    return settings.expiryAction === 'reject'
        ? `no decision within ${settings.expiryHours} hours, so it is rejected automatically`
        : `no decision within ${settings.expiryHours} hours; the connection stays Pending in Azure, decide it in the portal`;
}

/**
 * Expiry's default action on a pending request: `leave` closes the request as expired and leaves the PEC alone;
 * `reject` makes an automatic reject the request's decision, which the apply queue then carries to ARM like any other.
 */
export function expire(request: ApprovalRequest, now: Date, settings: ReconcileSettings): ApprovalRequest {
    if (settings.expiryAction === 'leave') {
        return transition(request, { type: 'expire', reason: expiryReason(settings) }, now);
    }
    const decision: Decision = {
        action: 'reject',
        by: { name: 'automatic expiry' },
        text: settings.expiryRejectText.slice(0, RESPONSE_TEXT_MAX_LENGTH),
        at: now.toISOString(),
        auto: { kind: 'expiry', afterHours: settings.expiryHours },
    };
    return transition(request, { type: 'decide', decision }, now);
}

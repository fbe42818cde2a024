import { buildCardView, cleanText, type CardAudience, type CardView } from '../domain/card';
import { ConcurrencyError, ensureErrorType, isRetryable } from '../domain/errors';
import { cardStateOf, isOpen, requiredApprovalsOf, type ApprovalRequest } from '../domain/request';
import type { StoredRequest } from '../storage/requestStore';
import { renderAdaptiveCard } from '../teams/adaptiveCard';
import type { AdaptiveCardJson } from '../teams/teamsChannel';
import { cardOptions, type WorkflowDeps } from './deps';
import { sharedCardOptions } from './refreshIds';
import type { Logger } from '../observability/logger';

/**
 * Keeping the posted card in step with the request. The request records which status its card shows (`cardShows`),
 * so an update that failed is retried by whoever touches the request next (a redelivered queue message, the sweep),
 * instead of being forgotten.
 */

/** The card one person sees for a request: the bot renders it for invoke answers, the page reuses the same view. */
export function viewFor(
    deps: WorkflowDeps,
    request: ApprovalRequest,
    audience: CardAudience,
    extra: { error?: string; responseText?: string; refreshUserIds?: readonly string[] } = {},
): CardView {
    return buildCardView(request, { ...cardOptions(deps), audience, delivery: 'bot', ...extra });
}

export function cardFor(
    deps: WorkflowDeps,
    request: ApprovalRequest,
    audience: CardAudience,
    extra: { error?: string; responseText?: string; refreshUserIds?: readonly string[] } = {},
): AdaptiveCardJson {
    return renderAdaptiveCard(viewFor(deps, request, audience, extra));
}

/**
 * Updates the card for everyone when it shows an older status, and adds a reply in its thread when the request
 * reached a final state. Returns the stored request with `cardShows` advanced. A transient failure is thrown so that
 * the caller's trigger retries; anything else is logged and left for the sweep.
 */
export async function syncPostedCard(
    deps: WorkflowDeps,
    stored: StoredRequest,
    log: Logger,
    retried = false,
): Promise<StoredRequest> {
    const { request } = stored;
    const state = cardStateOf(request);
    if (!request.card || request.cardShows === state) {
        return stored;
    }
    const view = await sharedView(deps, request, log);
    try {
        if (request.card.channel === 'bot' && deps.teams) {
            await deps.teams.updateCard(request.card, renderAdaptiveCard(view));
            const note = threadNote(request);
            if (note) {
                await deps.teams.reply(request.card, note);
            }
        } else if (request.card.channel === 'webhook' && deps.webhook && !isOpen(request.status)) {
            // A webhook message cannot be edited: the outcome goes to the channel as a new card.
            await deps.webhook.postCard(renderAdaptiveCard(view));
        }
    } catch (err) {
        const e = ensureErrorType(err);
        if (isRetryable(e)) {
            throw e;
        }
        log.error(`ALERT card of request ${request.id} could not be updated to ${request.status}: ${e.message}`);
        return stored;
    }
    try {
        return await deps.requests.update(stored, { ...request, cardShows: state });
    } catch (err) {
        if (err instanceof ConcurrencyError) {
            // Someone moved the request on while this card was drawn from an older copy. Whoever did may have synced
            // the card before this update overwrote it, so look again once: the card must end on the newest state.
            const fresh = await deps.requests.get(request.id);
            if (retried || !fresh || cardStateOf(fresh.request) === state) {
                return fresh ?? stored;
            }
            if (fresh.request.cardShows !== cardStateOf(fresh.request)) {
                return syncPostedCard(deps, fresh, log, true);
            }
            // The other writer synced (and replied) first, then this older drawing replaced its card: redraw only.
            if (fresh.request.card?.channel === 'bot' && deps.teams) {
                const redrawn = await sharedView(deps, fresh.request, log);
                await deps.teams.updateCard(fresh.request.card, renderAdaptiveCard(redrawn));
            }
            return fresh;
        }
        throw err;
    }
}

/**
 * The card everyone shares. A bot card never carries live buttons: while the request is open each approver who can
 * still act gets them in their own refreshed view, and the update names those approvers again (`refresh.userIds`), so
 * their views refresh with it. A webhook card only shows the status.
 */
async function sharedView(deps: WorkflowDeps, request: ApprovalRequest, log: Logger): Promise<CardView> {
    if ((request.card?.channel ?? 'bot') === 'webhook') {
        return buildCardView(request, { ...cardOptions(deps), audience: 'viewer', delivery: 'webhook' });
    }
    return buildCardView(request, {
        ...cardOptions(deps),
        ...(await sharedCardOptions(deps, request, log)),
        delivery: 'bot',
    });
}

/** The thread reply for a final state: what happened, in one line. */
export function threadNote(request: ApprovalRequest): string | undefined {
    const d = request.decision;
    switch (request.status) {
        case 'pending': {
            const last = request.approvals?.at(-1);
            if (!last) {
                return undefined;
            }
            const required = requiredApprovalsOf(request);
            const given = request.approvals?.length ?? 0;
            const who = cleanText(last.by.name, 200) || cleanText(last.by.upn, 200) || 'an approver';
            return `${who} approved (${given} of ${required}). ${required - given} more approval${required - given === 1 ? ' is' : 's are'} needed, from someone else.`;
        }
        case 'applied': {
            if (!d) {
                return undefined;
            }
            const verb = d.action === 'approve' ? 'Approved' : 'Rejected';
            const people = d.approvers && d.approvers.length > 1 ? d.approvers : [d.by];
            const who = people
                .map((p) => {
                    const name = cleanText(p.name, 200);
                    const upn = cleanText(p.upn, 200);
                    return name && upn && name !== upn ? `${name} (${upn})` : name || upn || 'unknown';
                })
                .join(' and ');
            const text = cleanText(d.text, 500);
            return `${verb} by ${who}${text ? `: ${text}` : ''}. The connection is now ${verb}.`;
        }
        case 'failed':
            return `Could not apply the decision: ${cleanText(request.outcome?.reason, 300) || 'unknown error'}. Check the connection in the Azure portal.`;
        case 'superseded':
            return `Superseded: ${cleanText(request.outcome?.reason, 300) || 'the connection changed outside this app'}.`;
        case 'expired':
            return `Expired: ${cleanText(request.outcome?.reason, 300) || 'nobody decided in time'}.`;
        default:
            return undefined;
    }
}

import type { AuditActor } from '../domain/audit';
import { ensureErrorType, isRetryable, PermanentError } from '../domain/errors';
import {
    cardStateOf,
    isOpen,
    isRequestId,
    type ApprovalRequest,
    type CardRef,
    type LinkGrant,
    type RequestStatus,
} from '../domain/request';
import { syncPostedCard } from './cardUpdate';
import type { WorkflowDeps } from './deps';
import type { Logger } from '../observability/logger';
import { issueLinkToken } from './linkToken';
import { cardClaimMs, deliver, withoutClaim } from './postCard';
import { updateRequest } from './requestUpdate';

/**
 * Posting a request's card again, for an operator (`pec resend`): the card was deleted in Teams, went to a channel
 * that is gone, or never arrived (`card-failed`). Unlike `ensureCard`, which posts a request's first card and stops
 * once one exists, this replaces whatever card the request has. The new card is drawn from the request as stored now,
 * and the request then points at it, so the old card's buttons stop working (a click must come from the request's
 * own card message) and, for a pending request, so does its web link (a fresh single-use token replaces it).
 */

export type ResendOutcome =
    | { kind: 'posted'; request: ApprovalRequest; card: CardRef; previous?: CardRef; warning?: string }
    | { kind: 'invalid-id'; reason: string }
    | { kind: 'not-found'; reason: string }
    /** Neither pending nor decided: there is no open question for a card to show. */
    | { kind: 'not-open'; status: RequestStatus; reason: string }
    /** Another invocation holds the right to post this request's card right now. */
    | { kind: 'busy'; reason: string }
    | { kind: 'failed'; reason: string; retryable: boolean };

export interface ResendOptions {
    /** Who asked, as the operating system knows them: recorded in the audit entry's detail, not verified. */
    operator?: string;
}

const actor: AuditActor = { kind: 'system', name: 'pec resend' };

export async function resendCard(
    deps: WorkflowDeps,
    requestId: string,
    log: Logger,
    options: ResendOptions = {},
): Promise<ResendOutcome> {
    if (!isRequestId(requestId)) {
        return { kind: 'invalid-id', reason: `${JSON.stringify(requestId)} is not a request id` };
    }
    const stored = await deps.requests.get(requestId);
    if (!stored) {
        return { kind: 'not-found', reason: `No request ${requestId}` };
    }

    // The right to post is taken the way ensureCard takes it, with a conditional write, so a resend never races an
    // event, the sweep or a second resend into two new cards. The same write stores the new link's hash, before the
    // card that carries the plain token exists.
    const now = deps.now();
    const claimAt = now.toISOString();
    let refusal: ResendOutcome | undefined;
    let link: ReturnType<typeof issueLinkToken> | undefined;
    let priorLink: LinkGrant | undefined;
    const claimed = await updateRequest(deps.requests, stored, (current) => {
        refusal = refusalFor(current, now);
        if (refusal) {
            return undefined;
        }
        priorLink = current.link;
        // Only a pending card shows the link; a decided one keeps its grant, which still shows the page to a holder.
        link = current.status === 'pending' ? issueLinkToken(now, deps.settings.linkTokenTtlHours) : undefined;
        return { ...current, cardClaimedAt: claimAt, ...(link ? { link: link.grant } : {}) };
    });
    if (!claimed) {
        return { kind: 'not-found', reason: `Request ${requestId} was deleted` };
    }
    if (refusal) {
        return refusal;
    }

    const shown = claimed.stored.request;
    // The card the claim was taken over (the request may have been re-read since the first look).
    const previous = shown.card;
    const delivered = await deliver(deps, shown, link?.token, log);
    const ref = delivered.ref;
    if (!ref) {
        const error =
            delivered.error ??
            new PermanentError('no delivery is configured (TEAMS_CHANNEL_ID or WORKFLOWS_WEBHOOK_URL)');
        // Nothing changed for anyone: give the claim back and, if the old link was replaced, restore it, so an old
        // card that was not really lost keeps working.
        const ownLink = link?.grant.tokenHash;
        await updateRequest(deps.requests, claimed.stored, (current) =>
            current.cardClaimedAt === claimAt
                ? {
                      ...withoutClaim(current),
                      ...(ownLink && current.link?.tokenHash === ownLink ? { link: priorLink } : {}),
                  }
                : undefined,
        ).catch((err: unknown) => {
            log.warn(`Could not release the card claim of request ${requestId}: ${ensureErrorType(err).message}`);
        });
        await deps.audit.append({
            requestId,
            action: 'card-failed',
            actor,
            correlationId: shown.correlationId,
            detail: `resend: ${error.message}${operatorNote(options)}`,
        });
        return { kind: 'failed', reason: error.message, retryable: isRetryable(error) };
    }

    // Whatever happened to the request while the card was on its way (a decision on the web page, say) is kept: only
    // the card, what it shows and the claim are written, and a card drawn from an older state is updated just below.
    const written = await updateRequest(deps.requests, claimed.stored, (current) => ({
        ...(current.cardClaimedAt === claimAt ? withoutClaim(current) : current),
        card: ref,
        cardShows: cardStateOf(shown),
    }));
    if (!written) {
        return {
            kind: 'failed',
            reason: `Request ${requestId} was deleted after its card was posted`,
            retryable: false,
        };
    }
    await deps.audit.append({
        requestId,
        action: 'card-resent',
        actor,
        correlationId: shown.correlationId,
        ...(previous ? { before: previous } : {}),
        after: ref,
        detail:
            `${ref.channel === 'bot' ? 'card' : 'webhook card'} posted again by an operator` +
            (previous?.channel === 'bot' ? '; the previous card no longer accepts clicks' : '') +
            (delivered.botError ? `; bot post failed: ${delivered.botError.message}` : '') +
            operatorNote(options),
    });

    let current = written.stored;
    let warning: string | undefined;
    if (current.request.cardShows !== cardStateOf(current.request)) {
        try {
            current = await syncPostedCard(deps, current, log);
        } catch (err) {
            // The sweep updates a card that fell behind; the resend itself succeeded.
            warning = `the new card shows an older state; the sweep will update it (${ensureErrorType(err).message})`;
            log.warn(`Card of request ${requestId} not updated after the resend: ${ensureErrorType(err).message}`);
        }
    }
    return {
        kind: 'posted',
        request: current.request,
        card: ref,
        ...(previous ? { previous } : {}),
        ...(warning ? { warning } : {}),
    };
}

function refusalFor(request: ApprovalRequest, now: Date): ResendOutcome | undefined {
    if (!isOpen(request.status)) {
        return {
            kind: 'not-open',
            status: request.status,
            reason:
                `Request ${request.id} is ${request.status}: there is no open question for a card to show ` +
                '(only a pending or decided request can have its card posted again)',
        };
    }
    if (request.cardClaimedAt && now.getTime() - Date.parse(request.cardClaimedAt) < cardClaimMs) {
        const retryAt = new Date(Date.parse(request.cardClaimedAt) + cardClaimMs).toISOString();
        return {
            kind: 'busy',
            reason: `Request ${request.id}'s card is being posted by another invocation (since ${request.cardClaimedAt}); try again after ${retryAt}`,
        };
    }
    return undefined;
}

function operatorNote(options: ResendOptions): string {
    return options.operator ? ` (run by ${options.operator})` : '';
}

import { buildCardView } from '../domain/card';
import { ConcurrencyError, ensureErrorType, isRetryable, PermanentError } from '../domain/errors';
import { cardStateOf, type ApprovalRequest, type CardRef } from '../domain/request';
import type { StoredRequest } from '../storage/requestStore';
import { cardSummary, renderAdaptiveCard } from '../teams/adaptiveCard';
import { renderDuplicateNote } from '../teams/duplicateNote';
import { cardOptions, type WorkflowDeps } from './deps';
import { formatUtc } from '../domain/card';
import type { Logger } from '../observability/logger';
import { updateRequest } from './requestUpdate';
import { issueLinkToken } from './linkToken';
import { sharedCardOptions } from './refreshIds';
import type { LinkGrant } from '../domain/request';

/** How long one invocation may hold the right to post a request's card before another may try. */
export const cardClaimMs = 60_000;

export type PostOutcome = 'posted' | 'fallback' | 'already-posted' | 'claimed-elsewhere' | 'not-pending' | 'failed';

/**
 * Makes sure a pending request has its card, exactly once. The right to post is itself a conditional write on the
 * request, so concurrent deliveries of one event post one card; an invocation that died mid-post loses the claim
 * after `cardClaimMs` and a redelivery or the sweep posts it.
 *
 * The invocation that opens a request writes it with the claim already taken (`claimedWith` is that claim's link
 * token), so a new request's card costs no write of its own before the post.
 */
export async function ensureCard(
    deps: WorkflowDeps,
    stored: StoredRequest,
    log: Logger,
    options: {
        claimedWith?: string;
        /** Run once this invocation holds the claim, before the card goes out (only the claim holder posts). */
        beforePost?: (request: ApprovalRequest) => Promise<void>;
    } = {},
): Promise<PostOutcome> {
    const { request } = stored;
    if (request.card) {
        return 'already-posted';
    }
    // A request a policy decided on arrival is still shown, so the channel sees every connection the gate let through.
    if (request.status !== 'pending' && !(request.status === 'decided' && request.decision?.auto)) {
        return 'not-pending';
    }
    const now = deps.now();
    if (request.cardPostUnknownAt && !options.claimedWith) {
        const adopted = await adoptLostCard(deps, stored, request.cardPostUnknownAt, log);
        if (adopted) {
            return adopted;
        }
    }
    let claimed: StoredRequest;
    let linkToken: string;
    if (options.claimedWith && request.cardClaimedAt && request.link) {
        claimed = stored;
        linkToken = options.claimedWith;
    } else {
        if (request.cardClaimedAt && now.getTime() - new Date(request.cardClaimedAt).getTime() < cardClaimMs) {
            return 'claimed-elsewhere';
        }
        // A lapsed claim's holder may have posted and died before recording it (or failed to record it): as with a
        // post that got no answer, the channel is looked at first, and a card posted now is checked for a twin.
        const lapsedUnknown = request.cardClaimedAt && !request.cardPostUnknownAt ? request.cardClaimedAt : undefined;
        if (lapsedUnknown) {
            const adopted = await adoptLostCard(deps, stored, lapsedUnknown, log);
            if (adopted) {
                return adopted;
            }
        }
        try {
            // A fresh link token for every post: only its hash is stored, and the plain token exists only in the card.
            const link = issueLinkToken(now, deps.settings.linkTokenTtlHours);
            const claim = withCardClaim(request, now, link.grant);
            claimed = await deps.requests.update(
                stored,
                lapsedUnknown ? { ...claim, cardPostUnknownAt: lapsedUnknown } : claim,
            );
            linkToken = link.token;
        } catch (err) {
            if (err instanceof ConcurrencyError) {
                return 'claimed-elsewhere';
            }
            throw err;
        }
    }

    if (options.beforePost) {
        try {
            await options.beforePost(claimed.request);
        } catch (err) {
            await deps.requests.update(claimed, withoutClaim(claimed.request)).catch(() => undefined);
            throw err;
        }
    }
    const delivered = await deliver(deps, claimed.request, linkToken, log);
    if (delivered.ref) {
        // The card is out: it must be recorded even if the request was written meanwhile (a decision, a sweep mark), or
        // once the claim lapsed a second card would follow. It shows the request as it was when drawn; a card behind
        // a later state is redrawn by the next sweep. The record and the audit entry go out together.
        const ref = delivered.ref;
        // Posted while an earlier post's outcome was still unknown: that one may have landed too. Look for it at once
        // (and the sweep again until the look succeeds), so a second card becomes a note instead of a second place
        // to decide.
        const checkSince = ref.channel === 'bot' ? claimed.request.cardPostUnknownAt : undefined;
        const [recorded] = await Promise.all([
            // A post slower than the claim may find that another poster took the lapsed claim over, posted and
            // recorded its card first: that card stands and this one becomes a note. Otherwise this card is the
            // request's, with the link grant it carries (a later claim may have replaced it while this post ran).
            updateRequest(deps.requests, claimed, (current) => {
                if (current.card) {
                    return undefined;
                }
                // Another poster holds a claim taken since: its card may still land, so the channel is looked at
                // again (by the sweep) from that claim on. Its own record would find this card and note its own.
                const otherClaim =
                    current.cardClaimedAt && current.cardClaimedAt !== claimed.request.cardClaimedAt
                        ? current.cardClaimedAt
                        : undefined;
                const since = checkSince ?? otherClaim;
                return {
                    ...withoutUnknownPost(withoutClaim(current)),
                    card: ref,
                    cardShows: cardStateOf(claimed.request),
                    // The grant this card carries; the stored one when it is the same (it may be spent meanwhile).
                    ...(claimed.request.link && current.link?.tokenHash !== claimed.request.link.tokenHash
                        ? { link: claimed.request.link }
                        : {}),
                    ...(since ? { cardDuplicateCheckSince: since } : {}),
                };
            }),
            deps.audit.append({
                requestId: request.id,
                action: ref.channel === 'bot' ? 'card-posted' : 'card-fallback',
                actor: { kind: 'system' },
                correlationId: request.correlationId,
                after: ref,
                ...(delivered.botError ? { detail: `bot post failed: ${delivered.botError.message}` } : {}),
            }),
        ]);
        if (recorded && !recorded.changed) {
            await noteOwnDuplicate(deps, recorded.stored, ref, claimed.request.cardClaimedAt ?? ref.postedAt, log);
            return 'already-posted';
        }
        if (checkSince && recorded?.stored) {
            await noteDuplicateCards(deps, recorded.stored, log);
        }
        return ref.channel === 'bot' ? 'posted' : 'fallback';
    }

    const error = delivered.error ?? new PermanentError('no delivery is configured');
    // Give the claim back at once: Event Grid redelivers within seconds, and a claim still held then would make the
    // redelivery report success without posting, ending the retries with no card. A bot post that got no answer may
    // have created the card: the same write says so, and the next attempt looks in the channel before posting.
    const unknown = delivered.botError && isRetryable(delivered.botError) && !claimed.request.cardPostUnknownAt;
    const released = unknown
        ? { ...withoutClaim(claimed.request), cardPostUnknownAt: now.toISOString() }
        : withoutClaim(claimed.request);
    await deps.requests.update(claimed, released).catch((err: unknown) => {
        log.warn(`Could not release the card claim of request ${request.id}: ${ensureErrorType(err).message}`);
    });
    await deps.audit.append({
        requestId: request.id,
        action: 'card-failed',
        actor: { kind: 'system' },
        correlationId: request.correlationId,
        detail: error.message,
    });
    if (isRetryable(error)) {
        // Let the trigger redeliver; the redelivery posts the card.
        throw error;
    }
    // Retrying cannot fix this (the bot is not in the team, the channel is gone): it is recorded and raised as an
    // error for the alert rules; the sweep and `pec resend` post the card once the cause is fixed.
    log.error(`ALERT card for request ${request.id} could not be delivered: ${error.message}`);
    return 'failed';
}

/**
 * Posts a card drawn for approvers: the bot first, the Workflows webhook when the bot fails or is not configured. Shared
 * by a request's first card (`ensureCard`) and an operator's `pec resend`. A decided request's card has no buttons; a
 * card without `linkToken` has no web link.
 */
export async function deliver(
    deps: WorkflowDeps,
    request: ApprovalRequest,
    linkToken: string | undefined,
    log: Logger,
): Promise<{ ref?: CardRef; error?: Error; botError?: Error }> {
    const options = { ...cardOptions(deps), ...(linkToken ? { linkToken } : {}) };
    let botError: Error | undefined;
    if (deps.teams) {
        // The channel's card is the shared view: approvers get the buttons in their own refreshed view (refreshIds.ts).
        const view = buildCardView(request, {
            ...options,
            ...(await sharedCardOptions(deps, request, log)),
            delivery: 'bot',
        });
        try {
            const ref = await deps.teams.postCard(renderAdaptiveCard(view), cardSummary(view));
            return { ref: { channel: 'bot', ...ref, postedAt: deps.now().toISOString() } };
        } catch (err) {
            botError = ensureErrorType(err);
            log.warn(`Bot post for request ${request.id} failed: ${botError.message}`);
        }
    }
    if (deps.webhook) {
        const view = buildCardView(request, { ...options, audience: 'approver', delivery: 'webhook' });
        try {
            await deps.webhook.postCard(renderAdaptiveCard(view));
            return {
                ref: { channel: 'webhook', postedAt: deps.now().toISOString() },
                ...(botError ? { botError } : {}),
            };
        } catch (err) {
            const webhookError = ensureErrorType(err);
            log.warn(`Webhook post for request ${request.id} failed: ${webhookError.message}`);
            return {
                error: botError && isRetryable(botError) ? botError : webhookError,
                ...(botError ? { botError } : {}),
            };
        }
    }
    return botError ? { error: botError, botError } : {};
}

/** The request with the right to post its card taken now, and the grant of the link token the card will carry. */
export function withCardClaim(request: ApprovalRequest, now: Date, grant: LinkGrant): ApprovalRequest {
    return { ...request, cardClaimedAt: now.toISOString(), link: grant };
}

export function withoutClaim(request: ApprovalRequest): ApprovalRequest {
    const { cardClaimedAt: _released, ...rest } = request;
    return rest;
}

function sameCard(a: CardRef, b: CardRef): boolean {
    return (
        a.channel === 'bot' &&
        b.channel === 'bot' &&
        a.conversationId === b.conversationId &&
        a.activityId !== undefined &&
        a.activityId === b.activityId
    );
}

function withoutUnknownPost(request: ApprovalRequest): ApprovalRequest {
    const { cardPostUnknownAt: _resolved, ...rest } = request;
    return rest;
}

/**
 * A bot post of this card went unanswered earlier: the card may be in the channel. Looks for it there (the bot's own
 * message carrying this request's id) and records it as the request's card, so no second card is posted. Undefined
 * when it is not there or the channel cannot be read; the caller then posts.
 */
async function adoptLostCard(
    deps: WorkflowDeps,
    stored: StoredRequest,
    since: string,
    log: Logger,
): Promise<PostOutcome | undefined> {
    const finder = deps.channelCards;
    const request = stored.request;
    if (!finder) {
        log.warn(`Card of request ${request.id}: an earlier post went unanswered and the channel cannot be read`);
        return undefined;
    }
    let cards;
    try {
        cards = await finder.findCards(request.id, new Date(since));
    } catch (err) {
        log.warn(
            `Card of request ${request.id}: could not look for it in the channel: ${ensureErrorType(err).message}`,
        );
        return undefined;
    }
    const found = cards[0];
    if (!found) {
        return undefined;
    }
    const ref: CardRef = { channel: 'bot', ...found, postedAt: since };
    // The card shows the request as it was when the lost post drew it; a card behind a later state is redrawn by the
    // next sweep. The link token it carries is the one whose hash is stored (`link`): the claim that drew it set it.
    // Two lost posts may both have landed: the oldest is adopted, the others become notes.
    const written = await updateRequest(deps.requests, stored, (current) =>
        current.card
            ? undefined
            : {
                  ...withoutUnknownPost(current),
                  card: ref,
                  cardShows: 'pending',
                  ...(cards.length > 1 ? { cardDuplicateCheckSince: since } : {}),
              },
    );
    if (!written?.changed) {
        return written?.stored.request.card ? 'already-posted' : undefined;
    }
    await deps.audit.append({
        requestId: request.id,
        action: 'card-posted',
        actor: { kind: 'system' },
        correlationId: request.correlationId,
        after: ref,
        detail: 'found in the channel: the post had gone through, its answer was lost',
    });
    log.info(`Card of request ${request.id}: adopted the card found in the channel`);
    if (written.stored.request.cardDuplicateCheckSince) {
        await noteDuplicateCards(deps, written.stored, log);
    }
    return 'posted';
}

/**
 * This invocation's card went out after another was recorded as the request's: it becomes a note pointing there, and
 * the trail says so. When it cannot be edited now, the request is marked for the duplicate check from this post's
 * claim on, which the sweep repeats until it succeeds (and records then). A webhook card cannot be edited; it is only
 * recorded.
 */
async function noteOwnDuplicate(
    deps: WorkflowDeps,
    stored: StoredRequest,
    own: CardRef,
    postedSince: string,
    log: Logger,
): Promise<void> {
    const { request } = stored;
    const card = request.card;
    if (!card || sameCard(card, own)) {
        // Recorded already as the request's card (another invocation found it in the channel and adopted it).
        return;
    }
    log.warn(`Card of request ${request.id}: a second card was posted after the claim lapsed`);
    const editable = own.channel === 'bot' && deps.teams !== undefined;
    if (editable && !(await turnIntoNote(deps, request, own, card, log))) {
        // The sweep's look finds it from this post's claim on, edits it and records it then.
        await updateRequest(deps.requests, stored, (current) =>
            current.cardDuplicateCheckSince ? undefined : { ...current, cardDuplicateCheckSince: postedSince },
        ).catch((err: unknown) => {
            log.warn(`Card of request ${request.id}: could not mark its duplicate: ${ensureErrorType(err).message}`);
        });
        return;
    }
    await deps.audit.append({
        requestId: request.id,
        action: 'card-duplicate',
        actor: { kind: 'system' },
        correlationId: request.correlationId,
        before: own,
        after: card,
        detail: editable
            ? 'a second card of this request, posted while another took over the lapsed claim, was turned into a note'
            : 'a second card of this request was posted (by the webhook, which cannot edit it) while another took over',
    });
}

/** Edits a card of this request into the note pointing to its card; false (logged) when the edit fails. */
async function turnIntoNote(
    deps: WorkflowDeps,
    request: ApprovalRequest,
    place: CardRef,
    card: CardRef,
    log: Logger,
): Promise<boolean> {
    try {
        await deps.teams!.updateCard(
            place,
            renderDuplicateNote({
                requestId: request.id,
                pecName: request.facts.pecName,
                originalPostedAt: formatUtc(card.postedAt),
            }),
        );
        return true;
    } catch (err) {
        log.warn(
            `Card of request ${request.id}: could not turn its duplicate into a note yet: ${ensureErrorType(err).message}`,
        );
        return false;
    }
}

/**
 * Turns every other bot card of this request posted since `cardDuplicateCheckSince` into a note pointing to the
 * request's card, then clears the mark. Never throws: when the channel cannot be read or a card cannot be edited, the
 * mark stays and the sweep tries again (the request stays on the sweep's list while it is set).
 */
export async function noteDuplicateCards(
    deps: WorkflowDeps,
    stored: StoredRequest,
    log: Logger,
): Promise<StoredRequest> {
    const { request } = stored;
    const since = request.cardDuplicateCheckSince;
    const card = request.card;
    if (!since || !card) {
        return stored;
    }
    if (deps.channelCards && deps.teams) {
        let others;
        try {
            const found = await deps.channelCards.findCards(request.id, new Date(since));
            others = found.filter((f) => f.activityId !== card.activityId);
        } catch (err) {
            log.warn(
                `Card of request ${request.id}: could not look for a duplicate in the channel yet: ${ensureErrorType(err).message}`,
            );
            return stored;
        }
        for (const other of others) {
            const place: CardRef = { channel: 'bot', ...other, postedAt: since };
            if (!(await turnIntoNote(deps, request, place, card, log))) {
                return stored;
            }
            await deps.audit.append({
                requestId: request.id,
                action: 'card-duplicate',
                actor: { kind: 'system' },
                correlationId: request.correlationId,
                before: place,
                after: card,
                detail: 'a second card of this request was found in the channel and turned into a note',
            });
            log.warn(`Card of request ${request.id}: a duplicate card was turned into a note`);
        }
    } else {
        log.warn(`Card of request ${request.id}: a duplicate card may exist and the channel cannot be read`);
    }
    const cleared = await updateRequest(deps.requests, stored, (current) => {
        if (current.cardDuplicateCheckSince !== since) {
            return undefined;
        }
        const { cardDuplicateCheckSince: _done, ...rest } = current;
        return rest;
    }).catch((err: unknown) => {
        log.warn(`Card of request ${request.id}: could not clear its duplicate check: ${ensureErrorType(err).message}`);
        return undefined;
    });
    return cleared?.stored ?? stored;
}

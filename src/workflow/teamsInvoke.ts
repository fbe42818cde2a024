import { hasApproved } from '../domain/decision';
import { ensureErrorType } from '../domain/errors';
import * as z from 'zod';
import { isRequestId } from '../domain/request';
import type { ApprovalRequest } from '../domain/request';
import type { CardAudience } from '../domain/card';
import { cardFor } from './cardUpdate';
import { approverRefreshIds } from './refreshIds';
import { authorise, decide, isOwnCardMessage, type DecideResult } from './decide';
import type { WorkflowDeps } from './deps';
import type { Logger } from '../observability/logger';

/**
 * The Teams side of a decision: an `adaptiveCard/action` invoke from a verified Bot Framework caller, turned into a
 * decision or a per-user view, and answered with the card that user should see.
 */

const cardContentType = 'application/vnd.microsoft.card.adaptive';
const errorContentType = 'application/vnd.microsoft.error';

const guid = z.string().regex(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i, 'expected a GUID');

/** Any activity: enough to tell an invoke from the rest, and to bind the token to the activity's service URL. */
export const activityEnvelopeSchema = z.looseObject({
    type: z.string().max(64),
    name: z.string().max(128).optional(),
    serviceUrl: z.string().max(2048),
    channelId: z.string().max(64),
});

export const cardActionSchema = z.looseObject({
    type: z.literal('invoke'),
    name: z.literal('adaptiveCard/action'),
    serviceUrl: z.string().max(2048),
    channelId: z.literal('msteams'),
    from: z.looseObject({ id: z.string().max(256), aadObjectId: guid, name: z.string().max(256).optional() }),
    conversation: z.looseObject({ id: z.string().min(1).max(512) }),
    replyToId: z.string().max(256).optional(),
    channelData: z.looseObject({ tenant: z.looseObject({ id: guid }) }),
    value: z.looseObject({
        action: z.looseObject({
            type: z.literal('Action.Execute'),
            verb: z.enum(['approve', 'reject', 'refresh']),
            // Action.Execute merges the card's inputs into data: responseText arrives next to requestId.
            data: z.looseObject({
                requestId: z.string().max(128),
                responseText: z.string().max(20_000).optional(),
            }),
        }),
    }),
});
export type CardAction = z.infer<typeof cardActionSchema>;

export interface InvokeResponse {
    statusCode: number;
    type: string;
    value: unknown;
}

export function cardResponse(card: unknown): InvokeResponse {
    return { statusCode: 200, type: cardContentType, value: card };
}

/**
 * An error answer to a card action. The Universal Actions response format allows `application/vnd.microsoft.error` with
 * 400 or 500 only (Microsoft's Teams SDK types it so: `AdaptiveCardActionErrorResponse`), so a refusal (another tenant,
 * another card's message, no such request) is a 400 whose message says which, and our own failure a 500.
 */
export function errorResponse(statusCode: 400 | 500, message: string): InvokeResponse {
    const code = statusCode === 400 ? 'BadRequest' : 'InternalServerError';
    return { statusCode, type: errorContentType, value: { code, message } };
}

/**
 * Answers every card action with an invoke response, never a failed invocation: Teams shows a failed invoke as
 * "Something went wrong" with nothing to act on. An outside system that cannot answer (ARM, Graph) is shown on the
 * card by the use case; what is left here (storage down) becomes an error message the approver can retry.
 */
export async function handleCardAction(deps: WorkflowDeps, activity: CardAction, log: Logger): Promise<InvokeResponse> {
    try {
        return await answerCardAction(deps, activity, log);
    } catch (err) {
        log.error(
            `Card action on request ${activity.value.action.data.requestId} failed: ${ensureErrorType(err).message}`,
        );
        return errorResponse(500, 'Could not handle this just now. Please try again in a minute.');
    }
}

async function answerCardAction(deps: WorkflowDeps, activity: CardAction, log: Logger): Promise<InvokeResponse> {
    if (activity.channelData.tenant.id.toLowerCase() !== deps.settings.tenantId.toLowerCase()) {
        log.warn(`Refused a card action from tenant ${activity.channelData.tenant.id}`);
        return errorResponse(400, 'This app serves another tenant');
    }
    const { verb, data } = activity.value.action;
    const who = {
        objectId: activity.from.aadObjectId,
        ...(activity.from.name ? { name: activity.from.name } : {}),
        tenantId: activity.channelData.tenant.id,
    };
    const origin = {
        via: 'teams' as const,
        conversationId: activity.conversation.id,
        ...(activity.replyToId ? { replyToId: activity.replyToId } : {}),
    };

    if (verb === 'refresh') {
        return refresh(deps, data.requestId, who, origin, log);
    }
    const result = await decide(
        deps,
        { requestId: data.requestId, action: verb, text: data.responseText, approver: who, origin },
        log,
    );
    return toResponse(deps, result, log);
}

async function toResponse(deps: WorkflowDeps, result: DecideResult, log: Logger): Promise<InvokeResponse> {
    switch (result.kind) {
        case 'recorded':
            // Still pending means one approval of several: this approver is done, so no buttons for them.
            return personalCard(deps, result.request, result.request.status === 'pending' ? 'viewer' : 'approver', log);
        case 'current':
            return personalCard(deps, result.request, 'viewer', log);
        case 'error':
            return personalCard(deps, result.request, result.audience, log, {
                error: result.error,
                ...(result.responseText === undefined ? {} : { responseText: result.responseText }),
            });
        case 'refused':
            // Refused before anything was read or written (403, 404 or 410 in the use case's terms).
            return errorResponse(400, result.reason);
    }
}

/**
 * The card one person gets back. It repeats the shared card's `refresh.userIds` (as Teams' own examples do), so
 * this view keeps refreshing by itself for the same approvers.
 */
async function personalCard(
    deps: WorkflowDeps,
    request: ApprovalRequest,
    audience: CardAudience,
    log: Logger,
    extra: { error?: string; responseText?: string } = {},
): Promise<InvokeResponse> {
    const refreshUserIds = await approverRefreshIds(deps, request, log);
    return cardResponse(cardFor(deps, request, audience, { ...extra, ...(refreshUserIds ? { refreshUserIds } : {}) }));
}

/**
 * Per-user view (`refresh`, sent by Teams with `trigger` "automatic" for the users the card names, "manual" when
 * someone picks Refresh card): approvers who can act get the buttons while the request is pending; everyone else sees
 * the status. Who gets a refresh is never trusted: membership is checked here, and again on every click.
 */
async function refresh(
    deps: WorkflowDeps,
    requestId: string,
    who: { objectId: string; name?: string },
    origin: { via: 'teams'; conversationId: string; replyToId?: string },
    log: Logger,
): Promise<InvokeResponse> {
    const stored = isRequestId(requestId) ? await deps.requests.get(requestId) : undefined;
    if (!stored || !isOwnCardMessage(stored.request, origin)) {
        return errorResponse(400, 'No such request');
    }
    const request = stored.request;
    if (request.status !== 'pending') {
        return personalCard(deps, request, 'viewer', log);
    }
    const allowed = await authorise(deps, request, who, log, { audit: false });
    const done = !('error' in allowed) && hasApproved(request, allowed.value);
    return personalCard(deps, request, 'error' in allowed || done ? 'viewer' : 'approver', log);
}

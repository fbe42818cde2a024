import { hasApproved } from '../domain/decision';
import * as z from 'zod';
import { isRequestId } from '../domain/request';
import { cardFor } from './cardUpdate';
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

export function errorResponse(statusCode: number, message: string): InvokeResponse {
    const code = statusCode === 400 ? 'BadRequest' : statusCode === 404 ? 'NotFound' : 'Forbidden';
    return { statusCode, type: errorContentType, value: { code, message } };
}

export async function handleCardAction(deps: WorkflowDeps, activity: CardAction, log: Logger): Promise<InvokeResponse> {
    if (activity.channelData.tenant.id.toLowerCase() !== deps.settings.tenantId.toLowerCase()) {
        log.warn(`Refused a card action from tenant ${activity.channelData.tenant.id}`);
        return errorResponse(403, 'This app serves another tenant');
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
    return toResponse(deps, result);
}

function toResponse(deps: WorkflowDeps, result: DecideResult): InvokeResponse {
    switch (result.kind) {
        case 'recorded':
            // Still pending means one approval of several: this approver is done, so no buttons for them.
            return cardResponse(
                cardFor(deps, result.request, result.request.status === 'pending' ? 'viewer' : 'approver'),
            );
        case 'current':
            return cardResponse(cardFor(deps, result.request, 'viewer'));
        case 'error':
            return cardResponse(
                cardFor(deps, result.request, result.audience, {
                    error: result.error,
                    ...(result.responseText === undefined ? {} : { responseText: result.responseText }),
                }),
            );
        case 'refused':
            return errorResponse(result.status, result.reason);
    }
}

/** Per-user view: approvers get the buttons while the request is pending; everyone else sees the status. */
async function refresh(
    deps: WorkflowDeps,
    requestId: string,
    who: { objectId: string; name?: string },
    origin: { via: 'teams'; conversationId: string; replyToId?: string },
    log: Logger,
): Promise<InvokeResponse> {
    const stored = isRequestId(requestId) ? await deps.requests.get(requestId) : undefined;
    if (!stored || !isOwnCardMessage(stored.request, origin)) {
        return errorResponse(404, 'No such request');
    }
    const request = stored.request;
    if (request.status !== 'pending') {
        return cardResponse(cardFor(deps, request, 'viewer'));
    }
    const allowed = await authorise(deps, request, who, log, { audit: false });
    const done = !('error' in allowed) && hasApproved(request, allowed.value);
    return cardResponse(cardFor(deps, request, 'error' in allowed || done ? 'viewer' : 'approver'));
}

import { requiredApprovalsOf, type ApprovalRequest } from '../domain/request';
import type { Logger } from '../observability/logger';
import { refreshUserIdsFor, REFRESH_USER_IDS_MAX } from '../teams/approverTeamsIds';
import type { WorkflowDeps } from './deps';

/**
 * The Teams users a request's bot card names in `refresh.userIds`: the approvers who can still act on it, by MRI, at
 * most 60. Undefined when they are not known (no lookup configured, Graph or Teams down): the card then names nobody,
 * and Teams refreshes it for everyone in a channel of up to 60 members and offers a manual refresh in larger ones. The
 * list only decides who gets their own view without asking; who may decide is checked again on every click.
 */
export async function approverRefreshIds(
    deps: WorkflowDeps,
    request: ApprovalRequest,
    log: Logger,
): Promise<string[] | undefined> {
    if (!deps.approverTeamsIds || (request.status !== 'pending' && request.status !== 'decided')) {
        return undefined;
    }
    const approvers = await deps.approverTeamsIds.approvers(log);
    if (!approvers) {
        return undefined;
    }
    // Nobody who would only be refused: the requester (unless allowed to decide alone), and whoever already approved.
    const requesterMayDecide = deps.settings.allowSelfApproval && requiredApprovalsOf(request) <= 1;
    const exclude = [
        ...(requesterMayDecide ? [] : [request.requester?.objectId]),
        ...(request.approvals ?? []).map((a) => a.by.objectId),
    ];
    const { userIds, left } = refreshUserIdsFor(approvers, exclude);
    if (left > 0) {
        log.warn(
            `Card of request ${request.id}: ${userIds.length + left} approvers are in the team, and Teams refreshes a ` +
                `card by itself for at most ${REFRESH_USER_IDS_MAX}; the other ${left} get the buttons by refreshing ` +
                'the card from its menu, or on the review page',
        );
    }
    return userIds;
}

/**
 * The card options of a request's shared bot card, the one posted to the channel and updated for everyone: no live
 * buttons (only approvers get those, in their own refreshed view), and the approvers' MRIs to refresh for.
 */
export async function sharedCardOptions(
    deps: WorkflowDeps,
    request: ApprovalRequest,
    log: Logger,
): Promise<{ audience: 'shared'; refreshUserIds?: string[] }> {
    const refreshUserIds = await approverRefreshIds(deps, request, log);
    return { audience: 'shared', ...(refreshUserIds ? { refreshUserIds } : {}) };
}

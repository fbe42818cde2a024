import { hasApproved } from '../domain/decision';
import { ensureErrorType } from '../domain/errors';
import * as z from 'zod';
import { RESPONSE_TEXT_MAX_LENGTH } from '../domain/card';
import { isRequestId, type ApprovalRequest } from '../domain/request';
import { renderDecisionPage, renderMessagePage, type DecisionPageModel } from '../web/decisionPageHtml';
import { issuesText } from './validation';
import type { WebPrincipal } from '../web/easyAuth';
import { mayReadRequests } from '../web/readers';
import { viewFor } from './cardUpdate';
import { authorise, decide, linkRefusal, type Approver } from './decide';
import type { WorkflowDeps } from './deps';
import type { Logger } from '../observability/logger';
import { checkCsrfToken, checkLinkToken, issueCsrfToken } from './linkToken';

/**
 * The web decision page, for cards that cannot carry clicks back (Workflows webhook, email). The caller has already
 * established who is signed in through App Service Authentication; this decides what they see and may do.
 */

export interface PageResult {
    status: number;
    html: string;
}

export const decisionFormSchema = z.strictObject({
    // Missing tokens are a refusal (403), not a malformed form: defaulted here, checked below.
    csrf: z.string().max(200).default(''),
    token: z.string().max(200).default(''),
    verb: z.enum(['approve', 'reject']),
    // Longer than the cap on purpose: an oversized text gets the page back with a clear error, not a bare 400.
    responseText: z.string().max(20_000).default(''),
});

export async function showDecisionPage(
    deps: WorkflowDeps,
    requestId: string,
    linkToken: string | null,
    principal: WebPrincipal,
    log: Logger,
): Promise<PageResult> {
    const found = await load(deps, requestId, principal);
    if ('status' in found) {
        return found;
    }
    const request = found.request;
    const link = checkLinkToken(request, linkToken, deps.now());
    if (request.status !== 'pending') {
        // A finished request is shown to whoever held its card's link (spent or expired: they saw it while it
        // waited), and otherwise only to those the dashboard shows it to: the tenant alone is not enough.
        const held = link.ok || link.reason === 'used' || link.reason === 'expired';
        const refused = held ? undefined : await readerRefusal(deps, principal, log);
        return refused ?? page(200, { view: viewFor(deps, request, 'viewer'), signedInAs: signedIn(principal) });
    }
    if (!link.ok) {
        const refused = linkRefusal(link.reason);
        return message(refused.status, 'Link not valid', refused.reason);
    }
    return pageFor(deps, request, principal, linkToken ?? '', log);
}

export async function submitDecision(
    deps: WorkflowDeps,
    requestId: string,
    form: unknown,
    principal: WebPrincipal,
    log: Logger,
): Promise<PageResult> {
    const found = await load(deps, requestId, principal);
    if ('status' in found) {
        return found;
    }
    const parsed = decisionFormSchema.safeParse(form);
    if (!parsed.success) {
        log.warn(`Invalid decision form for request ${requestId}: ${issuesText(parsed.error)}`);
        return message(400, 'Invalid form', 'The form was not complete. Open the link from the card again.');
    }
    if (!checkCsrfToken(found.request, principal.objectId, parsed.data.csrf, deps.now())) {
        log.warn(`Refused a web decision on request ${requestId}: CSRF token missing, expired or not this user's`);
        return message(403, 'Form expired', 'This form was not issued to you, or it has expired. Open the link again.');
    }
    const result = await decide(
        deps,
        {
            requestId,
            action: parsed.data.verb,
            text: parsed.data.responseText,
            approver: approverOf(principal),
            origin: { via: 'web', linkToken: parsed.data.token },
        },
        log,
    );
    switch (result.kind) {
        case 'refused':
            return message(result.status, 'Not accepted', result.reason);
        case 'recorded':
            return page(200, {
                view: viewFor(deps, result.request, 'viewer'),
                notice: {
                    tone: 'good',
                    text:
                        result.request.status === 'pending'
                            ? 'Your approval is recorded. More approvals are needed, from someone else, before it is applied.'
                            : result.request.bypass
                              ? `Your decision (${result.request.decision?.action === 'approve' ? 'Keep' : 'Revoke'}) is recorded. It is being applied to the connection now.`
                              : 'Your decision is recorded. It is being applied to the connection now.',
                },
                signedInAs: signedIn(principal),
            });
        case 'current':
            return page(409, {
                view: viewFor(deps, result.request, 'viewer'),
                notice: { tone: 'attention', text: 'This request was already decided; nothing was changed.' },
                signedInAs: signedIn(principal),
            });
        case 'error':
            if (result.audience === 'viewer') {
                return page(403, {
                    view: viewFor(deps, result.request, 'viewer'),
                    notice: { tone: 'attention', text: result.error },
                    signedInAs: signedIn(principal),
                });
            }
            return pageFor(deps, result.request, principal, parsed.data.token, log, {
                error: result.error,
                responseText: parsed.data.responseText,
            });
    }
}

/** Undefined when this person may read requests (approver or reader groups); else the page that refuses. */
async function readerRefusal(
    deps: WorkflowDeps,
    principal: WebPrincipal,
    log: Logger,
): Promise<PageResult | undefined> {
    let member: boolean;
    try {
        member = await mayReadRequests(deps.directory, principal.objectId, deps.settings);
    } catch (err) {
        log.warn(`Decision page: the group check for ${principal.objectId} failed: ${ensureErrorType(err).message}`);
        return message(503, 'Cannot check access', 'Your group membership could not be checked just now. Try again.');
    }
    if (member) {
        return undefined;
    }
    log.warn(`Refused a finished request to ${principal.objectId}: no link, not in an approver or reader group`);
    return message(
        403,
        'Not allowed',
        'This request is decided. It is shown to members of the approver and dashboard reader groups, and to those who had its link.',
    );
}

async function load(
    deps: WorkflowDeps,
    requestId: string,
    principal: WebPrincipal,
): Promise<{ request: ApprovalRequest } | PageResult> {
    if (principal.tenantId?.toLowerCase() !== deps.settings.tenantId.toLowerCase()) {
        return message(403, 'Another tenant', 'Only users of this organisation can review these requests.');
    }
    const stored = isRequestId(requestId) ? await deps.requests.get(requestId) : undefined;
    if (!stored) {
        return message(404, 'Not found', 'There is no such request.');
    }
    return { request: stored.request };
}

async function pageFor(
    deps: WorkflowDeps,
    request: ApprovalRequest,
    principal: WebPrincipal,
    linkToken: string,
    log: Logger,
    extra: { error?: string; responseText?: string } = {},
): Promise<PageResult> {
    const allowed = await authorise(deps, request, approverOf(principal), log, { audit: false });
    if ('error' in allowed) {
        return page(extra.error ? 400 : 200, {
            view: viewFor(deps, request, 'viewer'),
            notice: { tone: 'attention', text: allowed.error },
            signedInAs: signedIn(principal),
        });
    }
    if (hasApproved(request, allowed.value)) {
        return page(extra.error ? 400 : 200, {
            view: viewFor(deps, request, 'viewer'),
            notice: {
                tone: 'good',
                text: 'You have approved this request; the other approvals must come from someone else.',
            },
            signedInAs: signedIn(principal),
        });
    }
    return page(extra.error ? 400 : 200, {
        view: viewFor(deps, request, 'viewer'),
        form: {
            action: `/api/requests/${encodeURIComponent(request.id)}`,
            csrfToken: issueCsrfToken(request, principal.objectId, deps.now()),
            linkToken,
            responseMaxLength: RESPONSE_TEXT_MAX_LENGTH,
            ...(extra.responseText === undefined ? {} : { responseText: extra.responseText }),
            ...(request.bypass ? { labels: { approve: 'Keep', reject: 'Revoke' } } : {}),
        },
        ...(extra.error ? { notice: { tone: 'attention' as const, text: extra.error } } : {}),
        signedInAs: signedIn(principal),
    });
}

function approverOf(principal: WebPrincipal): Approver {
    return {
        objectId: principal.objectId,
        ...(principal.name ? { name: principal.name } : {}),
        ...(principal.upn ? { upn: principal.upn } : {}),
        ...(principal.tenantId ? { tenantId: principal.tenantId } : {}),
    };
}

function signedIn(principal: WebPrincipal): string {
    return principal.upn ?? principal.name ?? principal.objectId;
}

function page(status: number, model: DecisionPageModel): PageResult {
    return { status, html: renderDecisionPage(model) };
}

function message(status: number, title: string, text: string): PageResult {
    return { status, html: renderMessagePage(title, text) };
}

import { app, type HttpRequest, type HttpResponseInit, type InvocationContext } from '@azure/functions';
import { observe } from '../src/observability/invocation';
import { getDeps } from '../src/runtime';
import type { Logger } from '../src/observability/logger';
import { pageHeaders, renderMessagePage } from '../src/web/decisionPageHtml';
import { principalFromHeaders } from '../src/web/easyAuth';
import { checkSameOrigin } from '../src/web/sameOrigin';
import { showDecisionPage, submitDecision, type PageResult } from '../src/workflow/webDecision';

const maxFormBytes = 64 * 1024;

/**
 * The web decision page: GET shows a request, POST records a decision. Anonymous at the host because App Service
 * Authentication sits in front of the whole app; who is signed in is taken only from the platform's header, and only
 * when the platform says authentication is on.
 */
export async function decisionPage(request: HttpRequest, context: InvocationContext): Promise<HttpResponseInit> {
    // The route's id is only a label here; the use case validates it before anything is read.
    const id = (request.params.id ?? '').replace(/[^A-Za-z0-9_-]/g, '').slice(0, 64);
    return observe(context, { requestId: id }, (log) => handlePage(request, log));
}

async function handlePage(request: HttpRequest, log: Logger): Promise<HttpResponseInit> {
    const who = principalFromHeaders(request.headers, process.env);
    if ('refused' in who) {
        log.warn(`Refused the decision page: ${who.refused.reason}`);
        return respond({ status: who.refused.status, html: renderMessagePage('Sign-in required', who.refused.reason) });
    }
    const id = request.params.id ?? '';
    const deps = getDeps();
    if (request.method === 'GET') {
        return respond(await showDecisionPage(deps, id, request.query.get('token'), who.principal, log));
    }
    const sameOrigin = checkSameOrigin(request.headers, deps.settings.publicBaseUrl);
    if (!sameOrigin.ok) {
        log.warn(`Refused a decision POST: ${sameOrigin.reason}`);
        return respond({
            status: 403,
            html: renderMessagePage(
                'Not accepted',
                'Submit the decision from this app’s own page: open the link again.',
            ),
        });
    }
    const type = request.headers.get('content-type') ?? '';
    const length = Number(request.headers.get('content-length') ?? '0');
    if (!/^application\/x-www-form-urlencoded\b/i.test(type) || length > maxFormBytes) {
        return respond({ status: 415, html: renderMessagePage('Not accepted', 'Submit the decision from the page.') });
    }
    const text = await request.text();
    if (Buffer.byteLength(text) > maxFormBytes) {
        return respond({ status: 413, html: renderMessagePage('Not accepted', 'The form is too large.') });
    }
    const form = Object.fromEntries(new URLSearchParams(text));
    return respond(await submitDecision(deps, id, form, who.principal, log));
}

function respond(result: PageResult): HttpResponseInit {
    return { status: result.status, body: result.html, headers: { ...pageHeaders } };
}

app.http('decisionPage', {
    route: 'requests/{id}',
    methods: ['GET', 'POST'],
    authLevel: 'anonymous',
    handler: decisionPage,
});

import { app, type HttpRequest, type HttpResponseInit, type InvocationContext } from '@azure/functions';
import { observe } from '../src/observability/invocation';
import { showDashboard, type DashboardResponse } from '../src/web/dashboard';
import { getDashboardDeps } from '../src/web/dashboardDeps';
import { dashboardHeaders, renderDashboardMessage } from '../src/web/dashboardHtml';
import { principalFromHeaders } from '../src/web/easyAuth';

/**
 * The dashboard: every request, its summary, one request's timeline, and exports. Read-only (GET), behind App Service
 * Authentication exactly as the decision page is: who is signed in comes only from the platform's header, and only when
 * the platform says authentication is on. Who may see what is decided in src/web/dashboard.ts.
 */
export async function dashboard(request: HttpRequest, context: InvocationContext): Promise<HttpResponseInit> {
    return observe(context, {}, async (log) => {
        if (request.method !== 'GET') {
            return respond({
                status: 405,
                headers: { ...dashboardHeaders, Allow: 'GET' },
                body: renderDashboardMessage('Not allowed', 'The dashboard only reads: use GET.'),
            });
        }
        const who = principalFromHeaders(request.headers, process.env);
        if ('refused' in who) {
            log.warn(`Refused the dashboard: ${who.refused.reason}`);
            return respond({
                status: who.refused.status,
                headers: { ...dashboardHeaders },
                body: renderDashboardMessage('Sign-in required', who.refused.reason),
            });
        }
        return respond(await showDashboard(getDashboardDeps(), who.principal, new URL(request.url).searchParams, log));
    });
}

function respond(result: DashboardResponse): HttpResponseInit {
    return { status: result.status, body: result.body, headers: result.headers };
}

app.http('dashboard', {
    route: 'dashboard',
    methods: ['GET'],
    authLevel: 'anonymous',
    handler: dashboard,
});

import { randomUUID } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { HttpRequest, InvocationContext } from '@azure/functions';
import { dashboard } from '../functions/dashboard';
import { CLIENT_PRINCIPAL_HEADER, encodeClientPrincipal } from '../src/web/easyAuth';

/**
 * The demo's dashboard: the registered handler's pages for the demo's requests, written next to its cards so that a
 * newcomer can open them in a browser (and `npm run docs:dashboard` can photograph them). The demo has no App Service
 * in front, so the approver is signed in the way a developer's local run is: DEV_TRUST_CLIENT_PRINCIPAL, which the app
 * refuses wherever WEBSITE_SITE_NAME says it runs in Azure.
 */

export interface DashboardViewer {
    objectId: string;
    name: string;
    upn: string;
    tenantId: string;
}

/** Writes `dashboard.html` and `dashboard-<label>.html` per request; returns the files' names, or throws. */
export async function writeDashboardPages(
    outDir: string,
    viewer: DashboardViewer,
    requests: readonly { label: string; requestId: string }[],
): Promise<string[]> {
    const previous = process.env.DEV_TRUST_CLIENT_PRINCIPAL;
    process.env.DEV_TRUST_CLIENT_PRINCIPAL = 'true';
    try {
        const pages = [
            { file: 'dashboard.html', query: '' },
            ...requests.map((r) => ({
                file: `dashboard-${r.label.replace(/[^A-Za-z0-9-]/g, '_')}.html`,
                query: `request=${encodeURIComponent(r.requestId)}`,
            })),
        ];
        for (const page of pages) {
            const request = new HttpRequest({
                url: `https://localhost/api/dashboard${page.query ? `?${page.query}` : ''}`,
                method: 'GET',
                headers: { [CLIENT_PRINCIPAL_HEADER]: encodeClientPrincipal(viewer) },
            });
            const context = new InvocationContext({ functionName: 'dashboard', invocationId: randomUUID() });
            const response = await dashboard(request, context);
            if ((response.status ?? 200) !== 200) {
                throw new Error(`The dashboard answered ${response.status} for ${page.file}`);
            }
            writeFileSync(path.join(outDir, page.file), String(response.body ?? ''));
        }
        return pages.map((p) => p.file);
    } finally {
        if (previous === undefined) {
            delete process.env.DEV_TRUST_CLIENT_PRINCIPAL;
        } else {
            process.env.DEV_TRUST_CLIENT_PRINCIPAL = previous;
        }
    }
}

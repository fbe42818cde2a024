import * as z from 'zod';
import { buildCardView, reviewUrl, type CardView } from '../domain/card';
import { ensureErrorType } from '../domain/errors';
import { isRequestId, requestStatuses, type ApprovalRequest } from '../domain/request';
import type { AuditEntry } from '../domain/audit';
import { checkChain, missingTrail, withAnchors, type ChainCheck } from '../ops/chain';
import type { AnchorHead } from '../storage/auditAnchor';
import {
    decodeCursor,
    encodeCursor,
    type IndexedRequest,
    type IndexFilter,
    type IndexPage,
    type RequestIndexQueries,
} from '../storage/requestIndex';
import type { ApproverDirectory } from '../teams/directory';
import type { Logger } from '../workflow/deps';
import { dashboardHeaders, renderDashboard, renderDashboardMessage, renderRequestDetail } from './dashboardHtml';
import { exportCsv, exportJsonLines } from './dashboardExport';
import type { WebPrincipal } from './easyAuth';
import { mayReadRequests } from './readers';

/**
 * The dashboard's use case: who may see it, which query a URL asks, and the page, detail or export it gets. The
 * function handler has established who is signed in (Easy Auth, exactly as for the decision page); this decides what
 * they see. It only reads: no query, no parameter and no method changes anything.
 *
 * Who may see it: users of our tenant who are (transitive) members of an approver group or a reader group. The check
 * asks Graph each time (through the directory's cache); when Graph cannot answer, nobody sees anything.
 */

export interface DashboardSettings {
    tenantId: string;
    approverGroupIds: readonly string[];
    readerGroupIds: readonly string[];
    portalUrl: string;
    publicBaseUrl: string;
}

export interface DashboardDeps {
    settings: DashboardSettings;
    directory: Pick<ApproverDirectory, 'isMemberOfAny'>;
    requests: { get(id: string): Promise<{ request: ApprovalRequest } | undefined> };
    audit: { list(requestId: string): Promise<AuditEntry[]> };
    /** The write-once anchors of the audit chains (auditAnchor.ts): a request's page compares its trail with them. */
    anchors: { heads(requestId: string): Promise<AnchorHead[]> };
    index: RequestIndexQueries;
    /** Audit entries with action `bypassed` written at or after `since`. */
    bypassesSince(since: Date): Promise<number>;
    now(): Date;
}

export interface DashboardResponse {
    status: number;
    headers: Record<string, string>;
    body: string;
}

export const PAGE_SIZE = 50;
/** Rows in one export, at most: the filtered list of a large table is exported in slices by date. */
export const EXPORT_MAX_ROWS = 100_000;
/** How often the index's catch-up reads the requests written since its last run. */
const CATCH_UP_EVERY_MS = 10 * 60_000;
const DAY_MS = 24 * 60 * 60_000;

const blankToUndefined = (value: unknown) => (typeof value === 'string' && value.trim() === '' ? undefined : value);
const day = z.preprocess(
    blankToUndefined,
    z
        .string()
        .regex(/^\d{4}-\d{2}-\d{2}$/, 'expected a date as YYYY-MM-DD')
        .refine((v) => !Number.isNaN(Date.parse(`${v}T00:00:00Z`)), 'expected a real date')
        .optional(),
);
const text = (max: number, pattern: RegExp, message: string) =>
    z.preprocess(blankToUndefined, z.string().trim().max(max).regex(pattern, message).optional());

/** Every parameter the dashboard reads; anything else in the URL is an error, not ignored. */
export const dashboardQuerySchema = z.strictObject({
    request: z.preprocess(blankToUndefined, z.string().refine(isRequestId, 'not a request id').optional()),
    format: z.preprocess(blankToUndefined, z.enum(['html', 'csv', 'jsonl']).optional()),
    status: z.preprocess(blankToUndefined, z.enum(requestStatuses).optional()),
    kind: text(40, /^[a-z0-9-]+$/, 'expected a resource kind id, e.g. postgres-flexible'),
    server: text(100, /^[A-Za-z0-9._-]+$/, 'expected a server name'),
    origin: z.preprocess(blankToUndefined, z.enum(['trusted', 'foreign', 'unknown']).optional()),
    // People are searched by the start of their UPN or name: letters, digits and the usual punctuation of both.
    requester: text(200, /^[\p{L}\p{N} .@_'-]+$/u, 'expected the start of a UPN or name'),
    approver: text(200, /^[\p{L}\p{N} .@_'-]+$/u, 'expected the start of a UPN or name'),
    from: day,
    to: day,
    after: z.preprocess(
        blankToUndefined,
        z
            .string()
            .refine((v) => decodeCursor(v) !== undefined, 'not a page link of this dashboard')
            .optional(),
    ),
});
export type DashboardQuery = z.infer<typeof dashboardQuerySchema>;

export async function showDashboard(
    deps: DashboardDeps,
    principal: WebPrincipal,
    params: URLSearchParams,
    log: Logger,
): Promise<DashboardResponse> {
    const allowed = await mayRead(deps, principal, log);
    if (allowed !== true) {
        return allowed;
    }
    const raw: Record<string, string> = {};
    for (const [key, value] of params) {
        if (key in raw) {
            return message(400, 'Invalid query', `The parameter "${key}" is given twice.`);
        }
        raw[key] = value;
    }
    const parsed = dashboardQuerySchema.safeParse(raw);
    if (!parsed.success) {
        const issue = parsed.error.issues[0];
        const where = issue?.path.join('.') || 'query';
        return message(400, 'Invalid query', `${where}: ${issue?.message ?? 'not understood'}`);
    }
    const query = parsed.data;
    const signedInAs = principal.upn ?? principal.name ?? principal.objectId;
    try {
        const complete = await catchUp(deps, log);
        if (query.request) {
            return await detail(deps, query.request, signedInAs);
        }
        const filter = filterOf(query);
        if (query.format === 'csv' || query.format === 'jsonl') {
            return await exportList(deps, filter, query.format);
        }
        const [page, summary] = await Promise.all([
            deps.index.page(filter, PAGE_SIZE, query.after ? decodeCursor(query.after) : undefined),
            cachedSummary(deps, log),
        ]);
        return {
            status: 200,
            headers: { ...dashboardHeaders },
            body: renderDashboard({
                summary,
                page: withLinks(page),
                query,
                now: deps.now(),
                signedInAs,
                ...(complete
                    ? {}
                    : {
                          notice:
                              'The list is being indexed (after an upgrade, or a first start): some requests are ' +
                              'missing until it is done. Reload in a minute.',
                      }),
            }),
        };
    } catch (err) {
        log.error(`Dashboard failed: ${ensureErrorType(err).message}`);
        return message(503, 'Not available', 'The requests could not be read just now. Try again in a minute.');
    }
}

/** True, or the refusal to send. Fails closed: any doubt about who this is or what they may see refuses. */
async function mayRead(deps: DashboardDeps, principal: WebPrincipal, log: Logger): Promise<true | DashboardResponse> {
    if (principal.tenantId?.toLowerCase() !== deps.settings.tenantId.toLowerCase()) {
        log.warn(`Refused the dashboard to ${principal.objectId}: not of our tenant`);
        return message(403, 'Another tenant', 'Only users of this organisation can see the dashboard.');
    }
    let member: boolean;
    try {
        member = await mayReadRequests(deps.directory, principal.objectId, deps.settings);
    } catch (err) {
        log.warn(`Dashboard: the group check for ${principal.objectId} failed: ${ensureErrorType(err).message}`);
        return message(
            503,
            'Cannot check access',
            'Your group membership could not be checked just now, so nothing is shown. Try again in a minute.',
        );
    }
    if (!member) {
        log.warn(`Refused the dashboard to ${principal.objectId}: not in an approver or reader group`);
        return message(
            403,
            'Not allowed',
            'The dashboard is for members of the approver and dashboard reader groups. Ask an admin for access.',
        );
    }
    return true;
}

/** Brings the index up to date (see requestIndex.ts); whether it is complete, for a notice on the page. */
async function catchUp(deps: DashboardDeps, log: Logger): Promise<boolean> {
    const { indexed, complete } = await deps.index.catchUp(deps.now(), CATCH_UP_EVERY_MS);
    if (indexed > 0) {
        log.info(`Dashboard: brought ${indexed} request(s) into the index${complete ? '' : '; more to come'}`);
    }
    return complete;
}

export function filterOf(query: DashboardQuery): IndexFilter {
    const filter: IndexFilter = {};
    if (query.status) filter.status = query.status;
    if (query.kind) filter.kind = query.kind;
    if (query.server) filter.server = query.server;
    if (query.origin) filter.origin = query.origin;
    if (query.requester) filter.requester = query.requester;
    if (query.approver) filter.approver = query.approver;
    if (query.from) filter.from = new Date(`${query.from}T00:00:00Z`);
    // The "to" day is included: the list runs to the start of the day after. After 9999-12-31 there is no bound: the
    // index compares ISO strings, and a year past 9999 (`+010000-…`) would sort before every real date.
    if (query.to && query.to < '9999-12-31') filter.to = new Date(Date.parse(`${query.to}T00:00:00Z`) + DAY_MS);
    return filter;
}

function withLinks(page: IndexPage): { rows: IndexedRequest[]; next?: string } {
    return { rows: page.rows, ...(page.next ? { next: encodeCursor(page.next) } : {}) };
}

async function exportList(
    deps: DashboardDeps,
    filter: IndexFilter,
    format: 'csv' | 'jsonl',
): Promise<DashboardResponse> {
    const rows: IndexedRequest[] = [];
    for await (const row of deps.index.all(filter, EXPORT_MAX_ROWS)) {
        rows.push(row);
    }
    const stamp = deps.now().toISOString().slice(0, 16).replace(/[-:]/g, '').replace('T', '-');
    const base = {
        'X-Content-Type-Options': 'nosniff',
        'Cache-Control': 'no-store',
        'Referrer-Policy': 'no-referrer',
        'Content-Security-Policy': "default-src 'none'; sandbox",
    };
    return format === 'csv'
        ? {
              status: 200,
              headers: {
                  ...base,
                  'Content-Type': 'text/csv; charset=utf-8',
                  'Content-Disposition': `attachment; filename="pec-requests-${stamp}.csv"`,
              },
              body: exportCsv(rows),
          }
        : {
              status: 200,
              headers: {
                  ...base,
                  'Content-Type': 'application/x-ndjson; charset=utf-8',
                  'Content-Disposition': `attachment; filename="pec-requests-${stamp}.jsonl"`,
              },
              body: exportJsonLines(rows),
          };
}

/**
 * The summary reads every decision of the last 30 days and counts the audit trail's bypasses: the same for everyone,
 * so it is computed at most once a minute per process and shown with the time it was computed.
 */
export const SUMMARY_MAX_AGE_MS = 60_000;
const summaries = new WeakMap<DashboardDeps, Promise<DashboardSummary>>();

async function cachedSummary(deps: DashboardDeps, log: Logger): Promise<DashboardSummary> {
    const cached = summaries.get(deps);
    if (cached) {
        const summary = await cached.catch(() => undefined);
        if (summary && deps.now().getTime() - Date.parse(summary.at) < SUMMARY_MAX_AGE_MS) {
            return summary;
        }
    }
    const next = summarize(deps, log);
    summaries.set(deps, next);
    next.catch(() => summaries.delete(deps));
    return next;
}

export interface DashboardSummary {
    /** When it was computed. */
    at: string;
    pending: { count: number; oldestAt?: string; rows: IndexedRequest[] };
    /** Decided and not yet applied. */
    applying: number;
    decided7: number;
    decided30: number;
    approved30: number;
    rejected30: number;
    /** Decided by a policy rule or expiry, not a person, in the last 30 days. */
    automatic30: number;
    /** Seconds from opened to a person's decision, over the last 30 days. */
    medianToDecision?: number;
    p95ToDecision?: number;
    /** Undefined when the audit trail could not be counted. */
    bypasses30?: number;
    failures30: number;
    /** Decisions per day, oldest first, the last 30 days (UTC days). */
    perDay: { day: string; approved: number; rejected: number }[];
    /** Pending requests by age. */
    pendingAges: { label: string; count: number }[];
}

/** Nearest-rank percentile of sorted values. */
export function percentile(sorted: readonly number[], p: number): number | undefined {
    if (sorted.length === 0) {
        return undefined;
    }
    const rank = Math.ceil((p / 100) * sorted.length);
    return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1];
}

const ageBuckets: readonly { label: string; underHours: number }[] = [
    { label: '< 1 h', underHours: 1 },
    { label: '1–8 h', underHours: 8 },
    { label: '8–24 h', underHours: 24 },
    { label: '1–3 d', underHours: 72 },
    { label: '3–7 d', underHours: 168 },
    { label: '≥ 7 d', underHours: Infinity },
];

export async function summarize(deps: DashboardDeps, log: Logger): Promise<DashboardSummary> {
    const now = deps.now();
    const since30 = new Date(now.getTime() - 30 * DAY_MS);
    const since7 = now.getTime() - 7 * DAY_MS;
    const [open, decided, bypasses] = await Promise.all([
        deps.index.open(),
        deps.index.decidedSince(since30),
        deps.bypassesSince(since30).catch((err: unknown) => {
            log.warn(`Dashboard: could not count the bypasses: ${ensureErrorType(err).message}`);
            return undefined;
        }),
    ]);
    const pending = open.filter((r) => r.status === 'pending').sort((a, b) => (a.createdAt < b.createdAt ? -1 : 1));
    const human = decided
        .filter((r) => !r.auto)
        .map((r) => r.toDecision)
        .sort((a, b) => a - b);
    const perDay = Array.from({ length: 30 }, (_, i) => {
        const d = new Date(now.getTime() - (29 - i) * DAY_MS).toISOString().slice(0, 10);
        return { day: d, approved: 0, rejected: 0 };
    });
    const byDay = new Map(perDay.map((d) => [d.day, d]));
    for (const row of decided) {
        const bucket = byDay.get((row.decidedAt ?? '').slice(0, 10));
        if (bucket) {
            bucket[row.action === 'reject' ? 'rejected' : 'approved'] += 1;
        }
    }
    const ages = ageBuckets.map((b) => ({ label: b.label, count: 0 }));
    for (const row of pending) {
        const hours = (now.getTime() - Date.parse(row.createdAt)) / 3_600_000;
        const i = ageBuckets.findIndex((b) => hours < b.underHours);
        const bucket = ages[i < 0 ? ages.length - 1 : i];
        if (bucket) {
            bucket.count += 1;
        }
    }
    const median = percentile(human, 50);
    const p95 = percentile(human, 95);
    return {
        at: now.toISOString(),
        pending: {
            count: pending.length,
            ...(pending[0] ? { oldestAt: pending[0].createdAt } : {}),
            rows: pending.slice(0, 10),
        },
        applying: open.filter((r) => r.status === 'decided').length,
        decided7: decided.filter((r) => Date.parse(r.decidedAt ?? '') >= since7).length,
        decided30: decided.length,
        approved30: decided.filter((r) => r.action === 'approve').length,
        rejected30: decided.filter((r) => r.action === 'reject').length,
        automatic30: decided.filter((r) => r.auto).length,
        ...(median === undefined ? {} : { medianToDecision: median }),
        ...(p95 === undefined ? {} : { p95ToDecision: p95 }),
        ...(bypasses === undefined ? {} : { bypasses30: bypasses }),
        failures30: decided.filter((r) => r.status === 'failed').length,
        perDay,
        pendingAges: ages,
    };
}

export interface RequestDetail {
    request: ApprovalRequest;
    view: CardView;
    trail: AuditEntry[];
    /** The hash chain and, unless `anchorsUnread`, the anchored heads: their findings together, as `pec audit verify`. */
    chain: ChainCheck;
    /** Why the anchors could not be read; the chain alone then vouches for the trail, and the page says so. */
    anchorsUnread?: string;
    portalUrl?: string;
    /** While pending: the decision page (it still needs the card's single-use link to show the form). */
    decisionPageUrl?: string;
}

async function detail(deps: DashboardDeps, id: string, signedInAs: string): Promise<DashboardResponse> {
    const stored = await deps.requests.get(id);
    if (!stored) {
        return message(404, 'Not found', 'There is no such request.');
    }
    const request = stored.request;
    const [trail, heads] = await Promise.all([
        deps.audit.list(id),
        // Unreadable anchors do not hide the request: the page shows the chain and says what it could not compare.
        deps.anchors.heads(id).catch((err: unknown) => ensureErrorType(err)),
    ]);
    const view = buildCardView(request, {
        portalUrl: deps.settings.portalUrl,
        publicBaseUrl: deps.settings.publicBaseUrl,
        ourTenantId: deps.settings.tenantId,
        audience: 'viewer',
        delivery: 'bot',
    });
    const portal = view.actions.find((a) => a.type === 'openUrl' && a.title === 'Open in Azure portal');
    const model: RequestDetail = {
        request,
        view,
        trail,
        // The operators' check (`pec audit verify`) for one request: a trail rewritten with every hash recomputed
        // passes its chain and shows only against the heads anchored for it.
        chain: anchoredChain(trail.length === 0 ? missingTrail(id) : checkChain(id, trail), trail, heads),
        ...(heads instanceof Error ? { anchorsUnread: heads.message } : {}),
        ...(portal && portal.type === 'openUrl' ? { portalUrl: portal.url } : {}),
        ...(request.status === 'pending' ? { decisionPageUrl: reviewUrl(deps.settings.publicBaseUrl, id) } : {}),
    };
    return {
        status: 200,
        headers: { ...dashboardHeaders },
        body: renderRequestDetail(model, { now: deps.now(), signedInAs }),
    };
}

/** Unreadable anchors leave the chain's own verdict; the page says what was not compared (`anchorsUnread`). */
function anchoredChain(chain: ChainCheck, trail: readonly AuditEntry[], heads: AnchorHead[] | Error): ChainCheck {
    return heads instanceof Error ? chain : withAnchors(chain, trail, heads);
}

function message(status: number, title: string, text: string): DashboardResponse {
    return { status, headers: { ...dashboardHeaders }, body: renderDashboardMessage(title, text) };
}

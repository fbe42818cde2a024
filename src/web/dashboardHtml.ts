import type { CardFact, CardTone } from '../domain/card';
import { cleanText, formatUtc } from '../domain/card';
import { kindInfo } from '../domain/ids';
import { requestStatuses } from '../domain/request';
import type { AuditEntry } from '../domain/audit';
import type { ChainCheck } from '../ops/chain';
import type { IndexedRequest } from '../storage/requestIndex';
import type { DashboardQuery, DashboardSummary, RequestDetail } from './dashboard';
import { escapeHtml, htmlDocument, pageSecurityHeaders } from './decisionPageHtml';

/**
 * The dashboard as server-rendered HTML, under the decision page's rules: every value through `escapeHtml`, no script
 * at all (the charts are inline SVG drawn here, the filters a plain GET form), one stylesheet allowed by its hash, and
 * a Content-Security-Policy that allows nothing else. Links leave only to https URLs, without a referrer.
 */

const APP_NAME = 'PEC approval gate';
const TEXT_MAX = 300;

const STYLE = `
:root { color-scheme: light dark; --fg: #1b1b1b; --bg: #ffffff; --muted: #5c5c5c; --line: #d0d0d0; --panel: #f6f6f6;
  --accent: #0f5bb5; --good: #0b6a0b; --good-bg: #e7f4e7; --warning: #8a5300; --attention: #b3141b;
  --attention-bg: #fdecea; }
@media (prefers-color-scheme: dark) {
  :root { --fg: #ececec; --bg: #1e1e1e; --muted: #b0b0b0; --line: #4a4a4a; --panel: #2a2a2a; --accent: #7db4ff;
    --good: #8fd18f; --good-bg: #1f3320; --warning: #ffc46b; --attention: #ff9a9f; --attention-bg: #3d1d1f; }
}
* { box-sizing: border-box; }
body { margin: 0; font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--fg);
  background: var(--bg); }
.top { display: flex; flex-wrap: wrap; justify-content: space-between; gap: 0.5rem; padding: 0.5rem 1rem;
  border-bottom: 1px solid var(--line); color: var(--muted); font-size: 0.9rem; }
main { max-width: 80rem; margin: 0 auto; padding: 1rem; }
h1 { font-size: 1.4rem; margin: 0.5rem 0; overflow-wrap: anywhere; }
h2 { font-size: 1.1rem; margin: 1.5rem 0 0.5rem; border-bottom: 1px solid var(--line); }
.tiles { display: grid; grid-template-columns: repeat(auto-fill, minmax(11rem, 1fr)); gap: 0.75rem; }
.tile { background: var(--panel); border-radius: 6px; padding: 0.6rem 0.8rem; }
.tile .label { color: var(--muted); font-size: 0.85rem; }
.tile .value { font-size: 1.5rem; font-weight: 600; }
.tile .sub { color: var(--muted); font-size: 0.85rem; }
.charts { display: flex; flex-wrap: wrap; gap: 1.5rem; margin-top: 1rem; }
figure { margin: 0; }
figcaption { font-weight: 600; font-size: 0.9rem; margin-bottom: 0.25rem; }
svg text { fill: var(--muted); font-size: 10px; }
.bar-approve { fill: var(--good); }
.bar-reject { fill: var(--attention); }
.bar-pending { fill: var(--accent); }
.axis { stroke: var(--line); }
.legend { font-size: 0.8rem; color: var(--muted); }
.key-approve { color: var(--good); }
.key-reject { color: var(--attention); }
form.filters { display: flex; flex-wrap: wrap; gap: 0.5rem 1rem; align-items: end; background: var(--panel);
  padding: 0.75rem; border-radius: 6px; }
form.filters label { display: flex; flex-direction: column; font-size: 0.85rem; font-weight: 600; }
input, select, button { font: inherit; padding: 0.25rem 0.4rem; color: var(--fg); background: var(--bg);
  border: 1px solid var(--line); border-radius: 4px; }
button { font-weight: 600; cursor: pointer; border-color: var(--accent); color: var(--accent); }
table { border-collapse: collapse; width: 100%; font-size: 0.9rem; }
th, td { text-align: left; padding: 0.3rem 0.5rem; border-bottom: 1px solid var(--line); vertical-align: top;
  overflow-wrap: anywhere; }
th { font-size: 0.8rem; color: var(--muted); overflow-wrap: normal; white-space: nowrap; }
.nowrap { white-space: nowrap; overflow-wrap: normal; }
.mono { font-family: ui-monospace, Consolas, "Courier New", monospace; font-size: 0.9em; word-break: break-all; }
.pager, .exports { display: flex; gap: 1rem; margin: 0.75rem 0; }
.box { border: 2px solid; border-radius: 6px; padding: 0.6rem 0.9rem; margin: 1rem 0; }
.box h2 { border: 0; margin: 0 0 0.25rem; }
.box ul { margin: 0; padding-left: 1.25rem; }
.box.attention { border-color: var(--attention); background: var(--attention-bg); }
.box.good { border-color: var(--good); background: var(--good-bg); }
dl { display: grid; grid-template-columns: minmax(9rem, max-content) 1fr; gap: 0.2rem 1rem; margin: 0; }
dl > div { display: contents; }
dt { font-weight: 600; }
dd { margin: 0; overflow-wrap: anywhere; }
.message { white-space: pre-wrap; overflow-wrap: anywhere; font: inherit; margin: 0; padding: 0.6rem;
  border: 1px solid var(--line); border-radius: 6px; }
ol.timeline { list-style: none; padding: 0; margin: 0; border-left: 3px solid var(--line); }
ol.timeline li { position: relative; margin: 0 0 0.75rem 0; padding-left: 1rem; }
ol.timeline li::before { content: ""; position: absolute; left: -0.45rem; top: 0.35rem; width: 0.6rem; height: 0.6rem;
  border-radius: 50%; background: var(--accent); }
.when { color: var(--muted); font-size: 0.85rem; }
.subtle { color: var(--muted); font-style: italic; }
.status { font-weight: 600; }
.tone-accent { color: var(--accent); }
.tone-good { color: var(--good); }
.tone-warning { color: var(--warning); }
.tone-attention { color: var(--attention); }
a { color: var(--accent); }
:focus-visible { outline: 3px solid var(--accent); outline-offset: 2px; }
`;

/** Every HTML response of the dashboard carries these: the decision page's policy, with this page's stylesheet. */
export const dashboardHeaders = pageSecurityHeaders(STYLE, 'no-referrer');

const e = (value: unknown) => escapeHtml(cleanText(value === undefined || value === null ? '' : String(value), 2000));

export const DASHBOARD_PATH = '/api/dashboard';

export function renderDashboardMessage(title: string, message: string): string {
    return documentHtml(title, [`<h1>${e(title)}</h1>`, `<p>${e(message)}</p>`]);
}

export interface DashboardPageModel {
    summary: DashboardSummary;
    page: { rows: IndexedRequest[]; next?: string };
    query: DashboardQuery;
    now: Date;
    signedInAs: string;
    /** E.g. that the index is still being built. */
    notice?: string;
}

export function renderDashboard(model: DashboardPageModel): string {
    const { summary, query, now } = model;
    const body = [
        '<h1>Private endpoint connections</h1>',
        ...(model.notice ? [`<p class="box attention" role="status" id="notice">${e(model.notice)}</p>`] : []),
        '<section aria-labelledby="summary-heading">',
        `<h2 id="summary-heading">Summary <span class="when">as of ${e(formatUtc(summary.at))}</span></h2>`,
        tiles(summary, now),
        '<div class="charts">',
        decisionsChart(summary.perDay),
        pendingChart(summary.pendingAges),
        '</div>',
        pendingList(summary, now),
        '</section>',
        '<section aria-labelledby="list-heading">',
        '<h2 id="list-heading">Requests</h2>',
        filterForm(query),
        `<nav class="exports" aria-label="Export">Export this list: <a href="${e(link(query, { format: 'csv' }))}" download>CSV</a>` +
            `<a href="${e(link(query, { format: 'jsonl' }))}" download>JSON lines</a></nav>`,
        requestTable(model.page.rows, now),
        pager(query, model.page.next),
        '</section>',
    ];
    return documentHtml('Dashboard', body, model.signedInAs);
}

function tiles(s: DashboardSummary, now: Date): string {
    const tile = (label: string, value: string, sub = '', id = '') =>
        `<div class="tile"${id ? ` id="${id}"` : ''}><div class="label">${e(label)}</div>` +
        `<div class="value">${e(value)}</div>${sub ? `<div class="sub">${e(sub)}</div>` : ''}</div>`;
    return [
        '<div class="tiles">',
        tile(
            'Pending now',
            String(s.pending.count),
            s.pending.oldestAt ? `oldest ${age(s.pending.oldestAt, now)}` : 'none waiting',
            'tile-pending',
        ),
        tile('Being applied', String(s.applying), 'decided, not yet applied'),
        tile('Decided, 7 days', String(s.decided7), '', 'tile-decided7'),
        tile(
            'Decided, 30 days',
            String(s.decided30),
            `${s.approved30} approved, ${s.rejected30} rejected, ${s.automatic30} automatic`,
            'tile-decided30',
        ),
        tile(
            'Time to decision',
            s.medianToDecision === undefined ? '–' : duration(s.medianToDecision),
            s.p95ToDecision === undefined
                ? 'no decision by a person in 30 days'
                : `median; p95 ${duration(s.p95ToDecision)}`,
            'tile-time',
        ),
        tile(
            'Bypasses, 30 days',
            s.bypasses30 === undefined ? '?' : String(s.bypasses30),
            s.bypasses30 === undefined ? 'could not be counted' : 'connections that skipped the gate',
            'tile-bypasses',
        ),
        tile('Failures, 30 days', String(s.failures30), 'decisions that could not be applied', 'tile-failures'),
        '</div>',
    ].join('');
}

/** Stacked bars of approvals and rejections per day: inline SVG, sized to the data, no script. */
function decisionsChart(days: DashboardSummary['perDay']): string {
    const width = 360;
    const height = 120;
    const barW = width / Math.max(1, days.length);
    const max = Math.max(1, ...days.map((d) => d.approved + d.rejected));
    const scale = (n: number) => (n / max) * (height - 20);
    const bars = days.map((d, i) => {
        const x = (i * barW + 1).toFixed(1);
        const w = Math.max(1, barW - 2).toFixed(1);
        const hA = scale(d.approved);
        const hR = scale(d.rejected);
        const label = `${d.day}: ${d.approved} approved, ${d.rejected} rejected`;
        return (
            `<g><title>${e(label)}</title>` +
            `<rect class="bar-approve" x="${x}" y="${(height - 14 - hA).toFixed(1)}" width="${w}" height="${hA.toFixed(1)}"></rect>` +
            `<rect class="bar-reject" x="${x}" y="${(height - 14 - hA - hR).toFixed(1)}" width="${w}" height="${hR.toFixed(1)}"></rect></g>`
        );
    });
    const first = days[0]?.day ?? '';
    const last = days[days.length - 1]?.day ?? '';
    return [
        '<figure>',
        '<figcaption>Decisions per day, last 30 days</figcaption>',
        `<svg width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" role="img" ` +
            `aria-label="Decisions per day, last 30 days; at most ${max} a day">`,
        `<line class="axis" x1="0" y1="${height - 14}" x2="${width}" y2="${height - 14}"></line>`,
        ...bars,
        `<text x="0" y="${height - 2}">${e(first)}</text>`,
        `<text x="${width}" y="${height - 2}" text-anchor="end">${e(last)}</text>`,
        `<text x="0" y="10">max ${max}</text>`,
        '</svg>',
        '<div class="legend"><span class="key-approve">■ approved</span> <span class="key-reject">■ rejected</span></div>',
        '</figure>',
    ].join('');
}

function pendingChart(buckets: DashboardSummary['pendingAges']): string {
    const width = 300;
    const rowH = 18;
    const height = buckets.length * rowH + 4;
    const max = Math.max(1, ...buckets.map((b) => b.count));
    const rows = buckets.map((b, i) => {
        const w = ((b.count / max) * (width - 110)).toFixed(1);
        const y = i * rowH + 2;
        return (
            `<g><title>${e(`${b.label}: ${b.count} pending`)}</title>` +
            `<text x="0" y="${y + 12}">${e(b.label)}</text>` +
            `<rect class="bar-pending" x="60" y="${y + 2}" width="${w}" height="${rowH - 6}"></rect>` +
            `<text x="${(60 + Number(w) + 4).toFixed(1)}" y="${y + 12}">${b.count}</text></g>`
        );
    });
    return [
        '<figure>',
        '<figcaption>Pending requests by age</figcaption>',
        `<svg width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" role="img" aria-label="Pending requests by age">`,
        ...rows,
        '</svg>',
        '</figure>',
    ].join('');
}

function pendingList(s: DashboardSummary, now: Date): string {
    if (s.pending.rows.length === 0) {
        return '<p class="subtle">Nothing is waiting for a decision.</p>';
    }
    const more = s.pending.count > s.pending.rows.length ? ` (the oldest ${s.pending.rows.length})` : '';
    return [
        `<h2 id="pending-heading">Waiting longest${e(more)}</h2>`,
        '<table aria-labelledby="pending-heading"><thead><tr><th>Waiting</th><th>Server</th><th>Connection</th>',
        '<th>Origin</th><th>Requester</th></tr></thead><tbody>',
        ...s.pending.rows.map(
            (r) =>
                `<tr><td>${e(age(r.createdAt, now))}</td><td>${e(r.server)}</td>` +
                `<td><a href="${e(detailLink(r.id))}">${e(r.pecName)}</a></td><td>${originText(r.origin)}</td>` +
                `<td>${e(r.requester || 'unknown')}</td></tr>`,
        ),
        '</tbody></table>',
    ].join('');
}

function filterForm(q: DashboardQuery): string {
    const select = (name: string, label: string, options: readonly string[], value: string | undefined) =>
        `<label>${e(label)}<select name="${name}"><option value="">any</option>` +
        options.map((o) => `<option value="${e(o)}"${o === value ? ' selected' : ''}>${e(o)}</option>`).join('') +
        '</select></label>';
    const input = (name: string, label: string, value: string | undefined, type = 'text') =>
        `<label>${e(label)}<input type="${type}" name="${name}" value="${e(value ?? '')}"></label>`;
    return [
        `<form class="filters" method="get" action="${DASHBOARD_PATH}" aria-label="Filters">`,
        select('status', 'State', requestStatuses, q.status),
        select('kind', 'Resource kind', Object.keys(kindInfo), q.kind),
        input('server', 'Server', q.server),
        select('origin', 'Origin', ['trusted', 'foreign', 'unknown'], q.origin),
        input('requester', 'Requester', q.requester),
        input('approver', 'Approver', q.approver),
        input('from', 'Opened from', q.from, 'date'),
        input('to', 'Opened to', q.to, 'date'),
        '<button type="submit">Filter</button>',
        `<a href="${DASHBOARD_PATH}">Clear</a>`,
        '</form>',
    ].join('');
}

function requestTable(rows: readonly IndexedRequest[], now: Date): string {
    if (rows.length === 0) {
        return '<p class="subtle" id="no-requests">No request matches these filters.</p>';
    }
    return [
        '<table id="requests"><thead><tr><th>Opened</th><th>State</th><th>Kind</th><th>Server</th><th>Connection</th>',
        '<th>Origin</th><th>Requester</th><th>Approver</th><th>Decided</th></tr></thead><tbody>',
        ...rows.map(
            (r) =>
                `<tr data-id="${e(r.id)}"><td>${e(formatUtc(r.createdAt))}<div class="when">${e(age(r.createdAt, now))} ago</div></td>` +
                `<td>${stateText(r)}</td><td>${e(kindLabel(r.kind))}</td><td>${e(r.server)}</td>` +
                `<td><a href="${e(detailLink(r.id))}">${e(r.pecName)}</a></td><td>${originText(r.origin)}</td>` +
                `<td>${e(r.requester || 'unknown')}</td><td>${e(r.approver)}</td>` +
                `<td>${r.decidedAt ? e(formatUtc(r.decidedAt)) : ''}</td></tr>`,
        ),
        '</tbody></table>',
    ].join('');
}

function pager(q: DashboardQuery, next: string | undefined): string {
    const parts: string[] = [];
    if (q.after) {
        parts.push(`<a href="${e(link(q, { after: undefined }))}">First page</a>`);
    }
    if (next) {
        parts.push(`<a href="${e(link(q, { after: next }))}" rel="next">Next page</a>`);
    }
    return parts.length > 0 ? `<nav class="pager" aria-label="Pages">${parts.join('')}</nav>` : '';
}

/** The dashboard URL with the current filters and the given changes. */
function link(q: DashboardQuery, change: Partial<Record<keyof DashboardQuery, string | undefined>>): string {
    const params = new URLSearchParams();
    const merged: Record<string, string | undefined> = { ...q, request: undefined, format: undefined, ...change };
    if (change.format) {
        merged.after = undefined;
    }
    for (const [key, value] of Object.entries(merged)) {
        if (value !== undefined && value !== '') {
            params.set(key, value);
        }
    }
    const text = params.toString();
    return text ? `${DASHBOARD_PATH}?${text}` : DASHBOARD_PATH;
}

function detailLink(id: string): string {
    return `${DASHBOARD_PATH}?request=${encodeURIComponent(id)}`;
}

const stateTones: Record<string, CardTone> = {
    pending: 'accent',
    decided: 'accent',
    applied: 'good',
    failed: 'attention',
    expired: 'warning',
    superseded: 'warning',
};

function stateText(r: IndexedRequest): string {
    const what = r.action ? ` (${r.action === 'reject' ? 'rejected' : 'approved'}${r.auto ? `, ${r.auto}` : ''})` : '';
    const tone = r.action === 'reject' && r.status === 'applied' ? 'attention' : (stateTones[r.status] ?? 'default');
    return `<span class="status tone-${tone}">${e(`${r.status}${what}`)}</span>`;
}

function originText(origin: string): string {
    const tone = origin === 'trusted' ? 'good' : 'attention';
    const text = origin === 'trusted' ? 'trusted' : origin.toUpperCase();
    return `<span class="nowrap tone-${tone}">${e(text)}</span>`;
}

function kindLabel(kind: string): string {
    return (kindInfo as Record<string, { label: string } | undefined>)[kind]?.label ?? kind;
}

/** An intact trail: what vouches for it, the anchors' gaps, and, when they could not be read, what was not compared. */
function chainIntact(chain: ChainCheck, anchorsUnread: string | undefined): string {
    const entries = `${chain.entries} entr${chain.entries === 1 ? 'y' : 'ies'}`;
    if (anchorsUnread !== undefined) {
        return (
            '<section class="box attention" id="chain" aria-label="Audit chain"><p>Hash chain intact: ' +
            `${entries}, each hash matching its content and its predecessor. The write-once anchors could not be read ` +
            `(${e(anchorsUnread)}), so a trail rewritten with new hashes would not show here: run ` +
            '<code>pec audit verify</code>.</p></section>'
        );
    }
    const gaps = (chain.warnings ?? []).map((w) => `<li>${e(w.message)}</li>`).join('');
    return (
        `<section class="box good" id="chain" aria-label="Audit chain"><p>Audit trail intact: ${entries}, each hash ` +
        'matching its content and its predecessor, and every head anchored in the write-once store still in its ' +
        `place.</p>${gaps ? `<ul>${gaps}</ul>` : ''}</section>`
    );
}

export function renderRequestDetail(model: RequestDetail, options: { now: Date; signedInAs: string }): string {
    const { view, chain, trail } = model;
    const body: string[] = [
        `<p><a href="${DASHBOARD_PATH}">← Dashboard</a></p>`,
        `<h1>${e(view.title)}</h1>`,
        `<p class="status tone-${view.statusLine.tone}">${e(view.statusLine.text)}</p>`,
    ];
    body.push(
        chain.ok
            ? chainIntact(chain, model.anchorsUnread)
            : [
                  '<section class="box attention" id="chain" aria-labelledby="chain-heading">',
                  '<h2 id="chain-heading" class="tone-attention">Audit chain BROKEN</h2>',
                  `<ul>${chain.findings.map((f) => `<li><strong>${e(f.kind)}</strong>: ${e(f.message)}</li>`).join('')}</ul>`,
                  '</section>',
              ].join(''),
    );
    body.push(
        view.warnings.length === 0
            ? '<section class="box good" aria-label="Risk check"><p>No risk flags: trusted subscription, no foreign ' +
                  'tenant, public access off, no untrusted approvals.</p></section>'
            : '<section class="box attention" aria-labelledby="risks-heading"><h2 id="risks-heading" ' +
                  `class="tone-attention">Risks</h2><ul>${view.warnings.map((w) => `<li><strong>${e(w)}</strong></li>`).join('')}</ul></section>`,
    );
    const links: string[] = [];
    if (model.portalUrl && isHttps(model.portalUrl)) {
        links.push(
            `<li><a href="${e(model.portalUrl)}" rel="noopener noreferrer" target="_blank">Open in Azure portal</a></li>`,
        );
    }
    if (model.decisionPageUrl && isHttps(model.decisionPageUrl)) {
        links.push(
            `<li><a id="decision-page" href="${e(model.decisionPageUrl)}" rel="noopener noreferrer">Decision page</a> ` +
                '<span class="subtle">(to decide, open it from the card: the card’s link carries its one-time token)</span></li>',
        );
    }
    if (links.length > 0) {
        body.push('<nav aria-label="Links"><ul>', ...links, '</ul></nav>');
    }
    body.push(
        '<section aria-labelledby="timeline-heading"><h2 id="timeline-heading">Timeline</h2>',
        timeline(trail),
        '</section>',
    );
    for (const section of view.sections) {
        body.push(
            `<section aria-label="${e(section.title)}"><h2>${e(section.title)}</h2>${factList(section.facts)}</section>`,
        );
    }
    body.push(
        '<section aria-labelledby="message-heading"><h2 id="message-heading">Request message</h2>',
        view.message
            ? `<pre class="message">\n${escapeHtml(cleanText(view.message, 4000, { multiline: true }))}</pre>`
            : '<p class="subtle">(no message)</p>',
        '</section>',
        `<footer><p class="subtle">Request <span class="mono">${e(view.requestId)}</span>, as of ` +
            `${e(formatUtc(options.now.toISOString()))}</p></footer>`,
    );
    return documentHtml(view.title, body, options.signedInAs);
}

function timeline(trail: readonly AuditEntry[]): string {
    if (trail.length === 0) {
        return '<p class="subtle">No audit entries.</p>';
    }
    const items = trail.map((entry) => {
        const actor = entry.actor.name ?? entry.actor.id ?? entry.actor.kind;
        const parts = [
            `<div class="when">${e(formatUtc(entry.at))} · #${e(entry.seq)}</div>`,
            `<div><strong>${e(entry.action)}</strong> by ${e(actor)} <span class="subtle">(${e(entry.actor.kind)})</span></div>`,
        ];
        if (entry.text) {
            parts.push(`<div>Text: ${e(entry.text)}</div>`);
        }
        if (entry.detail) {
            parts.push(`<div>${e(entry.detail)}</div>`);
        }
        if (entry.before !== undefined || entry.after !== undefined) {
            parts.push(`<div class="mono">${e(compact(entry.before))} → ${e(compact(entry.after))}</div>`);
        }
        return `<li>${parts.join('')}</li>`;
    });
    return `<ol class="timeline" id="timeline">${items.join('')}</ol>`;
}

function compact(value: unknown): string {
    if (value === undefined) {
        return '–';
    }
    return cleanText(typeof value === 'string' ? value : JSON.stringify(value), TEXT_MAX);
}

function factList(facts: CardFact[]): string {
    return `<dl>${facts
        .map((f) => {
            const tone = f.tone && f.tone !== 'default' ? ` class="tone-${f.tone}"` : '';
            return `<div><dt>${e(f.label)}</dt><dd${tone}>${e(f.value || '—')}</dd></div>`;
        })
        .join('')}</dl>`;
}

function isHttps(url: string): boolean {
    try {
        const u = new URL(url);
        return u.protocol === 'https:' && !u.username && !u.password;
    } catch {
        return false;
    }
}

function age(iso: string, now: Date): string {
    return duration(Math.max(0, (now.getTime() - Date.parse(iso)) / 1000));
}

/** 45 s, 12 min, 5 h 10 min, 3 d 4 h. */
export function duration(seconds: number): string {
    if (!Number.isFinite(seconds)) {
        return '?';
    }
    const s = Math.round(seconds);
    if (s < 60) {
        return `${s} s`;
    }
    const m = Math.floor(s / 60);
    if (m < 60) {
        return `${m} min`;
    }
    const h = Math.floor(m / 60);
    if (h < 24) {
        return m % 60 ? `${h} h ${m % 60} min` : `${h} h`;
    }
    const d = Math.floor(h / 24);
    return h % 24 ? `${d} d ${h % 24} h` : `${d} d`;
}

function documentHtml(title: string, body: string[], signedInAs?: string): string {
    return htmlDocument({
        title: cleanText(title, 2000),
        body,
        style: STYLE,
        label: `${APP_NAME} · dashboard`,
        signedInAs: cleanText(signedInAs ?? '', 2000),
        referrer: 'no-referrer',
    });
}

import type { RequestStatus } from '../domain/request';
import type { StoredRequest } from '../storage/requestStore';
import type { OpsStores } from './connection';
import { exitCodes, formatTime, renderTable, type Output } from './output';
import { summarize, type RequestSummary } from './summary';

/** Listed whatever their age: each still wants something from someone (an approver, the apply, an operator). */
export const alwaysListed: readonly RequestStatus[] = ['pending', 'decided', 'failed'];

export interface ListOptions {
    /** Every request, however old. */
    all: boolean;
    /** Requests in other statuses are listed when they last changed at or after this time. */
    since: Date;
    now: Date;
    json: boolean;
    /** Only requests on these resource kinds (`--kind`, repeatable or comma-separated); all kinds when absent. */
    kinds?: readonly string[];
}

/** `pec list`: what needs attention first (pending, decided, failed), then what finished recently; newest first. */
export async function listCommand(
    stores: Pick<OpsStores, 'requests'>,
    options: ListOptions,
    output: Output,
): Promise<number> {
    const stored: StoredRequest[] = [];
    const query = options.all ? {} : { statuses: alwaysListed, changedSince: options.since };
    for await (const item of stores.requests.listRequests(query)) {
        stored.push(item);
    }
    const rank = (s: RequestStatus) => (alwaysListed.includes(s) ? 0 : 1);
    const summaries = stored
        .map((s) => summarize(s.request, options.now))
        .filter((s) => !options.kinds || options.kinds.includes(s.serverKind))
        .sort(
            (a, b) =>
                rank(a.status) - rank(b.status) ||
                Date.parse(b.createdAt) - Date.parse(a.createdAt) ||
                (a.id < b.id ? -1 : 1),
        );
    if (options.json) {
        output.out(JSON.stringify(summaries, null, 2));
        return exitCodes.ok;
    }
    if (summaries.length > 0) {
        const rows = summaries.map((s) => [
            s.id,
            s.state,
            s.serverKind,
            s.server,
            truncate(s.pecName, 48),
            truncate(s.requester, 40),
            s.origin.label,
            s.age,
            s.card.label,
        ]);
        for (const line of renderTable(
            ['ID', 'STATUS', 'KIND', 'SERVER', 'PEC', 'REQUESTER', 'ORIGIN', 'AGE', 'CARD'],
            rows,
        )) {
            output.out(line);
        }
        output.out('');
    }
    output.out(footer(summaries, options));
    return exitCodes.ok;
}

function footer(summaries: readonly RequestSummary[], options: ListOptions): string {
    const count = (status: RequestStatus) => summaries.filter((s) => s.status === status).length;
    const open = `${count('pending')} pending, ${count('decided')} decided, ${count('failed')} failed`;
    const finished = summaries.filter((s) => !alwaysListed.includes(s.status)).length;
    const missing = summaries.filter((s) => s.card.state === 'missing').length;
    const total = `${summaries.length} request${summaries.length === 1 ? '' : 's'}`;
    const scope = options.all
        ? `${total} in all: ${open}, ${finished} finished`
        : `${total}: ${open}; ${finished} finished since ${formatTime(options.since.toISOString())} (--all for every request)`;
    return missing > 0 ? `${scope}. ${missing} open without a card: pec resend ID` : scope;
}

function truncate(text: string, max: number): string {
    return text.length <= max ? text : `${text.slice(0, max - 1)}…`;
}

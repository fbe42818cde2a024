import { ensureErrorType } from '../domain/errors';
import { settleAll } from '../workflow/concurrency';
import { checkChain, missingTrail, withAnchors, type ChainCheck } from './chain';
import type { OpsStores } from './connection';
import { exitCodes, safe, type Output } from './output';

/** Trails read at once: a verify of thousands of requests is bound by round trips, not by the table's throughput. */
const readConcurrency = 8;

/**
 * `pec audit verify`: every request's chain, and every chain against its anchors. The trails are found from three
 * sides, the audit table's partitions, the requests table and the anchor store, so a trail deleted whole (which no
 * chain can reveal) still shows, as a request or an anchor without one; a trail cut short, or rewritten with every
 * hash recomputed, shows against the heads anchored for it. Exits 1 when any chain is broken or could not be read.
 */
export async function verifyCommand(stores: OpsStores, options: { json: boolean }, output: Output): Promise<number> {
    const trailIds = await stores.audit.listRequestIds();
    const requestIds = new Set<string>();
    for await (const { request } of stores.requests.listRequests()) {
        requestIds.add(request.id);
    }
    const anchoredIds = stores.anchors ? await stores.anchors.listRequestIds() : [];
    const withTrail = new Set(trailIds);
    const ids = [...new Set([...trailIds, ...requestIds, ...anchoredIds])].sort();
    const results = await settleAll(ids, readConcurrency, async (id): Promise<ChainCheck> => {
        const entries = withTrail.has(id) ? await stores.audit.list(id) : [];
        const check = entries.length === 0 ? missingTrail(id) : checkChain(id, entries);
        if (!stores.anchors) {
            return check;
        }
        return withAnchors(check, entries, await stores.anchors.heads(id));
    });

    const checks: ChainCheck[] = [];
    const unreadable: { requestId: string; error: string }[] = [];
    results.forEach((result, i) => {
        const requestId = ids[i] ?? '?';
        if (result.status === 'fulfilled') {
            checks.push(result.value);
        } else {
            unreadable.push({ requestId, error: ensureErrorType(result.reason).message });
        }
    });
    const broken = checks.filter((c) => !c.ok);
    const verified = checks.length - broken.length;
    const summary =
        `${verified} chain${verified === 1 ? '' : 's'} verified, ${broken.length} broken` +
        (unreadable.length > 0 ? `, ${unreadable.length} could not be read` : '');

    if (options.json) {
        output.out(JSON.stringify({ verified, broken, unreadable }, null, 2));
    } else {
        for (const check of broken) {
            output.out(`BROKEN ${check.requestId} (${check.entries} entr${check.entries === 1 ? 'y' : 'ies'})`);
            for (const finding of check.findings) {
                output.out(`  ${finding.kind}: ${finding.message}`);
            }
        }
        for (const item of unreadable) {
            output.out(`UNREADABLE ${item.requestId}: ${safe(item.error, 300)}`);
        }
        for (const check of checks.filter((c) => c.ok && c.warnings)) {
            for (const warning of check.warnings ?? []) {
                output.out(`WARNING ${check.requestId}: ${warning.message}`);
            }
        }
        if (!stores.anchors) {
            output.out('WARNING anchors not checked: no blob endpoint for AUDIT_ANCHOR_CONTAINER');
        }
        output.out(summary);
    }
    if (options.json) {
        output.err(summary);
    }
    return broken.length > 0 || unreadable.length > 0 ? exitCodes.failed : exitCodes.ok;
}

export interface ExportOptions {
    /** Only entries written at or after this time. */
    since?: Date;
}

/**
 * `pec audit export`: every audit entry as one JSON line, for a SIEM: request by request (sorted by id), each trail
 * in sequence order, each line the entry exactly as stored (it carries its requestId, sequence, hash and the hash
 * of its predecessor, so the receiver can verify the chains itself). `write` may return a promise, for backpressure.
 */
export async function exportCommand(
    stores: Pick<OpsStores, 'audit'>,
    options: ExportOptions,
    write: (line: string) => void | Promise<void>,
): Promise<{ entries: number; requests: number }> {
    const since = options.since?.getTime();
    let entries = 0;
    let requests = 0;
    for (const id of await stores.audit.listRequestIds()) {
        const trail = await stores.audit.list(id);
        const selected = since === undefined ? trail : trail.filter((e) => Date.parse(e.at) >= since);
        if (selected.length > 0) {
            requests += 1;
        }
        for (const entry of selected) {
            // Exactly as stored, nothing added: any extra field would stop the receiver's own hash check.
            await write(JSON.stringify(entry));
            entries += 1;
        }
    }
    return { entries, requests };
}

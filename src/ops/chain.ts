import { genesisHash, type AuditEntry } from '../domain/audit';
import type { AnchorHead } from '../storage/auditAnchor';
import { hashAuditEntry, verifyChain } from '../storage/auditLog';
import { safe } from './output';

/**
 * What is wrong with a request's audit chain, in an operator's words. `verifyChain` decides whether a chain is intact
 * (it is the check the workflow's tests use); this explains a broken one. Its one-line-per-symptom output repeats
 * itself (a deleted entry makes every later sequence number "out of order") and cannot say whether a broken link
 * means a deletion or a reorder; here each tampering is named once: edited, deleted, reordered, duplicated, moved
 * from another trail, or rewritten with its hash recomputed.
 *
 * What no chain can show: entries cut off at its end, or a trail deleted whole. The second is caught by `audit verify`,
 * which also walks the requests table and reports a request without a trail.
 */

export type ChainFindingKind =
    | 'edited'
    | 'rewritten'
    | 'deleted'
    | 'reordered'
    | 'duplicated'
    | 'foreign'
    | 'missing-trail'
    | 'broken'
    /** Entries the anchor store vouches for are gone from the end of the trail. */
    | 'truncated'
    /** An entry differs from the hash anchored for it: rewritten, reordered or replaced, hashes recomputed or not. */
    | 'anchor-mismatch'
    /** A warning, not a break: the trail's latest entries have no anchor yet (an anchor write failed or is pending). */
    | 'unanchored';

export interface ChainFinding {
    kind: ChainFindingKind;
    /** The sequence number concerned (the first of a run of deleted entries). */
    seq?: number;
    message: string;
}

export interface ChainCheck {
    requestId: string;
    entries: number;
    ok: boolean;
    findings: ChainFinding[];
    /** `verifyChain`'s own output, unchanged. */
    problems: string[];
    /** What does not break the chain but limits what it proves (entries not anchored yet). */
    warnings?: ChainFinding[];
}

/** Checks one request's entries, in the order the table holds them (as `AuditLog.list` returns them). */
export function checkChain(requestId: string, entries: readonly AuditEntry[]): ChainCheck {
    const problems = verifyChain(entries);
    const findings = diagnose(requestId, entries);
    if (problems.length > 0 && findings.length === 0) {
        // Not expected, but never report a chain verifyChain refuses as intact for want of a better word.
        findings.push(...problems.map((message) => ({ kind: 'broken' as const, message })));
    }
    return { requestId, entries: entries.length, ok: findings.length === 0, findings, problems };
}

/** A request that exists but has no audit entry at all: its trail was deleted, or it was opened without one. */
export function missingTrail(requestId: string): ChainCheck {
    return {
        requestId,
        entries: 0,
        ok: false,
        findings: [
            {
                kind: 'missing-trail',
                message: 'the request exists but has no audit entries: its trail was deleted, or never written',
            },
        ],
        problems: [],
    };
}

function diagnose(requestId: string, entries: readonly AuditEntry[]): ChainFinding[] {
    const findings: ChainFinding[] = [];
    const seqs = entries.map((e) => e.seq);

    const edited = new Set<number>();
    entries.forEach((entry, row) => {
        const { hash, ...rest } = entry;
        if (hashAuditEntry(rest) !== hash) {
            edited.add(row);
            findings.push({
                kind: 'edited',
                seq: entry.seq,
                message: `entry ${entry.seq} (${safe(entry.action, 40)}) was edited: its content does not match its hash`,
            });
        }
        if (entry.requestId !== requestId) {
            findings.push({
                kind: 'foreign',
                seq: entry.seq,
                message: `entry ${entry.seq} belongs to request ${safe(entry.requestId, 80)}: copied or moved here from its trail`,
            });
        }
    });

    const counts = new Map<number, number>();
    for (const seq of seqs) {
        counts.set(seq, (counts.get(seq) ?? 0) + 1);
    }
    for (const [seq, n] of counts) {
        if (n > 1) {
            findings.push({ kind: 'duplicated', seq, message: `entry ${seq} appears ${n} times: copied or replayed` });
        }
    }

    // Every number from 1 to the highest one present must be there; the highest is all the chain can vouch for.
    const highest = Math.max(0, ...seqs.filter((s) => Number.isInteger(s) && s > 0 && s <= 1_000_000));
    for (let seq = 1; seq <= highest; seq++) {
        if (counts.has(seq)) {
            continue;
        }
        let end = seq;
        while (end + 1 <= highest && !counts.has(end + 1)) {
            end++;
        }
        findings.push({
            kind: 'deleted',
            seq,
            message:
                seq === end
                    ? `entry ${seq} is missing: deleted (entry ${seq + 1} points at its hash)`
                    : `entries ${seq} to ${end} are missing: deleted`,
        });
        seq = end;
    }

    for (let row = 1; row < entries.length; row++) {
        const seq = seqs[row] ?? 0;
        const before = seqs[row - 1] ?? 0;
        if (seq < before) {
            findings.push({
                kind: 'reordered',
                seq,
                message: `entry ${seq} is stored after entry ${before}: the entries were reordered`,
            });
        }
    }

    // A broken link between two entries whose numbers follow each other, both consistent with their own hashes, is
    // neither a deletion nor a reorder: the earlier one was replaced, its hash recomputed to hide an edit.
    entries.forEach((entry, row) => {
        const previous = row === 0 ? undefined : entries[row - 1];
        const expected = previous ? previous.hash : genesisHash;
        const adjacent = previous ? entry.seq === previous.seq + 1 : entry.seq === 1;
        if (entry.prevHash === expected || !adjacent || edited.has(row)) {
            return;
        }
        findings.push(
            previous
                ? {
                      kind: 'rewritten',
                      seq: previous.seq,
                      message:
                          `entry ${previous.seq} (${safe(previous.action, 40)}) was rewritten with a recomputed hash: ` +
                          `entry ${entry.seq} does not follow it`,
                  }
                : {
                      kind: 'rewritten',
                      seq: entry.seq,
                      message: `entry ${entry.seq} does not start the chain: it was replaced`,
                  },
        );
    });

    return findings.sort((a, b) => (a.seq ?? 0) - (b.seq ?? 0));
}

/**
 * Compares a trail with the heads anchored for it, which the app could add to but never take back. Every anchored head
 * must still be in the trail, at its place, with its hash: a trail cut short, deleted, reordered or rewritten (with
 * every hash after the edit recomputed, which the chain alone cannot reveal) fails here. Entries after the last anchor
 * are only as good as the chain: reported as a warning.
 */
export function checkAnchors(
    requestId: string,
    entries: readonly AuditEntry[],
    heads: readonly AnchorHead[],
): { findings: ChainFinding[]; warnings: ChainFinding[] } {
    const findings: ChainFinding[] = [];
    const warnings: ChainFinding[] = [];
    const bySeq = new Map<number, AnchorHead>();
    for (const head of heads) {
        if (head.requestId !== requestId || !Number.isSafeInteger(head.seq) || head.seq < 1) {
            continue;
        }
        const known = bySeq.get(head.seq);
        if (known && known.hash !== head.hash) {
            // Two hashes anchored for one place: the anchor store holds both, so someone appended a forged head.
            findings.push({
                kind: 'anchor-mismatch',
                seq: head.seq,
                message: `entry ${head.seq} was anchored twice with different hashes: a forged anchor was appended`,
            });
        }
        bySeq.set(head.seq, known ?? head);
    }
    const last = entries.length === 0 ? 0 : Math.max(...entries.map((e) => (Number.isSafeInteger(e.seq) ? e.seq : 0)));
    const anchoredUpTo = Math.max(0, ...bySeq.keys());
    if (anchoredUpTo > last) {
        findings.push({
            kind: 'truncated',
            seq: last + 1,
            message:
                `the anchor vouches for ${anchoredUpTo} entr${anchoredUpTo === 1 ? 'y' : 'ies'} ` +
                `(the last written ${bySeq.get(anchoredUpTo)?.at ?? '?'}), the trail ends at entry ${last}: ` +
                `entries ${last + 1} to ${anchoredUpTo} were deleted`,
        });
    }
    // By the number each entry claims: a deletion or a plain swap of rows keeps every hash and is the chain's to name;
    // here only what the chain cannot see, an entry whose hash is not the one anchored for its number.
    for (const entry of entries) {
        const head = bySeq.get(entry.seq);
        if (head && entry.hash !== head.hash) {
            findings.push({
                kind: 'anchor-mismatch',
                seq: entry.seq,
                message:
                    `entry ${entry.seq} (${safe(entry.action, 40)}) is not the entry anchored for it at ${safe(head.at, 40)}: ` +
                    'it was rewritten, reordered or replaced after it was written',
            });
        }
    }
    if (last > anchoredUpTo) {
        warnings.push({
            kind: 'unanchored',
            seq: anchoredUpTo + 1,
            message:
                anchoredUpTo === 0
                    ? 'no entry of this trail is anchored: only its hash chain vouches for it'
                    : `entries ${anchoredUpTo + 1} to ${last} are not anchored yet: only the hash chain vouches for them`,
        });
    }
    return { findings, warnings };
}

/**
 * The chain's check and the anchors' together, as one verdict: every finding of both in sequence order, the chain
 * intact only when neither found anything, and the anchors' warnings (entries not anchored yet) kept apart.
 */
export function withAnchors(
    check: ChainCheck,
    entries: readonly AuditEntry[],
    heads: readonly AnchorHead[],
): ChainCheck {
    const anchored = checkAnchors(check.requestId, entries, heads);
    const findings = [...check.findings, ...anchored.findings].sort((a, b) => (a.seq ?? 0) - (b.seq ?? 0));
    return {
        ...check,
        ok: findings.length === 0,
        findings,
        ...(anchored.warnings.length > 0 ? { warnings: anchored.warnings } : {}),
    };
}

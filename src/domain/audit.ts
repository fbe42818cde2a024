/**
 * Audit entries: one per step of a request, append-only, chained by hash per request so that `verify` can detect an
 * entry that was edited, deleted or reordered.
 */

export type AuditAction =
    | 'requested'
    | 'card-posted'
    | 'card-fallback'
    | 'card-failed'
    /**
     * An operator posted the card again (`pec resend`), for one that was lost: `before` is the card it replaces, whose
     * buttons stop working, `after` the new one.
     */
    | 'card-resent'
    /**
     * A second card of the request turned up in the channel (a post whose answer was lost had landed after all) and was
     * replaced by a note pointing to the card that stays: `before` is the note's place, `after` the card that stays.
     */
    | 'card-duplicate'
    | 'decided'
    | 'refused'
    | 'applied'
    | 'superseded'
    | 'failed'
    | 'expired'
    /** A policy rule set how many approvals the request needs. */
    | 'policy'
    /** One of several approvals needed was given. */
    | 'approval'
    | 'reminded'
    /** The sweep queued the apply of a decision again. */
    | 'requeued'
    /** An expired request stopped holding its PEC, which is no longer Pending. */
    | 'released'
    /** The requester became known after the request was opened (their event came after the sweep). */
    | 'identified'
    /** A connection was found Approved without a decision of ours; `after` says how the policy judged it. */
    | 'bypassed'
    /** A connection was already Approved when its subscription and kind were first watched: the baseline. */
    | 'baseline';

export interface AuditActor {
    kind: 'system' | 'approver' | 'requester' | 'policy';
    id?: string;
    name?: string;
}

export interface AuditInput {
    requestId: string;
    action: AuditAction;
    actor: AuditActor;
    correlationId: string;
    before?: unknown;
    after?: unknown;
    text?: string;
    detail?: string;
}

export interface AuditEntry extends AuditInput {
    seq: number;
    at: string;
    prevHash: string;
    hash: string;
}

export const genesisHash = '0'.repeat(64);

/** A stable serialisation (sorted keys) of everything the hash covers: the entry itself and its predecessor's hash. */
export function canonicalAuditPayload(entry: Omit<AuditEntry, 'hash'>): string {
    return stableStringify(entry);
}

function stableStringify(value: unknown): string {
    if (value === null || typeof value !== 'object') {
        return JSON.stringify(value) ?? 'null';
    }
    if (Array.isArray(value)) {
        return `[${value.map(stableStringify).join(',')}]`;
    }
    const entries = Object.entries(value as Record<string, unknown>)
        .filter(([, v]) => v !== undefined)
        .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${stableStringify(v)}`).join(',')}}`;
}

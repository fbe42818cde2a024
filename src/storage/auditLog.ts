import { createHash } from 'node:crypto';
import type { TableClient } from '@azure/data-tables';
import { canonicalAuditPayload, genesisHash, type AuditEntry, type AuditInput } from '../domain/audit';
import { ensureErrorType, isTransientStatus, statusCodeOf, TransientError } from '../domain/errors';

export interface AppendOptions {
    /** The caller has just opened the request, so its trail is empty: nothing needs reading before the first entry. */
    first?: boolean;
}

export interface AuditLog {
    append(input: AuditInput, options?: AppendOptions): Promise<AuditEntry>;
    list(requestId: string): Promise<AuditEntry[]>;
    /**
     * Starts loading what an append will need beyond the trail (the anchor store's client), so the load overlaps the
     * caller's other I/O instead of delaying its next step. Never fails: a load that fails is retried by the append.
     */
    prepare?(): void;
}

/** Read-only queries for operators (the `pec` CLI): the workflow only ever reads one request's trail. */
export interface AuditQueries {
    /** Every request id that has an audit trail (one per partition), sorted, read from the keys only. */
    listRequestIds(): Promise<string[]>;
}

export function hashAuditEntry(entry: Omit<AuditEntry, 'hash'>): string {
    return createHash('sha256').update(canonicalAuditPayload(entry)).digest('hex');
}

/** Checks one request's chain; returns the problems found (none for an intact chain). */
export function verifyChain(entries: readonly AuditEntry[]): string[] {
    const problems: string[] = [];
    let prev = genesisHash;
    entries.forEach((entry, index) => {
        const { hash, ...rest } = entry;
        if (entry.seq !== index + 1) {
            problems.push(`entry ${index + 1}: sequence ${entry.seq} (an entry is missing or out of order)`);
        }
        if (entry.prevHash !== prev) {
            problems.push(`entry ${entry.seq}: does not follow the entry before it (deleted or reordered)`);
        }
        if (hashAuditEntry(rest) !== hash) {
            problems.push(`entry ${entry.seq}: content does not match its hash (edited)`);
        }
        prev = hash;
    });
    return problems;
}

interface AuditEntity {
    partitionKey: string;
    rowKey: string;
    entry: string;
    action: string;
    at: string;
}

/** Where every chain starts: no entry, and the genesis hash for the first one to point at. */
const genesis = { seq: 0, hash: genesisHash };
const maxRememberedHeads = 10_000;

/**
 * The audit table: PartitionKey is the request id, RowKey the zero-padded sequence number. An insert of an existing
 * sequence fails (409), so two concurrent appends never share a place in the chain: the loser re-reads and retries.
 */
export class TableAuditLog implements AuditLog, AuditQueries {
    constructor(
        private readonly table: () => Promise<TableClient>,
        private readonly now: () => Date = () => new Date(),
    ) {}

    /**
     * The last entry this process wrote to each trail. An append usually follows one by the same invocation (requested,
     * then card-posted; decided, then applied), so it goes straight to the next place in the chain instead of reading
     * the trail first. A stale guess costs nothing but a retry: the insert of a taken place fails (409) and the trail
     * is read. Bounded, oldest first out.
     */
    private readonly heads = new Map<string, Pick<AuditEntry, 'seq' | 'hash'>>();

    async append(input: AuditInput, options: AppendOptions = {}): Promise<AuditEntry> {
        const table = await this.table();
        for (let attempt = 0; attempt < 20; attempt++) {
            let last: Pick<AuditEntry, 'seq' | 'hash'> | undefined =
                attempt === 0 ? (this.heads.get(input.requestId) ?? (options.first ? genesis : undefined)) : undefined;
            if (!last) {
                const existing = await this.list(input.requestId);
                last = existing[existing.length - 1] ?? genesis;
            }
            // Hash exactly what is stored and read back: JSON turns a Date (or anything with toJSON) in before/after
            // into a string, and the chain must still verify after that round trip.
            const unsigned = JSON.parse(
                JSON.stringify({
                    ...input,
                    seq: last.seq + 1,
                    at: this.now().toISOString(),
                    prevHash: last.hash,
                }),
            ) as Omit<AuditEntry, 'hash'>;
            const entry: AuditEntry = { ...unsigned, hash: hashAuditEntry(unsigned) };
            try {
                await table.createEntity<AuditEntity>({
                    partitionKey: input.requestId,
                    rowKey: auditRowKey(input.requestId, entry.seq),
                    entry: JSON.stringify(entry),
                    action: entry.action,
                    at: entry.at,
                });
                this.remember(entry);
                return entry;
            } catch (err) {
                if (statusCodeOf(err) !== 409) {
                    throw new TransientError(`Audit: could not append: ${ensureErrorType(err).message}`, {
                        cause: err,
                    });
                }
                // A retried insert whose first try got through (its answer lost) meets its own entry: the append is
                // done. Appending again would put the same step in the trail twice.
                if (await this.holds(table, entry)) {
                    this.remember(entry);
                    return entry;
                }
                this.heads.delete(input.requestId);
                // Lost the race for this place in the chain: back off a little (with jitter) so a crowd of writers
                // to one request spreads out instead of colliding again.
                await new Promise((r) => setTimeout(r, Math.random() * 20 * Math.min(attempt + 1, 5)));
            }
        }
        throw new TransientError(`Audit: could not append to ${input.requestId}: too many concurrent writers`);
    }

    private remember(entry: AuditEntry): void {
        this.heads.delete(entry.requestId);
        this.heads.set(entry.requestId, { seq: entry.seq, hash: entry.hash });
        if (this.heads.size > maxRememberedHeads) {
            const oldest = this.heads.keys().next().value;
            if (oldest !== undefined) {
                this.heads.delete(oldest);
            }
        }
    }

    /** Whether the entry's place in the chain holds exactly this entry (the hash covers its time and content). */
    private async holds(table: TableClient, entry: AuditEntry): Promise<boolean> {
        try {
            const stored = await table.getEntity<AuditEntity>(entry.requestId, auditRowKey(entry.requestId, entry.seq));
            return (JSON.parse(stored.entry) as AuditEntry).hash === entry.hash;
        } catch (err) {
            if (statusCodeOf(err) === 404) {
                return false;
            }
            throw new TransientError(`Audit: could not append: ${ensureErrorType(err).message}`, { cause: err });
        }
    }

    async listRequestIds(): Promise<string[]> {
        const table = await this.table();
        const ids = new Set<string>();
        // A scan, but of the keys only: the entries themselves are read per request, through `list`, so a verify walks
        // each chain in exactly the order the workflow and `verifyChain` see it.
        const entities = table.listEntities<{ partitionKey: string }>({
            queryOptions: { select: ['PartitionKey'] },
        });
        try {
            for await (const entity of entities) {
                ids.add(entity.partitionKey);
            }
        } catch (err) {
            const e = ensureErrorType(err);
            throw isTransientStatus(statusCodeOf(err))
                ? new TransientError(`Audit: could not list the trails: ${e.message}`, { cause: e })
                : e;
        }
        return [...ids].sort();
    }

    async list(requestId: string): Promise<AuditEntry[]> {
        const table = await this.table();
        const rows: { rowKey: string; entry: AuditEntry }[] = [];
        const filter = `PartitionKey eq '${requestId.replace(/'/g, "''")}'`;
        try {
            for await (const entity of table.listEntities<AuditEntity>({ queryOptions: { filter } })) {
                rows.push({ rowKey: entity.rowKey ?? '', entry: JSON.parse(entity.entry) as AuditEntry });
            }
        } catch (err) {
            // Read inside every append: a throttle here must read as transient, or an apply that already reached ARM
            // would take it for a permanent failure.
            const e = ensureErrorType(err);
            throw isTransientStatus(statusCodeOf(err))
                ? new TransientError(`Audit: could not read the trail of ${requestId}: ${e.message}`, { cause: e })
                : e;
        }
        // The row's place in the table (its RowKey) is the order, not the sequence number the entry claims for itself:
        // sorting by the claimed number would put two swapped entries back in order and hide the swap from verify.
        return rows.sort((a, b) => (a.rowKey < b.rowKey ? -1 : a.rowKey > b.rowKey ? 1 : 0)).map((r) => r.entry);
    }
}

/**
 * The zero-padded sequence number, so a partition lists in chain order, then the request id. The suffix changes
 * nothing in Azure, where an entity is found by both keys; Azurite looks an entity up through an index on the RowKey
 * alone, so RowKeys shared by every request ("0000000001") made each insert and read scan a row per request.
 */
export function auditRowKey(requestId: string, seq: number): string {
    return `${String(seq).padStart(10, '0')}-${requestId}`;
}

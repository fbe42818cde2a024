import { createHash } from 'node:crypto';
import type { TableClient } from '@azure/data-tables';
import { canonicalAuditPayload, genesisHash, type AuditEntry, type AuditInput } from '../domain/audit';
import { ensureErrorType, isTransientStatus, statusCodeOf, TransientError } from '../domain/errors';

export interface AuditLog {
    append(input: AuditInput): Promise<AuditEntry>;
    list(requestId: string): Promise<AuditEntry[]>;
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

/**
 * The audit table: PartitionKey is the request id, RowKey the zero-padded sequence number. An insert of an existing
 * sequence fails (409), so two concurrent appends never share a place in the chain: the loser re-reads and retries.
 */
export class TableAuditLog implements AuditLog, AuditQueries {
    constructor(
        private readonly table: () => Promise<TableClient>,
        private readonly now: () => Date = () => new Date(),
    ) {}

    async append(input: AuditInput): Promise<AuditEntry> {
        const table = await this.table();
        for (let attempt = 0; attempt < 20; attempt++) {
            const existing = await this.list(input.requestId);
            const last = existing[existing.length - 1];
            // Hash exactly what is stored and read back: JSON turns a Date (or anything with toJSON) in before/after
            // into a string, and the chain must still verify after that round trip.
            const unsigned = JSON.parse(
                JSON.stringify({
                    ...input,
                    seq: (last?.seq ?? 0) + 1,
                    at: this.now().toISOString(),
                    prevHash: last?.hash ?? genesisHash,
                }),
            ) as Omit<AuditEntry, 'hash'>;
            const entry: AuditEntry = { ...unsigned, hash: hashAuditEntry(unsigned) };
            try {
                await table.createEntity<AuditEntity>({
                    partitionKey: input.requestId,
                    rowKey: rowKey(entry.seq),
                    entry: JSON.stringify(entry),
                    action: entry.action,
                    at: entry.at,
                });
                return entry;
            } catch (err) {
                if (statusCodeOf(err) !== 409) {
                    throw new TransientError(`Audit: could not append: ${ensureErrorType(err).message}`, {
                        cause: err,
                    });
                }
                // Lost the race for this place in the chain: back off a little (with jitter) so a crowd of writers
                // to one request spreads out instead of colliding again.
                await new Promise((r) => setTimeout(r, Math.random() * 20 * Math.min(attempt + 1, 5)));
            }
        }
        throw new TransientError(`Audit: could not append to ${input.requestId}: too many concurrent writers`);
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
        for await (const entity of table.listEntities<AuditEntity>({ queryOptions: { filter } })) {
            rows.push({ rowKey: entity.rowKey ?? '', entry: JSON.parse(entity.entry) as AuditEntry });
        }
        // The row's place in the table (its RowKey) is the order, not the sequence number the entry claims for itself:
        // sorting by the claimed number would put two swapped entries back in order and hide the swap from verify.
        return rows.sort((a, b) => (a.rowKey < b.rowKey ? -1 : a.rowKey > b.rowKey ? 1 : 0)).map((r) => r.entry);
    }
}

function rowKey(seq: number): string {
    return String(seq).padStart(10, '0');
}

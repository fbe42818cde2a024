import { createHash } from 'node:crypto';
import type { TableClient } from '@azure/data-tables';
import { ensureErrorType, isTransientStatus, statusCodeOf, TransientError } from '../domain/errors';
import { idKey } from '../domain/ids';

/**
 * What the gate knows about connections that are Approved: why each one is (the baseline found it so, the gate approved
 * or kept it, or it was reported as a bypass), and which subscriptions and server kinds have had their baseline taken.
 *
 * A mark is written with a conditional insert, so a connection is reported as a bypass exactly once however many
 * deliveries and sweeps see it at the same moment. It lives in the requests table, in the partition of the PEC's
 * claim, under its own RowKey prefix, so the request rows and their queries are untouched.
 */

export type MarkSource = 'baseline' | 'gate' | 'bypass';

export interface ConnectionMark {
    pecId: string;
    source: MarkSource;
    /** The request (or, for a baseline or accepted bypass, the audit chain) that accounts for the approval. */
    requestId: string;
    at: string;
    /**
     * The private endpoint whose approval the mark accounts for. A connection deleted and made again under the same
     * name by another endpoint is another approval; marks written before this field name none.
     */
    privateEndpointId?: string;
}

export interface ConnectionMarks {
    /** Inserts the mark unless the connection has one; true when this call's mark is the one now stored. */
    insertIfNone(mark: ConnectionMark): Promise<boolean>;
    /** Writes the mark whatever was there (the gate's own approval supersedes any earlier reason). */
    put(mark: ConnectionMark): Promise<void>;
    get(pecId: string): Promise<ConnectionMark | undefined>;
    /** Removes the mark: the connection is no longer Approved, so a later approval is a new question. */
    remove(pecId: string): Promise<void>;
    /**
     * Removes the mark only while it is still the one expected (a conditional delete): the same request, and where
     * given one of these sources and the same time. An alert that no longer stands takes its own mark with it, never
     * one a later report or apply wrote since (a Keep's gate mark names the alert too). True when it was removed.
     */
    removeIfNamed(pecId: string, expected: ExpectedMark): Promise<boolean>;
    /** Every mark, by `idKey` of its PEC id: one query, for the sweep. */
    listMarked(): Promise<Map<string, ConnectionMark>>;
    /** Whether the baseline of this subscription and server kind has been taken. */
    isBaselined(subscriptionId: string, kind: string): Promise<boolean>;
    markBaselined(subscriptionId: string, kind: string, at: string): Promise<void>;
}

/** What a conditional removal expects the stored mark to be. */
export interface ExpectedMark {
    requestId: string;
    sources?: readonly MarkSource[];
    at?: string;
}

function markOf(row: ConnectionMark): ConnectionMark {
    const { pecId, source, requestId, at, privateEndpointId } = row;
    return { pecId, source, requestId, at, ...(privateEndpointId ? { privateEndpointId } : {}) };
}

const markPrefix = 'approved-';
const baselinePartition = 'baselines';

function partitionOf(pecId: string): string {
    return `p-${createHash('sha256').update(idKey(pecId)).digest('hex')}`;
}
const markRowOf = (partitionKey: string) => `${markPrefix}${partitionKey}`;
const baselineRowOf = (subscriptionId: string, kind: string) =>
    `baseline-${subscriptionId.toLowerCase()}-${kind.toLowerCase()}`;

export class TableConnectionMarks implements ConnectionMarks {
    /** A baseline once taken stays taken: asked once per process per scope. */
    private readonly baselined = new Set<string>();

    constructor(private readonly table: () => Promise<TableClient>) {}

    async insertIfNone(mark: ConnectionMark): Promise<boolean> {
        const table = await this.table();
        const partitionKey = partitionOf(mark.pecId);
        try {
            await table.createEntity({ partitionKey, rowKey: markRowOf(partitionKey), ...mark });
            return true;
        } catch (err) {
            if (statusCodeOf(err) !== 409) {
                throw wrap(err, 'mark a connection');
            }
        }
        // A retried insert whose first try went through meets its own row: the request id says whose it is.
        const current = await this.get(mark.pecId);
        return current?.requestId === mark.requestId;
    }

    async put(mark: ConnectionMark): Promise<void> {
        const table = await this.table();
        const partitionKey = partitionOf(mark.pecId);
        try {
            await table.upsertEntity({ partitionKey, rowKey: markRowOf(partitionKey), ...mark }, 'Replace');
        } catch (err) {
            throw wrap(err, 'mark a connection');
        }
    }

    async get(pecId: string): Promise<ConnectionMark | undefined> {
        const table = await this.table();
        const partitionKey = partitionOf(pecId);
        try {
            const entity = await table.getEntity<ConnectionMark>(partitionKey, markRowOf(partitionKey));
            return markOf(entity);
        } catch (err) {
            if (statusCodeOf(err) === 404) {
                return undefined;
            }
            throw wrap(err, 'read a connection mark');
        }
    }

    async remove(pecId: string): Promise<void> {
        const table = await this.table();
        const partitionKey = partitionOf(pecId);
        try {
            await table.deleteEntity(partitionKey, markRowOf(partitionKey));
        } catch (err) {
            if (statusCodeOf(err) !== 404) {
                throw wrap(err, 'remove a connection mark');
            }
        }
    }

    async removeIfNamed(pecId: string, expected: ExpectedMark): Promise<boolean> {
        const table = await this.table();
        const partitionKey = partitionOf(pecId);
        const rowKey = markRowOf(partitionKey);
        try {
            const entity = await table.getEntity<ConnectionMark>(partitionKey, rowKey);
            if (
                entity.requestId !== expected.requestId ||
                (expected.sources !== undefined && !expected.sources.includes(entity.source)) ||
                (expected.at !== undefined && entity.at !== expected.at)
            ) {
                return false;
            }
            await table.deleteEntity(partitionKey, rowKey, { etag: entity.etag });
            return true;
        } catch (err) {
            // Gone already, or rewritten since it was read: either way no longer this request's mark to remove.
            if (statusCodeOf(err) === 404 || statusCodeOf(err) === 412) {
                return false;
            }
            throw wrap(err, 'remove a connection mark');
        }
    }

    async listMarked(): Promise<Map<string, ConnectionMark>> {
        const table = await this.table();
        const marked = new Map<string, ConnectionMark>();
        try {
            const rows = table.listEntities<ConnectionMark>({
                queryOptions: {
                    filter: `RowKey ge '${markPrefix}' and RowKey lt 'approved.'`,
                    select: ['pecId', 'source', 'requestId', 'at', 'privateEndpointId'],
                },
            });
            for await (const row of rows) {
                marked.set(idKey(row.pecId), markOf(row));
            }
        } catch (err) {
            throw wrap(err, 'list the connection marks');
        }
        return marked;
    }

    async isBaselined(subscriptionId: string, kind: string): Promise<boolean> {
        const rowKey = baselineRowOf(subscriptionId, kind);
        if (this.baselined.has(rowKey)) {
            return true;
        }
        const table = await this.table();
        try {
            await table.getEntity(baselinePartition, rowKey);
        } catch (err) {
            if (statusCodeOf(err) === 404) {
                return false;
            }
            throw wrap(err, 'read a baseline record');
        }
        this.baselined.add(rowKey);
        return true;
    }

    async markBaselined(subscriptionId: string, kind: string, at: string): Promise<void> {
        const table = await this.table();
        const rowKey = baselineRowOf(subscriptionId, kind);
        try {
            await table.upsertEntity({ partitionKey: baselinePartition, rowKey, subscriptionId, kind, at }, 'Merge');
        } catch (err) {
            throw wrap(err, 'record a baseline');
        }
        this.baselined.add(rowKey);
    }
}

function wrap(err: unknown, what: string): Error {
    const e = ensureErrorType(err);
    if (isTransientStatus(statusCodeOf(err))) {
        return new TransientError(`Storage: could not ${what}: ${e.message}`, { cause: e });
    }
    return e;
}

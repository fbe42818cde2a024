import type { TableClient } from '@azure/data-tables';
import { ensureErrorType, isTransientStatus, statusCodeOf, TransientError } from '../domain/errors';

/**
 * Where the sweep got to when a timer run ran out of its time budget before it had listed every watched subscription
 * and kind: one small row, so the next run resumes there instead of listing the first scopes again (and never reaching
 * the last ones of a large estate). A pass that reaches the end removes the row, so the next run starts a new pass.
 *
 * It lives in the requests table under its own PartitionKey, outside the RowKey ranges the request and mark queries
 * read, so those are untouched.
 */
export interface SweepCheckpoint {
    /** Which list of scopes (subscriptions × kinds, in order) `next` counts in; another list makes it meaningless. */
    scopes: string;
    /** The index of the first scope not yet listed in this pass. */
    next: number;
    /** When this pass began. */
    passStartedAt: string;
    updatedAt: string;
}

export type LoadedCheckpoint = { checkpoint?: SweepCheckpoint } | { corrupt: string };

export interface SweepCheckpoints {
    /** The stored checkpoint, none, or why the stored row is unusable (the caller logs it and starts a new pass). */
    load(): Promise<LoadedCheckpoint>;
    save(checkpoint: SweepCheckpoint): Promise<void>;
    /** Ends the pass: the next run starts from the first scope. */
    clear(): Promise<void>;
}

const partitionKey = 'sweep-checkpoint';
const rowKey = 'checkpoint';

/** Checks a stored row field by field; a row written by hand, by an older layout or half-written is named, not trusted. */
export function parseCheckpoint(row: Record<string, unknown>): SweepCheckpoint | string {
    const { scopes, next, passStartedAt, updatedAt } = row;
    if (typeof scopes !== 'string' || !/^[0-9a-f]{64}$/.test(scopes)) {
        return 'scopes is not a fingerprint';
    }
    if (typeof next !== 'number' || !Number.isInteger(next) || next < 0) {
        return `next is not a scope index (${JSON.stringify(next)})`;
    }
    for (const [name, value] of [
        ['passStartedAt', passStartedAt],
        ['updatedAt', updatedAt],
    ] as const) {
        if (typeof value !== 'string' || Number.isNaN(Date.parse(value))) {
            return `${name} is not a time`;
        }
    }
    return { scopes, next, passStartedAt: passStartedAt as string, updatedAt: updatedAt as string };
}

export class TableSweepCheckpoints implements SweepCheckpoints {
    constructor(private readonly table: () => Promise<TableClient>) {}

    async load(): Promise<LoadedCheckpoint> {
        const table = await this.table();
        let row: Record<string, unknown>;
        try {
            row = await table.getEntity<Record<string, unknown>>(partitionKey, rowKey);
        } catch (err) {
            if (statusCodeOf(err) === 404) {
                return {};
            }
            throw wrap(err, 'read the sweep checkpoint');
        }
        const parsed = parseCheckpoint(row);
        return typeof parsed === 'string' ? { corrupt: parsed } : { checkpoint: parsed };
    }

    async save(checkpoint: SweepCheckpoint): Promise<void> {
        const table = await this.table();
        try {
            // One writer: the host runs one sweep at a time across instances (the timer's singleton lock).
            await table.upsertEntity({ partitionKey, rowKey, ...checkpoint }, 'Replace');
        } catch (err) {
            throw wrap(err, 'write the sweep checkpoint');
        }
    }

    async clear(): Promise<void> {
        const table = await this.table();
        try {
            await table.deleteEntity(partitionKey, rowKey);
        } catch (err) {
            if (statusCodeOf(err) !== 404) {
                throw wrap(err, 'remove the sweep checkpoint');
            }
        }
    }
}

/** The in-memory double; `row` can be set to anything, as a corrupt table row would be. */
export class InMemorySweepCheckpoints implements SweepCheckpoints {
    row: Record<string, unknown> | undefined;

    load(): Promise<LoadedCheckpoint> {
        if (!this.row) {
            return Promise.resolve({});
        }
        const parsed = parseCheckpoint(this.row);
        return Promise.resolve(typeof parsed === 'string' ? { corrupt: parsed } : { checkpoint: parsed });
    }

    save(checkpoint: SweepCheckpoint): Promise<void> {
        this.row = { ...checkpoint };
        return Promise.resolve();
    }

    clear(): Promise<void> {
        this.row = undefined;
        return Promise.resolve();
    }
}

function wrap(err: unknown, what: string): Error {
    const e = ensureErrorType(err);
    if (isTransientStatus(statusCodeOf(err))) {
        return new TransientError(`Storage: could not ${what}: ${e.message}`, { cause: e });
    }
    return e;
}

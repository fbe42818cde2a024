import { createHash, randomBytes } from 'node:crypto';
import type { TableClient } from '@azure/data-tables';
import { ConcurrencyError, ensureErrorType, isTransientStatus, statusCodeOf, TransientError } from '../domain/errors';
import { idKey, sameId } from '../domain/ids';
import { cardStateOf, holdsPec, type ApprovalRequest, type RequestStatus } from '../domain/request';
import { removeIndex, writeIndex } from './requestIndex';
import { WritesBehind } from './writesBehind';

export interface StoredRequest {
    request: ApprovalRequest;
    etag: string;
}

export interface RequestStore {
    /**
     * Records the request unless the PEC already has an active one. Concurrent or repeated calls for the same PEC
     * record exactly one; every caller gets that one back.
     */
    createIfNone(request: ApprovalRequest): Promise<{ created: boolean; stored: StoredRequest }>;
    get(id: string): Promise<StoredRequest | undefined>;
    getActiveForPec(pecId: string): Promise<StoredRequest | undefined>;
    /** A conditional write: throws ConcurrencyError when someone else changed the request since `stored` was read. */
    update(stored: StoredRequest, next: ApprovalRequest): Promise<StoredRequest>;
    /**
     * Every request the sweep must look at: those that answer for their PEC (open, or expired and left pending) and
     * those whose card is behind. Final, settled requests are not read, so a sweep costs what is in flight.
     */
    listForSweep(): AsyncIterable<StoredRequest>;
    /**
     * Lets an expired request stop answering for its PEC (the PEC is no longer Pending), so that a new Pending state
     * gets a new request. Records `pecReleasedAt`; a conditional write like `update`.
     */
    releasePec(stored: StoredRequest, now: Date): Promise<StoredRequest>;
    /**
     * When the sweep first saw this PEC Pending without a request (recording `now` if it never did), so that it can
     * give the PEC's own event time to arrive: the event carries the requester, the sweep cannot.
     */
    firstSeenPending(pecId: string, now: Date): Promise<Date>;
    /**
     * Brings rows of an older table layout up to this release's (see `requestLayoutVersion`), once per table: the
     * sweep calls it at the start of every run, and after the first it costs one point read.
     */
    migrateLayout?(): Promise<LayoutMigration>;
}

/** What a layout migration found and did. */
export interface LayoutMigration {
    from: number;
    to: number;
    /** Request rows rewritten in this release's layout. */
    rewritten: number;
}

/**
 * The request table's layout, recorded in the table itself (PartitionKey `layout`, RowKey `version`) and on every row
 * (`layout`):
 * - 1 (rows without the column, up to this release): a failed request was final, written with `sweep` false.
 * - 2: a failed request is compared with ARM by the sweep until `recheckedUntil`, so it is written with `sweep` true;
 *   `applying.operation` may hold ARM's running operation. Rows of layout 1 read as they are; the failed ones are
 *   rewritten once, so the sweep's query finds them.
 */
export const requestLayoutVersion = 2;
const layoutRow = { partitionKey: 'layout', rowKey: 'version' };

/** Which requests an operator's listing reads; with neither field, every request. */
export interface RequestListQuery {
    /** Requests in any of these statuses, however long ago they changed. */
    statuses?: readonly RequestStatus[];
    /** Also requests in any status whose `updatedAt` is at or after this time. */
    changedSince?: Date;
}

/** Read-only queries for operators (the `pec` CLI). The workflow never needs them, so they are not on RequestStore. */
export interface RequestQueries {
    /** The requests the query selects, in no particular order. Claim rows are never returned. */
    listRequests(query?: RequestListQuery): AsyncIterable<StoredRequest>;
}

/**
 * Table timestamps and our `updatedAt` come from different clocks; the server-side pre-filter on `Timestamp` is widened
 * by this much so that a skewed clock cannot hide a request, and `updatedAt` decides exactly afterwards.
 */
const clockSkewMarginMs = 60 * 60_000;

/**
 * Table layout, one table:
 * - a request:   PartitionKey `r-{requestId}`, RowKey `request`, its JSON in `data` plus status and pecId columns
 * - a PEC claim: PartitionKey `p-{sha256(lower-cased PEC id)}`, RowKey `active`, pointing at the active request
 *
 * The claim is inserted first and only one insert can win, so two deliveries of one event open one request. It is
 * released when the request reaches a final state, so a later pending state of the same PEC gets a new request.
 */
interface RequestEntity {
    partitionKey: string;
    rowKey: string;
    data: string;
    status: string;
    pecId: string;
    createdAt: string;
    /** The layout this row was written in (`requestLayoutVersion`); absent on rows of layout 1. */
    layout?: number;
    /** Whether the sweep must look at the request (see `needsSweep`): a column, so the sweep can query it. */
    sweep: boolean;
    /**
     * Random per write. A write whose answer was lost (a timeout, a dropped connection) and that the client retried
     * meets its own ETag change (412) or its own row (409); finding its own `writeId` there tells it that the write
     * went through, where it would otherwise take itself for someone else.
     */
    writeId: string;
}

interface ClaimEntity {
    partitionKey: string;
    rowKey: string;
    requestId: string;
    pecId: string;
}

/**
 * RowKeys repeat their partition's key. Azure finds an entity by both keys either way; Azurite (the tests, the demo,
 * the benchmark) looks one up through an index on the RowKey alone, so a RowKey every request shares ("request")
 * made each read and insert scan a row per request.
 */
const requestRowPrefix = 'request-';
const requestRowOf = (id: string) => `${requestRowPrefix}${id}`;
const claimRowOf = (claimKey: string) => `active-${claimKey}`;
/** In the claim's partition: when the sweep first saw the PEC Pending without a request. */
const seenRowOf = (claimKey: string) => `seen-${claimKey}`;
/** Every request row, and nothing else: the RowKeys that start with the prefix. */
const requestRowsFilter = `RowKey ge '${requestRowPrefix}' and RowKey lt 'request.'`;

/** Where a request and a PEC's claim live, for tests that reach into the table as an attacker or a crash would. */
export function requestKeys(id: string): { partitionKey: string; rowKey: string } {
    return { partitionKey: `r-${id}`, rowKey: requestRowOf(id) };
}
export function claimKeys(pecId: string): { partitionKey: string; rowKey: string } {
    const partitionKey = claimPartition(pecId);
    return { partitionKey, rowKey: claimRowOf(partitionKey) };
}
/** How long a claim may point at a request that was never written (its writer died) before it is taken over. */
const orphanClaimMs = 30_000;
/**
 * A writer whose claim and request inserts took at most this long (its own clock, from before the claim was sent to
 * the request's answer) cannot have had its claim taken over: another delivery clears a claim only once it is older
 * than `orphanClaimMs` by that delivery's clock, read before it looked for the request (see `resolveClaim`). The 25 s
 * between the two are the margin for the clocks of instances and of the storage service to disagree. A slower writer
 * reads its claim back.
 */
const claimTrustedWithinMs = 5_000;
/** How many PECs' active request ids a process remembers (see `activeIds`); about 100 bytes each. */
const rememberedClaims = 10_000;

export interface RequestStoreOptions {
    /**
     * Write the dashboard's index rows behind each write instead of before it returns (its caller's next call does not
     * wait). Whoever composes this must await `settled()` before the process may be frozen; a row a dead process did
     * not write is put back by the index's catch-up, as a failed one is.
     */
    indexBehind?: boolean;
    /** How long this writer's own calls took is measured on this clock (milliseconds, monotonic: `performance.now`). */
    elapsedMs?: () => number;
}

export class TableRequestStore implements RequestStore, RequestQueries {
    /**
     * The request each PEC's claim named when this process last read or wrote it. A claim names one request for as long
     * as it exists, so a remembered id is only ever out of date by pointing at a request that no longer holds its PEC;
     * reading that request says so, and the claim is read again. A redelivery (most of a burst's events) thus costs
     * one storage read, the request's, instead of two. Bounded, oldest first out.
     */
    private readonly activeIds = new Map<string, string>();
    /** One request's index rows are written in the order of its writes. */
    private readonly indexing = new WritesBehind();

    constructor(
        private readonly table: () => Promise<TableClient>,
        /** The real time: a claim's age is judged with it against the storage service's timestamps. */
        private readonly now: () => Date = () => new Date(),
        /** The dashboard's index table (requestIndex.ts); without it, writes leave the index to its catch-up. */
        private readonly indexTable?: () => Promise<TableClient>,
        private readonly options: RequestStoreOptions = {},
    ) {}

    /** Resolves once every index write begun before the call has ended (see `WritesBehind`). */
    settled(): Promise<void> {
        return this.indexing.settled();
    }

    async createIfNone(request: ApprovalRequest): Promise<{ created: boolean; stored: StoredRequest }> {
        const table = await this.table();
        const claimKey = claimPartition(request.pecId);
        const elapsed = this.options.elapsedMs ?? (() => performance.now());
        for (let attempt = 0; attempt < 5; attempt++) {
            const started = elapsed();
            const claimed = await this.claim(table, claimKey, request);
            if ('existing' in claimed) {
                if (claimed.existing) {
                    return { created: false, stored: claimed.existing };
                }
                continue;
            }
            const entity = toEntity(request);
            let stored: StoredRequest;
            try {
                const result = await table.createEntity<RequestEntity>(entity);
                stored = { request, etag: result.etag ?? '' };
            } catch (err) {
                // An insert that failed may still have gone through: an earlier try's answer was lost, and the retry
                // met the row (409) or failed on its own. Only this call can have written a row with its write id.
                let written: StoredRequest | undefined;
                try {
                    written = await this.ownWrite(table, entity);
                } catch (readErr) {
                    // Whether the row is there cannot be told, so the claim stays: given back over a row that is
                    // there, the next delivery would open a second request for the PEC. Kept, the next delivery finds
                    // the request through it, or clears it as dead once no row has come for `orphanClaimMs`.
                    throw new TransientError(
                        `Could not tell whether request ${request.id} was recorded: ${ensureErrorType(readErr).message}`,
                        { cause: err },
                    );
                }
                if (!written) {
                    // A transient failure may be an insert still on its way, so the claim stays for it as above. Only
                    // a refusal (the service answered, and wrote nothing) gives the claim back, rather than leave it
                    // to block the PEC until it counts as orphaned.
                    if (claimed.etag && !isTransientStatus(statusCodeOf(err))) {
                        await deleteClaim(table, claimKey, claimed.etag, 'release the PEC claim').catch(
                            () => undefined,
                        );
                    }
                    throw wrap(err, 'record the request');
                }
                stored = written;
            }
            if (elapsed() - started <= claimTrustedWithinMs) {
                // Too quick for the claim to have been taken over (see `claimTrustedWithinMs`): the request is the PEC's.
                await this.index(undefined, request);
                this.rememberClaim(request.pecId, request.id);
                return { created: true, stored };
            }
            // A writer slower than `orphanClaimMs` between its two inserts (a try that hung, retries) may have had its
            // claim cleared as dead and taken by another delivery, whose request now answers for the PEC: this one
            // must then never be announced, or the PEC would get two requests and two cards. The dashboard's index
            // rows go out meanwhile; on that rare loss they are taken back.
            const [claim] = await Promise.all([
                getEntity<ClaimEntity>(table, claimKey, claimRowOf(claimKey)),
                this.index(undefined, request),
            ]);
            if (claim?.requestId === request.id) {
                this.rememberClaim(request.pecId, request.id);
                return { created: true, stored };
            }
            await table.deleteEntity(entity.partitionKey, entity.rowKey, { etag: stored.etag }).catch(() => undefined);
            await this.indexing.run(request.id, () => this.unindexed(request));
        }
        throw new TransientError(`Could not claim ${request.pecId}: the claim kept changing`);
    }

    /**
     * Inserts the PEC's claim for this request. Resolves with its ETag, or with the request that holds the PEC
     * already (undefined when that claim was dead and has been cleared: try again).
     */
    private async claim(
        table: TableClient,
        claimKey: string,
        request: ApprovalRequest,
    ): Promise<{ etag?: string } | { existing: StoredRequest | undefined }> {
        try {
            const claimed = await table.createEntity<ClaimEntity>({
                partitionKey: claimKey,
                rowKey: claimRowOf(claimKey),
                requestId: request.id,
                pecId: request.pecId,
            });
            return { etag: claimed.etag };
        } catch (err) {
            // The request id is new and random, so a claim naming it is this call's own: an earlier try got through
            // and its answer was lost (the retry meets it as a 409, or fails on its own). Taking it for someone
            // else's would leave it waiting for a request nobody writes, blocking the PEC until it counts as dead.
            const conflict = statusCodeOf(err) === 409;
            const current = await getEntity<ClaimEntity>(table, claimKey, claimRowOf(claimKey)).catch(
                (readErr: unknown) => {
                    if (conflict) {
                        throw readErr;
                    }
                    return undefined;
                },
            );
            if (current?.requestId === request.id) {
                return { etag: current.etag };
            }
            if (!conflict) {
                throw wrap(err, 'claim the PEC');
            }
            return { existing: await this.resolveClaim(table, claimKey) };
        }
    }

    /** The request a claim points at; waits briefly for a writer between its two inserts, and clears dead claims. */
    private async resolveClaim(table: TableClient, claimKey: string): Promise<StoredRequest | undefined> {
        for (let wait = 0; wait < 10; wait++) {
            const claim = await getEntity<ClaimEntity>(table, claimKey, claimRowOf(claimKey));
            if (!claim) {
                return undefined;
            }
            // The time is read before the request is looked for: a request written after this moment is one whose
            // writer was quicker than the claim's age says, and the writer relies on that (`claimTrustedWithinMs`).
            const now = this.now();
            const stored = await this.get(claim.requestId);
            if (stored && holdsPec(stored.request)) {
                return stored;
            }
            if (stored) {
                // The request reached a final state but its writer died before releasing the claim: the claim is stale.
                await deleteClaim(table, claimKey, claim.etag, 'clear a stale claim');
                return undefined;
            }
            const age = now.getTime() - new Date(claim.timestamp ?? 0).getTime();
            if (age > orphanClaimMs) {
                await deleteClaim(table, claimKey, claim.etag, 'clear a dead claim');
                return undefined;
            }
            await new Promise((r) => setTimeout(r, 50 * (wait + 1)));
        }
        throw new TransientError(`The request for ${claimKey} is still being created by another invocation`);
    }

    async get(id: string): Promise<StoredRequest | undefined> {
        const table = await this.table();
        const entity = await getEntity<RequestEntity>(table, `r-${id}`, requestRowOf(id));
        return entity ? { request: JSON.parse(entity.data) as ApprovalRequest, etag: entity.etag } : undefined;
    }

    async getActiveForPec(pecId: string): Promise<StoredRequest | undefined> {
        const remembered = this.activeIds.get(idKey(pecId));
        if (remembered !== undefined) {
            const stored = await this.get(remembered);
            if (stored && holdsPec(stored.request) && sameId(stored.request.pecId, pecId)) {
                return stored;
            }
            this.activeIds.delete(idKey(pecId));
        }
        const table = await this.table();
        const claim = await getEntity<ClaimEntity>(table, claimPartition(pecId), claimRowOf(claimPartition(pecId)));
        if (claim && claim.requestId === remembered) {
            // The claim still names the request just read, which no longer holds the PEC: no active request.
            return undefined;
        }
        const stored = claim ? await this.get(claim.requestId) : undefined;
        // A claim left on a final request (its release was interrupted) does not make that request active.
        if (stored && holdsPec(stored.request)) {
            this.rememberClaim(pecId, stored.request.id);
            return stored;
        }
        return undefined;
    }

    private rememberClaim(pecId: string, requestId: string): void {
        const key = idKey(pecId);
        this.activeIds.delete(key);
        this.activeIds.set(key, requestId);
        if (this.activeIds.size > rememberedClaims) {
            const oldest = this.activeIds.keys().next().value;
            if (oldest !== undefined) {
                this.activeIds.delete(oldest);
            }
        }
    }

    async *listForSweep(): AsyncIterable<StoredRequest> {
        const table = await this.table();
        const entities = table.listEntities<RequestEntity>({
            // Rows written before the sweep column existed are found by their status.
            queryOptions: {
                filter: `${requestRowsFilter} and (sweep eq true or status eq 'pending' or status eq 'decided')`,
            },
        });
        try {
            for await (const entity of entities) {
                yield { request: JSON.parse(entity.data) as ApprovalRequest, etag: entity.etag };
            }
        } catch (err) {
            throw wrap(err, 'list the requests to sweep');
        }
    }

    async *listRequests(query: RequestListQuery = {}): AsyncIterable<StoredRequest> {
        const table = await this.table();
        const statuses = query.statuses ?? [];
        const since = query.changedSince;
        const selectAll = statuses.length === 0 && since === undefined;
        // `updatedAt` is inside the JSON, so the table filters on its own last-write time, which is never earlier
        // (every write of a request sets `updatedAt` first, or leaves it alone); the exact test follows below. The
        // filter is written by hand, not with the SDK's `odata` helper: this module must not load the SDK at import.
        const clauses = [
            ...statuses.map((status) => `status eq '${status.replace(/'/g, "''")}'`),
            ...(since ? [`Timestamp ge datetime'${new Date(since.getTime() - clockSkewMarginMs).toISOString()}'`] : []),
        ];
        const filter = selectAll ? requestRowsFilter : `${requestRowsFilter} and (${clauses.join(' or ')})`;
        try {
            for await (const entity of table.listEntities<RequestEntity>({ queryOptions: { filter } })) {
                const request = JSON.parse(entity.data) as ApprovalRequest;
                const wanted =
                    selectAll ||
                    statuses.includes(request.status) ||
                    (since !== undefined && Date.parse(request.updatedAt) >= since.getTime());
                if (wanted) {
                    yield { request, etag: entity.etag };
                }
            }
        } catch (err) {
            throw wrap(err, 'list the requests');
        }
    }

    async firstSeenPending(pecId: string, now: Date): Promise<Date> {
        const table = await this.table();
        const partitionKey = claimPartition(pecId);
        try {
            await table.createEntity({ partitionKey, rowKey: seenRowOf(partitionKey), pecId, at: now.toISOString() });
            return now;
        } catch (err) {
            if (statusCodeOf(err) !== 409) {
                throw wrap(err, 'record a PEC seen by the sweep');
            }
        }
        const seen = await getEntity<{ at: string }>(table, partitionKey, seenRowOf(partitionKey));
        return seen ? new Date(seen.at) : now;
    }

    async migrateLayout(): Promise<LayoutMigration> {
        const table = await this.table();
        const recorded = await getEntity<{ version: number }>(table, layoutRow.partitionKey, layoutRow.rowKey);
        const from = recorded?.version ?? 1;
        if (from >= requestLayoutVersion) {
            return { from, to: from, rewritten: 0 };
        }
        // Layout 1 → 2: only failed rows change meaning (the sweep now looks at them). Each is rewritten only if it is
        // still the row read: a row someone wrote meanwhile was written by this release, in this layout.
        let rewritten = 0;
        const failed = table.listEntities<RequestEntity>({
            queryOptions: { filter: `${requestRowsFilter} and status eq 'failed'` },
        });
        try {
            for await (const entity of failed) {
                if ((entity.layout ?? 1) >= requestLayoutVersion) {
                    continue;
                }
                const request = JSON.parse(entity.data) as ApprovalRequest;
                try {
                    await table.updateEntity<RequestEntity>(toEntity(request), 'Replace', { etag: entity.etag });
                    rewritten += 1;
                } catch (err) {
                    if (statusCodeOf(err) !== 412) {
                        throw err;
                    }
                }
            }
            await table.upsertEntity({ ...layoutRow, version: requestLayoutVersion }, 'Replace');
        } catch (err) {
            throw wrap(err, `migrate the request table from layout ${from} to ${requestLayoutVersion}`);
        }
        return { from, to: requestLayoutVersion, rewritten };
    }

    async releasePec(stored: StoredRequest, now: Date): Promise<StoredRequest> {
        // No longer holding the PEC, so `update` gives the claim back.
        return this.update(stored, { ...stored.request, pecReleasedAt: now.toISOString() });
    }

    async update(stored: StoredRequest, next: ApprovalRequest): Promise<StoredRequest> {
        const table = await this.table();
        const entity = toEntity(next);
        let written: StoredRequest;
        try {
            const result = await table.updateEntity<RequestEntity>(entity, 'Replace', { etag: stored.etag });
            written = { request: next, etag: result.etag ?? '' };
        } catch (err) {
            // A retried write meets the ETag its own first try changed (412), or fails on its own after that try got
            // through: either way, finding its write id in the row means this write is done, not someone else's.
            const own = await this.ownWrite(table, entity).catch(() => undefined);
            if (!own) {
                if (statusCodeOf(err) === 412 || statusCodeOf(err) === 409) {
                    throw new ConcurrencyError(`Request ${next.id} was changed by someone else`, { cause: err });
                }
                throw wrap(err, 'update the request');
            }
            written = own;
        }
        if (holdsPec(stored.request) && !holdsPec(next)) {
            await this.releaseClaim(table, next);
        }
        await this.index(stored.request, written.request);
        return written;
    }

    /** The index rows of a write: awaited, or behind it (`indexBehind`); either way after the request's earlier ones. */
    private index(before: ApprovalRequest | undefined, next: ApprovalRequest): Promise<void> {
        if (!this.indexTable) {
            return Promise.resolve();
        }
        // `indexed` never rejects (a failed index write is reported, and the catch-up puts it back).
        const written = this.indexing.run(next.id, () => this.indexed(before, next));
        return this.options.indexBehind ? Promise.resolve() : written;
    }

    /**
     * The dashboard's index (requestIndex.ts), updated after the request row: the one hook the index needs. The request
     * row is the truth and is already written, so a failed index write must not fail the caller (it would retry a step
     * that happened); it is reported, and the index's catch-up re-indexes the request from its row.
     */
    private async indexed(before: ApprovalRequest | undefined, next: ApprovalRequest): Promise<void> {
        if (!this.indexTable) {
            return;
        }
        try {
            await writeIndex(await this.indexTable(), before, next);
        } catch (err) {
            console.warn(
                `Request ${next.id} is written but its dashboard index row is not: ${ensureErrorType(err).message}`,
            );
        }
    }

    /** Takes back the index rows of a request that was never announced (it lost its claim); reported if that fails. */
    private async unindexed(request: ApprovalRequest): Promise<void> {
        if (!this.indexTable) {
            return;
        }
        try {
            await removeIndex(await this.indexTable(), request);
        } catch (err) {
            console.warn(
                `Request ${request.id} was withdrawn but its dashboard index rows were not: ${ensureErrorType(err).message}`,
            );
        }
    }

    /** The request row as `entity` wrote it, if that write is what the table now holds. */
    private async ownWrite(table: TableClient, entity: RequestEntity): Promise<StoredRequest | undefined> {
        const current = await getEntity<RequestEntity>(table, entity.partitionKey, entity.rowKey);
        return current?.writeId === entity.writeId
            ? { request: JSON.parse(current.data) as ApprovalRequest, etag: current.etag }
            : undefined;
    }

    private async releaseClaim(table: TableClient, request: ApprovalRequest): Promise<void> {
        const claimKey = claimPartition(request.pecId);
        const claim = await getEntity<ClaimEntity>(table, claimKey, claimRowOf(claimKey));
        if (claim?.requestId !== request.id) {
            return;
        }
        await deleteClaim(table, claimKey, claim.etag, 'release the PEC claim');
    }
}

/** Deletes the claim only if it is still the one read; someone else having changed or removed it is fine. */
async function deleteClaim(table: TableClient, claimKey: string, etag: string, what: string): Promise<void> {
    await table.deleteEntity(claimKey, claimRowOf(claimKey), { etag }).catch((err: unknown) => {
        if (![404, 412].includes(statusCodeOf(err) ?? 0)) {
            throw wrap(err, what);
        }
    });
}

function toEntity(request: ApprovalRequest): RequestEntity {
    return {
        ...requestKeys(request.id),
        data: JSON.stringify(request),
        status: request.status,
        pecId: request.pecId,
        createdAt: request.createdAt,
        layout: requestLayoutVersion,
        sweep: needsSweep(request),
        writeId: randomBytes(12).toString('base64url'),
    };
}

/**
 * Open or holding its PEC, a posted card that shows an older state than the request's, a failed request the sweep
 * still compares with ARM (its PUT may have worked after all), or a card that may have a duplicate left to note.
 */
function needsSweep(request: ApprovalRequest): boolean {
    return (
        holdsPec(request) ||
        (request.status === 'failed' && !request.recheckedUntil) ||
        (request.card !== undefined && request.cardShows !== cardStateOf(request)) ||
        request.cardDuplicateCheckSince !== undefined
    );
}

function claimPartition(pecId: string): string {
    return `p-${createHash('sha256').update(idKey(pecId)).digest('hex')}`;
}

async function getEntity<T extends object>(
    table: TableClient,
    partitionKey: string,
    rowKey: string,
): Promise<(T & { etag: string; timestamp?: string }) | undefined> {
    try {
        return (await table.getEntity<T>(partitionKey, rowKey)) as T & { etag: string; timestamp?: string };
    } catch (err) {
        if (statusCodeOf(err) === 404) {
            return undefined;
        }
        throw wrap(err, 'read from the request table');
    }
}

function wrap(err: unknown, what: string): Error {
    const e = ensureErrorType(err);
    const status = statusCodeOf(err);
    if (isTransientStatus(status)) {
        return new TransientError(`Storage: could not ${what}: ${e.message}`, { cause: e });
    }
    return e;
}

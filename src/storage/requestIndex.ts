import type { TableClient, TransactionAction } from '@azure/data-tables';
import { ensureErrorType, isTransientStatus, statusCodeOf, TransientError } from '../domain/errors';
import { parseServerId } from '../domain/ids';
import { isOpen, type ApprovalRequest, type Person, type RequestStatus } from '../domain/request';

/**
 * The dashboard's index of requests, in a table of its own beside the requests table (`indexTableName`), so that the
 * sweep's and the CLI's scans of the requests never read index rows, nor the dashboard's queries request rows. A
 * request row is keyed by its
 * random id, so the table can neither list requests in time order nor page through them without reading them all;
 * these rows are keyed by time, so every dashboard query is a key-range query that reads one page:
 *
 * - `i-{inverted month}` / `{inverted ms}-{id}`: every request, newest first, by when it was opened;
 * - `o-open` / `{inverted ms}-{id}`: the open ones (pending, decided), so "pending now" reads only those;
 * - `d-{inverted month}` / `{inverted ms}-{id}`: decided ones, by when they were decided, for "decided in the last
 *   7 / 30 days" and the time to decision.
 *
 * Each row carries the listing's columns (filters run server-side on them) and a summary in `s`, so a page is drawn
 * from the index alone. The store writes the rows through one hook (`writeIndex`) after each write of a request whose
 * indexed fields changed. The index is derived data: a row missing after an upgrade, or after a write whose index
 * update failed, is put back by `catchUp`, which re-indexes the requests written since it last ran.
 */

export type RequestOrigin = 'trusted' | 'foreign' | 'unknown';

/** What a list row shows; the export's columns. Strings only as stored, never markup-escaped. */
export interface IndexedRequest {
    id: string;
    status: RequestStatus;
    /** approve / reject, once decided. */
    action?: string;
    /** Set when no person decided (a policy rule or expiry). */
    auto?: string;
    kind: string;
    server: string;
    pecName: string;
    origin: RequestOrigin;
    requester: string;
    approver: string;
    createdAt: string;
    decidedAt?: string;
    updatedAt: string;
}

export interface IndexEntity {
    partitionKey: string;
    rowKey: string;
    status: string;
    kind: string;
    server: string;
    origin: string;
    requester: string;
    approver: string;
    createdAt: string;
    decidedAt?: string;
    /** Seconds from opened to decided, on the decided rows. */
    toDecision?: number;
    s: string;
}

/** The index table's name: the requests table's, with "index" after it (within the 63 characters a name may have). */
export function indexTableName(requestsTable: string): string {
    return `${requestsTable.slice(0, 58)}index`;
}

export const indexPrefix = 'i-';
export const openPartition = 'o-open';
export const decidedPrefix = 'd-';
const metaPartition = 'x-index';
const catchUpRow = 'catch-up';
/** A version of the rows' shape: a new one re-indexes every request once. */
const indexVersion = 1;
/** How far back a catch-up reaches before the time it last ran: table timestamps and our clock differ. */
const catchUpMarginMs = 60 * 60_000;
const maxMs = 9_999_999_999_999;

/** Newest first under ascending keys. */
export function invertedMs(iso: string): string {
    const ms = Date.parse(iso);
    return String(maxMs - (Number.isFinite(ms) ? ms : 0)).padStart(13, '0');
}

export function invertedMonth(iso: string): string {
    const d = new Date(Number.isFinite(Date.parse(iso)) ? iso : 0);
    return String(999_999 - (d.getUTCFullYear() * 100 + d.getUTCMonth() + 1)).padStart(6, '0');
}

function monthStart(d: Date): Date {
    return new Date(Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), 1));
}

function addMonths(d: Date, n: number): Date {
    return new Date(Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + n, 1));
}

/** The month an "every request" partition key holds. */
function monthOfKey(partitionKey: string): Date {
    const yyyymm = 999_999 - Number(partitionKey.slice(indexPrefix.length));
    return new Date(Date.UTC(Math.floor(yyyymm / 100), (yyyymm % 100) - 1, 1));
}

export function indexKeys(request: Pick<ApprovalRequest, 'id' | 'createdAt'>): {
    partitionKey: string;
    rowKey: string;
} {
    return {
        partitionKey: `${indexPrefix}${invertedMonth(request.createdAt)}`,
        rowKey: `${invertedMs(request.createdAt)}-${request.id}`,
    };
}

/**
 * Where a request comes from, for the filter: trusted (a trusted subscription, no foreign tenant), foreign (an untrusted
 * subscription or a requester from another tenant) or unknown (the endpoint's subscription could not be read).
 */
export function originOf(request: ApprovalRequest): RequestOrigin {
    const facts = request.facts;
    if (request.requesterForeignTenant === true) {
        return 'foreign';
    }
    if (!facts.privateEndpointSubscriptionId) {
        return 'unknown';
    }
    return facts.privateEndpointTrusted ? 'trusted' : 'foreign';
}

function personKey(person: Person | undefined): string {
    return (person?.upn ?? person?.name ?? person?.objectId ?? person?.appId ?? '').trim();
}

function serverName(serverId: string): string {
    try {
        return parseServerId(serverId).name;
    } catch {
        return serverId;
    }
}

/** The list row of a request. */
export function indexedRequest(request: ApprovalRequest): IndexedRequest {
    const decision = request.decision;
    const approvers = decision?.approvers && decision.approvers.length > 1 ? decision.approvers : [];
    return {
        id: request.id,
        status: request.status,
        ...(decision ? { action: decision.action } : {}),
        ...(decision?.auto ? { auto: decision.auto.kind } : {}),
        kind: request.facts.serverKind,
        server: serverName(request.facts.serverId),
        pecName: request.facts.pecName,
        origin: originOf(request),
        requester: personKey(request.requester),
        approver: approvers.length > 0 ? approvers.map(personKey).join(', ') : personKey(decision?.by),
        createdAt: request.createdAt,
        ...(decision ? { decidedAt: decision.at } : {}),
        updatedAt: request.updatedAt,
    };
}

/** Filter columns are lower case, so a search need not know how a name was written. */
function entityOf(partitionKey: string, rowKey: string, row: IndexedRequest): IndexEntity {
    const entity: IndexEntity = {
        partitionKey,
        rowKey,
        status: row.status,
        kind: row.kind,
        server: row.server.toLowerCase(),
        origin: row.origin,
        requester: row.requester.toLowerCase(),
        approver: row.approver.toLowerCase(),
        createdAt: row.createdAt,
        s: JSON.stringify(row),
    };
    if (row.decidedAt) {
        entity.decidedAt = row.decidedAt;
        entity.toDecision = Math.max(0, Math.round((Date.parse(row.decidedAt) - Date.parse(row.createdAt)) / 1000));
    }
    return entity;
}

/** The fields the index shows; a write that changes none of them (a card posted, a lease taken) writes no index row. */
function indexedFieldsOf(request: ApprovalRequest | undefined): string {
    return request ? JSON.stringify(indexedRequest({ ...request, updatedAt: '' })) : '';
}

/**
 * The store's hook: brings the request's index rows up to date after the request row was written. The rows are
 * upserted unconditionally (the request row already decided who won), in parallel.
 */
export async function writeIndex(
    table: TableClient,
    before: ApprovalRequest | undefined,
    next: ApprovalRequest,
): Promise<void> {
    if (before && indexedFieldsOf(before) === indexedFieldsOf(next)) {
        return;
    }
    const batcher = batcherOf(table);
    const writes: Promise<unknown>[] = indexEntitiesOf(next).map((entity) => batcher.upsert(entity));
    if (!isOpen(next.status) && (!before || isOpen(before.status))) {
        writes.push(batcher.delete({ partitionKey: openPartition, rowKey: indexKeys(next).rowKey }));
    }
    try {
        await Promise.all(writes);
    } catch (err) {
        throw wrap(err, `index request ${next.id}`);
    }
}

type IndexWrite =
    { kind: 'upsert'; entity: IndexEntity } | { kind: 'delete'; keys: { partitionKey: string; rowKey: string } };

interface Queued {
    write: IndexWrite;
    done: { resolve(): void; reject(err: unknown): void }[];
}

/** At most this many writes in one entity-group transaction (the service's limit is 100). */
const maxBatch = 100;

/**
 * Group commit for the index rows. The rows of concurrent requests share partitions (the month's, the open ones'), so
 * the writes that arrive while a partition's last transaction is on the way go out together in the next, as one
 * entity-group transaction: a burst of new requests costs a few index round trips instead of two each. A lone write
 * goes out at once. A row written twice before its transaction leaves is written once, as last asked (the rows are
 * derived, upserted whole). When a transaction fails as a whole (one row's delete found nothing, the table is
 * missing, a throttle), its writes are made one by one, so each caller gets its own outcome.
 */
class IndexBatcher {
    private readonly queued = new Map<string, Map<string, Queued>>();
    private readonly sending = new Set<string>();

    constructor(private readonly table: TableClient) {}

    upsert(entity: IndexEntity): Promise<void> {
        return this.enqueue({ kind: 'upsert', entity });
    }

    delete(keys: { partitionKey: string; rowKey: string }): Promise<void> {
        return this.enqueue({ kind: 'delete', keys });
    }

    private enqueue(write: IndexWrite): Promise<void> {
        const { partitionKey, rowKey } = write.kind === 'upsert' ? write.entity : write.keys;
        return new Promise<void>((resolve, reject) => {
            let partition = this.queued.get(partitionKey);
            if (!partition) {
                partition = new Map();
                this.queued.set(partitionKey, partition);
            }
            const earlier = partition.get(rowKey);
            // Re-inserted, so the row keeps the place of its latest write.
            partition.delete(rowKey);
            partition.set(rowKey, { write, done: [...(earlier?.done ?? []), { resolve, reject }] });
            if (!this.sending.has(partitionKey)) {
                this.sending.add(partitionKey);
                // After the current turn, so that writes made in the same turn (a request's rows) share the trip.
                setImmediate(() => void this.send(partitionKey));
            }
        });
    }

    private async send(partitionKey: string): Promise<void> {
        for (;;) {
            const partition = this.queued.get(partitionKey);
            if (!partition || partition.size === 0) {
                this.queued.delete(partitionKey);
                this.sending.delete(partitionKey);
                return;
            }
            const batch = [...partition.entries()].slice(0, maxBatch);
            for (const [rowKey] of batch) {
                partition.delete(rowKey);
            }
            await this.commit(batch.map(([, q]) => q));
        }
    }

    private async commit(batch: Queued[]): Promise<void> {
        if (batch.length > 1) {
            try {
                await this.table.submitTransaction(
                    batch.map(({ write }): TransactionAction =>
                        write.kind === 'upsert' ? ['upsert', { ...write.entity }, 'Replace'] : ['delete', write.keys],
                    ),
                );
                batch.forEach((q) => q.done.forEach((d) => d.resolve()));
                return;
            } catch {
                // One by one below: each write's own outcome.
            }
        }
        await Promise.all(
            batch.map(async ({ write, done }) => {
                try {
                    await (write.kind === 'upsert'
                        ? this.table.upsertEntity(write.entity, 'Replace')
                        : ignore404(this.table.deleteEntity(write.keys.partitionKey, write.keys.rowKey)));
                    done.forEach((d) => d.resolve());
                } catch (err) {
                    done.forEach((d) => d.reject(err));
                }
            }),
        );
    }
}

const batchers = new WeakMap<TableClient, IndexBatcher>();

function batcherOf(table: TableClient): IndexBatcher {
    let batcher = batchers.get(table);
    if (!batcher) {
        batcher = new IndexBatcher(table);
        batchers.set(table, batcher);
    }
    return batcher;
}

/** Removes the index rows `writeIndex` wrote for a request that was withdrawn before anyone saw it. */
export async function removeIndex(table: TableClient, request: ApprovalRequest): Promise<void> {
    try {
        await Promise.all(indexEntitiesOf(request).map((e) => ignore404(table.deleteEntity(e.partitionKey, e.rowKey))));
    } catch (err) {
        throw wrap(err, `remove the index rows of request ${request.id}`);
    }
}

/** Every index row a request has in its current state (the benchmark writes a generated table's rows with these). */
export function indexEntitiesOf(request: ApprovalRequest): IndexEntity[] {
    const row = indexedRequest(request);
    const { partitionKey, rowKey } = indexKeys(request);
    const entities = [entityOf(partitionKey, rowKey, row)];
    if (isOpen(request.status)) {
        entities.push(entityOf(openPartition, rowKey, row));
    }
    if (request.decision) {
        const at = request.decision.at;
        entities.push(entityOf(`${decidedPrefix}${invertedMonth(at)}`, `${invertedMs(at)}-${request.id}`, row));
    }
    return entities;
}

async function ignore404(p: Promise<unknown>): Promise<void> {
    try {
        await p;
    } catch (err) {
        if (statusCodeOf(err) !== 404) {
            throw err;
        }
    }
}

/** A list filter; every field optional. Values are checked by the caller (the dashboard's query schema). */
export interface IndexFilter {
    status?: RequestStatus;
    kind?: string;
    /** Exact server name, any case. */
    server?: string;
    origin?: RequestOrigin;
    /** Prefix of the requester's UPN (or name, or id), any case. */
    requester?: string;
    /** Prefix of the approver's UPN (or name), any case. */
    approver?: string;
    /** Opened at or after this day (UTC). */
    from?: Date;
    /** Opened before this instant. */
    to?: Date;
}

/** Where the next page starts: the keys of the last row shown. */
export interface IndexCursor {
    partitionKey: string;
    rowKey: string;
}

export interface IndexPage {
    rows: IndexedRequest[];
    next?: IndexCursor;
}

const cursorPattern = /^i-\d{6}\|\d{13}-[A-Za-z0-9_-]{1,64}$/;

export function encodeCursor(cursor: IndexCursor): string {
    return `${cursor.partitionKey}|${cursor.rowKey}`;
}

/** A cursor from a URL; undefined when it is not one this module wrote. */
export function decodeCursor(value: string): IndexCursor | undefined {
    if (!cursorPattern.test(value)) {
        return undefined;
    }
    const [partitionKey, rowKey] = value.split('|') as [string, string];
    return { partitionKey, rowKey };
}

/** An OData string literal. */
function lit(value: string): string {
    return `'${value.replace(/'/g, "''")}'`;
}

/** `column` starts with `prefix`: a range, which the service evaluates as a comparison. */
function startsWith(column: string, prefix: string): string {
    const last = prefix.charCodeAt(prefix.length - 1);
    const upper = `${prefix.slice(0, -1)}${String.fromCharCode(last + 1)}`;
    return `${column} ge ${lit(prefix)} and ${column} lt ${lit(upper)}`;
}

/** The column conditions of a filter (no keys), joined by `and`; '' for none. */
export function columnFilter(filter: IndexFilter): string {
    const clauses: string[] = [];
    if (filter.status) {
        clauses.push(`status eq ${lit(filter.status)}`);
    }
    if (filter.kind) {
        clauses.push(`kind eq ${lit(filter.kind)}`);
    }
    if (filter.server) {
        clauses.push(`server eq ${lit(filter.server.toLowerCase())}`);
    }
    if (filter.origin) {
        clauses.push(`origin eq ${lit(filter.origin)}`);
    }
    if (filter.requester) {
        clauses.push(startsWith('requester', filter.requester.toLowerCase()));
    }
    if (filter.approver) {
        clauses.push(startsWith('approver', filter.approver.toLowerCase()));
    }
    if (filter.from) {
        clauses.push(`createdAt ge ${lit(filter.from.toISOString())}`);
    }
    if (filter.to) {
        clauses.push(`createdAt lt ${lit(filter.to.toISOString())}`);
    }
    return clauses.join(' and ');
}

/** The key range of the "every request" rows a filter's dates allow: whole months, newest first. */
function partitionRange(filter: IndexFilter): { from: string; to: string } {
    // Inverted: the newest month has the smallest key.
    const from = filter.to
        ? `${indexPrefix}${invertedMonth(new Date(filter.to.getTime() - 1).toISOString())}`
        : indexPrefix;
    const to = filter.from ? `${indexPrefix}${invertedMonth(filter.from.toISOString())}~` : 'i.';
    return { from, to };
}

export interface RequestIndexQueries {
    /** One page of the filtered list, newest first, starting after `after`. */
    page(filter: IndexFilter, size: number, after?: IndexCursor): Promise<IndexPage>;
    /** The whole filtered list, newest first, at most `limit` rows (the export). */
    all(filter: IndexFilter, limit: number): AsyncIterable<IndexedRequest>;
    /** Every open request (pending or decided), newest first. */
    open(): Promise<IndexedRequest[]>;
    /** Requests decided at or after `since`, with their time to decision in seconds. */
    decidedSince(since: Date): Promise<(IndexedRequest & { toDecision: number })[]>;
    /**
     * Re-indexes the requests written since the last catch-up (all of them the first time, or after the index's
     * shape changed), at most once per `everyMs`. Returns how many requests it indexed.
     */
    catchUp(now: Date, everyMs: number, budget?: number): Promise<CatchUp>;
}

export class TableRequestIndex implements RequestIndexQueries {
    constructor(
        /** The index table. */
        private readonly table: () => Promise<TableClient>,
        /** The requests table, which the catch-up reads. */
        private readonly requestsTable: () => Promise<TableClient>,
    ) {}

    async page(filter: IndexFilter, size: number, after?: IndexCursor): Promise<IndexPage> {
        const rows: IndexedRequest[] = [];
        let last: IndexCursor | undefined;
        for await (const entity of this.query(filter, after, size + 1)) {
            if (rows.length === size) {
                return { rows, ...(last ? { next: last } : {}) };
            }
            rows.push(JSON.parse(entity.s) as IndexedRequest);
            last = { partitionKey: entity.partitionKey, rowKey: entity.rowKey };
        }
        return { rows };
    }

    async *all(filter: IndexFilter, limit: number): AsyncIterable<IndexedRequest> {
        let n = 0;
        for await (const entity of this.query(filter, undefined, 1000)) {
            if (n++ >= limit) {
                return;
            }
            yield JSON.parse(entity.s) as IndexedRequest;
        }
    }

    /**
     * The filtered "every request" rows after the cursor, newest first: the rest of the cursor's month, then windows of
     * whole months that double in length (1, 2, 4, 8... months), then everything older. Each window is one key-range
     * query, so a page that the newest month fills reads that month only, and a rare filter costs a few queries more
     * rather than one that matches the whole table. The page size bounds what each round trip returns.
     */
    private async *query(filter: IndexFilter, after: IndexCursor | undefined, pageSize: number) {
        const table = await this.table();
        const columns = columnFilter(filter);
        const range = partitionRange(filter);
        const ranges: { from: string; to: string; rowAfter?: string }[] = [];
        /** The newest month the next window holds. */
        let newest: Date;
        let lo: string;
        if (after) {
            ranges.push({ from: after.partitionKey, to: `${after.partitionKey}~`, rowAfter: after.rowKey });
            newest = addMonths(monthOfKey(after.partitionKey), -1);
            lo = `${after.partitionKey}~`;
        } else {
            newest = monthStart(filter.to ? new Date(filter.to.getTime() - 1) : new Date());
            lo = range.from;
        }
        for (let span = 1; lo < range.to; span *= 2) {
            // The key just after a month's key bounds every row of that month; past ~40 years, the rest in one go.
            const oldest = addMonths(newest, -(span - 1));
            const edge = span > 256 ? range.to : `${indexPrefix}${invertedMonth(oldest.toISOString())}~`;
            const hi = edge < range.to ? edge : range.to;
            if (hi > lo) {
                ranges.push({ from: lo, to: hi });
                lo = hi;
            }
            newest = addMonths(oldest, -1);
        }
        for (const r of ranges) {
            const keys = r.rowAfter
                ? `PartitionKey eq ${lit(r.from)} and RowKey gt ${lit(r.rowAfter)}`
                : `PartitionKey ge ${lit(r.from)} and PartitionKey lt ${lit(r.to)}`;
            const filterText = columns ? `${keys} and ${columns}` : keys;
            try {
                const pages = table
                    .listEntities<IndexEntity>({ queryOptions: { filter: filterText } })
                    .byPage({ maxPageSize: pageSize });
                for await (const page of pages) {
                    for (const entity of page) {
                        yield entity;
                    }
                }
            } catch (err) {
                throw wrap(err, 'list the requests');
            }
        }
    }

    async open(): Promise<IndexedRequest[]> {
        return this.list(`PartitionKey eq ${lit(openPartition)}`);
    }

    async decidedSince(since: Date): Promise<(IndexedRequest & { toDecision: number })[]> {
        const table = await this.table();
        const upper = `${decidedPrefix}${invertedMonth(since.toISOString())}`;
        // The decided rows of the months from `since` on, newest first; the exact bound is on the row key's time.
        const filter =
            `PartitionKey ge ${lit(decidedPrefix)} and PartitionKey le ${lit(upper)} and ` +
            `decidedAt ge ${lit(since.toISOString())}`;
        const rows: (IndexedRequest & { toDecision: number })[] = [];
        try {
            const pages = table
                .listEntities<IndexEntity>({ queryOptions: { filter, select: ['s', 'toDecision'] } })
                .byPage({ maxPageSize: 1000 });
            for await (const page of pages) {
                for (const entity of page) {
                    rows.push({ ...(JSON.parse(entity.s) as IndexedRequest), toDecision: entity.toDecision ?? 0 });
                }
            }
        } catch (err) {
            throw wrap(err, 'list the decided requests');
        }
        return rows;
    }

    private async list(filter: string): Promise<IndexedRequest[]> {
        const table = await this.table();
        const rows: IndexedRequest[] = [];
        try {
            for await (const entity of table.listEntities<IndexEntity>({ queryOptions: { filter } })) {
                rows.push(JSON.parse(entity.s) as IndexedRequest);
            }
        } catch (err) {
            throw wrap(err, 'list the open requests');
        }
        return rows;
    }

    async catchUp(now: Date, everyMs: number, budget = catchUpBudget): Promise<CatchUp> {
        const table = await this.table();
        const marker = await getMarker(table);
        const fresh = marker?.version === indexVersion;
        const inPass = marker?.passStartedAt !== undefined;
        if (fresh && !inPass && now.getTime() - Date.parse(marker.at) < everyMs) {
            return { indexed: 0, complete: true };
        }
        // A pass reads the request rows written since the last completed one (all of them the first time, or after
        // the index's shape changed), and may take several calls: it goes on from where the last call stopped.
        const pass: Required<Pick<Marker, 'passStartedAt' | 'passSince'>> & Pick<Marker, 'passContinuation'> = inPass
            ? {
                  passStartedAt: marker.passStartedAt!,
                  passSince: marker.passSince ?? '',
                  ...(marker.passContinuation ? { passContinuation: marker.passContinuation } : {}),
              }
            : {
                  passStartedAt: now.toISOString(),
                  passSince: fresh ? new Date(Date.parse(marker.at) - catchUpMarginMs).toISOString() : '',
              };
        let filter = "RowKey ge 'request-' and RowKey lt 'request.'";
        if (pass.passSince) {
            filter += ` and Timestamp ge datetime'${pass.passSince}'`;
        }
        let indexed = 0;
        try {
            const pages = (await this.requestsTable())
                .listEntities<{ data: string }>({ queryOptions: { filter, select: ['data'] } })
                .byPage({
                    maxPageSize: Math.min(500, budget),
                    ...(pass.passContinuation ? { continuationToken: pass.passContinuation } : {}),
                });
            for await (const page of pages) {
                const requests = page.map((entity) => JSON.parse(entity.data) as ApprovalRequest);
                for (let i = 0; i < requests.length; i += 16) {
                    await Promise.all(requests.slice(i, i + 16).map((r) => writeIndex(table, undefined, r)));
                }
                indexed += requests.length;
                if (indexed >= budget && page.continuationToken) {
                    // Enough for one call: the page it serves must not wait for a whole table. The next call goes on.
                    await putMarker(table, {
                        at: marker?.at ?? '',
                        version: marker?.version ?? 0,
                        ...pass,
                        passContinuation: page.continuationToken,
                    });
                    return { indexed, complete: false };
                }
            }
            await putMarker(table, { at: pass.passStartedAt, version: indexVersion });
        } catch (err) {
            throw wrap(err, 'bring the request index up to date');
        }
        return { indexed, complete: true };
    }
}

/** What a catch-up did: how many requests it indexed, and whether the index is complete now. */
export interface CatchUp {
    indexed: number;
    complete: boolean;
}

/** Requests one catch-up call indexes at most, so that the page that triggered it still answers in time. */
const catchUpBudget = 5000;

interface Marker {
    /** When the last completed pass started: every request written before it is indexed. */
    at: string;
    version: number;
    /** A pass under way: when it started, what it reads, and where it stopped. */
    passStartedAt?: string;
    passSince?: string;
    passContinuation?: string;
}

async function putMarker(table: TableClient, marker: Marker): Promise<void> {
    await table.upsertEntity({ partitionKey: metaPartition, rowKey: catchUpRow, ...marker }, 'Replace');
}

/** Whether the index has been brought up to date since the given time: the benchmark's generated table says so. */
export async function markIndexCaughtUp(table: TableClient, at: Date): Promise<void> {
    await putMarker(table, { at: at.toISOString(), version: indexVersion });
}

async function getMarker(table: TableClient): Promise<Marker | undefined> {
    try {
        return await table.getEntity<Marker>(metaPartition, catchUpRow);
    } catch (err) {
        if (statusCodeOf(err) === 404) {
            return undefined;
        }
        throw wrap(err, 'read the request index marker');
    }
}

function wrap(err: unknown, what: string): Error {
    const e = ensureErrorType(err);
    return isTransientStatus(statusCodeOf(err))
        ? new TransientError(`Storage: could not ${what}: ${e.message}`, { cause: e })
        : new Error(`Storage: could not ${what}: ${e.message}`, { cause: e });
}

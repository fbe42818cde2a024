import { createHash } from 'node:crypto';
import type { TokenCredential } from '@azure/core-auth';
import type { AppendBlobClient, ContainerClient } from '@azure/storage-blob';
import type { StorageSettings } from '../config';
import type { AuditEntry, AuditInput } from '../domain/audit';
import { ensureErrorType, isTransientStatus, statusCodeOf, TransientError } from '../domain/errors';
import { storageWithoutFormData } from '../http/pipeline';
import { defaultHttpTimeoutMs } from '../http/timeout';
import type { AppendOptions, AuditLog } from './auditLog';
import { withRetries, type QueueRetrySettings } from './applyQueue';
import { lazy } from './tables';
import { WritesBehind } from './writesBehind';

/**
 * Anchors of the audit chains, outside the app's power to rewrite. The audit table is the trail; the app's identity
 * can delete or rewrite any row of it, and recompute every hash after an edit, because the chain has no secret (a key
 * would not help: the app would have to hold it, and so would whoever stole the app's identity). What the thief cannot
 * do is take back what was written to a blob container under a time-based immutability (WORM) policy with protected
 * append writes: blocks can be added to an append blob, never changed or removed, by anyone, the storage account's
 * owner included, until the retention ends. Each append of an entry adds the chain's new head (sequence number and
 * hash) to its request's anchor blob, and the sweep adds a digest of every chain, so `pec audit verify` can prove a
 * trail was cut short, deleted, reordered or rewritten after its head was anchored.
 *
 * Layout: `heads/{requestId}.jsonl`, one JSON line per anchored head; `digests/{yyyy-mm-dd}.jsonl`, one line per
 * sweep's digest. Lines, not blobs per entry, so a request costs one blob and a verify one read.
 */

export interface AnchorHead {
    requestId: string;
    seq: number;
    hash: string;
    /** When the entry was written (its `at`), not when it was anchored. */
    at: string;
}

/** A digest of every chain's head at one time: the sha256 of the sorted `requestId seq hash` lines. */
export interface AnchorDigest {
    at: string;
    chains: number;
    digest: string;
}

/** The one port to the anchor store: one real adapter (append blobs) and one in-memory double. */
export interface AuditAnchors {
    /** Appends the head of one request's chain. */
    anchor(head: AnchorHead): Promise<void>;
    /** Every head anchored for the request, in the order written (the same head may appear twice after a retry). */
    heads(requestId: string): Promise<AnchorHead[]>;
    /** Every request id with an anchor, sorted. */
    listRequestIds(): Promise<string[]>;
    /** Appends a digest of all chains. */
    anchorDigest(digest: AnchorDigest): Promise<void>;
    /** Starts loading the store's client (the blob SDK), for the first anchor; never fails. */
    prepare?(): void;
    /** The digests written on one day (UTC, `yyyy-mm-dd`), in order. */
    digests(day: string): Promise<AnchorDigest[]>;
}

export function headOf(entry: Pick<AuditEntry, 'requestId' | 'seq' | 'hash' | 'at'>): AnchorHead {
    return { requestId: entry.requestId, seq: entry.seq, hash: entry.hash, at: entry.at };
}

/** The digest of a set of heads, independent of the order they are given in. */
export function digestOf(heads: readonly AnchorHead[], at: string): AnchorDigest {
    const lines = heads.map((h) => `${h.requestId} ${h.seq} ${h.hash}`).sort();
    return { at, chains: heads.length, digest: createHash('sha256').update(lines.join('\n')).digest('hex') };
}

const headsPrefix = 'heads/';
const digestsPrefix = 'digests/';

/**
 * Append blobs in one container (AUDIT_ANCHOR_CONTAINER), on the same storage settings as the tables, each call
 * bounded and retried by the same rules as the apply queue's. The container is created if missing (locally; Bicep
 * deploys it with its immutability policy).
 */
export class BlobAuditAnchors implements AuditAnchors {
    private readonly retry: QueueRetrySettings;
    private readonly container: () => Promise<ContainerClient>;

    constructor(storage: StorageSettings, containerName: string, credential: () => TokenCredential) {
        this.retry = {
            timeoutMs: storage.timeoutMs ?? defaultHttpTimeoutMs,
            maxRetries: storage.maxRetries ?? 4,
            retryDelayInMs: storage.retryDelayInMs ?? 1000,
        };
        this.container = lazy(async () => {
            const { BlobServiceClient } = await import('./blobService');
            // One try per SDK call: the retries are done in `withRetries`.
            const options = { retryOptions: { maxTries: 1 } };
            const service = storage.connectionString
                ? BlobServiceClient.fromConnectionString(storage.connectionString, options)
                : new BlobServiceClient(requireUri(storage.blobServiceUri), credential(), options);
            return storageWithoutFormData(service.getContainerClient(containerName));
        });
    }

    prepare(): void {
        // Later, not now: the caller's requests are still being sent, and loading the blob SDK takes the thread for
        // several milliseconds; after a timer turn they are on the wire, and the load fills the wait for the answers.
        setTimeout(() => void this.container().catch(() => undefined), 0);
    }

    anchor(head: AnchorHead): Promise<void> {
        // A chain's first entry is a new request: its blob cannot exist yet, so create it before appending rather than
        // learn that from a 404 (two round trips instead of four on every new PEC's path).
        return this.appendLine(`${headsPrefix}${blobSafe(head.requestId)}.jsonl`, head, head.seq === 1);
    }

    async heads(requestId: string): Promise<AnchorHead[]> {
        return (await this.readLines(`${headsPrefix}${blobSafe(requestId)}.jsonl`)) as AnchorHead[];
    }

    async listRequestIds(): Promise<string[]> {
        const container = await this.container();
        const ids: string[] = [];
        try {
            for await (const blob of container.listBlobsFlat({ prefix: headsPrefix })) {
                ids.push(blob.name.slice(headsPrefix.length).replace(/\.jsonl$/, ''));
            }
        } catch (err) {
            if (statusCodeOf(err) === 404) {
                return [];
            }
            throw failure('could not list the anchors', err);
        }
        return ids.sort();
    }

    anchorDigest(digest: AnchorDigest): Promise<void> {
        return this.appendLine(`${digestsPrefix}${digest.at.slice(0, 10)}.jsonl`, digest);
    }

    async digests(day: string): Promise<AnchorDigest[]> {
        return (await this.readLines(`${digestsPrefix}${blobSafe(day)}.jsonl`)) as AnchorDigest[];
    }

    private async appendLine(name: string, record: object, createFirst = false): Promise<void> {
        const line = Buffer.from(`${JSON.stringify(record)}\n`, 'utf8');
        const container = await this.container();
        const blob = container.getAppendBlobClient(name);
        let create = createFirst;
        try {
            await withRetries(this.retry, async (abortSignal) => {
                if (create) {
                    await createBlob(container, blob, abortSignal);
                    create = false;
                }
                try {
                    await blob.appendBlock(line, line.length, { abortSignal });
                } catch (err) {
                    if (statusCodeOf(err) !== 404) {
                        throw err;
                    }
                    await createBlob(container, blob, abortSignal);
                    await blob.appendBlock(line, line.length, { abortSignal });
                }
            });
        } catch (err) {
            throw failure(`could not anchor ${name}`, err);
        }
    }

    private async readLines(name: string): Promise<unknown[]> {
        const container = await this.container();
        let text: string;
        try {
            const buffer = await withRetries(this.retry, (abortSignal) =>
                container.getBlobClient(name).downloadToBuffer(undefined, undefined, { abortSignal }),
            );
            text = buffer.toString('utf8');
        } catch (err) {
            if (statusCodeOf(err) === 404) {
                return [];
            }
            throw failure(`could not read ${name}`, err);
        }
        return text
            .split('\n')
            .filter((l) => l.trim() !== '')
            .map((l) => JSON.parse(l) as unknown);
    }
}

/**
 * Creates the append blob only if it does not exist (If-None-Match: *): creating an existing one would empty it. The
 * container is created only when storage says it is the container that is missing (locally; Bicep deploys it).
 */
async function createBlob(container: ContainerClient, blob: AppendBlobClient, abortSignal: AbortSignal): Promise<void> {
    try {
        await blob.createIfNotExists({ abortSignal });
    } catch (err) {
        if (statusCodeOf(err) !== 404 || errorCodeOf(err) !== 'ContainerNotFound') {
            throw err;
        }
        await container.createIfNotExists({ abortSignal });
        await blob.createIfNotExists({ abortSignal });
    }
}

function errorCodeOf(err: unknown): string | undefined {
    const code = (err as { code?: unknown } | undefined)?.code;
    return typeof code === 'string' ? code : undefined;
}

function failure(what: string, err: unknown): Error {
    const e = ensureErrorType(err);
    return e instanceof TransientError || isTransientStatus(statusCodeOf(err))
        ? new TransientError(`Audit anchor: ${what}: ${e.message}`, { cause: e })
        : new Error(`Audit anchor: ${what}: ${e.message}`, { cause: e });
}

/** Request ids are [A-Za-z0-9_-] already; anything else is encoded, never allowed to name another path. */
function blobSafe(name: string): string {
    return encodeURIComponent(name);
}

function requireUri(uri: string | undefined): string {
    if (!uri) {
        throw new Error('AzureWebJobsStorage: no blob service URI');
    }
    return uri;
}

/** The in-memory double: append-only, as the WORM container is. */
export class InMemoryAuditAnchors implements AuditAnchors {
    readonly headsByRequest = new Map<string, AnchorHead[]>();
    readonly digestLines: AnchorDigest[] = [];
    /** Set to make every write fail, as a storage outage would. */
    failWrites: Error | undefined;
    /** How many times `prepare` was called: it has nothing to load. */
    prepared = 0;

    prepare(): void {
        this.prepared += 1;
    }

    anchor(head: AnchorHead): Promise<void> {
        if (this.failWrites) {
            return Promise.reject(this.failWrites);
        }
        this.headsByRequest.set(head.requestId, [...(this.headsByRequest.get(head.requestId) ?? []), { ...head }]);
        return Promise.resolve();
    }
    heads(requestId: string): Promise<AnchorHead[]> {
        return Promise.resolve([...(this.headsByRequest.get(requestId) ?? [])]);
    }
    listRequestIds(): Promise<string[]> {
        return Promise.resolve([...this.headsByRequest.keys()].sort());
    }
    anchorDigest(digest: AnchorDigest): Promise<void> {
        if (this.failWrites) {
            return Promise.reject(this.failWrites);
        }
        this.digestLines.push({ ...digest });
        return Promise.resolve();
    }
    digests(day: string): Promise<AnchorDigest[]> {
        return Promise.resolve(this.digestLines.filter((d) => d.at.startsWith(day)));
    }
}

/** What a failed anchor write is reported to: never swallowed, never allowed to fail the step that was audited. */
export type AnchorFailureSink = (head: AnchorHead, error: Error) => void;

export interface AnchoredAuditOptions {
    /**
     * Write each anchor behind the step instead of before the append returns: the caller's next call (a new PEC's card
     * post) does not wait for the blob. Whoever composes this must await `settled()` before the process may be frozen
     * (the end of every invocation); a head left unanchored by a process that died first is anchored by the sweep, as
     * one whose write failed is.
     */
    background?: boolean;
}

/**
 * Decorates the audit log: once an entry is durably appended, its chain's new head is anchored. A failed anchor does
 * not fail the append (the entry is in the trail, and failing here would make the caller redo a step that is done):
 * the SDK call was already retried, so the failure goes to `onFailure` (an ALERT log line and a telemetry event), and
 * the sweep anchors the head of every chain whose anchor lags (`anchorLagging`).
 *
 * One request's heads are anchored one after another, in the order of their entries, even in the background: a
 * chain's first head creates its blob, and the next must not reach the blob before it.
 */
export class AnchoredAuditLog implements AuditLog {
    private readonly writing = new WritesBehind();

    constructor(
        private readonly inner: AuditLog,
        private readonly anchors: Pick<AuditAnchors, 'anchor' | 'prepare'>,
        private readonly onFailure: AnchorFailureSink,
        private readonly options: AnchoredAuditOptions = {},
    ) {}

    async append(input: AuditInput, options?: AppendOptions): Promise<AuditEntry> {
        const entry = await this.inner.append(input, options);
        const anchored = this.anchorInOrder(headOf(entry));
        if (!this.options.background) {
            await anchored;
        }
        return entry;
    }

    list(requestId: string): Promise<AuditEntry[]> {
        return this.inner.list(requestId);
    }

    prepare(): void {
        this.inner.prepare?.();
        this.anchors.prepare?.();
    }

    /** Resolves once every anchor write begun before the call has ended (see `WritesBehind`). */
    settled(): Promise<void> {
        return this.writing.settled();
    }

    private anchorInOrder(head: AnchorHead): Promise<void> {
        return this.writing.run(head.requestId, async () => {
            try {
                await this.anchors.anchor(head);
            } catch (err) {
                this.report(head, ensureErrorType(err));
            }
        });
    }

    private report(head: AnchorHead, error: Error): void {
        if (!this.options.background) {
            // Awaited by the caller: a sink that throws fails the append, as the caller asked.
            this.onFailure(head, error);
            return;
        }
        try {
            this.onFailure(head, error);
        } catch (sinkError) {
            // Nobody awaits a background write: a throwing sink would be an unhandled rejection that ends the process.
            console.error(
                `ALERT audit anchor of ${head.requestId} #${head.seq} failed (${error.message}), and so did reporting it: ` +
                    ensureErrorType(sinkError).message,
            );
        }
    }
}

/**
 * The sweep's pass over the anchors: each chain whose latest head is not anchored (its anchor write failed, or the
 * process stopped between the append and the anchor) gets it now, and a digest of every chain's head is appended.
 * Returns how many heads were anchored late and the digest written.
 */
export async function anchorLagging(
    audit: Pick<AuditLog, 'list'> & { listRequestIds(): Promise<string[]> },
    anchors: AuditAnchors,
    now: Date,
): Promise<{ anchored: number; digest: AnchorDigest }> {
    const heads: AnchorHead[] = [];
    let anchored = 0;
    for (const requestId of await audit.listRequestIds()) {
        const last = (await audit.list(requestId)).at(-1);
        if (!last) {
            continue;
        }
        const head = headOf(last);
        heads.push(head);
        const latest = (await anchors.heads(requestId)).reduce<AnchorHead | undefined>(
            (max, h) => (max === undefined || h.seq > max.seq ? h : max),
            undefined,
        );
        if (!latest || latest.seq < head.seq) {
            await anchors.anchor(head);
            anchored += 1;
        }
    }
    const digest = digestOf(heads, now.toISOString());
    await anchors.anchorDigest(digest);
    return { anchored, digest };
}

import { ensureErrorType, PermanentError, statusCodeOf } from '../domain/errors';
import {
    formatPecId,
    idKey,
    kindInfo,
    parseServerId,
    type PecRef,
    type ServerKind,
    type ServerRef,
} from '../domain/ids';
import { isSettled, type DecisionStatus, type Pec, type ServerContext } from '../domain/pec';
import {
    isInFlight,
    isNotFound,
    isOperationInProgress,
    sleep,
    pecLabel,
    toArmError,
    toPec,
    toServerContext,
    withDeadline,
    type ArmSettings,
    type FlatPec,
    type RawServer,
} from './armCommon';
import type { ListedServer, PecProvider, SetStateOptions } from './pecProvider';

/**
 * The body of the PUT that approves or rejects, in the SDKs' flattened form: the connection state the contract asks
 * for, and the private endpoint only for a kind whose official example sends it, and only when it is known (never an
 * empty `privateEndpoint: {}`).
 */
export interface PecStateBody {
    privateEndpoint?: { id: string };
    privateLinkServiceConnectionState: { status: DecisionStatus; description: string };
}

/** One item of a subscription-wide list: the resource's id and, when the answer carries them inline, its PECs. */
export interface ListedResource {
    id?: string;
    pecs?: FlatPec[];
}

/**
 * The few calls that differ between the four server kinds. Each kind supplies these through its SDK (or, for MySQL
 * flexible, a generic ARM call); the adapter below does the rest the same way for all of them.
 */
export interface KindOperations {
    /** The servers of this kind in a subscription, every page; the id, and the PECs when the list carries them inline. */
    listServers(subscriptionId: string, signal: AbortSignal): AsyncIterable<ListedResource>;
    listPecs(server: ServerRef, signal: AbortSignal): AsyncIterable<FlatPec>;
    getPec(pec: PecRef, signal: AbortSignal): Promise<FlatPec>;
    getServer(server: ServerRef, signal: AbortSignal): Promise<RawServer>;
    /**
     * Starts the PUT and waits for its long-running operation; must honour the signal. With `hooks.resumeFrom` it sends
     * no PUT and polls that operation instead; `hooks.onStarted` receives the operation's serialized state once ARM
     * has accepted the PUT, before the wait.
     */
    putPecState(pec: PecRef, body: PecStateBody, signal: AbortSignal, hooks?: OperationHooks): Promise<void>;
}

/** How an apply follows ARM's long-running operation across queue deliveries. */
export interface OperationHooks {
    /** The serialized state of an operation an earlier attempt started (the SDK pollers' `resumeFrom`). */
    resumeFrom?: string;
    onStarted?(operation: string): Promise<void> | void;
}

/** Tries of the PUT while ARM answers 409 (another operation runs on the connection), with backoff between them. */
const inProgressTries = 6;
/** How often an apply reads the connection while an operation runs, at most (it starts at a quarter second). */
const maxReadIntervalMs = 5_000;

export class ArmPecAdapter implements PecProvider {
    private readonly readDeadlineMs: number;

    constructor(
        private readonly ops: KindOperations,
        private readonly settings: ArmSettings,
    ) {
        this.readDeadlineMs = settings.readDeadlineMs ?? 60_000;
    }

    async listServers(subscriptionId: string, kind: ServerKind): Promise<ServerRef[]> {
        return (await this.listServersWithPecs(subscriptionId, kind)).map((listed) => listed.server);
    }

    async listServersWithPecs(subscriptionId: string, kind: ServerKind): Promise<ListedServer[]> {
        const what = `list ${kindInfo[kind].label}s in subscription ${subscriptionId}`;
        return withDeadline(this.readDeadlineMs, what, async (signal) => {
            const servers: ListedServer[] = [];
            for await (const raw of this.ops.listServers(subscriptionId, signal)) {
                const server = serverRefOf(raw.id);
                // One odd item (no id, an id we cannot address, another type) must not stop the sweep of the rest.
                if (server?.kind !== kind) {
                    continue;
                }
                // Taken inline only where the registry says the kind's published model carries them.
                const inline = kindInfo[kind].inlineConnections ? raw.pecs : undefined;
                servers.push(inline ? { server, pecs: this.toPecs(server, inline) } : { server });
            }
            return servers;
        });
    }

    async listPecs(server: ServerRef): Promise<Pec[]> {
        return withDeadline(this.readDeadlineMs, `list PECs of ${server.name}`, async (signal) => {
            const raws: FlatPec[] = [];
            for await (const raw of this.ops.listPecs(server, signal)) {
                raws.push(raw);
            }
            return this.toPecs(server, raws);
        });
    }

    /**
     * A listed connection is the listed server's and is named by its `name` (else the last segment of its id): its
     * identity is built from what we asked for, never taken from the body's id, which official examples show pointing
     * at another resource group, resource or subscription. Such an id is logged, not followed. The same name twice
     * (official examples list one connection twice) is one PEC.
     */
    private toPecs(server: ServerRef, raws: readonly FlatPec[]): Pec[] {
        const pecs = new Map<string, Pec>();
        for (const raw of raws) {
            const name = raw.name || raw.id?.split('/').filter(Boolean).pop() || '';
            let pec: Pec;
            try {
                pec = this.toPec(server, raw, name);
            } catch (err) {
                // One connection without a name or a status we know (a state added after our model) is left out and
                // logged: failing the whole listing would drop the server, and with it its scope's bypass check.
                this.warn(
                    `${ensureErrorType(err).message}; left out of the listing (name ${JSON.stringify(name.slice(0, 100))}, ` +
                        `status ${JSON.stringify(String(raw.privateLinkServiceConnectionState?.status ?? '').slice(0, 40))})`,
                );
                continue;
            }
            const key = idKey(pec.ref.name);
            if (pecs.has(key)) {
                this.warn(`ARM listed ${pec.id} twice on ${server.name}; the first entry counts`);
                continue;
            }
            pecs.set(key, pec);
        }
        return [...pecs.values()];
    }

    /** The PEC named `name` on `server`, from what ARM answered about it; a body id pointing elsewhere is logged. */
    private toPec(server: ServerRef, raw: FlatPec, name: string): Pec {
        const pec = toPec(server, { ...raw, name });
        const built = formatPecId(pec.ref);
        if (raw.id && idKey(raw.id) !== idKey(built)) {
            this.warn(`ARM answered for ${built} with the body id ${raw.id}; the id asked for is used`);
        }
        return { ...pec, id: built };
    }

    private warn(message: string): void {
        this.settings.warn?.(message);
    }

    async getPec(pec: PecRef): Promise<Pec | undefined> {
        try {
            return await withDeadline(this.readDeadlineMs, `get ${pecLabel(pec)}`, async (signal) =>
                this.toPec(pec.server, await this.ops.getPec(pec, signal), pec.name),
            );
        } catch (err) {
            if (isNotFound((err as { cause?: unknown }).cause ?? err)) {
                return undefined;
            }
            throw err;
        }
    }

    async getServerContext(
        server: ServerRef,
        knownPecs?: readonly Pec[] | Promise<readonly Pec[]>,
    ): Promise<ServerContext> {
        const [raw, pecs] = await Promise.all([
            withDeadline(this.readDeadlineMs, `get server ${server.name}`, (signal) =>
                this.ops.getServer(server, signal),
            ),
            knownPecs ?? this.listPecs(server),
        ]);
        return toServerContext(server, raw, pecs);
    }

    /**
     * Sets the connection's state, sending the PUT at most once per call and never while an operation runs on it:
     * - the connection already shows the requested state, settled: done, no PUT (an earlier attempt got through);
     * - an operation an earlier attempt stored (`options.operation`): polled instead of a new PUT;
     * - an operation in flight that nobody stored (its answer was lost): waited for by reading the connection;
     * - ARM answers 409 (another operation in progress): tried again with backoff, after reading the connection;
     * - the PUT's answer already shows the requested state settled (200/201 with `provisioningState: "Ready"` or
     *   `"Succeeded"`, as the official examples answer), or a read right after a 202 shows it: done at once. The
     *   pollers do not know "Ready" as final, so a read alongside the operation ends the wait as soon as ARM is done.
     */
    async setPecState(
        pec: PecRef,
        status: DecisionStatus,
        description: string,
        known?: Pec,
        options: SetStateOptions = {},
    ): Promise<Pec> {
        const what = `set ${pecLabel(pec)} to ${status}`;
        const shows = (p: Pec | undefined) => p?.status === status && p.description === description;
        const done = (p: Pec | undefined) => shows(p) && isSettled(p?.provisioningState ?? '');
        // Once ARM has taken our PUT, the state asked for, settled, is the end, whatever description it shows: the
        // official examples answer a PUT with another description than the one sent, and ARM may normalise the text.
        // Waiting for our exact text would wait out the deadline on an apply that is done. (Before the PUT, only our
        // own text counts as done: another description there is someone else's decision, not ours.)
        const reached = (p: Pec | undefined) => {
            if (p?.status !== status || !isSettled(p.provisioningState)) {
                return false;
            }
            if (p.description !== description) {
                this.warn(`${pecLabel(pec)} is ${status} with the description "${p.description}", not the one sent`);
            }
            return true;
        };
        return withDeadline(this.settings.lroDeadlineMs, what, async (signal) => {
            let current = known ?? (await this.getPec(pec));
            let resumeFrom = options.operation;
            for (let attempt = 0; ; attempt++) {
                if (!current) {
                    throw new PermanentError(`${pecLabel(pec)} does not exist (removed?)`);
                }
                if (done(current)) {
                    return current;
                }
                if (!resumeFrom && isInFlight(current.provisioningState)) {
                    // Someone's operation runs (ours, whose answer was lost): a PUT now would only meet a 409.
                    current = await this.untilSettled(pec, signal);
                    continue;
                }
                // The connection's own private endpoint, unchanged from the read just made, as Azure CLI's and Azure
                // PowerShell's approve commands send it back: a deny policy on connections whose body names no trusted
                // private endpoint (the Cloud Adoption Framework's, and this deployment's guardrail) refuses a PUT
                // without it. ARM's contract has a provider ignore a read-only value that matches its own.
                const body: PecStateBody = {
                    ...(current.privateEndpointId ? { privateEndpoint: { id: current.privateEndpointId } } : {}),
                    privateLinkServiceConnectionState: { status, description },
                };
                try {
                    const finished = await this.putAndWatch(pec, body, signal, reached, {
                        ...(resumeFrom ? { resumeFrom } : {}),
                        ...(options.onStarted ? { onStarted: options.onStarted } : {}),
                    });
                    if (finished) {
                        return finished;
                    }
                } catch (err) {
                    if (signal.aborted) {
                        throw err;
                    }
                    const after = await this.getPec(pec).catch(() => undefined);
                    if (done(after)) {
                        return after as Pec;
                    }
                    if (current.status === status && refused(err) && reached(after)) {
                        // Some providers refuse a PUT that repeats the connection's status (Storage answers 400
                        // InvalidValuesForRequestParameters: Azure/azure-rest-api-specs#30308). The state asked for
                        // is there, settled; only the description stays as it was, and `reached` says so.
                        return after as Pec;
                    }
                    if (resumeFrom) {
                        // The stored operation could not be followed (gone, expired): ARM's state decides from here.
                        resumeFrom = undefined;
                        current = after ?? (await this.getPec(pec));
                        continue;
                    }
                    if (after && isInFlight(after.provisioningState) && attempt < inProgressTries) {
                        // The PUT's answer was lost but ARM took it: wait for that operation, never send another.
                        current = after;
                        continue;
                    }
                    if (isOperationInProgress(err) && attempt < inProgressTries) {
                        await sleep(Math.min(500 * 2 ** attempt, maxReadIntervalMs * 2), signal);
                        current = after ?? (await this.getPec(pec));
                        continue;
                    }
                    throw toArmError(err, what);
                }
                resumeFrom = undefined;
                const after = await this.getPec(pec);
                if (!after) {
                    throw new PermanentError(`${pecLabel(pec)} disappeared while it was being set to ${status}`);
                }
                if (shows(after) && isInFlight(after.provisioningState)) {
                    current = after;
                    continue;
                }
                return after;
            }
        });
    }

    /**
     * The PUT (or the stored operation) and its poller, raced against reads of the connection that begin once ARM has
     * accepted it: whichever sees the end first wins. Resolves with the connection when a read saw it done.
     */
    private async putAndWatch(
        pec: PecRef,
        body: PecStateBody,
        signal: AbortSignal,
        done: (p: Pec | undefined) => boolean,
        hooks: OperationHooks,
    ): Promise<Pec | undefined> {
        const child = new AbortController();
        const stop = () => child.abort();
        signal.addEventListener('abort', stop, { once: true });
        let started!: () => void;
        const accepted = new Promise<void>((resolve) => (started = resolve));
        if (hooks.resumeFrom) {
            started();
        }
        const put = this.ops
            .putPecState(pec, body, child.signal, {
                ...(hooks.resumeFrom ? { resumeFrom: hooks.resumeFrom } : {}),
                onStarted: async (operation) => {
                    started();
                    // Storing the operation helps a later delivery; failing to store it must not fail this one.
                    await Promise.resolve()
                        .then(() => hooks.onStarted?.(operation))
                        .catch(() => undefined);
                },
            })
            .then(() => undefined);
        const watch = (async () => {
            await accepted;
            for (let i = 0; ; i++) {
                const seen = await this.getPec(pec).catch(() => undefined);
                if (done(seen)) {
                    return seen;
                }
                await sleep(Math.min(250 * 2 ** i, maxReadIntervalMs), child.signal);
            }
        })();
        try {
            return await Promise.race([put, watch]);
        } finally {
            child.abort();
            signal.removeEventListener('abort', stop);
            put.catch(() => undefined);
            watch.catch(() => undefined);
        }
    }

    /** Reads the connection until no operation runs on it (bounded by the caller's deadline through `signal`). */
    private async untilSettled(pec: PecRef, signal: AbortSignal): Promise<Pec | undefined> {
        for (let i = 0; ; i++) {
            await sleep(Math.min(250 * 2 ** i, maxReadIntervalMs), signal);
            const seen = await this.getPec(pec);
            if (!seen || !isInFlight(seen.provisioningState)) {
                return seen;
            }
        }
    }
}

function serverRefOf(id: string | undefined): ServerRef | undefined {
    if (!id) {
        return undefined;
    }
    try {
        return parseServerId(id);
    } catch {
        return undefined;
    }
}

/** ARM refused the request as it was sent (400), the answer a provider gives a PUT it will never take. */
function refused(err: unknown): boolean {
    return [err, (err as { cause?: unknown } | undefined)?.cause].some((e) => statusCodeOf(e) === 400);
}

import { PermanentError } from '../domain/errors';
import {
    formatPecId,
    idKey,
    kindInfo,
    parseServerId,
    type PecRef,
    type ServerKind,
    type ServerRef,
} from '../domain/ids';
import type { DecisionStatus, Pec, ServerContext } from '../domain/pec';
import {
    isNotFound,
    isSettled,
    pecLabel,
    toArmError,
    toPec,
    toServerContext,
    withDeadline,
    type ArmSettings,
    type FlatPec,
    type RawServer,
} from './armCommon';
import type { ListedServer, PecProvider } from './pecProvider';

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
    /** Starts the PUT and waits for its long-running operation; must honour the signal. */
    putPecState(pec: PecRef, body: PecStateBody, signal: AbortSignal): Promise<void>;
}

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
                servers.push(raw.pecs ? { server, pecs: this.toPecs(server, raw.pecs) } : { server });
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
            const pec = this.toPec(server, raw, name);
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

    async setPecState(pec: PecRef, status: DecisionStatus, description: string, known?: Pec): Promise<Pec> {
        const current = known ?? (await this.getPec(pec));
        if (!current) {
            throw new PermanentError(`${pecLabel(pec)} does not exist (removed?)`);
        }
        const sendsPrivateEndpoint = kindInfo[pec.server.kind].put.sendsPrivateEndpoint && current.privateEndpointId;
        const body: PecStateBody = {
            ...(sendsPrivateEndpoint ? { privateEndpoint: { id: current.privateEndpointId } } : {}),
            privateLinkServiceConnectionState: { status, description },
        };
        try {
            await withDeadline(this.settings.lroDeadlineMs, `set ${pecLabel(pec)} to ${status}`, (signal) =>
                this.ops.putPecState(pec, body, signal),
            );
        } catch (err) {
            // Some servers answer the PUT with 200 and a state the pollers do not know as final (e.g. "Ready"), so the
            // poller never finishes. What ARM holds now is the truth: if the change is there and settled, it is done.
            const after = await this.getPec(pec).catch(() => undefined);
            if (
                after &&
                after.status === status &&
                after.description === description &&
                isSettled(after.provisioningState)
            ) {
                return after;
            }
            throw toArmError(err, `set ${pecLabel(pec)} to ${status}`);
        }
        const after = await this.getPec(pec);
        if (!after) {
            throw new PermanentError(`${pecLabel(pec)} disappeared while it was being set to ${status}`);
        }
        return after;
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

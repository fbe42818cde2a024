import { PermanentError } from '../domain/errors';
import { kindInfo, parseServerId, type PecRef, type ServerKind, type ServerRef } from '../domain/ids';
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
import type { PecProvider } from './pecProvider';

/** The body of the PUT that approves or rejects, in the SDKs' flattened form. */
export interface PecStateBody {
    privateEndpoint?: { id: string };
    privateLinkServiceConnectionState: { status: DecisionStatus; description: string };
}

/**
 * The few calls that differ between the four server kinds. Each kind supplies these through its SDK (or, for MySQL
 * flexible, a generic ARM call); the adapter below does the rest the same way for all of them.
 */
export interface KindOperations {
    /** The servers of this kind in a subscription, every page; only the id is used. */
    listServers(subscriptionId: string, signal: AbortSignal): AsyncIterable<{ id?: string }>;
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
        const what = `list ${kindInfo[kind].label}s in subscription ${subscriptionId}`;
        return withDeadline(this.readDeadlineMs, what, async (signal) => {
            const servers: ServerRef[] = [];
            for await (const raw of this.ops.listServers(subscriptionId, signal)) {
                const server = serverRefOf(raw.id);
                // One odd item (no id, an id we cannot address, another type) must not stop the sweep of the rest.
                if (server?.kind === kind) {
                    servers.push(server);
                }
            }
            return servers;
        });
    }

    async listPecs(server: ServerRef): Promise<Pec[]> {
        return withDeadline(this.readDeadlineMs, `list PECs of ${server.name}`, async (signal) => {
            const pecs: Pec[] = [];
            for await (const raw of this.ops.listPecs(server, signal)) {
                pecs.push(toPec(server, raw));
            }
            return pecs;
        });
    }

    async getPec(pec: PecRef): Promise<Pec | undefined> {
        try {
            return await withDeadline(this.readDeadlineMs, `get ${pecLabel(pec)}`, async (signal) =>
                toPec(pec.server, await this.ops.getPec(pec, signal)),
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
        const body: PecStateBody = {
            ...(current.privateEndpointId ? { privateEndpoint: { id: current.privateEndpointId } } : {}),
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

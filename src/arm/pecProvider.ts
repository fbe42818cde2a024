import type { PecRef, ServerKind, ServerRef } from '../domain/ids';
import type { DecisionStatus, Pec, ServerContext } from '../domain/pec';

export interface ListedServer {
    server: ServerRef;
    pecs?: Pec[];
}

/**
 * What the workflow needs from ARM, for any registered resource kind. Adapters hide the three SDKs and the generic
 * adapter behind this; the workflow never learns which one it talks to.
 */
export interface PecProvider {
    /** Every server of this kind in the subscription, every page. */
    listServers(subscriptionId: string, kind: ServerKind): Promise<ServerRef[]>;
    /**
     * The same, each with its PECs when ARM's list answer carries them inline (the sweep then needs no call per
     * server); `pecs` is absent where it does not, and the caller lists those servers' PECs itself.
     */
    listServersWithPecs?(subscriptionId: string, kind: ServerKind): Promise<ListedServer[]>;
    /** All PECs of a server, every page. */
    listPecs(server: ServerRef): Promise<Pec[]>;
    /** One PEC, or undefined when it does not exist (404). */
    getPec(pec: PecRef): Promise<Pec | undefined>;
    /**
     * The server's public network access and tags, and the PECs already approved. Pass the PECs you already listed to
     * avoid reading them twice.
     */
    getServerContext(server: ServerRef, knownPecs?: readonly Pec[] | Promise<readonly Pec[]>): Promise<ServerContext>;
    /**
     * Sets a PEC's state through the long-running PUT, bounded by the configured deadline. Resolves with the PEC as
     * ARM reports it afterwards. A deadline, throttling or 5xx surfaces as a TransientError. Pass the PEC if you have
     * just read it, to save a read.
     */
    setPecState(pec: PecRef, status: DecisionStatus, description: string, known?: Pec): Promise<Pec>;
    /**
     * Starts loading what the calls for this kind of server need (its SDK), so that the load overlaps the caller's
     * other I/O instead of delaying its first ARM call. Never fails: a load that fails is retried by that call.
     */
    prepare?(kind: ServerKind): void;
}

import type { PecRef, ServerRef } from './ids';

/** The connection states ARM reports. `Disconnected` exists on single servers only. */
export type PecStatus = 'Pending' | 'Approved' | 'Rejected' | 'Disconnected';

/** A Private Endpoint Connection as read from ARM, normalised across the four server kinds. */
export interface Pec {
    ref: PecRef;
    /** The full ARM id as ARM returned it (original casing). */
    id: string;
    /** The private endpoint on the requester's side; often in another subscription or tenant. */
    privateEndpointId: string;
    status: PecStatus;
    /** While pending this is the requester's request message; after a decision it is the approver's text. */
    description: string;
    provisioningState: string;
}

export type PublicNetworkAccess = 'Enabled' | 'Disabled' | 'Unknown';

/** What an approver needs to know about the server to judge the risk of a new connection. */
export interface ServerContext {
    ref: ServerRef;
    /** The id as ARM returned it. */
    id: string;
    location: string;
    publicNetworkAccess: PublicNetworkAccess;
    tags: Record<string, string>;
    /** The PECs that already reach this server. */
    approvedPecs: Pec[];
}

export type DecisionStatus = 'Approved' | 'Rejected';

export function normaliseStatus(value: string | undefined): PecStatus | undefined {
    switch (value?.toLowerCase()) {
        case 'pending':
            return 'Pending';
        case 'approved':
            return 'Approved';
        case 'rejected':
            return 'Rejected';
        case 'disconnected':
            return 'Disconnected';
        default:
            return undefined;
    }
}

export function normalisePublicNetworkAccess(value: string | undefined): PublicNetworkAccess {
    switch (value?.toLowerCase()) {
        case 'enabled':
            return 'Enabled';
        case 'disabled':
            return 'Disabled';
        default:
            return 'Unknown';
    }
}

/**
 * Settled provisioning states: single servers (and Azure SQL) say Ready, the others Succeeded. A connection without
 * one (the AI services examples carry none) has nothing in flight to wait for.
 */
export function isSettled(provisioningState: string): boolean {
    return ['', 'ready', 'succeeded'].includes(provisioningState.toLowerCase());
}

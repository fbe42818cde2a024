import { parsePrivateEndpointId } from './ids';

/**
 * Where a private endpoint comes from, judged against the subscriptions we trust. A PE from a subscription we do not
 * know is the exfiltration risk this product exists for, so "unknown" is never treated as trusted.
 */
export interface Origin {
    subscriptionId: string | undefined;
    trusted: boolean;
    /** Human-readable reason, shown on the card. */
    reason: string;
}

export function assessOrigin(privateEndpointId: string, trustedSubscriptionIds: readonly string[]): Origin {
    let subscriptionId: string;
    try {
        subscriptionId = parsePrivateEndpointId(privateEndpointId).subscriptionId;
    } catch {
        return {
            subscriptionId: undefined,
            trusted: false,
            reason: 'The private endpoint id could not be parsed; its subscription is unknown',
        };
    }
    const trusted = trustedSubscriptionIds.some((s) => s.toLowerCase() === subscriptionId.toLowerCase());
    return {
        subscriptionId,
        trusted,
        reason: trusted
            ? 'The private endpoint is in a trusted subscription'
            : 'The private endpoint is in a subscription that is NOT in the trusted list',
    };
}

/** The requester's tenant against ours. Undefined when the event carried no tenant claim. */
export function isForeignTenant(requesterTenantId: string | undefined, ourTenantId: string): boolean | undefined {
    if (!requesterTenantId) {
        return undefined;
    }
    return requesterTenantId.toLowerCase() !== ourTenantId.toLowerCase();
}

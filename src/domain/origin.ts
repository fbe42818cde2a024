import { parsePrivateEndpointId } from './ids';

/**
 * Where a private endpoint comes from. The endpoint's subscription is the one fact nobody outside can shape: it is
 * part of the endpoint's resource id, which ARM itself reports on the connection. Its tenant is established from the
 * subscription (the trusted list, the SUBSCRIPTION_TENANTS map, or ARM's own answer about the subscription's home
 * tenant), never from the `tid` claim of whoever caused the event: with Azure Lighthouse or guest access, a user of
 * our tenant acts on another tenant's subscription with our tenant's token.
 */

/** How the origin was established; shown on the card and the page, and recorded with the request. */
export const originSources = ['trusted-list', 'mapped', 'looked-up', 'unknown'] as const;
export type OriginSource = (typeof originSources)[number];

export interface Origin {
    subscriptionId: string | undefined;
    trusted: boolean;
    /** The home tenant of the endpoint's subscription, when it could be established. */
    tenantId?: string;
    source: OriginSource;
    /** Human-readable reason, shown on the card. */
    reason: string;
}

/** What a subscription's tenant is known as, from the map setting or from ARM. */
export interface SubscriptionTenant {
    tenantId: string;
    source: 'mapped' | 'looked-up';
}

/** The endpoint's subscription, or undefined when its id is not a private endpoint id. */
export function endpointSubscriptionOf(privateEndpointId: string): string | undefined {
    try {
        return parsePrivateEndpointId(privateEndpointId).subscriptionId;
    } catch {
        return undefined;
    }
}

export function isTrustedSubscription(subscriptionId: string | undefined, trusted: readonly string[]): boolean {
    return subscriptionId !== undefined && trusted.some((s) => s.toLowerCase() === subscriptionId.toLowerCase());
}

/**
 * The trusted list alone, with no tenant: what can be said without I/O. Used where only trust matters (counting the
 * server's untrusted connections).
 */
export function assessOrigin(privateEndpointId: string, trustedSubscriptionIds: readonly string[]): Origin {
    return originFrom(privateEndpointId, trustedSubscriptionIds, undefined, '');
}

/**
 * The origin from the trusted list and the subscription's tenant as established (undefined when it could not be). A
 * listed subscription stays trusted when its tenant is ours or unknown, and is not when it is known to be another's.
 */
export function originFrom(
    privateEndpointId: string,
    trustedSubscriptionIds: readonly string[],
    tenant: SubscriptionTenant | undefined,
    ourTenantId: string,
): Origin {
    const subscriptionId = endpointSubscriptionOf(privateEndpointId);
    if (subscriptionId === undefined) {
        return {
            subscriptionId: undefined,
            trusted: false,
            source: 'unknown',
            reason: 'The private endpoint id could not be parsed; its subscription is unknown',
        };
    }
    if (isTrustedSubscription(subscriptionId, trustedSubscriptionIds)) {
        if (tenant && tenant.tenantId.toLowerCase() !== ourTenantId.toLowerCase()) {
            // On the list, but its home tenant is another (moved with "change directory", or a wrong id listed):
            // whoever runs that tenant now is not who the list meant to trust.
            return {
                subscriptionId,
                trusted: false,
                tenantId: tenant.tenantId.toLowerCase(),
                source: tenant.source,
                reason: 'The private endpoint is in a subscription on the trusted list that belongs to ANOTHER tenant',
            };
        }
        return {
            subscriptionId,
            trusted: true,
            ...(tenant ? { tenantId: tenant.tenantId.toLowerCase() } : {}),
            source: 'trusted-list',
            reason: 'The private endpoint is in a trusted subscription',
        };
    }
    if (!tenant) {
        return {
            subscriptionId,
            trusted: false,
            source: 'unknown',
            reason: 'The private endpoint is in an untrusted subscription whose tenant could not be established',
        };
    }
    const ours = tenant.tenantId.toLowerCase() === ourTenantId.toLowerCase();
    return {
        subscriptionId,
        trusted: false,
        tenantId: tenant.tenantId.toLowerCase(),
        source: tenant.source,
        reason: ours
            ? 'The private endpoint is in an untrusted subscription of our tenant'
            : 'The private endpoint is in a subscription of ANOTHER tenant',
    };
}

/** How the origin was established, in words for the card and the page. */
export function originSourceLabel(source: OriginSource | undefined): string {
    switch (source) {
        case 'trusted-list':
            return 'trusted subscription list';
        case 'mapped':
            return 'SUBSCRIPTION_TENANTS setting';
        case 'looked-up':
            return "looked up from the subscription's home tenant";
        default:
            return 'unknown: the subscription could not be looked up';
    }
}

/**
 * The tenant id at the end of the `authorization_uri` of ARM's `WWW-Authenticate` answer to an unauthenticated request
 * about a subscription (`Bearer authorization_uri="https://login.windows.net/{tenantId}", error=…`). The host differs by
 * cloud, so only the last path segment is read, and only a GUID is accepted.
 */
export function tenantFromWwwAuthenticate(header: string | undefined): string | undefined {
    if (!header) {
        return undefined;
    }
    const uri = /authorization_uri\s*=\s*"([^"]*)"/i.exec(header)?.[1];
    if (!uri) {
        return undefined;
    }
    let path: string;
    try {
        path = new URL(uri).pathname;
    } catch {
        return undefined;
    }
    const last = path.split('/').filter(Boolean).at(-1) ?? '';
    return /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(last)
        ? last.toLowerCase()
        : undefined;
}

/**
 * The requester's tenant against ours: shown on the card as what the event claimed, never used to judge the origin.
 * Undefined when the event carried no tenant claim.
 */
export function isForeignTenant(requesterTenantId: string | undefined, ourTenantId: string): boolean | undefined {
    if (!requesterTenantId) {
        return undefined;
    }
    return requesterTenantId.toLowerCase() !== ourTenantId.toLowerCase();
}

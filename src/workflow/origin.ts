import { ensureErrorType } from '../domain/errors';
import {
    endpointSubscriptionOf,
    isTrustedSubscription,
    originFrom,
    type Origin,
    type SubscriptionTenant,
} from '../domain/origin';
import type { Logger, WorkflowDeps } from './deps';

/**
 * Where a private endpoint comes from, established in this order: the trusted list, the SUBSCRIPTION_TENANTS map,
 * ARM's answer about the subscription's home tenant. Nothing the caller of an event sent is used. A lookup that fails
 * gives `unknown`, which no rule may auto-approve: failing safe costs a person's click, never a connection.
 */
export async function resolveOrigin(deps: WorkflowDeps, privateEndpointId: string, log?: Logger): Promise<Origin> {
    const { trustedSubscriptionIds, tenantId: ourTenantId } = deps.settings;
    const subscriptionId = endpointSubscriptionOf(privateEndpointId);
    let tenant: SubscriptionTenant | undefined;
    if (subscriptionId !== undefined && !isTrustedSubscription(subscriptionId, trustedSubscriptionIds)) {
        tenant = await tenantOf(deps, subscriptionId, log);
    }
    return originFrom(privateEndpointId, trustedSubscriptionIds, tenant, ourTenantId);
}

async function tenantOf(
    deps: WorkflowDeps,
    subscriptionId: string,
    log: Logger | undefined,
): Promise<SubscriptionTenant | undefined> {
    const mapped = deps.settings.subscriptionTenants?.[subscriptionId.toLowerCase()];
    if (mapped) {
        return { tenantId: mapped, source: 'mapped' };
    }
    if (!deps.tenants) {
        return undefined;
    }
    try {
        const found = await deps.tenants.tenantOf(subscriptionId);
        return found ? { tenantId: found, source: 'looked-up' } : undefined;
    } catch (err) {
        log?.warn(
            `The home tenant of subscription ${subscriptionId} could not be looked up: ${ensureErrorType(err).message}`,
        );
        return undefined;
    }
}

import { ensureErrorType } from '../domain/errors';
import { endpointSubscriptionOf, originFrom, type Origin, type SubscriptionTenant } from '../domain/origin';
import type { Logger, WorkflowDeps } from './deps';

/**
 * Where a private endpoint comes from: the trusted list, checked against the subscription's home tenant from the
 * SUBSCRIPTION_TENANTS map or ARM's answer. Nothing the caller of an event sent is used. A lookup that fails
 * gives `unknown`, which no rule may auto-approve: failing safe costs a person's click, never a connection.
 */
export async function resolveOrigin(deps: WorkflowDeps, privateEndpointId: string, log?: Logger): Promise<Origin> {
    const { trustedSubscriptionIds, tenantId: ourTenantId } = deps.settings;
    const subscriptionId = endpointSubscriptionOf(privateEndpointId);
    // Trusted subscriptions are looked up too (cached a day): a listed one that now belongs to another tenant is not
    // trusted. A failed lookup leaves a listed subscription trusted and any other unknown.
    const tenant = subscriptionId === undefined ? undefined : await tenantOf(deps, subscriptionId, log);
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

import type { EventGridEvent } from '@azure/functions';
import { pecEvents } from '../../functions/pecEvents';
import {
    ids,
    requestOf,
    resourceWriteEvent,
    seedPendingPec,
    startHarness,
    testContext,
    type Harness,
} from '../harness';

/**
 * Issue 18, point 1: the origin of an endpoint comes from its subscription's home tenant, never from the `tid` claim of
 * whoever caused the event. A policy that auto-approves endpoints of our own tenant must not approve a foreign one
 * created by a user of our tenant acting through Azure Lighthouse or as a guest: their token carries OUR tenant.
 */

const policy = {
    rules: [
        { id: 'our-tenant', match: { endpointOrigin: ['trusted', 'sameTenant'] }, action: { type: 'autoApprove' } },
    ],
};

/** An untrusted subscription, unknown to ARM: its tenant cannot be established. */
const unknownSubscription = 'c0c0c0c0-0000-4000-8000-00000000c0c0';
/** Our tenant's user, as a Lighthouse-delegated or guest user acting on another tenant's subscription would look. */
const ourUserClaims = {
    'http://schemas.microsoft.com/identity/claims/objectidentifier': 'e0e0e0e0-0000-4000-8000-00000000e0e0',
    'http://schemas.microsoft.com/identity/claims/tenantid': ids.tenant,
    name: 'Delegated Admin',
};

describe('endpoint origin is looked up, not taken from the caller', () => {
    let h: Harness;
    afterEach(async () => {
        await h.close();
    });

    async function open(peSubscriptionId: string) {
        const seeded = seedPendingPec(h.arm, 'postgres-flexible', { peSubscriptionId, serverName: 'pg-origin' });
        await pecEvents(
            resourceWriteEvent(seeded.pecId, { claims: ourUserClaims }) as unknown as EventGridEvent,
            testContext('pecEvents'),
        );
        return { seeded, request: await requestOf(h, seeded.pecId) };
    }

    it("judges a foreign subscription foreign although the caller's tid is ours (Lighthouse, guests)", async () => {
        h = await startHarness({ settings: { POLICY: JSON.stringify(policy), TRUSTED_SUBSCRIPTION_IDS: ids.ours } });
        const { request } = await open(ids.foreign);
        expect(request.status).toBe('pending');
        expect(request.decision).toBeUndefined();
        expect(request.facts).toMatchObject({
            privateEndpointTrusted: false,
            privateEndpointTenantId: ids.foreignTenant,
            originSource: 'looked-up',
        });
        // The lookup went to ARM without a token, about the endpoint's own subscription.
        expect(h.arm.requests.some((r) => r.path === `/subscriptions/${ids.foreign}`)).toBe(true);
        const card = JSON.stringify(h.bot.cards()[0]);
        expect(card).toContain(`belongs to ANOTHER tenant ${ids.foreignTenant}`);
        expect(card).toContain("looked up from the subscription's home tenant");
    });

    it('does not trust a listed subscription whose home tenant is now another (moved, or listed by mistake)', async () => {
        // Our subscription, moved to another directory (before this process started: a process asks as it starts,
        // and keeps the answer a day).
        h = await startHarness({
            settings: { POLICY: JSON.stringify(policy), TRUSTED_SUBSCRIPTION_IDS: ids.ours },
            subscriptionTenants: { [ids.ours]: ids.foreignTenant },
        });
        const { request } = await open(ids.ours);
        expect(request.status).toBe('pending');
        expect(request.facts).toMatchObject({
            privateEndpointTrusted: false,
            privateEndpointTenantId: ids.foreignTenant,
            originSource: 'looked-up',
        });
        expect(JSON.stringify(h.bot.cards()[0])).toContain(`belongs to ANOTHER tenant ${ids.foreignTenant}`);
    });

    it('keeps a listed subscription trusted when its tenant is ours or cannot be looked up', async () => {
        h = await startHarness({
            settings: {
                POLICY: JSON.stringify(policy),
                TRUSTED_SUBSCRIPTION_IDS: `${ids.ours},${unknownSubscription}`,
            },
        });
        const ours = await open(ids.ours);
        expect(ours.request).toMatchObject({ status: 'decided', policyRuleId: 'our-tenant' });
        expect(ours.request.facts).toMatchObject({ privateEndpointTrusted: true, privateEndpointTenantId: ids.tenant });
        // Asked as the process started (runtime.ts), so the event's own path made no lookup.
        expect(h.arm.requests.filter((r) => r.path === `/subscriptions/${ids.ours}`)).toEqual([]);
        const seeded = seedPendingPec(h.arm, 'postgres-flexible', { peSubscriptionId: unknownSubscription });
        await pecEvents(
            resourceWriteEvent(seeded.pecId, { claims: ourUserClaims }) as unknown as EventGridEvent,
            testContext('pecEvents'),
        );
        const listed = await requestOf(h, seeded.pecId);
        expect(listed).toMatchObject({ status: 'decided', policyRuleId: 'our-tenant' });
        expect(listed.facts).toMatchObject({ privateEndpointTrusted: true, originSource: 'trusted-list' });
    });

    it('auto-approves an untrusted subscription whose home tenant ARM says is ours', async () => {
        h = await startHarness({ settings: { POLICY: JSON.stringify(policy), TRUSTED_SUBSCRIPTION_IDS: ids.ours } });
        const { request } = await open(ids.second);
        expect(request).toMatchObject({ status: 'decided', policyRuleId: 'our-tenant' });
        expect(request.facts.originSource).toBe('looked-up');
    });

    it('treats a subscription whose tenant cannot be established as unknown, which no rule auto-approves', async () => {
        h = await startHarness({ settings: { POLICY: JSON.stringify(policy), TRUSTED_SUBSCRIPTION_IDS: ids.ours } });
        const { request } = await open(unknownSubscription);
        expect(request.status).toBe('pending');
        expect(request.facts.originSource).toBe('unknown');
        expect(request.facts.privateEndpointTenantId).toBeUndefined();
        expect(JSON.stringify(h.bot.cards()[0])).toContain('its origin is unknown');
    });

    it('uses the SUBSCRIPTION_TENANTS map before asking ARM', async () => {
        h = await startHarness({
            settings: {
                POLICY: JSON.stringify(policy),
                TRUSTED_SUBSCRIPTION_IDS: ids.ours,
                SUBSCRIPTION_TENANTS: `${unknownSubscription}=${ids.foreignTenant}`,
            },
        });
        const { request } = await open(unknownSubscription);
        expect(request.status).toBe('pending');
        expect(request.facts).toMatchObject({ privateEndpointTenantId: ids.foreignTenant, originSource: 'mapped' });
        expect(h.arm.requests.some((r) => r.path === `/subscriptions/${unknownSubscription}`)).toBe(false);
        expect(JSON.stringify(h.bot.cards()[0])).toContain('SUBSCRIPTION_TENANTS setting');
    });
});

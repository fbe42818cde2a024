import { tenantFromWwwAuthenticate } from '../../src/domain/origin';
import { ArmSubscriptionTenants, InMemorySubscriptionTenants, missTtlMs } from '../../src/identity/subscriptionTenants';
import { ArmEmulator } from '../emulators/arm';

const sub = '0b1c2d3e-aaaa-4bbb-8ccc-000000000001';
const tenant = '9a1b2c3d-0000-4000-8000-00000000beef';

describe('tenantFromWwwAuthenticate', () => {
    it('reads the tenant at the end of authorization_uri, whatever the cloud', () => {
        const header = (uri: string) =>
            `Bearer authorization_uri="${uri}", error="invalid_token", error_description="missing header"`;
        expect(tenantFromWwwAuthenticate(header(`https://login.windows.net/${tenant}`))).toBe(tenant);
        expect(tenantFromWwwAuthenticate(header(`https://login.microsoftonline.us/${tenant.toUpperCase()}/`))).toBe(
            tenant,
        );
        expect(tenantFromWwwAuthenticate(header(`https://login.chinacloudapi.cn/${tenant}`))).toBe(tenant);
    });

    it('answers nothing rather than guess', () => {
        expect(tenantFromWwwAuthenticate(undefined)).toBeUndefined();
        expect(tenantFromWwwAuthenticate('Bearer realm="x"')).toBeUndefined();
        expect(
            tenantFromWwwAuthenticate('Bearer authorization_uri="https://login.windows.net/common"'),
        ).toBeUndefined();
        expect(tenantFromWwwAuthenticate('Bearer authorization_uri="not a url"')).toBeUndefined();
        expect(
            tenantFromWwwAuthenticate(`Bearer authorization_uri="https://login.windows.net/${tenant}/x"`),
        ).toBeUndefined();
    });
});

describe('ArmSubscriptionTenants against the ARM emulator', () => {
    let arm: ArmEmulator;
    beforeEach(async () => {
        arm = await ArmEmulator.start({ expectedAudience: 'self' });
        arm.setSubscriptionTenant(sub, tenant);
    });
    afterEach(() => arm.close());

    const lookup = (now?: () => number) =>
        new ArmSubscriptionTenants({
            endpoint: arm.url,
            maxRetries: 2,
            retryDelayInMs: 10,
            timeoutMs: 5_000,
            ...(now ? { now } : {}),
        });

    it('asks without a token and reads the home tenant from the 401, once per process', async () => {
        const tenants = lookup();
        const [a, b] = await Promise.all([tenants.tenantOf(sub), tenants.tenantOf(sub.toUpperCase())]);
        expect([a, b]).toEqual([tenant, tenant]);
        expect(await tenants.tenantOf(sub)).toBe(tenant);
        const asked = arm.requests.filter((r) => r.path === `/subscriptions/${sub}`);
        expect(asked).toHaveLength(1);
        expect(asked[0]?.apiVersion).toBe('2022-12-01');
    });

    it('answers undefined for a subscription ARM does not know, and asks again after a short while', async () => {
        let clock = 0;
        const tenants = lookup(() => clock);
        const other = '0b1c2d3e-aaaa-4bbb-8ccc-00000000ffff';
        expect(await tenants.tenantOf(other)).toBeUndefined();
        arm.setSubscriptionTenant(other, tenant);
        expect(await tenants.tenantOf(other)).toBeUndefined();
        clock += missTtlMs + 1;
        expect(await tenants.tenantOf(other)).toBe(tenant);
    });

    it('retries a throttled or failing lookup through the pipeline', async () => {
        arm.faults.add({ kind: 'throttle', retryAfterSeconds: 0 }, { times: 1, pathIncludes: `/subscriptions/${sub}` });
        arm.faults.add({ kind: 'error', status: 503 }, { times: 1, pathIncludes: `/subscriptions/${sub}` });
        expect(await lookup().tenantOf(sub)).toBe(tenant);
    });

    it('fails a lookup still throttled after its retries, and every caller within a short while sees the failure', async () => {
        let clock = 0;
        const tenants = lookup(() => clock);
        arm.faults.add({ kind: 'error', status: 503 }, { times: 3, pathIncludes: `/subscriptions/${sub}` });
        await expect(tenants.tenantOf(sub)).rejects.toThrow(/ARM answered 503/);
        // Kept as a failure, not as "no tenant": the next caller logs it too, and ARM is not asked again meanwhile.
        await expect(tenants.tenantOf(sub)).rejects.toThrow(/ARM answered 503/);
        expect(arm.requests.filter((r) => r.path === `/subscriptions/${sub}`)).toHaveLength(3);
        clock += missTtlMs + 1;
        expect(await tenants.tenantOf(sub)).toBe(tenant);
    });

    it('warm() looks the tenant up ahead, and leaves no failure behind for the first judgement to inherit', async () => {
        const tenants = lookup(() => 0);
        arm.faults.add({ kind: 'error', status: 503 }, { times: 3, pathIncludes: `/subscriptions/${sub}` });
        await tenants.warm(sub);
        // The judgement asks again at once (and would report its own failure).
        expect(await tenants.tenantOf(sub)).toBe(tenant);
        expect(arm.requests.filter((r) => r.path === `/subscriptions/${sub}`)).toHaveLength(4);
        // A found tenant is kept: warming again asks nothing.
        await tenants.warm(sub.toUpperCase());
        expect(arm.requests.filter((r) => r.path === `/subscriptions/${sub}`)).toHaveLength(4);
    });

    it('throws when ARM cannot be reached, so the caller records the origin as unknown', async () => {
        const tenants = new ArmSubscriptionTenants({
            endpoint: 'https://127.0.0.1:9',
            maxRetries: 0,
            retryDelayInMs: 1,
            timeoutMs: 1_000,
        });
        await expect(tenants.tenantOf(sub)).rejects.toThrow();
    });
});

describe('InMemorySubscriptionTenants', () => {
    it('answers from its map, case-insensitively, and records what was asked', async () => {
        const tenants = new InMemorySubscriptionTenants({ [sub.toUpperCase()]: tenant });
        expect(await tenants.tenantOf(sub)).toBe(tenant);
        expect(await tenants.tenantOf('other')).toBeUndefined();
        expect(tenants.asked).toEqual([sub, 'other']);
    });
});

import { principalFromHeaders } from '../../src/web/easyAuth';
import documented from './fixtures/easyauth-client-principal.json';

/**
 * App Service Authentication's `X-MS-CLIENT-PRINCIPAL`, in the documented shape and with the documented claim
 * mapping (the object id and tenant arrive under their long URI types, the sign-in name as preferred_username).
 */

function headers(values: Record<string, string>): { get(name: string): string | null } {
    return { get: (name) => values[name.toLowerCase()] ?? null };
}

function encoded(principal: unknown): string {
    return Buffer.from(JSON.stringify(principal), 'utf8').toString('base64');
}

const platform = { WEBSITE_AUTH_ENABLED: 'True', WEBSITE_SITE_NAME: 'pec-gate-app' };

describe('the documented client principal (Microsoft Learn, work with user identities in App Service authentication)', () => {
    it('yields the object id, tenant, name and sign-in name from the mapped claim types', () => {
        const result = principalFromHeaders(
            headers({ 'x-ms-client-principal': encoded(documented.principal) }),
            platform,
        );
        expect(result).toEqual({
            principal: {
                objectId: '3f1c7a52-9d2e-4b8a-a1c3-5e6f7a8b9c0d',
                tenantId: '72f988bf-86f1-41af-91ab-2d7cd011db47',
                name: 'Alice Example',
                upn: 'alice@contoso.com',
                identityProvider: 'aad',
            },
        });
    });

    it('refuses the same header when the platform has not turned authentication on (the header is then forgeable)', () => {
        const result = principalFromHeaders(headers({ 'x-ms-client-principal': encoded(documented.principal) }), {
            WEBSITE_SITE_NAME: 'pec-gate-app',
        });
        expect(result).toEqual({ refused: { status: 401, reason: expect.stringContaining('WEBSITE_AUTH_ENABLED') } });
    });
});

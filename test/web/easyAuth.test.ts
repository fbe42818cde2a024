import {
    CLIENT_PRINCIPAL_MAX_LENGTH,
    encodeClientPrincipal,
    principalFromHeaders,
    type EasyAuthEnvironment,
    type PrincipalResult,
} from '../../src/web/easyAuth';

const oid = '5B5450DB-EB26-4C1A-981C-BA1D25F0483D';
const tid = 'aaaaaaaa-aaaa-aaaa-aaaa-aaaaaaaaaaaa';
const authOn: EasyAuthEnvironment = { WEBSITE_AUTH_ENABLED: 'True', WEBSITE_SITE_NAME: 'pec-gate' };

function headersWith(value?: string): Headers {
    const headers = new Headers();
    if (value !== undefined) {
        headers.set('x-ms-client-principal', value);
    }
    return headers;
}

function encodeJson(value: unknown): string {
    return Buffer.from(JSON.stringify(value), 'utf8').toString('base64');
}

function refusal(result: PrincipalResult): { status: number; reason: string } | undefined {
    return 'refused' in result ? result.refused : undefined;
}

const valid = encodeClientPrincipal({
    objectId: oid,
    tenantId: tid,
    name: 'Alice Approver',
    upn: 'alice@contoso.example',
});

describe('principalFromHeaders: when the header may be trusted', () => {
    it('refuses with 401 when App Service Authentication is off, never reading the forged header', () => {
        const get = jest.fn((_name: string): string | null => valid);
        for (const env of [
            {},
            { WEBSITE_AUTH_ENABLED: 'False' },
            { WEBSITE_AUTH_ENABLED: '' },
            { WEBSITE_SITE_NAME: 'x' },
        ]) {
            const result = principalFromHeaders({ get }, env);
            expect(refusal(result)?.status).toBe(401);
            expect(refusal(result)?.reason).toMatch(/App Service Authentication is off/);
        }
        expect(get).not.toHaveBeenCalled();
    });

    it('trusts a valid header when the platform says authentication is on (any casing)', () => {
        for (const flag of ['True', 'true', 'TRUE', ' true ']) {
            const result = principalFromHeaders(headersWith(valid), { ...authOn, WEBSITE_AUTH_ENABLED: flag });
            expect(result).toEqual({
                principal: {
                    objectId: oid.toLowerCase(),
                    tenantId: tid,
                    name: 'Alice Approver',
                    upn: 'alice@contoso.example',
                    identityProvider: 'aad',
                },
            });
        }
    });

    it('refuses with 401 when authentication is on but nobody is signed in', () => {
        expect(refusal(principalFromHeaders(headersWith(), authOn))?.status).toBe(401);
        expect(refusal(principalFromHeaders(headersWith('  '), authOn))?.status).toBe(401);
    });

    it('lets the local stand-in trust the header outside Azure', () => {
        const result = principalFromHeaders(headersWith(valid), { DEV_TRUST_CLIENT_PRINCIPAL: 'true' });
        expect('principal' in result && result.principal.objectId).toBe(oid.toLowerCase());
    });

    it('refuses the local stand-in with 403 in Azure, even with authentication on, and says why', () => {
        const get = jest.fn((_name: string): string | null => valid);
        for (const env of [
            { DEV_TRUST_CLIENT_PRINCIPAL: 'true', WEBSITE_SITE_NAME: 'pec-gate' },
            { DEV_TRUST_CLIENT_PRINCIPAL: 'True', WEBSITE_SITE_NAME: 'pec-gate', WEBSITE_AUTH_ENABLED: 'True' },
        ]) {
            const result = refusal(principalFromHeaders({ get }, env));
            expect(result?.status).toBe(403);
            expect(result?.reason).toMatch(/DEV_TRUST_CLIENT_PRINCIPAL/);
            expect(result?.reason).toMatch(/WEBSITE_SITE_NAME/);
        }
        expect(get).not.toHaveBeenCalled();
    });

    it('ignores a stand-in that is not exactly true', () => {
        for (const flag of ['1', 'yes', 'false', '']) {
            const result = principalFromHeaders(headersWith(valid), { DEV_TRUST_CLIENT_PRINCIPAL: flag });
            expect(refusal(result)?.status).toBe(401);
        }
    });
});

describe('principalFromHeaders: the header itself', () => {
    const base = {
        auth_typ: 'aad',
        claims: [
            { typ: 'oid', val: oid },
            { typ: 'tid', val: tid },
        ],
        name_typ: 'http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress',
        role_typ: 'http://schemas.microsoft.com/ws/2008/06/identity/claims/role',
    };

    function check(value: string): { status: number; reason: string } | undefined {
        return refusal(principalFromHeaders(headersWith(value), authOn));
    }

    it('accepts the short claim names and the upn alternatives', () => {
        for (const typ of ['upn', 'http://schemas.xmlsoap.org/ws/2005/05/identity/claims/upn']) {
            const result = principalFromHeaders(
                headersWith(encodeJson({ ...base, claims: [...base.claims, { typ, val: 'bob@contoso.example' }] })),
                authOn,
            );
            expect(result).toEqual({
                principal: {
                    objectId: oid.toLowerCase(),
                    tenantId: tid,
                    upn: 'bob@contoso.example',
                    identityProvider: 'aad',
                },
            });
        }
    });

    it('prefers preferred_username and ignores extra claims and fields', () => {
        const claims = [
            ...base.claims,
            { typ: 'upn', val: 'second@contoso.example' },
            { typ: 'preferred_username', val: 'first@contoso.example' },
            { typ: 'groups', val: 'f08bbbea-b793-4a36-a5fc-136c18d8aa8f' },
            { typ: 'groups', val: '14a87ffa-0801-49bf-a515-3d259a2a9f8f' },
        ];
        const result = principalFromHeaders(headersWith(encodeJson({ ...base, claims, extra: 1 })), authOn);
        expect('principal' in result && result.principal.upn).toBe('first@contoso.example');
    });

    it('refuses what is not base64, not UTF-8 or not JSON', () => {
        expect(check('not base64!')?.status).toBe(401);
        expect(check('e30=, e30=')?.status).toBe(401);
        expect(check(Buffer.from([0xff, 0xfe, 0x7b]).toString('base64'))?.status).toBe(401);
        expect(check(Buffer.from('{"auth_typ":', 'utf8').toString('base64'))?.status).toBe(401);
        expect(check(Buffer.from('null', 'utf8').toString('base64'))?.status).toBe(401);
    });

    it('refuses JSON of the wrong shape', () => {
        expect(check(encodeJson({ auth_typ: 'aad' }))?.reason).toMatch(/Malformed/);
        expect(check(encodeJson({ ...base, claims: [{ typ: 'oid', val: 42 }] }))?.status).toBe(401);
        expect(check(encodeJson({ ...base, claims: 'oid' }))?.status).toBe(401);
        expect(check(encodeJson([base]))?.status).toBe(401);
    });

    it('refuses an oversized header before decoding it', () => {
        const padding = Array.from({ length: 2000 }, (_, i) => ({ typ: `c${i}`, val: 'x'.repeat(10) }));
        const big = encodeJson({ ...base, claims: [...base.claims, ...padding] });
        expect(big.length).toBeGreaterThan(CLIENT_PRINCIPAL_MAX_LENGTH);
        expect(check(big)?.reason).toMatch(/too large/);
    });

    it('refuses an identity provider other than Entra', () => {
        for (const idp of ['github', 'google', '']) {
            expect(check(encodeJson({ ...base, auth_typ: idp }))?.status).toBe(401);
        }
        expect(check(encodeJson({ ...base, auth_typ: 'AAD' }))).toBeUndefined();
    });

    it('refuses a missing, empty, non-GUID or ambiguous object id', () => {
        expect(check(encodeJson({ ...base, claims: [{ typ: 'tid', val: tid }] }))?.reason).toMatch(
            /no Entra object id/,
        );
        expect(check(encodeJson({ ...base, claims: [{ typ: 'oid', val: ' ' }] }))?.status).toBe(401);
        expect(check(encodeJson({ ...base, claims: [{ typ: 'oid', val: 'alice' }] }))?.reason).toMatch(/not a GUID/);
        const twoOids = [
            { typ: 'oid', val: oid },
            { typ: 'http://schemas.microsoft.com/identity/claims/objectidentifier', val: tid },
        ];
        expect(check(encodeJson({ ...base, claims: twoOids }))?.reason).toMatch(/conflicting/);
        // The same id under both names is not a conflict.
        const sameOid = [
            { typ: 'oid', val: oid },
            { typ: 'http://schemas.microsoft.com/identity/claims/objectidentifier', val: oid.toLowerCase() },
        ];
        expect(check(encodeJson({ ...base, claims: sameOid }))).toBeUndefined();
    });

    it('refuses a tenant id that is not a GUID, and allows none', () => {
        const claims = [
            { typ: 'oid', val: oid },
            { typ: 'tid', val: 'contoso' },
        ];
        expect(check(encodeJson({ ...base, claims }))?.status).toBe(401);
        const result = principalFromHeaders(
            headersWith(encodeJson({ ...base, claims: [{ typ: 'oid', val: oid }] })),
            authOn,
        );
        expect(result).toEqual({ principal: { objectId: oid.toLowerCase(), identityProvider: 'aad' } });
    });

    it('strips control and bidi characters from display names', () => {
        const claims = [...base.claims, { typ: 'name', val: 'Al\u202Eice\u0000 \n Approver' }];
        const result = principalFromHeaders(headersWith(encodeJson({ ...base, claims })), authOn);
        expect('principal' in result && result.principal.name).toBe('Alice Approver');
    });
});

describe('encodeClientPrincipal', () => {
    it("produces the platform's format: base64 JSON with auth_typ, claims, name_typ and role_typ", () => {
        const decoded = JSON.parse(Buffer.from(valid, 'base64').toString('utf8')) as Record<string, unknown>;
        expect(Object.keys(decoded)).toEqual(['auth_typ', 'claims', 'name_typ', 'role_typ']);
        expect(decoded.auth_typ).toBe('aad');
        expect(decoded.claims).toEqual([
            { typ: 'http://schemas.microsoft.com/identity/claims/objectidentifier', val: oid },
            { typ: 'http://schemas.microsoft.com/identity/claims/tenantid', val: tid },
            { typ: 'name', val: 'Alice Approver' },
            { typ: 'preferred_username', val: 'alice@contoso.example' },
        ]);
    });

    it('round-trips through principalFromHeaders with only an object id', () => {
        const result = principalFromHeaders(headersWith(encodeClientPrincipal({ objectId: oid })), authOn);
        expect(result).toEqual({ principal: { objectId: oid.toLowerCase(), identityProvider: 'aad' } });
    });
});

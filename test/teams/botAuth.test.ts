import { ConfigError, UnauthorizedError } from '../../src/domain/errors';
import { BotTokenVerifier, type BotAuthSettings } from '../../src/teams/botAuth';
import { BotIdentityEmulator } from '../emulators/botIdentity';

/**
 * The inbound Bot Framework token check against an emulated login.botframework.com (https, keys of its own). Time is
 * moved through the verifier's injected clock, never by sleeping.
 */

const audience = '5e1f0c2a-0000-0000-0000-00000000b07a';
const serviceUrl = 'https://smba.trafficmanager.net/teams/';
const activity = { serviceUrl, channelId: 'msteams' };
const t0 = new Date('2030-01-01T12:00:00Z');

describe('BotTokenVerifier', () => {
    let identity: BotIdentityEmulator;
    let clock: Date;

    beforeAll(async () => {
        identity = await BotIdentityEmulator.start();
    });
    afterAll(() => identity.close());
    beforeEach(() => {
        clock = t0;
        identity.faults.clear();
        identity.requests.length = 0;
    });

    const verifier = (settings: Partial<BotAuthSettings> = {}) =>
        new BotTokenVerifier({ openIdMetadataUrl: identity.metadataUrl, audience, now: () => clock, ...settings });
    const advance = (seconds: number) => {
        clock = new Date(clock.getTime() + seconds * 1000);
    };
    const valid = (overrides: Record<string, unknown> = {}, options: Parameters<BotIdentityEmulator['sign']>[1] = {}) =>
        identity.tokenFor({ audience, serviceUrl, ...overrides }, { issuedAt: t0, ...options });

    async function refused(promise: Promise<unknown>, reason: RegExp): Promise<UnauthorizedError> {
        const err: unknown = await promise.then(
            () => {
                throw new Error('expected the token to be refused');
            },
            (e: unknown) => e,
        );
        expect(err).toBeInstanceOf(UnauthorizedError);
        expect((err as Error).message).toMatch(reason);
        return err as UnauthorizedError;
    }

    describe('accepts', () => {
        it('a valid Connector token, and returns the caller', async () => {
            const caller = await verifier().verify(`Bearer ${await valid({ appId: 'connector-app' })}`, activity);
            expect(caller.serviceUrl).toBe(serviceUrl);
            expect(caller.appId).toBe('connector-app');
            expect(caller.claims).toMatchObject({ iss: identity.issuer, aud: audience, serviceurl: serviceUrl });
        });

        it('the scheme in any case', async () => {
            await expect(verifier().verify(`bEARER ${await valid()}`, activity)).resolves.toBeDefined();
        });

        it('a serviceUrl that differs from the claim by one trailing slash, either way', async () => {
            const noSlash = serviceUrl.replace(/\/$/, '');
            const v = verifier();
            await expect(v.verify(`Bearer ${await valid({ serviceUrl: noSlash })}`, activity)).resolves.toBeDefined();
            await expect(
                v.verify(`Bearer ${await valid()}`, { ...activity, serviceUrl: noSlash }),
            ).resolves.toBeDefined();
        });

        it('an activity without channelId (endorsements only bind when there is a channel)', async () => {
            await expect(verifier().verify(`Bearer ${await valid()}`, { serviceUrl })).resolves.toBeDefined();
        });

        it('an expired token within the 5 minutes of clock skew', async () => {
            const token = await valid();
            clock = new Date(t0.getTime() + (3600 + 299) * 1000);
            await expect(verifier().verify(`Bearer ${token}`, activity)).resolves.toBeDefined();
        });

        it('another issuer when the setting says so', async () => {
            const token = await valid({ iss: 'https://api.botframework.us' });
            await expect(
                verifier({ issuer: 'https://api.botframework.us' }).verify(`Bearer ${token}`, activity),
            ).resolves.toBeDefined();
        });
    });

    describe('refuses, before any key fetch,', () => {
        afterEach(() => expect(identity.requests).toEqual([]));

        it('a request without Authorization', async () => {
            await refused(verifier().verify(undefined, activity), /missing Authorization/);
            await refused(verifier().verify('  ', activity), /missing Authorization/);
        });

        it('a scheme other than Bearer', async () => {
            const token = await valid();
            await refused(verifier().verify(`Basic ${token}`, activity), /not a Bearer token/);
            await refused(verifier().verify(token, activity), /not a Bearer token/);
            await refused(verifier().verify('Bearer ', activity), /not a Bearer token/);
            await refused(verifier().verify(`Bearer ${token} extra`, activity), /not a Bearer token/);
        });

        it.each(['abc', 'a.b.c', 'a.b', '...', 'eyJhbGciOiJSUzI1NiJ9.e30', 'a.b.c.d.e'])(
            'a malformed token (%s)',
            async (token) => {
                await refused(verifier().verify(`Bearer ${token}`, activity), /malformed token/);
            },
        );

        it('an unsigned token (alg none)', async () => {
            const token = identity.unsignedToken({ iss: identity.issuer, aud: audience, serviceurl: serviceUrl });
            await refused(verifier().verify(`Bearer ${token}`, activity), /algorithm not allowed/);
        });

        it('HS256 keyed with the public key (algorithm confusion) or any secret', async () => {
            const v = verifier();
            await refused(v.verify(`Bearer ${await valid({}, { alg: 'HS256' })}`, activity), /algorithm not allowed/);
            const secret = new TextEncoder().encode('a shared secret that is long enough for HS256');
            await refused(
                v.verify(`Bearer ${await valid({}, { alg: 'HS256', secret })}`, activity),
                /algorithm not allowed/,
            );
        });

        it.each(['RS512', 'PS256'])('another RSA algorithm (%s)', async (alg) => {
            await refused(verifier().verify(`Bearer ${await valid({}, { alg })}`, activity), /algorithm not allowed/);
        });

        it('a token without kid', async () => {
            await refused(verifier().verify(`Bearer ${await valid({}, { kid: '' })}`, activity), /no key id/);
        });
    });

    describe('refuses', () => {
        it('a token signed by a key the JWKS does not serve', async () => {
            await refused(verifier().verify(`Bearer ${await valid({}, { key: 'unknown' })}`, activity), /unknown key/);
        });

        it('a token that names a served kid but was signed by another key', async () => {
            const token = await valid({}, { key: 'unknown', kid: identity.currentKid });
            await refused(verifier().verify(`Bearer ${token}`, activity), /signature invalid/);
        });

        it('a token with a tampered payload', async () => {
            const [header, , signature] = (await valid()).split('.');
            const payload = Buffer.from(
                JSON.stringify({ iss: identity.issuer, aud: audience, serviceurl: 'https://evil.example/', exp: 2e9 }),
            ).toString('base64url');
            await refused(
                verifier().verify(`Bearer ${header}.${payload}.${signature}`, { serviceUrl: 'https://evil.example/' }),
                /signature invalid/,
            );
        });

        it('an expired token beyond the 5 minutes of skew', async () => {
            const token = await valid();
            clock = new Date(t0.getTime() + (3600 + 301) * 1000);
            await refused(verifier().verify(`Bearer ${token}`, activity), /expired/);
        });

        it('an expired token with a smaller tolerance setting', async () => {
            const token = await valid();
            clock = new Date(t0.getTime() + (3600 + 10) * 1000);
            await refused(verifier({ clockToleranceSeconds: 5 }).verify(`Bearer ${token}`, activity), /expired/);
        });

        it('a token without exp', async () => {
            await refused(verifier().verify(`Bearer ${await valid({ exp: undefined })}`, activity), /"exp".*missing/);
        });

        it('a token not yet valid (nbf beyond the skew)', async () => {
            const v = verifier();
            await refused(v.verify(`Bearer ${await valid({}, { notBeforeSeconds: 301 })}`, activity), /"nbf" rejected/);
            // ...while a token from a clock a little ahead is fine.
            await expect(
                v.verify(`Bearer ${await valid({}, { notBeforeSeconds: 299 })}`, activity),
            ).resolves.toBeDefined();
        });

        it('a token for another audience', async () => {
            await refused(
                verifier().verify(`Bearer ${await valid({ audience: 'some-other-bot' })}`, activity),
                /"aud" rejected/,
            );
            await refused(verifier().verify(`Bearer ${await valid({ aud: undefined })}`, activity), /"aud"/);
        });

        it('a token from another issuer', async () => {
            const v = verifier();
            await refused(
                v.verify(`Bearer ${await valid({ iss: 'https://sts.windows.net/72f988bf/' })}`, activity),
                /"iss" rejected/,
            );
            await refused(
                v.verify(`Bearer ${await valid({ iss: 'https://api.botframework.com/' })}`, activity),
                /"iss" rejected/,
            );
            await refused(v.verify(`Bearer ${await valid({ iss: undefined })}`, activity), /"iss"/);
        });

        it('a serviceurl claim that does not match the activity', async () => {
            const v = verifier();
            const token = await valid();
            await refused(
                v.verify(`Bearer ${token}`, { ...activity, serviceUrl: 'https://evil.example/teams/' }),
                /serviceurl does not match/,
            );
            await refused(
                v.verify(`Bearer ${token}`, { ...activity, serviceUrl: `${serviceUrl}/` }),
                /serviceurl does not match/,
            );
            await refused(
                v.verify(`Bearer ${token}`, { ...activity, serviceUrl: serviceUrl.toUpperCase() }),
                /serviceurl does not match/,
            );
        });

        it('a token without serviceurl claim, or an activity without serviceUrl', async () => {
            const v = verifier();
            await refused(
                v.verify(`Bearer ${await valid({ serviceUrl: undefined })}`, activity),
                /no serviceurl claim/,
            );
            await refused(v.verify(`Bearer ${await valid()}`, { channelId: 'msteams' }), /activity has no serviceUrl/);
            await refused(v.verify(`Bearer ${await valid()}`, { serviceUrl: 42 }), /activity has no serviceUrl/);
        });

        it('an activity from a channel the signing key is not endorsed for', async () => {
            const v = verifier();
            await refused(v.verify(`Bearer ${await valid()}`, { ...activity, channelId: 'webchat' }), /not endorsed/);
            await refused(v.verify(`Bearer ${await valid()}`, { ...activity, channelId: ['msteams'] }), /channelId/);
        });

        it('never puts the token in the message', async () => {
            const token = await valid({ audience: 'some-other-bot' });
            const err = await refused(verifier().verify(`Bearer ${token}`, activity), /aud/);
            expect(err.message).not.toContain(token);
            expect(err.message).not.toContain(token.split('.')[1]);
        });
    });

    describe('keys', () => {
        it('reads the metadata and the JWKS once for many verifications, concurrent ones included', async () => {
            const v = verifier();
            const token = await valid();
            await Promise.all(Array.from({ length: 20 }, () => v.verify(`Bearer ${token}`, activity)));
            for (let i = 0; i < 5; i++) {
                await v.verify(`Bearer ${token}`, activity);
                advance(600);
            }
            expect(identity.metadataFetches).toBe(1);
            expect(identity.jwksFetches).toBe(1);
        });

        it('re-reads both after a day, so withdrawn keys do not live forever', async () => {
            const v = verifier();
            await v.verify(`Bearer ${await valid()}`, activity);
            advance(24 * 3600);
            await v.verify(`Bearer ${await valid({}, { issuedAt: clock })}`, activity);
            expect(identity.metadataFetches).toBe(2);
            expect(identity.jwksFetches).toBe(2);
        });

        it('refetches the JWKS once for a new kid after a rotation, and then accepts it', async () => {
            const own = await BotIdentityEmulator.start();
            try {
                const v = verifier({ openIdMetadataUrl: own.metadataUrl });
                const before = await own.tokenFor({ audience, serviceUrl }, { issuedAt: t0 });
                await v.verify(`Bearer ${before}`, activity);
                const kid = await own.rotateKey();
                const after = await own.tokenFor({ audience, serviceUrl }, { issuedAt: t0 });
                expect(after).not.toBe(before);
                const caller = await v.verify(`Bearer ${after}`, activity);
                expect(caller.serviceUrl).toBe(serviceUrl);
                await v.verify(`Bearer ${after}`, activity);
                await v.verify(`Bearer ${before}`, activity);
                expect(own.jwksFetches).toBe(2);
                expect(own.metadataFetches).toBe(1);
                expect(kid).toBe(own.currentKid);
            } finally {
                await own.close();
            }
        });

        it('refetches at most once per 30 s however many unknown kids arrive', async () => {
            const v = verifier();
            await v.verify(`Bearer ${await valid()}`, activity);
            const forged = await Promise.all(
                Array.from({ length: 25 }, (_, i) => valid({}, { key: 'unknown', kid: `forged-${i}` })),
            );
            const results = await Promise.allSettled(forged.map((t) => v.verify(`Bearer ${t}`, activity)));
            for (const t of forged.slice(0, 5)) {
                await refused(v.verify(`Bearer ${t}`, activity), /unknown key/);
            }
            expect(results.every((r) => r.status === 'rejected' && r.reason instanceof UnauthorizedError)).toBe(true);
            expect(identity.jwksFetches).toBe(2);

            advance(29);
            await refused(v.verify(`Bearer ${forged[0]}`, activity), /unknown key/);
            expect(identity.jwksFetches).toBe(2);
            advance(2);
            await refused(v.verify(`Bearer ${forged[0]}`, activity), /unknown key/);
            expect(identity.jwksFetches).toBe(3);
            expect(identity.metadataFetches).toBe(1);
            // Known keys keep working meanwhile.
            await expect(v.verify(`Bearer ${await valid()}`, activity)).resolves.toBeDefined();
        });

        it('refuses when the metadata endpoint is down, says the key fetch failed, and recovers', async () => {
            identity.faults.add({ kind: 'error', status: 503 }, { pathIncludes: 'openidconfiguration', times: 1 });
            const v = verifier();
            const token = await valid();
            await refused(v.verify(`Bearer ${token}`, activity), /signing key fetch failed: .*HTTP 503/);
            // A down endpoint does not turn every request into a fetch...
            await refused(v.verify(`Bearer ${token}`, activity), /signing key fetch failed/);
            expect(identity.metadataFetches).toBe(1);
            // ...and is tried again a few seconds later.
            advance(6);
            await expect(v.verify(`Bearer ${token}`, activity)).resolves.toBeDefined();
            expect(identity.metadataFetches).toBe(2);
        });

        it('refuses when the JWKS endpoint fails or drops the connection', async () => {
            identity.faults.add({ kind: 'error', status: 500 }, { pathIncludes: 'keys' });
            await refused(verifier().verify(`Bearer ${await valid()}`, activity), /signing key fetch failed: JWKS/);
            identity.faults.add({ kind: 'drop' }, { pathIncludes: 'keys' });
            await refused(verifier().verify(`Bearer ${await valid()}`, activity), /signing key fetch failed/);
        });

        it('refuses when the metadata endpoint is unreachable', async () => {
            const gone = await BotIdentityEmulator.start();
            const url = gone.metadataUrl;
            await gone.close();
            await refused(
                verifier({ openIdMetadataUrl: url }).verify(`Bearer ${await valid()}`, activity),
                /signing key fetch failed: OpenID metadata unreachable \(ECONNREFUSED\)/,
            );
        });

        it('uses the keys of the JWKS only: a key without endorsements binds no channel', async () => {
            const open = await BotIdentityEmulator.start({ endorsements: null });
            try {
                const token = await open.tokenFor({ audience, serviceUrl }, { issuedAt: t0 });
                await expect(
                    verifier({ openIdMetadataUrl: open.metadataUrl }).verify(`Bearer ${token}`, {
                        serviceUrl,
                        channelId: 'webchat',
                    }),
                ).resolves.toBeDefined();
            } finally {
                await open.close();
            }
        });
    });

    describe('tokens of a single-tenant bot, issued by our tenant', () => {
        const ours = '11111111-2222-4333-8444-555555555555';
        const theirs = '99999999-8888-4777-8666-555555555555';
        const tenantVerifier = (settings: Partial<BotAuthSettings> = {}) =>
            verifier({ tenant: { tenantId: ours, authorityHost: identity.authorityHost }, ...settings });
        const tenantToken = (
            version: 'v1' | 'v2',
            overrides: Record<string, unknown> = {},
            options: Parameters<BotIdentityEmulator['sign']>[1] = {},
            tenant = ours,
        ) =>
            identity.tenantTokenFor(
                tenant,
                version,
                { audience, serviceUrl, ...overrides },
                { issuedAt: t0, ...options },
            );

        beforeAll(async () => {
            await identity.addTenant(ours);
            await identity.addTenant(theirs);
        });

        it.each(['v2', 'v1'] as const)(
            'accepts a %s token of our tenant, with the keys of our tenant’s own metadata',
            async (version) => {
                const caller = await tenantVerifier().verify(`Bearer ${await tenantToken(version)}`, activity);
                expect(caller.serviceUrl).toBe(serviceUrl);
                expect(caller.claims.iss).toBe(identity.tenantIssuer(ours, version));
                const metadata =
                    version === 'v2'
                        ? `/${ours}/v2.0/.well-known/openid-configuration`
                        : `/${ours}/.well-known/openid-configuration`;
                expect(identity.requests).toEqual([metadata, `/${ours}/discovery/v2.0/keys`]);
            },
        );

        it('derives the issuers from the authority host, so a sovereign cloud names its own', () => {
            const us = verifier({ tenant: { tenantId: ours, authorityHost: 'https://login.microsoftonline.us/' } });
            expect(us.trustedIssuers).toEqual([
                identity.issuer,
                `https://login.microsoftonline.us/${ours}/v2.0`,
                `https://login.microsoftonline.us/${ours}/`,
            ]);
            const publicCloud = verifier({
                tenant: { tenantId: ours.toUpperCase(), authorityHost: 'https://login.microsoftonline.com' },
            });
            expect(publicCloud.trustedIssuers).toEqual([
                identity.issuer,
                `https://login.microsoftonline.com/${ours}/v2.0`,
                `https://sts.windows.net/${ours}/`,
            ]);
        });

        it('refuses, before any key fetch, a token whose issuer names another tenant', async () => {
            const v = tenantVerifier();
            for (const version of ['v1', 'v2'] as const) {
                // Genuinely issued by the other tenant, with its own keys, for our bot's audience.
                const token = await tenantToken(version, {}, {}, theirs);
                await refused(v.verify(`Bearer ${token}`, activity), /"iss" rejected \(not a trusted issuer\)/);
            }
            // The issuer of "common" or "organizations", and a look-alike of ours.
            for (const iss of [
                `${identity.authorityHost}/common/v2.0`,
                `${identity.authorityHost}/organizations/v2.0`,
                `${identity.authorityHost}/${ours}/v2.0/`,
                `https://sts.windows.net/${ours}`,
                `https://sts.windows.net/${ours}/`.toUpperCase(),
            ]) {
                await refused(v.verify(`Bearer ${await tenantToken('v2', { iss })}`, activity), /"iss" rejected/);
            }
            expect(identity.requests).toEqual([]);
        });

        it('refuses a token naming our tenant but signed with the keys of another tenant', async () => {
            const v = tenantVerifier();
            for (const version of ['v1', 'v2'] as const) {
                const token = await tenantToken(version, {}, { key: { tenant: theirs } });
                await refused(v.verify(`Bearer ${token}`, activity), /unknown key/);
            }
        });

        it('refuses an issuer signed with the other issuer’s keys, either way', async () => {
            const v = tenantVerifier();
            // Our tenant's issuer, the Bot Framework's key (which is in the Bot Framework's JWKS, not the tenant's).
            await refused(
                v.verify(`Bearer ${await tenantToken('v2', {}, { key: 'current' })}`, activity),
                /unknown key/,
            );
            await refused(
                v.verify(`Bearer ${await tenantToken('v1', {}, { key: 'current' })}`, activity),
                /unknown key/,
            );
            // The Bot Framework's issuer, our tenant's key.
            await refused(v.verify(`Bearer ${await valid({}, { key: { tenant: ours } })}`, activity), /unknown key/);
            // Another tenant's issuer is not trusted at all, whatever signed it.
            await refused(
                v.verify(`Bearer ${await tenantToken('v2', {}, { key: { tenant: ours } }, theirs)}`, activity),
                /"iss" rejected/,
            );
        });

        it('holds a tenant token to the same audience, serviceurl and expiry checks', async () => {
            const v = tenantVerifier();
            await refused(
                v.verify(`Bearer ${await tenantToken('v2', { serviceUrl: undefined })}`, activity),
                /no serviceurl claim/,
            );
            await refused(
                v.verify(`Bearer ${await tenantToken('v1', { serviceUrl: 'https://evil.example/teams/' })}`, activity),
                /serviceurl does not match/,
            );
            await refused(
                v.verify(`Bearer ${await tenantToken('v2')}`, { channelId: 'msteams' }),
                /activity has no serviceUrl/,
            );
            await refused(
                v.verify(`Bearer ${await tenantToken('v2', { audience: 'another-bot' })}`, activity),
                /"aud" rejected/,
            );
            await refused(
                v.verify(`Bearer ${await tenantToken('v2', {}, { expiresInSeconds: -600 })}`, activity),
                /expired/,
            );
        });

        it('refuses a tid claim that names another tenant than the issuer', async () => {
            await refused(
                tenantVerifier().verify(`Bearer ${await tenantToken('v2', { tid: theirs })}`, activity),
                /"tid" rejected/,
            );
        });

        it('refuses tenant tokens when no tenant is configured (the multi-tenant default)', async () => {
            await refused(verifier().verify(`Bearer ${await tenantToken('v2')}`, activity), /"iss" rejected/);
        });

        it('refuses the keys of a metadata document that names another issuer', async () => {
            identity.misnamedIssuers.set(ours, `${identity.authorityHost}/${theirs}/v2.0`);
            try {
                await refused(
                    tenantVerifier().verify(`Bearer ${await tenantToken('v2')}`, activity),
                    /signing key fetch failed: OpenID metadata does not name the issuer/,
                );
            } finally {
                identity.misnamedIssuers.delete(ours);
            }
        });

        it('rejects tenant settings that would weaken the check', () => {
            expect(() =>
                verifier({ tenant: { tenantId: ours, authorityHost: 'http://login.microsoftonline.com' } }),
            ).toThrow(ConfigError);
            expect(() => verifier({ tenant: { tenantId: 'common', authorityHost: identity.authorityHost } })).toThrow(
                ConfigError,
            );
        });
    });

    it('rejects settings that would weaken the check', () => {
        expect(() => verifier({ audience: ' ' })).toThrow(ConfigError);
        expect(() => verifier({ openIdMetadataUrl: 'http://login.botframework.com/v1/x' })).toThrow(ConfigError);
        expect(() => verifier({ clockToleranceSeconds: -1 })).toThrow(ConfigError);
    });
});

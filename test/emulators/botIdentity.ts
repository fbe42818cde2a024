import type { KeyObject } from 'node:crypto';
import { exportJWK, generateKeyPair, SignJWT, type JWK } from 'jose';
import { applyFault, FaultPlan, sendJson, startServer, type RunningServer } from './server';

/**
 * The Bot Framework's token key endpoints: an OpenID metadata document and the JWKS it points to, served over https
 * like login.botframework.com, with signing keys of its own. Tests mint Connector-like tokens with `tokenFor` (or any
 * claims with `sign`), including the forged and broken ones a verifier must refuse.
 *
 * The same server plays the Entra authority (its URL is the AZURE_AUTHORITY_HOST) for the tokens a single-tenant bot
 * receives from its own tenant, as login.microsoftonline.com publishes them: per tenant, the v2.0 metadata at
 * `/{tenant}/v2.0/.well-known/openid-configuration` (issuer `{authority}/{tenant}/v2.0`) and the v1 metadata at
 * `/{tenant}/.well-known/openid-configuration` (issuer `https://sts.windows.net/{tenant}/`), both pointing at
 * `/{tenant}/discovery/v2.0/keys`. Each tenant gets a signing key of its own (no endorsements, as Entra keys have none),
 * so a test can sign with the keys of the wrong tenant.
 */

export interface SignOptions {
    /** The header's kid. Defaults to the signing key's own kid. */
    kid?: string;
    /**
     * 'current' signs with the key the Bot Framework JWKS serves; 'unknown' with a key it has never served;
     * `{ tenant }` with the key that tenant's Entra JWKS serves (see `tenantIssuer`).
     */
    key?: 'current' | 'unknown' | { tenant: string };
    /** exp = iat + this. Default 3600. */
    expiresInSeconds?: number;
    /** nbf = iat + this. Default 0. */
    notBeforeSeconds?: number;
    /** iat, as a Date or epoch seconds. Default: now. */
    issuedAt?: Date | number;
    /**
     * Default RS256. RS384/RS512/PS256 use the RSA key; HS256/384/512 use `secret`, by default the current public key
     * in PEM (the classic algorithm-confusion forgery).
     */
    alg?: string;
    secret?: Uint8Array;
}

export interface TokenParams {
    audience: string;
    /** The `serviceurl` claim; undefined leaves it out. */
    serviceUrl: string | undefined;
    appId?: string;
    /** Any other claim, added or overridden; a claim set to undefined is left out. */
    [claim: string]: unknown;
}

interface EmulatedKey {
    kid: string;
    privateKey: KeyObject;
    publicKey: KeyObject;
    jwk: JWK;
}

const metadataPath = '/v1/.well-known/openidconfiguration';
const botConnectorAppId = '00000000-0000-0000-0000-0000000b0f00';
const jwksPath = '/v1/.well-known/keys';
const errorBody = (status: number, code: string) => ({ error: code, error_description: `Emulated ${status}` });

export class BotIdentityEmulator {
    readonly issuer = 'https://api.botframework.com';
    /** Paths requested, in order, to assert caching. */
    readonly requests: string[] = [];
    readonly faults = new FaultPlan();
    private readonly keys: EmulatedKey[] = [];
    private readonly tenantKeys = new Map<string, EmulatedKey>();
    /** Tenants whose metadata names this issuer instead of their own: a misconfigured or hijacked authority. */
    readonly misnamedIssuers = new Map<string, string>();
    private current!: EmulatedKey;
    private unknown!: EmulatedKey;
    private keyCount = 0;

    private constructor(
        private readonly server: RunningServer,
        private readonly endorsements: string[] | undefined,
    ) {}

    get metadataUrl(): string {
        return `${this.server.url}${metadataPath}`;
    }

    get jwksUri(): string {
        return `${this.server.url}${jwksPath}`;
    }

    /** The Entra authority host this emulator plays (AZURE_AUTHORITY_HOST). */
    get authorityHost(): string {
        return this.server.url;
    }

    /** The issuer a tenant's v2 or v1 tokens carry, as its metadata names it. */
    tenantIssuer(tenant: string, version: 'v1' | 'v2'): string {
        return version === 'v2' ? `${this.server.url}/${tenant}/v2.0` : `https://sts.windows.net/${tenant}/`;
    }

    /** Creates the tenant's signing key (each tenant has its own); called before serving or signing for the tenant. */
    async addTenant(tenant: string): Promise<void> {
        if (!this.tenantKeys.has(tenant)) {
            this.tenantKeys.set(tenant, await this.newKey({ endorsed: false, prefix: `tenant-${tenant.slice(0, 8)}` }));
        }
    }

    /** The kid the emulator signs with now. */
    get currentKid(): string {
        return this.current.kid;
    }

    /** How many times the JWKS was fetched. */
    get jwksFetches(): number {
        return this.requests.filter((p) => p === jwksPath).length;
    }

    /** How many times the metadata was fetched. */
    get metadataFetches(): number {
        return this.requests.filter((p) => p === metadataPath).length;
    }

    /** @param options.endorsements the channels every key is endorsed for; default ['msteams'], null for none. */
    static async start(options: { endorsements?: string[] | null } = {}): Promise<BotIdentityEmulator> {
        const self: { current?: BotIdentityEmulator } = {};
        const server = await startServer(
            async (req, res) => {
                const emulator = self.current!;
                const path = new URL(req.url ?? '/', 'https://localhost').pathname;
                const method = req.method ?? 'GET';
                emulator.requests.push(path);
                if (await applyFault(emulator.faults.take(method, path), res, errorBody)) {
                    return;
                }
                if (method !== 'GET') {
                    sendJson(res, 405, errorBody(405, 'method_not_allowed'));
                } else if (path === metadataPath) {
                    sendJson(res, 200, {
                        issuer: emulator.issuer,
                        authorization_endpoint: 'https://invalid.botframework.com',
                        jwks_uri: emulator.jwksUri,
                        id_token_signing_alg_values_supported: ['RS256'],
                        token_endpoint_auth_methods_supported: ['private_key_jwt'],
                    });
                } else if (path === jwksPath) {
                    sendJson(res, 200, { keys: emulator.keys.map((k) => k.jwk) });
                } else if (emulator.serveTenant(path, res)) {
                    return;
                } else {
                    sendJson(res, 404, errorBody(404, 'not_found'));
                }
            },
            { https: true },
        );
        const emulator = new BotIdentityEmulator(
            server,
            options.endorsements === null ? undefined : (options.endorsements ?? ['msteams']),
        );
        self.current = emulator;
        try {
            emulator.current = await emulator.newKey();
            emulator.keys.push(emulator.current);
            emulator.unknown = await emulator.newKey();
        } catch (err) {
            // A listening server would keep Jest from exiting.
            await server.close();
            throw err;
        }
        return emulator;
    }

    /** Adds a new key to the JWKS (the old ones stay, as in a real rotation) and signs with it from now on. */
    async rotateKey(): Promise<string> {
        this.current = await this.newKey();
        this.keys.push(this.current);
        return this.current.kid;
    }

    async sign(claims: Record<string, unknown>, options: SignOptions = {}): Promise<string> {
        const key = options.key;
        const signer =
            typeof key === 'object' ? this.tenantKey(key.tenant) : key === 'unknown' ? this.unknown : this.current;
        const alg = options.alg ?? 'RS256';
        const payload = { ...this.times(options), ...claims };
        const jwt = new SignJWT(payload).setProtectedHeader({ alg, typ: 'JWT', kid: options.kid ?? signer.kid });
        if (alg.startsWith('HS')) {
            const pem = signer.publicKey.export({ type: 'spki', format: 'pem' });
            return jwt.sign(options.secret ?? new TextEncoder().encode(pem.toString()));
        }
        return jwt.sign(signer.privateKey);
    }

    /** A token shaped like the ones the Bot Connector sends to a bot's messaging endpoint. */
    tokenFor(params: TokenParams, options: SignOptions = {}): Promise<string> {
        const { audience, serviceUrl, appId, ...overrides } = params;
        return this.sign(
            {
                iss: this.issuer,
                aud: audience,
                serviceurl: serviceUrl,
                appid: appId ?? botConnectorAppId,
                ...overrides,
            },
            options,
        );
    }

    /**
     * A token as Entra issues it to a single-tenant bot: the tenant's issuer (v2 or v1), signed by a tenant's key
     * (by default the issuer's own tenant; `options.key` may name another, for a forgery).
     */
    tenantTokenFor(
        tenant: string,
        version: 'v1' | 'v2',
        params: TokenParams,
        options: SignOptions = {},
    ): Promise<string> {
        const { audience, serviceUrl, appId, ...overrides } = params;
        return this.sign(
            {
                iss: this.tenantIssuer(tenant, version),
                aud: audience,
                serviceurl: serviceUrl,
                tid: tenant,
                ...(version === 'v2' ? { azp: appId ?? botConnectorAppId } : { appid: appId ?? botConnectorAppId }),
                ver: version === 'v2' ? '2.0' : '1.0',
                ...overrides,
            },
            { key: { tenant }, ...options },
        );
    }

    /** An `alg: none` token: no signature at all. */
    unsignedToken(claims: Record<string, unknown>): string {
        const part = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');
        return `${part({ alg: 'none', typ: 'JWT' })}.${part({ ...this.times({}), ...claims })}.`;
    }

    close(): Promise<void> {
        return this.server.close();
    }

    private times(options: SignOptions): { iat: number; nbf: number; exp: number } {
        const issuedAt = options.issuedAt ?? new Date();
        const iat = typeof issuedAt === 'number' ? issuedAt : Math.floor(issuedAt.getTime() / 1000);
        return { iat, nbf: iat + (options.notBeforeSeconds ?? 0), exp: iat + (options.expiresInSeconds ?? 3600) };
    }

    private tenantKey(tenant: string): EmulatedKey {
        const key = this.tenantKeys.get(tenant);
        if (!key) {
            throw new Error(`BotIdentityEmulator: call addTenant(${tenant}) first`);
        }
        return key;
    }

    /** The tenant's metadata (v1 or v2) or JWKS, if the path is one of them; false otherwise. */
    private serveTenant(path: string, res: Parameters<typeof sendJson>[0]): boolean {
        const m = /^\/([0-9a-f-]{36})\/(?:(v2\.0)\/)?(\.well-known\/openid-configuration|discovery\/v2\.0\/keys)$/.exec(
            path,
        );
        const tenant = m?.[1];
        const key = tenant === undefined ? undefined : this.tenantKeys.get(tenant);
        if (!m || !tenant || !key) {
            return false;
        }
        if (m[3] === 'discovery/v2.0/keys') {
            if (m[2]) {
                return false;
            }
            sendJson(res, 200, { keys: [key.jwk] });
            return true;
        }
        sendJson(res, 200, {
            issuer: this.misnamedIssuers.get(tenant) ?? this.tenantIssuer(tenant, m[2] ? 'v2' : 'v1'),
            authorization_endpoint: `${this.server.url}/${tenant}/oauth2/v2.0/authorize`,
            jwks_uri: `${this.server.url}/${tenant}/discovery/v2.0/keys`,
            id_token_signing_alg_values_supported: ['RS256'],
        });
        return true;
    }

    private async newKey(options: { endorsed?: boolean; prefix?: string } = {}): Promise<EmulatedKey> {
        this.keyCount += 1;
        const kid = `${options.prefix ?? 'emulated-key'}-${this.keyCount}`;
        const { privateKey, publicKey } = await generateKeyPair('RS256');
        const jwk = {
            ...(await exportJWK(publicKey)),
            kid,
            use: 'sig',
            ...(this.endorsements && options.endorsed !== false ? { endorsements: this.endorsements } : {}),
        };
        // jose's Node build returns KeyObjects (its KeyLike type is wider, for the browser build).
        return { kid, privateKey: privateKey as KeyObject, publicKey: publicKey as KeyObject, jwk };
    }
}

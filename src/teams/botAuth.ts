import {
    decodeJwt,
    decodeProtectedHeader,
    errors,
    importJWK,
    jwtVerify,
    type JWK,
    type JWTPayload,
    type KeyLike,
} from 'jose';
import { createHttpHeaders, createPipelineRequest, type PipelineResponse } from '@azure/core-rest-pipeline';
import { ConfigError, ensureErrorType, UnauthorizedError } from '../domain/errors';
import { sharedTimeoutHttpClient } from '../http/timeout';

export interface BotAuthSettings {
    /** e.g. https://login.botframework.com/v1/.well-known/openidconfiguration */
    openIdMetadataUrl: string;
    /** Our bot's app id (AZURE_CLIENT_ID). */
    audience: string;
    /** Default 'https://api.botframework.com'. */
    issuer?: string;
    /**
     * Our tenant (AZURE_TENANT_ID) and its authority host (AZURE_AUTHORITY_HOST): a single-tenant bot also receives
     * tokens issued by the tenant itself, `{authority}/{tenant}/v2.0` and the v1 `https://sts.windows.net/{tenant}/`,
     * signed with the keys of that tenant's OpenID metadata. Absent: only the Bot Framework issuer is trusted.
     */
    tenant?: { tenantId: string; authorityHost: string };
    /** Default 300. */
    clockToleranceSeconds?: number;
    /** Injectable clock, for exp/nbf and for the cache and cooldown timers, so tests move time instead of sleeping. */
    now?: () => Date;
}

export interface BotCaller {
    /** The token's `serviceurl` claim: the signed value, not the activity's copy of it. */
    serviceUrl: string;
    appId?: string;
    claims: Record<string, unknown>;
}

export const botFrameworkIssuer = 'https://api.botframework.com';

const onlyAlgorithm = 'RS256';
const documentTtlMs = 24 * 3600 * 1000;
// An unknown kid is either a key rotation (rare) or a forged token (free to send): refetch at most this often.
const unknownKidCooldownMs = 30 * 1000;
// A key endpoint that is down must not turn every unauthenticated request into an outbound fetch either.
const failureBackoffMs = 5 * 1000;
const fetchTimeoutMs = 10 * 1000;

interface SigningKey {
    key: KeyLike | Uint8Array;
    jwk: JWK & { endorsements?: unknown };
}

interface KeySet {
    keys: Map<string, SigningKey>;
    loadedAt: number;
}

interface Metadata {
    jwksUri: string;
    fetchedAt: number;
}

/**
 * The v1 issuer of each cloud's Entra authority (the `issuer` of `{authority}/{tenant}/.well-known/openid-configuration`).
 * An authority not listed (an emulator, a new cloud) is taken to issue as the public cloud does; the metadata's own
 * `issuer` must agree, so a wrong guess refuses tokens rather than trusting a stranger.
 */
const v1IssuerHosts: Readonly<Record<string, string>> = {
    'login.microsoftonline.com': 'https://sts.windows.net',
    'login.microsoftonline.us': 'https://login.microsoftonline.us',
    'login.chinacloudapi.cn': 'https://sts.chinacloudapi.cn',
};

/** An issuer we accept, and the only keys that may sign for it. */
interface TrustedIssuer {
    keys: OpenIdKeys;
    /** Set for our tenant's own issuers: a `tid` claim, when the token has one, must name it too. */
    tenantId?: string;
}

/**
 * Verifies the JWT the Bot Framework Connector sends with every activity to /api/messages. The rules are the Bot
 * Framework's "connector to bot" ones: RS256 only, a trusted issuer, audience our app id, the `serviceurl` claim equal
 * to the activity's serviceUrl, and the signing key endorsed for the activity's channel. The issuers are
 * api.botframework.com and, for a single-tenant bot, our own tenant's v2 and v1 issuers; each issuer's token must be
 * signed by a key from that issuer's own metadata, so a key of one can never vouch for another. botbuilder would do the
 * same but is archived and brings a hosting stack; jose does the cryptography, this class only the policy.
 */
export class BotTokenVerifier {
    private readonly toleranceSeconds: number;
    private readonly now: () => Date;
    private readonly issuers = new Map<string, TrustedIssuer>();

    constructor(private readonly settings: BotAuthSettings) {
        this.toleranceSeconds = settings.clockToleranceSeconds ?? 300;
        this.now = settings.now ?? (() => new Date());
        // Misconfigurations here would not fail loudly later: an empty audience or a negative tolerance changes what
        // is accepted, and keys over plain http could be swapped by anyone on the path.
        if (!settings.audience.trim()) {
            throw new ConfigError('BotTokenVerifier: audience (the bot app id) is empty');
        }
        if (!Number.isFinite(this.toleranceSeconds) || this.toleranceSeconds < 0) {
            throw new ConfigError('BotTokenVerifier: clockToleranceSeconds must be a non-negative number');
        }
        this.issuers.set(settings.issuer ?? botFrameworkIssuer, {
            keys: new OpenIdKeys(settings.openIdMetadataUrl, this.now),
        });
        if (settings.tenant) {
            for (const [issuer, metadataUrl] of tenantIssuers(settings.tenant)) {
                this.issuers.set(issuer, {
                    keys: new OpenIdKeys(metadataUrl, this.now, issuer),
                    tenantId: settings.tenant.tenantId.toLowerCase(),
                });
            }
        }
    }

    /** The issuers accepted, for the log and the tests. */
    get trustedIssuers(): string[] {
        return [...this.issuers.keys()];
    }

    /** Throws UnauthorizedError (with a short reason in the message, never the token) on any failure. */
    async verify(
        authorization: string | undefined,
        activity: { serviceUrl?: unknown; channelId?: unknown },
    ): Promise<BotCaller> {
        const token = bearerToken(authorization);
        // Reject the wrong shape, algorithm and issuer before any I/O, so junk tokens cannot make us fetch anything.
        const { kid } = checkHeader(token);
        const { issuer, trusted } = this.issuerOf(token);
        // The keys of the issuer the token names, and only those: jwtVerify then checks the same issuer was signed.
        const signingKey = await trusted.keys.keyFor(kid);

        let payload: JWTPayload;
        try {
            ({ payload } = await jwtVerify(token, signingKey.key, {
                algorithms: [onlyAlgorithm],
                issuer,
                audience: this.settings.audience,
                clockTolerance: this.toleranceSeconds,
                currentDate: this.now(),
                // A token without exp would never expire.
                requiredClaims: ['exp'],
            }));
        } catch (err) {
            throw new UnauthorizedError(joseReason(err), { cause: ensureErrorType(err) });
        }
        if (trusted.tenantId !== undefined && payload.tid !== undefined) {
            // The issuer names the tenant already; a tid that disagrees is a token no tenant of ours issued.
            if (typeof payload.tid !== 'string' || payload.tid.toLowerCase() !== trusted.tenantId) {
                throw new UnauthorizedError('token claim "tid" rejected (not our tenant)');
            }
        }

        const serviceUrl = checkServiceUrl(payload.serviceurl, activity.serviceUrl);
        checkEndorsement(signingKey.jwk, activity.channelId);
        return {
            serviceUrl,
            ...(typeof payload.appid === 'string' ? { appId: payload.appid } : {}),
            claims: { ...payload },
        };
    }

    private issuerOf(token: string): { issuer: string; trusted: TrustedIssuer } {
        let iss: unknown;
        try {
            iss = decodeJwt(token).iss;
        } catch {
            throw new UnauthorizedError('malformed token');
        }
        // Exact match: the unverified claim only picks which keys to try; jwtVerify checks it against the signature.
        const trusted = typeof iss === 'string' ? this.issuers.get(iss) : undefined;
        if (typeof iss !== 'string' || !trusted) {
            throw new UnauthorizedError('token claim "iss" rejected (not a trusted issuer)');
        }
        return { issuer: iss, trusted };
    }
}

/** Our tenant's v2 and v1 issuers, each with the metadata URL its keys come from, under the configured authority. */
function tenantIssuers(tenant: { tenantId: string; authorityHost: string }): [string, string][] {
    const authority = tenant.authorityHost.replace(/\/+$/, '');
    if (!isHttps(authority)) {
        throw new ConfigError('BotTokenVerifier: the authority host must be https');
    }
    if (!/^[0-9a-f-]{36}$/i.test(tenant.tenantId)) {
        throw new ConfigError('BotTokenVerifier: the tenant id must be a GUID');
    }
    const id = tenant.tenantId.toLowerCase();
    const v1Host = v1IssuerHosts[new URL(authority).hostname.toLowerCase()] ?? 'https://sts.windows.net';
    return [
        [`${authority}/${id}/v2.0`, `${authority}/${id}/v2.0/.well-known/openid-configuration`],
        [`${v1Host}/${id}/`, `${authority}/${id}/.well-known/openid-configuration`],
    ];
}

/**
 * The signing keys of one issuer, from its OpenID metadata and the JWKS it points to, cached for a day; an unknown kid
 * refetches them (a rotation), at most every 30 seconds (a forged kid is free to send).
 */
class OpenIdKeys {
    private metadata?: Metadata;
    private keySet?: KeySet;
    private inflight?: Promise<KeySet>;
    private lastUnknownKidRefetchAt = Number.NEGATIVE_INFINITY;
    private lastFailureAt = Number.NEGATIVE_INFINITY;

    /** @param expectedIssuer when given, the metadata must name exactly this issuer (OpenID Connect Discovery 4.3). */
    constructor(
        private readonly metadataUrl: string,
        private readonly now: () => Date,
        private readonly expectedIssuer?: string,
    ) {
        if (!isHttps(metadataUrl)) {
            throw new ConfigError('BotTokenVerifier: the OpenID metadata URL must be https');
        }
    }

    async keyFor(kid: string): Promise<SigningKey> {
        let keySet = this.keySet;
        if (!keySet || this.nowMs() - keySet.loadedAt >= documentTtlMs) {
            // Keys also expire with the metadata (not only on an unknown kid), so a key Microsoft withdrew stops
            // being accepted within a day even if no new kid ever shows up.
            keySet = await this.load();
        }
        let found = keySet.keys.get(kid);
        if (found) {
            return found;
        }
        if (this.inflight) {
            // Someone is already fetching: their answer is as fresh as ours would be.
            found = (await this.inflight).keys.get(kid);
        } else if (this.nowMs() - this.lastUnknownKidRefetchAt >= unknownKidCooldownMs) {
            this.lastUnknownKidRefetchAt = this.nowMs();
            found = (await this.load()).keys.get(kid);
        }
        if (!found) {
            throw new UnauthorizedError('token signed by an unknown key');
        }
        return found;
    }

    /** One fetch at a time: concurrent callers share the same promise. */
    private load(): Promise<KeySet> {
        if (this.inflight) {
            return this.inflight;
        }
        if (this.nowMs() - this.lastFailureAt < failureBackoffMs) {
            return Promise.reject(
                new UnauthorizedError('signing key fetch failed recently; refusing until it is retried'),
            );
        }
        this.inflight = this.fetchKeySet()
            .then(
                (keySet) => {
                    this.keySet = keySet;
                    return keySet;
                },
                (err: unknown) => {
                    this.lastFailureAt = this.nowMs();
                    const cause = ensureErrorType(err);
                    throw new UnauthorizedError(`signing key fetch failed: ${cause.message}`, { cause });
                },
            )
            .finally(() => {
                this.inflight = undefined;
            });
        return this.inflight;
    }

    private async fetchKeySet(): Promise<KeySet> {
        let metadata = this.metadata;
        // A refetch for an unknown kid keeps fresh metadata: jwks_uri does not move when keys rotate.
        if (!metadata || this.nowMs() - metadata.fetchedAt >= documentTtlMs) {
            const doc = await fetchJson(this.metadataUrl, 'OpenID metadata');
            if (this.expectedIssuer !== undefined && (doc as { issuer?: unknown }).issuer !== this.expectedIssuer) {
                throw new Error(`OpenID metadata does not name the issuer ${this.expectedIssuer}`);
            }
            const jwksUri = (doc as { jwks_uri?: unknown }).jwks_uri;
            if (typeof jwksUri !== 'string' || !isHttps(jwksUri)) {
                throw new Error('OpenID metadata has no https jwks_uri');
            }
            metadata = { jwksUri, fetchedAt: this.nowMs() };
            this.metadata = metadata;
        }
        const jwks = await fetchJson(metadata.jwksUri, 'JWKS');
        const list = (jwks as { keys?: unknown }).keys;
        if (!Array.isArray(list)) {
            throw new Error('JWKS has no keys array');
        }
        const keys = new Map<string, SigningKey>();
        for (const jwk of list as (JWK & { endorsements?: unknown })[]) {
            // Skip what we could never use rather than fail the whole set over one odd key.
            if (
                typeof jwk !== 'object' ||
                jwk === null ||
                jwk.kty !== 'RSA' ||
                typeof jwk.kid !== 'string' ||
                (jwk.use !== undefined && jwk.use !== 'sig') ||
                (jwk.alg !== undefined && jwk.alg !== onlyAlgorithm)
            ) {
                continue;
            }
            try {
                keys.set(jwk.kid, { key: await importJWK(jwk, onlyAlgorithm), jwk });
            } catch {
                continue;
            }
        }
        return { keys, loadedAt: this.nowMs() };
    }

    private nowMs(): number {
        return this.now().getTime();
    }
}

function bearerToken(authorization: string | undefined): string {
    if (authorization === undefined || authorization.trim() === '') {
        throw new UnauthorizedError('missing Authorization header');
    }
    const m = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(authorization);
    if (!m) {
        throw new UnauthorizedError('Authorization header is not a Bearer token');
    }
    return m[1]!;
}

function checkHeader(token: string): { kid: string } {
    // Three parts: a JWS. decodeProtectedHeader alone would also take a JWE's header.
    if (token.split('.').length !== 3) {
        throw new UnauthorizedError('malformed token');
    }
    let header: ReturnType<typeof decodeProtectedHeader>;
    try {
        header = decodeProtectedHeader(token);
    } catch {
        throw new UnauthorizedError('malformed token');
    }
    if (header.alg !== onlyAlgorithm) {
        throw new UnauthorizedError('token algorithm not allowed');
    }
    if (typeof header.kid !== 'string' || header.kid === '') {
        throw new UnauthorizedError('token has no key id');
    }
    return { kid: header.kid };
}

/**
 * Compared exactly, apart from one trailing slash (Teams and the claim disagree on it in practice). The serviceUrl is
 * where our replies, and our outbound token, will go; an exact match is what the Bot Framework SDKs do, and a refusal
 * costs one failed click while a loose match could point us at a host the token never vouched for.
 */
function checkServiceUrl(claim: unknown, fromActivity: unknown): string {
    if (typeof claim !== 'string' || claim === '') {
        throw new UnauthorizedError('token has no serviceurl claim');
    }
    if (typeof fromActivity !== 'string' || fromActivity === '') {
        throw new UnauthorizedError('activity has no serviceUrl');
    }
    if (trimSlash(claim) !== trimSlash(fromActivity)) {
        throw new UnauthorizedError('token serviceurl does not match the activity');
    }
    return claim;
}

/** Bot Framework: a key that lists endorsements may only sign for those channels. */
function checkEndorsement(jwk: SigningKey['jwk'], channelId: unknown): void {
    if (jwk.endorsements === undefined || channelId === undefined || channelId === null || channelId === '') {
        return;
    }
    if (typeof channelId !== 'string') {
        throw new UnauthorizedError('activity channelId is not a string');
    }
    if (!Array.isArray(jwk.endorsements) || !jwk.endorsements.includes(channelId)) {
        throw new UnauthorizedError('signing key is not endorsed for the activity channel');
    }
}

function joseReason(err: unknown): string {
    if (err instanceof errors.JWTExpired) {
        return 'token expired';
    }
    if (err instanceof errors.JWTClaimValidationFailed) {
        return `token claim "${err.claim}" rejected (${err.reason})`;
    }
    if (err instanceof errors.JWSSignatureVerificationFailed) {
        return 'token signature invalid';
    }
    if (err instanceof errors.JOSEAlgNotAllowed) {
        return 'token algorithm not allowed';
    }
    if (err instanceof errors.JWSInvalid || err instanceof errors.JWTInvalid) {
        return 'malformed token';
    }
    return 'token verification failed';
}

async function fetchJson(url: string, what: string): Promise<unknown> {
    // Through the core HTTP client the app's other calls use, not the global fetch: the first use of a fetch global
    // loads Node's fetch implementation (undici), about 40 ms of a cold start. It follows no redirects (that is a
    // pipeline policy, and there is none here): both endpoints answer directly, and following one could downgrade the
    // key source to http. It honours NODE_EXTRA_CA_CERTS, as node:https does.
    let answer: PipelineResponse;
    try {
        answer = await sharedTimeoutHttpClient(fetchTimeoutMs).sendRequest(
            createPipelineRequest({ url, headers: createHttpHeaders({ accept: 'application/json' }) }),
        );
    } catch (err) {
        // The reason (ECONNREFUSED, a certificate error, the timeout's ETIMEDOUT...) is the error's code.
        const code = (err as { code?: unknown }).code;
        const detail = typeof code === 'string' && code ? code : ensureErrorType(err).message;
        throw new Error(`${what} unreachable (${detail})`, { cause: err });
    }
    if (answer.status < 200 || answer.status > 299) {
        throw new Error(`${what} answered HTTP ${answer.status}`);
    }
    let body: unknown;
    try {
        body = JSON.parse(answer.bodyAsText ?? '');
    } catch (err) {
        throw new Error(`${what} is not JSON`, { cause: err });
    }
    if (typeof body !== 'object' || body === null) {
        throw new Error(`${what} is not a JSON object`);
    }
    return body;
}

function isHttps(url: string): boolean {
    try {
        return new URL(url).protocol === 'https:';
    } catch {
        return false;
    }
}

function trimSlash(url: string): string {
    return url.endsWith('/') ? url.slice(0, -1) : url;
}

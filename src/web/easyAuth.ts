import * as z from 'zod';
import { cleanText } from '../domain/card';

/**
 * Who is signed in on the web decision page, from App Service Authentication ("Easy Auth").
 *
 * The platform signs the user in with Entra and hands us the result as `x-ms-client-principal`, after stripping any
 * such header the client sent. That header is only as trustworthy as the platform in front of us: without it, anyone
 * can send one. So it is read only when the platform says authentication is on (`WEBSITE_AUTH_ENABLED`), or, for a
 * developer's local run, when `DEV_TRUST_CLIENT_PRINCIPAL` says so and we are provably not running in Azure.
 */

export interface WebPrincipal {
    /** Entra object id, lower case. */
    objectId: string;
    tenantId?: string;
    name?: string;
    upn?: string;
    identityProvider: string;
}

export interface EasyAuthEnvironment {
    WEBSITE_AUTH_ENABLED?: string;
    WEBSITE_SITE_NAME?: string;
    DEV_TRUST_CLIENT_PRINCIPAL?: string;
}

export type PrincipalResult = { principal: WebPrincipal } | { refused: { status: 401 | 403; reason: string } };

export const CLIENT_PRINCIPAL_HEADER = 'x-ms-client-principal';
/** A real principal with many group claims is a few KB; anything far beyond is not from the platform. */
export const CLIENT_PRINCIPAL_MAX_LENGTH = 16 * 1024;

const IDENTITY_PROVIDER = 'aad';
const VALUE_MAX_LENGTH = 256;
const CLAIM_MAX_COUNT = 1000;

const claimTypes = {
    objectId: ['http://schemas.microsoft.com/identity/claims/objectidentifier', 'oid'],
    tenantId: ['http://schemas.microsoft.com/identity/claims/tenantid', 'tid'],
    name: ['name'],
    upn: ['preferred_username', 'upn', 'http://schemas.xmlsoap.org/ws/2005/05/identity/claims/upn'],
} as const;

// What the platform puts in the header for Entra: name_typ and role_typ as it sends them.
const NAME_CLAIM_TYPE = 'http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress';
const ROLE_CLAIM_TYPE = 'http://schemas.microsoft.com/ws/2008/06/identity/claims/role';

const clientPrincipalSchema = z.object({
    auth_typ: z.string(),
    claims: z.array(z.object({ typ: z.string(), val: z.string() })).max(CLAIM_MAX_COUNT),
    name_typ: z.string().optional(),
    role_typ: z.string().optional(),
});

type ClientPrincipal = z.infer<typeof clientPrincipalSchema>;

const guidPattern = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
// Standard base64, as the platform sends it. Node's decoder skips characters it does not know, so check first.
const base64Pattern = /^[A-Za-z0-9+/]+={0,2}$/;

export function principalFromHeaders(
    headers: { get(name: string): string | null },
    env: EasyAuthEnvironment,
): PrincipalResult {
    const trust = trustSource(env);
    if ('refused' in trust) {
        return trust;
    }
    const raw = headers.get(CLIENT_PRINCIPAL_HEADER);
    if (raw === null || raw.trim() === '') {
        return refuse(401, 'Not signed in: the request carries no client principal from App Service Authentication');
    }
    return parseClientPrincipal(raw);
}

/** Whether the `x-ms-client-principal` header may be believed at all; decided before it is read. */
function trustSource(
    env: EasyAuthEnvironment,
): { trusted: 'platform' | 'dev' } | Extract<PrincipalResult, { refused: unknown }> {
    const inAzure = Boolean(env.WEBSITE_SITE_NAME?.trim());
    const devTrust = isTrue(env.DEV_TRUST_CLIENT_PRINCIPAL);
    if (devTrust && inAzure) {
        // Refused even with authentication on: the setting would silently become a hole the day someone turns it off.
        return refuse(
            403,
            'DEV_TRUST_CLIENT_PRINCIPAL is set on an app running in Azure (WEBSITE_SITE_NAME is set). It is for local ' +
                'development only: remove the setting.',
        );
    }
    if (isTrue(env.WEBSITE_AUTH_ENABLED)) {
        return { trusted: 'platform' };
    }
    if (devTrust) {
        return { trusted: 'dev' };
    }
    return refuse(
        401,
        'App Service Authentication is off (WEBSITE_AUTH_ENABLED is not true), so the signed-in user cannot be ' +
            'known. Turn on App Service Authentication with Microsoft Entra for this app.',
    );
}

function parseClientPrincipal(header: string): PrincipalResult {
    // Capped before any work on it: decoding and parsing cost grows with the size a client chooses.
    if (header.length > CLIENT_PRINCIPAL_MAX_LENGTH) {
        return refuse(401, 'Malformed client principal: the header is too large');
    }
    const raw = header.trim();
    if (!base64Pattern.test(raw)) {
        return refuse(401, 'Malformed client principal: not base64');
    }
    let json: unknown;
    try {
        const text = new TextDecoder('utf-8', { fatal: true }).decode(Buffer.from(raw, 'base64'));
        json = JSON.parse(text);
    } catch {
        return refuse(401, 'Malformed client principal: not base64-encoded UTF-8 JSON');
    }
    const parsed = clientPrincipalSchema.safeParse(json);
    if (!parsed.success) {
        return refuse(401, 'Malformed client principal: unexpected shape');
    }
    const principal = parsed.data;
    if (principal.auth_typ.toLowerCase() !== IDENTITY_PROVIDER) {
        // 401, not 403: signing in again, with Entra, is the way forward.
        return refuse(401, 'Sign in with Microsoft Entra: other identity providers are not accepted');
    }

    const objectId = single(principal, claimTypes.objectId);
    if (objectId === 'conflict') {
        return refuse(401, 'Malformed client principal: conflicting object id claims');
    }
    if (objectId === undefined) {
        return refuse(401, 'The client principal has no Entra object id');
    }
    if (!guidPattern.test(objectId)) {
        return refuse(401, 'Malformed client principal: the object id is not a GUID');
    }
    const result: WebPrincipal = { objectId: objectId.toLowerCase(), identityProvider: IDENTITY_PROVIDER };

    const tenantId = single(principal, claimTypes.tenantId);
    if (tenantId === 'conflict' || (tenantId !== undefined && !guidPattern.test(tenantId))) {
        return refuse(401, 'Malformed client principal: the tenant id is not one GUID');
    }
    if (tenantId !== undefined) {
        result.tenantId = tenantId.toLowerCase();
    }
    // Display only (the object id is what authorisation uses): take the first, cleaned for logs and the page.
    const name = cleanText(first(principal, claimTypes.name), VALUE_MAX_LENGTH);
    if (name) {
        result.name = name;
    }
    const upn = cleanText(first(principal, claimTypes.upn), VALUE_MAX_LENGTH);
    if (upn) {
        result.upn = upn;
    }
    return { principal: result };
}

/**
 * The one value of a claim that may come under several types (`oid` and its long form). Two different values make the
 * identity ambiguous, so that is reported rather than resolved by order.
 */
function single(principal: ClientPrincipal, types: readonly string[]): string | undefined | 'conflict' {
    const values = new Set(
        principal.claims
            .filter((c) => types.includes(c.typ))
            .map((c) => c.val.trim().toLowerCase())
            .filter((v) => v !== ''),
    );
    if (values.size > 1) {
        return 'conflict';
    }
    return values.values().next().value;
}

function first(principal: ClientPrincipal, types: readonly string[]): string | undefined {
    for (const type of types) {
        const value = principal.claims.find((c) => c.typ === type && c.val.trim() !== '')?.val;
        if (value !== undefined) {
            return value;
        }
    }
    return undefined;
}

/**
 * A header value in the platform's format (base64 of `{ auth_typ, claims, name_typ, role_typ }`, claim types as the
 * platform maps them), for tests and the local demo with `DEV_TRUST_CLIENT_PRINCIPAL`.
 */
export function encodeClientPrincipal(p: { objectId: string; tenantId?: string; name?: string; upn?: string }): string {
    const claims: { typ: string; val: string }[] = [
        { typ: 'http://schemas.microsoft.com/identity/claims/objectidentifier', val: p.objectId },
    ];
    if (p.tenantId !== undefined) {
        claims.push({ typ: 'http://schemas.microsoft.com/identity/claims/tenantid', val: p.tenantId });
    }
    if (p.name !== undefined) {
        claims.push({ typ: 'name', val: p.name });
    }
    if (p.upn !== undefined) {
        claims.push({ typ: 'preferred_username', val: p.upn });
    }
    const principal: ClientPrincipal = {
        auth_typ: IDENTITY_PROVIDER,
        claims,
        name_typ: NAME_CLAIM_TYPE,
        role_typ: ROLE_CLAIM_TYPE,
    };
    return Buffer.from(JSON.stringify(principal), 'utf8').toString('base64');
}

function isTrue(value: string | undefined): boolean {
    return value?.trim().toLowerCase() === 'true';
}

function refuse(status: 401 | 403, reason: string): Extract<PrincipalResult, { refused: unknown }> {
    return { refused: { status, reason } };
}

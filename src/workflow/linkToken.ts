import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { ApprovalRequest, LinkGrant } from '../domain/request';

/**
 * The web page's two tokens.
 *
 * - The link token travels in the card's URL. The store keeps only its SHA-256, so a leaked table does not hand out
 *   working links. It expires, and the decision it carries consumes it in the same conditional write.
 * - The CSRF token is an HMAC over (signed-in user, request, expiry) with the request's own page key, which never
 *   leaves the store. A page that lures a signed-in approver into posting cannot produce one for them, even if its
 *   author holds the link.
 */

const csrfLifetimeMs = 60 * 60 * 1000;

export function issueLinkToken(now: Date, ttlHours: number): { token: string; grant: LinkGrant } {
    const token = randomBytes(32).toString('base64url');
    return {
        token,
        grant: {
            tokenHash: hashToken(token),
            expiresAt: new Date(now.getTime() + ttlHours * 3600_000).toISOString(),
            pageKey: randomBytes(32).toString('base64url'),
        },
    };
}

export type LinkCheck = { ok: true } | { ok: false; reason: 'missing' | 'wrong' | 'used' | 'expired' };

export function checkLinkToken(request: ApprovalRequest, token: string | null | undefined, now: Date): LinkCheck {
    const grant = request.link;
    if (!token) {
        return { ok: false, reason: 'missing' };
    }
    if (!grant || !safeEqual(hashToken(token), grant.tokenHash)) {
        return { ok: false, reason: 'wrong' };
    }
    if (grant.usedAt) {
        return { ok: false, reason: 'used' };
    }
    if (now.getTime() >= new Date(grant.expiresAt).getTime()) {
        return { ok: false, reason: 'expired' };
    }
    return { ok: true };
}

export function issueCsrfToken(request: ApprovalRequest, userObjectId: string, now: Date): string {
    const grant = requireGrant(request);
    const expires = now.getTime() + csrfLifetimeMs;
    return `${expires}.${csrfMac(grant, request.id, userObjectId, expires)}`;
}

export function checkCsrfToken(
    request: ApprovalRequest,
    userObjectId: string,
    token: string | null | undefined,
    now: Date,
): boolean {
    const grant = request.link;
    const m = /^(\d{13})\.([A-Za-z0-9_-]{43})$/.exec(token ?? '');
    if (!grant || !m) {
        return false;
    }
    const expires = Number(m[1]);
    if (now.getTime() >= expires) {
        return false;
    }
    return safeEqual(m[2]!, csrfMac(grant, request.id, userObjectId, expires));
}

function csrfMac(grant: LinkGrant, requestId: string, userObjectId: string, expires: number): string {
    return createHmac('sha256', grant.pageKey)
        .update(`csrf|${requestId}|${userObjectId.toLowerCase()}|${expires}`)
        .digest('base64url');
}

function requireGrant(request: ApprovalRequest): LinkGrant {
    if (!request.link) {
        throw new Error(`Request ${request.id} has no web link`);
    }
    return request.link;
}

function hashToken(token: string): string {
    return createHash('sha256').update(token, 'utf8').digest('hex');
}

function safeEqual(a: string, b: string): boolean {
    const x = Buffer.from(a);
    const y = Buffer.from(b);
    return x.length === y.length && timingSafeEqual(x, y);
}

import type { ApprovalRequest } from '../../src/domain/request';
import { checkCsrfToken, checkLinkToken, issueCsrfToken, issueLinkToken } from '../../src/workflow/linkToken';

const now = new Date('2026-11-21T10:00:00Z');
const later = (ms: number) => new Date(now.getTime() + ms);
const user = '0a0a0a0a-1111-4111-8111-000000000abc';

function withLink(): { request: ApprovalRequest; token: string } {
    const { token, grant } = issueLinkToken(now, 24);
    return { request: { id: 'Req_abcdefghijklmnopqrstuv', link: grant } as ApprovalRequest, token };
}

describe('link tokens', () => {
    it('stores only a hash, never the token', () => {
        const { request, token } = withLink();
        expect(JSON.stringify(request)).not.toContain(token);
        expect(request.link?.tokenHash).toMatch(/^[0-9a-f]{64}$/);
        expect(token.length).toBeGreaterThanOrEqual(43);
    });

    it('accepts the token until it expires', () => {
        const { request, token } = withLink();
        expect(checkLinkToken(request, token, now)).toEqual({ ok: true });
        expect(checkLinkToken(request, token, later(24 * 3600_000 - 1))).toEqual({ ok: true });
        expect(checkLinkToken(request, token, later(24 * 3600_000))).toEqual({ ok: false, reason: 'expired' });
    });

    it('refuses a missing, wrong or used token', () => {
        const { request, token } = withLink();
        expect(checkLinkToken(request, undefined, now)).toEqual({ ok: false, reason: 'missing' });
        expect(checkLinkToken(request, `${token}x`, now)).toEqual({ ok: false, reason: 'wrong' });
        expect(checkLinkToken({ ...request, link: undefined }, token, now)).toEqual({ ok: false, reason: 'wrong' });
        const used = { ...request, link: { ...request.link!, usedAt: now.toISOString() } };
        expect(checkLinkToken(used, token, now)).toEqual({ ok: false, reason: 'used' });
    });
});

describe('CSRF tokens', () => {
    it('are bound to the user, the request and the page key', () => {
        const { request } = withLink();
        const csrf = issueCsrfToken(request, user, now);
        expect(checkCsrfToken(request, user, csrf, now)).toBe(true);
        expect(checkCsrfToken(request, user.toUpperCase(), csrf, now)).toBe(true);
        expect(checkCsrfToken(request, 'bbbbbbbb-1111-4111-8111-000000000abc', csrf, now)).toBe(false);
        expect(checkCsrfToken({ ...request, id: 'Req_zzzzzzzzzzzzzzzzzzzzzz' }, user, csrf, now)).toBe(false);
        // A new link (a re-posted card) has a new page key: old forms stop working.
        const { request: reposted } = withLink();
        expect(checkCsrfToken({ ...reposted, id: request.id }, user, csrf, now)).toBe(false);
    });

    it('expire after an hour and cannot have their expiry edited', () => {
        const { request } = withLink();
        const csrf = issueCsrfToken(request, user, now);
        expect(checkCsrfToken(request, user, csrf, later(3600_000))).toBe(false);
        const [expires, mac] = csrf.split('.');
        const extended = `${Number(expires) + 3600_000}.${mac}`;
        expect(checkCsrfToken(request, user, extended, later(3600_000))).toBe(false);
    });

    it('refuses missing and malformed tokens', () => {
        const { request } = withLink();
        for (const bad of [undefined, null, '', 'x', '123.abc', `${now.getTime() + 1000}.${'A'.repeat(43)}`]) {
            expect(checkCsrfToken(request, user, bad, now)).toBe(false);
        }
        expect(checkCsrfToken({ ...request, link: undefined }, user, issueCsrfToken(request, user, now), now)).toBe(
            false,
        );
    });
});

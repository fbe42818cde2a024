import { checkSameOrigin } from '../../src/web/sameOrigin';

/** The header rules on their own; the security matrix (test 22) drives them through the decision page's POST. */
describe('checkSameOrigin', () => {
    const base = 'https://pec-gate.example.net/';
    const check = (headers: Record<string, string>) => checkSameOrigin(new Headers(headers), base);

    it('accepts the app’s own origin, however the browser spells it', () => {
        expect(check({ origin: 'https://pec-gate.example.net' })).toEqual({ ok: true });
        expect(check({ origin: 'https://PEC-GATE.example.net:443' })).toEqual({ ok: true });
        expect(check({ origin: 'https://pec-gate.example.net', 'sec-fetch-site': 'same-origin' })).toEqual({
            ok: true,
        });
        expect(check({ 'sec-fetch-site': 'same-origin' })).toEqual({ ok: true });
    });

    it.each([
        [{ origin: 'https://evil.example' }, /Origin "https:\/\/evil.example" is not https:\/\/pec-gate.example.net/],
        [{ origin: 'null' }, /Origin is null/],
        [{ origin: 'not a url' }, /is not/],
        [{ origin: 'https://pec-gate.example.net.evil.example' }, /is not/],
        [{ 'sec-fetch-site': 'cross-site' }, /Sec-Fetch-Site is "cross-site"/],
        [{ 'sec-fetch-site': 'same-site' }, /Sec-Fetch-Site is "same-site"/],
        [{ 'sec-fetch-site': 'none' }, /Sec-Fetch-Site is "none"/],
        [{}, /neither Origin nor Sec-Fetch-Site/],
        [{ origin: ' ', 'sec-fetch-site': ' ' }, /neither Origin nor Sec-Fetch-Site/],
    ])('refuses %j', (headers, reason) => {
        const result = check(headers as Record<string, string>);
        expect(result.ok).toBe(false);
        expect(result.ok ? '' : result.reason).toMatch(reason);
    });
});

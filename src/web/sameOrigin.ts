/**
 * Whether a state-changing request (the decision form's POST) was sent by a page of the app itself, judged from the
 * headers the browser sets and a page cannot: `Origin`, or, when it is absent, `Sec-Fetch-Site`. A second line of
 * defence behind the form's CSRF token, so a flaw or leak of the token alone does not let another site decide.
 *
 * A request with neither header is refused. The Fetch standard has browsers send `Origin` on every request whose
 * method is not GET or HEAD, and every browser that can complete an Entra ID sign-in does (Chromium, Firefox since 70,
 * Safari); `Sec-Fetch-Site` is sent by all of them too. So a POST without either does not come from the decision page
 * in a browser: it is a script (which holds a session of its own and gains nothing from the page) or a client whose
 * headers something stripped. Failing open there would switch the check off for exactly the clients that hide where
 * they come from; failing closed costs such a client a clear message.
 */

export type OriginCheck = { ok: true } | { ok: false; reason: string };

export interface HeaderSource {
    get(name: string): string | null;
}

export function checkSameOrigin(headers: HeaderSource, publicBaseUrl: string): OriginCheck {
    const expected = new URL(publicBaseUrl).origin;
    const origin = headers.get('origin')?.trim();
    const site = headers.get('sec-fetch-site')?.trim().toLowerCase();
    if (origin) {
        if (origin === 'null') {
            // An opaque origin: a sandboxed frame, a data: URL, a redirect across origins. Never the app's own page.
            return { ok: false, reason: 'Origin is null (an opaque origin, not the app’s page)' };
        }
        const parsed = URL.canParse(origin) ? new URL(origin).origin : undefined;
        if (parsed !== expected) {
            return { ok: false, reason: `Origin ${printable(origin)} is not ${expected}` };
        }
    }
    if (site) {
        // Checked even when Origin agrees: a browser never sends the two in contradiction, so a contradiction is forged.
        if (site !== 'same-origin') {
            return { ok: false, reason: `Sec-Fetch-Site is ${printable(site)}, not same-origin` };
        }
    }
    if (!origin && !site) {
        return { ok: false, reason: 'neither Origin nor Sec-Fetch-Site was sent (not a browser on the app’s page)' };
    }
    return { ok: true };
}

/** For the log line: the header is the caller's text, so it is cut, and quoted with its control characters escaped. */
function printable(value: string): string {
    return JSON.stringify(value.slice(0, 100));
}

import { existsSync } from 'node:fs';
import { chromium, type Browser, type BrowserContext, type Page, type Response } from 'playwright-core';
import { decisionPage } from '../../functions/decisionPage';
import { CLIENT_PRINCIPAL_HEADER, encodeClientPrincipal } from '../../src/web/easyAuth';
import { startServer, type RunningServer } from '../emulators/server';
import {
    drainApplyQueue,
    ids,
    people,
    privateEndpointId,
    openCard,
    startHarness,
    type Harness,
    type SeededPec,
    type TestPerson,
} from '../harness';
import { startFunctionServer, type FunctionServer } from '../web/functionServer';

/**
 * The web decision page in real Chromium, reached the way an approver reaches it: the "Review page" link of the card
 * the bot posted, clicked in a browser that App Service Authentication has signed in. What only a browser can show is
 * checked here: the page renders under its own Content-Security-Policy without a single violation, the form posts and
 * the decision reaches ARM through the queue, and a form posted from another site or under another user is refused.
 *
 * Easy Auth is played by the test server: like the platform, it drops any client principal header the browser sends
 * and adds the signed-in user's. It does not model the session cookie, so every request, cross-site ones included,
 * arrives signed in: the worst case, which is exactly what the CSRF token has to hold against.
 */

const CHROMIUM = '/usr/bin/chromium';
const TEST_TIMEOUT_MS = 30_000;

let browser: Browser;

beforeAll(async () => {
    if (!existsSync(CHROMIUM)) {
        // Failing, not skipping: a skipped browser test reads as green in CI while testing nothing.
        throw new Error(
            `Chromium is not installed at ${CHROMIUM}. Install it with ` +
                '`apt-get install -y --no-install-recommends chromium` (CI does); this test never downloads a browser.',
        );
    }
    browser = await chromium.launch({
        executablePath: CHROMIUM,
        args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking'],
    });
}, 60_000);

afterAll(async () => {
    await browser?.close();
});

describe('decision page in a browser', () => {
    let h: Harness;
    let server: FunctionServer;
    let context: BrowserContext;
    /** Who App Service Authentication has signed in; undefined sends the request on without a principal. */
    let signedIn: TestPerson | undefined;

    beforeEach(async () => {
        h = await startHarness({ settings: { WEBSITE_AUTH_ENABLED: 'true' } });
        signedIn = people.alice;
        server = await startFunctionServer({
            route: 'requests/{id}',
            handler: decisionPage,
            platformHeaders: (headers) => {
                // As the platform does: whatever principal headers the client sent are gone, the session's is added.
                const passed = Object.fromEntries(
                    Object.entries(headers).filter(([name]) => !name.toLowerCase().startsWith(CLIENT_PRINCIPAL_HEADER)),
                );
                if (signedIn) {
                    passed[CLIENT_PRINCIPAL_HEADER] = encodeClientPrincipal({ ...signedIn, tenantId: ids.tenant });
                }
                // This server stands in for the public host name (PUBLIC_BASE_URL), which the browser cannot reach:
                // its own origin is the app's. Any other origin, an attacker's page, reaches the app as sent.
                if (passed.origin === server.url) {
                    passed.origin = new URL(h.env.PUBLIC_BASE_URL!).origin;
                }
                return passed;
            },
        });
        context = await browser.newContext();
    });

    afterEach(async () => {
        await context?.close();
        await server?.close();
        await h?.close();
        // After closing: a handler that threw has already answered 500, which the test may not have looked at.
        expect(server?.errors ?? []).toEqual([]);
    });

    /** A pending PEC from a foreign subscription, its card posted by the bot, and the card's review link. */
    async function cardWithLink(): Promise<{ seeded: SeededPec; requestId: string; link: string }> {
        const { seeded, request } = await openCard(h, 'postgres-flexible', { peSubscriptionId: ids.foreign });
        const cards = h.bot.cards();
        expect(cards).toHaveLength(1);
        const reviewActions = openUrlActions(cards[0]).filter((a) => a.title === 'Review page');
        expect(reviewActions).toHaveLength(1);
        const cardUrl = new URL(reviewActions[0]!.url);
        expect(cardUrl.origin).toBe(new URL(h.env.PUBLIC_BASE_URL!).origin);
        expect(cardUrl.searchParams.get('token')).toBeTruthy();
        // The same path and query, as clicked, only served from here instead of the public host name.
        const link = new URL(`${cardUrl.pathname}${cardUrl.search}`, server.url).href;
        return { seeded, requestId: request.id, link };
    }

    /** Nothing queued, ARM still Pending, the request still pending, and nothing audited past the card. */
    async function expectNothingDecided(seeded: SeededPec, requestId: string): Promise<void> {
        expect(await drainApplyQueue(h)).toBe(0);
        expect(pecState(seeded.pecId)).toMatchObject({ status: 'Pending' });
        expect((await h.deps.requests.get(requestId))?.request.status).toBe('pending');
        expect(await auditActions(requestId)).toEqual(['requested', 'card-posted']);
    }

    async function auditActions(requestId: string): Promise<string[]> {
        return (await h.deps.audit.list(requestId)).map((e) => e.action);
    }

    function pecState(pecId: string): { status?: string; description?: string } {
        return (h.arm.getPec(pecId) as { properties: { privateLinkServiceConnectionState: { status?: string } } })
            .properties.privateLinkServiceConnectionState;
    }

    it(
        'shows the request from the card link under its CSP, without a console error',
        async () => {
            const { seeded, requestId, link } = await cardWithLink();
            const { page, problems } = await watchedPage(context);

            const response = await page.goto(link);
            expect(response?.status()).toBe(200);
            const csp = (await response!.allHeaders())['content-security-policy'];
            expect(csp).toContain("default-src 'none'");
            expect(csp).toContain("form-action 'self'");
            expect(csp).toMatch(/style-src 'sha256-[A-Za-z0-9+/=]+'/);

            expect(await heading(page)).toBe(
                'Private endpoint connection to PostgreSQL flexible server postgres-flexible-01',
            );
            expect(await fact(page, 'Server', 'Server')).toBe('postgres-flexible-01');
            expect(await fact(page, 'Private endpoint connection', 'Connection')).toBe(seeded.pecName);
            expect(await fact(page, 'Private endpoint connection', 'Private endpoint')).toBe(
                privateEndpointId(ids.foreign, 'pe-postgres-flexible'),
            );
            expect(await fact(page, 'Requested by', 'Name')).toBe(people.dev.name);
            expect(await page.getByRole('region', { name: 'Risks to check' }).innerText()).toContain(
                `Private endpoint subscription ${ids.foreign} is not in the trusted list`,
            );
            expect(await page.locator('header').innerText()).toContain('Signed in as alice@contoso.com');
            expect(await page.getByRole('button', { name: 'Approve' }).isVisible()).toBe(true);
            expect(await page.getByRole('button', { name: 'Reject' }).isVisible()).toBe(true);
            // The hash-allowed style block really applied: a wrong hash would leave the page unstyled (and log).
            expect(await page.evaluate("getComputedStyle(document.querySelector('main')).maxWidth")).toBe('960px');

            expect(problems).toEqual([]);
            expect(await auditActions(requestId)).toEqual(['requested', 'card-posted']);
        },
        TEST_TIMEOUT_MS,
    );

    it(
        'records a reject typed into the page, and the queue applies it to the connection',
        async () => {
            const { seeded, requestId, link } = await cardWithLink();
            const { page, problems } = await watchedPage(context);
            await page.goto(link);
            const text = 'Not one of our subscriptions, see CHG-7';

            await page.getByLabel(/^Response text/).fill(text);
            const response = await submit(page, 'Reject');

            expect(response.status()).toBe(200);
            expect(await page.getByRole('status').innerText()).toBe(
                'Your decision is recorded. It is being applied to the connection now.',
            );
            expect(await page.locator('p.status').innerText()).toBe('Rejecting… by Alice Approver');
            expect(await page.locator('form').count()).toBe(0);
            expect(problems).toEqual([]);
            // Nothing reaches ARM until the queue runs.
            expect(pecState(seeded.pecId)).toMatchObject({ status: 'Pending' });

            expect(await drainApplyQueue(h)).toBe(1);

            expect(pecState(seeded.pecId)).toMatchObject({
                status: 'Rejected',
                description: `Rejected by alice@contoso.com: ${text}`,
            });
            const audit = await h.deps.audit.list(requestId);
            expect(audit.map((e) => e.action)).toEqual(['requested', 'card-posted', 'decided', 'applied']);
            expect(audit[2]).toMatchObject({
                actor: { kind: 'approver', id: people.alice.objectId },
                text,
                detail: 'via web',
            });
            expect((await h.deps.requests.get(requestId))?.request).toMatchObject({
                status: 'applied',
                decision: { action: 'reject', text },
            });
        },
        TEST_TIMEOUT_MS,
    );

    it(
        'answers a reject without text with the inline error and changes nothing',
        async () => {
            const { seeded, requestId, link } = await cardWithLink();
            const { page, problems } = await watchedPage(context);
            await page.goto(link);

            const response = await submit(page, 'Reject');

            expect(response.status()).toBe(400);
            expect(await page.getByRole('alert').innerText()).toBe(
                'A reject needs a response text: it tells the requester why',
            );
            // The form comes back, ready for a second try.
            expect(await page.getByRole('button', { name: 'Reject' }).isVisible()).toBe(true);
            expect(await page.locator('p.status').innerText()).toBe('Waiting for approval');
            expect(withoutStatusNotes(problems)).toEqual([]);

            await expectNothingDecided(seeded, requestId);
        },
        TEST_TIMEOUT_MS,
    );

    describe('forged and replayed posts', () => {
        let attacker: RunningServer;
        let attackerPage = '';

        beforeEach(async () => {
            // Another origin (another port) serving whatever page the attacker wrote.
            attacker = await startServer(
                (_req, res) => {
                    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
                    res.end(attackerPage);
                },
                { https: false },
            );
        });
        afterEach(async () => {
            await attacker?.close();
        });

        it(
            'refuses a cross-site form, by its Origin, even with the link token',
            async () => {
                const { seeded, requestId, link } = await cardWithLink();
                const linkToken = new URL(link).searchParams.get('token')!;
                const action = `${server.url}/api/requests/${encodeURIComponent(requestId)}`;
                const { page, problems } = await watchedPage(context);

                // No csrf field at all, then an empty one (what a stripped or guessed field looks like).
                for (const csrf of [undefined, '']) {
                    const fields = { token: linkToken, verb: 'approve', responseText: 'looks fine' };
                    attackerPage = forgedForm(action, csrf === undefined ? fields : { csrf, ...fields });
                    await page.goto(attacker.url);
                    const response = await submit(page, 'Send');
                    expect(page.url()).toBe(action);
                    expect(response.status()).toBe(403);
                    expect(await heading(page)).toBe('Not accepted');
                }
                expect(withoutStatusNotes(problems)).toEqual([]);

                await expectNothingDecided(seeded, requestId);
            },
            TEST_TIMEOUT_MS,
        );

        it(
            "refuses a CSRF token issued to alice when bob's session posts it",
            async () => {
                const { seeded, requestId, link } = await cardWithLink();
                const { page, problems } = await watchedPage(context);
                await page.goto(link);
                expect(await page.locator('input[name="csrf"]').inputValue()).toMatch(/^\d{13}\./);

                // The page and its token are alice's; the session that posts it is bob's (an approver too).
                signedIn = people.bob;
                await page.getByLabel(/^Response text/).fill('Rejected on her behalf');
                const response = await submit(page, 'Reject');

                expect(response.status()).toBe(403);
                expect(await heading(page)).toBe('Form expired');
                expect(withoutStatusNotes(problems)).toEqual([]);
                await expectNothingDecided(seeded, requestId);
            },
            TEST_TIMEOUT_MS,
        );

        it(
            'does not decide again when the link and an old form are used after the decision',
            async () => {
                const { seeded, requestId, link } = await cardWithLink();
                // Two tabs on the same link: the first decides, the second keeps its form (and tokens) for later.
                const first = await watchedPage(context);
                const stale = await watchedPage(context);
                await stale.page.goto(link);
                await first.page.goto(link);
                await first.page.getByLabel(/^Response text/).fill('Reporting tier, CHG-1042');
                expect((await submit(first.page, 'Approve')).status()).toBe(200);
                expect(await drainApplyQueue(h)).toBe(1);

                // The link again: it shows what happened, and offers nothing to click.
                const again = await first.page.goto(link);
                expect(again?.status()).toBe(200);
                expect(await first.page.locator('p.status').innerText()).toMatch(
                    /^Approved by Alice Approver at \d{4}-\d{2}-\d{2} \d{2}:\d{2} UTC: Reporting tier, CHG-1042$/,
                );
                expect(await first.page.locator('form').count()).toBe(0);

                // The old form, with the spent link token and a CSRF token that has not expired yet.
                await stale.page.getByLabel(/^Response text/).fill('Changed my mind');
                const replay = await submit(stale.page, 'Reject');
                expect(replay.status()).toBe(409);
                expect(await stale.page.getByRole('alert').innerText()).toBe(
                    'This request was already decided; nothing was changed.',
                );

                expect([...first.problems, ...withoutStatusNotes(stale.problems)]).toEqual([]);
                expect(await drainApplyQueue(h)).toBe(0);
                expect(pecState(seeded.pecId)).toMatchObject({
                    status: 'Approved',
                    description: 'Approved by alice@contoso.com: Reporting tier, CHG-1042',
                });
                expect(await auditActions(requestId)).toEqual(['requested', 'card-posted', 'decided', 'applied']);
            },
            TEST_TIMEOUT_MS,
        );
    });

    it(
        'shows a colleague who is not an approver the facts but no form',
        async () => {
            const { seeded, requestId, link } = await cardWithLink();
            signedIn = people.mallory;
            const { page, problems } = await watchedPage(context);

            const response = await page.goto(link);

            expect(response?.status()).toBe(200);
            expect(await fact(page, 'Server', 'Server')).toBe('postgres-flexible-01');
            expect(await fact(page, 'Private endpoint connection', 'Connection')).toBe(seeded.pecName);
            expect(await page.getByRole('alert').innerText()).toBe(
                'Only members of the approver groups can decide. You can still see the request.',
            );
            expect(await page.locator('header').innerText()).toContain('Signed in as mallory@contoso.com');
            expect(await page.locator('form, textarea, button').count()).toBe(0);
            expect(problems).toEqual([]);
            // Looking is not an attempt to decide: nothing is audited.
            expect(await auditActions(requestId)).toEqual(['requested', 'card-posted']);
        },
        TEST_TIMEOUT_MS,
    );
});

/** Every `Action.OpenUrl` anywhere in a card (top-level actions, action sets, select actions). */
function openUrlActions(node: unknown): { title?: string; url: string }[] {
    if (Array.isArray(node)) {
        return node.flatMap(openUrlActions);
    }
    if (typeof node !== 'object' || node === null) {
        return [];
    }
    const record = node as Record<string, unknown>;
    const own =
        record.type === 'Action.OpenUrl' && typeof record.url === 'string'
            ? [{ url: record.url, ...(typeof record.title === 'string' ? { title: record.title } : {}) }]
            : [];
    return [...own, ...Object.values(record).flatMap(openUrlActions)];
}

/**
 * A page that reports console errors and warnings, uncaught errors and CSP violations. The page itself runs no script;
 * the listener comes in through the DevTools protocol, which the page's CSP does not govern.
 */
async function watchedPage(context: BrowserContext): Promise<{ page: Page; problems: string[] }> {
    const page = await context.newPage();
    const problems: string[] = [];
    page.on('console', (message) => {
        // The browser asks for /favicon.ico on its own; the Functions host answers 404 there, as it does in Azure.
        if (new URL(message.location().url || 'about:blank').pathname === '/favicon.ico') {
            return;
        }
        if (message.type() === 'error' || message.type() === 'warning') {
            problems.push(`console.${message.type()}: ${message.text()}`);
        }
    });
    page.on('pageerror', (error) => problems.push(`pageerror: ${error.message}`));
    await page.addInitScript(
        "document.addEventListener('securitypolicyviolation', (e) => " +
            "console.error('CSP violation: ' + e.violatedDirective + ' ' + e.blockedURI));",
    );
    return { page, problems };
}

/**
 * Chromium logs "Failed to load resource: ... status of 4xx" for a page answered with an error status. That is the
 * refusal the test expects, not a problem of the page.
 */
function withoutStatusNotes(problems: string[]): string[] {
    return problems.filter((p) => !/Failed to load resource: the server responded with a status of 4\d\d/.test(p));
}

/** Clicks a submit button and waits for the page the post answered with. */
async function submit(page: Page, button: string): Promise<Response> {
    const [response] = await Promise.all([
        page.waitForResponse((r) => r.request().method() === 'POST' && r.request().isNavigationRequest()),
        page.getByRole('button', { name: button, exact: true }).click(),
    ]);
    await page.waitForLoadState();
    return response;
}

async function heading(page: Page): Promise<string> {
    return page.getByRole('heading', { level: 1 }).innerText();
}

/** The value of a labelled fact in one section of the page. */
async function fact(page: Page, section: string, label: string): Promise<string> {
    const row = page
        .getByRole('region', { name: section, exact: true })
        .locator('dl > div')
        .filter({ has: page.locator('dt', { hasText: new RegExp(`^${label}$`) }) });
    return row.locator('dd').innerText();
}

/** An attacker's page: a plain form posting to the decision page, no script needed. */
function forgedForm(action: string, fields: Record<string, string>): string {
    const attr = (v: string) => v.replace(/&/g, '&amp;').replace(/"/g, '&quot;').replace(/</g, '&lt;');
    const inputs = Object.entries(fields)
        .map(([name, value]) => `<input type="hidden" name="${attr(name)}" value="${attr(value)}">`)
        .join('');
    return `<!doctype html><title>Win a prize</title><form method="post" action="${attr(action)}">${inputs}<button type="submit">Send</button></form>`;
}

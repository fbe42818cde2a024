import { existsSync, readFileSync } from 'node:fs';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { dashboard } from '../../functions/dashboard';
import { CLIENT_PRINCIPAL_HEADER, encodeClientPrincipal } from '../../src/web/easyAuth';
import { click, drainApplyQueue, ids, openCard, people, startHarness, type Harness, type TestPerson } from '../harness';
import { startFunctionServer, type FunctionServer } from '../web/functionServer';

/**
 * The dashboard in Debian's Chromium, signed in the way App Service Authentication signs a user in (the test server
 * drops any principal header the browser sends and adds the session's, as the platform does): it loads under its
 * Content-Security-Policy without a single violation, the filter form narrows the list, a request opens with its
 * timeline, the exports download, and someone outside the groups gets nothing.
 */

const CHROMIUM = '/usr/bin/chromium';
const TEST_TIMEOUT_MS = 30_000;

let browser: Browser;

beforeAll(async () => {
    if (!existsSync(CHROMIUM)) {
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

describe('dashboard in a browser', () => {
    let h: Harness;
    let server: FunctionServer;
    let context: BrowserContext;
    let signedIn: TestPerson | undefined;
    const opened: { id: string; pecName: string }[] = [];

    beforeAll(async () => {
        h = await startHarness({ settings: { WEBSITE_AUTH_ENABLED: 'true' } });
        server = await startFunctionServer({
            route: 'dashboard',
            handler: dashboard,
            methods: ['GET'],
            platformHeaders: (headers) => {
                const passed = Object.fromEntries(
                    Object.entries(headers).filter(([name]) => !name.toLowerCase().startsWith(CLIENT_PRINCIPAL_HEADER)),
                );
                if (signedIn) {
                    passed[CLIENT_PRINCIPAL_HEADER] = encodeClientPrincipal({ ...signedIn, tenantId: ids.tenant });
                }
                return passed;
            },
        });
        const foreign = await openCard(h, 'postgres-flexible', { peSubscriptionId: ids.foreign });
        const internal = await openCard(h, 'mysql-flexible');
        await click(h, internal.request, { verb: 'approve', text: 'fine' });
        await drainApplyQueue(h);
        opened.push(
            { id: foreign.request.id, pecName: foreign.seeded.pecName },
            { id: internal.request.id, pecName: internal.seeded.pecName },
        );
    }, 60_000);

    afterAll(async () => {
        await server?.close();
        await h?.close();
    });

    beforeEach(async () => {
        signedIn = people.alice;
        context = await browser.newContext({ acceptDownloads: true });
    });

    afterEach(async () => {
        await context?.close();
        expect(server.errors).toEqual([]);
    });

    it(
        'loads the summary and the list under its CSP, without a console error',
        async () => {
            const { page, problems } = await watchedPage(context);
            const response = await page.goto(`${server.url}/api/dashboard`);
            expect(response?.status()).toBe(200);
            expect((await response!.allHeaders())['content-security-policy']).toContain("default-src 'none'");
            expect(await page.getByRole('heading', { level: 1 }).innerText()).toBe('Private endpoint connections');
            expect(await page.locator('#tile-pending .value').innerText()).toBe('1');
            expect(await page.locator('#tile-decided7 .value').innerText()).toBe('1');
            expect(await page.locator('svg[role="img"]').count()).toBe(2);
            expect(await rowIds(page)).toEqual([opened[1]!.id, opened[0]!.id]);
            // Styles applied: the stylesheet's hash matched, so the tiles are laid out as a grid.
            expect(await page.evaluate("getComputedStyle(document.querySelector('.tiles')).display")).toBe('grid');
            expect(problems).toEqual([]);
        },
        TEST_TIMEOUT_MS,
    );

    it(
        'narrows the list with the filter form, and opens a request with its timeline',
        async () => {
            const { page, problems } = await watchedPage(context);
            await page.goto(`${server.url}/api/dashboard`);
            await page.getByLabel('Origin').selectOption('foreign');
            await Promise.all([
                page.waitForURL(/origin=foreign/),
                page.getByRole('button', { name: 'Filter' }).click(),
            ]);
            expect(await rowIds(page)).toEqual([opened[0]!.id]);
            expect(await page.getByLabel('Origin').inputValue()).toBe('foreign');

            await page.getByLabel('State').selectOption('applied');
            await page.getByRole('button', { name: 'Filter' }).click();
            await page.waitForURL(/status=applied/);
            expect(await page.locator('#no-requests').count()).toBe(1);

            await page.goto(`${server.url}/api/dashboard`);
            await Promise.all([
                page.waitForURL(/request=/),
                page.locator('#requests').getByRole('link', { name: opened[0]!.pecName }).click(),
            ]);
            expect(await page.locator('#chain').innerText()).toContain('Audit trail intact: 2 entries');
            expect(await page.locator('#timeline li').count()).toBe(2);
            expect(await page.locator('#decision-page').getAttribute('href')).toBe(
                `https://pec-gate.example.net/api/requests/${opened[0]!.id}`,
            );
            expect(problems).toEqual([]);
        },
        TEST_TIMEOUT_MS,
    );

    it(
        'downloads the filtered list as CSV and as JSON lines',
        async () => {
            const { page } = await watchedPage(context);
            await page.goto(`${server.url}/api/dashboard?status=applied`);
            const [csv] = await Promise.all([
                page.waitForEvent('download'),
                page.getByRole('link', { name: 'CSV' }).click(),
            ]);
            expect(csv.suggestedFilename()).toMatch(/^pec-requests-\d{8}-\d{4}\.csv$/);
            const text = readFileSync((await csv.path())!, 'utf8');
            expect(
                text
                    .replace(/^\uFEFF/, '')
                    .trim()
                    .split('\r\n'),
            ).toEqual([
                expect.stringMatching(/^id,status,/),
                expect.stringMatching(new RegExp(`^"${opened[1]!.id}","applied","approve"`)),
            ]);
            const [jsonl] = await Promise.all([
                page.waitForEvent('download'),
                page.getByRole('link', { name: 'JSON lines' }).click(),
            ]);
            expect(jsonl.suggestedFilename()).toMatch(/\.jsonl$/);
            const lines = readFileSync((await jsonl.path())!, 'utf8')
                .trim()
                .split('\n');
            expect(lines.map((l) => (JSON.parse(l) as { id: string }).id)).toEqual([opened[1]!.id]);
        },
        TEST_TIMEOUT_MS,
    );

    it(
        'refuses someone outside the approver and reader groups, and shows them nothing',
        async () => {
            signedIn = people.mallory;
            const { page } = await watchedPage(context);
            for (const path of ['/api/dashboard', `/api/dashboard?request=${opened[0]!.id}`]) {
                const response = await page.goto(`${server.url}${path}`);
                expect(response?.status()).toBe(403);
                const text = await page.locator('body').innerText();
                expect(text).toContain('Not allowed');
                for (const { id, pecName } of opened) {
                    expect(await page.content()).not.toContain(id);
                    expect(text).not.toContain(pecName);
                }
            }
            const download = await page.request.get(`${server.url}/api/dashboard?format=csv`);
            expect(download.status()).toBe(403);
            expect(download.headers()['content-disposition']).toBeUndefined();
        },
        TEST_TIMEOUT_MS,
    );
});

async function rowIds(page: Page): Promise<string[]> {
    return page.locator('#requests tbody tr').evaluateAll((rows) => rows.map((r) => r.getAttribute('data-id') ?? ''));
}

async function watchedPage(context: BrowserContext): Promise<{ page: Page; problems: string[] }> {
    const page = await context.newPage();
    const problems: string[] = [];
    page.on('console', (message) => {
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

/**
 * Dashboard screenshots for the README, from the emulator demo's own run: `npm run docs:dashboard` runs `npm run demo`
 * (which leaves the dashboard's pages of its run in demo-output/<time>/), then photographs the newest run's summary
 * and one request's timeline in headless Chromium, into docs/dashboard/. So the pictures always show what the code
 * renders today, from data that went through the real handlers.
 *
 * Chromium is never downloaded: it is /usr/bin/chromium unless CHROMIUM_PATH says otherwise.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { toPalettePng } from './docs-cards';

const root = path.resolve(__dirname, '..');
export const DOCS_DASHBOARD_DIR = path.join(root, 'docs', 'dashboard');
const WIDTH = 1100;

/** The newest demo run that left a dashboard. */
function newestRun(): string {
    const base = path.join(root, 'demo-output');
    const runs = (existsSync(base) ? readdirSync(base) : [])
        .map((name) => path.join(base, name))
        .filter((dir) => existsSync(path.join(dir, 'dashboard.html')))
        .sort((a, b) => statSync(b).mtimeMs - statSync(a).mtimeMs);
    if (!runs[0]) {
        throw new Error('No demo run with a dashboard in demo-output/: run `npm run demo` first');
    }
    return runs[0];
}

async function main(): Promise<void> {
    const chromiumPath = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
    if (!existsSync(chromiumPath)) {
        throw new Error(`Chromium is not installed at ${chromiumPath} (Debian: apt-get install chromium)`);
    }
    const run = newestRun();
    // The foreign request's page: its card was rejected, so its timeline has every step.
    const detail = readdirSync(run).find((f) => f === 'dashboard-mysql-flexible.html');
    if (!detail) {
        throw new Error(`${run} has no dashboard page of the mysql-flexible request`);
    }
    const { chromium } = await import('playwright-core');
    const browser = await chromium.launch({
        executablePath: chromiumPath,
        args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking'],
    });
    mkdirSync(DOCS_DASHBOARD_DIR, { recursive: true });
    try {
        const context = await browser.newContext({
            viewport: { width: WIDTH, height: 900 },
            deviceScaleFactor: 1,
            colorScheme: 'light',
            locale: 'en-US',
            timezoneId: 'UTC',
        });
        const page = await context.newPage();
        // The pages are self-contained; anything they asked for would be a bug.
        await page.route('**/*', (route) => route.abort());
        const shots: { file: string; html: string; selector: string }[] = [
            { file: 'summary.png', html: 'dashboard.html', selector: 'main' },
            { file: 'request.png', html: detail, selector: 'main' },
        ];
        for (const shot of shots) {
            await page.setContent(readFileSync(path.join(run, shot.html), 'utf8'));
            const png = await page.locator(shot.selector).screenshot({ animations: 'disabled', caret: 'hide' });
            const { png: small } = toPalettePng(png);
            writeFileSync(path.join(DOCS_DASHBOARD_DIR, shot.file), small);
            console.log(
                `wrote docs/dashboard/${shot.file} (${Math.round(small.length / 1024)} KB) from ${path.relative(root, run)}/${shot.html}`,
            );
        }
        await context.close();
    } finally {
        await browser.close();
    }
}

main().catch((err: unknown) => {
    console.error(err instanceof Error ? err.message : err);
    process.exit(1);
});

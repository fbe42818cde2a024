import { buildDocCards, COLLAPSED_MAX_HEIGHT, launchCardBrowser, type CardBrowser } from '../../scripts/docs-cards';

/**
 * The compact card, measured: every sample card (every state) rendered by the Adaptive Cards reference renderer in
 * Debian's Chromium at the width docs/cards uses for a Teams chat column, with the Teams-like host config. Collapsed, it
 * fits in about one screen; its Details toggle shows the full facts, and the renderer reports nothing either way.
 */

const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
let browser: CardBrowser;

beforeAll(async () => {
    // Failing, not skipping, when Chromium is missing: launchCardBrowser says how to install it.
    browser = await launchCardBrowser(CHROMIUM);
}, 60_000);

afterAll(async () => {
    await browser?.close();
});

describe('the compact card', () => {
    it.each(buildDocCards().map((card) => [card.name, card] as const))(
        '%s: collapsed within one screen, the details behind the toggle',
        async (_name, card) => {
            const { page, rendered } = await browser.open(card);
            try {
                expect(rendered.problems).toEqual([]);
                expect(rendered.height).toBeLessThanOrEqual(COLLAPSED_MAX_HEIGHT);
                // What decides the click is visible before the toggle; the full facts are not.
                await expect(page.locator('#frame').innerText()).resolves.toMatch(/Request message/);
                expect(await page.locator('#frame').innerText()).not.toMatch(/Resource group:/);
                const expanded = await browser.expand(page);
                expect(expanded.problems).toEqual([]);
                expect(expanded.height).toBeGreaterThan(rendered.height + 200);
                expect(await page.locator('#frame').innerText()).toMatch(/Resource group:/);
            } finally {
                await page.close();
            }
        },
        30_000,
    );
});

import { randomBytes } from 'node:crypto';
import type { ApprovalRequest } from '../../src/domain/request';
import { encodeClientPrincipal } from '../../src/web/easyAuth';
import {
    cardActionActivity,
    cardLink,
    click,
    drainApplyQueue,
    hiddenField,
    ids,
    people,
    postActivity,
    openCard,
    startHarness,
    type Harness,
    type SeededPec,
    web,
} from '../harness';

/**
 * The security matrix of the design's security model: every case tries to get a decision through that must not pass,
 * and checks that it was refused AND that nothing changed: the request, the PEC in ARM, the apply queue, and the audit
 * (a refused signed-in approver is the one thing that is audited, as 'refused').
 */

interface Snapshot {
    request: ApprovalRequest;
    pec: unknown;
    queued: number;
    audit: string[];
}

async function queued(h: Harness): Promise<number> {
    await h.queue.createIfNotExists();
    return (await h.queue.getProperties()).approximateMessagesCount ?? 0;
}

async function snapshot(h: Harness, seeded: SeededPec, requestId: string): Promise<Snapshot> {
    const stored = await h.deps.requests.get(requestId);
    return {
        request: stored!.request,
        pec: h.arm.getPec(seeded.pecId),
        queued: await queued(h),
        audit: (await h.deps.audit.list(requestId)).map((e) => e.action),
    };
}

describe('security matrix', () => {
    let h: Harness;
    let seeded: SeededPec;
    let request: ApprovalRequest;
    let before: Snapshot;

    async function setUp(settings: Record<string, string> = {}, message?: string) {
        h = await startHarness({ settings: { WEBSITE_AUTH_ENABLED: 'true', ...settings } });
        ({ seeded, request } = await openCard(h, 'postgres-flexible', message === undefined ? {} : { message }));
        before = await snapshot(h, seeded, request.id);
    }

    afterEach(async () => {
        await h.close();
    });

    async function expectNothingChanged(options: { refusedAudits?: number } = {}) {
        const after = await snapshot(h, seeded, request.id);
        expect(after.request).toEqual(before.request);
        expect(after.pec).toEqual(before.pec);
        expect(after.queued).toBe(before.queued);
        expect(after.audit).toEqual([...before.audit, ...Array(options.refusedAudits ?? 0).fill('refused')]);
    }

    describe('the bot callback refuses with 401 before any other I/O', () => {
        beforeEach(() => setUp());

        async function expect401(authorization: string | null, activity?: Record<string, unknown>) {
            const graphCalls = h.graph.requests.length;
            const result = await postActivity(h, activity ?? cardActionActivity(h, request), authorization);
            expect(result.status).toBe(401);
            expect(result.text).not.toContain(request.id);
            expect(h.graph.requests.length).toBe(graphCalls);
            await expectNothingChanged();
        }

        const token = (overrides: Record<string, unknown> = {}, options = {}) =>
            h.botIdentity.tokenFor({ audience: ids.client, serviceUrl: h.bot.serviceUrl, ...overrides }, options);

        it('1. no token', async () => {
            const keyFetches = h.botIdentity.requests.length;
            await expect401(null);
            expect(h.botIdentity.requests.length).toBe(keyFetches);
        });

        it('2. a malformed token', async () => {
            await expect401('Bearer not.a-jwt');
            await expect401('Basic dXNlcjpwYXNz');
            await expect401(`Bearer ${randomBytes(64).toString('base64url')}`);
        });

        it('3. alg: none', async () => {
            const unsigned = h.botIdentity.unsignedToken({
                iss: 'https://api.botframework.com',
                aud: ids.client,
                serviceurl: h.bot.serviceUrl,
            });
            await expect401(`Bearer ${unsigned}`);
        });

        it('4. a token signed by an unknown key', async () => {
            await expect401(`Bearer ${await token({}, { key: 'unknown' })}`);
            // Also with the kid of a real key: the signature is what counts.
            await expect401(`Bearer ${await token({}, { key: 'unknown', kid: h.botIdentity.currentKid })}`);
            await expect401(`Bearer ${await token({}, { alg: 'HS256' })}`);
        });

        it('5. an expired token', async () => {
            const issuedAt = Math.floor(Date.now() / 1000) - 3 * 3600;
            await expect401(`Bearer ${await token({}, { issuedAt, expiresInSeconds: 3600 })}`);
        });

        it('6. the wrong audience', async () => {
            await expect401(`Bearer ${await token({ audience: '11111111-2222-4333-8444-555555555555' })}`);
        });

        it('7. the wrong issuer', async () => {
            await expect401(`Bearer ${await token({ iss: 'https://sts.windows.net/' + ids.tenant + '/' })}`);
        });

        it('8. a serviceurl claim that is not the activity serviceUrl', async () => {
            await expect401(`Bearer ${await token({ serviceUrl: 'https://evil.example.net/teams/' })}`);
            // And the other way round: a genuine token, the activity pointing elsewhere.
            const moved = cardActionActivity(h, request, {
                activity: { serviceUrl: 'https://evil.example.net/teams/' },
            });
            await expect401(`Bearer ${await token()}`, moved);
        });
    });

    describe('a genuine Bot Framework caller', () => {
        beforeEach(() => setUp());

        it('9. from the wrong tenant is refused', async () => {
            const result = await click(h, request, {
                text: 'ok',
                activity: {
                    channelData: { tenant: { id: ids.foreignTenant } },
                },
            });
            expect(result.body).toMatchObject({
                statusCode: 400,
                type: 'application/vnd.microsoft.error',
                value: { message: 'This app serves another tenant' },
            });
            await expectNothingChanged();
        });

        it('10. from another conversation or another message is refused', async () => {
            const elsewhere = await click(h, request, {
                activity: { conversation: { id: '19:other@thread.tacv2;messageid=1' } },
            });
            expect(elsewhere.body).toMatchObject({ statusCode: 400 });
            const otherMessage = await click(h, request, { activity: { replyToId: '1700000000000' } });
            expect(otherMessage.body).toMatchObject({ statusCode: 400 });
            const noReplyTo = await click(h, request, { activity: { replyToId: undefined } });
            expect(noReplyTo.body).toMatchObject({ statusCode: 400 });
            await expectNothingChanged();
        });

        it('11. a non-approver sees the status, no buttons, and the refusal is audited', async () => {
            const result = await click(h, request, { who: people.mallory, text: 'looks fine' });
            expect(result.body).toMatchObject({ statusCode: 200 });
            expect(result.text).toContain('Only members of the approver groups can decide');
            expect(result.text).not.toMatch(/"verb":"(approve|reject)"/);
            await expectNothingChanged({ refusedAudits: 1 });
            const audit = await h.deps.audit.list(request.id);
            expect(audit.at(-1)).toMatchObject({ action: 'refused', actor: { id: people.mallory.objectId } });
        });

        it('12. the requester cannot approve their own private endpoint', async () => {
            const result = await click(h, request, { who: people.dev, text: 'mine' });
            expect(result.text).toContain('someone else has to decide');
            await expectNothingChanged({ refusedAudits: 1 });
        });

        it('13. a replayed click is answered with the current card, never a second decision', async () => {
            const activity = cardActionActivity(h, request, { verb: 'approve', text: 'ok' });
            const auth = `Bearer ${await h.botIdentity.tokenFor({ audience: ids.client, serviceUrl: h.bot.serviceUrl })}`;
            const first = await postActivity(h, activity, auth);
            expect(first.text).toContain('Approving… by Alice Approver');
            const reject = cardActionActivity(h, request, { verb: 'reject', text: 'replayed', who: people.bob });
            const replays = await Promise.all([postActivity(h, activity, auth), postActivity(h, reject)]);
            for (const replay of replays) {
                expect(replay.text).toContain('Approving… by Alice Approver');
                expect(replay.text).not.toMatch(/"verb":"(approve|reject)"/);
            }
            expect(await queued(h)).toBe(1);
            const audit = (await h.deps.audit.list(request.id)).map((e) => e.action);
            expect(audit.filter((a) => a === 'decided')).toHaveLength(1);
            await drainApplyQueue(h);
            const late = await postActivity(h, reject);
            expect(late.text).toContain('Approved by Alice Approver');
            expect((await h.deps.audit.list(request.id)).filter((e) => e.action === 'decided')).toHaveLength(1);
        });

        it('14. a guessed or forged request id finds nothing', async () => {
            for (const requestId of [randomBytes(16).toString('base64url'), '../../r-x', "x' or 1 eq 1", '']) {
                const result = await click(h, { ...request, id: requestId });
                expect(result.body).toMatchObject({ statusCode: expect.any(Number), type: expect.any(String) });
                expect(result.body?.statusCode).not.toBe(200);
            }
            await expectNothingChanged();
        });

        it('15. a PEC already decided in the portal is superseded, not decided again', async () => {
            h.arm.setPecStatus(seeded.pecId, 'Rejected', 'Rejected in the portal by ops');
            const result = await click(h, request, { text: 'ok' });
            expect(result.text).toContain('Superseded');
            expect(result.text).toContain('Rejected outside this app');
            const stored = await h.deps.requests.get(request.id);
            expect(stored?.request.status).toBe('superseded');
            expect(h.arm.getPec(seeded.pecId)).toMatchObject({
                properties: {
                    privateLinkServiceConnectionState: {
                        status: 'Rejected',
                        description: 'Rejected in the portal by ops',
                    },
                },
            });
            expect(await queued(h)).toBe(0);
            expect((await h.deps.audit.list(request.id)).map((e) => e.action)).toEqual([...before.audit, 'superseded']);
        });

        it('16. a reject with no text answers with an inline error', async () => {
            for (const text of [undefined, '', '   \n  ']) {
                const result = await click(h, request, { verb: 'reject', ...(text === undefined ? {} : { text }) });
                expect(result.body).toMatchObject({ statusCode: 200 });
                expect(result.text).toContain('A reject needs a response text');
                expect(result.text).toMatch(/"verb":"(approve|reject)"/);
            }
            await expectNothingChanged();
        });

        it('17. oversized text is refused, control characters never reach ARM', async () => {
            const oversized = await click(h, request, { verb: 'approve', text: 'x'.repeat(501) });
            expect(oversized.text).toContain('the limit is 500');
            const onlyControls = await click(h, request, { verb: 'reject', text: '\u0000\u001b\u202e\u200b' });
            expect(onlyControls.text).toContain('A reject needs a response text');
            await expectNothingChanged();

            const dirty = await click(h, request, { verb: 'approve', text: 'ok\u0000\u001b[31m red\u202e evil' });
            expect(dirty.text).toContain('Approving…');
            await drainApplyQueue(h);
            const state = (
                h.arm.getPec(seeded.pecId) as {
                    properties: { privateLinkServiceConnectionState: { description: string } };
                }
            ).properties.privateLinkServiceConnectionState;
            expect(state.description).toBe('Approved by alice@contoso.com: ok[31m red evil');
            // eslint-disable-next-line no-control-regex -- the point of the test
            expect(state.description).not.toMatch(/[\u0000-\u001f\u202e]/);
        });
    });

    describe('untrusted text', () => {
        it('18. HTML and markdown in the request message stay text, on the card and on the page', async () => {
            const hostile =
                '<script>alert(1)</script> [click](https://evil.example) **urgent** <img src=x onerror=alert(2)>';
            await setUp({}, hostile);
            const card = h.bot.cards()[0] as { body?: unknown };
            const runs: { type: string; text: string }[] = [];
            const walk = (node: unknown) => {
                if (Array.isArray(node)) {
                    node.forEach(walk);
                } else if (node && typeof node === 'object') {
                    const el = node as Record<string, unknown>;
                    if (el.type === 'TextBlock' && typeof el.text === 'string' && el.text.includes('click')) {
                        runs.push({ type: 'TextBlock', text: el.text });
                    }
                    if (el.type === 'TextRun' && typeof el.text === 'string' && el.text.includes('click')) {
                        runs.push({ type: 'TextRun', text: el.text });
                    }
                    Object.values(el).forEach(walk);
                }
            };
            walk(card.body);
            // Only in TextRuns, which Teams never renders as markdown.
            expect(runs.length).toBeGreaterThan(0);
            expect(runs.every((r) => r.type === 'TextRun')).toBe(true);

            const page = await web({ url: cardLink(h, request.id) });
            expect(page.status).toBe(200);
            expect(page.html).not.toContain('<script>alert(1)</script>');
            expect(page.html).not.toContain('<img src=x');
            expect(page.html).toContain('&lt;script&gt;alert(1)&lt;/script&gt;');
            expect(page.html).not.toMatch(/<script/i);
            expect(page.headers['Content-Security-Policy'] ?? page.headers['content-security-policy']).toContain(
                "default-src 'none'",
            );
        });
    });

    describe('the web page', () => {
        it('19. refuses a forged x-ms-client-principal when App Service Authentication is off', async () => {
            await setUp({ WEBSITE_AUTH_ENABLED: 'false' });
            const url = cardLink(h, request.id);
            const graphCalls = h.graph.requests.length;
            const get = await web({ url });
            expect(get.status).toBe(401);
            expect(get.html).not.toContain(seeded.pecName);
            const post = await web({ method: 'POST', url, form: { verb: 'approve', token: 'x', csrf: 'y' } });
            expect(post.status).toBe(401);
            expect(h.graph.requests.length).toBe(graphCalls);
            await expectNothingChanged();
        });

        it('19b. refuses the local stand-in when the app runs in Azure', async () => {
            await setUp({ WEBSITE_AUTH_ENABLED: 'false', DEV_TRUST_CLIENT_PRINCIPAL: 'true' });
            process.env.WEBSITE_SITE_NAME = 'pec-gate-prod';
            try {
                const get = await web({ url: cardLink(h, request.id) });
                expect(get.status).toBe(403);
            } finally {
                delete process.env.WEBSITE_SITE_NAME;
            }
            // Locally (no WEBSITE_SITE_NAME) the stand-in works.
            expect((await web({ url: cardLink(h, request.id) })).status).toBe(200);
            await expectNothingChanged();
        });

        it('19c. refuses a signed-in user of another tenant, even one in the approver group', async () => {
            await setUp();
            const url = cardLink(h, request.id);
            const guest = encodeClientPrincipal({ ...people.alice, tenantId: ids.foreignTenant });
            const get = await web({ url, principalHeader: guest });
            expect(get.status).toBe(403);
            expect(get.html).not.toContain(seeded.pecName);
            const post = await web({
                method: 'POST',
                url,
                principalHeader: guest,
                form: { verb: 'approve', token: url.searchParams.get('token') ?? '', csrf: 'x' },
            });
            expect(post.status).toBe(403);
            await expectNothingChanged();
        });

        it('20. refuses a POST without, or with someone else’s, CSRF token', async () => {
            await setUp();
            const url = cardLink(h, request.id);
            const page = await web({ url });
            const csrf = hiddenField(page.html, 'csrf');
            const token = hiddenField(page.html, 'token');
            const form = { verb: 'approve', token, responseText: 'ok' };

            expect((await web({ method: 'POST', url, form })).status).toBe(403);
            expect((await web({ method: 'POST', url, form: { ...form, csrf: '' } })).status).toBe(403);
            expect((await web({ method: 'POST', url, form: { ...form, csrf: `${csrf}x` } })).status).toBe(403);
            // Bob is an approver too, but the token was issued to Alice.
            expect((await web({ method: 'POST', url, who: people.bob, form: { ...form, csrf } })).status).toBe(403);
            await expectNothingChanged();

            const accepted = await web({ method: 'POST', url, form: { ...form, csrf } });
            expect(accepted.status).toBe(200);
            expect((await h.deps.requests.get(request.id))?.request.status).toBe('decided');
        });

        it('21. refuses a reused or an expired link token', async () => {
            await setUp();
            const url = cardLink(h, request.id);
            const page = await web({ url });
            const form = {
                verb: 'reject',
                token: hiddenField(page.html, 'token'),
                csrf: hiddenField(page.html, 'csrf'),
                responseText: 'not ours',
            };
            // Time moves past the link's lifetime (7 days by default): the link is refused.
            const realNow = h.deps.now;
            h.deps.now = () => new Date(realNow().getTime() + 8 * 24 * 3600_000);
            expect((await web({ url })).status).toBe(410);
            expect((await web({ method: 'POST', url, form })).status).toBe(403);
            h.deps.now = realNow;
            await expectNothingChanged();

            expect((await web({ method: 'POST', url, form })).status).toBe(200);
            const decided = await snapshot(h, seeded, request.id);
            expect(decided.request.link?.usedAt).toBeDefined();
            // The spent token decides nothing again, whoever holds it.
            const bobPage = await web({ url, who: people.bob });
            expect(bobPage.html).not.toContain('name="csrf"');
            const replay = await web({ method: 'POST', url, form: { ...form, verb: 'approve' } });
            expect(replay.status).toBe(409);
            expect(await snapshot(h, seeded, request.id)).toEqual(decided);
        });

        it('22b. shows a decided request without its link only to the approver and reader groups', async () => {
            const readers = '5ec0a1d1-0000-4000-8000-00000000cafe';
            const auditor = { objectId: 'a0d17000-0000-4000-8000-0000000a0d17', name: 'Ann', upn: 'ann@contoso.com' };
            await setUp({ DASHBOARD_READER_GROUP_IDS: readers });
            h.graph.addUser({ id: auditor.objectId, displayName: auditor.name, userPrincipalName: auditor.upn });
            h.graph.addGroup(readers, { members: [auditor.objectId] });
            const url = cardLink(h, request.id);
            await click(h, request, { who: people.bob, text: 'fine by me' });
            expect((await h.deps.requests.get(request.id))?.request.status).toBe('decided');
            const bare = new URL(url.pathname, url.origin);

            // Mallory signs in to our tenant but is in no group: no link, no finished request.
            const refused = await web({ url: bare, who: people.mallory });
            expect(refused.status).toBe(403);
            expect(refused.html).not.toContain(seeded.pecName);
            expect(refused.html).not.toContain('Bob Approver');
            // The card's link, spent or not, still shows it to whoever held it; the groups see it without one.
            expect((await web({ url, who: people.mallory })).status).toBe(200);
            expect((await web({ url: bare, who: auditor })).status).toBe(200);
            const approver = await web({ url: bare, who: people.alice });
            expect(approver.status).toBe(200);
            expect(approver.html).toContain('Bob Approver');
            // A Graph outage refuses rather than shows (Dev's membership was not asked before, so nothing is cached).
            h.graph.faults.add({ kind: 'error', status: 503 }, { times: 20 });
            expect((await web({ url: bare, who: people.dev })).status).toBe(503);
        });

        it('22. refuses a POST, valid tokens and all, whose Origin or Sec-Fetch-Site is not the app’s own', async () => {
            await setUp();
            const url = cardLink(h, request.id);
            const page = await web({ url });
            const form = {
                verb: 'approve',
                token: hiddenField(page.html, 'token'),
                csrf: hiddenField(page.html, 'csrf'),
                responseText: 'ok',
            };
            const refusedWith = async (browser: { origin?: string; secFetchSite?: string }) => {
                const post = await web({ method: 'POST', url, form, browser });
                expect(post.status).toBe(403);
                expect(post.html).toContain('Not accepted');
            };
            // Another site, a look-alike host, another scheme or port of ours, an opaque origin.
            await refusedWith({ origin: 'https://attacker.example', secFetchSite: 'cross-site' });
            await refusedWith({ origin: 'https://pec-gate.example.net.attacker.example' });
            await refusedWith({ origin: 'http://pec-gate.example.net' });
            await refusedWith({ origin: 'https://pec-gate.example.net:8443' });
            await refusedWith({ origin: 'null' });
            // No Origin: Sec-Fetch-Site decides, and only same-origin passes.
            await refusedWith({ secFetchSite: 'cross-site' });
            await refusedWith({ secFetchSite: 'same-site' });
            await refusedWith({ secFetchSite: 'none' });
            // A browser never sends the two in contradiction.
            await refusedWith({ origin: 'https://pec-gate.example.net', secFetchSite: 'cross-site' });
            // Neither: not a browser on our page.
            await refusedWith({});
            await expectNothingChanged();

            // Sec-Fetch-Site alone (a browser that left Origin out), from our own page, is accepted.
            const accepted = await web({ method: 'POST', url, form, browser: { secFetchSite: 'same-origin' } });
            expect(accepted.status).toBe(200);
            expect((await h.deps.requests.get(request.id))?.request.status).toBe('decided');
        });
    });
});

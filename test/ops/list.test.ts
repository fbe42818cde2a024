import { listCommand } from '../../src/ops/list';
import type { RequestSummary } from '../../src/ops/summary';
import { foreignSub, foreignTenant, memoryOutput, opsTables, seedRequest } from './helpers';

/**
 * `pec list` against Azurite: what needs attention whatever its age, what finished recently, and nothing older
 * unless --all.
 */

const day = 86_400_000;

describe('pec list', () => {
    const t = opsTables();
    const now = new Date();
    const since = new Date(now.getTime() - 7 * day);
    let seeded: Record<string, string>;

    beforeAll(async () => {
        const ago = (days: number) => new Date(now.getTime() - days * day);
        const [pending, oldPending, noCard, decided, failed, recentApplied, recentRejected, oldApplied, oldSuperseded] =
            await Promise.all([
                seedRequest(t, { at: ago(0.01) }),
                // Pending for a month: still listed, it still waits for someone.
                seedRequest(t, { at: ago(30), peSubscription: foreignSub, requesterTenant: foreignTenant }),
                seedRequest(t, { at: ago(1), card: false, requesterTenant: null }),
                seedRequest(t, { at: ago(2), status: 'decided' }),
                seedRequest(t, { at: ago(40), status: 'failed' }),
                seedRequest(t, { at: ago(3), status: 'applied' }),
                seedRequest(t, { at: ago(4), status: 'applied', action: 'reject' }),
                seedRequest(t, { at: ago(30), status: 'applied' }),
                seedRequest(t, { at: ago(20), status: 'superseded' }),
            ]);
        seeded = {
            pending: pending.id,
            oldPending: oldPending.id,
            noCard: noCard.id,
            decided: decided.id,
            failed: failed.id,
            recentApplied: recentApplied.id,
            recentRejected: recentRejected.id,
            oldApplied: oldApplied.id,
            oldSuperseded: oldSuperseded.id,
        };
    });

    const rowOf = (text: string, id: string | undefined) => text.split('\n').find((l) => id && l.startsWith(id));

    it('shows what needs attention and what finished within --since, and hides older finished requests', async () => {
        const output = memoryOutput();
        expect(await listCommand(t.stores, { all: false, since, now, json: false }, output)).toBe(0);
        const text = output.text();
        expect(text.split('\n')[0]).toMatch(/^ID\s+STATUS\s+KIND\s+SERVER\s+PEC\s+REQUESTER\s+ORIGIN\s+AGE\s+CARD$/);
        for (const key of ['pending', 'oldPending', 'noCard', 'decided', 'failed', 'recentApplied', 'recentRejected']) {
            expect(rowOf(text, seeded[key])).toBeDefined();
        }
        expect(text).not.toContain(seeded.oldApplied);
        expect(text).not.toContain(seeded.oldSuperseded);

        expect(rowOf(text, seeded.pending)).toMatch(
            /pending\s+postgres-flexible\s+.*dev@contoso\.com\s+trusted sub, our tenant\s+\d+m\s+bot$/,
        );
        expect(rowOf(text, seeded.oldPending)).toMatch(/UNTRUSTED sub, FOREIGN tenant\s+30d\s+bot$/);
        expect(rowOf(text, seeded.noCard)).toMatch(/tenant unknown\s+\S+\s+MISSING \(pec resend\)$/);
        expect(rowOf(text, seeded.decided)).toMatch(/decided \(approved\)/);
        expect(rowOf(text, seeded.recentApplied)).toMatch(/applied \(approved\)/);
        expect(rowOf(text, seeded.recentRejected)).toMatch(/applied \(rejected\)/);

        // Attention first (pending, decided, failed), then the finished ones, each newest first.
        const order = text
            .split('\n')
            .slice(1)
            .map((l) => Object.entries(seeded).find(([, id]) => l.startsWith(id))?.[0])
            .filter(Boolean);
        expect(order).toEqual([
            'pending',
            'noCard',
            'decided',
            'oldPending',
            'failed',
            'recentApplied',
            'recentRejected',
        ]);
        expect(text).toMatch(
            /7 requests: 3 pending, 1 decided, 1 failed; 2 finished since .* \(--all for every request\)\. 1 open without a card: pec resend ID$/,
        );
    });

    it('lists every request with --all', async () => {
        const output = memoryOutput();
        await listCommand(t.stores, { all: true, since, now, json: false }, output);
        for (const id of Object.values(seeded)) {
            expect(output.text()).toContain(id);
        }
        expect(output.text()).toMatch(/9 requests in all: 3 pending, 1 decided, 1 failed, 4 finished/);
    });

    it('keeps only the requests on the resource kinds asked for with --kind', async () => {
        const output = memoryOutput();
        await listCommand(t.stores, { all: true, since, now, json: false, kinds: ['key-vault'] }, output);
        expect(output.text()).toMatch(/^0 requests in all/m);
        const flexible = memoryOutput();
        await listCommand(t.stores, { all: true, since, now, json: false, kinds: ['postgres-flexible'] }, flexible);
        expect(flexible.text()).toMatch(/9 requests in all/);
    });

    it('writes the same rows as JSON with --json', async () => {
        const output = memoryOutput();
        await listCommand(t.stores, { all: false, since, now, json: true }, output);
        const rows = JSON.parse(output.text()) as RequestSummary[];
        expect(rows.map((r) => r.id).sort()).toEqual(
            [
                seeded.pending,
                seeded.oldPending,
                seeded.noCard,
                seeded.decided,
                seeded.failed,
                seeded.recentApplied,
                seeded.recentRejected,
            ].sort(),
        );
        const foreign = rows.find((r) => r.id === seeded.oldPending);
        expect(foreign).toMatchObject({
            status: 'pending',
            serverKind: 'postgres-flexible',
            requester: 'dev@contoso.com',
            origin: {
                endpointSubscription: 'untrusted',
                endpointSubscriptionId: foreignSub,
                requesterTenant: 'foreign',
            },
            card: { state: 'current', channel: 'bot' },
        });
        expect(rows.find((r) => r.id === seeded.noCard)?.card.state).toBe('missing');
    });

    it('says so when nothing is listed', async () => {
        const empty = opsTables();
        await empty.requestsClient();
        const output = memoryOutput();
        expect(await listCommand(empty.stores, { all: false, since, now, json: false }, output)).toBe(0);
        expect(output.stdout).toEqual([
            expect.stringMatching(/^0 requests: 0 pending, 0 decided, 0 failed; 0 finished/),
        ]);
    });
});

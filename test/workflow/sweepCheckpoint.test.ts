import { TableClient } from '@azure/data-tables';
import type { ServerKind } from '../../src/domain/ids';
import { sweep } from '../../src/workflow/sweep';
import { ids, seedPendingPec, startHarness, testContext, type Harness, type SeededPec } from '../harness';

/**
 * A sweep that cannot list a large estate within one timer run's time budget leaves a checkpoint (one row in the
 * requests table) and the next run resumes there, against Azurite and the ARM emulator. A budget of 0 lists one scope
 * per run (at least one is always listed, so a pass moves on).
 */

const kinds: ServerKind[] = ['postgres-flexible', 'mysql-flexible'];
const subscriptions = [ids.ours, ids.second];

describe('sweep checkpoint: resuming a pass over the watched scopes', () => {
    let h: Harness;
    /** One pending PEC per scope, in the sweep's order (subscription by subscription, kinds in their order). */
    let seeded: SeededPec[];

    beforeAll(async () => {
        h = await startHarness();
        h.deps.settings = { ...h.deps.settings, watchedSubscriptionIds: subscriptions, watchedKinds: kinds };
        seeded = subscriptions.flatMap((subscriptionId) =>
            kinds.map((kind) =>
                seedPendingPec(h.arm, kind, { subscriptionId, serverName: `cp-${subscriptionId.slice(-4)}-${kind}` }),
            ),
        );
    });
    afterAll(async () => {
        await h.close();
    });
    beforeEach(async () => {
        await h.deps.sweepCheckpoints!.clear();
    });

    /** The subscription-wide lists a run made, as "subscription/type". */
    function listsSince(from: number): string[] {
        return h.arm.requests
            .slice(from)
            .map((r) => /^\/subscriptions\/([^/]+)\/providers\/[^/]+\/([^/]+)$/i.exec(r.path))
            .filter((m) => m !== null)
            .map((m) => `${m[1]}/${m[2]}`);
    }

    async function run(budgetMs?: number) {
        const from = h.arm.requests.length;
        const context = testContext('sweep');
        const report = await sweep(h.deps, context, budgetMs === undefined ? {} : { budgetMs });
        return { report, lists: listsSince(from), logs: context.logs };
    }

    it('an interrupted sweep resumes where it stopped, and the pass ends at the last scope', async () => {
        const first = await run(0);
        expect(first.report.scopes).toEqual({ from: 0, to: 1, of: 4, finished: false });
        expect(first.lists).toEqual([`${ids.ours}/flexibleServers`]);
        expect(first.report.waiting).toEqual([seeded[0]!.pecId]);
        const began = await h.deps.sweepCheckpoints!.load();
        expect(began).toMatchObject({ checkpoint: { next: 1 } });

        const second = await run(0);
        expect(second.report.scopes).toEqual({ from: 1, to: 2, of: 4, finished: false });
        expect(second.report.waiting).toEqual([seeded[1]!.pecId]);
        expect(second.logs.some((l) => /resuming the pass begun .* at scope 1 of 4/.test(l))).toBe(true);
        // The pass keeps the time it began, so the log tells how long a pass of the estate takes.
        const passStartedAt = (began as { checkpoint: { passStartedAt: string } }).checkpoint.passStartedAt;
        expect(await h.deps.sweepCheckpoints!.load()).toMatchObject({ checkpoint: { next: 2, passStartedAt } });

        // A run with time to spare lists the rest, and the pass is over: its row is gone.
        const third = await run();
        expect(third.report.scopes).toEqual({ from: 2, to: 4, of: 4, finished: true });
        expect(third.lists.sort()).toEqual([`${ids.second}/flexibleServers`, `${ids.second}/flexibleServers`]);
        expect(third.report.waiting.sort()).toEqual([seeded[2]!.pecId, seeded[3]!.pecId].sort());
        expect(await h.deps.sweepCheckpoints!.load()).toEqual({});
    });

    it('a finished sweep starts fresh next time', async () => {
        for (let i = 0; i < 4; i++) {
            await run(0);
        }
        expect(await h.deps.sweepCheckpoints!.load()).toEqual({});

        const next = await run(0);
        expect(next.report.scopes).toEqual({ from: 0, to: 1, of: 4, finished: false });
        expect(next.lists).toEqual([`${ids.ours}/flexibleServers`]);

        await h.deps.sweepCheckpoints!.clear();
        const whole = await run();
        expect(whole.report.scopes).toEqual({ from: 0, to: 4, of: 4, finished: true });
        expect(whole.report.waiting).toHaveLength(4);
    });

    it('a corrupt checkpoint is logged and ignored: the run starts a new pass and replaces it', async () => {
        const table = TableClient.fromConnectionString(h.env.AzureWebJobsStorage!, h.env.REQUESTS_TABLE!, {
            allowInsecureConnection: true,
        });
        await table.upsertEntity(
            { partitionKey: 'sweep-checkpoint', rowKey: 'checkpoint', scopes: 'not a fingerprint', next: 'banana' },
            'Replace',
        );

        const { report, logs } = await run(0);

        expect(report.scopes).toEqual({ from: 0, to: 1, of: 4, finished: false });
        expect(report.errors).toEqual([]);
        expect(logs.some((l) => /checkpoint is unusable \(scopes is not a fingerprint\); ignored/.test(l))).toBe(true);
        expect(await h.deps.sweepCheckpoints!.load()).toMatchObject({ checkpoint: { next: 1 } });

        // A row for another list of scopes (a subscription added since) does not place this run either.
        const stored = (await h.deps.sweepCheckpoints!.load()) as { checkpoint: { scopes: string } };
        await h.deps.sweepCheckpoints!.save({
            scopes: stored.checkpoint.scopes.replace(/^./, (c) => (c === '0' ? '1' : '0')),
            next: 3,
            passStartedAt: new Date().toISOString(),
            updatedAt: new Date().toISOString(),
        });
        expect((await run()).report.scopes).toEqual({ from: 0, to: 4, of: 4, finished: true });
        expect(await h.deps.sweepCheckpoints!.load()).toEqual({});
    });
});

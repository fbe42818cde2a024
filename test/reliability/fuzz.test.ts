import fc from 'fast-check';
import { people, resourceWriteEvent, startHarness, type Harness } from '../harness';
import {
    caseArbs,
    describeCase,
    FuzzJudge,
    prepareFuzzWorld,
    runFuzz,
    targetSeed,
    type FuzzCase,
    type FuzzWorld,
} from './fuzz';

/**
 * The fuzzing of issue 6, small and seeded: generated events, bot activities and web requests, all invalid or
 * unauthorised, thrown at the registered handlers. None may throw, answer 5xx, or write anything. The long runs
 * (10,000 cases and more) are the benchmark's; this one keeps the generators and the detector honest on every run.
 * FUZZ_SEED and FUZZ_CASES replay another seed or a longer run: `FUZZ_SEED=7 FUZZ_CASES=10000 npm test -- fuzz`.
 */

const seed = Number(process.env.FUZZ_SEED ?? 20261121);
const cases = Number(process.env.FUZZ_CASES ?? 300);

describe('fuzzing the handlers', () => {
    let h: Harness;
    beforeEach(async () => {
        h = await startHarness({ settings: { WEBSITE_AUTH_ENABLED: 'true' } });
    });
    afterEach(async () => {
        await h.close();
    });

    it(`${cases} invalid inputs (seed ${seed}): no throw, no 5xx, no write`, async () => {
        const lines: string[] = [];
        const report = await runFuzz(h, { cases, seed, log: (line) => lines.push(line) });
        expect(report.cases).toBe(cases);
        for (const target of ['events', 'activities', 'forms'] as const) {
            expect(report.byTarget[target].cases).toBeGreaterThanOrEqual(Math.floor(cases / 3));
        }
        if (report.crashes > 0) {
            // Where the cases ended, per target, to go with the examples in the failure message.
            console.log(lines.join('\n'));
        }
        expect({ crashes: report.crashes, examples: report.examples }).toEqual({ crashes: 0, examples: [] });
    }, 120_000);

    describe('the crash detector', () => {
        let world: FuzzWorld;
        beforeEach(async () => {
            world = await prepareFuzzWorld(h);
        });

        const event = (e: Record<string, unknown>): FuzzCase => ({
            target: 'events',
            input: { json: JSON.stringify(e) },
        });

        it('counts a write, in the emulators and in storage, and names the case that made it', async () => {
            // A batch larger than the cases, so the storage writes are found only by the look after the batch.
            const judge = new FuzzJudge(h, { storageCheckEvery: 100 });
            const cases: FuzzCase[] = [
                event({ junk: true }),
                // Valid: the decoy's pending PEC gets its request and card (ARM, the Bot Connector and storage).
                event(resourceWriteEvent(world.watchedDecoy.pecId)),
                // A signed-in non-approver on the real card: only the audited refusal is written, so only the look at
                // Azurite can find it.
                {
                    target: 'activities',
                    input: {
                        auth: 'valid',
                        authorization: `Bearer ${world.tokens.valid}`,
                        body: JSON.stringify(world.click({ who: people.mallory, verb: 'approve', text: 'ok' })),
                    },
                },
                event({ junk: 'again' }),
            ];
            for (const [i, c] of cases.entries()) {
                await judge.run(c.target, i, c);
            }
            await judge.checkStorage();

            const { report } = judge;
            expect(report.cases).toBe(4);
            expect(report.crashes).toBe(2);
            expect(report.byTarget).toEqual({
                events: { cases: 3, crashes: 1 },
                activities: { cases: 1, crashes: 1 },
                forms: { cases: 0, crashes: 0 },
            });
            expect(report.examples).toHaveLength(2);
            expect(report.examples[0]).toMatch(/^events #1: wrote: .*Bot Connector POST/);
            expect(report.examples[1]).toMatch(
                /^activities #2: wrote to storage: aud\w+:refused .*\(found by replay\)/,
            );
        });

        it('counts a web decision that got through as a write', async () => {
            const judge = new FuzzJudge(h, { storageCheckEvery: 1 });
            const form = new URLSearchParams({ csrf: world.csrf, token: world.linkToken, verb: 'approve' }).toString();
            await judge.run('forms', 0, {
                target: 'forms',
                input: {
                    trust: 'platform',
                    principal: 'alice',
                    principalHeader: world.principals.alice,
                    method: 'POST',
                    id: world.request.id,
                    query: [],
                    contentType: 'application/x-www-form-urlencoded',
                    body: form,
                },
            });
            expect(judge.report.crashes).toBe(1);
            expect(judge.report.examples[0]).toMatch(/^forms #0: .*wrote to storage: .*req\w+:decided/);
        });

        it('counts a handler that throws', async () => {
            // ARM refuses to list the PECs: pecEvents throws, so Event Grid would redeliver. (About the decoy: an event
            // about the PEC with the open request is answered from the request, without ARM.)
            h.arm.faults.add(
                { kind: 'error', status: 403, code: 'AuthorizationFailed' },
                { method: 'GET', pathIncludes: 'privateEndpointConnections', times: 1 },
            );
            const judge = new FuzzJudge(h);
            await judge.run('events', 0, event(resourceWriteEvent(world.watchedDecoy.pecId)));
            await judge.checkStorage();
            expect(judge.report.crashes).toBe(1);
            expect(judge.report.examples[0]).toMatch(/^events #0: threw \w+: list PECs .*403/);
        });

        it('reports crashes with their seed and path, and the input shrunk, instead of throwing', async () => {
            // From here on ARM refuses every PEC list: each event that gets as far as ARM makes pecEvents throw.
            h.arm.faults.add(
                { kind: 'error', status: 403, code: 'AuthorizationFailed' },
                { method: 'GET', pathIncludes: 'privateEndpointConnections', times: 1_000_000 },
            );
            const report = await runFuzz(h, { cases: 150, seed, world });
            expect(report.cases).toBe(150);
            expect(report.crashes).toBeGreaterThan(0);
            expect(report.byTarget.events.crashes).toBe(report.crashes);
            expect(report.examples[0]).toMatch(
                new RegExp(
                    `^events #\\d+ \\(seed ${targetSeed(seed, 'events')}, path "\\d+"\\): threw .*\\|\\| shrunk: threw`,
                ),
            );
        });

        it('draws the same cases for the same seed', () => {
            const arbs = caseArbs(world);
            for (const target of ['events', 'activities', 'forms'] as const) {
                const draw = () =>
                    fc.sample(arbs[target], { seed: targetSeed(seed, target), numRuns: 50 }).map(describeCase);
                expect(draw()).toEqual(draw());
            }
        });
    });
});

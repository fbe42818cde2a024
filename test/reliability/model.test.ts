import { startHarness, type Harness } from '../harness';
import { runModel } from './model';

/**
 * The model-based test of issue 19, seeded and short: a few hundred steps of events, clicks, queue work, sweeps, portal
 * decisions and faults in random orders, every invariant checked after every step. The benchmark runs ≥ 10,000.
 * MODEL_SEED and MODEL_STEPS replay another seed or a longer run: `MODEL_SEED=7 MODEL_STEPS=2000 npm test -- model`.
 */

const seed = Number(process.env.MODEL_SEED ?? 20261204);
const steps = Number(process.env.MODEL_STEPS ?? 240);
const perRun = Number(process.env.MODEL_MAX_COMMANDS ?? 24);
// MODEL_PATH replays one counterexample from a report ("path" there, and the sequences before it: its number less one).
const replay = process.env.MODEL_PATH
    ? { path: process.env.MODEL_PATH, sequencesBefore: Number(process.env.MODEL_SEQUENCES_BEFORE ?? 0) }
    : undefined;

describe('model-based: random orders of everything that can happen to a request', () => {
    let h: Harness;
    beforeAll(async () => {
        // Lost answers are given up after 300 ms, as HTTP_TIMEOUT_MS bounds every try in production.
        h = await startHarness({ settings: { HTTP_TIMEOUT_MS: '300', ARM_LRO_DEADLINE_SECONDS: '5' } });
    });
    afterAll(async () => {
        await h.close();
    });

    it(`${steps} steps (seed ${seed}): one card per request, one decision per PEC, ARM and requests agree, chains verify`, async () => {
        const report = await runModel(h, { seed, steps, maxCommands: perRun, ...(replay ? { replay } : {}) });
        console.log(JSON.stringify(report));
        if (report.modelViolations > 0) {
            throw new Error(`model violation (seed ${seed}):\n${report.counterexample}`);
        }
        expect(report.modelViolations).toBe(0);
        // Every kind of command ran.
        expect(Object.keys(report.commands).sort()).toEqual(
            ['click', 'concurrent-clicks', 'drain', 'event', 'fault', 'portal', 'queue-duplicate', 'sweep'].sort(),
        );
        expect(report.modelSteps).toBeGreaterThanOrEqual(steps);
    }, 240_000);
});

import { FaultPlan, seededRandom, type Fault } from './server';

/** The fault plan the emulators share: queued faults first, then seeded chaos, every fault counted. */

function draw(plan: FaultPlan, n: number): (Fault | undefined)[] {
    return Array.from({ length: n }, (_, i) => plan.take('GET', `/things/${i}`));
}

describe('FaultPlan', () => {
    it('gives the same faults for the same seed, and other faults for another', () => {
        const a = new FaultPlan();
        const b = new FaultPlan();
        const c = new FaultPlan();
        a.chaos({ rate: 0.3, seed: 42 });
        b.chaos({ rate: 0.3, seed: 42 });
        c.chaos({ rate: 0.3, seed: 43 });
        const first = draw(a, 500);
        expect(draw(b, 500)).toEqual(first);
        expect(draw(c, 500)).not.toEqual(first);
    });

    it('fails about the share asked for, with throttles, 500s and timeouts of both sorts', () => {
        const plan = new FaultPlan();
        plan.chaos({ rate: 0.2, seed: 7, retryAfterSeconds: [0, 1] });
        const faults = draw(plan, 5000).filter((f): f is Fault => f !== undefined);
        expect(faults.length / 5000).toBeGreaterThan(0.17);
        expect(faults.length / 5000).toBeLessThan(0.23);
        expect(plan.injectedTotal).toBe(faults.length);
        expect(plan.injected.throttle + plan.injected.error + plan.injected.hang).toBe(faults.length);
        for (const kind of ['throttle', 'error', 'hang'] as const) {
            expect(plan.injected[kind]).toBeGreaterThan(faults.length / 4);
        }
        const hangs = faults.filter((f) => f.kind === 'hang');
        expect(hangs.some((f) => f.afterProcessing)).toBe(true);
        expect(hangs.some((f) => !f.afterProcessing)).toBe(true);
        const waits = new Set(faults.flatMap((f) => (f.kind === 'throttle' ? [f.retryAfterSeconds] : [])));
        expect(waits).toEqual(new Set([0, 1]));
        expect(faults.filter((f) => f.kind === 'error').every((f) => f.status === 500)).toBe(true);
    });

    it('serves queued faults before chaos, only to matching requests, and stops on clear', () => {
        const plan = new FaultPlan();
        plan.chaos({ rate: 1, seed: 1, kinds: ['error'] });
        plan.add({ kind: 'throttle', retryAfterSeconds: 3 }, { method: 'PUT', pathIncludes: '/pec' });
        expect(plan.take('PUT', '/servers/x/pec')).toEqual({ kind: 'throttle', retryAfterSeconds: 3 });
        expect(plan.take('PUT', '/servers/x/pec')).toEqual({ kind: 'error', status: 500 });

        plan.chaos({ rate: 1, seed: 1, kinds: ['error'], match: (method) => method === 'GET' });
        expect(plan.take('POST', '/x')).toBeUndefined();
        expect(plan.take('GET', '/x')).toBeDefined();

        plan.clear();
        expect(draw(plan, 50)).toEqual(Array(50).fill(undefined));
        expect(plan.injected).toMatchObject({ throttle: 1, error: 2 });
    });

    it('refuses a rate outside 0..1', () => {
        expect(() => new FaultPlan().chaos({ rate: 20, seed: 1 })).toThrow(/between 0 and 1/);
    });
});

describe('seededRandom', () => {
    it('is uniform enough in [0, 1)', () => {
        const random = seededRandom(123);
        const values = Array.from({ length: 10_000 }, random);
        expect(Math.min(...values)).toBeGreaterThanOrEqual(0);
        expect(Math.max(...values)).toBeLessThan(1);
        const mean = values.reduce((a, b) => a + b, 0) / values.length;
        expect(mean).toBeGreaterThan(0.48);
        expect(mean).toBeLessThan(0.52);
    });
});

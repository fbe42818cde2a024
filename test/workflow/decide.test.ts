import type { Timer } from '@azure/functions';
import { sweepFunction } from '../../functions/sweep';
import type { StoredRequest } from '../../src/storage/requestStore';
import { click, drainApplyQueue, openCard, people, startHarness, testContext, type Harness } from '../harness';

/**
 * Superseding judges ARM against the request as the caller read it: a decision recorded while a slow ARM read was on
 * its way belongs to its apply, and ARM showing that decision's state is not an outside change.
 */

const timer = { isPastDue: false } as unknown as Timer;

function deferred(): { promise: Promise<void>; resolve: () => void } {
    let resolve!: () => void;
    const promise = new Promise<void>((r) => (resolve = r));
    return { promise, resolve };
}

async function until(condition: () => boolean): Promise<void> {
    for (let i = 0; i < 400 && !condition(); i++) {
        await new Promise((r) => setTimeout(r, 10));
    }
    if (!condition()) {
        throw new Error('timed out waiting');
    }
}

describe('supersede', () => {
    let h: Harness;
    afterEach(async () => {
        await h.close();
    });

    it("never ends a decision being applied because a slow ARM read, begun while it was pending, shows the gate's own approval", async () => {
        h = await startHarness();
        await sweepFunction(timer, testContext('sweep'));
        const { seeded, request } = await openCard(h, 'postgres-flexible');
        await sweepFunction(timer, testContext('sweep'));

        // Bob clicks first; his re-read of the PEC is slow (throttled, a slow network).
        const arm = h.deps.arm;
        const getPec = arm.getPec.bind(arm);
        const bobsRead = deferred();
        let pauseNext = true;
        let bobWaits = false;
        arm.getPec = async (ref) => {
            if (pauseNext) {
                pauseNext = false;
                bobWaits = true;
                await bobsRead.promise;
            }
            return getPec(ref);
        };
        const bob = click(h, request, { who: people.bob, verb: 'approve', text: 'ok from bob' });
        await until(() => bobWaits);

        // Alice decides meanwhile, and the apply runs: its PUT reaches ARM, the request is not marked applied yet.
        expect((await click(h, request, { who: people.alice, verb: 'approve', text: 'ok from alice' })).status).toBe(
            200,
        );
        const marks = h.deps.marks!;
        const put = marks.put.bind(marks);
        const applyGate = deferred();
        let applyWaits = false;
        marks.put = async (mark) => {
            applyWaits = true;
            await applyGate.promise;
            return put(mark);
        };
        try {
            const draining = drainApplyQueue(h);
            await until(() => applyWaits);
            // Bob's read returns Approved (the gate's own PUT); a sweep runs while the apply is between PUT and mark.
            bobsRead.resolve();
            await bob;
            await sweepFunction(timer, testContext('sweep'));
            applyGate.resolve();
            await draining;
        } finally {
            arm.getPec = getPec;
            marks.put = put;
        }

        const final = (await h.deps.requests.get(request.id))!.request;
        expect(final.status).toBe('applied');
        expect((await h.deps.audit.list(request.id)).map((e) => e.action)).not.toContain('superseded');
        const alerts: StoredRequest[] = [];
        for await (const stored of h.deps.requests.listForSweep()) {
            if (stored.request.pecId === seeded.pecId && stored.request.bypass) {
                alerts.push(stored);
            }
        }
        expect(alerts).toEqual([]);
    });
});

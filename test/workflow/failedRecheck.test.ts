import type { Timer } from '@azure/functions';
import { sweepFunction } from '../../functions/sweep';
import { PermanentError, TransientError } from '../../src/domain/errors';
import type { RequestStore } from '../../src/storage/requestStore';
import { verifyChain } from '../../src/storage/auditLog';
import { sweepCompletedEvent } from '../../src/workflow/sweep';
import { InMemoryTelemetry } from '../../src/observability/telemetry';
import { click, drainApplyQueue, openCard, people, startHarness, testContext, type Harness } from '../harness';

/**
 * A request recorded `failed` although ARM took its decision: the PUT worked, and every attempt to record it failed
 * (storage refused the last write until the queue gave up). The sweep compares failed requests with ARM and heals them.
 */

const timer = { isPastDue: false } as unknown as Timer;

describe('sweep: failed requests re-checked against ARM', () => {
    let h: Harness;
    beforeEach(async () => {
        h = await startHarness();
    });
    afterEach(async () => {
        await h.close();
    });

    /** Storage refuses every write that would mark the request applied, as long as `refusing` is set. */
    function refuseAppliedMark(): { stop(): void } {
        const requests = h.deps.requests;
        let refusing = true;
        const wrapped: RequestStore = Object.create(requests) as RequestStore;
        wrapped.update = async (stored, next) => {
            if (refusing && next.status === 'applied') {
                throw new TransientError('Storage: could not update the request: 503 ServerBusy');
            }
            return requests.update(stored, next);
        };
        h.deps.requests = wrapped;
        return {
            stop() {
                refusing = false;
                h.deps.requests = requests;
            },
        };
    }

    it('makes a failed request applied, with its audit entry and card, when ARM shows its decision', async () => {
        const { seeded, request } = await openCard(h, 'postgres-flexible');
        await click(h, request, { verb: 'approve', text: 'fine', who: people.alice });
        const refusal = refuseAppliedMark();
        await drainApplyQueue(h);
        refusal.stop();
        expect((await h.deps.requests.get(request.id))?.request.status).toBe('failed');
        expect(h.arm.getPec(seeded.pecId)).toMatchObject({
            properties: { privateLinkServiceConnectionState: { status: 'Approved' } },
        });
        const puts = h.arm.requests.filter((r) => r.method === 'PUT').length;

        const telemetry = new InMemoryTelemetry();
        h.deps.telemetry = telemetry;
        await sweepFunction(timer, testContext('sweep'));

        const healed = (await h.deps.requests.get(request.id))?.request;
        expect(healed).toMatchObject({ status: 'applied', cardShows: 'applied' });
        expect(healed?.outcome).toBeUndefined();
        const trail = await h.deps.audit.list(request.id);
        expect(trail.map((e) => e.action).slice(-2)).toEqual(['failed', 'applied']);
        expect(trail.at(-1)?.detail).toMatch(/found applied in ARM by the sweep/);
        expect(verifyChain(trail)).toEqual([]);
        expect(JSON.stringify(h.bot.updates.at(-1)?.activity)).toMatch(/Approved/);
        // Healing reads ARM; it never writes it.
        expect(h.arm.requests.filter((r) => r.method === 'PUT')).toHaveLength(puts);
        expect(telemetry.events.map((e) => e.name)).toContain(sweepCompletedEvent);

        // Applied is final: the next sweep does not look at it again.
        const reads = h.arm.requests.length;
        await sweepFunction(timer, testContext('sweep'));
        expect(h.arm.requests.slice(reads).filter((r) => r.path === seeded.pecId)).toHaveLength(0);
    });

    it('marks a healed approval as the gate’s, so that no sweep reports it as a bypass', async () => {
        // The scope is baselined while the PEC waits, so an unmarked approval afterwards would count as a bypass.
        const { seeded, request } = await openCard(h, 'postgres-single');
        await sweepFunction(timer, testContext('sweep'));
        await click(h, request, { verb: 'approve', text: 'fine', who: people.alice });
        // ARM takes the approval; storage refuses both the gate's mark and the applied state until the queue gives up.
        const refusal = refuseAppliedMark();
        const marks = h.deps.marks!;
        const unmarked: typeof marks = Object.create(marks) as typeof marks;
        unmarked.put = () =>
            Promise.reject(new TransientError('Storage: could not mark the connection: 503 ServerBusy'));
        h.deps.marks = unmarked;
        await drainApplyQueue(h);
        refusal.stop();
        h.deps.marks = marks;
        expect((await h.deps.requests.get(request.id))?.request.status).toBe('failed');
        expect(await marks.get(seeded.pecId)).toBeUndefined();
        const cards = h.bot.conversations.length;

        await sweepFunction(timer, testContext('sweep'));
        await sweepFunction(timer, testContext('sweep'));

        expect((await h.deps.requests.get(request.id))?.request.status).toBe('applied');
        expect(await marks.get(seeded.pecId)).toMatchObject({ source: 'gate', requestId: request.id });
        // No alert card, no bypass entry: the approval is the gate's own.
        expect(h.bot.conversations).toHaveLength(cards);
    });

    it('heals a failed approval whose connection ARM keeps under another description, and reports no bypass', async () => {
        const { seeded, request } = await openCard(h, 'postgres-flexible');
        await sweepFunction(timer, testContext('sweep'));
        await click(h, request, { verb: 'approve', text: 'fine', who: people.alice });
        const refusal = refuseAppliedMark();
        await drainApplyQueue(h);
        refusal.stop();
        expect((await h.deps.requests.get(request.id))?.request.status).toBe('failed');
        // ARM keeps its own text for the approval (as the official examples answer a PUT).
        h.arm.setPecStatus(seeded.pecId, 'Approved', 'Approved');
        const cards = h.bot.conversations.length;

        await sweepFunction(timer, testContext('sweep'));

        expect((await h.deps.requests.get(request.id))?.request.status).toBe('applied');
        expect(await h.deps.marks?.get(seeded.pecId)).toMatchObject({ source: 'gate', requestId: request.id });
        expect(h.bot.conversations).toHaveLength(cards);
    });

    it('heals an apply that failed for good after its PUT landed, under the description ARM kept', async () => {
        const { seeded, request } = await openCard(h, 'postgres-flexible');
        await sweepFunction(timer, testContext('sweep'));
        await click(h, request, { verb: 'approve', text: 'fine', who: people.alice });
        // The PUT lands (ARM keeps its own text); then marking the connection is refused for good (a 403).
        const marks = h.deps.marks!;
        const refusing: typeof marks = Object.create(marks) as typeof marks;
        refusing.put = () => {
            h.arm.setPecStatus(seeded.pecId, 'Approved', 'Approved');
            return Promise.reject(
                new PermanentError('Storage: could not mark the connection: 403 AuthorizationFailure'),
            );
        };
        h.deps.marks = refusing;
        try {
            await drainApplyQueue(h);
        } finally {
            h.deps.marks = marks;
        }
        expect((await h.deps.requests.get(request.id))?.request.status).toBe('failed');
        const cards = h.bot.conversations.length;

        await sweepFunction(timer, testContext('sweep'));

        expect((await h.deps.requests.get(request.id))?.request.status).toBe('applied');
        expect(await marks.get(seeded.pecId)).toMatchObject({ source: 'gate', requestId: request.id });
        expect(h.bot.conversations).toHaveLength(cards);
    });

    it('leaves a failed request failed while its PEC is Pending, and stops looking once ARM shows another state', async () => {
        const { seeded, request } = await openCard(h, 'mysql-single');
        await click(h, request, { verb: 'reject', text: 'not ours', who: people.bob });
        h.arm.faults.add({ kind: 'error', status: 403, code: 'AuthorizationFailed' }, { times: 1, method: 'PUT' });
        await drainApplyQueue(h);
        expect((await h.deps.requests.get(request.id))?.request.status).toBe('failed');

        await sweepFunction(timer, testContext('sweep'));
        expect((await h.deps.requests.get(request.id))?.request).toMatchObject({ status: 'failed' });
        expect((await h.deps.requests.get(request.id))?.request.recheckedUntil).toBeUndefined();

        // Someone approved it in the portal: not this decision, so the failure stands and the re-check ends.
        h.arm.setPecStatus(seeded.pecId, 'Approved', 'Approved in the portal');
        await sweepFunction(timer, testContext('sweep'));
        const after = (await h.deps.requests.get(request.id))?.request;
        expect(after).toMatchObject({ status: 'failed' });
        expect(after?.recheckedUntil).toEqual(expect.any(String));
        expect((await h.deps.audit.list(request.id)).map((e) => e.action)).not.toContain('applied');
    });
});

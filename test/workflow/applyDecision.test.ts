import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { applyDecisionFunction } from '../../functions/applyDecision';
import { TransientError } from '../../src/domain/errors';
import { applyMaxAttempts } from '../../src/storage/applyQueue';
import { verifyChain } from '../../src/storage/auditLog';
import {
    click,
    drainApplyQueue,
    people,
    poisonMessages,
    openCard,
    startHarness,
    testContext,
    type Harness,
    type SeededPec,
} from '../harness';

/**
 * Applying a decision when ARM misbehaves: throttling, server errors and timeouts during the PUT. Whatever happens,
 * the decision is applied exactly once, or the request ends `failed`, audited, shown on the card, and the message is
 * kept in the poison queue.
 */

const pecPath = 'privateendpointconnections/';

describe('applyDecision under faults', () => {
    let h: Harness;
    let seeded: SeededPec;

    async function decided(kind: SeededPec['kind'] = 'postgres-flexible') {
        let request;
        ({ seeded, request } = await openCard(h, kind));
        const answer = await click(h, request, { verb: 'approve', text: 'ok', who: people.alice });
        expect(answer.text).toContain('Approving…');
        return request;
    }

    function state() {
        return (h.arm.getPec(seeded.pecId) as { properties: { privateLinkServiceConnectionState: { status: string } } })
            .properties.privateLinkServiceConnectionState;
    }

    const puts = () => h.arm.requests.filter((r) => r.method === 'PUT' && r.path.toLowerCase().includes(pecPath));

    beforeEach(async () => {
        h = await startHarness({ settings: { ARM_LRO_DEADLINE_SECONDS: '2', ARM_MAX_RETRIES: '2' } });
    });
    afterEach(async () => {
        h.arm.stickLro(false);
        await h.close();
    });

    async function actions(requestId: string) {
        const audit = await h.deps.audit.list(requestId);
        expect(verifyChain(audit)).toEqual([]);
        return audit.map((e) => e.action);
    }

    it('rides out 429 with Retry-After within one attempt', async () => {
        const request = await decided();
        h.arm.faults.add(
            { kind: 'throttle', retryAfterSeconds: 0 },
            { times: 2, method: 'PUT', pathIncludes: pecPath },
        );
        expect(await drainApplyQueue(h)).toBe(1);
        expect(state()).toMatchObject({ status: 'Approved' });
        expect(await actions(request.id)).toEqual(['requested', 'card-posted', 'decided', 'applied']);
    });

    it("writes a decision's missing entry before ARM changes, when the click's own append failed", async () => {
        const { request } = await openCard(h, 'postgres-single');
        const audit = h.deps.audit;
        // Storage refuses the `decided` entry once, after the decision itself was written: the click still answers
        // with the recorded decision, and the apply writes the missing entry, marked late, before ARM changes.
        h.deps.audit = {
            append: async (input, options) => {
                if (input.action === 'decided') {
                    h.deps.audit = audit;
                    throw new TransientError('Audit: could not append: 503 ServerBusy');
                }
                return audit.append(input, options);
            },
            list: (id) => audit.list(id),
        };
        const answer = await click(h, request, { verb: 'reject', text: 'not this one', who: people.bob });
        expect(JSON.stringify(answer)).not.toMatch(/ServerBusy/);
        expect((await h.deps.requests.get(request.id))?.request.status).toBe('decided');
        expect(await actions(request.id)).toEqual(['requested', 'card-posted']);

        expect(await drainApplyQueue(h)).toBe(1);
        const trail = await audit.list(request.id);
        expect(trail.map((e) => e.action)).toEqual(['requested', 'card-posted', 'decided', 'applied']);
        expect(trail[2]).toMatchObject({
            actor: { kind: 'approver', id: people.bob.objectId, name: people.bob.upn },
            text: 'not this one',
            after: { status: 'decided', action: 'reject' },
        });
        expect(trail[2]?.detail).toMatch(/recorded late/);
        expect(verifyChain(trail)).toEqual([]);
    });

    it('retries 500s through the queue, never within an attempt, and applies once', async () => {
        const request = await decided('mysql-flexible');
        // A PUT answered 500 may or may not have been carried out: it is not re-sent by the pipeline; the next
        // delivery reads ARM first and sends its own PUT only when nothing changed.
        h.arm.faults.add({ kind: 'error', status: 500 }, { times: 2, method: 'PUT', pathIncludes: pecPath });
        expect(await drainApplyQueue(h)).toBe(3);
        expect(puts()).toHaveLength(3);
        expect(state()).toMatchObject({ status: 'Approved' });
        expect(await actions(request.id)).toEqual(['requested', 'card-posted', 'decided', 'applied']);
        expect((await h.deps.requests.get(request.id))?.request.status).toBe('applied');
    });

    it('applies once when an attempt times out, whether or not ARM finished the change', async () => {
        const request = await decided('postgres-single');
        h.arm.stickLro(true);
        // The first attempt hits the deadline and is redelivered; ARM finishes the operation in the meantime.
        expect(await drainApplyQueue(h, { maxDeliveries: 1 })).toBe(1);
        expect((await h.deps.requests.get(request.id))?.request.status).toBe('decided');
        h.arm.stickLro(false);
        h.arm.setPecStatus(seeded.pecId, 'Approved', 'Approved by alice@contoso.com: ok');
        expect(await drainApplyQueue(h)).toBe(1);
        expect(puts()).toHaveLength(1);
        const trail = await actions(request.id);
        expect(trail.filter((a) => a === 'applied')).toHaveLength(1);
        expect(trail).not.toContain('failed');

        // Timed out and never finished: the redelivery puts again, and the decision is still applied once.
        const other = await decided('mysql-flexible');
        h.arm.stickLro(true);
        await drainApplyQueue(h, { maxDeliveries: 1 });
        h.arm.stickLro(false);
        await drainApplyQueue(h);
        expect(state()).toMatchObject({ status: 'Approved', description: 'Approved by alice@contoso.com: ok' });
        expect((await actions(other.id)).filter((a) => a === 'applied')).toHaveLength(1);
    });

    it('ends failed after the last attempt, audited, on the card, and in the poison queue', async () => {
        const request = await decided('mysql-single');
        h.arm.faults.add({ kind: 'error', status: 503 }, { times: 1000, method: 'PUT', pathIncludes: pecPath });
        expect(await drainApplyQueue(h)).toBe(applyMaxAttempts);
        expect(state()).toMatchObject({ status: 'Pending' });
        const stored = await h.deps.requests.get(request.id);
        expect(stored?.request).toMatchObject({ status: 'failed', cardShows: 'failed' });
        expect(await actions(request.id)).toEqual(['requested', 'card-posted', 'decided', 'failed']);
        expect(JSON.stringify(h.bot.updates.at(-1)?.activity)).toContain('Could not apply the approval by Alice');
        expect(await poisonMessages(h)).toEqual([
            JSON.stringify({ requestId: request.id, correlationId: request.correlationId }),
        ]);
    });

    it('fails at once on a permanent error, without burning the retries', async () => {
        const request = await decided();
        h.arm.faults.add(
            { kind: 'error', status: 403, code: 'AuthorizationFailed' },
            { times: 1000, method: 'PUT', pathIncludes: pecPath },
        );
        expect(await drainApplyQueue(h)).toBe(1);
        expect((await h.deps.requests.get(request.id))?.request.status).toBe('failed');
        expect(await actions(request.id)).toEqual(['requested', 'card-posted', 'decided', 'failed']);
        expect(await poisonMessages(h)).toEqual([]);
    });

    it('supersedes when the PEC was removed or decided in the portal before the apply', async () => {
        const request = await decided();
        h.arm.removePec(seeded.pecId);
        await drainApplyQueue(h);
        expect((await h.deps.requests.get(request.id))?.request).toMatchObject({
            status: 'superseded',
            outcome: { reason: 'the connection was removed before the decision was applied' },
        });
        expect(await actions(request.id)).toEqual(['requested', 'card-posted', 'decided', 'superseded']);
        expect(JSON.stringify(h.bot.updates.at(-1)?.activity)).toContain('Superseded');

        const other = await decided('mysql-flexible');
        h.arm.setPecStatus(seeded.pecId, 'Approved', 'approved by hand');
        await drainApplyQueue(h);
        expect((await h.deps.requests.get(other.id))?.request.status).toBe('superseded');
        expect(puts()).toHaveLength(0);
    });

    it('puts once when the same decision is queued twice', async () => {
        const request = await decided();
        await h.deps.applyQueue.send({ requestId: request.id, correlationId: request.correlationId });
        await drainApplyQueue(h);
        expect(puts()).toHaveLength(1);
        expect((await actions(request.id)).filter((a) => a === 'applied')).toHaveLength(1);
    });

    it('audits the apply exactly once when storage fails between the change in ARM and marking it applied', async () => {
        // First the entry cannot be written, then the request cannot be marked applied: each time the message comes
        // back, finds the change already in ARM, and finishes what is missing, without a second entry.
        const request = await decided();
        const { audit, requests } = h.deps;
        const failed: string[] = [];
        h.deps.audit = {
            list: (id) => audit.list(id),
            append: async (input) => {
                if (input.action === 'applied' && !failed.includes('audit')) {
                    failed.push('audit');
                    throw new TransientError('Audit: could not append: the server is busy');
                }
                return audit.append(input);
            },
        };
        const update = requests.update.bind(requests);
        requests.update = async (stored, next) => {
            if (next.status === 'applied' && !failed.includes('mark')) {
                failed.push('mark');
                throw new TransientError('Storage: could not update the request: the server is busy');
            }
            return update(stored, next);
        };
        try {
            expect(await drainApplyQueue(h)).toBe(3);
        } finally {
            h.deps.audit = audit;
            requests.update = update;
        }
        expect(failed).toEqual(['audit', 'mark']);
        expect(puts()).toHaveLength(1);
        expect((await h.deps.requests.get(request.id))?.request.status).toBe('applied');
        expect(await actions(request.id)).toEqual(['requested', 'card-posted', 'decided', 'applied']);
        expect((await h.deps.audit.list(request.id)).at(-1)).toMatchObject({ after: { status: 'Approved' } });
    });

    it('finishes its own change when ARM rewrote the description before a redelivery read it', async () => {
        // ARM may answer and keep another description than the one sent (the official examples do). A delivery that
        // died after the PUT leaves the next one reading the decided state under that text: it is the gate's own
        // change, to be finished and audited as applied, not an outside change to supersede and report as a bypass.
        const request = await decided();
        const { audit } = h.deps;
        let rewritten = false;
        h.deps.audit = {
            list: (id) => audit.list(id),
            append: async (input) => {
                if (input.action === 'applied' && !rewritten) {
                    rewritten = true;
                    h.arm.setPecStatus(seeded.pecId, 'Approved', 'Approved');
                    throw new TransientError('Audit: could not append: the server is busy');
                }
                return audit.append(input);
            },
        };
        try {
            expect(await drainApplyQueue(h)).toBe(2);
        } finally {
            h.deps.audit = audit;
        }
        expect(rewritten).toBe(true);
        expect(puts()).toHaveLength(1);
        expect((await h.deps.requests.get(request.id))?.request.status).toBe('applied');
        expect(await actions(request.id)).toEqual(['requested', 'card-posted', 'decided', 'applied']);
        expect((await h.deps.audit.list(request.id)).at(-1)).toMatchObject({
            after: { status: 'Approved', description: 'Approved' },
        });
    });

    it('still supersedes when the state it finds on a redelivery is not the one decided', async () => {
        const request = await decided();
        const { audit } = h.deps;
        let changed = false;
        h.deps.audit = {
            list: (id) => audit.list(id),
            append: async (input) => {
                if (input.action === 'applied' && !changed) {
                    changed = true;
                    h.arm.setPecStatus(seeded.pecId, 'Rejected', 'no, by the portal');
                    throw new TransientError('Audit: could not append: the server is busy');
                }
                return audit.append(input);
            },
        };
        try {
            await drainApplyQueue(h);
        } finally {
            h.deps.audit = audit;
        }
        expect(puts()).toHaveLength(1);
        expect((await h.deps.requests.get(request.id))?.request.status).toBe('superseded');
        expect(state().status).toBe('Rejected');
    });

    it('takes the lease on top of an unrelated write made since it read the request, and applies', async () => {
        const request = await decided();
        const readBefore = await h.deps.requests.get(request.id);
        // Between the apply's read and its lease write, the sweep marks the request (an unrelated change).
        await h.deps.requests.update(readBefore!, { ...readBefore!.request, requeuedAt: new Date().toISOString() });
        const store = h.deps.requests;
        const realGet = store.get.bind(store);
        let stale = true;
        store.get = async (id: string) => {
            if (stale) {
                stale = false;
                return readBefore;
            }
            return realGet(id);
        };
        try {
            await h.queue.clearMessages();
            await applyDecisionFunction(
                { requestId: request.id, correlationId: request.correlationId },
                testContext('applyDecision', { id: 'm-1', dequeueCount: 1 }),
            );
        } finally {
            store.get = realGet;
        }
        expect(state().status).toBe('Approved');
        expect((await h.deps.requests.get(request.id))?.request.status).toBe('applied');
    });

    it('drops an invalid message with its reason and writes nothing', async () => {
        const context = testContext('applyDecision', { id: 'm1', dequeueCount: 1 });
        await applyDecisionFunction({ requestId: '../etc', correlationId: 'x', extra: 1 }, context);
        await applyDecisionFunction('not json', context);
        expect(context.logs.filter((l) => l.includes('invalid apply message'))).toHaveLength(2);
        expect(h.arm.requests).toHaveLength(0);
    });
});

describe('the apply queue contract', () => {
    it('gives up after as many attempts as the host delivers (host.json maxDequeueCount)', () => {
        const host = JSON.parse(readFileSync(path.join(__dirname, '..', '..', 'host.json'), 'utf8')) as {
            extensions: { queues: { maxDequeueCount: number } };
        };
        expect(host.extensions.queues.maxDequeueCount).toBe(applyMaxAttempts);
    });
});

import type { EventGridEvent, Timer } from '@azure/functions';
import { randomUUID } from 'node:crypto';
import { pecEvents } from '../../functions/pecEvents';
import { sweepFunction } from '../../functions/sweep';
import { kindInfo, serverKinds } from '../../src/domain/ids';
import { verifyChain } from '../../src/storage/auditLog';
import { drainApplyQueue, ids, privateEndpointId, resourceWriteEvent, testContext } from '../harness';
import { startFaultHarness } from './faultRun';

/**
 * Bypasses under faults: a fifth of the ARM, Bot Connector and storage calls fail (throttled, 500, no answer, with or
 * without the request carried out), each event is redelivered while its handler throws, and two sweeps race the
 * events. Still every connection approved without the gate is reported exactly once, and every one from a foreign
 * tenant ends revoked. No timing is asserted.
 */

const timer = { isPastDue: false } as unknown as Timer;
const count = 8;

async function sweepQuietly(): Promise<void> {
    await sweepFunction(timer, testContext('sweep')).catch(() => undefined);
}

describe(`bypasses under faults: ${count} connections approved without the gate, 20 % of calls failing`, () => {
    it('reports each once, revokes each foreign one, and keeps every trail intact', async () => {
        const run = await startFaultHarness({ timeoutMs: 500 });
        const { h } = run;
        try {
            const servers = serverKinds.map((kind) => {
                const { provider, type } = kindInfo[kind];
                return h.arm.addServer({
                    subscriptionId: ids.ours,
                    resourceGroup: 'rg-data',
                    provider,
                    type,
                    name: `${kind}-bypass-faults`,
                    tags: {},
                });
            });
            // The baseline is taken without faults: what the run is about comes after.
            await sweepQuietly();
            const pecs = Array.from({ length: count }, (_, i) => {
                const foreign = i % 2 === 0;
                return {
                    foreign,
                    pecId: h.arm.addPec(servers[i % servers.length]!, {
                        name: `pe-side-${i}.${randomUUID()}`,
                        privateEndpointId: privateEndpointId(foreign ? ids.foreign : ids.second, `pe-side-${i}`),
                        status: 'Approved',
                        description: 'Auto-Approved',
                    }),
                };
            });
            for (const [i, plan] of [h.arm.faults, h.bot.faults, run.storage.faults].entries()) {
                plan.chaos({ rate: 0.2, seed: 15 * 7 + i, retryAfterSeconds: [0, 1] });
            }
            const deliverUntilDone = async (pecId: string) => {
                const event = resourceWriteEvent(pecId) as unknown as EventGridEvent;
                for (let attempt = 0; attempt < 6; attempt++) {
                    try {
                        await pecEvents(event, testContext('pecEvents'));
                        // A redelivery of a delivery that succeeded: Event Grid is at least once.
                        if (attempt === 0) {
                            continue;
                        }
                        return;
                    } catch {
                        // Redelivered, as Event Grid does.
                    }
                }
            };
            await Promise.all([...pecs.map((p) => deliverUntilDone(p.pecId)), sweepQuietly(), sweepQuietly()]);
            for (const plan of [h.arm.faults, h.bot.faults, run.storage.faults]) {
                plan.clear();
                plan.chaos(undefined);
            }
            // What the faults left undone, the next sweep and the apply queue finish.
            await sweepQuietly();
            // Each connection's mark names its one report (a revoke removes the mark once ARM has it: read it now).
            const reports = new Map<string, string | undefined>();
            for (const { pecId } of pecs) {
                const mark = await h.deps.marks!.get(pecId);
                expect(mark?.source).toBe('bypass');
                reports.set(pecId, mark?.requestId);
            }
            await drainApplyQueue(h);

            for (const { pecId, foreign } of pecs) {
                const requestId = reports.get(pecId)!;
                const trail = await h.deps.audit.list(requestId);
                expect(trail.filter((e) => e.action === 'bypassed')).toHaveLength(1);
                expect(verifyChain(trail)).toEqual([]);
                const state = (
                    h.arm.getPec(pecId) as { properties: { privateLinkServiceConnectionState: { status: string } } }
                ).properties.privateLinkServiceConnectionState.status;
                expect(state).toBe(foreign ? 'Rejected' : 'Approved');
                const cards = h.bot.cards().filter((c) => JSON.stringify(c).includes(requestId));
                expect(cards.length).toBeLessThanOrEqual(1);
            }
            expect(h.arm.faults.injectedTotal + run.storage.faults.injectedTotal).toBeGreaterThan(0);
        } finally {
            await run.close();
        }
    }, 240_000);
});

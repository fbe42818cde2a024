import type { EventGridEvent, Timer } from '@azure/functions';
import { randomUUID } from 'node:crypto';
import { pecEvents } from '../../functions/pecEvents';
import { sweepFunction } from '../../functions/sweep';
import { kindInfo, type ServerKind } from '../../src/domain/ids';
import type { ApprovalRequest } from '../../src/domain/request';
import {
    click,
    drainApplyQueue,
    openCard,
    ids,
    people,
    privateEndpointId,
    requestOf,
    resourceWriteEvent,
    startHarness,
    testContext,
    type Harness,
} from '../harness';

/**
 * The connection marks under interleavings: a mark stands for one private endpoint's approval, the gate's own Keep is
 * never taken for a bypass, and an approval made outside is never taken for the gate's own. Each case here was found
 * by an independent review and failed before its fix.
 */

const timer = { isPastDue: false } as unknown as Timer;
async function runSweep(): Promise<string> {
    const context = testContext('sweep');
    await sweepFunction(timer, context);
    return context.logs.join('\n');
}
function addServer(h: Harness, kind: ServerKind): string {
    const { provider, type } = kindInfo[kind];
    return h.arm.addServer({
        subscriptionId: ids.ours,
        resourceGroup: 'rg-data',
        provider,
        type,
        name: `${kind}-rv-${randomUUID().slice(0, 6)}`,
        publicNetworkAccess: 'Disabled',
        tags: { environment: 'prod' },
    });
}
const insiderClaims = {
    'http://schemas.microsoft.com/identity/claims/objectidentifier': people.mallory.objectId,
    'http://schemas.xmlsoap.org/ws/2005/05/identity/claims/upn': people.mallory.upn,
    name: people.mallory.name,
    'http://schemas.microsoft.com/identity/claims/tenantid': ids.tenant,
    appid: '04b07795-8ddb-461a-bbee-02f9e1bf7b46',
};
async function deliver(pecId: string) {
    return pecEvents(
        resourceWriteEvent(pecId, { claims: insiderClaims }) as unknown as EventGridEvent,
        testContext('pecEvents'),
    );
}
async function current(h: Harness, id: string): Promise<ApprovalRequest> {
    return (await h.deps.requests.get(id))!.request;
}
function armStatus(h: Harness, pecId: string): string {
    return (h.arm.getPec(pecId) as { properties: { privateLinkServiceConnectionState: { status: string } } }).properties
        .privateLinkServiceConnectionState.status;
}
async function openOrNone(h: Harness, pecId: string) {
    return (await h.deps.requests.getActiveForPec(pecId))?.request;
}

describe('connection marks under interleavings', () => {
    let h: Harness;
    beforeEach(async () => {
        h = await startHarness({ settings: { TRUSTED_SUBSCRIPTION_IDS: ids.ours, WEBSITE_AUTH_ENABLED: 'true' } });
    });
    afterEach(async () => {
        await h.close();
    });

    it("keeps the gate mark of an alert's own Keep when a supersede that judged the alert stale comes after it", async () => {
        const server = addServer(h, 'postgres-flexible');
        await runSweep();
        const pecId = h.arm.addPec(server, {
            name: `pe-a.${randomUUID()}`,
            privateEndpointId: privateEndpointId(ids.second, 'pe-a'),
            status: 'Approved',
            description: 'Auto-Approved',
        });
        await deliver(pecId);
        const alert = await requestOf(h, pecId);
        expect(alert).toMatchObject({ status: 'pending', bypass: { action: 'alert' } });
        // The insider rejects it; a click (or the sweep) reads ARM Rejected and goes on to supersede the alert...
        h.arm.setPecStatus(pecId, 'Rejected', 'x');
        const marks = h.deps.marks!;
        const removeIfNamed = marks.removeIfNamed.bind(marks);
        let raced = false;
        marks.removeIfNamed = async (...args: Parameters<typeof removeIfNamed>) => {
            const [id] = args;
            if (!raced) {
                raced = true;
                // ...meanwhile the insider approves again and an approver Keeps the (still pending) alert.
                h.arm.setPecStatus(id, 'Approved', 'again');
                await click(h, alert, { who: people.alice, verb: 'approve', text: 'keep it' });
                await drainApplyQueue(h);
                expect(await marks.get(id)).toMatchObject({ source: 'gate', requestId: alert.id });
            }
            return removeIfNamed(...args);
        };
        try {
            await runSweep();
        } finally {
            marks.removeIfNamed = removeIfNamed;
        }
        expect(raced).toBe(true);
        expect((await current(h, alert.id)).status).toBe('applied');
        expect(await marks.get(pecId)).toMatchObject({ source: 'gate', requestId: alert.id });
        expect(await runSweep()).toMatch(/bypasses 0/);
        expect(await openOrNone(h, pecId)).toBeUndefined();
    });

    it('keeps a Keep mark written after the listing that showed the connection rejected', async () => {
        const server = addServer(h, 'postgres-flexible');
        await runSweep();
        const pecId = h.arm.addPec(server, {
            name: `pe-b.${randomUUID()}`,
            privateEndpointId: privateEndpointId(ids.second, 'pe-b'),
            status: 'Approved',
            description: 'Auto-Approved',
        });
        await deliver(pecId);
        const alert = await requestOf(h, pecId);
        h.arm.setPecStatus(pecId, 'Rejected', 'x'); // its event is lost
        const arm = h.deps.arm;
        const list = arm.listServersWithPecs!.bind(arm);
        arm.listServersWithPecs = async (s, k) => {
            const listed = await list(s, k);
            // Right after the listing (which shows Rejected) the insider approves again.
            h.arm.setPecStatus(pecId, 'Approved', 'again');
            return listed;
        };
        const marks = h.deps.marks!;
        const listMarked = marks.listMarked.bind(marks);
        marks.listMarked = async () => {
            const snapshot = await listMarked();
            // Between the sweep's one query of the marks and its clearing, the alert is Kept.
            await click(h, alert, { who: people.alice, verb: 'approve', text: 'keep it' });
            await drainApplyQueue(h);
            expect(await marks.get(pecId)).toMatchObject({ source: 'gate', requestId: alert.id });
            return snapshot;
        };
        try {
            await runSweep();
        } finally {
            arm.listServersWithPecs = list;
            marks.listMarked = listMarked;
        }
        expect((await current(h, alert.id)).status).toBe('applied');
        expect(await marks.get(pecId)).toMatchObject({ source: 'gate', requestId: alert.id });
        expect(await runSweep()).toMatch(/bypasses 0/);
    });

    it('reports a connection deleted and made again Approved under the same name by another endpoint', async () => {
        const server = addServer(h, 'postgres-flexible');
        await runSweep();
        const name = `pe-c.${randomUUID()}`;
        const pecId = h.arm.addPec(server, {
            name,
            privateEndpointId: privateEndpointId(ids.second, 'pe-c'),
            status: 'Pending',
            description: 'please',
        });
        await deliver(pecId);
        const request = await requestOf(h, pecId);
        await click(h, request, { who: people.alice, verb: 'approve', text: 'ok' });
        await drainApplyQueue(h);
        expect(await h.deps.marks!.get(pecId)).toMatchObject({ source: 'gate' });
        h.arm.removePec(pecId);
        await deliver(pecId); // the delete's event
        await runSweep();
        h.arm.addPec(server, {
            name,
            privateEndpointId: privateEndpointId(ids.foreign, 'pe-evil'),
            status: 'Approved',
            description: 'Auto-Approved',
        });
        await deliver(pecId);
        const alert = await openOrNone(h, pecId);
        expect(alert?.bypass).toMatchObject({ action: 'revoke' });
        await drainApplyQueue(h);
        expect(armStatus(h, pecId)).toBe('Rejected');
    });

    it('reports an outside approval of a connection made again Pending, whose name had a gate mark', async () => {
        const server = addServer(h, 'postgres-flexible');
        await runSweep();
        const name = `pe-d.${randomUUID()}`;
        const pecId = h.arm.addPec(server, {
            name,
            privateEndpointId: privateEndpointId(ids.second, 'pe-d'),
            status: 'Pending',
            description: 'please',
        });
        await deliver(pecId);
        await click(h, await requestOf(h, pecId), { who: people.alice, verb: 'approve', text: 'ok' });
        await drainApplyQueue(h);
        h.arm.removePec(pecId);
        await deliver(pecId);
        h.arm.addPec(server, {
            name,
            privateEndpointId: privateEndpointId(ids.foreign, 'pe-evil'),
            status: 'Pending',
            description: 'let me in',
        });
        await deliver(pecId);
        const second = await requestOf(h, pecId);
        expect(second.status).toBe('pending');
        h.arm.setPecStatus(pecId, 'Approved', 'approved in the portal');
        await deliver(pecId);
        await runSweep();
        expect((await current(h, second.id)).status).toBe('superseded');
        const alert = await openOrNone(h, pecId);
        expect(alert?.bypass).toMatchObject({ action: 'revoke' });
        await drainApplyQueue(h);
        expect(armStatus(h, pecId)).toBe('Rejected');
    });

    it("never heals a refused apply with an outside approval: that is a bypass, not the gate's own", async () => {
        const server = addServer(h, 'postgres-flexible');
        await runSweep();
        const pecId = h.arm.addPec(server, {
            name: `pe-e.${randomUUID()}`,
            privateEndpointId: privateEndpointId(ids.second, 'pe-e'),
            status: 'Pending',
            description: 'please',
        });
        await deliver(pecId);
        const request = await requestOf(h, pecId);
        await click(h, request, { who: people.alice, verb: 'approve', text: 'ok' });
        // A deny policy refuses the gate's PUT (ARM answers 403 RequestDisallowedByPolicy).
        h.arm.faults.add(
            { kind: 'error', status: 403, code: 'RequestDisallowedByPolicy' },
            { method: 'PUT', times: 10 },
        );
        try {
            await drainApplyQueue(h);
        } finally {
            h.arm.faults.clear();
        }
        expect((await current(h, request.id)).status).toBe('failed');
        // Nothing of ours reached ARM. Someone approves it in the portal.
        h.arm.setPecStatus(pecId, 'Approved', 'approved by mallory in the portal');
        const logs = await runSweep();
        expect((await current(h, request.id)).status).toBe('failed');
        expect(logs).toMatch(/bypasses 1/);
        expect(await h.deps.marks!.get(pecId)).toMatchObject({ source: 'bypass' });
    });
    it("keeps a gate mark newer than the sweep's listing of the connection's earlier endpoint", async () => {
        const { seeded, request } = await openCard(h, 'postgres-flexible');
        await runSweep();
        await click(h, request, { verb: 'approve', text: 'fine', who: people.alice });
        await drainApplyQueue(h);
        const marks = h.deps.marks!;
        const listMarked = marks.listMarked.bind(marks);
        let second = '';
        marks.listMarked = async () => {
            marks.listMarked = listMarked;
            // After the sweep listed the connection (endpoint 1): it is deleted, made again under the same name by
            // endpoint 2, and the gate approves the new one.
            h.arm.removePec(seeded.pecId);
            h.arm.addPec(seeded.serverId, {
                name: seeded.pecName,
                privateEndpointId: privateEndpointId(ids.ours, 'pe-second'),
                status: 'Pending',
                description: 'again, please',
            });
            await deliver(seeded.pecId);
            const again = await requestOf(h, seeded.pecId);
            second = again.id;
            await click(h, again, { verb: 'approve', text: 'fine again', who: people.alice });
            await drainApplyQueue(h);
            return listMarked();
        };
        try {
            expect(await runSweep()).toMatch(/bypasses 0/);
        } finally {
            marks.listMarked = listMarked;
        }
        expect(await marks.get(seeded.pecId)).toMatchObject({ source: 'gate', requestId: second });
        expect(await openOrNone(h, seeded.pecId)).toBeUndefined();
    });
});

import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { inlinePec, toPec } from '../../src/arm/armCommon';
import { kindInfo, parseServerId, type ServerKind } from '../../src/domain/ids';
import { seedPendingPec, startHarness, ids, type Harness } from '../harness';

/**
 * The sweep's cost grows with subscriptions and kinds, not servers, because a server list carries each server's
 * connections inline (properties.privateEndpointConnections). These tests hold the database kinds to that contract: the
 * official PostgreSQL single server list example (api 2017-12-01, the version @azure/arm-postgresql lists with), the
 * flattened shape @azure/arm-postgresql-flexible deserializes to, and each SDK's real pager against the ARM emulator.
 */

interface ServerListExample {
    responses: { '200': { body: { value: { id: string; properties: { privateEndpointConnections?: unknown[] } }[] } } };
}

const example = JSON.parse(
    readFileSync(path.join(__dirname, '..', 'fixtures', 'armSpecs', 'postgres-single', 'ServerList.json'), 'utf8'),
) as ServerListExample;

describe('connections inline in a server list', () => {
    it("reads the official single-server list example's reduced form (id and properties, no name)", () => {
        const servers = example.responses['200'].body.value;
        const pecs = servers.flatMap((s) =>
            (s.properties.privateEndpointConnections ?? []).map((raw) =>
                toPec({ ...parseServerId(s.id), kind: 'postgres-single' }, inlinePec(raw)),
            ),
        );

        expect(pecs).toHaveLength(2);
        expect(pecs[0]).toMatchObject({
            ref: { name: 'private-endpoint-name-00000000-1111-2222-3333-444444444444' },
            status: 'Approved',
            description: 'Auto-approved',
            provisioningState: 'Ready',
            privateEndpointId:
                '/subscriptions/ffffffff-ffff-ffff-ffff-ffffffffffff/resourceGroups/Default-Network/providers/Microsoft.Network/privateEndpoints/private-endpoint-name',
        });
        // An empty array is an answer (no connections), not a missing one.
        expect(servers.filter((s) => s.properties.privateEndpointConnections?.length === 0)).toHaveLength(2);
    });

    it('reads the flattened shape an SDK deserializes to', () => {
        const flat = inlinePec({
            id: '/subscriptions/s/resourceGroups/rg/providers/Microsoft.DBforPostgreSQL/flexibleServers/f/privateEndpointConnections/pe.1',
            name: 'pe.1',
            privateEndpoint: { id: '/subscriptions/x/providers/Microsoft.Network/privateEndpoints/pe' },
            privateLinkServiceConnectionState: { status: 'Pending', description: 'please', actionsRequired: 'None' },
            provisioningState: 'Succeeded',
        });

        expect(flat).toEqual({
            id: '/subscriptions/s/resourceGroups/rg/providers/Microsoft.DBforPostgreSQL/flexibleServers/f/privateEndpointConnections/pe.1',
            name: 'pe.1',
            privateEndpoint: { id: '/subscriptions/x/providers/Microsoft.Network/privateEndpoints/pe' },
            privateLinkServiceConnectionState: { status: 'Pending', description: 'please' },
            provisioningState: 'Succeeded',
        });
    });
});

describe('database kinds list their servers with the connections inline (real SDK pagers, ARM emulator)', () => {
    let h: Harness;
    beforeAll(async () => {
        h = await startHarness({ arm: { pageSize: 2 } });
    });
    afterAll(async () => {
        await h.close();
    });

    const kinds: ServerKind[] = ['postgres-single', 'mysql-single', 'postgres-flexible', 'mysql-flexible'];
    for (const kind of kinds) {
        it(`${kind}: every server of the subscription with its connections, and no call per server`, async () => {
            const subscriptionId = crypto.randomUUID();
            const seeded = [0, 1, 2].map((n) =>
                seedPendingPec(h.arm, kind, {
                    subscriptionId,
                    serverName: `inline-${n}`,
                    approved: [ids.foreign],
                }),
            );
            const from = h.arm.requests.length;

            const listed = await h.deps.arm.listServersWithPecs!(subscriptionId, kind);

            expect(kindInfo[kind].inlineConnections).toBe(true);
            expect(listed.map((l) => l.server.name).sort()).toEqual(['inline-0', 'inline-1', 'inline-2']);
            for (const s of seeded) {
                const pecs = listed.find((l) => l.server.name === s.serverId.split('/').pop())?.pecs ?? [];
                expect(pecs.map((p) => p.status).sort()).toEqual(['Approved', 'Pending']);
                expect(pecs.find((p) => p.status === 'Pending')?.id).toBe(s.pecId);
            }
            const calls = h.arm.requests.slice(from);
            expect(calls.filter((r) => /privateEndpointConnections/i.test(r.path))).toEqual([]);
            // One call per page of the subscription's list: the single-server contract has one page; the flexible
            // ones follow nextLink (two a page here).
            expect(calls).toHaveLength(kindInfo[kind].type === 'servers' ? 1 : 2);
        });
    }
});

describe("listing under ARM's read throttling (token bucket, 429 with Retry-After)", () => {
    let h: Harness;
    beforeAll(async () => {
        h = await startHarness({ arm: { readThrottle: { bucket: 2, refillPerSecond: 1 } } });
    });
    afterAll(async () => {
        await h.close();
    });

    it('waits out Retry-After and gets every list, never sending a read before the time ARM named', async () => {
        const subscriptionId = crypto.randomUUID();
        const seeded = seedPendingPec(h.arm, 'postgres-flexible', { subscriptionId });

        // Four lists in a row from a bucket of two: the last two meet an empty bucket.
        for (let i = 0; i < 4; i++) {
            const listed = await h.deps.arm.listServersWithPecs!(subscriptionId, 'postgres-flexible');
            expect(listed[0]?.pecs?.map((p) => p.id)).toEqual([seeded.pecId]);
        }

        expect(h.arm.throttle.throttled).toBeGreaterThan(0);
        expect(h.arm.throttle.early).toBe(0);
    });
});

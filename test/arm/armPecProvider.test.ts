import { createArmPecProvider, type PecProvider } from '../../src/arm';
import { ArmPecAdapter, type KindOperations } from '../../src/arm/armPecAdapter';
import { PermanentError, TransientError } from '../../src/domain/errors';
import {
    formatServerId,
    kindInfo,
    parsePecId,
    parseServerId,
    type PecRef,
    type ServerKind,
    type ServerRef,
} from '../../src/domain/ids';
import type { DecisionStatus } from '../../src/domain/pec';
import { createCredential } from '../../src/runtime';
import { ids, privateEndpointId, seedPendingPec, startHarness, type Harness, type SeededPec } from '../harness';

/**
 * Integration tests of the real ARM clients (the three SDKs and the generic MySQL flexible client) through
 * createArmPecProvider, with a real @azure/identity credential against the token emulator, against the ARM emulator.
 * Every test seeds its own server, so the tests do not depend on one another.
 */

const kinds: ServerKind[] = ['postgres-single', 'mysql-single', 'postgres-flexible', 'mysql-flexible'];

const short: Partial<Record<ServerKind, string>> = {
    'postgres-single': 'pgs',
    'mysql-single': 'mys',
    'postgres-flexible': 'pgf',
    'mysql-flexible': 'myf',
};

let serial = 0;
/** A unique, SDK-valid server name (lower-case letters, digits and hyphens, at most 63 characters). */
function serverName(kind: ServerKind, what: string): string {
    serial += 1;
    return `${short[kind]}-${what}-${serial}`;
}

interface Seeded extends SeededPec {
    server: ServerRef;
    pec: PecRef;
}

function seed(h: Harness, kind: ServerKind, what: string, options: Parameters<typeof seedPendingPec>[2] = {}): Seeded {
    const seeded = seedPendingPec(h.arm, kind, { serverName: serverName(kind, what), ...options });
    return { ...seeded, server: parseServerId(seeded.serverId), pec: parsePecId(seeded.pecId) };
}

type PecBody = {
    id: string;
    name: string;
    properties: {
        privateLinkServiceConnectionState: { status: string; description: string };
        provisioningState: string;
    };
};

/** The requests the emulator saw from index `from` on whose path mentions the server. */
function requestsFor(h: Harness, serverNameOrId: string, from = 0) {
    const needle = serverNameOrId.toLowerCase();
    return h.arm.requests.slice(from).filter((r) => r.path.toLowerCase().includes(needle));
}

const isListPath = (path: string) => /\/privateEndpointConnections$/i.test(path);
const isPecPath = (path: string) => /\/privateEndpointConnections\/[^/]+$/i.test(path);
const isServerPath = (path: string) => /\/(servers|flexibleServers)\/[^/]+$/i.test(path);
const isPollPath = (path: string) => /\/locations\/[^/]+\/(azureAsyncOperation|operationResults)\//i.test(path);

describe('ARM PecProvider paging (ARM emulator with pageSize 2)', () => {
    let h: Harness;

    beforeAll(async () => {
        h = await startHarness({ arm: { pageSize: 2 } });
    });
    afterAll(async () => {
        await h.close();
    });

    it.each(kinds)('%s: listPecs follows nextLink and returns every PEC', async (kind) => {
        const seeded = seed(h, kind, 'paging', { approved: [ids.ours, ids.second, ids.foreign, ids.ours] });
        const from = h.arm.requests.length;

        const pecs = await h.deps.arm.listPecs(seeded.server);

        expect(pecs).toHaveLength(5);
        expect(new Set(pecs.map((p) => p.ref.name.toLowerCase())).size).toBe(5);
        expect(pecs.map((p) => p.ref.name)).toContain(seeded.pecName);
        expect(pecs.filter((p) => p.status === 'Approved')).toHaveLength(4);
        expect(pecs.filter((p) => p.status === 'Pending')).toHaveLength(1);
        // 5 PECs at 2 a page: three pages, the later ones asked for through the nextLink's $skipToken.
        const lists = requestsFor(h, seeded.server.name, from).filter((r) => r.method === 'GET' && isListPath(r.path));
        expect(lists).toHaveLength(3);
    });
});

describe('ARM PecProvider listServers (two subscriptions, ARM emulator with pageSize 2)', () => {
    let h: Harness;
    /** GUIDs: the PostgreSQL flexible SDK refuses any other subscription id. */
    const subA = crypto.randomUUID();
    const subB = crypto.randomUUID();
    const counts: Record<string, number> = { [subA]: 7, [subB]: 5 };
    const expected = new Map<string, ServerRef[]>();
    const apiVersion: Partial<Record<ServerKind, string>> = {
        'postgres-single': '2017-12-01',
        'mysql-single': '2017-12-01',
        'postgres-flexible': '2025-08-01',
        'mysql-flexible': '2023-06-30',
    };

    const byId = (refs: ServerRef[]) => [...refs].sort((a, b) => formatServerId(a).localeCompare(formatServerId(b)));
    const listPath = (sub: string, kind: ServerKind) =>
        `/subscriptions/${sub}/providers/${kindInfo[kind].provider}/${kindInfo[kind].type}`;
    const listRequests = (sub: string, kind: ServerKind, from: number) =>
        h.arm.requests.slice(from).filter((r) => r.method === 'GET' && r.path === listPath(sub, kind));
    const pagesOf = (kind: ServerKind, servers: number) => (kind.endsWith('-single') ? 1 : Math.ceil(servers / 2));

    beforeAll(async () => {
        h = await startHarness({ arm: { pageSize: 2 } });
        // Every kind in both subscriptions, interleaved, in two resource groups: only the filter tells them apart.
        for (const sub of [subA, subB]) {
            for (let i = 0; i < counts[sub]!; i += 1) {
                for (const kind of kinds) {
                    const { provider, type } = kindInfo[kind];
                    const name = serverName(kind, `sweep-${i}`);
                    const id = h.arm.addServer({
                        subscriptionId: sub,
                        resourceGroup: `rg-${i % 2}`,
                        provider,
                        type,
                        name,
                    });
                    const key = `${sub}/${kind}`;
                    expected.set(key, [...(expected.get(key) ?? []), parseServerId(id)]);
                }
            }
        }
        // A subscription that is not asked for.
        seed(h, 'postgres-flexible', 'elsewhere', { subscriptionId: crypto.randomUUID() });
    });
    afterAll(async () => {
        await h.close();
    });
    afterEach(() => h.arm.faults.clear());

    describe.each(kinds)('%s', (kind) => {
        /** Lets the first page through, so that on a paged list the fault hits a nextLink request. */
        const skipFirstPage = (sub: string) => {
            if (pagesOf(kind, counts[sub]!) > 1) {
                h.arm.faults.add({ kind: 'slow', delayMs: 0 }, { times: 1, pathIncludes: listPath(sub, kind) });
            }
        };

        it('lists exactly its own servers in each subscription, every page', async () => {
            for (const sub of [subA, subB]) {
                const from = h.arm.requests.length;

                const servers = await h.deps.arm.listServers(sub, kind);

                expect(servers).toHaveLength(counts[sub]!);
                expect(byId(servers)).toEqual(byId(expected.get(`${sub}/${kind}`)!));
                const lists = listRequests(sub, kind, from);
                expect(lists).toHaveLength(pagesOf(kind, counts[sub]!));
                expect(lists.every((r) => r.apiVersion === apiVersion[kind])).toBe(true);
                expect(h.arm.requests.slice(from)).toHaveLength(lists.length);
            }
        });

        it('lists a subscription without servers as an empty array', async () => {
            await expect(h.deps.arm.listServers(crypto.randomUUID(), kind)).resolves.toEqual([]);
        });

        it('retries a 429 with Retry-After on a list page and returns every server', async () => {
            skipFirstPage(subA);
            h.arm.faults.add(
                { kind: 'throttle', retryAfterSeconds: 1 },
                { times: 1, method: 'GET', pathIncludes: listPath(subA, kind) },
            );
            const from = h.arm.requests.length;
            const started = Date.now();

            const servers = await h.deps.arm.listServers(subA, kind);

            expect(byId(servers)).toEqual(byId(expected.get(`${subA}/${kind}`)!));
            expect(Date.now() - started).toBeGreaterThanOrEqual(900);
            expect(listRequests(subA, kind, from)).toHaveLength(pagesOf(kind, counts[subA]!) + 1);
        });

        it('rejects with TransientError when a 500 on a list page outlasts the retries', async () => {
            skipFirstPage(subA);
            h.arm.faults.add({ kind: 'error', status: 500 }, { times: 10, pathIncludes: listPath(subA, kind) });
            const from = h.arm.requests.length;

            const error = await h.deps.arm.listServers(subA, kind).catch((e: unknown) => e);

            expect(error).toBeInstanceOf(TransientError);
            expect((error as TransientError).retryable).toBe(true);
            // ARM_MAX_RETRIES=3 on the failing page: the first try and three retries, after the pages before it.
            const before = pagesOf(kind, counts[subA]!) > 1 ? 1 : 0;
            expect(listRequests(subA, kind, from)).toHaveLength(before + 4);
        });

        it('maps 403 on the list to PermanentError without retrying', async () => {
            h.arm.faults.add(
                { kind: 'error', status: 403, code: 'AuthorizationFailed' },
                { times: 5, pathIncludes: listPath(subB, kind) },
            );
            const from = h.arm.requests.length;

            const error = await h.deps.arm.listServers(subB, kind).catch((e: unknown) => e);

            expect(error).toBeInstanceOf(PermanentError);
            expect((error as PermanentError).retryable).toBe(false);
            expect(listRequests(subB, kind, from)).toHaveLength(1);
        });
    });
});

describe('ArmPecAdapter.listServers', () => {
    it('skips items without an id, with an id it cannot parse, or of another kind, and keeps the rest', async () => {
        const sub = crypto.randomUUID();
        const flexible = `/subscriptions/${sub}/resourceGroups/rg-a/providers/Microsoft.DBforMySQL/flexibleServers/my-1`;
        const items = [
            {},
            { id: '' },
            { id: 'not an id' },
            { id: `/subscriptions/${sub}/resourceGroups/rg-a/providers/Microsoft.Sql/servers/sql-1` },
            { id: `/subscriptions/${sub}/resourceGroups/rg-a/providers/Microsoft.DBforMySQL/servers/single-1` },
            { id: `${flexible}/privateEndpointConnections/pe.1` },
            { id: flexible },
            { id: flexible.replace('my-1', 'my-2').toUpperCase() },
        ];
        const unused = () => {
            throw new Error('not used');
        };
        const ops: KindOperations = {
            async *listServers() {
                yield* items;
            },
            listPecs: unused,
            getPec: unused,
            getServer: unused,
            putPecState: unused,
        };
        const adapter = new ArmPecAdapter(ops, {
            endpoint: 'https://management.azure.com',
            credential: { getToken: async () => null },
            maxRetries: 0,
            retryDelayInMs: 0,
            lroDeadlineMs: 1000,
        });

        const servers = await adapter.listServers(sub, 'mysql-flexible');

        expect(servers).toEqual([
            parseServerId(flexible),
            { kind: 'mysql-flexible', subscriptionId: sub.toUpperCase(), resourceGroup: 'RG-A', name: 'MY-2' },
        ]);
    });
});

describe('a listing with one connection the model does not know', () => {
    it('leaves that connection out with a warning and keeps the others', async () => {
        const sub = crypto.randomUUID();
        const serverId = `/subscriptions/${sub}/resourceGroups/rg-a/providers/Microsoft.DBforMySQL/flexibleServers/my-1`;
        const server = parseServerId(serverId)!;
        const connection = (name: string, status: string) => ({
            id: `${serverId}/privateEndpointConnections/${name}`,
            name,
            privateEndpoint: {
                id: `/subscriptions/${sub}/resourceGroups/rg-b/providers/Microsoft.Network/privateEndpoints/${name}`,
            },
            privateLinkServiceConnectionState: { status, description: '' },
            provisioningState: 'Succeeded',
        });
        const unused = () => {
            throw new Error('not used');
        };
        const ops: KindOperations = {
            listServers: unused,
            async *listPecs() {
                yield connection('pe-a', 'Approved');
                yield connection('pe-b', 'Quarantined');
                yield { ...connection('', 'Pending'), id: undefined };
                yield connection('pe-c', 'Pending');
            },
            getPec: unused,
            getServer: unused,
            putPecState: unused,
        };
        const warnings: string[] = [];
        const adapter = new ArmPecAdapter(ops, {
            endpoint: 'https://management.azure.com',
            credential: { getToken: async () => null },
            maxRetries: 0,
            retryDelayInMs: 0,
            lroDeadlineMs: 1000,
            warn: (message) => warnings.push(message),
        });

        const pecs = await adapter.listPecs(server);

        expect(pecs.map((p) => [p.ref.name, p.status])).toEqual([
            ['pe-a', 'Approved'],
            ['pe-c', 'Pending'],
        ]);
        expect(warnings).toHaveLength(2);
        expect(warnings[0]).toMatch(/left out of the listing \(name "pe-b", status "Quarantined"\)/);
    });
});

describe('ARM PecProvider against the ARM emulator', () => {
    let h: Harness;
    let arm: PecProvider;
    /** A provider with a short LRO deadline, for the deadline tests. */
    let fast: PecProvider;
    /** A provider whose tries are bounded tightly (HTTP_TIMEOUT_MS), for requests that get no answer. */
    let bounded: PecProvider;

    beforeAll(async () => {
        h = await startHarness();
        arm = h.deps.arm;
        fast = createArmPecProvider({
            endpoint: h.arm.url,
            credential: createCredential(h.config),
            maxRetries: 2,
            retryDelayInMs: 10,
            lroDeadlineMs: 1500,
        });
        bounded = createArmPecProvider({
            endpoint: h.arm.url,
            credential: createCredential(h.config),
            maxRetries: 2,
            retryDelayInMs: 10,
            lroDeadlineMs: 10_000,
            timeoutMs: 300,
        });
    });
    afterAll(async () => {
        await h.close();
    });
    afterEach(() => {
        h.arm.faults.clear();
        h.arm.stickLro(false);
        h.arm.putWithoutAsyncHeaders(false);
        h.arm.failLro(false);
    });

    describe.each(kinds)('%s', (kind) => {
        const single = kind.endsWith('-single');

        describe('reads', () => {
            it('lists the PECs of a server', async () => {
                const seeded = seed(h, kind, 'list', { approved: [ids.foreign] });

                const pecs = await arm.listPecs(seeded.server);

                expect(pecs).toHaveLength(2);
                const pending = pecs.find((p) => p.ref.name === seeded.pecName);
                expect(pending).toMatchObject({
                    id: seeded.pecId,
                    ref: { server: seeded.server, name: seeded.pecName },
                    status: 'Pending',
                    description: 'Please approve: app tier needs the database',
                    privateEndpointId: privateEndpointId(ids.ours, `pe-${kind}`),
                    provisioningState: single ? 'Ready' : 'Succeeded',
                });
                const approved = pecs.find((p) => p.ref.name !== seeded.pecName);
                expect(approved).toMatchObject({
                    status: 'Approved',
                    description: 'Approved earlier',
                    privateEndpointId: privateEndpointId(ids.foreign, 'pe-existing-0'),
                });
            });

            it('lists an empty server as an empty array', async () => {
                const seeded = seed(h, kind, 'empty');
                h.arm.removePec(seeded.pecId);

                await expect(arm.listPecs(seeded.server)).resolves.toEqual([]);
            });

            it('gets one PEC, and undefined for a PEC that does not exist', async () => {
                const seeded = seed(h, kind, 'get');

                const pec = await arm.getPec(seeded.pec);
                expect(pec).toMatchObject({
                    id: seeded.pecId,
                    ref: { server: seeded.server, name: seeded.pecName },
                    status: 'Pending',
                    privateEndpointId: privateEndpointId(ids.ours, `pe-${kind}`),
                });

                const missing = { server: seeded.server, name: `pe-gone.${crypto.randomUUID()}` };
                await expect(arm.getPec(missing)).resolves.toBeUndefined();
            });

            it('gets a PEC whatever the casing of its name (ARM names are case-insensitive)', async () => {
                const seeded = seed(h, kind, 'case');
                const upper = { server: seeded.server, name: seeded.pecName.toUpperCase() };

                const pec = await arm.getPec(upper);

                // The identity is what was asked for (its casing too); ARM's ids compare ignoring case.
                expect(pec?.ref).toEqual(upper);
                expect(pec?.id.toLowerCase()).toBe(seeded.pecId.toLowerCase());
                expect(pec?.status).toBe('Pending');
            });

            it.each(['Enabled', 'Disabled'] as const)(
                'reads the server context with public network access %s, tags and only the approved PECs',
                async (publicNetworkAccess) => {
                    const seeded = seed(h, kind, `ctx-${publicNetworkAccess.toLowerCase()}`, {
                        publicNetworkAccess,
                        approved: [ids.ours, ids.foreign],
                    });
                    const from = h.arm.requests.length;

                    const context = await arm.getServerContext(seeded.server);

                    expect(context.ref).toEqual(seeded.server);
                    expect(context.id).toBe(seeded.serverId);
                    expect(context.location).toBe('westeurope');
                    expect(context.publicNetworkAccess).toBe(publicNetworkAccess);
                    expect(context.tags).toEqual({ environment: 'prod' });
                    expect(context.approvedPecs).toHaveLength(2);
                    expect(context.approvedPecs.every((p) => p.status === 'Approved')).toBe(true);
                    expect(context.approvedPecs.map((p) => p.privateEndpointId).sort()).toEqual(
                        [
                            privateEndpointId(ids.ours, 'pe-existing-0'),
                            privateEndpointId(ids.foreign, 'pe-existing-1'),
                        ].sort(),
                    );
                    expect(context.approvedPecs.map((p) => p.ref.name)).not.toContain(seeded.pecName);
                    const seen = requestsFor(h, seeded.server.name, from);
                    expect(seen.filter((r) => isServerPath(r.path))).toHaveLength(1);
                    expect(seen.filter((r) => isListPath(r.path))).toHaveLength(1);
                },
            );

            it('uses the PECs it is given instead of listing them again', async () => {
                const seeded = seed(h, kind, 'known', { publicNetworkAccess: 'Enabled', approved: [ids.second] });
                const pecs = await arm.listPecs(seeded.server);
                const from = h.arm.requests.length;

                const context = await arm.getServerContext(seeded.server, pecs);

                expect(context.publicNetworkAccess).toBe('Enabled');
                expect(context.approvedPecs).toEqual(pecs.filter((p) => p.status === 'Approved'));
                expect(context.approvedPecs).toHaveLength(1);
                const seen = requestsFor(h, seeded.server.name, from);
                expect(seen.filter((r) => isListPath(r.path))).toHaveLength(0);
                expect(seen.filter((r) => isServerPath(r.path))).toHaveLength(1);
            });

            it('reads a PEC from a slow answer', async () => {
                const seeded = seed(h, kind, 'slow');
                h.arm.faults.add({ kind: 'slow', delayMs: 200 }, { times: 2, pathIncludes: seeded.server.name });

                await expect(arm.listPecs(seeded.server)).resolves.toHaveLength(1);
                await expect(arm.getPec(seeded.pec)).resolves.toMatchObject({ status: 'Pending' });
            });
        });

        describe('setPecState', () => {
            it.each([
                ['Approved', 'Approved by Alice: ticket CHG-42'],
                ['Rejected', 'Rejected by Bob: unknown subscription'],
            ] as [DecisionStatus, string][])(
                'sets %s through the long-running PUT and returns the settled PEC',
                async (status, description) => {
                    const seeded = seed(h, kind, `set-${status.toLowerCase()}`);
                    const from = h.arm.requests.length;
                    const opsBefore = h.arm.operations.length;

                    const pec = await arm.setPecState(seeded.pec, status, description);

                    expect(pec).toMatchObject({
                        id: seeded.pecId,
                        ref: { server: seeded.server, name: seeded.pecName },
                        status,
                        description,
                        privateEndpointId: privateEndpointId(ids.ours, `pe-${kind}`),
                        provisioningState: single ? 'Ready' : 'Succeeded',
                    });
                    const stored = h.arm.getPec(seeded.pecId) as PecBody;
                    expect(stored.properties.privateLinkServiceConnectionState).toMatchObject({ status, description });
                    expect(stored.properties.provisioningState).toBe(single ? 'Ready' : 'Succeeded');

                    // The emulator answered the PUT with 202 + Azure-AsyncOperation; the client polled until Succeeded.
                    const ops = h.arm.operations.slice(opsBefore).filter((o) => o.pecId === seeded.pecId);
                    expect(ops).toEqual([expect.objectContaining({ method: 'PUT', status: 'Succeeded' })]);
                    const seen = h.arm.requests.slice(from);
                    const puts = seen.filter((r) => r.method === 'PUT' && r.path === seeded.pecId);
                    expect(puts).toHaveLength(1);
                    expect(puts[0]?.body).toMatchObject({
                        properties: { privateLinkServiceConnectionState: { status, description } },
                    });
                    // The connection's own private endpoint goes back, as read (never an empty one, which the
                    // flexible server SDK's model would make of it: its id is read-only there).
                    expect(puts[0]?.body).toHaveProperty('properties.privateEndpoint', {
                        id: (h.arm.getPec(seeded.pecId) as { properties: { privateEndpoint: { id: string } } })
                            .properties.privateEndpoint.id,
                    });
                    const polls = seen.filter(
                        (r) => r.method === 'GET' && isPollPath(r.path) && r.path.includes(ops[0]!.id),
                    );
                    expect(polls.length).toBeGreaterThanOrEqual(1);
                    // MySQL flexible server's spec documents its 202 with a Location header alone: the poller follows it.
                    const followed = kind === 'mysql-flexible' ? /\/operationResults\//i : /\/azureAsyncOperation\//i;
                    expect(polls.every((r) => followed.test(r.path))).toBe(true);
                    // Only after the PUT, a GET of the PEC reads the result.
                    const putIndex = seen.indexOf(puts[0]!);
                    const readsAfter = seen
                        .slice(putIndex + 1)
                        .filter((r) => r.method === 'GET' && r.path === seeded.pecId);
                    expect(readsAfter.length).toBeGreaterThanOrEqual(1);
                    expect(seen.every((r) => !isPecPath(r.path) || r.apiVersion)).toBe(true);
                },
            );

            it('never re-sends a PUT whose answer never came: ARM carried it out, and the apply waits for it', async () => {
                const seeded = seed(h, kind, 'put-lost-answer');
                // The hung try is given up after 300 ms; without a bound on the try it would hold the apply until
                // the LRO deadline (or, for a read, forever). The pipeline would re-send it; the adapter reads ARM
                // instead, finds the operation in flight, and waits for it.
                h.arm.faults.add(
                    { kind: 'hang', afterProcessing: true, dropAfterMs: 120_000 },
                    { times: 1, method: 'PUT', pathIncludes: seeded.pecName },
                );

                const pec = await bounded.setPecState(seeded.pec, 'Approved', 'Approved by Alice');

                expect(pec).toMatchObject({ status: 'Approved', description: 'Approved by Alice' });
                const puts = h.arm.requests.filter((r) => r.method === 'PUT' && r.path === seeded.pecId);
                expect(puts).toHaveLength(1);
                const commits = h.arm.commits.filter((c) => c.pecId === seeded.pecId);
                expect(commits).toEqual([
                    { pecId: seeded.pecId, from: 'Pending', to: 'Approved', description: 'Approved by Alice' },
                ]);
            });

            it('retries a read that gets no answer instead of waiting for it', async () => {
                const seeded = seed(h, kind, 'read-lost');
                h.arm.faults.add(
                    { kind: 'hang', afterProcessing: false, dropAfterMs: 120_000 },
                    { times: 1, method: 'GET', pathIncludes: seeded.pecName },
                );
                await expect(bounded.getPec(seeded.pec)).resolves.toMatchObject({ status: 'Pending' });
                expect(h.arm.requests.filter((r) => r.method === 'GET' && r.path === seeded.pecId)).toHaveLength(2);
            });

            it('rejects with PermanentError for a PEC that does not exist, without a PUT', async () => {
                const seeded = seed(h, kind, 'set-missing');
                const missing = { server: seeded.server, name: `pe-gone.${crypto.randomUUID()}` };
                const from = h.arm.requests.length;

                await expect(arm.setPecState(missing, 'Approved', 'ok')).rejects.toBeInstanceOf(PermanentError);
                expect(h.arm.requests.slice(from).filter((r) => r.method === 'PUT')).toHaveLength(0);
            });

            it('rejects with TransientError at the deadline when the operation never ends, and does not hang', async () => {
                const seeded = seed(h, kind, 'stuck');
                h.arm.stickLro(true);

                const error = await fast
                    .setPecState(seeded.pec, 'Approved', 'Approved by Alice')
                    .catch((e: unknown) => e);

                expect(error).toBeInstanceOf(TransientError);
                expect((error as Error).message).toMatch(/deadline/i);
                const stored = h.arm.getPec(seeded.pecId) as PecBody;
                expect(stored.properties.privateLinkServiceConnectionState.status).toBe('Pending');
                expect(requestsFor(h, seeded.server.name).some((r) => r.method === 'PUT')).toBe(true);
            });

            it('does not report success when the PUT answers 200 with a provisioning state that never settles', async () => {
                const seeded = seed(h, kind, 'noasync');
                h.arm.putWithoutAsyncHeaders(true);

                const error = await fast
                    .setPecState(seeded.pec, 'Approved', 'Approved by Alice')
                    .catch((e: unknown) => e);

                expect(error).toBeInstanceOf(TransientError);
                // The emulator committed the status at once, but the connection never settled.
                const stored = h.arm.getPec(seeded.pecId) as PecBody;
                expect(stored.properties.privateLinkServiceConnectionState.status).toBe('Approved');
                expect(stored.properties.provisioningState).toBe(single ? 'Approving' : 'Updating');
            });

            it('rejects with TransientError when the operation ends Failed', async () => {
                const seeded = seed(h, kind, 'lrofail');
                h.arm.failLro(true);

                // The main provider (10 s deadline): the failure must come from the operation, not from the deadline.
                const error = await arm.setPecState(seeded.pec, 'Rejected', 'Rejected by Bob').catch((e: unknown) => e);

                expect(error).toBeInstanceOf(TransientError);
                expect((error as Error).message).not.toMatch(/deadline/i);
                const stored = h.arm.getPec(seeded.pecId) as PecBody;
                expect(stored.properties.privateLinkServiceConnectionState.status).toBe('Pending');
            });
        });

        describe('faults', () => {
            it('retries 429 with Retry-After and succeeds', async () => {
                const seeded = seed(h, kind, 'throttle');
                const from = h.arm.requests.length;
                h.arm.faults.add(
                    { kind: 'throttle', retryAfterSeconds: 0 },
                    { times: 2, method: 'GET', pathIncludes: `${seeded.server.name}/privateEndpointConnections` },
                );

                await expect(arm.listPecs(seeded.server)).resolves.toHaveLength(1);
                const lists = requestsFor(h, seeded.server.name, from).filter((r) => isListPath(r.path));
                expect(lists).toHaveLength(3);
            });

            it('waits out a Retry-After of 1 second on the PUT and succeeds', async () => {
                const seeded = seed(h, kind, 'throttle-put');
                const from = h.arm.requests.length;
                h.arm.faults.add({ kind: 'throttle', retryAfterSeconds: 1 }, { times: 1, method: 'PUT' });

                const pec = await arm.setPecState(seeded.pec, 'Approved', 'Approved by Alice');

                expect(pec.status).toBe('Approved');
                const puts = requestsFor(h, seeded.server.name, from).filter((r) => r.method === 'PUT');
                expect(puts).toHaveLength(2);
            });

            it('retries 500 and succeeds', async () => {
                const seeded = seed(h, kind, 'err500');
                const from = h.arm.requests.length;
                h.arm.faults.add({ kind: 'error', status: 500 }, { times: 2, pathIncludes: seeded.server.name });

                await expect(arm.getPec(seeded.pec)).resolves.toMatchObject({ status: 'Pending' });
                expect(requestsFor(h, seeded.server.name, from)).toHaveLength(3);
            });

            it('does not re-send a PUT answered 500 (its outcome is unknown), and retries 503 on the polls', async () => {
                const seeded = seed(h, kind, 'err500-put');
                h.arm.faults.add({ kind: 'error', status: 500 }, { times: 1, method: 'PUT' });

                const error = await arm.setPecState(seeded.pec, 'Approved', 'Approved by Alice').catch((e) => e);
                expect(error).toBeInstanceOf(TransientError);
                expect(requestsFor(h, seeded.server.name).filter((r) => r.method === 'PUT')).toHaveLength(1);

                // The next attempt (the queue's redelivery) reads ARM, finds nothing changed, and sends its own PUT.
                h.arm.faults.add(
                    { kind: 'error', status: 503, code: 'ServiceUnavailable' },
                    { times: 1, pathIncludes: '/locations/' },
                );
                const pec = await arm.setPecState(seeded.pec, 'Approved', 'Approved by Alice');
                expect(pec).toMatchObject({ status: 'Approved', description: 'Approved by Alice' });
                expect(requestsFor(h, seeded.server.name).filter((r) => r.method === 'PUT')).toHaveLength(2);
            });

            it('retries a 409 (another operation in progress) with backoff, and sends no PUT while it runs', async () => {
                const seeded = seed(h, kind, 'conflict');
                h.arm.faults.add(
                    { kind: 'error', status: 409, code: 'AnotherOperationInProgress' },
                    { times: 2, method: 'PUT', pathIncludes: seeded.pecName },
                );

                const pec = await arm.setPecState(seeded.pec, 'Rejected', 'Rejected by Bob');

                expect(pec).toMatchObject({ status: 'Rejected', description: 'Rejected by Bob' });
                expect(requestsFor(h, seeded.server.name).filter((r) => r.method === 'PUT')).toHaveLength(3);
                expect(h.arm.commits.filter((c) => c.pecId === seeded.pecId)).toHaveLength(1);
            });

            it('is done at once when the PUT answers 200 with the state already settled (provisioningState Ready)', async () => {
                const seeded = seed(h, kind, 'at-once');
                h.arm.putAnswersAtOnce(true);
                try {
                    const pec = await arm.setPecState(seeded.pec, 'Approved', 'Approved by Alice');
                    expect(pec).toMatchObject({ status: 'Approved', description: 'Approved by Alice' });
                    expect(pec.provisioningState).toBe(single ? 'Ready' : 'Succeeded');
                    expect(requestsFor(h, seeded.server.name).filter((r) => r.method === 'PUT')).toHaveLength(1);
                } finally {
                    h.arm.putAnswersAtOnce(false);
                }
            });

            it('polls an operation an earlier attempt stored instead of sending another PUT', async () => {
                const seeded = seed(h, kind, 'resume');
                h.arm.stickLro(true);
                let stored: string | undefined;
                const first = await fast
                    .setPecState(seeded.pec, 'Approved', 'Approved by Alice', undefined, {
                        onStarted: async (operation) => {
                            stored = operation;
                        },
                    })
                    .catch((e: unknown) => e);
                expect(first).toBeInstanceOf(TransientError);
                expect(stored).toEqual(expect.any(String));
                h.arm.stickLro(false);

                const pec = await arm.setPecState(seeded.pec, 'Approved', 'Approved by Alice', undefined, {
                    ...(stored ? { operation: stored } : {}),
                });

                expect(pec).toMatchObject({ status: 'Approved', description: 'Approved by Alice' });
                expect(requestsFor(h, seeded.server.name).filter((r) => r.method === 'PUT')).toHaveLength(1);
                expect(h.arm.commits.filter((c) => c.pecId === seeded.pecId)).toHaveLength(1);
            });

            it('retries a dropped connection and succeeds; a connection that keeps dropping is transient', async () => {
                const seeded = seed(h, kind, 'drop');
                h.arm.faults.add({ kind: 'drop' }, { times: 2, pathIncludes: seeded.server.name });

                await expect(arm.listPecs(seeded.server)).resolves.toHaveLength(1);

                h.arm.faults.add({ kind: 'drop' }, { times: 10, pathIncludes: seeded.server.name });
                await expect(arm.getPec(seeded.pec)).rejects.toBeInstanceOf(TransientError);
            });

            it('rejects with TransientError when 500 outlasts the retries', async () => {
                const seeded = seed(h, kind, 'err500-out');
                const from = h.arm.requests.length;
                h.arm.faults.add({ kind: 'error', status: 500 }, { times: 10, pathIncludes: seeded.server.name });

                const error = await arm.listPecs(seeded.server).catch((e: unknown) => e);

                expect(error).toBeInstanceOf(TransientError);
                expect((error as TransientError).retryable).toBe(true);
                // ARM_MAX_RETRIES=3: the first try and three retries.
                expect(requestsFor(h, seeded.server.name, from)).toHaveLength(4);
            });

            it('rejects with TransientError when throttling outlasts the retries', async () => {
                const seeded = seed(h, kind, 'throttle-out');
                h.arm.faults.add(
                    { kind: 'throttle', retryAfterSeconds: 0 },
                    { times: 10, pathIncludes: seeded.server.name },
                );

                await expect(arm.getServerContext(seeded.server)).rejects.toBeInstanceOf(TransientError);
            });

            it.each([
                [403, 'AuthorizationFailed'],
                [404, 'ResourceNotFound'],
                [400, 'InvalidRequestContent'],
            ])('maps %i on the list to PermanentError without retrying', async (status, code) => {
                const seeded = seed(h, kind, `err${status}`);
                const from = h.arm.requests.length;
                h.arm.faults.add({ kind: 'error', status, code }, { times: 5, pathIncludes: seeded.server.name });

                const error = await arm.listPecs(seeded.server).catch((e: unknown) => e);

                expect(error).toBeInstanceOf(PermanentError);
                expect((error as PermanentError).retryable).toBe(false);
                expect(requestsFor(h, seeded.server.name, from)).toHaveLength(1);
            });

            it('maps 403 on the PUT to PermanentError and leaves the PEC pending', async () => {
                const seeded = seed(h, kind, 'err403-put');
                h.arm.faults.add({ kind: 'error', status: 403, code: 'AuthorizationFailed' }, { method: 'PUT' });

                await expect(arm.setPecState(seeded.pec, 'Approved', 'Approved by Alice')).rejects.toBeInstanceOf(
                    PermanentError,
                );
                const stored = h.arm.getPec(seeded.pecId) as PecBody;
                expect(stored.properties.privateLinkServiceConnectionState.status).toBe('Pending');
            });

            it('maps 403 on getPec to PermanentError (only 404 means absent)', async () => {
                const seeded = seed(h, kind, 'err403-get');
                h.arm.faults.add(
                    { kind: 'error', status: 403, code: 'AuthorizationFailed' },
                    { method: 'GET', pathIncludes: seeded.pecName },
                );

                await expect(arm.getPec(seeded.pec)).rejects.toBeInstanceOf(PermanentError);
            });

            it('maps a server that does not exist to PermanentError', async () => {
                const seeded = seed(h, kind, 'noserver');
                const ghost = { ...seeded.server, name: `${seeded.server.name}-ghost` };

                await expect(arm.listPecs(ghost)).rejects.toBeInstanceOf(PermanentError);
                await expect(arm.getServerContext(ghost)).rejects.toBeInstanceOf(PermanentError);
            });
        });
    });

    describe('tokens', () => {
        it('asks the managed-identity endpoint for the scope of the configured ARM endpoint', async () => {
            const seeded = seed(h, 'postgres-flexible', 'token');
            await arm.getPec(seeded.pec);

            const origin = new URL(h.arm.url).origin;
            const armTokens = h.token.issued.filter((t) => t.resource.replace(/\/$/, '') === origin);
            expect(armTokens.length).toBeGreaterThanOrEqual(1);
            expect(armTokens.every((t) => t.clientId === ids.client)).toBe(true);
            expect(h.token.issued.filter((t) => t.resource.includes('management.azure.com'))).toEqual([]);
        });
    });
});

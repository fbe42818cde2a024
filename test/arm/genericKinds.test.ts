import { createArmPecProvider, type PecProvider } from '../../src/arm';
import { PermanentError, TransientError } from '../../src/domain/errors';
import { formatPecId, kindInfo, kindOfType, type PecRef, type ServerKind, type ServerRef } from '../../src/domain/ids';
import { createCredential } from '../../src/runtime';
import { readExample, specSources, type SpecExample, type SpecSource } from '../emulators/armKinds';
import { ids, privateEndpointId, seedPendingPec, startHarness, type Harness } from '../harness';

/**
 * The kinds on the one generic adapter, against the ARM emulator answering in the shapes of their OFFICIAL examples
 * (test/fixtures/armSpecs/). First the examples themselves: seeded with the example's own names and state, the
 * emulator must answer exactly the example's body, and the adapter must read it with the identity it asked for.
 * Then the PUT as each kind's example answers it (200 at once, or 201/202 with Azure-AsyncOperation), its body, and
 * the retry, throttling and deadline handling the SDK kinds have.
 */

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

const kindOf = (source: SpecSource): ServerKind => {
    const kind = kindOfType(source.provider, source.type);
    if (!kind) {
        throw new Error(`${source.provider}/${source.type} has examples but no registry entry`);
    }
    return kind;
};

function successBody(example: SpecExample): Json {
    return ((example.responses['200'] ?? example.responses['201'])?.body ?? {}) as Json;
}

/** The example that shows one connection: the GET, else the PUT's 200 answer. */
function getExample(source: SpecSource): SpecExample {
    return readExample(source, source.get ?? source.put);
}

describe('the generic kinds against their official examples', () => {
    let h: Harness;
    let provider: PecProvider;
    const warnings: string[] = [];

    beforeAll(async () => {
        h = await startHarness();
        provider = createArmPecProvider({
            endpoint: h.arm.url,
            credential: createCredential(h.config),
            maxRetries: 3,
            retryDelayInMs: 10,
            lroDeadlineMs: 3000,
            warn: (message) => warnings.push(message),
        });
    });
    afterAll(async () => {
        await h.close();
    });
    afterEach(() => {
        h.arm.faults.clear();
        h.arm.stickLro(false);
        warnings.length = 0;
    });

    it('has examples for at least ten kinds beyond the four database kinds, each on the generic adapter', () => {
        const kinds = specSources.map(kindOf);
        expect(new Set(kinds).size).toBe(kinds.length);
        expect(kinds.length).toBeGreaterThanOrEqual(10);
        for (const kind of kinds) {
            expect(kindInfo[kind].client).toBe('generic');
            // The registry's api-version is one the examples are published for.
            expect(specSources.find((s) => kindOf(s) === kind)?.apiVersions).toContain(kindInfo[kind].apiVersion);
        }
        // Every registered kind beyond the databases has its examples here.
        const databases = ['postgres-single', 'mysql-single', 'postgres-flexible', 'mysql-flexible'];
        const others = Object.keys(kindInfo).filter((k) => !databases.includes(k));
        expect(others.sort()).toEqual([...kinds].sort());
    });

    describe.each(specSources.map((source) => [kindOf(source), source] as const))('%s', (kind, source) => {
        /** The example's own resource and connection, seeded with the example's state. */
        function seedExample(): { pec: PecRef; body: Json; example: SpecExample } {
            const example = getExample(source);
            const p = example.parameters as Record<string, string>;
            const body = successBody(example);
            const server: ServerRef = {
                kind,
                subscriptionId: p.subscriptionId!,
                resourceGroup: p.resourceGroupName!,
                name: p[source.nameParameter]!,
            };
            const { provider: rp, type } = kindInfo[kind];
            // Seeding the resource again starts it afresh, so each test has its own copy of the example.
            const serverId = h.arm.addServer({ ...server, provider: rp, type, publicNetworkAccess: 'Enabled' });
            h.arm.addPec(serverId, {
                name: p.privateEndpointConnectionName!,
                privateEndpointId: body.properties.privateEndpoint.id,
                status: body.properties.privateLinkServiceConnectionState.status,
                description: body.properties.privateLinkServiceConnectionState.description,
            });
            return { pec: { server, name: p.privateEndpointConnectionName! }, body, example };
        }

        it('answers a GET with exactly the body of the official example', () => {
            const { pec, body } = seedExample();
            const answer = h.arm.getPec(formatPecId(pec)) as Json;
            // The examples' names are the request's, except where an example's body names another connection
            // (the Event Hubs and Service Bus examples): the emulator names every connection by its own name.
            expect(answer).toEqual('name' in body ? { ...body, name: pec.name } : body);
        });

        it('reads the example through the adapter with the identity it asked for, logging a body id that differs', async () => {
            const { pec, body } = seedExample();

            const read = await provider.getPec(pec);

            const state = body.properties.privateLinkServiceConnectionState;
            expect(read).toEqual({
                ref: pec,
                id: formatPecId(pec),
                privateEndpointId: body.properties.privateEndpoint.id,
                status: state.status,
                description: state.description,
                provisioningState: body.properties.provisioningState ?? '',
            });
            const odd = body.id.toLowerCase() !== formatPecId(pec).toLowerCase();
            expect(warnings.some((w) => w.includes(`body id ${body.id}`))).toBe(odd);
        });

        it('lists the connections the example lists, one PEC per connection name, on the resource asked for', async () => {
            const { pec } = seedExample();

            const pecs = await provider.listPecs(pec.server);

            expect(pecs.map((p) => p.ref)).toEqual([pec]);
            expect(pecs[0]?.id).toBe(formatPecId(pec));
            if (source.list) {
                const items = (successBody(readExample(source, source.list)).value ?? []) as Json[];
                // An example that repeats one connection shows it to the adapter twice: one PEC, and a warning.
                const twice =
                    items.length > 1 && items.every((i) => i.id === items[0]!.id && i.name === items[0]!.name);
                expect(warnings.some((w) => w.includes('twice'))).toBe(twice);
            }
        });

        it('sets the state with a body of only what the contract asks for, answered as the example answers', async () => {
            const seeded = seedPendingPec(h.arm, kind, { serverName: `${kind.replace(/-/g, '')}put` });
            const target: PecRef = { server: parseRef(seeded.serverId, kind), name: seeded.pecName };
            const from = h.arm.requests.length;

            const after = await provider.setPecState(target, 'Approved', 'Approved by alice@contoso.com: CHG-7');

            expect(after).toMatchObject({ ref: target, id: seeded.pecId, status: 'Approved' });
            const seen = h.arm.requests.slice(from);
            const puts = seen.filter((r) => r.method === 'PUT');
            expect(puts).toHaveLength(1);
            expect(puts[0]?.apiVersion).toBe(kindInfo[kind].apiVersion);
            const sent = puts[0]?.body as Json;
            expect(sent).toEqual({
                properties: {
                    // The connection's own private endpoint, as read, for a deny policy that checks it.
                    privateEndpoint: { id: privateEndpointId(ids.ours, `pe-${kind}`) },
                    privateLinkServiceConnectionState: {
                        status: 'Approved',
                        description: 'Approved by alice@contoso.com: CHG-7',
                    },
                },
            });
            const put = readExample(source, source.put);
            const polls = seen.filter((r) =>
                /\/(azureAsyncOperation|operationResults|operationStatuses|operationsStatus|privateEndpointConnectionAzureAsyncOperation)\//i.test(
                    r.path,
                ),
            );
            if (source.putAnswer === 'sync') {
                // 200 at once, as the example answers: nothing to poll.
                expect(Object.keys(put.responses)).toContain('200');
                expect(polls).toEqual([]);
            } else {
                // 201/202 with Azure-AsyncOperation, as the example answers; polled until it ended.
                expect(Object.keys(put.responses)).toContain(source.putAnswer === 'async-201' ? '201' : '202');
                expect(polls.length).toBeGreaterThanOrEqual(1);
                expect(h.arm.operations.filter((o) => o.pecId === seeded.pecId)).toEqual([
                    expect.objectContaining({ method: 'PUT', status: 'Succeeded' }),
                ]);
            }
            expect(h.arm.commits.filter((c) => c.pecId === seeded.pecId)).toEqual([
                {
                    pecId: seeded.pecId,
                    from: 'Pending',
                    to: 'Approved',
                    description: 'Approved by alice@contoso.com: CHG-7',
                },
            ]);
        });

        it('waits out a 429 with Retry-After on the PUT and succeeds, and maps 403 to PermanentError', async () => {
            const seeded = seedPendingPec(h.arm, kind, { serverName: `${kind.replace(/-/g, '')}throttle` });
            const target: PecRef = { server: parseRef(seeded.serverId, kind), name: seeded.pecName };
            h.arm.faults.add(
                { kind: 'throttle', retryAfterSeconds: 1 },
                { times: 1, method: 'PUT', pathIncludes: seeded.pecName },
            );
            const started = Date.now();

            await expect(
                provider.setPecState(target, 'Rejected', 'Rejected by bob@contoso.com: no'),
            ).resolves.toMatchObject({ status: 'Rejected' });
            expect(Date.now() - started).toBeGreaterThanOrEqual(900);

            const other = seedPendingPec(h.arm, kind, { serverName: `${kind.replace(/-/g, '')}denied` });
            h.arm.faults.add(
                { kind: 'error', status: 403, code: 'AuthorizationFailed' },
                { times: 5, method: 'PUT', pathIncludes: other.pecName },
            );
            const denied = provider.setPecState(
                { server: parseRef(other.serverId, kind), name: other.pecName },
                'Approved',
                'Approved by alice@contoso.com',
            );
            await expect(denied).rejects.toBeInstanceOf(PermanentError);
            expect((h.arm.getPec(other.pecId) as Json).properties.privateLinkServiceConnectionState.status).toBe(
                'Pending',
            );
        });

        it(
            source.sameStatusRefused
                ? 'takes a connection already in the state asked for as done when the provider refuses a PUT repeating its status'
                : 'rewrites the description of a connection already in the state asked for with one more PUT',
            async () => {
                const seeded = seedPendingPec(h.arm, kind, { serverName: `${kind.replace(/-/g, '')}again` });
                const target: PecRef = { server: parseRef(seeded.serverId, kind), name: seeded.pecName };
                await provider.setPecState(target, 'Approved', 'Approved in the portal by carol@contoso.com');
                const from = h.arm.requests.length;

                const after = await provider.setPecState(target, 'Approved', 'Kept by alice@contoso.com: CHG-9');

                const puts = h.arm.requests.slice(from).filter((r) => r.method === 'PUT');
                expect(puts).toHaveLength(1);
                if (source.sameStatusRefused) {
                    // Storage answers 400 InvalidValuesForRequestParameters (Azure/azure-rest-api-specs#30308): the
                    // state is the one asked for, the description the one it had, and a warning says so.
                    expect(after).toMatchObject({
                        status: 'Approved',
                        description: 'Approved in the portal by carol@contoso.com',
                    });
                    expect(warnings.some((w) => w.includes('not the one sent'))).toBe(true);
                    // A change of status is not a repeat: it goes through.
                    await expect(
                        provider.setPecState(target, 'Rejected', 'Rejected by bob@contoso.com'),
                    ).resolves.toMatchObject({ status: 'Rejected', description: 'Rejected by bob@contoso.com' });
                } else {
                    expect(after).toMatchObject({
                        status: 'Approved',
                        description: 'Kept by alice@contoso.com: CHG-9',
                    });
                }
            },
        );

        if (source.putAnswer !== 'sync') {
            it('gives up at the deadline with a TransientError when the operation never ends', async () => {
                const seeded = seedPendingPec(h.arm, kind, { serverName: `${kind.replace(/-/g, '')}stuck` });
                h.arm.stickLro(true);

                const error = await provider
                    .setPecState({ server: parseRef(seeded.serverId, kind), name: seeded.pecName }, 'Approved', 'x')
                    .catch((e: unknown) => e);

                expect(error).toBeInstanceOf(TransientError);
            });
        }

        it('lists the resources of a subscription with their connections inline where the kind carries them', async () => {
            const subscriptionId = crypto.randomUUID();
            const seeded = seedPendingPec(h.arm, kind, { subscriptionId, approved: [ids.foreign] });
            const from = h.arm.requests.length;

            const listed = await provider.listServersWithPecs!(subscriptionId, kind);

            expect(listed.map((l) => l.server)).toEqual([parseRef(seeded.serverId, kind)]);
            const connectionLists = h.arm.requests
                .slice(from)
                .filter((r) => /privateEndpointConnections$/.test(r.path));
            expect(connectionLists).toEqual([]);
            if (kindInfo[kind].inlineConnections) {
                const pecs = listed[0]?.pecs ?? [];
                expect(pecs.map((p) => p.status).sort()).toEqual(['Approved', 'Pending']);
                expect(pecs.find((p) => p.status === 'Pending')?.id).toBe(seeded.pecId);
            } else {
                expect(listed[0]?.pecs).toBeUndefined();
            }
        });
    });
});

function parseRef(serverId: string, kind: ServerKind): ServerRef {
    const [, , subscriptionId, , resourceGroup, , , , name] = serverId.split('/');
    return { kind, subscriptionId: subscriptionId!, resourceGroup: resourceGroup!, name: name! };
}

import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { createArmPecProvider, type PecProvider } from '../../src/arm';
import type { PecRef, ServerKind, ServerRef } from '../../src/domain/ids';
import { createCredential } from '../../src/runtime';
import { sendJson, startServer, type RunningServer } from '../emulators/server';
import { startHarness, type Harness } from '../harness';

/**
 * The four database kinds against their OFFICIAL examples (azure-rest-api-specs, stored verbatim in
 * test/fixtures/armSpecs/<kind>/), through the real SDK clients and the generic client. A replay server answers
 * each request with the example's own response and nothing else, so what passes here is what the published
 * contract says, not what our ARM emulator happens to answer. The examples carry their quirks: a list whose ids
 * disagree with the names, and a PUT that answers 200 with `provisioningState: "Ready"` at once.
 */

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

interface Example {
    parameters: Json;
    responses: Record<string, { body?: Json; headers?: Record<string, string> }>;
}

const fixtures = path.join(__dirname, '..', 'fixtures', 'armSpecs');

function example(kind: ServerKind, file: string): Example {
    return JSON.parse(readFileSync(path.join(fixtures, kind, file), 'utf8')) as Example;
}

interface KindExamples {
    kind: ServerKind;
    provider: string;
    type: string;
    get?: string;
    list?: string;
    put: string;
}

const kinds: KindExamples[] = [
    {
        kind: 'postgres-single',
        provider: 'Microsoft.DBforPostgreSQL',
        type: 'servers',
        get: 'PrivateEndpointConnectionGet.json',
        list: 'PrivateEndpointConnectionList.json',
        put: 'PrivateEndpointConnectionUpdate.json',
    },
    {
        kind: 'mysql-single',
        provider: 'Microsoft.DBforMySQL',
        type: 'servers',
        put: 'PrivateEndpointConnectionUpdate.json',
    },
    {
        kind: 'postgres-flexible',
        provider: 'Microsoft.DBforPostgreSQL',
        type: 'flexibleServers',
        get: 'PrivateEndpointConnectionsGet.json',
        put: 'PrivateEndpointConnectionUpdate.json',
    },
    {
        kind: 'mysql-flexible',
        provider: 'Microsoft.DBforMySQL',
        type: 'flexibleServers',
        get: 'PrivateEndpointConnectionGet.json',
        list: 'PrivateEndpointConnectionList.json',
        put: 'PrivateEndpointConnectionGet.json',
    },
];

interface Seen {
    method: string;
    path: string;
    apiVersion: string | null;
    body: string;
}

/** Answers one example per (method, path) and records what it was asked. Anything else is a 404 ARM would give. */
class Replay {
    readonly seen: Seen[] = [];
    private readonly answers = new Map<string, { status: number; body: Json }>();
    private readonly hooks = new Map<string, () => void>();
    server!: RunningServer;

    async start(): Promise<void> {
        this.server = await startServer(
            (req, res, body) => {
                const url = new URL(req.url ?? '/', 'https://replay');
                this.seen.push({
                    method: req.method ?? '',
                    path: url.pathname,
                    apiVersion: url.searchParams.get('api-version'),
                    body,
                });
                const answer = this.answers.get(`${req.method} ${url.pathname.toLowerCase()}`);
                if (!answer) {
                    sendJson(res, 404, { error: { code: 'ResourceNotFound', message: `not in the examples` } });
                    return;
                }
                this.hooks.get(`${req.method} ${url.pathname.toLowerCase()}`)?.();
                sendJson(res, answer.status, answer.body);
            },
            { https: true },
        );
    }

    answer(method: string, resourcePath: string, status: number, body: Json): void {
        this.answers.set(`${method} ${resourcePath.toLowerCase()}`, { status, body });
    }

    /** Runs `effect` when the request is answered: a PUT changes what later reads find, as in ARM. */
    after(method: string, resourcePath: string, effect: () => void): void {
        this.hooks.set(`${method} ${resourcePath.toLowerCase()}`, effect);
    }
}

function serverOf(k: KindExamples, parameters: Json): ServerRef {
    return {
        kind: k.kind,
        subscriptionId: parameters.subscriptionId as string,
        resourceGroup: parameters.resourceGroupName as string,
        name: parameters.serverName as string,
    };
}

function serverPath(k: KindExamples, parameters: Json): string {
    return (
        `/subscriptions/${parameters.subscriptionId}/resourceGroups/${parameters.resourceGroupName}` +
        `/providers/${k.provider}/${k.type}/${parameters.serverName}`
    );
}

describe('the database kinds against their official examples (azure-rest-api-specs)', () => {
    let h: Harness;
    let replay: Replay;
    let provider: PecProvider;

    beforeAll(async () => {
        h = await startHarness();
        replay = new Replay();
        await replay.start();
        provider = createArmPecProvider({
            endpoint: replay.server.url,
            credential: createCredential(h.config),
            maxRetries: 0,
            retryDelayInMs: 10,
            // Long enough that waiting out the deadline (a 'Ready' answer not taken as final) fails the test by its timeout.
            lroDeadlineMs: 60_000,
        });
    });
    afterAll(async () => {
        await replay.server.close();
        await h.close();
    });

    const withGet = kinds.flatMap((k) => (k.get ? [[k.kind, k.get, k] as const] : []));
    const withList = kinds.flatMap((k) => (k.list ? [[k.kind, k.list, k] as const] : []));

    describe.each(withGet)('%s', (_, file, k) => {
        it(`reads the Get example (${file}) with the identity it asked for`, async () => {
            const ex = example(k.kind, file);
            const p = ex.parameters;
            const pecPath = `${serverPath(k, p)}/privateEndpointConnections/${p.privateEndpointConnectionName}`;
            const body = ex.responses['200']?.body ?? {};
            replay.answer('GET', pecPath, 200, body);
            const ref: PecRef = { server: serverOf(k, p), name: p.privateEndpointConnectionName as string };

            const pec = await provider.getPec(ref);

            expect(pec).toMatchObject({
                ref,
                status: 'Approved',
                description: 'Auto-approved',
                provisioningState: 'Ready',
                privateEndpointId: body.properties.privateEndpoint.id,
            });
            expect(replay.seen.at(-1)).toMatchObject({ method: 'GET', apiVersion: p['api-version'] });
        });
    });

    describe.each(withList)('%s', (_, file, k) => {
        it(`lists the List example (${file}) by the names it holds, not by its ids (the example repeats one id)`, async () => {
            const ex = example(k.kind, file);
            const p = ex.parameters;
            replay.answer(
                'GET',
                `${serverPath(k, p)}/privateEndpointConnections`,
                200,
                ex.responses['200']?.body ?? {},
            );

            const pecs = await provider.listPecs(serverOf(k, p));

            expect(pecs.map((pec) => pec.ref.name).sort()).toEqual([
                'private-endpoint-connection-name',
                'private-endpoint-connection-name-2',
            ]);
            expect(pecs.every((pec) => pec.ref.server.name === p.serverName)).toBe(true);
            expect(pecs.map((pec) => pec.privateEndpointId.split('/').at(-1)).sort()).toEqual([
                'private-endpoint-name',
                'private-endpoint-name-2',
            ]);
        });
    });

    describe.each(kinds.map((k) => [k.kind, k] as const))('%s', (_, k) => {
        it(`sends the Update example's request body (${k.put}) and takes its 200 "Ready" answer as final`, async () => {
            const ex = example(k.kind, k.put);
            const p = ex.parameters;
            // The examples approve; MySQL flexible publishes no Update example, so its Get answers as the PUT's 200.
            const request = (p.parameters as Json | undefined) ?? {
                properties: {
                    privateLinkServiceConnectionState: {
                        status: 'Approved',
                        description: 'Approved by johndoe@contoso.com',
                    },
                },
            };
            const pecPath = `${serverPath(k, p)}/privateEndpointConnections/${p.privateEndpointConnectionName}`;
            const answer = ex.responses['200']?.body ?? {};
            // Before the PUT the connection is the example's own, still waiting (the examples show only the after).
            const pending = JSON.parse(JSON.stringify(answer)) as Json;
            pending.properties.privateLinkServiceConnectionState = {
                status: 'Pending',
                description: 'Please approve',
                actionsRequired: 'None',
            };
            replay.answer('GET', pecPath, 200, pending);
            replay.answer('PUT', pecPath, 200, answer);
            // From the PUT on, a read finds what the PUT answered.
            replay.after('PUT', pecPath, () => replay.answer('GET', pecPath, 200, answer));
            const ref: PecRef = { server: serverOf(k, p), name: p.privateEndpointConnectionName as string };
            const from = replay.seen.length;

            const state = request.properties.privateLinkServiceConnectionState as {
                status: 'Approved';
                description: string;
            };
            const pec = await provider.setPecState(ref, state.status, state.description);

            const puts = replay.seen.slice(from).filter((s) => s.method === 'PUT');
            expect(puts).toHaveLength(1);
            expect(puts[0]?.apiVersion).toBe(p['api-version']);
            // The example's body, and the connection's own private endpoint as the GET before it read it (what
            // Azure CLI's and PowerShell's approve send back, and a deny policy on untrusted endpoints checks).
            const sent = JSON.parse(puts[0]?.body ?? '{}') as Json;
            expect(sent).toEqual({
                properties: {
                    ...request.properties,
                    privateEndpoint: { id: pending.properties.privateEndpoint.id },
                },
            });
            expect(pec).toMatchObject({ ref, status: 'Approved' });
            // Final at once: no operation to poll (the answer carried no async headers), and no second PUT.
            expect(replay.seen.slice(from).filter((s) => /\/locations\//i.test(s.path))).toEqual([]);
        });
    });
});

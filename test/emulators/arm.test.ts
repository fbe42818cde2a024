import { ArmEmulator, type DbProvider, type ServerKind } from './arm';

const SUB = '00000000-0000-4000-8000-000000000001';
const PE_SUB = '00000000-0000-4000-8000-000000000002';
const AUDIENCE = 'https://management.azure.com/';
const PG = 'Microsoft.DBforPostgreSQL';
const MY = 'Microsoft.DBforMySQL';

function token(aud: string): string {
    const b64 = (o: unknown) => Buffer.from(JSON.stringify(o)).toString('base64url');
    return `Bearer ${b64({ alg: 'none', typ: 'JWT' })}.${b64({ aud })}.sig`;
}

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

const API: Record<string, string> = {
    [`${PG}/servers`]: '2018-06-01',
    [`${MY}/servers`]: '2018-06-01',
    [`${PG}/flexibleServers`]: '2025-08-01',
    [`${MY}/flexibleServers`]: '2024-12-30',
};

describe('ArmEmulator', () => {
    let arm: ArmEmulator;
    const auth = { authorization: token(AUDIENCE) };

    beforeEach(async () => {
        arm = await ArmEmulator.start({ expectedAudience: 'https://management.azure.com' });
    });
    afterEach(() => arm.close());

    function seed(provider: DbProvider, type: ServerKind, pecs = 1) {
        const serverId = arm.addServer({
            subscriptionId: SUB,
            resourceGroup: 'rg-Data',
            provider,
            type,
            name: `Srv-${type}`,
            location: 'West Europe',
            publicNetworkAccess: 'Disabled',
            tags: { env: 'test' },
        });
        const pecIds = Array.from({ length: pecs }, (_, i) =>
            arm.addPec(serverId, {
                name: `pe-${i}.1f0e7c7a-0000-4000-8000-00000000000${i % 10}`,
                privateEndpointId: `/subscriptions/${PE_SUB}/resourceGroups/rg-app/providers/Microsoft.Network/privateEndpoints/pe-${i}`,
            }),
        );
        return { serverId, pecIds, api: API[`${provider}/${type}`]! };
    }

    async function call(
        method: string,
        path: string,
        options: { body?: unknown; headers?: Record<string, string> } = {},
    ) {
        const url = path.startsWith('https://') ? path : `${arm.url}${path}`;
        const res = await fetch(url, {
            method,
            headers: { ...auth, 'content-type': 'application/json', ...options.headers },
            body: options.body === undefined ? undefined : JSON.stringify(options.body),
        });
        const text = await res.text();
        return { status: res.status, headers: res.headers, body: (text ? JSON.parse(text) : undefined) as Json };
    }

    const approve = {
        properties: { privateLinkServiceConnectionState: { status: 'Approved', description: 'ok by A' } },
    };

    it.each([
        [PG, 'servers'],
        [MY, 'servers'],
        [PG, 'flexibleServers'],
        [MY, 'flexibleServers'],
    ] as [DbProvider, ServerKind][])('GETs a %s/%s server in the official shape', async (provider, type) => {
        const { serverId, pecIds, api } = seed(provider, type);
        const { status, body } = await call('GET', `${serverId}?api-version=${api}`);
        expect(status).toBe(200);
        expect(body).toMatchObject({ id: serverId, name: `Srv-${type}`, type: `${provider}/${type}` });
        expect(body.location).toBe('West Europe');
        expect(body.tags).toEqual({ env: 'test' });
        const pec = body.properties.privateEndpointConnections[0];
        expect(pec.id).toBe(pecIds[0]);
        expect(pec.properties.privateLinkServiceConnectionState).toEqual({
            status: 'Pending',
            description: '',
            actionsRequired: 'None',
        });
        if (type === 'servers') {
            expect(body.properties.publicNetworkAccess).toBe('Disabled');
            expect(pec.properties.provisioningState).toBe('Ready');
            expect(pec.name).toBeUndefined();
        } else {
            expect(body.properties.network.publicNetworkAccess).toBe('Disabled');
            expect(pec.properties.provisioningState).toBe('Succeeded');
            expect(pec.type).toBe(`${provider}/flexibleServers/privateEndpointConnections`);
            expect(pec.properties.groupIds).toEqual([provider === PG ? 'postgresqlServer' : 'mysqlServer']);
        }
    });

    it('lists PECs page by page, with nextLink on its own origin keeping the api-version', async () => {
        await arm.close();
        arm = await ArmEmulator.start({ pageSize: 2 });
        const { serverId, pecIds, api } = seed(PG, 'flexibleServers', 5);
        const seen: string[] = [];
        let next: string | undefined = `${serverId}/privateEndpointConnections?api-version=${api}`;
        let pages = 0;
        while (next) {
            const { status, body } = await call('GET', next);
            expect(status).toBe(200);
            seen.push(...body.value.map((p: Json) => p.id));
            next = body.nextLink;
            if (next) {
                expect(next.startsWith(`${arm.url}/`)).toBe(true);
                expect(new URL(next).searchParams.get('api-version')).toBe(api);
                expect(new URL(next).searchParams.get('$skipToken')).toBeTruthy();
            }
            pages += 1;
        }
        expect(pages).toBe(3);
        expect(seen).toEqual(pecIds);
    });

    describe('subscription-level server lists', () => {
        const OTHER_SUB = '00000000-0000-4000-8000-000000000003';
        const EMPTY_SUB = '00000000-0000-4000-8000-000000000004';
        const types: [DbProvider, ServerKind][] = [
            [PG, 'servers'],
            [MY, 'servers'],
            [PG, 'flexibleServers'],
            [MY, 'flexibleServers'],
        ];
        /** The api-versions the SDKs (and the generic MySQL flexible client) send for these lists. */
        const listApi: Record<string, string> = {
            [`${PG}/servers`]: '2017-12-01',
            [`${MY}/servers`]: '2017-12-01',
            [`${PG}/flexibleServers`]: '2025-08-01',
            [`${MY}/flexibleServers`]: '2023-06-30',
        };
        const listPath = (sub: string, provider: DbProvider, type: ServerKind) =>
            `/subscriptions/${sub}/providers/${provider}/${type}`;

        /** Five servers of every type in SUB and two in OTHER_SUB, interleaved so a filter on order alone fails. */
        function seedMany(): Record<string, { ours: string[]; other: string[] }> {
            const seeded: Record<string, { ours: string[]; other: string[] }> = {};
            for (let i = 0; i < 5; i += 1) {
                for (const [provider, type] of types) {
                    const entry = (seeded[`${provider}/${type}`] ??= { ours: [], other: [] });
                    const add = (sub: string, name: string) =>
                        arm.addServer({ subscriptionId: sub, resourceGroup: `rg-${i % 2}`, provider, type, name });
                    entry.ours.push(add(SUB, `${type.toLowerCase()}-${i}`));
                    if (i < 2) {
                        entry.other.push(add(OTHER_SUB, `other-${type.toLowerCase()}-${i}`));
                    }
                }
            }
            return seeded;
        }

        async function listAll(first: string) {
            const ids: string[] = [];
            const pages: Json[] = [];
            let next: string | undefined = first;
            while (next) {
                const { status, body } = await call('GET', next);
                expect(status).toBe(200);
                pages.push(body);
                ids.push(...body.value.map((s: Json) => s.id));
                next = body.nextLink;
            }
            return { ids, pages };
        }

        it.each(types)(
            'lists only the %s/%s servers of the subscription, in the server GET shape',
            async (provider, type) => {
                await arm.close();
                arm = await ArmEmulator.start({ pageSize: 2 });
                const seeded = seedMany()[`${provider}/${type}`]!;
                const api = listApi[`${provider}/${type}`]!;

                const ours = await listAll(`${listPath(SUB, provider, type)}?api-version=${api}`);
                expect(ours.ids).toEqual(seeded.ours);
                const other = await listAll(`${listPath(OTHER_SUB, provider, type)}?api-version=${api}`);
                expect(other.ids).toEqual(seeded.other);

                const direct = await call('GET', `${seeded.ours[0]}?api-version=${api}`);
                expect(ours.pages[0]!.value[0]).toEqual(direct.body);
                expect(ours.pages[0]!.value[0]).toMatchObject({
                    type: `${provider}/${type}`,
                    name: `${type.toLowerCase()}-0`,
                });
                if (type === 'servers') {
                    // 2017-12-01 ServerListResult has no nextLink: everything in one page, whatever the page size.
                    expect(ours.pages).toHaveLength(1);
                    expect(ours.pages[0]!.nextLink).toBeUndefined();
                } else {
                    expect(ours.pages.map((p) => p.value.length)).toEqual([2, 2, 1]);
                    for (const page of ours.pages.slice(0, -1)) {
                        const next = new URL(page.nextLink);
                        expect(`${next.origin}${next.pathname}`).toBe(`${arm.url}${listPath(SUB, provider, type)}`);
                        expect(next.searchParams.get('api-version')).toBe(api);
                        expect(next.searchParams.get('$skipToken')).toBeTruthy();
                    }
                }
            },
        );

        it('answers an empty list, not 404, for a subscription without servers of that type', async () => {
            seedMany();
            for (const [provider, type] of types) {
                const api = listApi[`${provider}/${type}`]!;
                const empty = await call('GET', `${listPath(EMPTY_SUB, provider, type)}?api-version=${api}`);
                expect(empty).toMatchObject({ status: 200, body: { value: [] } });
                expect(empty.body.nextLink).toBeUndefined();
            }
        });

        it('matches the subscription, provider and type case-insensitively and keeps the original casing', async () => {
            const { serverId } = seed(PG, 'flexibleServers');
            const path = `/SUBSCRIPTIONS/${SUB.toUpperCase()}/providers/microsoft.dbforpostgresql/FLEXIBLESERVERS`;
            const { status, body } = await call('GET', `${path}?api-version=2025-08-01`);
            expect(status).toBe(200);
            expect(body.value.map((s: Json) => s.id)).toEqual([serverId]);
        });

        it('checks the api-version of each type', async () => {
            seedMany();
            const single = listPath(SUB, PG, 'servers');
            const missing = await call('GET', single);
            expect(missing.status).toBe(400);
            expect(missing.body.error.code).toBe('MissingApiVersionParameter');
            expect((await call('GET', `${single}?api-version=2018-06-01`)).status).toBe(200);
            const flexOnSingle = await call('GET', `${single}?api-version=2025-08-01`);
            expect(flexOnSingle.status).toBe(400);
            expect(flexOnSingle.body.error.code).toBe('InvalidApiVersionParameter');
            const singleOnFlex = await call('GET', `${listPath(SUB, MY, 'flexibleServers')}?api-version=2017-12-01`);
            expect(singleOnFlex.status).toBe(400);
            expect(singleOnFlex.body.error.code).toBe('InvalidApiVersionParameter');
            // Each flexible type has its own versions: PostgreSQL's 2025-08-01 is not a MySQL version.
            expect((await call('GET', `${listPath(SUB, MY, 'flexibleServers')}?api-version=2025-08-01`)).status).toBe(
                400,
            );
            expect((await call('GET', `${listPath(SUB, MY, 'flexibleServers')}?api-version=2024-12-30`)).status).toBe(
                200,
            );
        });

        it.each(['PUT', 'PATCH', 'DELETE', 'POST'])('answers %s on a list with 405', async (method) => {
            seedMany();
            for (const [provider, type] of types) {
                const api = listApi[`${provider}/${type}`]!;
                const res = await call(method, `${listPath(SUB, provider, type)}?api-version=${api}`, { body: {} });
                expect(res.status).toBe(405);
                expect(res.body.error.code).toBe('MethodNotAllowed');
            }
        });

        it('requires a token, and injects faults on the list routes too', async () => {
            seedMany();
            const path = `${listPath(SUB, MY, 'flexibleServers')}?api-version=2023-06-30`;
            expect((await call('GET', path, { headers: { authorization: '' } })).status).toBe(401);
            arm.faults.add({ kind: 'throttle', retryAfterSeconds: 3 }, { method: 'GET', pathIncludes: '/providers/' });
            arm.faults.add({ kind: 'error', status: 403, code: 'AuthorizationFailed' }, { pathIncludes: SUB });
            const throttled = await call('GET', path);
            expect(throttled.status).toBe(429);
            expect(throttled.headers.get('retry-after')).toBe('3');
            const forbidden = await call('GET', path);
            expect(forbidden.status).toBe(403);
            expect(forbidden.body.error.code).toBe('AuthorizationFailed');
            expect((await call('GET', path)).status).toBe(200);
        });
    });

    it('runs a PUT as a 202 long-running operation and commits on Succeeded (flexible)', async () => {
        const { pecIds, api } = seed(PG, 'flexibleServers');
        const pecId = pecIds[0]!;
        const put = await call('PUT', `${pecId}?api-version=${api}`, { body: approve });
        expect(put.status).toBe(202);
        expect(put.body).toBeUndefined();
        const asyncUrl = put.headers.get('azure-asyncoperation')!;
        const location = put.headers.get('location')!;
        expect(asyncUrl).toMatch(
            new RegExp(
                `^${arm.url}/subscriptions/${SUB}/providers/${PG}/locations/westeurope/azureAsyncOperation/[^/?]+\\?api-version=${api}$`,
            ),
        );
        expect(location).toMatch(/\/locations\/westeurope\/operationResults\/[^/?]+\?api-version=/);
        expect(put.headers.get('retry-after')).toBe('0');
        expect((arm.getPec(pecId) as Json).properties.provisioningState).toBe('Updating');
        expect((arm.getPec(pecId) as Json).properties.privateLinkServiceConnectionState.status).toBe('Pending');

        const first = await call('GET', asyncUrl);
        expect(first.body).toMatchObject({ status: 'InProgress' });
        expect(first.body.startTime).toBeDefined();
        expect(arm.operations).toEqual([expect.objectContaining({ pecId, method: 'PUT', status: 'InProgress' })]);
        const second = await call('GET', asyncUrl);
        expect(second.body).toMatchObject({ status: 'Succeeded' });
        expect(second.body.endTime).toBeDefined();

        const result = await call('GET', location);
        expect(result.status).toBe(200);
        expect(result.body.properties.privateLinkServiceConnectionState).toEqual({
            status: 'Approved',
            description: 'ok by A',
            actionsRequired: 'None',
        });
        const final = await call('GET', `${pecId}?api-version=${api}`);
        expect(final.body.properties).toMatchObject({
            provisioningState: 'Succeeded',
            privateLinkServiceConnectionState: { status: 'Approved', description: 'ok by A' },
        });
        expect(arm.operations[0]!.status).toBe('Succeeded');
        expect(arm.requests[0]).toEqual({ method: 'PUT', path: pecId, apiVersion: api, body: approve });
    });

    it('uses Approving then Ready on single servers, also accepts PATCH on flexible, and polls via Location', async () => {
        const single = seed(MY, 'servers');
        await call('PUT', `${single.pecIds[0]}?api-version=2018-06-01`, { body: approve });
        expect((arm.getPec(single.pecIds[0]!) as Json).properties.provisioningState).toBe('Approving');
        const location = arm.operations[0]!;
        expect(location.method).toBe('PUT');

        const flex = seed(MY, 'flexibleServers');
        const patch = await call('PATCH', `${flex.pecIds[0]}?api-version=2023-06-30`, { body: approve });
        expect(patch.status).toBe(202);
        const poll1 = await call('GET', patch.headers.get('location')!);
        expect(poll1.status).toBe(202);
        expect(poll1.headers.get('location')).toBe(patch.headers.get('location'));
        const poll2 = await call('GET', patch.headers.get('location')!);
        expect(poll2.status).toBe(200);
        expect(poll2.body.properties.privateLinkServiceConnectionState.status).toBe('Approved');

        // The az CLI style: poll the resource itself until its provisioningState is final.
        const get1 = await call('GET', `${single.pecIds[0]}?api-version=2018-06-01`);
        expect(get1.body.properties.provisioningState).toBe('Approving');
        const get2 = await call('GET', `${single.pecIds[0]}?api-version=2018-06-01`);
        expect(get2.body.properties).toMatchObject({
            provisioningState: 'Ready',
            privateLinkServiceConnectionState: { status: 'Approved' },
        });
    });

    it('does not change the connection state on a single-server PATCH (tags only)', async () => {
        const { pecIds } = seed(PG, 'servers');
        const res = await call('PATCH', `${pecIds[0]}?api-version=2018-06-01`, { body: { tags: { a: 'b' } } });
        expect(res.status).toBe(200);
        expect(res.body.properties.privateLinkServiceConnectionState.status).toBe('Pending');
        expect(arm.operations).toHaveLength(0);
    });

    it('deletes a PEC through the same 202 pattern', async () => {
        const { pecIds, api } = seed(PG, 'servers');
        const del = await call('DELETE', `${pecIds[0]}?api-version=${api}`);
        expect(del.status).toBe(202);
        expect((arm.getPec(pecIds[0]!) as Json).properties.provisioningState).toBe('Dropping');
        expect((await call('GET', del.headers.get('location')!)).status).toBe(202);
        expect((await call('GET', del.headers.get('location')!)).status).toBe(204);
        expect(arm.getPec(pecIds[0]!)).toBeUndefined();
        expect((await call('GET', `${pecIds[0]}?api-version=${api}`)).status).toBe(404);
    });

    it('validates the PUT body', async () => {
        const single = seed(PG, 'servers');
        const flex = seed(PG, 'flexibleServers');
        const noDescription = { properties: { privateLinkServiceConnectionState: { status: 'Approved' } } };
        const bad = await call('PUT', `${single.pecIds[0]}?api-version=2018-06-01`, { body: noDescription });
        expect(bad.status).toBe(400);
        expect(bad.body.error.code).toBe('InvalidRequestContent');
        expect((await call('PUT', `${flex.pecIds[0]}?api-version=2025-08-01`, { body: noDescription })).status).toBe(
            202,
        );
        const weird = { properties: { privateLinkServiceConnectionState: { status: 'Maybe', description: 'x' } } };
        expect((await call('PUT', `${flex.pecIds[0]}?api-version=2025-08-01`, { body: weird })).status).toBe(400);
        const unknown = await call('PUT', `${single.serverId}/privateEndpointConnections/nope?api-version=2018-06-01`, {
            body: approve,
        });
        expect(unknown.status).toBe(404);
        // A private endpoint sent at all must name one: an empty privateEndpoint is refused.
        const emptyEndpoint = {
            properties: {
                privateEndpoint: {},
                privateLinkServiceConnectionState: { status: 'Approved', description: 'x' },
            },
        };
        const refused = await call('PUT', `${flex.pecIds[0]}?api-version=2025-08-01`, { body: emptyEndpoint });
        expect(refused.status).toBe(400);
        expect(refused.body.error.message).toMatch(/privateEndpoint\.id is required/);
        // Read-only: sent back as it is, ignored; another one, refused.
        const own = (arm.getPec(flex.pecIds[0]!) as { properties: { privateEndpoint: { id: string } } }).properties
            .privateEndpoint.id;
        const withEndpoint = (id: string) => ({
            properties: {
                privateEndpoint: { id },
                privateLinkServiceConnectionState: { status: 'Rejected', description: 'x' },
            },
        });
        const other = await call('PUT', `${single.pecIds[0]}?api-version=2018-06-01`, {
            body: withEndpoint(own.replace(/[^/]+$/, 'someone-else')),
        });
        expect(other.status).toBe(400);
        expect(other.body.error.message).toMatch(/read-only/);
        const single0 = (arm.getPec(single.pecIds[0]!) as { properties: { privateEndpoint: { id: string } } })
            .properties.privateEndpoint.id;
        const same = await call('PUT', `${single.pecIds[0]}?api-version=2018-06-01`, {
            body: withEndpoint(single0.toUpperCase()),
        });
        expect(same.status).toBe(202);
    });

    it('answers 404 in the ARM error shape for unknown servers and PECs', async () => {
        const { serverId } = seed(PG, 'flexibleServers');
        const pec = await call('GET', `${serverId}/privateEndpointConnections/missing?api-version=2025-08-01`);
        expect(pec.status).toBe(404);
        expect(pec.body).toEqual({
            error: {
                code: 'ResourceNotFound',
                message: `The Resource '${PG}/flexibleServers/Srv-flexibleServers/privateEndpointConnections/missing' under resource group 'rg-Data' was not found.`,
            },
        });
        const server = await call('GET', `${serverId}x?api-version=2025-08-01`);
        expect(server.status).toBe(404);
        expect(server.body.error.code).toBe('ResourceNotFound');
    });

    it('rejects a missing or unsupported api-version with 400', async () => {
        const { serverId } = seed(PG, 'servers');
        const missing = await call('GET', serverId);
        expect(missing.status).toBe(400);
        expect(missing.body.error.code).toBe('MissingApiVersionParameter');
        const flexVersionOnSingle = await call('GET', `${serverId}?api-version=2025-08-01`);
        expect(flexVersionOnSingle.status).toBe(400);
        expect(flexVersionOnSingle.body.error.code).toBe('InvalidApiVersionParameter');
        // The single-server SDKs read the server with 2017-12-01, but PECs only exist in 2018-06-01.
        expect((await call('GET', `${serverId}?api-version=2017-12-01`)).status).toBe(200);
        const pecs = await call('GET', `${serverId}/privateEndpointConnections?api-version=2017-12-01`);
        expect(pecs.status).toBe(400);
        const flex = seed(PG, 'flexibleServers');
        expect((await call('GET', `${flex.serverId}?api-version=2025-06-01-preview`)).status).toBe(200);
        expect((await call('GET', `${flex.serverId}?api-version=2018-06-01`)).status).toBe(400);
    });

    it('answers 401 without a bearer token or with the wrong audience', async () => {
        const { serverId, api } = seed(PG, 'servers');
        const none = await call('GET', `${serverId}?api-version=${api}`, { headers: { authorization: '' } });
        expect(none.status).toBe(401);
        expect(none.body.error.code).toBe('AuthenticationFailed');
        const wrong = await call('GET', `${serverId}?api-version=${api}`, {
            headers: { authorization: token('https://graph.microsoft.com') },
        });
        expect(wrong.status).toBe(401);
        expect(wrong.body.error.code).toBe('InvalidAuthenticationTokenAudience');
        const put = await call('PUT', `${serverId}/privateEndpointConnections/pe-0.x?api-version=${api}`, {
            body: approve,
            headers: { authorization: '' },
        });
        expect(put.status).toBe(401);
    });

    it('requires a token on polling requests too', async () => {
        const { pecIds, api } = seed(PG, 'flexibleServers');
        const put = await call('PUT', `${pecIds[0]}?api-version=${api}`, { body: approve });
        const poll = await call('GET', put.headers.get('azure-asyncoperation')!, { headers: { authorization: '' } });
        expect(poll.status).toBe(401);
    });

    it('injects faults: 429 with Retry-After, 500, slow, also on polling requests', async () => {
        const { serverId, pecIds, api } = seed(PG, 'flexibleServers');
        arm.faults.add({ kind: 'throttle', retryAfterSeconds: 7 }, { method: 'GET' });
        arm.faults.add({ kind: 'error', status: 500 }, { method: 'GET' });
        const throttled = await call('GET', `${serverId}?api-version=${api}`);
        expect(throttled.status).toBe(429);
        expect(throttled.headers.get('retry-after')).toBe('7');
        expect(throttled.body.error.code).toBe('TooManyRequests');
        const failed = await call('GET', `${serverId}?api-version=${api}`);
        expect(failed.status).toBe(500);
        expect(failed.body.error.code).toBe('InternalServerError');
        expect((await call('GET', `${serverId}?api-version=${api}`)).status).toBe(200);

        arm.faults.add({ kind: 'slow', delayMs: 300 });
        const started = Date.now();
        expect((await call('GET', `${serverId}?api-version=${api}`)).status).toBe(200);
        expect(Date.now() - started).toBeGreaterThanOrEqual(250);

        const put = await call('PUT', `${pecIds[0]}?api-version=${api}`, { body: approve });
        arm.faults.add(
            { kind: 'error', status: 503, code: 'ServiceUnavailable' },
            { pathIncludes: 'azureAsyncOperation' },
        );
        const poll = await call('GET', put.headers.get('azure-asyncoperation')!);
        expect(poll.status).toBe(503);
        expect(poll.body.error.code).toBe('ServiceUnavailable');
        expect(arm.requests).toHaveLength(6);
    });

    it('keeps a stuck LRO InProgress, and can fail one', async () => {
        const { pecIds, api } = seed(PG, 'flexibleServers');
        arm.stickLro(true);
        const put = await call('PUT', `${pecIds[0]}?api-version=${api}`, { body: approve });
        for (let i = 0; i < 5; i += 1) {
            expect((await call('GET', put.headers.get('azure-asyncoperation')!)).body.status).toBe('InProgress');
        }
        expect((await call('GET', `${pecIds[0]}?api-version=${api}`)).body.properties.provisioningState).toBe(
            'Updating',
        );
        arm.stickLro(false);
        arm.failLro(true);
        // Polls made while stuck do not count: asyncPolls (1) more InProgress answers come first.
        expect((await call('GET', put.headers.get('azure-asyncoperation')!)).body.status).toBe('InProgress');
        const done = await call('GET', put.headers.get('azure-asyncoperation')!);
        expect(done.body).toMatchObject({ status: 'Failed', error: { code: 'InternalServerError' } });
        expect((arm.getPec(pecIds[0]!) as Json).properties).toMatchObject({
            provisioningState: 'Failed',
            privateLinkServiceConnectionState: { status: 'Pending' },
        });
    });

    it('can answer a PUT with 200, a non-final state and no async headers (the SDK polling bug)', async () => {
        const { pecIds, api } = seed(PG, 'flexibleServers');
        arm.putWithoutAsyncHeaders(true);
        const put = await call('PUT', `${pecIds[0]}?api-version=${api}`, { body: approve });
        expect(put.status).toBe(200);
        expect(put.headers.get('azure-asyncoperation')).toBeNull();
        expect(put.headers.get('location')).toBeNull();
        expect(put.body.properties.provisioningState).toBe('Updating');
        for (let i = 0; i < 3; i += 1) {
            const get = await call('GET', `${pecIds[0]}?api-version=${api}`);
            expect(get.body.properties.provisioningState).toBe('Updating');
        }
    });

    it('looks up ids case-insensitively and keeps the original casing in bodies', async () => {
        const { serverId, pecIds, api } = seed(PG, 'flexibleServers');
        const upper = await call('GET', `${pecIds[0]!.toUpperCase()}?api-version=${api}`);
        expect(upper.status).toBe(200);
        expect(upper.body.id).toBe(pecIds[0]);
        const lower = await call('GET', `${serverId.toLowerCase()}?api-version=${api}`);
        expect(lower.body.name).toBe('Srv-flexibleServers');
        expect(arm.getPec(pecIds[0]!.toLowerCase())).toMatchObject({ id: pecIds[0] });
        arm.setPecStatus(pecIds[0]!.toUpperCase(), 'Rejected', 'clicked in the portal');
        expect((arm.getPec(pecIds[0]!) as Json).properties.privateLinkServiceConnectionState.status).toBe('Rejected');
        arm.removePec(pecIds[0]!);
        expect(arm.getPec(pecIds[0]!)).toBeUndefined();
    });
});

describe('ArmEmulator read throttling (a token bucket per subscription, off by default)', () => {
    const auth = { authorization: token(AUDIENCE) };
    const list = (arm: ArmEmulator, sub: string) =>
        fetch(`${arm.url}/subscriptions/${sub}/providers/${PG}/flexibleServers?api-version=2025-08-01`, {
            headers: auth,
        });

    it('answers reads from the bucket, then 429 SubscriptionRequestsThrottled with Retry-After, per subscription', async () => {
        const arm = await ArmEmulator.start({ readThrottle: { bucket: 3, refillPerSecond: 1 } });
        try {
            const remaining: (string | null)[] = [];
            for (let i = 0; i < 3; i++) {
                const res = await list(arm, SUB);
                expect(res.status).toBe(200);
                remaining.push(res.headers.get('x-ms-ratelimit-remaining-subscription-reads'));
            }
            expect(remaining).toEqual(['2', '1', '0']);

            const throttled = await list(arm, SUB);
            expect(throttled.status).toBe(429);
            expect(Number(throttled.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
            const body = (await throttled.json()) as Json;
            expect(body.error.code).toBe('SubscriptionRequestsThrottled');
            expect(body.error.message).toContain(`subscription '${SUB}'`);
            // Another subscription has its own bucket.
            expect((await list(arm, PE_SUB)).status).toBe(200);
            // Back before Retry-After: not processed, and counted as a client that did not wait.
            expect((await list(arm, SUB)).status).toBe(429);
            expect(arm.throttle).toMatchObject({ throttled: 2, early: 1 });

            await new Promise((resolve) => setTimeout(resolve, Number(throttled.headers.get('retry-after')) * 1000));
            expect((await list(arm, SUB)).status).toBe(200);
            expect(arm.throttle.reads.get(SUB)).toBe(4);
        } finally {
            await arm.close();
        }
    });

    it('does not throttle without the option', async () => {
        const arm = await ArmEmulator.start();
        try {
            // More reads at once than a real bucket holds (250).
            const answers = await Promise.all(Array.from({ length: 260 }, () => list(arm, SUB)));
            expect(answers.every((r) => r.status === 200)).toBe(true);
            expect(answers[0]?.headers.get('x-ms-ratelimit-remaining-subscription-reads')).toBeNull();
            expect(arm.throttle.throttled).toBe(0);
        } finally {
            await arm.close();
        }
    });
});

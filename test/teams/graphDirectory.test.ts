import type { AccessToken, TokenCredential } from '@azure/core-auth';
import { randomUUID } from 'node:crypto';
import { ConfigError, PermanentError, TransientError, ValidationError } from '../../src/domain/errors';
import { InMemoryDirectory } from '../../src/teams/directory';
import { GraphDirectory, type GraphDirectoryOptions } from '../../src/teams/graphDirectory';
import { GraphEmulator } from '../emulators/graph';

/**
 * The real GraphDirectory (graph-client 3.0.7 over the Azure core HTTP client) against the https Graph emulator. The credential is a
 * stand-in minting emulator-shaped tokens for the scope asked, so the emulator can check the token's audience.
 */

const scopesAsked: string[] = [];

function credentialFor(audience?: string): TokenCredential {
    return {
        getToken: async (scopes): Promise<AccessToken> => {
            const scope = Array.isArray(scopes) ? scopes[0]! : scopes;
            scopesAsked.push(scope);
            const aud = audience ?? scope.replace(/\/\.default$/, '');
            const payload = Buffer.from(JSON.stringify({ aud })).toString('base64url');
            return { token: `e30.${payload}.x`, expiresOnTimestamp: Date.now() + 3_600_000 };
        },
    };
}

const alice = '11111111-1111-4111-8111-111111111111';
const bob = '22222222-2222-4222-8222-222222222222';
const carol = '33333333-3333-4333-8333-333333333333';
const approvers = 'aaaaaaaa-0000-4000-8000-000000000001';
const dbaTeam = 'aaaaaaaa-0000-4000-8000-000000000002';
const platform = 'aaaaaaaa-0000-4000-8000-000000000003';
const unrelated = 'aaaaaaaa-0000-4000-8000-000000000004';

describe('GraphDirectory against the Graph emulator', () => {
    let graph: GraphEmulator;

    const directory = (options: Partial<GraphDirectoryOptions> = {}) =>
        new GraphDirectory({ endpoint: graph.url, credential: credentialFor(), ...options });

    beforeAll(async () => {
        graph = await GraphEmulator.start();
        graph.expectedAudience = graph.url;
        graph
            .addUser({
                id: alice,
                displayName: 'Alice',
                userPrincipalName: 'alice@contoso.example',
                mail: 'a@contoso.example',
            })
            .addUser({ id: bob, displayName: 'Bob', userPrincipalName: 'bob@contoso.example' })
            .addUser({ id: carol, displayName: 'Carol', userPrincipalName: 'carol@contoso.example' })
            // Stored upper-case: Graph's casing need not be the caller's.
            .addGroup(approvers.toUpperCase(), { members: [alice, dbaTeam] })
            .addGroup(dbaTeam, { members: [platform] })
            .addGroup(platform, { members: [bob] })
            .addGroup(unrelated, { members: [carol] });
    });

    afterAll(() => graph.close());

    beforeEach(() => {
        graph.reset();
        scopesAsked.length = 0;
    });

    it('finds a direct member, comparing group ids case-insensitively', async () => {
        await expect(directory().isMemberOfAny(alice, [approvers])).resolves.toBe(true);
        expect(graph.requests).toHaveLength(1);
        expect(graph.requests[0]).toMatchObject({
            method: 'POST',
            path: `/v1.0/users/${alice}/checkMemberGroups`,
            body: { groupIds: [approvers] },
        });
    });

    it('finds a member through nested groups (transitive)', async () => {
        await expect(directory().isMemberOfAny(bob, [approvers])).resolves.toBe(true);
        await expect(directory().isMemberOfAny(bob.toUpperCase(), [unrelated, dbaTeam.toUpperCase()])).resolves.toBe(
            true,
        );
    });

    it('says no for a user outside the groups', async () => {
        await expect(directory().isMemberOfAny(carol, [approvers, dbaTeam])).resolves.toBe(false);
        expect(graph.requests).toHaveLength(1);
    });

    it('says no for a user Graph does not know (404), and getUser gives undefined', async () => {
        const ghost = randomUUID();
        const dir = directory();
        await expect(dir.isMemberOfAny(ghost, [approvers])).resolves.toBe(false);
        await expect(dir.getUser(ghost)).resolves.toBeUndefined();
        expect(graph.requests.map((r) => r.path)).toEqual([
            `/v1.0/users/${ghost}/checkMemberGroups`,
            `/v1.0/users/${ghost}`,
        ]);
    });

    it('never calls Graph for an id that is not a GUID', async () => {
        const dir = directory();
        for (const id of ['', 'alice@contoso.example', '../me', `${alice}/memberOf`, 'not-a-guid']) {
            await expect(dir.isMemberOfAny(id, [approvers])).resolves.toBe(false);
            await expect(dir.getUser(id)).resolves.toBeUndefined();
        }
        await expect(dir.isMemberOfAny(alice, [])).resolves.toBe(false);
        expect(graph.requests).toHaveLength(0);
    });

    it('refuses a group id that is not a GUID (a caller bug), without calling Graph', async () => {
        await expect(directory().isMemberOfAny(alice, [approvers, 'approvers'])).rejects.toBeInstanceOf(
            ValidationError,
        );
        expect(graph.requests).toHaveLength(0);
    });

    it('asks about more than 20 groups in chunks of 20, stopping at the first hit', async () => {
        // All sort before the approvers group, which the directory therefore asks about last (in the third chunk).
        const many = Array.from({ length: 45 }, () => `0${randomUUID().slice(1)}`);
        const dir = directory();
        await expect(dir.isMemberOfAny(alice, [...many, approvers])).resolves.toBe(true);
        const sizes = graph.requests.map((r) => (r.body as { groupIds: string[] }).groupIds.length);
        expect(sizes.every((n) => n <= 20)).toBe(true);
        expect(sizes.reduce((a, b) => a + b, 0)).toBe(46);
        expect(sizes).toEqual([20, 20, 6]);

        graph.reset();
        await expect(dir.isMemberOfAny(carol, [...many, approvers])).resolves.toBe(false);
        expect(graph.requests).toHaveLength(3);

        // A hit in the first chunk ends the search: the ids are sorted, so the smallest one is asked first.
        graph.reset();
        const first = '00000000-0000-4000-8000-000000000000';
        graph.addGroup(first, { members: [carol] });
        await expect(dir.isMemberOfAny(carol, [...many, first])).resolves.toBe(true);
        expect(graph.requests).toHaveLength(1);
    });

    it('answers repeated and concurrent checks from one call', async () => {
        const dir = directory();
        const answers = await Promise.all([
            dir.isMemberOfAny(alice, [approvers, dbaTeam]),
            dir.isMemberOfAny(alice, [dbaTeam, approvers]),
            dir.isMemberOfAny(alice.toUpperCase(), [approvers.toUpperCase(), dbaTeam]),
        ]);
        expect(answers).toEqual([true, true, true]);
        await expect(dir.isMemberOfAny(alice, [approvers, dbaTeam])).resolves.toBe(true);
        expect(graph.requests).toHaveLength(1);

        await dir.getUser(alice);
        await dir.getUser(alice);
        expect(graph.requestsFor(alice).filter((r) => r.method === 'GET')).toHaveLength(1);
    });

    it('forgets a "no" after a minute but keeps a "yes" for five', async () => {
        let now = new Date('2026-11-21T10:00:00Z');
        const dir = directory({ now: () => now });
        const advance = (ms: number) => (now = new Date(now.getTime() + ms));
        const dave = randomUUID();
        graph.addUser({ id: dave, userPrincipalName: 'dave@contoso.example' });

        await expect(dir.isMemberOfAny(alice, [approvers])).resolves.toBe(true);
        await expect(dir.isMemberOfAny(dave, [approvers])).resolves.toBe(false);
        expect(graph.requests).toHaveLength(2);

        // Dave is made an approver; within the minute the cached "no" still stands.
        graph.addGroup(approvers, { members: [dave] });
        advance(59_000);
        await expect(dir.isMemberOfAny(dave, [approvers])).resolves.toBe(false);
        expect(graph.requests).toHaveLength(2);

        advance(2_000);
        await expect(dir.isMemberOfAny(dave, [approvers])).resolves.toBe(true);
        await expect(dir.isMemberOfAny(alice, [approvers])).resolves.toBe(true);
        expect(graph.requestsFor(dave)).toHaveLength(2);
        expect(graph.requestsFor(alice)).toHaveLength(1);

        advance(4 * 60_000);
        await expect(dir.isMemberOfAny(alice, [approvers])).resolves.toBe(true);
        expect(graph.requestsFor(alice)).toHaveLength(2);
    });

    it('retries a 429 (Retry-After: 0) and succeeds', async () => {
        graph.faults.add({ kind: 'throttle', retryAfterSeconds: 0 }, { pathIncludes: '/checkMemberGroups' });
        await expect(directory().isMemberOfAny(alice, [approvers])).resolves.toBe(true);
        expect(graph.requests.map((r) => r.retryAttempt)).toEqual([undefined, '1']);
    });

    it('gives a TransientError for a 503 that persists, after the retries, and caches nothing', async () => {
        graph.faults.add({ kind: 'error', status: 503 }, { times: 10 });
        const dir = directory();
        const err = await dir.isMemberOfAny(alice, [approvers]).catch((e: unknown) => e);
        expect(err).toBeInstanceOf(TransientError);
        expect((err as Error).message).toMatch(/503/);
        expect(graph.requests).toHaveLength(3); // the call and 2 retries (the default)

        graph.reset();
        await expect(dir.isMemberOfAny(alice, [approvers])).resolves.toBe(true);
        expect(graph.requests).toHaveLength(1);
    });

    it('does not sleep through a long Retry-After: fails at once with a TransientError', async () => {
        graph.faults.add({ kind: 'throttle', retryAfterSeconds: 120 });
        const started = Date.now();
        await expect(directory().isMemberOfAny(alice, [approvers])).rejects.toBeInstanceOf(TransientError);
        expect(Date.now() - started).toBeLessThan(5_000);
        expect(graph.requests).toHaveLength(1);
    });

    it('gives a TransientError when the connection drops (graph-client reports statusCode -1)', async () => {
        graph.faults.add({ kind: 'drop' });
        const err = await directory()
            .getUser(alice)
            .catch((e: unknown) => e);
        expect(err).toBeInstanceOf(TransientError);
        expect((err as Error).message).toMatch(/no answer.*socket hang up/);
    });

    it('gives a TransientError when the deadline passes', async () => {
        graph.faults.add({ kind: 'slow', delayMs: 1_000 });
        const err = await directory({ timeoutMs: 200 })
            .isMemberOfAny(alice, [approvers])
            .catch((e: unknown) => e);
        expect(err).toBeInstanceOf(TransientError);
        expect((err as Error).message).toMatch(/timeout/i);
    });

    it('gives a PermanentError naming the missing permission on 403, and caches nothing', async () => {
        const dir = directory();
        graph.faults.add({ kind: 'error', status: 403, code: 'Authorization_RequestDenied' });
        const err = await dir.isMemberOfAny(alice, [approvers]).catch((e: unknown) => e);
        expect(err).toBeInstanceOf(PermanentError);
        expect((err as PermanentError).retryable).toBe(false);
        expect((err as Error).message).toMatch(/GroupMember\.Read\.All/);
        expect((err as Error).message).toMatch(/403 Authorization_RequestDenied/);
        expect(graph.requests).toHaveLength(1); // a 403 is not retried

        graph.faults.add({ kind: 'error', status: 403, code: 'Authorization_RequestDenied' });
        await expect(dir.getUser(alice)).rejects.toThrow(/User\.Read\.All/);

        await expect(dir.isMemberOfAny(alice, [approvers])).resolves.toBe(true);
        await expect(dir.getUser(alice)).resolves.toMatchObject({ userPrincipalName: 'alice@contoso.example' });
    });

    it('gives a PermanentError on 401 (a token for another audience)', async () => {
        const dir = directory({ credential: credentialFor('https://graph.microsoft.com') });
        await expect(dir.isMemberOfAny(alice, [approvers])).rejects.toThrow(PermanentError);
        await expect(dir.getUser(alice)).rejects.toThrow(/401 InvalidAuthenticationToken.*User\.Read\.All/);
    });

    it('getUser returns the names, leaving out what Graph sends as null', async () => {
        const dir = directory();
        await expect(dir.getUser(alice.toUpperCase())).resolves.toEqual({
            objectId: alice,
            displayName: 'Alice',
            userPrincipalName: 'alice@contoso.example',
            mail: 'a@contoso.example',
        });
        await expect(dir.getUser(bob)).resolves.toEqual({
            objectId: bob,
            displayName: 'Bob',
            userPrincipalName: 'bob@contoso.example',
        });
        const get = graph.requests.find((r) => r.method === 'GET');
        expect(get?.path).toBe(`/v1.0/users/${alice}`);
        expect(get?.query.$select?.split(',').sort()).toEqual(['displayName', 'id', 'mail', 'userPrincipalName']);

        // The answer is a copy: changing it does not change what the cache gives the next caller.
        const first = await dir.getUser(bob);
        first!.displayName = 'Mallory';
        await expect(dir.getUser(bob)).resolves.toMatchObject({ displayName: 'Bob' });
    });

    it('sends the bearer token for the configured endpoint (the emulator refuses a request without one)', async () => {
        await directory().isMemberOfAny(alice, [approvers]);
        expect(scopesAsked).toEqual([`${graph.url}/.default`]);
        const auth = graph.requests[0]?.authorization ?? '';
        expect(auth).toMatch(/^Bearer e30\./);
        const payload = JSON.parse(Buffer.from(auth.split('.')[1]!, 'base64url').toString('utf8')) as { aud: string };
        expect(payload.aud).toBe(graph.url);

        const bare = await fetch(`${graph.url}/v1.0/users/${alice}/checkMemberGroups`, {
            method: 'POST',
            headers: { 'content-type': 'application/json' },
            body: JSON.stringify({ groupIds: [approvers] }),
        });
        expect(bare.status).toBe(401);
        await expect(bare.json()).resolves.toMatchObject({ error: { code: 'InvalidAuthenticationToken' } });
    });

    describe('listApprovers', () => {
        // Groups of their own: the tests above add members to theirs. Bob is in root through two levels of nesting,
        // and in other directly.
        const root = 'aaaaaaaa-1111-4000-8000-000000000001';
        const mid = 'aaaaaaaa-1111-4000-8000-000000000002';
        const leaf = 'aaaaaaaa-1111-4000-8000-000000000003';
        const other = 'aaaaaaaa-1111-4000-8000-000000000004';
        const membersPath = (groupId: string) => `/v1.0/groups/${groupId}/transitiveMembers/microsoft.graph.user`;
        const ids = (users: { objectId: string }[]) => users.map((u) => u.objectId);

        // Five users, two of them through a nested group, one without a display name, plus an object that is not a
        // user (a service principal, say) that the cast must leave out.
        const big = 'bbbbbbbb-0000-4000-8000-000000000001';
        const bigNested = 'bbbbbbbb-0000-4000-8000-000000000002';
        const people = [
            { id: 'cccccccc-0000-4000-8000-000000000005', displayName: 'Eve' },
            { id: 'cccccccc-0000-4000-8000-000000000004', displayName: 'dan' },
            { id: 'cccccccc-0000-4000-8000-000000000003' },
            { id: 'cccccccc-0000-4000-8000-000000000002', displayName: 'Cy' },
            { id: 'cccccccc-0000-4000-8000-000000000001', displayName: 'Ann' },
        ];
        const servicePrincipal = 'dddddddd-0000-4000-8000-000000000001';

        beforeAll(() => {
            for (const p of people) {
                graph.addUser({ ...p, userPrincipalName: `${p.id.slice(-1)}@contoso.example` });
            }
            graph
                .addGroup(root.toUpperCase(), { members: [alice, mid] })
                .addGroup(mid, { members: [leaf] })
                .addGroup(leaf, { members: [bob] })
                .addGroup(other, { members: [carol, bob] })
                .addGroup(big, { members: [people[0]!.id, people[1]!.id, servicePrincipal, bigNested] })
                .addGroup(bigNested, { members: [people[2]!.id, people[3]!.id, people[4]!.id, people[0]!.id] });
        });

        it('lists the users of nested groups, asking only for users and the names it needs', async () => {
            await expect(directory().listApprovers([root], 10)).resolves.toEqual([
                { objectId: alice, displayName: 'Alice', userPrincipalName: 'alice@contoso.example' },
                { objectId: bob, displayName: 'Bob', userPrincipalName: 'bob@contoso.example' },
            ]);
            expect(graph.requests).toHaveLength(1);
            const request = graph.requests[0]!;
            expect(request).toMatchObject({ method: 'GET', path: membersPath(root) });
            expect(request.query.$select?.split(',').sort()).toEqual(['displayName', 'id', 'userPrincipalName']);
            expect(request.query.$top).toBe('999');
            expect(request.authorization).toMatch(/^Bearer /);
            // An OData cast on transitive members is an advanced query.
            expect(request).toMatchObject({ consistencyLevel: 'eventual', query: { $count: 'true' } });
        });

        it('deduplicates users across groups, and sorts by display name, then id', async () => {
            // Bob is in all three: root (through two levels of nesting), mid (through one) and other (directly).
            const users = await directory().listApprovers([other, mid.toUpperCase(), root], 10);
            expect(ids(users)).toEqual([alice, bob, carol]);
            expect(graph.requests.map((r) => r.path).sort()).toEqual(
                [membersPath(root), membersPath(mid), membersPath(other)].sort(),
            );
        });

        it('follows @odata.nextLink through every page, keeping the $skiptoken as Graph sent it', async () => {
            graph.pageSize = 2;
            const users = await directory().listApprovers([big], 50);
            // Case-insensitive by name ("dan" between "Cy" and "Eve"); the user without a name comes last.
            expect(users.map((u) => u.displayName ?? u.objectId)).toEqual(['Ann', 'Cy', 'dan', 'Eve', people[2]!.id]);
            expect(graph.requests).toHaveLength(3);
            expect(graph.requests.map((r) => r.path)).toEqual(Array(3).fill(membersPath(big)));
            expect(graph.requests[0]!.query.$skiptoken).toBeUndefined();
            const tokens = graph.requests.slice(1).map((r) => r.query.$skiptoken);
            // These tokens end in base64 padding, sent as %3D: a client that decoded or re-encoded the link would have
            // sent a token the emulator refuses.
            expect(tokens.every((t) => t?.endsWith('='))).toBe(true);
            expect(new Set(tokens).size).toBe(2);
            for (const r of graph.requests) {
                expect(r.query.$top).toBe('999');
                expect(r.query.$select?.split(',').sort()).toEqual(['displayName', 'id', 'userPrincipalName']);
                expect(r.authorization).toMatch(/^Bearer /);
                // The nextLink's page is a new request: the header must be sent again, and $count stays in the link.
                expect(r).toMatchObject({ consistencyLevel: 'eventual', query: { $count: 'true' } });
            }
        });

        it('stops paging once it has the limit, and returns at most that many, sorted', async () => {
            graph.pageSize = 2;
            const users = await directory().listApprovers([big, root], 3);
            expect(users).toHaveLength(3);
            // Groups are asked in sorted order (root before big): Alice and Bob, then the first of big's users.
            expect(graph.requests.map((r) => r.path)).toEqual([membersPath(root), membersPath(big)]);
            expect(users.map((u) => u.displayName)).toEqual(['Alice', 'Bob', 'Eve']);

            graph.reset();
            graph.pageSize = 2;
            await expect(directory().listApprovers([big], 2)).resolves.toHaveLength(2);
            expect(graph.requests).toHaveLength(1);
        });

        it('answers a repeat from the cache, whatever the order and casing of the group ids, and hands out copies', async () => {
            const dir = directory();
            const first = await dir.listApprovers([root, mid], 10);
            await expect(dir.listApprovers([mid.toUpperCase(), root, root], 10)).resolves.toEqual(first);
            expect(graph.requests).toHaveLength(2); // one per group, once

            first[0]!.displayName = 'Mallory';
            first.pop();
            await expect(dir.listApprovers([root, mid], 10)).resolves.toMatchObject([
                { displayName: 'Alice' },
                { displayName: 'Bob' },
            ]);
            expect(graph.requests).toHaveLength(2);

            // Another limit is another question.
            await dir.listApprovers([root, mid], 1);
            expect(graph.requests).toHaveLength(3);
        });

        it('keeps a list for the cache time, then asks again', async () => {
            let now = new Date('2026-11-21T10:00:00Z');
            const dir = directory({ now: () => now, cacheTtlMs: 60_000 });
            await dir.listApprovers([root], 10);
            now = new Date(now.getTime() + 59_000);
            await dir.listApprovers([root], 10);
            expect(graph.requests).toHaveLength(1);
            now = new Date(now.getTime() + 2_000);
            await dir.listApprovers([root], 10);
            expect(graph.requests).toHaveLength(2);
        });

        it('gives a PermanentError for a group Graph does not know (404), without retrying', async () => {
            const ghost = randomUUID();
            const err = await directory()
                .listApprovers([ghost], 10)
                .catch((e: unknown) => e);
            expect(err).toBeInstanceOf(PermanentError);
            expect((err as PermanentError).retryable).toBe(false);
            expect((err as Error).message).toMatch(/404 Request_ResourceNotFound/);
            expect((err as Error).message).toContain(ghost);
            expect(graph.requests).toHaveLength(1);
        });

        it('retries a 503 (Retry-After: 0) and succeeds, on a later page too', async () => {
            graph.pageSize = 2;
            graph.faults.add({ kind: 'error', status: 503 }, { pathIncludes: '/transitiveMembers' });
            await expect(directory().listApprovers([root], 10)).resolves.toHaveLength(2);
            expect(graph.requests.map((r) => r.retryAttempt)).toEqual([undefined, '1']);

            graph.reset();
            graph.pageSize = 2;
            // Let the first page through (a slow fault of 0 ms only takes a turn), then fail the second once.
            graph.faults.add({ kind: 'slow', delayMs: 0 }, { pathIncludes: '/transitiveMembers' });
            graph.faults.add({ kind: 'error', status: 503 }, { pathIncludes: '/transitiveMembers' });
            await expect(directory().listApprovers([big], 50)).resolves.toHaveLength(5);
            expect(graph.requests.map((r) => [r.query.$skiptoken !== undefined, r.retryAttempt])).toEqual([
                [false, undefined],
                [true, undefined],
                [true, '1'],
                [true, undefined],
            ]);
        });

        it('gives a TransientError for a 503 that persists, and caches nothing', async () => {
            graph.faults.add({ kind: 'error', status: 503 }, { times: 10 });
            const dir = directory();
            const err = await dir.listApprovers([root], 10).catch((e: unknown) => e);
            expect(err).toBeInstanceOf(TransientError);
            expect((err as Error).message).toMatch(/503/);
            expect(graph.requests).toHaveLength(3);

            graph.reset();
            await expect(dir.listApprovers([root], 10)).resolves.toHaveLength(2);
            expect(graph.requests).toHaveLength(1);
        });

        it('gives a PermanentError naming GroupMember.Read.All on 403', async () => {
            graph.faults.add({ kind: 'error', status: 403, code: 'Authorization_RequestDenied' });
            await expect(directory().listApprovers([root], 10)).rejects.toThrow(
                /403 Authorization_RequestDenied.*GroupMember\.Read\.All/,
            );
        });

        it('refuses a group id that is not a GUID, or a bad limit, without calling Graph', async () => {
            const dir = directory();
            await expect(dir.listApprovers([root, 'approvers'], 10)).rejects.toBeInstanceOf(ValidationError);
            await expect(dir.listApprovers([`${root}/owners`], 10)).rejects.toBeInstanceOf(ValidationError);
            for (const limit of [-1, 1.5, Number.NaN, Number.POSITIVE_INFINITY]) {
                await expect(dir.listApprovers([root], limit)).rejects.toBeInstanceOf(ValidationError);
            }
            await expect(dir.listApprovers([], 10)).resolves.toEqual([]);
            await expect(dir.listApprovers([root], 0)).resolves.toEqual([]);
            expect(graph.requests).toHaveLength(0);
        });

        it('the emulator route needs a token, honours $select, answers only users and pages by absolute links', async () => {
            const bare = await fetch(`${graph.url}${membersPath(big)}`);
            expect(bare.status).toBe(401);

            const token = `e30.${Buffer.from(JSON.stringify({ aud: graph.url })).toString('base64url')}.x`;
            const get = async (url: string, consistencyLevel = 'eventual') => {
                const response = await fetch(url, {
                    headers: {
                        authorization: `Bearer ${token}`,
                        ...(consistencyLevel ? { consistencylevel: consistencyLevel } : {}),
                    },
                });
                return { status: response.status, body: (await response.json()) as Record<string, unknown> };
            };
            // An advanced query: refused without the header, or without $count=true.
            const unsupported = { status: 400, body: { error: { code: 'Request_UnsupportedQuery' } } };
            expect(await get(`${graph.url}${membersPath(big)}?$select=id&$count=true`, '')).toMatchObject(unsupported);
            expect(await get(`${graph.url}${membersPath(big)}?$select=id`)).toMatchObject(unsupported);
            const all = await get(`${graph.url}${membersPath(big)}?$select=id&$count=true`);
            expect(all.status).toBe(200);
            const value = all.body.value as Record<string, unknown>[];
            expect(value).toHaveLength(5);
            expect(value.every((u) => Object.keys(u).sort().join() === '@odata.type,id')).toBe(true);
            expect(value.map((u) => u.id)).not.toContain(servicePrincipal);
            expect(all.body['@odata.nextLink']).toBeUndefined();
            expect(all.body['@odata.count']).toBe(5);

            graph.pageSize = 2;
            const first = await get(`${graph.url}${membersPath(big)}?$select=id,displayName&$count=true`);
            const next = String(first.body['@odata.nextLink']);
            expect(next.startsWith(`${graph.url}${membersPath(big)}?`)).toBe(true);
            expect(next).toMatch(/[?&]\$skiptoken=[^&]+%3D(&|$)/);
            const second = await get(next);
            expect((second.body.value as unknown[]).length).toBe(2);
            expect(Object.keys((second.body.value as Record<string, unknown>[])[0]!).sort()).toEqual([
                '@odata.type',
                'displayName',
                'id',
            ]);

            const tampered = await get(next.replace(/\$skiptoken=[^&]+/, '$skiptoken=bm9wZQ%3D%3D'));
            expect(tampered.status).toBe(400);
            const unknownGroup = await get(`${graph.url}${membersPath(randomUUID())}?$count=true`);
            expect(unknownGroup).toMatchObject({ status: 404, body: { error: { code: 'Request_ResourceNotFound' } } });
        });
    });

    it('refuses an http endpoint, where graph-client would silently drop the token', () => {
        expect(() => new GraphDirectory({ endpoint: 'http://127.0.0.1:1', credential: credentialFor() })).toThrow(
            ConfigError,
        );
        expect(() => new GraphDirectory({ endpoint: 'graph.microsoft.com', credential: credentialFor() })).toThrow(
            ConfigError,
        );
    });
});

describe('InMemoryDirectory', () => {
    it('answers membership and users case-insensitively, and counts calls', async () => {
        const dir = new InMemoryDirectory({
            users: [{ objectId: alice, userPrincipalName: 'alice@contoso.example' }],
            memberships: { [alice]: [approvers] },
        });
        dir.addUser({ objectId: bob, displayName: 'Bob' }).addMember(bob.toUpperCase(), dbaTeam);

        await expect(dir.isMemberOfAny(alice.toUpperCase(), [unrelated, approvers.toUpperCase()])).resolves.toBe(true);
        await expect(dir.isMemberOfAny(bob, [approvers])).resolves.toBe(false);
        await expect(dir.isMemberOfAny(bob, [dbaTeam])).resolves.toBe(true);
        await expect(dir.isMemberOfAny(carol, [approvers])).resolves.toBe(false);
        await expect(dir.getUser(alice)).resolves.toEqual({
            objectId: alice,
            userPrincipalName: 'alice@contoso.example',
        });
        await expect(dir.getUser(carol)).resolves.toBeUndefined();
        expect(dir.calls).toEqual({ isMemberOfAny: 4, getUser: 2, listApprovers: 0 });

        dir.removeMember(bob, dbaTeam);
        await expect(dir.isMemberOfAny(bob, [dbaTeam])).resolves.toBe(false);

        dir.failWith(new TransientError('Graph is down'));
        await expect(dir.isMemberOfAny(alice, [approvers])).rejects.toBeInstanceOf(TransientError);
        dir.failWith(undefined);
        await expect(dir.isMemberOfAny(alice, [approvers])).resolves.toBe(true);
    });
});

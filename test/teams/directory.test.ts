import { TransientError, ValidationError } from '../../src/domain/errors';
import { compareDirectoryUsers, InMemoryDirectory, type DirectoryUser } from '../../src/teams/directory';

const alice = '11111111-1111-4111-8111-111111111111';
const bob = '22222222-2222-4222-8222-222222222222';
const carol = '33333333-3333-4333-8333-333333333333';
const nameless = '44444444-4444-4444-8444-444444444444';
const approvers = 'aaaaaaaa-0000-4000-8000-000000000001';
const dbaTeam = 'aaaaaaaa-0000-4000-8000-000000000002';
const unrelated = 'aaaaaaaa-0000-4000-8000-000000000003';

describe('InMemoryDirectory.listApprovers', () => {
    const directory = () =>
        new InMemoryDirectory({
            users: [
                { objectId: alice, displayName: 'Alice', userPrincipalName: 'alice@contoso.example' },
                { objectId: bob, displayName: 'bob' },
                { objectId: carol, displayName: 'Carol' },
            ],
            memberships: {
                [bob]: [approvers, dbaTeam],
                [alice.toUpperCase()]: [approvers.toUpperCase()],
                [nameless]: [dbaTeam],
                [carol]: [unrelated],
            },
        });

    it('lists the members of any of the groups once each, sorted by name then id, nameless last', async () => {
        const dir = directory();
        await expect(dir.listApprovers([approvers, dbaTeam.toUpperCase()], 10)).resolves.toEqual([
            { objectId: alice, displayName: 'Alice', userPrincipalName: 'alice@contoso.example' },
            { objectId: bob, displayName: 'bob' },
            // A member without a user entry, as Entra allows: no names, but still someone to mention.
            { objectId: nameless },
        ]);
        await expect(dir.listApprovers([unrelated], 10)).resolves.toEqual([{ objectId: carol, displayName: 'Carol' }]);
        await expect(dir.listApprovers([], 10)).resolves.toEqual([]);
        expect(dir.calls.listApprovers).toBe(3);
    });

    it('honours the limit after sorting, so the double always picks the same users', async () => {
        const dir = directory();
        await expect(dir.listApprovers([approvers, dbaTeam], 2)).resolves.toMatchObject([
            { objectId: alice },
            { objectId: bob },
        ]);
        await expect(dir.listApprovers([approvers, dbaTeam], 0)).resolves.toEqual([]);
        await expect(dir.listApprovers([approvers], -1)).rejects.toBeInstanceOf(ValidationError);
        await expect(dir.listApprovers([approvers], 2.5)).rejects.toBeInstanceOf(ValidationError);
    });

    it('follows membership changes, hands out copies, and fails while told to', async () => {
        const dir = directory();
        const first = await dir.listApprovers([approvers], 10);
        first[0]!.displayName = 'Mallory';
        dir.removeMember(bob, approvers);
        await expect(dir.listApprovers([approvers], 10)).resolves.toEqual([
            { objectId: alice, displayName: 'Alice', userPrincipalName: 'alice@contoso.example' },
        ]);

        dir.failWith(new TransientError('Graph is down'));
        await expect(dir.listApprovers([approvers], 10)).rejects.toBeInstanceOf(TransientError);
        dir.failWith(undefined);
        await expect(dir.listApprovers([approvers], 10)).resolves.toHaveLength(1);
        expect(dir.calls).toEqual({ isMemberOfAny: 0, getUser: 0, listApprovers: 4 });
    });
});

describe('compareDirectoryUsers', () => {
    it('orders by display name (case-insensitively, numbers by value), then by id, users without a name last', () => {
        const users: DirectoryUser[] = [
            { objectId: 'b' },
            { objectId: 'A' },
            { objectId: '3', displayName: 'User 10' },
            { objectId: '2', displayName: 'user 2' },
            { objectId: 'f', displayName: 'Ann' },
            { objectId: 'E', displayName: 'ann' },
            { objectId: 'c', displayName: '  ' },
        ];
        expect([...users].sort(compareDirectoryUsers).map((u) => u.objectId)).toEqual([
            'E',
            'f',
            '2',
            '3',
            'A',
            'b',
            'c',
        ]);
    });
});

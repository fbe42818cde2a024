import type { AccessToken, TokenCredential } from '@azure/core-auth';
import { PermanentError, TransientError, ValidationError } from '../../src/domain/errors';
import { BotConnectorChannel } from '../../src/teams/botConnector';
import { InMemoryTeamRoster, toTeamMember, type TeamMember, type TeamRoster } from '../../src/teams/teamRoster';
import { BotConnectorEmulator, type RosterMember } from '../emulators/botConnector';

/**
 * The team roster (Bot Connector "Get conversation paged members") through the real client against the emulator, and
 * the in-memory double through the same checks.
 */

const credential: TokenCredential = {
    getToken: async (scopes): Promise<AccessToken> => {
        const scope = Array.isArray(scopes) ? scopes[0]! : scopes;
        const payload = Buffer.from(JSON.stringify({ aud: scope.replace(/\/\.default$/, '') })).toString('base64url');
        return { token: `e30.${payload}.x`, expiresOnTimestamp: Date.now() + 3_600_000 };
    },
};

const teamId = '19:team@thread.tacv2';
const objectId = (i: number) => `00000000-0000-4000-8000-${String(i).padStart(12, '0')}`;
const member = (i: number): RosterMember => ({
    id: `29:1member${i}-opaque_MRI`,
    objectId: objectId(i),
    name: `Member ${i}`,
    userPrincipalName: `m${i}@contoso.com`,
    tenantId: '72f988bf-86f1-41af-91ab-2d7cd011db47',
    userRole: 'user',
});

async function everyone(roster: TeamRoster): Promise<{ members: TeamMember[]; pages: number }> {
    const members: TeamMember[] = [];
    let token: string | undefined;
    let pages = 0;
    do {
        const page = await roster.membersPage(token);
        pages += 1;
        members.push(...page.members);
        token = page.continuationToken;
    } while (token !== undefined);
    return { members, pages };
}

describe('BotConnectorChannel as the team roster', () => {
    let bot: BotConnectorEmulator;
    let channel: BotConnectorChannel;

    beforeAll(async () => {
        bot = await BotConnectorEmulator.start();
        channel = new BotConnectorChannel({
            serviceUrl: bot.serviceUrl,
            tenantId: 'tenant-1',
            teamId,
            channelId: '19:approvals@thread.tacv2',
            credential,
            tokenScope: 'https://api.botframework.com/.default',
            maxRetries: 2,
            retryDelayInMs: 10,
        });
    });
    afterAll(() => bot.close());
    afterEach(() => {
        bot.faults.clear();
        bot.requests.length = 0;
    });

    it('reads every page of the team, 500 members a page, following the continuation token', async () => {
        bot.setRoster(
            teamId,
            Array.from({ length: 1100 }, (_, i) => member(i)),
        );
        const { members, pages } = await everyone(channel);
        expect(pages).toBe(3);
        expect(members).toHaveLength(1100);
        expect(members[1099]).toEqual({ mri: '29:1member1099-opaque_MRI', objectId: objectId(1099) });
        const asked = bot.requests.filter((r) => r.path.endsWith('/pagedmembers'));
        // The team's own conversation, by its id; the largest page Teams serves; the token sent back as given.
        expect(asked[0]?.path).toBe(`/teams/v3/conversations/${encodeURIComponent(teamId)}/pagedmembers`);
        expect(new URLSearchParams(asked[0]?.query).get('pageSize')).toBe('500');
        expect(new URLSearchParams(asked[0]?.query).has('continuationToken')).toBe(false);
        expect(new URLSearchParams(asked[1]?.query).get('continuationToken')).toMatch(/\S/);
    });

    it('reads the object id by either name and keeps members Entra does not know without one', async () => {
        bot.setRoster(teamId, [
            { id: '29:anon', name: 'Anon1 (Guest)', userRole: 'anonymous' },
            { id: '29:plain', aadObjectId: objectId(7) } as RosterMember,
            { id: '29:upper', objectId: objectId(8).toUpperCase() },
            { id: '29:notguid', objectId: 'not-a-guid' },
            { id: '' } as RosterMember,
        ]);
        const { members } = await everyone(channel);
        expect(members).toEqual([
            { mri: '29:anon' },
            { mri: '29:plain', objectId: objectId(7) },
            { mri: '29:upper', objectId: objectId(8) },
            { mri: '29:notguid' },
        ]);
    });

    it('waits out a 429 with Retry-After and goes on paging', async () => {
        bot.setRoster(
            teamId,
            Array.from({ length: 600 }, (_, i) => member(i)),
        );
        bot.faults.add({ kind: 'throttle', retryAfterSeconds: 0 }, { method: 'GET', pathIncludes: 'pagedmembers' });
        const { members } = await everyone(channel);
        expect(members).toHaveLength(600);
        expect(bot.faults.injected.throttle).toBeGreaterThanOrEqual(1);
    });

    it('reports throttling that outlasts its retries as transient, and an unknown team as permanent', async () => {
        bot.setRoster(teamId, [member(1)]);
        bot.faults.add(
            { kind: 'throttle', retryAfterSeconds: 0 },
            { method: 'GET', pathIncludes: 'pagedmembers', times: 10 },
        );
        await expect(channel.membersPage()).rejects.toBeInstanceOf(TransientError);
        bot.faults.clear();
        bot.rosters.delete(teamId);
        await expect(channel.membersPage()).rejects.toBeInstanceOf(PermanentError);
    });

    it('the emulator refuses a continuation token it did not issue, as a bad request', async () => {
        bot.setRoster(teamId, [member(1)]);
        await expect(channel.membersPage('forged')).rejects.toThrow(/400/);
    });
});

describe('InMemoryTeamRoster', () => {
    it('pages like the Bot Connector and fails on demand', async () => {
        const roster = new InMemoryTeamRoster(
            Array.from({ length: 5 }, (_, i) => ({ mri: `29:${i}`, objectId: objectId(i) })),
            2,
        );
        const { members, pages } = await everyone(roster);
        expect(pages).toBe(3);
        expect(members.map((m) => m.mri)).toEqual(['29:0', '29:1', '29:2', '29:3', '29:4']);
        await expect(roster.membersPage('99')).rejects.toBeInstanceOf(ValidationError);
        roster.failWith(new TransientError('down'));
        await expect(roster.membersPage()).rejects.toThrow('down');
        expect(() => new InMemoryTeamRoster([], 0)).toThrow(ValidationError);
    });

    it('reads members as the real adapter does', () => {
        expect(toTeamMember({ id: '29:x', objectId: objectId(1) })).toEqual({ mri: '29:x', objectId: objectId(1) });
        expect(toTeamMember(null)).toBeUndefined();
        expect(toTeamMember({ id: 42 })).toBeUndefined();
    });
});

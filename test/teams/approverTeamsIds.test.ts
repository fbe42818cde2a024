import { TransientError } from '../../src/domain/errors';
import {
    ApproverTeamsIds,
    REFRESH_USER_IDS_MAX,
    refreshUserIdsFor,
    type TeamsApprover,
} from '../../src/teams/approverTeamsIds';
import { InMemoryDirectory } from '../../src/teams/directory';
import { InMemoryTeamRoster, type TeamMember, type TeamMembersPage } from '../../src/teams/teamRoster';

/** Matching the approver groups (Entra) with the team's roster (Teams), its cache and its deadline, on the doubles. */

const group = 'a9a9a9a9-0000-4000-8000-000000000001';
const objectId = (i: number) => `00000000-0000-4000-8000-${String(i).padStart(12, '0')}`;
const mri = (i: number) => `29:mri-${i}`;

function logger() {
    const lines: string[] = [];
    return {
        lines,
        info: (...a: unknown[]) => lines.push(a.join(' ')),
        warn: (...a: unknown[]) => lines.push(a.join(' ')),
        error: (...a: unknown[]) => lines.push(a.join(' ')),
    };
}

function world(options: { approvers: number[]; team: number[]; pageSize?: number }) {
    const directory = new InMemoryDirectory();
    for (const i of options.approvers) {
        directory.addUser({ objectId: objectId(i), displayName: `User ${String(i).padStart(3, '0')}` });
        directory.addMember(objectId(i), group);
    }
    const roster = new InMemoryTeamRoster(
        options.team.map((i): TeamMember => ({ mri: mri(i), objectId: objectId(i) })),
        options.pageSize ?? 500,
    );
    let now = new Date('2026-12-04T10:00:00Z');
    const clock = {
        now: () => now,
        advance: (ms: number) => {
            now = new Date(now.getTime() + ms);
        },
    };
    const ids = new ApproverTeamsIds(directory, roster, { groupIds: [group], now: clock.now, deadlineMs: 1000 });
    return { directory, roster, clock, ids };
}

describe('ApproverTeamsIds', () => {
    it('names the approvers who are in the team, by MRI, in the directory order', async () => {
        // 3 and 5 approve but are not in the team; 4 and 6 are in the team but do not approve; the team pages by 2.
        const w = world({ approvers: [5, 1, 3, 2], team: [4, 2, 6, 1], pageSize: 2 });
        const found = await w.ids.approvers(logger());
        expect(found).toEqual([
            { mri: mri(1), objectId: objectId(1) },
            { mri: mri(2), objectId: objectId(2) },
        ]);
        expect(w.roster.calls.membersPage).toBe(2);
    });

    it('stops paging the team once every approver is found', async () => {
        const w = world({ approvers: [1], team: [1, 2, 3, 4, 5, 6], pageSize: 2 });
        expect(await w.ids.approvers(logger())).toHaveLength(1);
        expect(w.roster.calls.membersPage).toBe(1);
    });

    it('keeps the answer briefly, so a burst of cards asks Graph and Teams once', async () => {
        const w = world({ approvers: [1, 2], team: [1, 2] });
        await Promise.all([w.ids.approvers(logger()), w.ids.approvers(logger()), w.ids.approvers(logger())]);
        await w.ids.approvers(logger());
        expect(w.directory.calls.listApprovers).toBe(1);
        w.directory.removeMember(objectId(2), group);
        w.clock.advance(5 * 60_000 + 1);
        expect(await w.ids.approvers(logger())).toEqual([{ mri: mri(1), objectId: objectId(1) }]);
        expect(w.directory.calls.listApprovers).toBe(2);
    });

    it('starts the lookup early on prefetch, which the card then uses, and asks nothing while the answer is kept', async () => {
        const w = world({ approvers: [1, 2], team: [1, 2] });
        w.ids.prefetch();
        w.ids.prefetch();
        expect(w.directory.calls.listApprovers).toBe(1);
        expect(await w.ids.approvers(logger())).toHaveLength(2);
        w.ids.prefetch();
        expect(w.directory.calls.listApprovers).toBe(1);
        expect(w.roster.calls.membersPage).toBe(1);
        // A failing lookup started by a prefetch is no unhandled rejection: the card's own call sees it.
        w.clock.advance(5 * 60_000 + 1);
        w.directory.failWith(new TransientError('Graph is down'));
        w.ids.prefetch();
        const log = logger();
        expect(await w.ids.approvers(log)).toBeUndefined();
        expect(log.lines.join('\n')).toContain('Graph is down');
        expect(w.directory.calls.listApprovers).toBe(2);
    });

    it('answers undefined when Graph or Teams fails, logs why, and tries again only after a minute', async () => {
        const w = world({ approvers: [1], team: [1] });
        w.directory.failWith(new TransientError('Graph is down'));
        const log = logger();
        expect(await w.ids.approvers(log)).toBeUndefined();
        expect(log.lines.join('\n')).toContain('Graph is down');
        w.directory.failWith(undefined);
        expect(await w.ids.approvers(log)).toBeUndefined();
        expect(w.directory.calls.listApprovers).toBe(1);
        w.clock.advance(60_001);
        expect(await w.ids.approvers(log)).toHaveLength(1);

        w.roster.failWith(new TransientError('Bot Connector 503'));
        w.clock.advance(5 * 60_000 + 1);
        expect(await w.ids.approvers(log)).toBeUndefined();
        expect(log.lines.join('\n')).toContain('Bot Connector 503');
    });

    it('does not hold a card past its deadline; the lookup then fills the cache for the next one', async () => {
        const w = world({ approvers: [1], team: [1] });
        let release: () => void = () => undefined;
        const slow = new Promise<void>((resolve) => {
            release = resolve;
        });
        const roster = w.roster;
        const original = roster.membersPage.bind(roster);
        roster.membersPage = async (token?: string): Promise<TeamMembersPage> => {
            await slow;
            return original(token);
        };
        const fast = new ApproverTeamsIds(w.directory, roster, { groupIds: [group], deadlineMs: 20, now: w.clock.now });
        const log = logger();
        expect(await fast.approvers(log)).toBeUndefined();
        expect(log.lines.join('\n')).toContain('took longer than 20 ms');
        release();
        await new Promise((r) => setTimeout(r, 10));
        expect(await fast.approvers(log)).toEqual([{ mri: mri(1), objectId: objectId(1) }]);
    });
});

describe('refreshUserIdsFor', () => {
    const approvers: TeamsApprover[] = Array.from({ length: 75 }, (_, i) => ({ mri: mri(i), objectId: objectId(i) }));

    it(`takes at most ${REFRESH_USER_IDS_MAX} (Teams' limit) and counts the rest`, () => {
        const { userIds, left } = refreshUserIdsFor(approvers, []);
        expect(userIds).toHaveLength(60);
        expect(userIds[0]).toBe(mri(0));
        expect(userIds[59]).toBe(mri(59));
        expect(left).toBe(15);
    });

    it('leaves out the requester and whoever already approved, whatever the casing of their ids', () => {
        const { userIds, left } = refreshUserIdsFor(approvers.slice(0, 3), [
            objectId(0).toUpperCase(),
            undefined,
            objectId(2),
        ]);
        expect(userIds).toEqual([mri(1)]);
        expect(left).toBe(0);
    });
});

import { click, ids, logTap, mriOf, openCard, people, startHarness, type Harness } from '../harness';

/**
 * User specific views end to end: the card posted to the channel is the shared view (no live decide buttons, the
 * approvers' Teams ids in `refresh.userIds`), each approver's automatic refresh brings their buttons, and the server
 * decides who may act whatever the card showed. Graph and the Bot Connector run as emulators.
 */

type Card = {
    actions?: { type?: string; verb?: string; title?: string; url?: string }[];
    refresh?: { userIds?: string[]; action?: unknown };
};

const decideVerb = /"verb":"(approve|reject)"/;

function postedCard(h: Harness): Card {
    const cards = h.bot.cards();
    expect(cards).toHaveLength(1);
    return cards[0] as Card;
}

describe('user specific views (refresh.userIds)', () => {
    let h: Harness;

    beforeEach(() => {
        logTap.lines = [];
    });
    afterEach(async () => {
        delete logTap.lines;
        await h.close();
    });

    it('posts the shared view: no decide buttons, who may decide, and the approvers who can act by MRI', async () => {
        h = await startHarness();
        const { request } = await openCard(h, 'mysql-flexible');
        const card = postedCard(h);
        // Alice and Bob (through a nested group) approve; Dev approves too but asked for this one; Mallory does not.
        expect(card.refresh?.userIds?.sort()).toEqual([mriOf(people.alice), mriOf(people.bob)].sort());
        expect(card.refresh?.action).toEqual({
            type: 'Action.Execute',
            verb: 'refresh',
            data: { requestId: request.id },
        });
        expect(JSON.stringify(card)).not.toMatch(decideVerb);
        expect(JSON.stringify(card)).not.toContain('"id":"responseText"');
        expect(JSON.stringify(card)).toContain('Only members of the approver groups can decide');
        expect(card.actions?.find((a) => a.title === 'Review page')?.url).toMatch(
            new RegExp(`^https://pec-gate\\.example\\.net/api/requests/${request.id}\\?token=`),
        );
        // The roster came from the team's own conversation.
        expect(h.bot.requests.some((r) => r.path.includes(encodeURIComponent(h.env.TEAMS_TEAM_ID!)))).toBe(true);
    });

    it("an approver's automatic refresh brings the buttons; anyone else's the read-only card", async () => {
        h = await startHarness();
        const { request } = await openCard(h, 'postgres-flexible');
        const auto = {
            value: {
                action: { type: 'Action.Execute', verb: 'refresh', data: { requestId: request.id } },
                trigger: 'automatic',
            },
        };
        const bob = await click(h, request, { who: people.bob, activity: auto });
        expect(bob.body).toMatchObject({ statusCode: 200, type: 'application/vnd.microsoft.card.adaptive' });
        expect(bob.text).toMatch(decideVerb);
        // The personal view names the same users, as Teams' examples do, so it keeps refreshing for them.
        const bobCard = bob.body?.value as Card;
        expect(bobCard.refresh?.userIds?.sort()).toEqual([mriOf(people.alice), mriOf(people.bob)].sort());
        expect(JSON.stringify(bobCard)).not.toContain('Only members of the approver groups can decide');

        const mallory = await click(h, request, { who: people.mallory, activity: auto });
        expect(mallory.body).toMatchObject({ statusCode: 200, type: 'application/vnd.microsoft.card.adaptive' });
        expect(mallory.text).not.toMatch(decideVerb);
        expect(mallory.text).toContain('Waiting for approval');
        // A refresh is a view, never a write.
        expect((await h.deps.audit.list(request.id)).map((e) => e.action)).toEqual(['requested', 'card-posted']);
    });

    it('refuses a forged click from someone who never had the buttons', async () => {
        h = await startHarness();
        const { request } = await openCard(h, 'mysql-flexible');
        const forged = await click(h, request, { who: people.mallory, verb: 'approve', text: 'trust me' });
        expect(forged.text).toContain('Only members of the approver groups can decide');
        expect(forged.text).not.toMatch(decideVerb);
        expect((await h.deps.requests.get(request.id))?.request.status).toBe('pending');
        expect((await h.deps.audit.list(request.id)).map((e) => e.action)).toEqual([
            'requested',
            'card-posted',
            'refused',
        ]);
        expect(h.arm.getPec(request.pecId)).toMatchObject({
            properties: { privateLinkServiceConnectionState: { status: 'Pending' } },
        });
    });

    it('updates the shared card without buttons, naming only who can still act', async () => {
        const policy = {
            rules: [
                { id: 'two', match: { tags: { environment: 'prod' } }, action: { type: 'requireApprovals', count: 2 } },
            ],
        };
        h = await startHarness({ settings: { POLICY: JSON.stringify(policy) } });
        const { request } = await openCard(h, 'mysql-flexible');
        expect(postedCard(h).refresh?.userIds?.sort()).toEqual([mriOf(people.alice), mriOf(people.bob)].sort());
        const alice = await click(h, request, { who: people.alice, verb: 'approve', text: 'fine' });
        expect(alice.text).toContain('1 of 2');
        // The card in the channel now says "1 of 2", still with no buttons, and names only Bob: Alice is done.
        const updated = h.bot.updates.at(-1)?.activity as { attachments?: { content?: Card }[] } | undefined;
        const shared = updated?.attachments?.[0]?.content;
        expect(JSON.stringify(shared)).toContain('1 of 2');
        expect(JSON.stringify(shared)).not.toMatch(decideVerb);
        expect(shared?.refresh?.userIds).toEqual([mriOf(people.bob)]);
        // Bob's own view has the buttons; Alice's does not any more, whatever her client asks.
        expect((await click(h, request, { who: people.bob, verb: 'refresh' })).text).toMatch(decideVerb);
        expect((await click(h, request, { who: people.alice, verb: 'refresh' })).text).not.toMatch(decideVerb);
    });

    it(`names at most 60 approvers (Teams' limit) and logs the others`, async () => {
        h = await startHarness();
        const many = Array.from({ length: 70 }, (_, i) => ({
            objectId: `c0c0c0c0-0000-4000-8000-${String(i).padStart(12, '0')}`,
            name: `Approver ${String(i).padStart(2, '0')}`,
        }));
        for (const p of many) {
            h.graph.addUser({
                id: p.objectId,
                displayName: p.name,
                userPrincipalName: `a${p.name.slice(-2)}@contoso.com`,
            });
        }
        h.graph.addGroup(ids.approvers, {
            members: [people.alice.objectId, people.dev.objectId, 'nested-approvers', ...many.map((p) => p.objectId)],
        });
        h.bot.setRoster(h.env.TEAMS_TEAM_ID!, [
            ...Object.values(people).map((p) => ({ id: mriOf(p), objectId: p.objectId })),
            ...many.map((p) => ({ id: mriOf(p), objectId: p.objectId })),
        ]);
        await openCard(h, 'mysql-flexible');
        const userIds = postedCard(h).refresh?.userIds ?? [];
        expect(userIds).toHaveLength(60);
        expect(new Set(userIds).size).toBe(60);
        expect(userIds).not.toContain(mriOf(people.dev));
        expect(logTap.lines?.join('\n')).toMatch(/72 approvers are in the team.*at most 60; the other 12/);
    });

    it.each([
        [
            'Graph',
            (h: Harness) =>
                h.graph.faults.add({ kind: 'error', status: 500 }, { pathIncludes: 'transitivemembers', times: 100 }),
        ],
        [
            'the Bot Connector roster',
            (h: Harness) =>
                h.bot.faults.add(
                    { kind: 'error', status: 500 },
                    { method: 'GET', pathIncludes: 'pagedmembers', times: 100 },
                ),
        ],
    ])('still posts the shared card, with its review link, when %s is down', async (_name, breakIt) => {
        h = await startHarness();
        breakIt(h);
        const { request } = await openCard(h, 'mysql-flexible');
        const card = postedCard(h);
        expect(card.refresh).toBeDefined();
        // Nobody named: Teams refreshes for everyone in a small channel, and offers Refresh card in a large one.
        expect(card.refresh?.userIds).toBeUndefined();
        expect(JSON.stringify(card)).not.toMatch(decideVerb);
        expect(card.actions?.some((a) => a.title === 'Review page')).toBe(true);
        expect(request.card).toMatchObject({ channel: 'bot' });
        expect((await h.deps.audit.list(request.id)).map((e) => e.action)).toEqual(['requested', 'card-posted']);
        expect(logTap.lines?.join('\n')).toContain("Could not look up the approvers' Teams ids");
    });
});

import { buildCardView, cleanText, formatUtc, RESPONSE_TEXT_MAX_LENGTH } from '../../src/domain/card';
import type { CardOptions, CardView } from '../../src/domain/card';
import type { ApprovalRequest } from '../../src/domain/request';

const ourSub = '11111111-1111-1111-1111-111111111111';
const theirSub = '99999999-9999-9999-9999-999999999999';
const ourTenant = 'aaaaaaaa-aaaa-aaaa-aaaa-aaaaaaaaaaaa';
const theirTenant = 'bbbbbbbb-bbbb-bbbb-bbbb-bbbbbbbbbbbb';
const serverId = `/subscriptions/${ourSub}/resourceGroups/rg-data/providers/Microsoft.DBforPostgreSQL/flexibleServers/pg-prod`;
const pecName = 'pe_exfil.6c1b2d3e-0000-4000-8000-000000000001';
const pecId = `${serverId}/privateEndpointConnections/${pecName}`;
const peId = `/subscriptions/${theirSub}/resourceGroups/rg-other/providers/Microsoft.Network/privateEndpoints/pe_exfil`;

function makeRequest(overrides: Partial<ApprovalRequest> = {}): ApprovalRequest {
    return {
        id: 'Req_abcdefghijklmnopqrstuv',
        pecId,
        status: 'pending',
        facts: {
            serverKind: 'postgres-flexible',
            serverId,
            serverLocation: 'westeurope',
            publicNetworkAccess: 'Disabled',
            serverTags: { env: 'prod' },
            pecName,
            privateEndpointId: peId,
            privateEndpointSubscriptionId: theirSub,
            privateEndpointTrusted: false,
            privateEndpointTenantId: ourTenant,
            originSource: 'looked-up',
            requestMessage: 'Please approve, reporting job',
            approvedPecCount: 3,
            approvedUntrustedPecCount: 0,
        },
        requester: { name: 'Mallory', upn: 'mallory@contoso.example', objectId: 'oid-1', tenantId: ourTenant },
        requesterForeignTenant: false,
        correlationId: 'corr-1',
        createdAt: '2024-05-01T10:07:33.123Z',
        updatedAt: '2024-05-01T10:07:33.123Z',
        ...overrides,
    };
}

const approverBot: CardOptions = {
    portalUrl: 'https://portal.azure.com/',
    publicBaseUrl: 'https://pec-gate.azurewebsites.net//',
    ourTenantId: ourTenant,
    audience: 'approver',
    delivery: 'bot',
    linkToken: 'Tok-en_1',
};

const decision = {
    action: 'approve' as const,
    by: { name: 'Alice Approver', objectId: 'oid-alice' },
    text: 'ok for the reporting project',
    at: '2024-05-02T08:09:59Z',
};

function executeVerbs(view: CardView): string[] {
    return view.actions.flatMap((a) => (a.type === 'execute' ? [a.verb] : []));
}

function openUrls(view: CardView): string[] {
    return view.actions.flatMap((a) => (a.type === 'openUrl' ? [a.url] : []));
}

describe('buildCardView status lines', () => {
    it('pending waits for approval', () => {
        expect(buildCardView(makeRequest(), approverBot).statusLine.text).toBe('Waiting for approval');
    });

    it('decided shows who is approving or rejecting', () => {
        expect(buildCardView(makeRequest({ status: 'decided', decision }), approverBot).statusLine.text).toBe(
            'Approving… by Alice Approver',
        );
        const reject = { ...decision, action: 'reject' as const, by: { upn: 'bob@contoso.example' } };
        expect(buildCardView(makeRequest({ status: 'decided', decision: reject }), approverBot).statusLine.text).toBe(
            'Rejecting… by bob@contoso.example',
        );
    });

    it('applied shows who, when (UTC, minutes) and the response text', () => {
        const view = buildCardView(makeRequest({ status: 'applied', decision }), approverBot);
        expect(view.statusLine).toEqual({
            text: 'Approved by Alice Approver at 2024-05-02 08:09 UTC: ok for the reporting project',
            tone: 'good',
        });
        const rejected = buildCardView(
            makeRequest({ status: 'applied', decision: { ...decision, action: 'reject', text: 'not ours' } }),
            approverBot,
        );
        expect(rejected.statusLine.text).toBe('Rejected by Alice Approver at 2024-05-02 08:09 UTC: not ours');
    });

    it('failed, expired and superseded show the reason', () => {
        const outcome = { at: '2024-05-03T00:00:00Z', reason: 'ARM said 403' };
        expect(buildCardView(makeRequest({ status: 'failed', decision, outcome }), approverBot).statusLine.text).toBe(
            'Could not apply the approval by Alice Approver: ARM said 403',
        );
        expect(
            buildCardView(makeRequest({ status: 'expired', outcome: { ...outcome, reason: 'no answer in 7 days' } }), {
                ...approverBot,
            }).statusLine.text,
        ).toBe('Expired: no answer in 7 days');
        expect(
            buildCardView(
                makeRequest({ status: 'superseded', outcome: { ...outcome, reason: 'approved in the portal' } }),
                {
                    ...approverBot,
                },
            ).statusLine.text,
        ).toBe('Superseded: approved in the portal');
    });
});

describe('buildCardView actions', () => {
    it('offers approve/reject with only the request id, and a response input, to approvers over the bot', () => {
        const view = buildCardView(makeRequest(), { ...approverBot, responseText: 'draft' });
        expect(view.actions.filter((a) => a.type === 'execute')).toEqual([
            { type: 'execute', verb: 'approve', title: 'Approve', data: { requestId: 'Req_abcdefghijklmnopqrstuv' } },
            { type: 'execute', verb: 'reject', title: 'Reject', data: { requestId: 'Req_abcdefghijklmnopqrstuv' } },
        ]);
        expect(view.responseInput).toMatchObject({ value: 'draft', maxLength: RESPONSE_TEXT_MAX_LENGTH });
    });

    it('links to the portal and (while pending) the web page, with trailing slashes stripped', () => {
        const view = buildCardView(makeRequest(), approverBot);
        expect(openUrls(view)).toEqual([
            'https://pec-gate.azurewebsites.net/api/requests/Req_abcdefghijklmnopqrstuv?token=Tok-en_1',
            `https://portal.azure.com/#@${ourTenant}/resource${pecId}`,
        ]);
        const applied = buildCardView(makeRequest({ status: 'applied', decision }), approverBot);
        expect(openUrls(applied)).toEqual([`https://portal.azure.com/#@${ourTenant}/resource${pecId}`]);
    });

    it.each(['decided', 'applied', 'failed', 'expired', 'superseded'] as const)(
        'has no execute actions and no input when %s',
        (status) => {
            const view = buildCardView(
                makeRequest({ status, decision, outcome: { at: '2024-05-03T00:00:00Z', reason: 'r' } }),
                approverBot,
            );
            expect(executeVerbs(view)).toEqual([]);
            expect(view.responseInput).toBeUndefined();
        },
    );

    it('links to the web page only with a link token (cards rendered after the post have none)', () => {
        const { linkToken: _none, ...withoutToken } = approverBot;
        const view = buildCardView(makeRequest(), withoutToken);
        expect(openUrls(view)).toEqual([`https://portal.azure.com/#@${ourTenant}/resource${pecId}`]);
        const tricky = buildCardView(makeRequest(), { ...approverBot, linkToken: 'a&b=c#d' });
        expect(new URL(openUrls(tricky)[0]!).searchParams.get('token')).toBe('a&b=c#d');
    });

    it('gives viewers no execute actions', () => {
        const view = buildCardView(makeRequest(), { ...approverBot, audience: 'viewer' });
        expect(executeVerbs(view)).toEqual([]);
        expect(view.responseInput).toBeUndefined();
        expect(openUrls(view)).toHaveLength(2);
    });

    it('gives webhook cards only OpenUrl actions, the decision page first', () => {
        const view = buildCardView(makeRequest(), { ...approverBot, delivery: 'webhook' });
        expect(view.actions.every((a) => a.type === 'openUrl')).toBe(true);
        expect(view.actions[0]).toMatchObject({ title: 'Decide in browser' });
        expect(view.responseInput).toBeUndefined();
        expect(view.refresh).toBeUndefined();
    });

    it('encodes the request id in the page URL and never lets the PEC id leave the portal path', () => {
        const view = buildCardView(makeRequest({ id: 'a/b?c#d', pecId: `${pecId}?x=1#frag` }), approverBot);
        const [page, portal] = openUrls(view);
        expect(page).toBe('https://pec-gate.azurewebsites.net/api/requests/a%2Fb%3Fc%23d?token=Tok-en_1');
        expect(portal).toContain('/resource/subscriptions/');
        expect(new URL(portal!).hash).toContain('%3Fx%3D1%23frag');
    });

    it('asks for per-user refresh only over the bot and while open, naming the user ids given', () => {
        const withUsers = { ...approverBot, audience: 'viewer' as const, refreshUserIds: ['29:abc'] };
        expect(buildCardView(makeRequest(), withUsers).refresh).toEqual({
            verb: 'refresh',
            data: { requestId: 'Req_abcdefghijklmnopqrstuv' },
            userIds: ['29:abc'],
        });
        expect(buildCardView(makeRequest({ status: 'applied', decision }), withUsers).refresh).toBeUndefined();
        // Not known: left out (Teams then refreshes everyone in conversations of up to 60). Known to be nobody: an empty
        // list, which Teams reads as "refresh nobody by itself".
        expect(buildCardView(makeRequest(), approverBot).refresh).toEqual({
            verb: 'refresh',
            data: { requestId: 'Req_abcdefghijklmnopqrstuv' },
        });
        expect(buildCardView(makeRequest(), { ...approverBot, refreshUserIds: [] }).refresh?.userIds).toEqual([]);
        const many = Array.from({ length: 61 }, (_, i) => `29:${i}`);
        expect(buildCardView(makeRequest(), { ...approverBot, refreshUserIds: many }).refresh?.userIds).toEqual(
            many.slice(0, 60),
        );
    });

    it('draws the shared card (the one posted to the channel) without decide buttons, saying who may decide', () => {
        const shared = { ...approverBot, audience: 'shared' as const, linkToken: 'Tok-en_1', refreshUserIds: ['29:a'] };
        const view = buildCardView(makeRequest(), shared);
        expect(view.actions.filter((a) => a.type === 'execute')).toEqual([]);
        expect(view.responseInput).toBeUndefined();
        expect(view.note).toMatch(
            /^Only members of the approver groups can decide: they see Approve and Reject .*review page\.$/,
        );
        expect(view.actions.map((a) => a.title)).toEqual(['Review page', 'Open in Azure portal']);
        expect(view.refresh?.userIds).toEqual(['29:a']);
        // Once decided there is nothing left to decide, so no line about it.
        expect(buildCardView(makeRequest({ status: 'applied', decision }), shared).note).toBeUndefined();
    });
});

describe('buildCardView facts and warnings', () => {
    it('describes the server, the connection and the requester', () => {
        const view = buildCardView(makeRequest(), approverBot);
        expect(view.title).toBe('Private endpoint connection to PostgreSQL flexible server pg-prod');
        expect(view.server).toMatchObject({
            kindLabel: 'PostgreSQL flexible server',
            name: 'pg-prod',
            resourceGroup: 'rg-data',
            subscriptionId: ourSub,
            location: 'westeurope',
            publicNetworkAccess: 'Disabled',
            approvedPecCount: 3,
            tags: [{ key: 'env', value: 'prod' }],
        });
        expect(view.connection).toEqual({
            name: pecName,
            privateEndpointId: peId,
            privateEndpointSubscriptionId: theirSub,
            trusted: false,
            tenantId: ourTenant,
            foreignTenant: false,
            originLabel: "looked up from the subscription's home tenant",
        });
        expect(view.requester).toMatchObject({ known: true, display: 'Mallory', foreignTenant: false });
        expect(view.message).toBe('Please approve, reporting job');
        expect(view.openedAt).toBe('2024-05-01 10:07 UTC');
        expect(view.sections.map((s) => s.title)).toEqual(['Server', 'Private endpoint connection', 'Requested by']);
        const literalLabels = view.sections.flatMap((s) => s.facts.filter((f) => f.literal).map((f) => f.label));
        expect(literalLabels).toEqual(expect.arrayContaining(['Connection', 'Private endpoint', 'Name', 'UPN']));
    });

    it('warns about an untrusted subscription', () => {
        const view = buildCardView(makeRequest(), approverBot);
        expect(view.warnings).toEqual([`Private endpoint subscription ${theirSub} is not in the trusted list`]);
    });

    it('raises no warnings for a trusted, same-tenant, private server', () => {
        const request = makeRequest();
        request.facts = { ...request.facts, privateEndpointTrusted: true, privateEndpointSubscriptionId: ourSub };
        expect(buildCardView(request, approverBot).warnings).toEqual([]);
    });

    it('never calls an endpoint trusted when its subscription is unknown', () => {
        const request = makeRequest();
        request.facts = {
            ...request.facts,
            privateEndpointId: 'garbage',
            privateEndpointSubscriptionId: undefined,
            privateEndpointTrusted: true,
        };
        const view = buildCardView(request, approverBot);
        expect(view.connection.trusted).toBe(false);
        expect(view.warnings[0]).toMatch(/subscription is unknown/);
    });

    it('falls back to the PE id for the subscription when the facts lack it', () => {
        const request = makeRequest();
        request.facts = { ...request.facts, privateEndpointSubscriptionId: undefined };
        expect(buildCardView(request, approverBot).connection.privateEndpointSubscriptionId).toBe(theirSub);
    });

    it('warns about a foreign tenant, public access and untrusted approved connections', () => {
        const request = makeRequest({
            requester: { name: 'Eve', tenantId: theirTenant },
            requesterForeignTenant: true,
        });
        request.facts = { ...request.facts, publicNetworkAccess: 'Enabled', approvedUntrustedPecCount: 2 };
        const view = buildCardView(request, approverBot);
        expect(view.warnings).toEqual([
            `Private endpoint subscription ${theirSub} is not in the trusted list`,
            `Requester is from another tenant ${theirTenant}`,
            'Public network access is Enabled',
            '2 approved connections already come from untrusted subscriptions',
        ]);
        const tenantFact = view.sections[2]!.facts.find((f) => f.label === 'Tenant');
        expect(tenantFact).toMatchObject({ value: `${theirTenant} (ANOTHER TENANT)`, tone: 'attention' });
    });

    it('warns when public network access is unknown, and words a single untrusted approval', () => {
        const request = makeRequest();
        request.facts = { ...request.facts, publicNetworkAccess: 'Unknown', approvedUntrustedPecCount: 1 };
        expect(buildCardView(request, approverBot).warnings).toEqual(
            expect.arrayContaining([
                'Public network access could not be read',
                '1 approved connection already comes from an untrusted subscription',
            ]),
        );
    });

    it('shows an unknown requester for requests the sweep found', () => {
        const view = buildCardView(
            makeRequest({ requester: undefined, requesterForeignTenant: undefined }),
            approverBot,
        );
        expect(view.requester).toEqual({ known: false, display: 'unknown (found while checking the server)' });
        expect(view.sections[2]!.facts[0]).toMatchObject({
            label: 'Requester',
            value: 'unknown (found while checking the server)',
        });
    });

    it('falls back from name to UPN to object id for the requester', () => {
        expect(buildCardView(makeRequest({ requester: { upn: 'u@x.example' } }), approverBot).requester.display).toBe(
            'u@x.example',
        );
        expect(buildCardView(makeRequest({ requester: { objectId: 'oid-9' } }), approverBot).requester.display).toBe(
            'object id oid-9',
        );
    });

    it('cleans and caps untrusted text', () => {
        const request = makeRequest({ requester: { name: 'Eve\u202E\u0007 Admin\r\nSecond' } });
        request.facts = { ...request.facts, requestMessage: `line1\r\nline2\u0000\u200B${'x'.repeat(3000)}` };
        const view = buildCardView(request, { ...approverBot, error: 'bad\nthing', responseText: 'y'.repeat(900) });
        expect(view.requester.display).toBe('Eve Admin Second');
        expect(view.message.startsWith('line1\nline2x')).toBe(true);
        expect(view.message).toHaveLength(2000);
        expect(view.message.endsWith('…')).toBe(true);
        expect(view.error).toBe('bad thing');
        expect(view.responseInput!.value).toHaveLength(RESPONSE_TEXT_MAX_LENGTH);
    });

    it('survives a server id that does not parse', () => {
        const request = makeRequest();
        request.facts = { ...request.facts, serverId: 'not-an-id' };
        expect(buildCardView(request, approverBot).server).toMatchObject({
            name: 'not-an-id',
            resourceGroup: 'unknown',
        });
    });
});

describe('text helpers', () => {
    it('formatUtc formats to minutes in UTC, and passes through what it cannot parse', () => {
        expect(formatUtc('2024-12-31T23:59:59.999+02:00')).toBe('2024-12-31 21:59 UTC');
        expect(formatUtc('yesterday')).toBe('yesterday');
    });

    it('cleanText never splits a surrogate pair', () => {
        expect(cleanText('ab😀cd', 4)).toBe('ab…');
        expect(cleanText('a\n\n\n\nb', 10, { multiline: true })).toBe('a\n\nb');
        expect(cleanText(undefined, 10)).toBe('');
    });
});

describe('buildCardView for a bypass alert', () => {
    const bypass = { detectedBy: 'event' as const, action: 'alert' as const, description: 'Approved by mallory' };

    it('says the connection was approved without the gate, and offers Keep and Revoke', () => {
        const view = buildCardView(makeRequest({ bypass }), approverBot);
        expect(view.title).toMatch(/^ALERT: connection to .* approved without the gate$/);
        expect(view.statusLine).toEqual({ text: 'Approved without the gate: Revoke or Keep', tone: 'attention' });
        expect(view.actions.filter((a) => a.type === 'execute').map((a) => [a.verb, a.title])).toEqual([
            ['approve', 'Keep'],
            ['reject', 'Revoke'],
        ]);
        expect(view.warnings[0]).toMatch(/approved WITHOUT the gate/);
        expect(view.sections[0]).toMatchObject({
            title: 'Approved without the gate',
            facts: expect.arrayContaining([
                expect.objectContaining({ label: 'Description in ARM', value: 'Approved by mallory' }),
                expect.objectContaining({ label: 'Policy', value: 'default: alert' }),
            ]),
        });
    });

    it('says Kept or Revoked, and by whom, once applied', () => {
        const at = '2024-05-02T10:00:00Z';
        const by = { objectId: 'a', name: 'Alice Approver' };
        const kept = buildCardView(
            makeRequest({
                bypass,
                status: 'applied',
                decision: { action: 'approve', by, text: 'ok', at, bypass: true },
            }),
            approverBot,
        );
        expect(kept.statusLine).toEqual({ text: 'Kept by Alice Approver: ok', tone: 'good' });
        const revoked = buildCardView(
            makeRequest({
                bypass,
                status: 'applied',
                decision: { action: 'reject', by, text: 'no', at, bypass: true },
            }),
            approverBot,
        );
        expect(revoked.statusLine.text).toBe('Revoked by Alice Approver: no');
    });
});

describe('buildCardView for every resource kind', () => {
    it("names the kind in the title and the facts, with the kind's own word for the resource", () => {
        const vaultId = `/subscriptions/${ourSub}/resourceGroups/rg-sec/providers/Microsoft.KeyVault/vaults/kv-prod`;
        const base = makeRequest();
        const request = makeRequest({
            pecId: `${vaultId}/privateEndpointConnections/${pecName}`,
            facts: { ...base.facts, serverKind: 'key-vault', serverId: vaultId },
        });

        const view = buildCardView(request, approverBot);

        expect(view.title).toBe('Private endpoint connection to Key vault kv-prod');
        const section = view.sections[0]!;
        expect(section.title).toBe('Vault');
        expect(section.facts).toEqual(
            expect.arrayContaining([
                { label: 'Type', value: 'Key vault' },
                { label: 'Vault', value: 'kv-prod' },
                { label: 'Resource group', value: 'rg-sec' },
            ]),
        );
        // The database kinds keep their labels.
        expect(buildCardView(base, approverBot).sections[0]!.facts).toEqual(
            expect.arrayContaining([{ label: 'Server', value: 'pg-prod' }]),
        );
    });
});

import { ValidationError } from '../../src/domain/errors';
import {
    autoApproveDescription,
    autoRejectDescription,
    bypassRevokeDescription,
    evaluateBypass,
    evaluatePolicy,
    globMatch,
    isCatchAll,
    matchCovers,
    policySubject,
} from '../../src/domain/policy';
import type { Policy, PolicyRule, PolicySubject } from '../../src/domain/policy';
import type { RequestFacts } from '../../src/domain/request';
import { armDescription } from '../../src/domain/decision';

const subject = (overrides: Partial<PolicySubject> = {}): PolicySubject => ({
    serverKind: 'postgres-flexible',
    serverName: 'pg-prod-01',
    serverTags: { environment: 'prod', owner: 'data-team' },
    endpointOrigin: 'trusted',
    ...overrides,
});

const approve = (id: string, match: PolicyRule['match']): PolicyRule => ({
    id,
    match,
    action: { type: 'autoApprove' },
});
const decide = (rules: PolicyRule[], s: PolicySubject) => evaluatePolicy({ rules }, s);
const defaultDecision = { action: { type: 'requireApprovals', count: 1 } };

describe('evaluatePolicy', () => {
    it('defaults to one manual approval without rules, and when no rule matches', () => {
        expect(decide([], subject())).toEqual(defaultDecision);
        expect(decide([approve('dev', { tags: { environment: 'dev' } })], subject())).toEqual(defaultDecision);
        expect(decide([], subject()).ruleId).toBeUndefined();
    });

    it('matches on the endpoint origin', () => {
        const rules = [approve('trusted', { endpointOrigin: ['trusted'] })];
        expect(decide(rules, subject({ endpointOrigin: 'trusted' }))).toEqual({
            ruleId: 'trusted',
            action: { type: 'autoApprove' },
        });
        expect(decide(rules, subject({ endpointOrigin: 'sameTenant' }))).toEqual(defaultDecision);
        expect(decide(rules, subject({ endpointOrigin: 'foreign' }))).toEqual(defaultDecision);
        const two = [approve('ours', { endpointOrigin: ['trusted', 'sameTenant'] })];
        expect(decide(two, subject({ endpointOrigin: 'sameTenant' })).ruleId).toBe('ours');
        expect(decide(two, subject({ endpointOrigin: 'foreign' })).ruleId).toBeUndefined();
    });

    it('matches on the server kind', () => {
        const rules = [approve('mysql', { serverKinds: ['mysql-single', 'mysql-flexible'] })];
        expect(decide(rules, subject({ serverKind: 'mysql-single' })).ruleId).toBe('mysql');
        expect(decide(rules, subject({ serverKind: 'mysql-flexible' })).ruleId).toBe('mysql');
        expect(decide(rules, subject({ serverKind: 'postgres-single' })).ruleId).toBeUndefined();
        expect(decide(rules, subject({ serverKind: 'postgres-flexible' })).ruleId).toBeUndefined();
    });

    it('matches on the server name, by glob and ignoring case', () => {
        const rules = [approve('sandbox', { serverName: 'PG-SANDBOX-*' })];
        expect(decide(rules, subject({ serverName: 'pg-sandbox-7' })).ruleId).toBe('sandbox');
        expect(decide(rules, subject({ serverName: 'pg-sandbox' })).ruleId).toBeUndefined();
        expect(decide(rules, subject({ serverName: 'x-pg-sandbox-7' })).ruleId).toBeUndefined();
    });

    it('matches on tags: the name ignoring case, the value exactly, "*" for any value, all of them', () => {
        const prod = [approve('prod', { tags: { Environment: 'prod' } })];
        expect(decide(prod, subject({ serverTags: { environment: 'prod' } })).ruleId).toBe('prod');
        expect(decide(prod, subject({ serverTags: { ENVIRONMENT: 'prod' } })).ruleId).toBe('prod');
        expect(decide(prod, subject({ serverTags: { environment: 'Prod' } })).ruleId).toBeUndefined();
        expect(decide(prod, subject({ serverTags: { environment: 'prod ' } })).ruleId).toBeUndefined();
        expect(decide(prod, subject({ serverTags: {} })).ruleId).toBeUndefined();

        const owned = [approve('owned', { tags: { owner: '*' } })];
        expect(decide(owned, subject({ serverTags: { Owner: 'anyone' } })).ruleId).toBe('owned');
        expect(decide(owned, subject({ serverTags: { owner: '' } })).ruleId).toBe('owned');
        expect(decide(owned, subject({ serverTags: { environment: 'prod' } })).ruleId).toBeUndefined();

        const both = [approve('both', { tags: { environment: 'prod', owner: '*' } })];
        expect(decide(both, subject({ serverTags: { environment: 'prod', owner: 'x' } })).ruleId).toBe('both');
        expect(decide(both, subject({ serverTags: { environment: 'prod' } })).ruleId).toBeUndefined();
    });

    it('needs every condition of a rule to hold', () => {
        const rules = [
            approve('narrow', {
                endpointOrigin: ['trusted'],
                serverKinds: ['postgres-flexible'],
                serverName: 'pg-*',
                tags: { environment: 'prod' },
            }),
        ];
        expect(decide(rules, subject()).ruleId).toBe('narrow');
        expect(decide(rules, subject({ endpointOrigin: 'sameTenant' })).ruleId).toBeUndefined();
        expect(decide(rules, subject({ serverKind: 'mysql-flexible' })).ruleId).toBeUndefined();
        expect(decide(rules, subject({ serverName: 'my-prod' })).ruleId).toBeUndefined();
        expect(decide(rules, subject({ serverTags: {} })).ruleId).toBeUndefined();
    });

    it('returns each kind of action with its rule id', () => {
        const policy: Policy = {
            rules: [
                { id: 'foreign', match: { endpointOrigin: ['foreign'] }, action: { type: 'autoReject', text: 'No.' } },
                {
                    id: 'prod',
                    match: { tags: { environment: 'prod' } },
                    action: { type: 'requireApprovals', count: 2 },
                },
                approve('rest', { endpointOrigin: ['trusted', 'sameTenant'] }),
            ],
        };
        expect(evaluatePolicy(policy, subject({ endpointOrigin: 'foreign' }))).toEqual({
            ruleId: 'foreign',
            action: { type: 'autoReject', text: 'No.' },
        });
        expect(evaluatePolicy(policy, subject())).toEqual({
            ruleId: 'prod',
            action: { type: 'requireApprovals', count: 2 },
        });
        expect(evaluatePolicy(policy, subject({ serverTags: {} }))).toEqual({
            ruleId: 'rest',
            action: { type: 'autoApprove' },
        });
    });

    it('lets the first matching rule win', () => {
        const rules: PolicyRule[] = [
            { id: 'prod', match: { tags: { environment: 'prod' } }, action: { type: 'requireApprovals', count: 2 } },
            approve('trusted', { endpointOrigin: ['trusted'] }),
        ];
        expect(decide(rules, subject()).ruleId).toBe('prod');
        expect(decide([...rules].reverse(), subject()).ruleId).toBe('trusted');
    });

    it('treats an empty match as a catch-all, and an empty value list as matching nothing', () => {
        expect(decide([approve('all', {})], subject({ endpointOrigin: 'foreign' })).ruleId).toBe('all');
        expect(decide([approve('none', { endpointOrigin: [] })], subject()).ruleId).toBeUndefined();
        expect(decide([approve('none', { serverKinds: [] })], subject()).ruleId).toBeUndefined();
    });

    it('hands out a copy of the action, so a caller cannot change the policy', () => {
        const policy: Policy = { rules: [{ id: 'two', match: {}, action: { type: 'requireApprovals', count: 2 } }] };
        const decision = evaluatePolicy(policy, subject());
        (decision.action as { count: number }).count = 1;
        expect(policy.rules[0]!.action).toEqual({ type: 'requireApprovals', count: 2 });
    });
});

describe('globMatch', () => {
    it.each([
        ['pg-prod-01', 'pg-prod-01', true],
        ['PG-Prod-01', 'pg-prod-01', true],
        ['pg-*', 'pg-prod-01', true],
        ['pg-*', 'pg-', true],
        ['pg-*', 'pg', false],
        ['*-01', 'pg-prod-01', true],
        ['*prod*', 'pg-prod-01', true],
        ['*prod*', 'prod', true],
        ['*prod*', 'pg-test-01', false],
        ['pg-???-01', 'pg-dev-01', true],
        ['pg-???-01', 'pg-prod-01', false],
        ['?', '', false],
        ['*', '', true],
        ['', '', true],
        ['', 'a', false],
        ['a*b*c', 'axxbyyc', true],
        ['a*b*c', 'axxbyy', false],
        ['a*b', 'abab', true],
        ['*a', 'ba', true],
        ['**a**', 'a', true],
        ['pg.prod', 'pgxprod', false],
        ['pg-[0-9]', 'pg-1', false],
    ])('%j against %j is %s', (pattern, value, expected) => {
        expect(globMatch(pattern, value)).toBe(expected);
    });

    it('stays fast on patterns that make a backtracking matcher explode', () => {
        const started = Date.now();
        expect(globMatch(`${'*a'.repeat(30)}*b`, 'a'.repeat(5000))).toBe(false);
        expect(Date.now() - started).toBeLessThan(1000);
    });
});

describe('matchCovers and isCatchAll', () => {
    it('knows a catch-all', () => {
        expect(isCatchAll({})).toBe(true);
        expect(isCatchAll({ tags: { a: '*' } })).toBe(false);
    });

    it('says an earlier match covers a later one only when it certainly does', () => {
        expect(matchCovers({}, { serverName: 'x' })).toBe(true);
        expect(matchCovers({ endpointOrigin: ['trusted', 'sameTenant'] }, { endpointOrigin: ['trusted'] })).toBe(true);
        expect(matchCovers({ endpointOrigin: ['trusted'] }, { endpointOrigin: ['trusted', 'foreign'] })).toBe(false);
        expect(matchCovers({ endpointOrigin: ['trusted'] }, {})).toBe(false);
        expect(matchCovers({ endpointOrigin: ['trusted', 'sameTenant', 'foreign', 'unknown'] }, {})).toBe(true);
        expect(matchCovers({ endpointOrigin: ['trusted', 'sameTenant', 'foreign'] }, {})).toBe(false);
        expect(matchCovers({ serverKinds: ['mysql-single'] }, { serverKinds: ['mysql-single'], serverName: 'a' })).toBe(
            true,
        );
        expect(matchCovers({ serverName: 'PG-*' }, { serverName: 'pg-*' })).toBe(true);
        expect(matchCovers({ serverName: '**' }, {})).toBe(true);
        // A glob containing another glob is not worked out: never claimed, so never a false "unreachable".
        expect(matchCovers({ serverName: 'pg-*' }, { serverName: 'pg-prod-*' })).toBe(false);
        expect(matchCovers({ tags: { env: '*' } }, { tags: { ENV: 'prod', owner: 'x' } })).toBe(true);
        expect(matchCovers({ tags: { env: 'prod' } }, { tags: { Env: 'prod' } })).toBe(true);
        expect(matchCovers({ tags: { env: 'prod' } }, { tags: { env: '*' } })).toBe(false);
        expect(matchCovers({ tags: { env: 'prod' } }, { tags: { env: 'Prod' } })).toBe(false);
        expect(matchCovers({ tags: { env: 'prod' } }, {})).toBe(false);
    });
});

describe('policySubject', () => {
    const trustedSub = '0b1c2d3e-aaaa-4bbb-8ccc-000000000001';
    const otherSub = '0b1c2d3e-aaaa-4bbb-8ccc-000000000009';
    const mysqlProvider = `/subscriptions/${trustedSub}/resourceGroups/db/providers/Microsoft.DBforMySQL`;
    const peId = (sub: string) =>
        `/subscriptions/${sub}/resourceGroups/rg/providers/Microsoft.Network/privateEndpoints/pe1`;
    const facts = (overrides: Partial<RequestFacts> = {}): RequestFacts => ({
        serverKind: 'mysql-flexible',
        serverId: `${mysqlProvider}/flexibleServers/My-Prod-01`,
        serverLocation: 'westeurope',
        publicNetworkAccess: 'Disabled',
        serverTags: { environment: 'prod' },
        pecName: 'pe1.0000',
        privateEndpointId: peId(trustedSub),
        privateEndpointSubscriptionId: trustedSub,
        privateEndpointTrusted: true,
        requestMessage: 'please',
        approvedPecCount: 0,
        approvedUntrustedPecCount: 0,
        ...overrides,
    });
    const untrusted = {
        privateEndpointId: peId(otherSub),
        privateEndpointSubscriptionId: otherSub,
        privateEndpointTrusted: false,
    };

    const ours = { ourTenantId: '72f988bf-86f1-41af-91ab-2d7cd011db47' };
    const otherTenant = '9a1b2c3d-0000-4000-8000-00000000beef';

    it('takes the kind, the name from the server id, and a copy of the tags', () => {
        const f = facts();
        const s = policySubject(f, ours);
        expect(s).toEqual({
            serverKind: 'mysql-flexible',
            serverName: 'My-Prod-01',
            serverTags: { environment: 'prod' },
            endpointOrigin: 'trusted',
        });
        s.serverTags.environment = 'dev';
        expect(f.serverTags.environment).toBe('prod');
    });

    it('is trusted when the facts say so', () => {
        expect(policySubject(facts(), ours).endpointOrigin).toBe('trusted');
    });

    it("judges an untrusted endpoint by its subscription's home tenant", () => {
        expect(
            policySubject(facts({ ...untrusted, privateEndpointTenantId: ours.ourTenantId.toUpperCase() }), ours)
                .endpointOrigin,
        ).toBe('sameTenant');
        expect(policySubject(facts({ ...untrusted, privateEndpointTenantId: otherTenant }), ours).endpointOrigin).toBe(
            'foreign',
        );
    });

    it('is unknown when the tenant of an untrusted endpoint was not established', () => {
        expect(policySubject(facts(untrusted), ours).endpointOrigin).toBe('unknown');
    });

    it('never counts an unknown endpoint subscription as trusted or as ours, whatever the stored flags say', () => {
        const unknown = { privateEndpointId: 'not-an-id', privateEndpointSubscriptionId: undefined };
        expect(policySubject(facts({ ...unknown, privateEndpointTrusted: true }), ours).endpointOrigin).toBe('unknown');
        expect(
            policySubject(
                facts({ ...unknown, privateEndpointTrusted: false, privateEndpointTenantId: ours.ourTenantId }),
                ours,
            ).endpointOrigin,
        ).toBe('unknown');
        // The subscription id is missing from the facts, but the endpoint id still says which it is.
        expect(
            policySubject(facts({ privateEndpointSubscriptionId: undefined, privateEndpointTrusted: true }), ours)
                .endpointOrigin,
        ).toBe('trusted');
    });

    it('refuses facts whose server id is not a server id, rather than guess a name', () => {
        expect(() => policySubject(facts({ serverId: 'garbage' }), ours)).toThrow(ValidationError);
    });
});

describe('descriptions', () => {
    it('names the rule in what ARM records', () => {
        expect(autoApproveDescription('trusted-auto-approve')).toBe('Auto-approved by policy trusted-auto-approve');
        expect(autoRejectDescription('foreign', 'Ask the platform team.')).toBe(
            'Auto-rejected by policy foreign: Ask the platform team.',
        );
    });
});

describe('bypass rules', () => {
    const subject = (origin: PolicySubject['endpointOrigin']): PolicySubject => ({
        serverKind: 'postgres-flexible',
        serverName: 'pg-prod',
        serverTags: { environment: 'prod' },
        endpointOrigin: origin,
    });

    it('by default revokes a bypass from a foreign tenant and alerts on every other', () => {
        expect(evaluateBypass({ rules: [] }, subject('foreign'))).toMatchObject({
            ruleId: 'bypass-foreign-revoke',
            action: { type: 'revoke' },
        });
        for (const origin of ['trusted', 'sameTenant', 'unknown'] as const) {
            expect(evaluateBypass({ rules: [] }, subject(origin))).toEqual({ action: { type: 'alert' } });
        }
    });

    it('applies the first matching bypass rule, and an empty list alerts on everything', () => {
        const policy = {
            rules: [],
            bypassRules: [
                { id: 'ok', match: { endpointOrigin: ['trusted' as const] }, action: { type: 'accept' as const } },
                {
                    id: 'prod',
                    match: { tags: { environment: 'prod' } },
                    action: { type: 'revoke' as const, text: 'no' },
                },
            ],
        };
        expect(evaluateBypass(policy, subject('trusted')).ruleId).toBe('ok');
        expect(evaluateBypass(policy, subject('unknown'))).toEqual({
            ruleId: 'prod',
            action: { type: 'revoke', text: 'no' },
        });
        expect(evaluateBypass({ rules: [], bypassRules: [] }, subject('foreign'))).toEqual({
            action: { type: 'alert' },
        });
    });

    it('names who kept or revoked in the description ARM records', () => {
        const at = '2026-12-04T10:00:00Z';
        const by = { objectId: 'o', upn: 'alice@contoso.com' };
        expect(armDescription({ action: 'approve', by, text: '', at, bypass: true })).toBe('Kept by alice@contoso.com');
        expect(armDescription({ action: 'approve', by, text: 'CHG-1', at, bypass: true })).toBe(
            'Kept by alice@contoso.com: CHG-1',
        );
        expect(armDescription({ action: 'reject', by, text: 'no', at, bypass: true })).toBe(
            'Revoked by alice@contoso.com: no',
        );
        expect(
            armDescription({
                action: 'reject',
                by: { name: 'policy rule r' },
                text: 'foreign',
                at,
                bypass: true,
                auto: { kind: 'policy', ruleId: 'r' },
            }),
        ).toBe(bypassRevokeDescription('r', 'foreign'));
    });
});

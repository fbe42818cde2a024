import { ConfigError } from '../../src/domain/errors';
import { evaluatePolicy } from '../../src/domain/policy';
import type { PolicySubject } from '../../src/domain/policy';
import {
    PolicyConfigError,
    examplePolicyJson,
    jsonErrorOffset,
    loadPolicy,
    parsePolicy,
} from '../../src/policy/policyConfig';
import { readPolicyFile } from '../../src/config';

/** The message parsePolicy throws for `policy` (an object, serialised, or raw text). */
function errorOf(policy: unknown): string {
    const json = typeof policy === 'string' ? policy : JSON.stringify(policy, null, 4);
    try {
        parsePolicy(json, 'POLICY');
    } catch (err) {
        expect(err).toBeInstanceOf(ConfigError);
        expect(err).toBeInstanceOf(PolicyConfigError);
        return (err as Error).message;
    }
    throw new Error('expected a ConfigError');
}

const approveTrusted = { id: 'trusted', match: { endpointOrigin: ['trusted'] }, action: { type: 'autoApprove' } };
const withRules = (...rules: unknown[]) => ({ rules });

describe('the resourceKind condition', () => {
    const subject = (serverKind: PolicySubject['serverKind']): PolicySubject => ({
        serverKind,
        serverName: 'r-01',
        serverTags: {},
        endpointOrigin: 'trusted',
    });

    it('matches the kinds listed (or the one kind given as a string), and serverKinds still works', () => {
        const policy = parsePolicy(
            JSON.stringify({
                rules: [
                    {
                        id: 'vaults-two',
                        match: { resourceKind: ['key-vault', 'storage-account'] },
                        action: { type: 'requireApprovals', count: 2 },
                    },
                    {
                        id: 'sql-auto',
                        match: { resourceKind: 'sql-server', endpointOrigin: ['trusted'] },
                        action: { type: 'autoApprove' },
                    },
                    {
                        id: 'old-name',
                        match: { serverKinds: ['mysql-single'], endpointOrigin: ['trusted'] },
                        action: { type: 'autoApprove' },
                    },
                ],
            }),
            'POLICY',
        );
        expect(policy.rules[1]!.match.resourceKind).toEqual(['sql-server']);
        expect(evaluatePolicy(policy, subject('key-vault')).ruleId).toBe('vaults-two');
        expect(evaluatePolicy(policy, subject('storage-account')).ruleId).toBe('vaults-two');
        expect(evaluatePolicy(policy, subject('sql-server')).ruleId).toBe('sql-auto');
        expect(evaluatePolicy(policy, subject('mysql-single')).ruleId).toBe('old-name');
        expect(evaluatePolicy(policy, subject('redis')).ruleId).toBeUndefined();
    });

    it('refuses a rule an earlier one pre-empts through either name of the condition', () => {
        const message = (() => {
            try {
                parsePolicy(
                    JSON.stringify({
                        rules: [
                            {
                                id: 'kinds',
                                match: { serverKinds: ['key-vault', 'redis'] },
                                action: { type: 'autoApprove' },
                            },
                            { id: 'vault', match: { resourceKind: ['key-vault'] }, action: { type: 'autoApprove' } },
                        ],
                    }),
                    'POLICY',
                );
            } catch (err) {
                return (err as Error).message;
            }
            return '';
        })();
        expect(message).toMatch(/rule "vault" \(rules\[1\]\)/);
    });
});

describe('the example policy', () => {
    const policy = parsePolicy(examplePolicyJson, 'POLICY');
    const subject = (overrides: Partial<PolicySubject>): PolicySubject => ({
        serverKind: 'postgres-flexible',
        serverName: 'pg-01',
        serverTags: {},
        endpointOrigin: 'sameTenant',
        ...overrides,
    });

    it('parses to its two rules', () => {
        expect(policy).toEqual({
            rules: [
                {
                    id: 'prod-two-approvers',
                    description: 'Production servers need two distinct approvers, whoever asks',
                    match: { tags: { environment: 'prod' } },
                    action: { type: 'requireApprovals', count: 2 },
                },
                {
                    id: 'trusted-auto-approve',
                    description: 'Endpoints in our trusted subscriptions are approved without asking',
                    match: { endpointOrigin: ['trusted'] },
                    action: { type: 'autoApprove' },
                },
            ],
        });
    });

    it('gates prod servers with two approvers, even from a trusted subscription', () => {
        const prod = { serverTags: { Environment: 'prod' } };
        expect(evaluatePolicy(policy, subject({ ...prod, endpointOrigin: 'trusted' }))).toEqual({
            ruleId: 'prod-two-approvers',
            action: { type: 'requireApprovals', count: 2 },
        });
        expect(evaluatePolicy(policy, subject({ ...prod, endpointOrigin: 'foreign' })).ruleId).toBe(
            'prod-two-approvers',
        );
    });

    it('auto-approves the trusted subscriptions, and leaves the rest to one approver', () => {
        expect(evaluatePolicy(policy, subject({ endpointOrigin: 'trusted' }))).toEqual({
            ruleId: 'trusted-auto-approve',
            action: { type: 'autoApprove' },
        });
        expect(evaluatePolicy(policy, subject({ endpointOrigin: 'sameTenant' }))).toEqual({
            action: { type: 'requireApprovals', count: 1 },
        });
        expect(evaluatePolicy(policy, subject({ endpointOrigin: 'foreign' })).ruleId).toBeUndefined();
    });
});

describe('parsePolicy accepts', () => {
    it('every condition and action, trimming the reject text', () => {
        const policy = parsePolicy(
            JSON.stringify(
                withRules(
                    {
                        id: 'foreign.reject_1',
                        match: { endpointOrigin: ['foreign'] },
                        action: { type: 'autoReject', text: '  Ask the platform team for a trusted subscription.  ' },
                    },
                    {
                        id: 'mysql-sandbox',
                        match: {
                            endpointOrigin: ['sameTenant', 'trusted'],
                            serverKinds: ['mysql-single', 'mysql-flexible'],
                            serverName: 'my-sandbox-??-*',
                            tags: { owner: '*', 'cost center': '42' },
                        },
                        action: { type: 'autoApprove' },
                    },
                    { id: 'everything-else', match: {}, action: { type: 'requireApprovals', count: 5 } },
                ),
            ),
            'POLICY',
        );
        expect(policy.rules.map((r) => r.action)).toEqual([
            { type: 'autoReject', text: 'Ask the platform team for a trusted subscription.' },
            { type: 'autoApprove' },
            { type: 'requireApprovals', count: 5 },
        ]);
        expect(policy.rules[1]!.match.serverKinds).toEqual(['mysql-single', 'mysql-flexible']);
    });

    it('an empty list of rules, and a byte-order mark', () => {
        expect(parsePolicy('\uFEFF{ "rules": [] }', 'POLICY')).toEqual({ rules: [] });
    });
});

describe('parsePolicy refuses, naming the rule and the field', () => {
    it('text that is not JSON, with its line and column', () => {
        expect(errorOf('{ "rules": [ }')).toMatch(/^POLICY: not valid JSON at line 1, column 14: /);
        expect(errorOf('{\n    "rules": [],\n}')).toMatch(/^POLICY: not valid JSON at line 3, column 1: /);
        expect(errorOf('{ "rules": [')).toMatch(/^POLICY: not valid JSON at line 1, column 13: Unexpected end/);
        // Node 20 gives no position for an unexpected token; it is found anyway. A comment gets a hint.
        expect(errorOf('{\n    // prod first\n    "rules": []\n}')).toMatch(
            /^POLICY: not valid JSON at line 2, column 5: .*\(JSON has no comments: use "description"\)$/,
        );
        expect(errorOf('{ "rules": [ x ] }')).toMatch(
            /^POLICY: not valid JSON at line 1, column 14: Unexpected token 'x'$/,
        );
    });

    it('a document that is not an object with rules, or has other keys', () => {
        expect(errorOf('[]')).toMatch(/^POLICY: expected a JSON object with a "rules" list/);
        expect(errorOf({})).toMatch(/^POLICY: rules: required: the list of rules/);
        expect(errorOf({ rules: {} })).toMatch(/^POLICY: rules: expected a list of rules, got \{\}/);
        expect(errorOf({ rule: [], rules: [] })).toBe('POLICY: unknown key "rule" (expected: rules, bypassRules)');
    });

    it('an unknown key, such as a typo, in a rule, a match or an action', () => {
        expect(errorOf(withRules({ ...approveTrusted, match: { serverKind: ['mysql-single'] } }))).toBe(
            'POLICY: rule "trusted" (rules[0]): match: unknown key "serverKind" (expected: endpointOrigin, resourceKind, serverKinds, serverName, tags)',
        );
        expect(errorOf(withRules({ ...approveTrusted, action: { type: 'autoApprove', text: 'x' } }))).toBe(
            'POLICY: rule "trusted" (rules[0]): action: unknown key "text" (expected: type)',
        );
        expect(errorOf(withRules({ ...approveTrusted, comment: 'x' }))).toBe(
            'POLICY: rule "trusted" (rules[0]): unknown key "comment" (expected: id, description, match, action)',
        );
    });

    it('a missing or malformed id, naming the rule by index', () => {
        expect(errorOf(withRules(approveTrusted, { match: {}, action: { type: 'autoApprove' } }))).toMatch(
            /^POLICY: rules\[1\]: id: required: a unique rule id/m,
        );
        expect(errorOf(withRules({ ...approveTrusted, id: 'has space' }))).toBe(
            'POLICY: rule "has space" (rules[0]): id: expected 1 to 64 letters, digits, ".", "_" or "-"',
        );
        expect(errorOf(withRules({ ...approveTrusted, id: 'x'.repeat(65) }))).toMatch(/id: expected 1 to 64 letters/);
        expect(errorOf(withRules({ ...approveTrusted, id: 7 }))).toMatch(
            /^POLICY: rules\[0\]: id: expected .*, got 7$/,
        );
    });

    it('a duplicate id, ignoring case', () => {
        const other = { id: 'Trusted', match: { serverName: 'pg-*' }, action: { type: 'requireApprovals', count: 2 } };
        expect(errorOf(withRules(approveTrusted, other))).toBe(
            'POLICY: rule "Trusted" (rules[1]): id: the same id as rules[0] (ids are compared ignoring case)',
        );
    });

    it('an approval count that is not 1 to 5', () => {
        const rule = (count: unknown) => ({
            id: 'prod-two',
            match: { tags: { environment: 'prod' } },
            action: { type: 'requireApprovals', count },
        });
        expect(errorOf(withRules(approveTrusted, rule(6)))).toBe(
            'POLICY: rule "prod-two" (rules[1]): action.count: expected 1 to 5 approvals (a whole number of distinct approvers), got 6',
        );
        expect(errorOf(withRules(rule(0)))).toMatch(/rules\[0\]\): action\.count: expected 1 to 5 approvals.*got 0$/);
        expect(errorOf(withRules(rule(1.5)))).toMatch(/action\.count: expected 1 to 5 approvals.*got 1\.5$/);
        expect(errorOf(withRules(rule('2')))).toMatch(/action\.count: expected 1 to 5 approvals.*got "2"$/);
        expect(errorOf(withRules(rule(undefined)))).toMatch(/action\.count: required: 1 to 5 approvals/);
    });

    it('an empty, blank, too long or control-laden reject text', () => {
        const rule = (text: unknown) => ({
            id: 'no-foreign',
            match: { endpointOrigin: ['foreign'] },
            action: { type: 'autoReject', text },
        });
        expect(errorOf(withRules(rule('')))).toBe(
            'POLICY: rule "no-foreign" (rules[0]): action.text: expected a text of 1 to 500 characters: it tells the requester why',
        );
        expect(errorOf(withRules(rule('   ')))).toMatch(/action\.text: expected a text of 1 to 500 characters/);
        expect(errorOf(withRules(rule(undefined)))).toMatch(/action\.text: required: the text shown to the requester/);
        expect(errorOf(withRules(rule('x'.repeat(501))))).toMatch(
            /action\.text: expected at most 500 characters, got 501/,
        );
        expect(errorOf(withRules(rule('no\nway')))).toMatch(/action\.text: expected no control, line-break/);
        expect(errorOf(withRules(rule('evil\u202etxt')))).toMatch(/action\.text: expected no control/);
    });

    it('an unknown action type, or an action that is not an object', () => {
        expect(errorOf(withRules({ ...approveTrusted, action: { type: 'approve' } }))).toBe(
            'POLICY: rule "trusted" (rules[0]): action.type: expected "autoApprove", "autoReject" (with "text") or "requireApprovals" (with "count"), got "approve"',
        );
        expect(errorOf(withRules({ ...approveTrusted, action: { requireApprovals: 2 } }))).toMatch(
            /rules\[0\]\): action\.type: required: "autoApprove"/,
        );
        expect(errorOf(withRules({ ...approveTrusted, action: 'autoApprove' }))).toMatch(
            /rules\[0\]\): action: expected an action object, such as \{"type": "autoApprove"\}, got "autoApprove"$/,
        );
        expect(errorOf(withRules({ id: 'a', match: {} }))).toMatch(
            /rule "a" \(rules\[0\]\): action: required: an action/,
        );
    });

    it('a server kind, endpoint origin, name pattern or tag that cannot be', () => {
        expect(
            errorOf(
                withRules({
                    ...approveTrusted,
                    match: { endpointOrigin: ['trusted'], serverKinds: ['mysql-single', 'sql'] },
                }),
            ),
        ).toBe(
            'POLICY: rule "trusted" (rules[0]): match.serverKinds[1]: expected one of "postgres-single", "mysql-single", "postgres-flexible", "mysql-flexible", "sql-server", "storage-account", "key-vault", "cosmos-db", "app-service", "container-registry", "ai-services", "event-hubs", "service-bus", "redis", got "sql"',
        );
        expect(errorOf(withRules({ ...approveTrusted, match: { resourceKind: ['key-vault', 'keyvault'] } }))).toMatch(
            /^POLICY: rule "trusted" \(rules\[0\]\): match\.resourceKind\[1\]: expected one of "postgres-single", .*"redis", got "keyvault"$/,
        );
        expect(errorOf(withRules({ ...approveTrusted, match: { endpointOrigin: 'trusted' } }))).toMatch(
            /match\.endpointOrigin: expected a list of endpoint origins .*, got "trusted"$/,
        );
        expect(errorOf(withRules({ ...approveTrusted, match: { endpointOrigin: ['sametenant'] } }))).toMatch(
            /match\.endpointOrigin\[0\]: expected one of "trusted", "sameTenant", "foreign", "unknown", got "sametenant"/,
        );
        expect(errorOf(withRules({ ...approveTrusted, match: { endpointOrigin: [] } }))).toMatch(
            /match\.endpointOrigin: expected at least one of/,
        );
        expect(
            errorOf(withRules({ ...approveTrusted, match: { endpointOrigin: ['trusted'], serverName: 'pg-.*' } })),
        ).toMatch(/rule "trusted" \(rules\[0\]\): match\.serverName: expected a server name pattern/);
        const tags = (t: unknown) =>
            errorOf(withRules({ ...approveTrusted, match: { endpointOrigin: ['trusted'], tags: t } }));
        expect(tags({})).toMatch(/match\.tags: expected at least one tag/);
        expect(tags({ environment: '' })).toMatch(/match\.tags\.environment: expected a value of 1 to 256 characters/);
        expect(tags({ environment: 1 })).toMatch(
            /match\.tags\.environment: expected a text value, or "\*" for any value, got 1/,
        );
        expect(tags({ '': 'x' })).toMatch(/match\.tags: expected tag names of 1 to 512 characters, got ""/);
        expect(tags({ 'cost center': '' })).toMatch(/match\.tags\["cost center"\]: expected a value/);
        expect(tags({ env: 'prod', Env: 'dev' })).toMatch(/match\.tags\.Env: the same tag as "env"/);
    });

    it('an autoApprove rule that could approve a foreign endpoint', () => {
        expect(
            errorOf(withRules({ id: 'dev', match: { tags: { environment: 'dev' } }, action: { type: 'autoApprove' } })),
        ).toMatch(
            /^POLICY: rule "dev" \(rules\[0\]\): match\.endpointOrigin: an autoApprove rule must list its origins without "foreign"/,
        );
        expect(errorOf(withRules({ ...approveTrusted, match: { endpointOrigin: ['trusted', 'foreign'] } }))).toMatch(
            /rule "trusted" \(rules\[0\]\): match\.endpointOrigin: an autoApprove rule/,
        );
    });

    it('a rule after a catch-all, and a rule an earlier one always pre-empts', () => {
        const catchAll = { id: 'all', match: {}, action: { type: 'requireApprovals', count: 1 } };
        expect(errorOf(withRules(catchAll, approveTrusted))).toBe(
            'POLICY: rule "trusted" (rules[1]): unreachable: it comes after rule "all" (rules[0]), whose empty match is a catch-all; a catch-all must be the last rule',
        );
        const prod = {
            id: 'prod',
            match: { tags: { environment: 'prod' } },
            action: { type: 'requireApprovals', count: 2 },
        };
        const prodPg = {
            id: 'prod-pg',
            match: { serverKinds: ['postgres-flexible'], tags: { Environment: 'prod' } },
            action: { type: 'requireApprovals', count: 3 },
        };
        expect(errorOf(withRules(prod, approveTrusted, prodPg))).toBe(
            'POLICY: rule "prod-pg" (rules[2]): unreachable: rule "prod" (rules[0]) comes first and matches every request this rule matches',
        );
        // The other order is fine: the narrower rule first.
        expect(parsePolicy(JSON.stringify(withRules(prodPg, prod, catchAll)), 'POLICY').rules).toHaveLength(3);
    });

    it('every problem at once, one per line', () => {
        const message = errorOf(
            withRules(
                { id: 'a', match: { serverKind: [] }, action: { type: 'requireApprovals', count: 9 } },
                { id: 'b', match: {}, action: { type: 'autoReject', text: '' } },
            ),
        );
        expect(message.split('\n')).toEqual([
            expect.stringMatching(/^POLICY: rule "a" \(rules\[0\]\): match: unknown key "serverKind"/),
            expect.stringMatching(/^POLICY: rule "a" \(rules\[0\]\): action\.count: expected 1 to 5/),
            expect.stringMatching(/^POLICY: rule "b" \(rules\[1\]\): action\.text: expected a text of 1 to 500/),
        ]);
    });

    it('with messages that carry no raw control characters from the policy', () => {
        const message = errorOf(withRules({ ...approveTrusted, id: 'bad\u001b[31mid' }));
        expect(message).not.toContain(String.fromCharCode(27));
        expect(message).toContain('rule "bad\\u001b[31mid" (rules[0]): id: expected');
    });
});

describe('loadPolicy', () => {
    const noFile = () => {
        throw new Error('must not be read');
    };

    it('is undefined when neither setting is set (one manual approval for everything)', () => {
        expect(loadPolicy({}, noFile)).toBeUndefined();
        expect(loadPolicy({ POLICY: ' ', POLICY_FILE: '' }, noFile)).toBeUndefined();
    });

    it('reads POLICY as the JSON itself', () => {
        expect(loadPolicy({ POLICY: examplePolicyJson }, noFile)?.rules).toHaveLength(2);
    });

    it('reads POLICY_FILE as a path, naming the file in messages', () => {
        const files: Record<string, string> = { '/policy.json': examplePolicyJson, '/bad.json': '{"rules": [{}]}' };
        const read = (path: string) => {
            const text = files[path];
            if (text === undefined) {
                throw new Error(`ENOENT: no such file or directory, open '${path}'`);
            }
            return text;
        };
        expect(loadPolicy({ POLICY_FILE: '/policy.json' }, read)?.rules).toHaveLength(2);
        expect(() => loadPolicy({ POLICY_FILE: '/bad.json' }, read)).toThrow(
            /^POLICY_FILE \(\/bad\.json\): rules\[0\]: id: required/,
        );
    });

    it('refuses both settings at once, naming both', () => {
        expect(() => loadPolicy({ POLICY: examplePolicyJson, POLICY_FILE: '/policy.json' }, noFile)).toThrow(
            /^POLICY, POLICY_FILE: both are set; set one/,
        );
    });

    it('refuses a file it cannot read, naming the setting and the path', () => {
        let caught: unknown;
        try {
            loadPolicy({ POLICY_FILE: '/nowhere/policy.json' }, readPolicyFile);
        } catch (err) {
            caught = err;
        }
        expect(caught).toBeInstanceOf(ConfigError);
        expect((caught as PolicyConfigError).problems).toEqual([
            expect.stringMatching(/^POLICY_FILE: cannot read "\/nowhere\/policy\.json": ENOENT/),
        ]);
    });
});

describe('jsonErrorOffset', () => {
    it.each([
        ['{}', undefined],
        ['{"a": [1, -2.5e3, true, false, null, "x\\u00e9\\n"]}', undefined],
        ['', 0],
        ['{"a": 01}', 7],
        ['{"a": tru}', 9],
        ['{"a": "x\u0001"}', 8],
        ['{"a": "\\q"}', 8],
        ['[1,]', 3],
        ['{} x', 3],
    ])('%j fails at %s', (text, offset) => {
        expect(jsonErrorOffset(text)).toBe(offset);
    });
});

describe('origins and bypass rules', () => {
    const parse = (doc: unknown) => parsePolicy(JSON.stringify(doc), 'POLICY');
    const refusal = (doc: unknown) => {
        try {
            parse(doc);
        } catch (err) {
            return (err as Error).message;
        }
        throw new Error('expected a refusal');
    };

    it('refuses an autoApprove rule that covers an unknown origin', () => {
        expect(
            refusal({
                rules: [
                    { id: 'u', match: { endpointOrigin: ['sameTenant', 'unknown'] }, action: { type: 'autoApprove' } },
                ],
            }),
        ).toMatch(
            /rule "u" \(rules\[0\]\): match\.endpointOrigin: an autoApprove rule must list its origins without "foreign" or "unknown"/,
        );
    });

    it('reads bypass rules with the same match fields and their own actions', () => {
        const policy = parse({
            rules: [],
            bypassRules: [
                {
                    id: 'automation',
                    match: { endpointOrigin: ['trusted'], tags: { managedBy: 'terraform' } },
                    action: { type: 'accept' },
                },
                {
                    id: 'foreign',
                    match: { endpointOrigin: ['foreign', 'unknown'] },
                    action: { type: 'revoke', text: 'Not ours.' },
                },
                { id: 'rest', match: {}, action: { type: 'alert' } },
            ],
        });
        expect(policy.bypassRules?.map((r) => r.action.type)).toEqual(['accept', 'revoke', 'alert']);
        expect(parse({ rules: [] }).bypassRules).toBeUndefined();
    });

    it('names each problem of a bypass rule, and ids must be unique across both lists', () => {
        const message = refusal({
            rules: [{ id: 'same', match: {}, action: { type: 'requireApprovals', count: 1 } }],
            bypassRules: [
                { id: 'Same', match: {}, action: { type: 'alert' } },
                { id: 'x', match: { endpointOrigin: ['foreign'] }, action: { type: 'revoke' } },
                { id: 'y', match: {}, action: { type: 'autoApprove' } },
            ],
        });
        expect(message).toContain('rule "Same" (bypassRules[0]): id: the same id as rules[0]');
        expect(message).toMatch(/rule "x" \(bypassRules\[1\]\): action\.text: required/);
        expect(message).toMatch(
            /rule "y" \(bypassRules\[2\]\): action\.type: expected "alert", "revoke" \(with "text"\) or "accept", got "autoApprove"/,
        );
        expect(
            refusal({
                rules: [],
                bypassRules: [
                    { id: 'all', match: {}, action: { type: 'alert' } },
                    { id: 'late', match: { endpointOrigin: ['foreign'] }, action: { type: 'accept' } },
                ],
            }),
        ).toMatch(/rule "late" \(bypassRules\[1\]\): unreachable: it comes after rule "all" \(bypassRules\[0\]\)/);
        expect(refusal({ rules: [], bypassRules: {} })).toMatch(/bypassRules: expected a list of bypass rules/);
    });
});

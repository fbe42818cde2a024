import * as z from 'zod';
import { RESPONSE_TEXT_MAX_LENGTH, stripInvisible } from '../domain/card';
import { ConfigError, ensureErrorType } from '../domain/errors';
import { serverKinds } from '../domain/ids';
import { endpointOrigins, isCatchAll, matchCovers, maxRequiredApprovals } from '../domain/policy';
import type { Policy, PolicyMatch, PolicyRule } from '../domain/policy';

/**
 * The policy's file format, next to the domain's policy model (src/domain/policy.ts, which stays free of zod): reads
 * and validates the approval policy (the POLICY or POLICY_FILE setting) once, at start-up. A policy decides without a
 * person, so a mistake in it is worse than a missing setting: every problem stops the app, and each message
 * names the setting, the rule (by id, or by index when it has none) and the field, like config.ts's "SETTING: message".
 * Objects are strict, so a typo such as "serverKind" is refused instead of silently matching everything.
 */

/** The README shows this same text; a test parses it, so the documented example can never be invalid. */
export const examplePolicyJson = `{
    "rules": [
        {
            "id": "prod-two-approvers",
            "description": "Production servers need two distinct approvers, whoever asks",
            "match": { "tags": { "environment": "prod" } },
            "action": { "type": "requireApprovals", "count": 2 }
        },
        {
            "id": "trusted-auto-approve",
            "description": "Endpoints in our trusted subscriptions are approved without asking",
            "match": { "endpointOrigin": ["trusted"] },
            "action": { "type": "autoApprove" }
        }
    ]
}
`;

/** A ConfigError that also lists its problems, each "SETTING: …", so a caller can merge them with its own. */
export class PolicyConfigError extends ConfigError {
    constructor(readonly problems: readonly string[]) {
        super(problems.join('\n'));
    }
}

const ruleIdPattern = /^[A-Za-z0-9._-]{1,64}$/;
const ruleIdRule = '1 to 64 letters, digits, ".", "_" or "-"';
// Server names are letters, digits and hyphens; refusing anything else catches a regex ("prod-.*") written as a glob.
const serverNamePattern = /^[A-Za-z0-9*?-]{1,128}$/;
// ARM's own limits: a longer tag name or value can never be on a server, so a condition with one could never match.
const tagNameMaxLength = 512;
const tagValueMaxLength = 256;
const descriptionMaxLength = 500;

const ruleKeys = ['id', 'description', 'match', 'action'];
const matchKeys = ['endpointOrigin', 'resourceKind', 'serverKinds', 'serverName', 'tags'];
const actionTypes = '"autoApprove", "autoReject" (with "text") or "requireApprovals" (with "count")';

interface IssueInfo {
    code?: string;
    input?: unknown;
    keys?: string[];
}

/** A value from the policy, shown in a message: quoted, escaped (no control character reaches a log) and capped. */
function shown(value: unknown): string {
    if (value === undefined) {
        return 'nothing';
    }
    const text = JSON.stringify(value) ?? String(value);
    return text.length > 60 ? `${text.slice(0, 60)}…` : text;
}

const quoted = (values: readonly string[]) => values.map((v) => `"${v}"`).join(', ');

/** The message of a strict object: names unknown keys and lists the right ones; otherwise says what is expected. */
function objectError(expected: string, keys: readonly string[]) {
    return (iss: IssueInfo) => {
        if (iss.code === 'unrecognized_keys') {
            const names = (iss.keys ?? []).map((k) => shown(k)).join(', ');
            return `unknown key${(iss.keys ?? []).length === 1 ? '' : 's'} ${names} (expected: ${keys.join(', ')})`;
        }
        return iss.input === undefined ? `required: ${expected}` : `expected ${expected}, got ${shown(iss.input)}`;
    };
}

function valueList<const T extends readonly [string, ...string[]]>(values: T, what: string) {
    return z
        .array(
            z.enum(values, { error: (iss: IssueInfo) => `expected one of ${quoted(values)}, got ${shown(iss.input)}` }),
            {
                error: (iss: IssueInfo) => `expected a list of ${what} (${quoted(values)}), got ${shown(iss.input)}`,
            },
        )
        .min(1, `expected at least one of ${quoted(values)} (leave the condition out to match any ${what})`)
        .optional();
}

const tags = z
    .record(
        z.string(),
        z.string({ error: (iss: IssueInfo) => `expected a text value, or "*" for any value, got ${shown(iss.input)}` }),
        { error: (iss: IssueInfo) => `expected an object of tag names and values, got ${shown(iss.input)}` },
    )
    .superRefine((value, ctx) => {
        const entries = Object.entries(value);
        if (entries.length === 0) {
            ctx.addIssue({ code: 'custom', message: 'expected at least one tag (leave tags out to match any tags)' });
        }
        const seen = new Map<string, string>();
        for (const [key, tagValue] of entries) {
            if (key.length === 0 || key.length > tagNameMaxLength) {
                ctx.addIssue({
                    code: 'custom',
                    message: `expected tag names of 1 to ${tagNameMaxLength} characters, got ${shown(key)}`,
                });
                continue;
            }
            // ARM tag names are case-insensitive: "Environment" and "environment" are one tag with two conditions.
            const other = seen.get(key.toLowerCase());
            if (other !== undefined) {
                ctx.addIssue({
                    code: 'custom',
                    path: [key],
                    message: `the same tag as ${shown(other)} (tag names are compared ignoring case)`,
                });
            }
            seen.set(key.toLowerCase(), key);
            if (tagValue.length === 0 || tagValue.length > tagValueMaxLength) {
                ctx.addIssue({
                    code: 'custom',
                    path: [key],
                    message: `expected a value of 1 to ${tagValueMaxLength} characters, or "*" for any value`,
                });
            }
        }
    })
    .optional();

const match = z.strictObject(
    {
        endpointOrigin: valueList(endpointOrigins, 'endpoint origins'),
        // A single kind may be written as a string: "resourceKind": "key-vault".
        resourceKind: z.preprocess(
            (value) => (typeof value === 'string' ? [value] : value),
            valueList(serverKinds, 'resource kinds'),
        ),
        serverKinds: valueList(serverKinds, 'server kinds'),
        serverName: z
            .string({ error: (iss: IssueInfo) => `expected a name pattern, got ${shown(iss.input)}` })
            .regex(
                serverNamePattern,
                'expected a server name pattern of 1 to 128 letters, digits and "-", ' +
                    'with "*" (any run) and "?" (one character)',
            )
            .optional(),
        tags,
    },
    { error: objectError('an object of conditions ({} matches everything)', matchKeys) },
);

const rejectText = z
    .string({
        error: (iss: IssueInfo) =>
            iss.input === undefined
                ? `required: the text shown to the requester (1 to ${RESPONSE_TEXT_MAX_LENGTH} characters)`
                : `expected a text, got ${shown(iss.input)}`,
    })
    .superRefine((text, ctx) => {
        // The same characters the card strips from a person's text; refused here because the author can fix them.
        if (stripInvisible(text) !== text) {
            ctx.addIssue({ code: 'custom', message: 'expected no control, line-break, tab or invisible characters' });
        }
        const length = text.trim().length;
        if (length === 0) {
            ctx.addIssue({
                code: 'custom',
                message: `expected a text of 1 to ${RESPONSE_TEXT_MAX_LENGTH} characters: it tells the requester why`,
            });
        } else if (length > RESPONSE_TEXT_MAX_LENGTH) {
            ctx.addIssue({
                code: 'custom',
                message: `expected at most ${RESPONSE_TEXT_MAX_LENGTH} characters, got ${length}`,
            });
        }
    })
    .transform((text) => text.trim());

const countRule = `1 to ${maxRequiredApprovals} approvals (a whole number of distinct approvers)`;
const approvalCount = z
    .number({
        error: (iss: IssueInfo) =>
            iss.input === undefined ? `required: ${countRule}` : `expected ${countRule}, got ${shown(iss.input)}`,
    })
    .refine((n) => Number.isInteger(n) && n >= 1 && n <= maxRequiredApprovals, {
        error: (iss: IssueInfo) => `expected ${countRule}, got ${shown(iss.input)}`,
    });

const action = z.discriminatedUnion(
    'type',
    [
        z.strictObject({ type: z.literal('autoApprove') }, { error: objectError('{"type": "autoApprove"}', ['type']) }),
        z.strictObject(
            { type: z.literal('autoReject'), text: rejectText },
            { error: objectError('{"type": "autoReject", "text": "…"}', ['type', 'text']) },
        ),
        z.strictObject(
            { type: z.literal('requireApprovals'), count: approvalCount },
            { error: objectError('{"type": "requireApprovals", "count": 2}', ['type', 'count']) },
        ),
    ],
    {
        error: (iss: IssueInfo) => {
            if (iss.code === 'invalid_union') {
                const type = (iss.input as { type?: unknown } | undefined)?.type;
                return type === undefined ? `required: ${actionTypes}` : `expected ${actionTypes}, got ${shown(type)}`;
            }
            return iss.input === undefined
                ? `required: an action, such as {"type": "autoApprove"}`
                : `expected an action object, such as {"type": "autoApprove"}, got ${shown(iss.input)}`;
        },
    },
);

const rule = z.strictObject(
    {
        id: z
            .string({
                error: (iss: IssueInfo) =>
                    iss.input === undefined
                        ? `required: a unique rule id (${ruleIdRule})`
                        : `expected ${ruleIdRule}, got ${shown(iss.input)}`,
            })
            .regex(ruleIdPattern, `expected ${ruleIdRule}`),
        description: z
            .string({ error: (iss: IssueInfo) => `expected a text, got ${shown(iss.input)}` })
            .max(descriptionMaxLength, `expected at most ${descriptionMaxLength} characters`)
            .optional(),
        match,
        action,
    },
    { error: objectError('a rule object with "id", "match" and "action"', ruleKeys) },
);

const bypassActionNames = '"alert", "revoke" (with "text") or "accept"';
const bypassAction = z.discriminatedUnion(
    'type',
    [
        z.strictObject({ type: z.literal('alert') }, { error: objectError('{"type": "alert"}', ['type']) }),
        z.strictObject(
            { type: z.literal('revoke'), text: rejectText },
            { error: objectError('{"type": "revoke", "text": "…"}', ['type', 'text']) },
        ),
        z.strictObject({ type: z.literal('accept') }, { error: objectError('{"type": "accept"}', ['type']) }),
    ],
    {
        error: (iss: IssueInfo) => {
            if (iss.code === 'invalid_union') {
                const type = (iss.input as { type?: unknown } | undefined)?.type;
                return type === undefined
                    ? `required: ${bypassActionNames}`
                    : `expected ${bypassActionNames}, got ${shown(type)}`;
            }
            return iss.input === undefined
                ? `required: an action, such as {"type": "alert"}`
                : `expected an action object, such as {"type": "alert"}, got ${shown(iss.input)}`;
        },
    },
);

/** A rule for connections approved without the gate: the same match, its own actions. */
const bypassRule = z.strictObject(
    {
        id: rule.shape.id,
        description: rule.shape.description,
        match,
        action: bypassAction,
    },
    { error: objectError('a bypass rule object with "id", "match" and "action"', ruleKeys) },
);

/** `match.tags.environment`, `match.serverKinds[1]`, `match.tags["cost center"]`. */
function fieldOf(path: readonly PropertyKey[]): string {
    let field = '';
    for (const part of path) {
        if (typeof part === 'number') {
            field += `[${part}]`;
        } else if (typeof part === 'string' && /^[A-Za-z_$][A-Za-z0-9_$]*$/.test(part)) {
            field += field ? `.${part}` : part;
        } else {
            field += `[${shown(String(part))}]`;
        }
    }
    return field;
}

function ruleLabel(raw: unknown, index: number, list = 'rules'): string {
    const id = (raw as { id?: unknown } | null | undefined)?.id;
    return typeof id === 'string' && id.length > 0 ? `rule ${shown(id)} (${list}[${index}])` : `${list}[${index}]`;
}

/**
 * Parses and validates a policy. `source` names where it came from and starts every message ("POLICY", or
 * "POLICY_FILE (path)"). Throws PolicyConfigError (a ConfigError) listing every problem found.
 */
export function parsePolicy(json: string, source: string): Policy {
    const problems: string[] = [];
    const fail = (message: string) => new PolicyConfigError([`${source}: ${message}`]);

    const document = parseJson(json, fail);
    if (typeof document !== 'object' || document === null || Array.isArray(document)) {
        throw fail(`expected a JSON object with a "rules" list, like {"rules": []}, got ${shown(document)}`);
    }
    const unknown = Object.keys(document).filter((key) => key !== 'rules' && key !== 'bypassRules');
    if (unknown.length > 0) {
        problems.push(
            `unknown key${unknown.length === 1 ? '' : 's'} ${unknown.map((k) => shown(k)).join(', ')} ` +
                '(expected: rules, bypassRules)',
        );
    }
    const rawRules: unknown = (document as { rules?: unknown }).rules;
    if (!Array.isArray(rawRules)) {
        problems.push(
            rawRules === undefined
                ? 'rules: required: the list of rules ([] for the default, one manual approval for every request)'
                : `rules: expected a list of rules, got ${shown(rawRules)}`,
        );
        throw new PolicyConfigError(problems.map((p) => `${source}: ${p}`));
    }
    const rawBypass: unknown = (document as { bypassRules?: unknown }).bypassRules;
    if (rawBypass !== undefined && !Array.isArray(rawBypass)) {
        problems.push(`bypassRules: expected a list of bypass rules, got ${shown(rawBypass)}`);
    }

    // The audit names rules by id, across both lists; "Prod" and "prod" would read as one rule there.
    const firstWithId = new Map<string, string>();
    const rules = parseRuleList(rawRules, 'rules', rule, problems, firstWithId, autoApproveProblem);
    const bypassRules = Array.isArray(rawBypass)
        ? parseRuleList(rawBypass, 'bypassRules', bypassRule, problems, firstWithId, () => undefined)
        : undefined;

    if (problems.length > 0) {
        throw new PolicyConfigError(problems.map((p) => `${source}: ${p}`));
    }
    return { rules, ...(bypassRules ? { bypassRules } : {}) };
}

/**
 * One list of rules, each alone, so every message carries its rule's label even when the rest of the rule is wrong;
 * then, among the rules that validated, any that an earlier one always pre-empts (the first match wins, so such a
 * rule is dead text that its author believes is in force).
 */
function parseRuleList<T extends { id: string; match: PolicyMatch }>(
    rawRules: unknown[],
    list: string,
    schema: z.ZodType<T>,
    problems: string[],
    firstWithId: Map<string, string>,
    extraProblem: (value: T) => string | undefined,
): T[] {
    const rules: { rule: T; index: number }[] = [];
    rawRules.forEach((raw: unknown, index) => {
        const label = ruleLabel(raw, index, list);
        const parsed = schema.safeParse(raw);
        if (!parsed.success) {
            for (const issue of parsed.error.issues) {
                const field = fieldOf(issue.path);
                problems.push(field ? `${label}: ${field}: ${issue.message}` : `${label}: ${issue.message}`);
            }
        }
        const id = (raw as { id?: unknown } | null | undefined)?.id;
        if (typeof id === 'string' && ruleIdPattern.test(id)) {
            const first = firstWithId.get(id.toLowerCase());
            if (first === undefined) {
                firstWithId.set(id.toLowerCase(), `${list}[${index}]`);
            } else {
                problems.push(`${label}: id: the same id as ${first} (ids are compared ignoring case)`);
            }
        }
        if (parsed.success) {
            const problem = extraProblem(parsed.data);
            if (problem) {
                problems.push(`${label}: ${problem}`);
            }
            rules.push({ rule: parsed.data, index });
        }
    });
    for (const [position, later] of rules.entries()) {
        const earlier = rules
            .slice(0, position)
            .find((e) => isCatchAll(e.rule.match) || matchCovers(e.rule.match, later.rule.match));
        if (earlier) {
            const label = ruleLabel(later.rule, later.index, list);
            const by = ruleLabel(earlier.rule, earlier.index, list);
            problems.push(
                isCatchAll(earlier.rule.match)
                    ? `${label}: unreachable: it comes after ${by}, whose empty match is a catch-all; ` +
                          'a catch-all must be the last rule'
                    : `${label}: unreachable: ${by} comes first and matches every request this rule matches`,
            );
        }
    }
    return rules.map((r) => r.rule);
}

/**
 * Auto-approving an endpoint from another tenant, or one whose origin is unknown, without a person is the exfiltration
 * path this gate exists to close. An autoApprove rule must therefore say which origins it covers, and not "foreign";
 * such endpoints go through a person, or get rejected, by rule or by the default.
 */
function autoApproveProblem(value: PolicyRule): string | undefined {
    if (value.action.type !== 'autoApprove') {
        return undefined;
    }
    const origins = value.match.endpointOrigin;
    if (origins === undefined || origins.includes('foreign') || origins.includes('unknown')) {
        return (
            'match.endpointOrigin: an autoApprove rule must list its origins without "foreign" or "unknown" ' +
            '(for example ["trusted"]): an endpoint from another tenant, or from a subscription whose tenant ' +
            'could not be established, always needs a person'
        );
    }
    return undefined;
}

/**
 * JSON.parse, with a failure turned into "not valid JSON at line L, column C: reason". Node 20 leaves the position out
 * of some messages ("Unexpected token '/'…", a comment), so it is then found by `jsonErrorOffset`.
 */
function parseJson(json: string, fail: (message: string) => Error): unknown {
    // Editors on Windows often save JSON with a byte-order mark, which JSON.parse refuses.
    const text = json.replace(/^\uFEFF/, '');
    try {
        return JSON.parse(text) as unknown;
    } catch (err) {
        const message = messageOf(err);
        const reason = message
            .replace(/\s+in JSON at position \d+[\s\S]*$/, '')
            .replace(/^(Unexpected token [\s\S]*?), "[\s\S]*" is not valid JSON$/, '$1');
        const reported = /at position (\d+)/.exec(message)?.[1];
        const offset = reported === undefined ? jsonErrorOffset(text) : Number(reported);
        if (offset === undefined) {
            throw fail(`not valid JSON: ${reason}`);
        }
        const before = text.slice(0, offset);
        const line = before.split('\n').length;
        const column = offset - before.lastIndexOf('\n');
        const hint = text[offset] === '/' ? ' (JSON has no comments: use "description")' : '';
        throw fail(`not valid JSON at line ${line}, column ${column}: ${reason}${hint}`);
    }
}

class JsonStop {
    constructor(readonly at: number | undefined) {}
}

/**
 * Where the first syntax error in `text` is, by the JSON grammar (RFC 8259); undefined when it finds none. Only used to
 * locate an error JSON.parse has already found, so it needs to agree with it, not to be fast.
 */
export function jsonErrorOffset(text: string): number | undefined {
    let i = 0;
    const stop = (): never => {
        throw new JsonStop(i);
    };
    const ws = () => {
        while (i < text.length && ' \t\n\r'.includes(text[i]!)) {
            i++;
        }
    };
    const literal = (word: string) => {
        for (const c of word) {
            if (text[i] !== c) {
                stop();
            }
            i++;
        }
    };
    const string = () => {
        i++;
        for (;;) {
            const c = text[i];
            if (c === undefined || c < ' ') {
                stop();
            } else if (c === '"') {
                i++;
                return;
            } else if (c === '\\') {
                i++;
                if (text[i] === 'u') {
                    if (!/^[0-9A-Fa-f]{4}$/.test(text.slice(i + 1, i + 5))) {
                        stop();
                    }
                    i += 5;
                } else if (text[i] !== undefined && '"\\/bfnrt'.includes(text[i]!)) {
                    i++;
                } else {
                    stop();
                }
            } else {
                i++;
            }
        }
    };
    const number = () => {
        const pattern = /-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?/y;
        pattern.lastIndex = i;
        if (!pattern.exec(text)) {
            stop();
        }
        i = pattern.lastIndex;
    };
    const value = (depth: number) => {
        if (depth > 256) {
            // Deeper than any policy; give up rather than risk the stack.
            throw new JsonStop(undefined);
        }
        ws();
        const c = text[i];
        if (c === '{' || c === '[') {
            const close = c === '{' ? '}' : ']';
            i++;
            ws();
            if (text[i] === close) {
                i++;
                return;
            }
            for (;;) {
                if (c === '{') {
                    ws();
                    if (text[i] !== '"') {
                        stop();
                    }
                    string();
                    ws();
                    if (text[i] !== ':') {
                        stop();
                    }
                    i++;
                }
                value(depth + 1);
                ws();
                if (text[i] === ',') {
                    i++;
                } else if (text[i] === close) {
                    i++;
                    return;
                } else {
                    stop();
                }
            }
        } else if (c === '"') {
            string();
        } else if (c === 't' || c === 'f' || c === 'n') {
            literal(c === 't' ? 'true' : c === 'f' ? 'false' : 'null');
        } else if (c === '-' || (c !== undefined && c >= '0' && c <= '9')) {
            number();
        } else {
            stop();
        }
    };
    try {
        value(0);
        ws();
        return i < text.length ? i : undefined;
    } catch (err) {
        if (err instanceof JsonStop) {
            return err.at;
        }
        throw err;
    }
}

/** The policy from the settings, or undefined when neither is set: then every request needs one manual approval. */
export function loadPolicy(
    env: { POLICY?: string; POLICY_FILE?: string },
    readFile: (path: string) => string,
): Policy | undefined {
    // An empty setting in local.settings.json means "not set", as in config.ts.
    const inline = env.POLICY?.trim() ? env.POLICY : undefined;
    const path = env.POLICY_FILE?.trim() || undefined;
    if (inline !== undefined && path !== undefined) {
        throw new PolicyConfigError([
            'POLICY, POLICY_FILE: both are set; set one: POLICY for the policy JSON itself, ' +
                'or POLICY_FILE for the path of a JSON file',
        ]);
    }
    if (inline !== undefined) {
        return parsePolicy(inline, 'POLICY');
    }
    if (path === undefined) {
        return undefined;
    }
    let text: string;
    try {
        text = readFile(path);
    } catch (err) {
        throw new PolicyConfigError([`POLICY_FILE: cannot read ${shown(path)}: ${messageOf(err)}`]);
    }
    return parsePolicy(text, `POLICY_FILE (${path})`);
}

/** An error's message; fs errors can come from another realm (jest's sandbox), where `instanceof Error` is false. */
function messageOf(err: unknown): string {
    const message = (err as { message?: unknown } | null | undefined)?.message;
    return typeof message === 'string' ? message : ensureErrorType(err).message;
}

/** The reader for `loadPolicy` in the app. A relative path is resolved against the working directory, the app root. */

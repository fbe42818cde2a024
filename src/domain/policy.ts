import { parsePrivateEndpointId, parseServerId, serverKinds } from './ids';
import type { ServerKind } from './ids';
import { transition, type ApprovalRequest, type Decision, type RequestFacts } from './request';

/**
 * The approval policy: an ordered list of rules, each a match and an action. The first rule that matches decides;
 * when none does, a request needs one manual approval, which is what the gate did before policies existed. Everything
 * here is pure: `policyConfig.ts` reads and validates the JSON, the workflow audits the decision with the rule's id.
 */

/**
 * Where the private endpoint comes from: a subscription in TRUSTED_SUBSCRIPTION_IDS, a subscription whose home tenant
 * is ours but that is not trusted, one whose home tenant is another ('foreign'), or one whose tenant could not be
 * established ('unknown'). The tenant is the subscription's own (see origin.ts), never the caller's claim. Neither
 * 'foreign' nor 'unknown' may be auto-approved (policyConfig refuses such a rule).
 */
export const endpointOrigins = ['trusted', 'sameTenant', 'foreign', 'unknown'] as const;
export type EndpointOrigin = (typeof endpointOrigins)[number];

/** More than five distinct approvers is an organisational problem, not a policy; the cap also bounds the card. */
export const maxRequiredApprovals = 5;

export type PolicyAction =
    { type: 'autoApprove' } | { type: 'autoReject'; text: string } | { type: 'requireApprovals'; count: number };

/**
 * Every condition present must hold (AND); an absent condition places no constraint. A match with no condition at all
 * is a catch-all. A listed value set that is empty matches nothing (config refuses empty lists, so this only matters
 * to code that builds policies itself).
 */
export interface PolicyMatch {
    /**
     * The private endpoint's subscription: in TRUSTED_SUBSCRIPTION_IDS, in our tenant but not trusted ('sameTenant'),
     * in another tenant ('foreign'), or of a tenant that could not be established ('unknown'). See `policySubject`.
     */
    endpointOrigin?: EndpointOrigin[];
    /** The resource's kind: ids of the registry (src/domain/resourceKinds.ts), e.g. "key-vault", "sql-server". */
    resourceKind?: ServerKind[];
    /** The older name of the same condition, from when only database servers were gated; both given, both hold. */
    serverKinds?: ServerKind[];
    /** Glob on the server name: * and ? only, case-insensitive. */
    serverName?: string;
    /** Every listed tag must be present with this value (case-insensitive key, exact value; '*' = any value). */
    tags?: Record<string, string>;
}

export interface PolicyRule {
    id: string;
    description?: string;
    match: PolicyMatch;
    action: PolicyAction;
}

/**
 * What happens to a connection that became Approved without a decision of ours (a bypass): `alert` posts an alert card
 * with Revoke and Keep and audits it; `revoke` sets the connection to Rejected with the rule's text through the same
 * apply path as a click (and the card says so); `accept` audits it only, for trusted automation.
 */
export const bypassActionTypes = ['alert', 'revoke', 'accept'] as const;
export type BypassAction = { type: 'alert' } | { type: 'revoke'; text: string } | { type: 'accept' };

export interface BypassRule {
    id: string;
    description?: string;
    match: PolicyMatch;
    action: BypassAction;
}

export interface Policy {
    rules: PolicyRule[];
    /**
     * How bypasses are judged, first match wins; absent means `defaultBypassRules`. When no rule matches: `alert`.
     * An empty list alerts on every bypass and revokes none.
     */
    bypassRules?: BypassRule[];
}

/**
 * The default: every bypass is alerted, and one from another tenant's subscription is revoked at once. A connection
 * whose tenant could not be established is alerted, not revoked: revoking on a failed lookup could cut a connection of
 * our own.
 */
export const defaultBypassRules: readonly BypassRule[] = [
    {
        id: 'bypass-foreign-revoke',
        description: 'A connection from another tenant that was approved without the gate is revoked',
        match: { endpointOrigin: ['foreign'] },
        action: {
            type: 'revoke',
            text: 'Revoked: approved without the approval gate, from a subscription of another tenant',
        },
    },
];

export interface BypassDecision {
    /** The rule that decided; undefined for the default (`alert`). */
    ruleId?: string;
    action: BypassAction;
}

/** The first matching bypass rule wins; when none matches, `alert`. */
export function evaluateBypass(policy: Policy, subject: PolicySubject): BypassDecision {
    for (const rule of policy.bypassRules ?? defaultBypassRules) {
        if (matchesSubject(rule.match, subject)) {
            return { ruleId: rule.id, action: { ...rule.action } };
        }
    }
    return { action: { type: 'alert' } };
}

/** The PEC's description in ARM after a bypass rule revoked it. */
export function bypassRevokeDescription(ruleId: string, text: string): string {
    return `Revoked by policy ${ruleId}: ${text}`;
}

/** What a rule is matched against: a request reduced to the facts a policy may look at. */
export interface PolicySubject {
    serverKind: ServerKind;
    serverName: string;
    serverTags: Record<string, string>;
    endpointOrigin: EndpointOrigin;
}

export interface PolicyDecision {
    /** The rule that decided; undefined for the default (no rule matched, or no policy): one manual approval. */
    ruleId?: string;
    action: PolicyAction;
}

/** The first matching rule wins; when none matches, one manual approval. */
export function evaluatePolicy(policy: Policy, subject: PolicySubject): PolicyDecision {
    for (const rule of policy.rules) {
        if (matchesSubject(rule.match, subject)) {
            // A copy, so a caller that stores or edits the decision can never change the loaded policy.
            return { ruleId: rule.id, action: { ...rule.action } };
        }
    }
    return { action: { type: 'requireApprovals', count: 1 } };
}

export function matchesSubject(match: PolicyMatch, subject: PolicySubject): boolean {
    if (match.endpointOrigin !== undefined && !match.endpointOrigin.includes(subject.endpointOrigin)) {
        return false;
    }
    if (match.serverKinds !== undefined && !match.serverKinds.includes(subject.serverKind)) {
        return false;
    }
    if (match.resourceKind !== undefined && !match.resourceKind.includes(subject.serverKind)) {
        return false;
    }
    if (match.serverName !== undefined && !globMatch(match.serverName, subject.serverName)) {
        return false;
    }
    if (match.tags !== undefined) {
        const tags = Object.entries(subject.serverTags);
        for (const [key, wanted] of Object.entries(match.tags)) {
            // ARM tag names are case-insensitive, values are not. `some`, not `find`: a record that somehow holds
            // "Env" and "env" matches if either has the value, which keeps `matchCovers` sound.
            const lowerKey = key.toLowerCase();
            const present = tags.some(([k, v]) => k.toLowerCase() === lowerKey && (wanted === '*' || v === wanted));
            if (!present) {
                return false;
            }
        }
    }
    return true;
}

/** A match with no condition: it matches every request, so any rule after it can never be reached. */
export function isCatchAll(match: PolicyMatch): boolean {
    return (
        match.endpointOrigin === undefined &&
        match.serverKinds === undefined &&
        match.resourceKind === undefined &&
        match.serverName === undefined &&
        match.tags === undefined
    );
}

/**
 * Whether every subject `later` matches is also matched by `earlier`, so a rule with `later` placed after a rule with
 * `earlier` can never decide anything. Sound but not complete: it answers true only when certain (conditions are
 * compared one by one, and globs only when equal or all '*'), so config never refuses a reachable rule.
 */
export function matchCovers(earlier: PolicyMatch, later: PolicyMatch): boolean {
    const setCovers = <T>(a: readonly T[] | undefined, b: readonly T[] | undefined, all: readonly T[]) =>
        a === undefined || (b ?? all).every((value) => a.includes(value));
    if (!setCovers(earlier.endpointOrigin, later.endpointOrigin, endpointOrigins)) {
        return false;
    }
    // resourceKind and serverKinds constrain the same fact: a match allows the kinds in both of its lists.
    const kindsOf = (m: PolicyMatch): readonly ServerKind[] | undefined =>
        m.resourceKind === undefined
            ? m.serverKinds
            : m.serverKinds === undefined
              ? m.resourceKind
              : m.resourceKind.filter((k) => m.serverKinds!.includes(k));
    if (!setCovers(kindsOf(earlier), kindsOf(later), serverKinds)) {
        return false;
    }
    if (earlier.serverName !== undefined && !/^\*+$/.test(earlier.serverName)) {
        if (later.serverName === undefined || earlier.serverName.toLowerCase() !== later.serverName.toLowerCase()) {
            return false;
        }
    }
    for (const [key, wanted] of Object.entries(earlier.tags ?? {})) {
        const lowerKey = key.toLowerCase();
        const implied = Object.entries(later.tags ?? {}).some(
            ([k, v]) => k.toLowerCase() === lowerKey && (wanted === '*' || (v === wanted && v !== '*')),
        );
        if (!implied) {
            return false;
        }
    }
    return true;
}

/**
 * Glob match: `*` is any run of characters (also none), `?` exactly one, everything else itself; case-insensitive
 * because ARM names are. Iterative with one backtrack point, so a pattern like `*a*a*a*b` costs O(n·m) at worst, never
 * the exponential time a naive recursion or a generated regex can take. Characters are compared as code points.
 */
export function globMatch(pattern: string, value: string): boolean {
    const p = Array.from(pattern.toLowerCase());
    const v = Array.from(value.toLowerCase());
    let pi = 0;
    let vi = 0;
    let starAt = -1;
    let resumeAt = 0;
    while (vi < v.length) {
        const c = p[pi];
        if (c === '*') {
            starAt = pi++;
            resumeAt = vi;
        } else if (c !== undefined && (c === '?' || c === v[vi])) {
            pi++;
            vi++;
        } else if (starAt >= 0) {
            // Let the last star swallow one more character and retry what follows it.
            pi = starAt + 1;
            vi = ++resumeAt;
        } else {
            return false;
        }
    }
    while (p[pi] === '*') {
        pi++;
    }
    return pi === p.length;
}

/**
 * A request's facts reduced to a policy subject.
 *
 * The endpoint's origin is judged from the endpoint's own subscription, because an auto-approval on a wrong guess is
 * the exfiltration this gate exists to stop:
 * - 'trusted' only when the facts say trusted AND the endpoint's subscription is known (the same rule the card uses);
 * - 'sameTenant' or 'foreign' when the subscription's home tenant was established (SUBSCRIPTION_TENANTS, or looked up
 *   from ARM) and is, or is not, ours;
 * - 'unknown' otherwise. Who caused the event plays no part: with Azure Lighthouse or guest access, a user of our
 *   tenant acts on another tenant's subscription with a token that carries our tenant.
 *
 * Throws ValidationError when the facts' server id is not a server id: the request is corrupt, and guessing a name to
 * match globs against could pick the wrong rule.
 */
export function policySubject(facts: RequestFacts, options: { ourTenantId: string }): PolicySubject {
    return {
        serverKind: facts.serverKind,
        serverName: parseServerId(facts.serverId).name,
        serverTags: { ...(facts.serverTags ?? {}) },
        endpointOrigin: endpointOriginOf(facts, options.ourTenantId),
    };
}

export function endpointOriginOf(facts: RequestFacts, ourTenantId: string): EndpointOrigin {
    if (facts.privateEndpointTrusted === true && endpointSubscriptionKnown(facts)) {
        return 'trusted';
    }
    const tenant = facts.privateEndpointTenantId;
    if (!tenant || !endpointSubscriptionKnown(facts)) {
        return 'unknown';
    }
    return tenant.toLowerCase() === ourTenantId.toLowerCase() ? 'sameTenant' : 'foreign';
}

function endpointSubscriptionKnown(facts: RequestFacts): boolean {
    if (facts.privateEndpointSubscriptionId) {
        return true;
    }
    try {
        parsePrivateEndpointId(facts.privateEndpointId);
        return true;
    } catch {
        return false;
    }
}

/** The PEC's description in ARM after an automatic approval, so the portal shows who decided: the rule, by id. */
export function autoApproveDescription(ruleId: string): string {
    return `Auto-approved by policy ${ruleId}`;
}

/** The same for an automatic reject, followed by the rule's text, as `armDescription` does for a person's reject. */
export function autoRejectDescription(ruleId: string, text: string): string {
    return `Auto-rejected by policy ${ruleId}: ${text}`;
}

/**
 * A freshly opened request with the policy's decision applied: an automatic approve or reject becomes the request's
 * decision (by the rule, named in `by` so cards and replies say who decided), and `requireApprovals` sets how many
 * approvals it needs. The default (one manual approval, no rule) leaves the request as it is.
 */
export function applyPolicy(request: ApprovalRequest, decision: PolicyDecision, now: Date): ApprovalRequest {
    const ruleId = decision.ruleId;
    if (ruleId === undefined) {
        return request;
    }
    const action = decision.action;
    if (action.type === 'requireApprovals') {
        return { ...request, policyRuleId: ruleId, requiredApprovals: action.count };
    }
    const auto: Decision = {
        action: action.type === 'autoApprove' ? 'approve' : 'reject',
        by: { name: `policy rule ${ruleId}` },
        text: action.type === 'autoReject' ? action.text : '',
        at: now.toISOString(),
        auto: { kind: 'policy', ruleId },
    };
    return transition({ ...request, policyRuleId: ruleId }, { type: 'decide', decision: auto }, now);
}

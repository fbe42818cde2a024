import { buildCardView } from '../../src/domain/card';
import { addApproval, armDescription, hasApproved } from '../../src/domain/decision';
import { applyPolicy, evaluatePolicy, type Policy } from '../../src/domain/policy';
import { dueAction, expire, expiryReason, recordReminder, type ReconcileSettings } from '../../src/domain/reconcile';
import {
    cardStateOf,
    holdsPec,
    openRequest,
    transition,
    type ApprovalRequest,
    type Decision,
} from '../../src/domain/request';

/** The sweep's rules with an injected clock: days of waiting in microseconds. */

const t0 = new Date('2026-11-21T10:00:00Z');
const at = (hours: number) => new Date(t0.getTime() + hours * 3_600_000);
const minutes = (m: number) => new Date(t0.getTime() + m * 60_000);

const settings: ReconcileSettings = {
    reminderIntervalHours: 24,
    reminderMaxCount: 2,
    expiryHours: 168,
    expiryAction: 'leave',
    expiryRejectText: 'Nobody decided in time',
    stuckApplyMinutes: 30,
};

function pending(): ApprovalRequest {
    return openRequest({
        id: 'AAAAAAAAAAAAAAAAAAAAAA',
        pecId: '/subscriptions/s/resourceGroups/rg/providers/Microsoft.DBforMySQL/servers/s1/privateEndpointConnections/p',
        facts: {
            serverKind: 'mysql-single',
            serverId: '/subscriptions/s/resourceGroups/rg/providers/Microsoft.DBforMySQL/servers/s1',
            serverLocation: 'westeurope',
            publicNetworkAccess: 'Disabled',
            serverTags: { environment: 'prod' },
            pecName: 'p',
            privateEndpointId: '',
            privateEndpointTrusted: false,
            requestMessage: 'please',
            approvedPecCount: 0,
            approvedUntrustedPecCount: 0,
        },
        correlationId: 'c1',
        now: t0,
    });
}

function withBotCard(request: ApprovalRequest): ApprovalRequest {
    return {
        ...request,
        card: {
            channel: 'bot',
            conversationId: 'c',
            activityId: 'a',
            serviceUrl: 'https://x',
            postedAt: t0.toISOString(),
        },
    };
}

const alice = { objectId: 'a1', name: 'Alice', upn: 'alice@contoso.com' };
const bob = { objectId: 'b2', name: 'Bob', upn: 'bob@contoso.com' };
const approval = (by: typeof alice, text = '', when = t0): Decision => ({
    action: 'approve',
    by,
    text,
    at: when.toISOString(),
});

describe('reminders', () => {
    it('are due one interval after the card, then one interval after the last reminder', () => {
        let r = withBotCard(pending());
        expect(dueAction(r, at(23.9), settings)).toBeUndefined();
        expect(dueAction(r, at(24), settings)).toBe('remind');
        r = recordReminder(r, at(24));
        expect(r.reminders).toEqual({ count: 1, lastAt: at(24).toISOString() });
        expect(dueAction(r, at(47), settings)).toBeUndefined();
        expect(dueAction(r, at(48), settings)).toBe('remind');
    });

    it('stop after the maximum count', () => {
        let r = withBotCard(pending());
        r = recordReminder(recordReminder(r, at(24)), at(48));
        expect(r.reminders?.count).toBe(2);
        expect(dueAction(r, at(100), settings)).toBeUndefined();
        expect(dueAction(r, at(167), settings)).toBeUndefined();
    });

    it('need a bot card (a reply goes in its thread), and an interval above 0', () => {
        expect(dueAction(pending(), at(30), settings)).toBeUndefined();
        const webhook: ApprovalRequest = { ...pending(), card: { channel: 'webhook', postedAt: t0.toISOString() } };
        expect(dueAction(webhook, at(30), settings)).toBeUndefined();
        expect(dueAction(withBotCard(pending()), at(30), { ...settings, reminderIntervalHours: 0 })).toBeUndefined();
    });
});

describe('expiry', () => {
    it('is due at the time-to-live, and wins over a reminder', () => {
        const r = withBotCard(pending());
        expect(dueAction(r, at(167.9), settings)).toBe('remind');
        expect(dueAction(r, at(168), settings)).toBe('expire');
    });

    it('never happens with an expiry of 0', () => {
        expect(dueAction(pending(), at(24 * 365), { ...settings, expiryHours: 0, reminderIntervalHours: 0 })).toBe(
            undefined,
        );
    });

    it('"leave" closes the request as expired and keeps it answering for its PEC', () => {
        const r = expire(pending(), at(168), settings);
        expect(r.status).toBe('expired');
        expect(r.outcome?.reason).toBe(expiryReason(settings));
        expect(r.outcome?.reason).toMatch(/stays Pending/);
        expect(r.decision).toBeUndefined();
        expect(holdsPec(r)).toBe(true);
        expect(holdsPec({ ...r, pecReleasedAt: at(200).toISOString() })).toBe(false);
    });

    it('"reject" makes an automatic reject the decision, with the configured text, for the apply queue', () => {
        const r = expire(pending(), at(168), { ...settings, expiryAction: 'reject' });
        expect(r.status).toBe('decided');
        expect(r.decision).toMatchObject({
            action: 'reject',
            text: 'Nobody decided in time',
            auto: { kind: 'expiry', afterHours: 168 },
        });
        expect(armDescription(r.decision!)).toBe('Auto-rejected: no decision within 168 hours: Nobody decided in time');
    });

    it('applies only to pending requests', () => {
        const decided = transition(pending(), { type: 'decide', decision: approval(alice) }, at(1));
        expect(() => expire(decided, at(168), settings)).toThrow(/cannot take "expire"/);
    });
});

describe('stuck applies', () => {
    it('are re-queued after the configured time since the decision, the lease or the last re-queue', () => {
        const decided = transition(pending(), { type: 'decide', decision: approval(alice, '', t0) }, t0);
        expect(dueAction(decided, minutes(29), settings)).toBeUndefined();
        expect(dueAction(decided, minutes(30), settings)).toBe('requeue');
        const leased = { ...decided, applying: { at: minutes(20).toISOString(), messageId: 'm' } };
        expect(dueAction(leased, minutes(49), settings)).toBeUndefined();
        const requeued = { ...decided, requeuedAt: minutes(30).toISOString() };
        expect(dueAction(requeued, minutes(59), settings)).toBeUndefined();
        expect(dueAction(requeued, minutes(60), settings)).toBe('requeue');
    });

    it('never concern final requests', () => {
        const applied = transition(
            transition(pending(), { type: 'decide', decision: approval(alice) }, t0),
            { type: 'apply' },
            t0,
        );
        expect(dueAction(applied, at(1000), settings)).toBeUndefined();
    });
});

describe('several approvals', () => {
    const needsTwo = (): ApprovalRequest => ({ ...pending(), requiredApprovals: 2 });

    it('stays pending at 1 of 2, and the card state says so', () => {
        const r = addApproval(needsTwo(), approval(alice, 'fine'), at(1));
        expect(r.status).toBe('pending');
        expect(r.approvals).toHaveLength(1);
        expect(hasApproved(r, { objectId: 'A1' })).toBe(true);
        expect(hasApproved(r, { upn: 'ALICE@contoso.com' })).toBe(true);
        expect(hasApproved(r, bob)).toBe(false);
        expect(cardStateOf(r)).toBe('pending:1');
        expect(cardStateOf(needsTwo())).toBe('pending');
        const view = buildCardView(r, {
            portalUrl: 'https://portal.azure.com',
            publicBaseUrl: 'https://x.example',
            ourTenantId: 't',
            audience: 'viewer',
            delivery: 'bot',
        });
        expect(view.statusLine.text).toBe('Waiting for approvals: 1 of 2 (Alice)');
    });

    it('is decided by the second distinct approval, naming both in ARM', () => {
        const r = addApproval(addApproval(needsTwo(), approval(alice, 'fine'), at(1)), approval(bob, ''), at(2));
        expect(r.status).toBe('decided');
        expect(r.decision?.approvers).toEqual([alice, bob]);
        // Bob typed nothing, so Alice's text is the one ARM keeps.
        expect(armDescription(r.decision!)).toBe('Approved by alice@contoso.com and bob@contoso.com: fine');
    });

    it('with one approval needed, decides at once as before', () => {
        const r = addApproval(pending(), approval(alice, 'ok'), at(1));
        expect(r.status).toBe('decided');
        expect(armDescription(r.decision!)).toBe('Approved by alice@contoso.com: ok');
    });
});

describe('policy applied to a new request', () => {
    const policy: Policy = {
        rules: [
            {
                id: 'prod-two',
                match: { tags: { environment: 'prod' } },
                action: { type: 'requireApprovals', count: 2 },
            },
            { id: 'trusted', match: { endpointOrigin: ['trusted'] }, action: { type: 'autoApprove' } },
            { id: 'no-foreign', match: { endpointOrigin: ['foreign'] }, action: { type: 'autoReject', text: 'No.' } },
        ],
    };
    const subject = (tags: Record<string, string>, origin: 'trusted' | 'sameTenant' | 'foreign') => ({
        serverKind: 'mysql-single' as const,
        serverName: 's1',
        serverTags: tags,
        endpointOrigin: origin,
    });

    it('requireApprovals sets the count and the rule', () => {
        const r = applyPolicy(pending(), evaluatePolicy(policy, subject({ environment: 'prod' }, 'trusted')), t0);
        expect(r).toMatchObject({ status: 'pending', requiredApprovals: 2, policyRuleId: 'prod-two' });
    });

    it('autoApprove decides by the rule, with the documented description', () => {
        const r = applyPolicy(pending(), evaluatePolicy(policy, subject({}, 'trusted')), t0);
        expect(r).toMatchObject({ status: 'decided', policyRuleId: 'trusted' });
        expect(r.decision).toMatchObject({ action: 'approve', auto: { kind: 'policy', ruleId: 'trusted' } });
        expect(armDescription(r.decision!)).toBe('Auto-approved by policy trusted');
    });

    it('autoReject decides by the rule, with its text', () => {
        const r = applyPolicy(pending(), evaluatePolicy(policy, subject({}, 'foreign')), t0);
        expect(r.decision).toMatchObject({ action: 'reject', text: 'No.' });
        expect(armDescription(r.decision!)).toBe('Auto-rejected by policy no-foreign: No.');
    });

    it('the default leaves the request as it was: one manual approval', () => {
        const r = applyPolicy(pending(), evaluatePolicy(policy, subject({}, 'sameTenant')), t0);
        expect(r).toEqual(pending());
    });
});

import { RESPONSE_TEXT_MAX_LENGTH } from '../../src/domain/card';
import {
    approverLabel,
    armDescription,
    checkResponseText,
    isSelfDecision,
    outsideChange,
    selfDecisionRefusal,
    targetStatus,
    withoutRequesterApprovals,
} from '../../src/domain/decision';
import type { Pec } from '../../src/domain/pec';
import type { ApprovalRequest } from '../../src/domain/request';

const request = (requester?: ApprovalRequest['requester']) => ({ requester }) as ApprovalRequest;

describe('checkResponseText', () => {
    it('requires a text to reject, not to approve', () => {
        expect(checkResponseText('reject', '')).toEqual({
            error: expect.stringMatching(/reject needs a response text/),
        });
        expect(checkResponseText('reject', undefined)).toHaveProperty('error');
        expect(checkResponseText('approve', undefined)).toEqual({ value: '' });
    });

    it('strips control and invisible characters, and counts what is left', () => {
        expect(checkResponseText('approve', ' ok\u0000\u0007 then\u202e more\u200b ')).toEqual({
            value: 'ok then more',
        });
        // A reject whose text is only control characters has no text.
        expect(checkResponseText('reject', '\u0000\u0001\u001b\u202e')).toHaveProperty('error');
    });

    it('keeps line breaks, normalised', () => {
        expect(checkResponseText('approve', 'line one\r\nline two')).toEqual({ value: 'line one\nline two' });
    });

    it('refuses a text over the cap instead of cutting it', () => {
        expect(checkResponseText('approve', 'x'.repeat(RESPONSE_TEXT_MAX_LENGTH))).toEqual({
            value: 'x'.repeat(RESPONSE_TEXT_MAX_LENGTH),
        });
        expect(checkResponseText('approve', 'x'.repeat(RESPONSE_TEXT_MAX_LENGTH + 1))).toEqual({
            error: `The response text is ${RESPONSE_TEXT_MAX_LENGTH + 1} characters; the limit is ${RESPONSE_TEXT_MAX_LENGTH}`,
        });
    });

    it('refuses a text that is not a string', () => {
        expect(checkResponseText('approve', { toString: () => 'x' })).toHaveProperty('error');
        expect(checkResponseText('approve', 42)).toHaveProperty('error');
    });
});

describe('isSelfDecision', () => {
    it('matches the requester by object id or UPN, case-insensitively', () => {
        const r = request({ objectId: 'AAAAAAAA-0000-4000-8000-000000000001', upn: 'Dev@Contoso.com' });
        expect(isSelfDecision(r, { objectId: 'aaaaaaaa-0000-4000-8000-000000000001' })).toBe(true);
        expect(isSelfDecision(r, { objectId: 'bbbbbbbb-0000-4000-8000-000000000001', upn: 'dev@contoso.com' })).toBe(
            true,
        );
        expect(isSelfDecision(r, { objectId: 'bbbbbbbb-0000-4000-8000-000000000001', upn: 'ops@contoso.com' })).toBe(
            false,
        );
    });

    it('cannot match when the requester is unknown (a PEC found by the sweep) or fields are empty', () => {
        expect(isSelfDecision(request(undefined), { objectId: 'x' })).toBe(false);
        expect(isSelfDecision(request({ upn: '' }), { objectId: 'x', upn: '' })).toBe(false);
    });
});

describe('selfDecisionRefusal and withoutRequesterApprovals', () => {
    const dev = { objectId: 'aaaaaaaa-0000-4000-8000-000000000001', upn: 'dev@contoso.com' };
    const alice = { objectId: 'cccccccc-0000-4000-8000-000000000001', upn: 'alice@contoso.com' };
    const at = '2026-11-21T10:00:00Z';

    it('never lets the requester count among several approvals, and alone only where allowed', () => {
        const two = { requester: dev, requiredApprovals: 2 } as ApprovalRequest;
        expect(selfDecisionRefusal(two, dev, true)).toMatch(/cannot be one of its approvers/);
        expect(selfDecisionRefusal(request(dev), dev, false)).toMatch(/someone else has to decide it/);
        expect(selfDecisionRefusal(request(dev), dev, true)).toBeUndefined();
        expect(selfDecisionRefusal(two, alice, false)).toBeUndefined();
        expect(selfDecisionRefusal(request(undefined), dev, false)).toBeUndefined();
    });

    it("takes out the approvals the requester gave, keeping everyone else's", () => {
        const approvals = [
            { action: 'approve' as const, by: { objectId: dev.objectId, upn: 'dev@contoso.com' }, text: 'mine', at },
            { action: 'approve' as const, by: alice, text: 'ok', at },
        ];
        const known = { requester: { upn: 'DEV@contoso.com' }, approvals } as ApprovalRequest;
        expect(withoutRequesterApprovals(known).approvals).toEqual([approvals[1]]);
        const onlyTheirs = { requester: dev, approvals: [approvals[0]!] } as ApprovalRequest;
        expect(withoutRequesterApprovals(onlyTheirs)).not.toHaveProperty('approvals');
        const none = { requester: dev, approvals: [approvals[1]!] } as ApprovalRequest;
        expect(withoutRequesterApprovals(none)).toBe(none);
    });
});

describe('armDescription', () => {
    const at = '2026-11-21T10:00:00Z';
    it('names the approver by UPN like the portal example, then the text', () => {
        expect(
            armDescription({ action: 'approve', by: { upn: 'johndoe@contoso.com', name: 'John' }, text: '', at }),
        ).toBe('Approved by johndoe@contoso.com');
        expect(armDescription({ action: 'reject', by: { name: 'John Doe' }, text: 'not our subscription', at })).toBe(
            'Rejected by John Doe: not our subscription',
        );
    });

    it('falls back to the object id, then to unknown', () => {
        expect(approverLabel({ objectId: 'abc' })).toBe('abc');
        expect(approverLabel({})).toBe('unknown');
    });

    it('maps actions to ARM states', () => {
        expect(targetStatus('approve')).toBe('Approved');
        expect(targetStatus('reject')).toBe('Rejected');
    });
});

describe('outsideChange', () => {
    const pec = (status: Pec['status'], description: string) => ({ status, description }) as Pec;
    it('is nothing while the PEC waits, and says what ARM now holds otherwise', () => {
        expect(outsideChange(pec('Pending', 'please'))).toBeUndefined();
        expect(outsideChange(pec('Approved', 'ok by ops'))).toBe(
            'the connection was set to Approved outside this app ("ok by ops")',
        );
        expect(outsideChange(pec('Disconnected', ''))).toBe('the connection was set to Disconnected outside this app');
    });

    it('is a change when the connection now names another private endpoint than the one reviewed', () => {
        const reviewed = '/subscriptions/s1/resourceGroups/rg/providers/Microsoft.Network/privateEndpoints/pe-a';
        const held = (privateEndpointId: string) => ({ status: 'Pending', description: '', privateEndpointId }) as Pec;
        expect(outsideChange(held(reviewed.toUpperCase()), 'Pending', reviewed)).toBeUndefined();
        expect(outsideChange(held(reviewed.replace('pe-a', 'pe-b')), 'Pending', reviewed)).toMatch(
            /^the connection now belongs to another private endpoint \(.*pe-b\), not the one reviewed$/,
        );
        // Without the reviewed endpoint (or without ARM's), only the status counts.
        expect(outsideChange(held(reviewed.replace('pe-a', 'pe-b')), 'Pending')).toBeUndefined();
        expect(outsideChange(held(''), 'Pending', reviewed)).toBeUndefined();
    });
});

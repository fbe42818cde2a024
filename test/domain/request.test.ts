import {
    canTransition,
    InvalidTransitionError,
    isOpen,
    isRequestId,
    openRequest,
    requestStatuses,
    transition,
    type ApprovalRequest,
    type RequestTransition,
} from '../../src/domain/request';

const now = new Date('2026-11-21T10:00:00Z');
const later = new Date('2026-11-21T10:05:00Z');

function pending(): ApprovalRequest {
    return openRequest({
        id: 'AAAAAAAAAAAAAAAAAAAAAA',
        pecId: '/subscriptions/s/resourceGroups/rg/providers/Microsoft.DBforMySQL/servers/s1/privateEndpointConnections/p',
        facts: {
            serverKind: 'mysql-single',
            serverId: '/subscriptions/s/resourceGroups/rg/providers/Microsoft.DBforMySQL/servers/s1',
            serverLocation: 'westeurope',
            publicNetworkAccess: 'Disabled',
            serverTags: {},
            pecName: 'p',
            privateEndpointId: '',
            privateEndpointTrusted: false,
            requestMessage: 'please',
            approvedPecCount: 0,
            approvedUntrustedPecCount: 0,
        },
        correlationId: 'c1',
        now,
    });
}

const decide: RequestTransition = {
    type: 'decide',
    decision: { action: 'approve', by: { objectId: 'o', name: 'Ann' }, text: 'ok', at: later.toISOString() },
};

describe('request state machine', () => {
    it('opens pending', () => {
        const r = pending();
        expect(r.status).toBe('pending');
        expect(r.createdAt).toBe(now.toISOString());
        expect(isOpen(r.status)).toBe(true);
    });

    it('follows pending → decided → applied', () => {
        const decided = transition(pending(), decide, later);
        expect(decided).toMatchObject({ status: 'decided', updatedAt: later.toISOString() });
        expect(decided.decision?.by.name).toBe('Ann');
        const applied = transition(decided, { type: 'apply' }, later);
        expect(applied.status).toBe('applied');
        expect(isOpen(applied.status)).toBe(false);
    });

    it('records why a request failed, expired or was superseded', () => {
        const decided = transition(pending(), decide, later);
        expect(transition(decided, { type: 'fail', reason: 'ARM 403' }, later).outcome?.reason).toBe('ARM 403');
        expect(transition(pending(), { type: 'expire', reason: 'ttl' }, later).status).toBe('expired');
        expect(transition(decided, { type: 'supersede', reason: 'approved in portal' }, later).status).toBe(
            'superseded',
        );
    });

    it('refuses a second decision: the first writer wins', () => {
        const decided = transition(pending(), decide, later);
        expect(() => transition(decided, decide, later)).toThrow(InvalidTransitionError);
    });

    const table: [(typeof requestStatuses)[number], RequestTransition['type'], boolean][] = [];
    for (const from of requestStatuses) {
        for (const t of ['decide', 'apply', 'fail', 'expire', 'supersede'] as const) {
            const ok =
                (t === 'decide' && from === 'pending') ||
                (t === 'apply' && from === 'decided') ||
                (t === 'fail' && from === 'decided') ||
                (t === 'expire' && from === 'pending') ||
                (t === 'supersede' && (from === 'pending' || from === 'decided'));
            table.push([from, t, ok]);
        }
    }
    it.each(table)('from %s, %s is allowed: %s', (from, t, ok) => {
        expect(canTransition(from, t)).toBe(ok);
    });

    it('accepts only id-shaped request ids', () => {
        expect(isRequestId('AbCdEfGhIjKlMnOpQrStUv')).toBe(true);
        expect(isRequestId('short')).toBe(false);
        expect(isRequestId("x' or '1'='1 AAAAAAAAAAAA")).toBe(false);
        expect(isRequestId('../../etc/passwd/AAAAAAAAAAA')).toBe(false);
    });
});

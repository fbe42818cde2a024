import { applyMaxAttempts } from '../../src/storage/applyQueue';
import { click, drainApplyQueue, logTap, openCard, people, startHarness, web, type Harness } from '../harness';

/**
 * Observability through the real handlers: every log line of a request's invocations names the request and the
 * event's correlation id, and each milestone reaches Application Insights' ingestion endpoint (emulated, with Entra
 * auth required as deployed) as a custom event carrying the same ids.
 */

const pecPath = 'privateendpointconnections/';
const label = /^(information|warning|error): \[requestId=(\S+) correlationId=(\S+)\] /;

describe('observability', () => {
    let h: Harness;
    beforeEach(async () => {
        h = await startHarness();
        logTap.lines = [];
    });
    afterEach(async () => {
        delete logTap.lines;
        await h.close();
    });

    it('labels every line with the request and correlation ids and tracks requested, decided, applied', async () => {
        const { request } = await openCard(h, 'postgres-flexible');
        await click(h, request, { verb: 'approve', text: 'CHG-7', who: people.alice });
        expect(await drainApplyQueue(h)).toBe(1);

        const lines = logTap.lines ?? [];
        expect(lines.length).toBeGreaterThan(0);
        for (const line of lines) {
            expect(line).toMatch(label);
            // Every line of this flow is about this one request.
            const [, , requestId, correlationId] = label.exec(line) ?? [];
            expect({ line, requestId, correlationId }).toEqual({
                line,
                requestId: request.id,
                correlationId: request.correlationId,
            });
        }

        const events = h.appInsights.events();
        expect(events.map((e) => e.name)).toEqual(['PecRequested', 'PecDecided', 'PecApplied']);
        for (const event of events) {
            expect(event.properties).toMatchObject({ requestId: request.id, correlationId: request.correlationId });
            expect(event.tags['ai.operation.id']).toMatch(/\S/);
            expect(event.tags['ai.cloud.role']).toBe('pec-gate');
        }
        expect(events[0]?.properties).toMatchObject({
            status: 'pending',
            pecId: request.pecId,
            serverKind: 'postgres-flexible',
        });
        expect(events[1]?.properties).toMatchObject({ actorKind: 'approver', actorId: people.alice.objectId });
        // Sent with a token for Azure Monitor, as the resource's disabled local auth requires.
        expect(h.appInsights.unauthorised).toBe(0);
        expect(h.token.issued.some((t) => t.resource === 'https://monitor.azure.com/')).toBe(true);
    });

    it('tracks a failed apply', async () => {
        const { request } = await openCard(h, 'mysql-single');
        await click(h, request, { verb: 'reject', text: 'no', who: people.alice });
        h.arm.faults.add(
            { kind: 'error', status: 403, code: 'AuthorizationFailed' },
            { times: 10, method: 'PUT', pathIncludes: pecPath },
        );
        expect(await drainApplyQueue(h)).toBe(1);
        const failed = h.appInsights.events('PecFailed');
        expect(failed).toHaveLength(1);
        expect(failed[0]?.properties).toMatchObject({ requestId: request.id, correlationId: request.correlationId });
        expect(logTap.lines?.filter((l) => l.includes('ALERT'))).toEqual([
            expect.stringMatching(new RegExp(`^error: \\[requestId=${request.id} correlationId=`)),
        ]);
    });

    it('never fails an invocation because Application Insights is down, and says so in the log', async () => {
        h.appInsights.faults.add({ kind: 'error', status: 503 }, { times: 1000 });
        const { request } = await openCard(h, 'postgres-single');
        expect(request.card).toBeDefined();
        expect(h.appInsights.events()).toEqual([]);
        expect(logTap.lines?.some((l) => /^warning: .*Application Insights.*not sent/.test(l))).toBe(true);
    });

    it('labels lines of input that names no request with "-" and tracks nothing for it', async () => {
        await drainApplyQueue(h); // nothing queued
        const { applyDecisionFunction } = await import('../../functions/applyDecision');
        const { testContext } = await import('../harness');
        const context = testContext('applyDecision', { id: 'm1', dequeueCount: applyMaxAttempts });
        await applyDecisionFunction({ requestId: 42 }, context);
        expect(context.logs).toEqual([
            expect.stringMatching(/^error: \[requestId=- correlationId=-\] ALERT invalid apply message dropped/),
        ]);
        expect(h.appInsights.envelopes).toEqual([]);
    });

    it('cannot forge a log line through the web page route: the id label keeps only id characters', async () => {
        const forged = encodeURIComponent('x\nerror: [requestId=victim correlationId=c] ALERT forged');
        const page = await web({ url: new URL(`https://pec-gate.example.net/api/requests/${forged}`), who: null });
        expect(page.status).toBeGreaterThanOrEqual(400);
        const lines = logTap.lines ?? [];
        expect(lines.length).toBeGreaterThan(0);
        for (const line of lines) {
            expect(line).not.toContain('\n');
            expect(line).toMatch(/^\w+: \[requestId=xerrorrequestIdvictimcorrelationIdcALERTforged correlationId=-\] /);
        }
    });
});

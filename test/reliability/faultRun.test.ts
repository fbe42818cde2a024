import { runFaultScenario, startFaultHarness, type FaultReport } from './faultRun';

/**
 * Issue 6's fault run, small and seeded for CI: a fifth of the ARM, Bot Connector and storage calls fail (throttled
 * with Retry-After, 500, or no answer, with or without the request carried out), and still every PEC gets a card or a
 * decision, and none is decided twice. The full-size run (hundreds of PECs) is the benchmark's; FAULT_RUN_PECS and
 * FAULT_RUN_SEED run another size here. No timing is asserted.
 */

const pecs = Number(process.env.FAULT_RUN_PECS ?? 32);
const seed = Number(process.env.FAULT_RUN_SEED ?? 6);

describe(`fault run: ${pecs} PECs (seed ${seed}), 20 % of ARM, Bot Connector and storage calls fail`, () => {
    let report: FaultReport;
    const lines: string[] = [];

    beforeAll(
        async () => {
            const run = await startFaultHarness({ timeoutMs: 500 });
            try {
                report = await runFaultScenario(run.h, {
                    pecs,
                    seed,
                    rate: 0.2,
                    storage: run.storage,
                    log: (line) => lines.push(line),
                });
            } finally {
                await run.close();
                // What happened, for whoever reads the CI log (or runs a bigger size).
                const { lost, doubles, ...numbers } = report ?? {};
                console.log([...lines, JSON.stringify({ ...numbers, lost, doubles })].join('\n'));
            }
            // A generous bound for a stuck run, not an assertion on speed.
        },
        60_000 + pecs * 5_000,
    );

    it('loses no PEC and decides none twice', () => {
        expect(report.pecs).toBe(pecs);
        // The ids first: a failure names the PECs to look for in the log.
        expect({ lost: report.lost, doubles: report.doubles }).toEqual({ lost: [], doubles: [] });
        expect(report.lostPecs).toBe(0);
        expect(report.doubleDecisions).toBe(0);
        expect(report.approvedAndRejected).toBe(0);
        expect(report.wrongOutcomes).toBe(0);
    });

    it('gets every PEC decided and applied, of every kind, including the ones only the sweep found', () => {
        // Without this, a run whose clicks never land (a card the run cannot read, a request waiting for a second
        // approver) would pass the checks above with every PEC left Pending.
        expect({ pendingLeft: report.pendingLeft, applied: report.applied, failed: report.failed }).toEqual({
            pendingLeft: 0,
            applied: pecs,
            failed: 0,
        });
    });

    it('posts one card per request and sends no PUT again, even when answers are lost', () => {
        expect({
            cards: report.cards,
            duplicateCards: report.duplicateCards,
            falseBypassAlerts: report.falseBypassAlerts,
        }).toEqual({ cards: report.cards, duplicateCards: 0, falseBypassAlerts: 0 });
        expect(report.repeatedPuts).toBe(0);
    });

    it('keeps every audit trail intact, with no step recorded twice', () => {
        expect(report.brokenChains).toBe(0);
        expect(report.duplicateAuditSteps).toBe(0);
    });

    it('actually injected faults into ARM, the Bot Connector and storage', () => {
        expect(report.injectedFaults.arm).toBeGreaterThan(0);
        expect(report.injectedFaults.bot).toBeGreaterThan(0);
        expect(report.injectedFaults.storage).toBeGreaterThan(0);
        for (const service of ['arm', 'bot', 'storage'] as const) {
            expect(report.services[service].requests).toBeGreaterThan(0);
        }
    });
});

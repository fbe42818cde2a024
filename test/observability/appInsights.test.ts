import { AppInsightsTelemetry } from '../../src/observability/appInsights';
import { parseConnectionString } from '../../src/observability/connectionString';
import { AppInsightsEmulator } from '../emulators/appInsights';

let emulator: AppInsightsEmulator;
beforeAll(async () => {
    emulator = await AppInsightsEmulator.start({ requireEntraAuth: false });
});
afterAll(() => emulator.close());
beforeEach(() => emulator.reset());

const telemetry = () =>
    new AppInsightsTelemetry({
        ...parseConnectionString(emulator.connectionString)!,
        cloudRole: 'pec-gate-test',
        maxRetries: 1,
        retryDelayInMs: 5,
    });

const event = (i: number) => ({
    name: 'PecRequested',
    time: new Date(),
    properties: { requestId: `r${i}` },
    trace: { invocationId: `i${i}` },
});

describe('AppInsightsTelemetry.flush', () => {
    it('sends the events of concurrent invocations together, and returns to each only once its events are sent', async () => {
        const t = telemetry();
        const done: number[] = [];
        // Twenty invocations end at once, each with its own milestone.
        await Promise.all(
            Array.from({ length: 20 }, async (_, i) => {
                t.trackEvent(event(i));
                await t.flush();
                done.push(emulator.events('PecRequested').filter((e) => e.properties.requestId === `r${i}`).length);
            }),
        );
        expect(done).toEqual(Array.from({ length: 20 }, () => 1));
        expect(emulator.events('PecRequested')).toHaveLength(20);
        expect(emulator.posts).toBeLessThanOrEqual(2);
    });

    it('makes no call with nothing to send', async () => {
        await telemetry().flush();
        expect(emulator.posts).toBe(0);
    });

    it('never throws when ingestion fails, and sends later events after', async () => {
        const t = telemetry();
        emulator.faults.add({ kind: 'error', status: 500 }, { times: 5 });
        const warnings: string[] = [];
        t.trackEvent(event(1));
        await t.flush({ info: () => undefined, warn: (m: string) => warnings.push(m), error: () => undefined });
        expect(warnings.join()).toMatch(/not sent/);
        emulator.faults.clear();
        t.trackEvent(event(2));
        await t.flush();
        expect(emulator.events('PecRequested').map((e) => e.properties.requestId)).toEqual(['r2']);
    });
});

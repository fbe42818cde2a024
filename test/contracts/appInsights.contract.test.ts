import { AppInsightsTelemetry } from '../../src/observability/appInsights';
import { parseConnectionString } from '../../src/observability/connectionString';
import type { Logger } from '../../src/observability/logger';
import { sendJson, startServer, type RunningServer } from '../emulators/server';
import example from './fixtures/appinsights-track.json';

/**
 * The Application Insights ingestion contract, held against the official example of `POST /track`
 * (azure-rest-api-specs, specification/applicationinsights/data-plane/Monitor.Exporters/preview/2020-09-15_Preview/
 * examples/track.json at 7deec1e9, stored verbatim): our envelopes in its shape, and each of its published answers
 * (200, 206, 400, 402, 429, 500, 503, bodies as published) replayed to our client by a server that answers nothing
 * else. What is sent again follows the official exporters: a whole batch on 429 or 5xx, in a 206 only the items whose
 * own status asks for it, never a 400 or 402.
 */

type Json = Record<string, unknown>;
const published = example.parameters.body[0]! as unknown as Json;
interface TrackResponse {
    itemsReceived: number;
    itemsAccepted: number;
    errors: { index: number; statusCode: number; message: string }[];
}
const answers = example.responses as Record<string, { headers: Record<string, string>; body: TrackResponse }>;

let server: RunningServer;
/** Each call's parsed body, and the answers to give, in order (the last repeats). */
let received: Json[][] = [];
let script: { status: number; body: TrackResponse }[] = [];

beforeAll(async () => {
    server = await startServer(
        (req, res, body) => {
            received.push(JSON.parse(body) as Json[]);
            const next = script.length > 1 ? script.shift()! : script[0]!;
            sendJson(res, next.status, next.body);
        },
        { https: true },
    );
});
afterAll(() => server.close());
beforeEach(() => {
    received = [];
    script = [];
});

const warnings: string[] = [];
const log: Logger = { info: () => undefined, warn: (m: string) => warnings.push(m), error: () => undefined };

function client(): AppInsightsTelemetry {
    return new AppInsightsTelemetry({
        ...parseConnectionString(`InstrumentationKey=${published.iKey as string};IngestionEndpoint=${server.url}/`)!,
        cloudRole: 'pec-gate-contract',
        maxRetries: 1,
        retryDelayInMs: 1,
    });
}

async function sendTwo(): Promise<void> {
    const t = client();
    for (const requestId of ['r1', 'r2']) {
        t.trackEvent({ name: 'PecRequested', time: new Date(), properties: { requestId }, trace: {} });
    }
    await t.flush(log);
}

describe('Application Insights ingestion against its official example', () => {
    it('sends envelopes in the published shape: only its fields, the same types, time in UTC', async () => {
        script = [{ status: 200, body: answers['200']!.body }];
        await sendTwo();
        const sent = received[0]!;
        expect(sent).toHaveLength(2);
        const publishedData = published.data as { baseType: string; baseData: Json };
        for (const envelope of sent) {
            for (const [key, value] of Object.entries(envelope)) {
                expect(`${key}: ${typeof value}`).toBe(`${key}: ${typeof published[key]}`);
            }
            // The swagger's TelemetryEnvelope requires name and time, "in UTC ISO 8601 format, with a trailing 'Z'".
            expect(envelope.time).toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$/);
            expect(envelope.iKey).toBe(published.iKey);
            expect(Object.values(envelope.tags as Json).every((v) => typeof v === 'string')).toBe(true);
            const data = envelope.data as { baseType: string; baseData: Json };
            expect(data.baseType).toBe(publishedData.baseType);
            for (const [key, value] of Object.entries(data.baseData)) {
                expect(`${key}: ${typeof value}`).toBe(`${key}: ${typeof publishedData.baseData[key]}`);
            }
            expect(data.baseData.ver).toBe(publishedData.baseData.ver);
            expect(Object.values(data.baseData.properties as Json).every((v) => typeof v === 'string')).toBe(true);
        }
    });

    it.each([
        ['200', 1],
        // The published 206 lists no failed item: nothing to send again.
        ['206', 1],
        // Refused for good (a time too old, a quota): sending again would be refused again.
        ['400', 1],
        ['402', 1],
        // Throttled without Retry-After, and the server errors: the batch goes again (once, with maxRetries 1).
        ['429', 2],
        ['500', 2],
        ['503', 2],
    ])('answered %s as published, makes %i call(s) and never throws', async (status, calls) => {
        script = [{ status: Number(status), body: answers[status]!.body }];
        warnings.length = 0;
        await expect(sendTwo()).resolves.toBeUndefined();
        expect(received).toHaveLength(calls);
        expect(received.every((batch) => batch.length === 2)).toBe(true);
        expect(warnings.length > 0).toBe(status !== '200');
    });

    it('in a 206, sends again only the items whose own status asks for it', async () => {
        // The published TrackResponse shape, with per-item statuses the exporters resend (500) and do not (400).
        script = [
            {
                status: 206,
                body: {
                    itemsReceived: 2,
                    itemsAccepted: 0,
                    errors: [
                        { index: 0, statusCode: 500, message: 'Internal Server Error' },
                        { index: 1, statusCode: 400, message: answers['400']!.body.errors[0]!.message },
                    ],
                },
            },
            { status: 200, body: { itemsReceived: 1, itemsAccepted: 1, errors: [] } },
        ];
        await sendTwo();
        expect(received).toHaveLength(2);
        const again = received[1]!;
        expect(again).toHaveLength(1);
        expect(((again[0]!.data as Json).baseData as { properties: Json }).properties.requestId).toBe('r1');
    });
});

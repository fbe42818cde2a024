import type { TokenCredential } from '@azure/core-auth';
import {
    bearerTokenAuthenticationPolicy,
    createDefaultHttpClient,
    createHttpHeaders,
    createPipelineFromOptions,
    createPipelineRequest,
    type HttpClient,
    type Pipeline,
} from '@azure/core-rest-pipeline';
import { ensureErrorType } from '../domain/errors';
import type { Logger } from './logger';
import { ingestionScope, type ConnectionStringParts } from './connectionString';
import type { Telemetry, TelemetryEvent } from './telemetry';
import { withoutFormData } from '../http/pipeline';

/**
 * Custom events to Application Insights through its ingestion API (`POST {IngestionEndpoint}/v2.1/track`, an array of
 * envelopes), with a Microsoft Entra token for `https://monitor.azure.com//.default` when local auth is off. The
 * applicationinsights SDK would bring OpenTelemetry and roughly double the bundle and the cold start for a handful of
 * events per request; the ingestion contract is small and stable, and the Azure core pipeline gives it the same
 * retries (429 with Retry-After, 5xx) and token handling as every other client in the app.
 */

export interface AppInsightsSettings extends ConnectionStringParts {
    /** Entra auth (APPLICATIONINSIGHTS_AUTHENTICATION_STRING says `Authorization=AAD`): send a bearer token. */
    credential?: TokenCredential;
    /** Shown as cloud_RoleName, like the host's own telemetry (the site name in Azure). */
    cloudRole: string;
    maxRetries: number;
    retryDelayInMs: number;
}

/** At most this many events wait for a flush; beyond it the oldest go, so a dead endpoint cannot grow memory. */
const maxBuffered = 1000;

/** What the official exporters send again (microsoft/ApplicationInsights-node.js, the OpenTelemetry exporter). */
const resendItem = new Set([408, 429, 439, 500, 502, 503, 504]);
/** A whole batch answered this is sent again here: the pipeline retries the others itself. */
const resendBatch = new Set([429, 439]);

/** The items of a 206 whose own status asks for another try, by the answer's `errors[].index`. */
function itemsToResend<T>(body: string | undefined, batch: readonly T[]): T[] {
    let errors: unknown;
    try {
        errors = (JSON.parse(body ?? '{}') as { errors?: unknown }).errors;
    } catch {
        return [];
    }
    if (!Array.isArray(errors)) {
        return [];
    }
    const indexes = new Set<number>();
    for (const e of errors as { index?: unknown; statusCode?: unknown }[]) {
        if (typeof e?.index === 'number' && typeof e.statusCode === 'number' && resendItem.has(e.statusCode)) {
            indexes.add(e.index);
        }
    }
    return batch.filter((_, i) => indexes.has(i));
}

export class AppInsightsTelemetry implements Telemetry {
    private buffer: TelemetryEvent[] = [];
    private readonly pipeline: Pipeline;
    private readonly httpClient: HttpClient = createDefaultHttpClient();

    constructor(private readonly settings: AppInsightsSettings) {
        this.pipeline = createPipelineFromOptions({
            retryOptions: {
                maxRetries: settings.maxRetries,
                retryDelayInMs: settings.retryDelayInMs,
                maxRetryDelayInMs: Math.max(settings.retryDelayInMs * 8, settings.retryDelayInMs),
            },
            userAgentOptions: { userAgentPrefix: 'pec-gate' },
        });
        withoutFormData(this.pipeline);
        if (settings.credential) {
            this.pipeline.addPolicy(
                bearerTokenAuthenticationPolicy({ credential: settings.credential, scopes: ingestionScope }),
            );
        }
    }

    private sending: Promise<void> | undefined;

    trackEvent(event: TelemetryEvent): void {
        this.buffer.push(event);
        if (this.buffer.length > maxBuffered) {
            this.buffer.splice(0, this.buffer.length - maxBuffered);
        }
    }

    /**
     * Never throws: telemetry must not fail the invocation that produced it. A lost batch is logged.
     *
     * Concurrent invocations share the buffer: while one batch is on the wire, the events of the others wait and go
     * together in the next, so a burst of invocations makes a few ingestion calls instead of one each. Every caller
     * returns once a send that carried its events is over.
     */
    async flush(log?: Logger): Promise<void> {
        while (this.sending) {
            await this.sending;
        }
        if (this.buffer.length === 0) {
            return;
        }
        const sending = this.send(log);
        this.sending = sending;
        try {
            await sending;
        } finally {
            this.sending = undefined;
        }
    }

    /**
     * One batch, and again what the service asks to have again: the official exporters resend a whole batch answered
     * 408, 429, 439 or 5xx and, in a 206, the items whose own status is one of those. The core pipeline already
     * retries 408 and 5xx, and 429 and 503 when they carry Retry-After; this loop adds 439, a 429 without Retry-After
     * and the items of a partial answer, at most `maxRetries` more times. A 400 or 402 is not worth sending again.
     */
    private async send(log?: Logger): Promise<void> {
        let batch = this.buffer.map((event) => this.envelope(event));
        this.buffer = [];
        for (let attempt = 0; batch.length > 0; attempt++) {
            const last = attempt >= this.settings.maxRetries;
            let again: typeof batch = [];
            try {
                const response = await this.pipeline.sendRequest(
                    this.httpClient,
                    createPipelineRequest({
                        url: `${this.settings.ingestionEndpoint}/v2.1/track`,
                        method: 'POST',
                        headers: createHttpHeaders({ 'content-type': 'application/json', accept: 'application/json' }),
                        body: JSON.stringify(batch),
                        timeout: 10_000,
                    }),
                );
                if (response.status === 200) {
                    return;
                }
                const detail = `${response.status} ${(response.bodyAsText ?? '').slice(0, 300)}`;
                if (response.status === 206) {
                    again = itemsToResend(response.bodyAsText ?? undefined, batch);
                    const note = again.length ? `; ${again.length} to send again` : '';
                    log?.warn(`Application Insights accepted only part of ${batch.length} event(s)${note}: ${detail}`);
                } else if (resendBatch.has(response.status) && !last) {
                    again = batch;
                    log?.warn(`Application Insights: ${batch.length} event(s) to send again: ${detail}`);
                } else {
                    log?.warn(`Application Insights: ${batch.length} event(s) not sent: ${detail}`);
                }
            } catch (err) {
                log?.warn(`Application Insights: ${batch.length} event(s) not sent: ${ensureErrorType(err).message}`);
            }
            if (last) {
                if (again.length) {
                    log?.warn(`Application Insights: ${again.length} event(s) not sent after ${attempt + 1} tries`);
                }
                return;
            }
            batch = again;
            if (batch.length) {
                await new Promise((resolve) => setTimeout(resolve, this.settings.retryDelayInMs * 2 ** attempt));
            }
        }
    }

    private envelope(event: TelemetryEvent) {
        const { trace } = event;
        const tags: Record<string, string> = { 'ai.cloud.role': this.settings.cloudRole };
        // The host's own request and trace items for the invocation share this operation id, so the custom event
        // sits in the same end-to-end transaction view.
        const operationId = trace.operationId ?? trace.correlationId;
        if (operationId) {
            tags['ai.operation.id'] = operationId;
        }
        return {
            name: 'Microsoft.ApplicationInsights.Event',
            time: event.time.toISOString(),
            iKey: this.settings.instrumentationKey,
            tags,
            data: {
                baseType: 'EventData',
                baseData: {
                    ver: 2,
                    name: event.name,
                    properties: {
                        ...event.properties,
                        ...(trace.invocationId ? { invocationId: trace.invocationId } : {}),
                    },
                },
            },
        };
    }
}

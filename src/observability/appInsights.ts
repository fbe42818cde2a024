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

    private async send(log?: Logger): Promise<void> {
        const batch = this.buffer;
        this.buffer = [];
        try {
            const response = await this.pipeline.sendRequest(
                this.httpClient,
                createPipelineRequest({
                    url: `${this.settings.ingestionEndpoint}/v2.1/track`,
                    method: 'POST',
                    headers: createHttpHeaders({ 'content-type': 'application/json', accept: 'application/json' }),
                    body: JSON.stringify(batch.map((event) => this.envelope(event))),
                    timeout: 10_000,
                }),
            );
            if (response.status === 200) {
                return;
            }
            const detail = `${response.status} ${(response.bodyAsText ?? '').slice(0, 300)}`;
            log?.warn(
                response.status === 206
                    ? `Application Insights accepted only part of ${batch.length} event(s): ${detail}`
                    : `Application Insights: ${batch.length} event(s) not sent: ${detail}`,
            );
        } catch (err) {
            log?.warn(`Application Insights: ${batch.length} event(s) not sent: ${ensureErrorType(err).message}`);
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

import type { IncomingMessage, ServerResponse } from 'node:http';
import { applyFault, bearerAudience, FaultPlan, sendJson, startServer, type RunningServer } from './server';

/**
 * Application Insights' ingestion endpoint (`POST /v2.1/track`), as the SDKs use it: a JSON array of envelopes in,
 * `{ itemsReceived, itemsAccepted, errors: [{ index, statusCode, message }] }` out; 200 when every item was accepted,
 * 206 when only some were, 400 when none was. With Entra auth required (local auth disabled on the resource), a call
 * without a bearer token for the Azure Monitor audience gets 401. Faults follow the same contract as the other
 * emulators (429 with Retry-After, 5xx).
 */

export interface TrackedEnvelope {
    name: string;
    time: string;
    iKey: string;
    tags: Record<string, string>;
    data: { baseType: string; baseData: { ver: number; name?: string; properties?: Record<string, string> } };
}

export class AppInsightsEmulator {
    readonly envelopes: TrackedEnvelope[] = [];
    /** Ingestion calls received, accepted or not. */
    posts = 0;
    readonly faults = new FaultPlan();
    /** Calls refused for authentication, to check that a token was sent. */
    unauthorised = 0;

    private constructor(
        private readonly server: RunningServer,
        readonly instrumentationKey: string,
        /** The token audience required, or undefined when local (key-only) auth is allowed. */
        readonly requiredAudience: string | undefined,
    ) {}

    static async start(
        options: { instrumentationKey?: string; requireEntraAuth?: boolean } = {},
    ): Promise<AppInsightsEmulator> {
        const self: { current?: AppInsightsEmulator } = {};
        const server = await startServer((req, res, body) => self.current!.handle(req, res, body), { https: true });
        self.current = new AppInsightsEmulator(
            server,
            options.instrumentationKey ?? '00000000-1111-4222-8333-444444444444',
            options.requireEntraAuth === false ? undefined : 'https://monitor.azure.com/',
        );
        return self.current;
    }

    get url(): string {
        return this.server.url;
    }

    get connectionString(): string {
        return `InstrumentationKey=${this.instrumentationKey};IngestionEndpoint=${this.server.url}/;LiveEndpoint=${this.server.url}/`;
    }

    /** The custom events received, by name, with their properties and tags. */
    events(name?: string): { name: string; properties: Record<string, string>; tags: Record<string, string> }[] {
        return this.envelopes
            .filter((e) => e.data.baseType === 'EventData' && (name === undefined || e.data.baseData.name === name))
            .map((e) => ({
                name: e.data.baseData.name ?? '',
                properties: e.data.baseData.properties ?? {},
                tags: e.tags,
            }));
    }

    reset(): void {
        this.envelopes.length = 0;
        this.posts = 0;
        this.faults.clear();
        this.unauthorised = 0;
    }

    close(): Promise<void> {
        return this.server.close();
    }

    private async handle(req: IncomingMessage, res: ServerResponse, body: string): Promise<void> {
        const path = new URL(req.url ?? '/', 'https://localhost').pathname;
        if (req.method !== 'POST' || !/^\/v2(\.1)?\/track$/.test(path)) {
            sendJson(res, 404, { error: { code: 'NotFound', message: `${req.method} ${path}` } });
            return;
        }
        const errorBody = (status: number, code: string) => ({
            itemsReceived: 0,
            itemsAccepted: 0,
            errors: [{ index: 0, statusCode: status, message: code }],
        });
        this.posts += 1;
        if (await applyFault(this.faults.take('POST', path), res, errorBody)) {
            return;
        }
        // The documented audience is `https://monitor.azure.com`; SDKs ask with and without the trailing slash.
        const audience = bearerAudience(req.headers.authorization)?.replace(/\/$/, '');
        if (this.requiredAudience && audience !== this.requiredAudience.replace(/\/$/, '')) {
            this.unauthorised += 1;
            sendJson(res, 401, errorBody(401, 'Authentication required: a Microsoft Entra token for Azure Monitor'));
            return;
        }
        let list: unknown[];
        try {
            // A JSON array (or one object), or `x-json-stream`: one envelope per line, as the older SDKs send.
            const stream = /x-json-stream/i.test(req.headers['content-type'] ?? '');
            const items: unknown = stream
                ? body
                      .split('\n')
                      .filter((line) => line.trim())
                      .map((line) => JSON.parse(line) as unknown)
                : JSON.parse(body);
            list = Array.isArray(items) ? items : [items];
        } catch {
            sendJson(res, 400, errorBody(400, 'Invalid JSON'));
            return;
        }
        const errors: { index: number; statusCode: number; message: string }[] = [];
        list.forEach((item, index) => {
            const problem = this.problemOf(item);
            if (problem) {
                errors.push({ index, statusCode: 400, message: problem });
            } else {
                this.envelopes.push(item as TrackedEnvelope);
            }
        });
        const accepted = list.length - errors.length;
        sendJson(res, errors.length === 0 ? 200 : accepted > 0 ? 206 : 400, {
            itemsReceived: list.length,
            itemsAccepted: accepted,
            errors,
        });
    }

    private problemOf(item: unknown): string | undefined {
        const e = item as Partial<TrackedEnvelope> | null;
        if (!e || typeof e !== 'object') {
            return 'Item is not an object';
        }
        if (e.iKey !== this.instrumentationKey) {
            return 'Invalid instrumentation key';
        }
        if (typeof e.name !== 'string' || typeof e.time !== 'string' || Number.isNaN(Date.parse(e.time))) {
            return 'Field name or time is missing or invalid';
        }
        const base = e.data?.baseData;
        if (!e.data || typeof e.data.baseType !== 'string' || !base) {
            return 'Field data.baseType or data.baseData is missing';
        }
        // The swagger requires a name of EventData (and RequestData); MessageData and ExceptionData have none.
        if (e.data.baseType === 'EventData' && typeof base.name !== 'string') {
            return 'Field data.baseData.name is missing';
        }
        if (typeof base.ver !== 'number') {
            return 'Field data.baseData.ver is missing';
        }
        const properties = base.properties ?? {};
        if (Object.values(properties).some((v) => typeof v !== 'string')) {
            return 'Property values must be strings';
        }
        return undefined;
    }
}

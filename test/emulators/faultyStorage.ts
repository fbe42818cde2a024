import { randomUUID } from 'node:crypto';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { FaultPlan, hang, type Fault } from './server';

/**
 * A fault-injecting HTTP proxy in front of Azurite's Table and Queue endpoints (and its Blob endpoint when asked). Azurite is a separate process, so its
 * faults are injected on the way: each request asks the same `FaultPlan` the emulators use and, when it gets a fault,
 * is answered the way Azure Storage answers (its REST error formats), never reaches Azurite, or reaches it and loses
 * its answer. Everything else is passed through byte for byte, so Shared Key signatures, ETags, 409 and 412 stay
 * Azurite's own.
 *
 * A throttle is Azure Storage's: 503 ServerBusy (standard storage accounts throttle with 503, not 429; the Cosmos DB
 * Table API uses 429), with the plan's Retry-After. An error is 500 InternalError.
 */

export type StorageService = 'table' | 'queue' | 'blob';

const endpointKeys: Record<StorageService, string> = {
    table: 'TableEndpoint',
    queue: 'QueueEndpoint',
    blob: 'BlobEndpoint',
};

export interface ProxiedRequest {
    service: StorageService;
    method: string;
    path: string;
    /** The fault injected into this request, if any. */
    fault?: Fault['kind'];
    /** Set once the proxy has given its answer (or dropped it). */
    answered?: boolean;
}

interface Endpoint {
    service: StorageService;
    target: URL;
    server: http.Server;
    url: string;
}

const serviceMessages: Record<string, string> = {
    ServerBusy: 'The server is busy.',
    InternalError: 'The server encountered an internal error. Please retry the request.',
};

export class FaultyStorage {
    readonly faults = new FaultPlan();
    readonly requests: ProxiedRequest[] = [];

    private constructor(
        private readonly connectionStringIn: string,
        private readonly endpoints: Endpoint[],
        private readonly throttleStatus: number,
    ) {}

    /**
     * Starts one proxy per service in the connection string (`TableEndpoint`, `QueueEndpoint`, and `BlobEndpoint`
     * when `services` names it); `throttleStatus` is 503 unless told otherwise (429 for a Cosmos-like table service).
     */
    static async start(
        connectionString: string,
        options: { throttleStatus?: number; services?: readonly StorageService[] } = {},
    ): Promise<FaultyStorage> {
        const endpoints: Endpoint[] = [];
        const proxy = new FaultyStorage(connectionString, endpoints, options.throttleStatus ?? 503);
        for (const service of options.services ?? (['table', 'queue'] as const)) {
            const raw = setting(connectionString, endpointKeys[service]);
            if (!raw) {
                throw new Error(`FaultyStorage: the connection string has no ${service} endpoint`);
            }
            const target = new URL(raw);
            const server = http.createServer((req, res) => proxy.forward(service, target, req, res));
            await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
            const { port } = server.address() as AddressInfo;
            endpoints.push({ service, target, server, url: `http://127.0.0.1:${port}${target.pathname}` });
        }
        return proxy;
    }

    /** The same connection string with the proxied endpoints pointing at the proxy (the others stay direct). */
    get connectionString(): string {
        return this.connectionStringIn
            .split(';')
            .map((part) => {
                const [key] = part.split('=', 1);
                const endpoint = this.endpoints.find((e) => endpointKeys[e.service] === key);
                return endpoint ? `${key}=${endpoint.url}` : part;
            })
            .join(';');
    }

    /** Requests seen, per service. */
    counts(): Record<StorageService, number> {
        const counts = { table: 0, queue: 0, blob: 0 };
        for (const r of this.requests) {
            counts[r.service] += 1;
        }
        return counts;
    }

    async close(): Promise<void> {
        await Promise.all(
            this.endpoints.map(
                (e) =>
                    new Promise<void>((resolve) => {
                        e.server.closeAllConnections();
                        e.server.close(() => resolve());
                    }),
            ),
        );
    }

    private forward(service: StorageService, target: URL, req: http.IncomingMessage, res: http.ServerResponse): void {
        const chunks: Buffer[] = [];
        req.on('data', (c: Buffer) => chunks.push(c));
        req.on('end', () => {
            const path = new URL(req.url ?? '/', 'http://localhost').pathname;
            const method = req.method ?? 'GET';
            const fault = this.faults.take(method, path);
            const seen: ProxiedRequest = { service, method, path, ...(fault ? { fault: fault.kind } : {}) };
            this.requests.push(seen);
            this.serve(service, target, req, Buffer.concat(chunks), res, fault)
                .catch(() => {
                    if (!res.headersSent) {
                        res.writeHead(502);
                    }
                    res.end();
                })
                .finally(() => (seen.answered = true));
        });
    }

    private async serve(
        service: StorageService,
        target: URL,
        req: http.IncomingMessage,
        body: Buffer,
        res: http.ServerResponse,
        fault: Fault | undefined,
    ): Promise<void> {
        switch (fault?.kind) {
            case 'throttle':
                return sendError(service, res, this.throttleStatus, 'ServerBusy', {
                    'retry-after': String(fault.retryAfterSeconds),
                });
            case 'error':
                return sendError(service, res, fault.status, fault.code ?? 'InternalError');
            case 'drop':
                res.socket?.destroy();
                return;
            case 'hang':
                if (fault.afterProcessing) {
                    // Azurite carries the request out; its answer is thrown away.
                    await send(target, req, body);
                }
                await hang(res, fault.dropAfterMs);
                return;
            case 'slow':
                await new Promise((r) => setTimeout(r, fault.delayMs));
                break;
            default:
                break;
        }
        const answer = await send(target, req, body);
        res.writeHead(answer.status, answer.headers);
        res.end(answer.body);
    }
}

/** Passes one request to Azurite and reads the whole answer. */
function send(
    target: URL,
    req: http.IncomingMessage,
    body: Buffer,
): Promise<{ status: number; headers: http.OutgoingHttpHeaders; body: Buffer }> {
    const headers: http.OutgoingHttpHeaders = { ...req.headers, host: target.host, 'content-length': body.length };
    delete headers.connection;
    delete headers['transfer-encoding'];
    return new Promise((resolve, reject) => {
        const out = http.request(
            { host: target.hostname, port: target.port, method: req.method, path: req.url, headers },
            (answer) => {
                const chunks: Buffer[] = [];
                answer.on('data', (c: Buffer) => chunks.push(c));
                answer.on('error', reject);
                answer.on('end', () => {
                    const copied: http.OutgoingHttpHeaders = { ...answer.headers };
                    delete copied.connection;
                    delete copied['keep-alive'];
                    delete copied['transfer-encoding'];
                    const data = Buffer.concat(chunks);
                    copied['content-length'] = data.length;
                    resolve({ status: answer.statusCode ?? 502, headers: copied, body: data });
                });
            },
        );
        out.on('error', reject);
        out.end(body);
    });
}

/**
 * An error as the service writes it: Table storage as OData JSON (`odata.error`), Queue and Blob storage as XML, all with the
 * code in `x-ms-error-code`, which the SDKs read first.
 */
function sendError(
    service: StorageService,
    res: http.ServerResponse,
    status: number,
    code: string,
    extra: Record<string, string> = {},
): void {
    const requestId = randomUUID();
    const message = `${serviceMessages[code] ?? 'Emulated fault.'}\nRequestId:${requestId}\nTime:${new Date().toISOString()}`;
    const body =
        service === 'table'
            ? JSON.stringify({ 'odata.error': { code, message: { lang: 'en-US', value: message } } })
            : `<?xml version="1.0" encoding="utf-8"?><Error><Code>${code}</Code><Message>${message}</Message></Error>`;
    res.writeHead(status, {
        'content-type':
            service === 'table'
                ? 'application/json;odata=minimalmetadata;streaming=true;charset=utf-8'
                : 'application/xml',
        'content-length': Buffer.byteLength(body),
        'x-ms-error-code': code,
        'x-ms-request-id': requestId,
        ...extra,
    });
    res.end(body);
}

function setting(connectionString: string, key: string): string | undefined {
    for (const part of connectionString.split(';')) {
        const eq = part.indexOf('=');
        if (eq > 0 && part.slice(0, eq) === key) {
            return part.slice(eq + 1);
        }
    }
    return undefined;
}

import { readFileSync } from 'node:fs';
import * as http from 'node:http';
import * as https from 'node:https';
import type { AddressInfo } from 'node:net';
import * as path from 'node:path';

/**
 * The shared plumbing of the emulators: an https (or http) server on a random loopback port with the test certificate
 * that `scripts/test-certs.js` writes, JSON helpers, and fault injection that follows the REST contracts (429 with
 * Retry-After, 5xx with an error body, slow answers).
 */

// Serve the certificate Node was told to trust (NODE_EXTRA_CA_CERTS), wherever this file was compiled to.
export const certDir = process.env.NODE_EXTRA_CA_CERTS
    ? path.dirname(path.resolve(process.env.NODE_EXTRA_CA_CERTS))
    : path.join(process.cwd(), '.certs');

export interface RunningServer {
    url: string;
    port: number;
    close(): Promise<void>;
}

export type Handler = (req: http.IncomingMessage, res: http.ServerResponse, body: string) => void | Promise<void>;

export async function startServer(handler: Handler, options: { https: boolean }): Promise<RunningServer> {
    const listener: http.RequestListener = (req, res) => {
        const chunks: Buffer[] = [];
        req.on('data', (c: Buffer) => chunks.push(c));
        req.on('end', () => {
            Promise.resolve(handler(req, res, Buffer.concat(chunks).toString('utf8'))).catch((err: unknown) => {
                if (!res.headersSent) {
                    sendJson(res, 500, { error: { code: 'EmulatorError', message: String(err) } });
                } else {
                    res.destroy();
                }
            });
        });
    };
    const server = options.https
        ? https.createServer(
              {
                  cert: readFileSync(path.join(certDir, 'emulators.crt')),
                  key: readFileSync(path.join(certDir, 'emulators.key')),
              },
              listener,
          )
        : http.createServer(listener);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as AddressInfo).port;
    return {
        url: `${options.https ? 'https' : 'http'}://127.0.0.1:${port}`,
        port,
        close: () =>
            new Promise<void>((resolve) => {
                server.closeAllConnections();
                server.close(() => resolve());
            }),
    };
}

export function sendJson(
    res: http.ServerResponse,
    status: number,
    body: unknown,
    headers: Record<string, string> = {},
): void {
    const text = body === undefined ? '' : JSON.stringify(body);
    res.writeHead(status, {
        'content-type': 'application/json; charset=utf-8',
        'x-ms-request-id': cryptoRandomId(),
        ...headers,
    });
    res.end(text);
}

function cryptoRandomId(): string {
    return globalThis.crypto.randomUUID();
}

/** A fault to inject into the next matching requests. */
export type Fault =
    | { kind: 'throttle'; retryAfterSeconds: number }
    | { kind: 'error'; status: number; code?: string }
    | { kind: 'slow'; delayMs: number }
    | { kind: 'drop' };

interface QueuedFault {
    fault: Fault;
    remaining: number;
    match: (method: string, path: string) => boolean;
}

/**
 * A queue of faults. Each request asks `take`; a matching fault is used `times` times, in the order they were added.
 */
export class FaultPlan {
    private readonly faults: QueuedFault[] = [];

    add(fault: Fault, options: { times?: number; method?: string; pathIncludes?: string } = {}): void {
        const method = options.method?.toUpperCase();
        const pathIncludes = options.pathIncludes?.toLowerCase();
        this.faults.push({
            fault,
            remaining: options.times ?? 1,
            match: (m, p) =>
                (method === undefined || m.toUpperCase() === method) &&
                (pathIncludes === undefined || p.toLowerCase().includes(pathIncludes)),
        });
    }

    clear(): void {
        this.faults.length = 0;
    }

    take(method: string, path: string): Fault | undefined {
        const found = this.faults.find((f) => f.remaining > 0 && f.match(method, path));
        if (!found) {
            return undefined;
        }
        found.remaining -= 1;
        return found.fault;
    }
}

/**
 * Applies a fault. Returns true when the response was fully handled (throttle, error, drop); a slow fault only waits
 * and lets the normal handler answer.
 */
export async function applyFault(
    fault: Fault | undefined,
    res: http.ServerResponse,
    errorBody: (status: number, code: string) => unknown,
): Promise<boolean> {
    if (!fault) {
        return false;
    }
    switch (fault.kind) {
        case 'throttle':
            sendJson(res, 429, errorBody(429, 'TooManyRequests'), { 'retry-after': String(fault.retryAfterSeconds) });
            return true;
        case 'error':
            sendJson(res, fault.status, errorBody(fault.status, fault.code ?? 'InternalServerError'));
            return true;
        case 'slow':
            await new Promise((r) => setTimeout(r, fault.delayMs));
            return false;
        case 'drop':
            res.socket?.destroy();
            return true;
    }
}

/** Reads the emulator-issued bearer token (see tokenEmulator.ts) without verifying it: the emulators only need its audience. */
export function bearerAudience(header: string | undefined): string | undefined {
    const m = /^Bearer\s+([^.]+)\.([^.]+)\.?/i.exec(header ?? '');
    if (!m) {
        return undefined;
    }
    try {
        const payload = JSON.parse(Buffer.from(m[2]!, 'base64url').toString('utf8')) as { aud?: unknown };
        return typeof payload.aud === 'string' ? payload.aud : undefined;
    } catch {
        return undefined;
    }
}

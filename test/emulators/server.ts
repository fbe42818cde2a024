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
    | { kind: 'drop' }
    | {
          /**
           * A timeout: the answer never comes. The connection is held open until the client gives up (its own timeout),
           * or dropped after `dropAfterMs` so that a client without one shows up as slow, not as a wedged run. With
           * `afterProcessing` the request is carried out first and only its answer is lost (the ambiguous case: did my
           * write happen?); an emulator that cannot do that treats it as a lost request.
           */
          kind: 'hang';
          afterProcessing: boolean;
          dropAfterMs: number;
      };

export type FaultKind = Fault['kind'];

interface QueuedFault {
    fault: Fault;
    remaining: number;
    match: (method: string, path: string) => boolean;
}

/** What `chaos` may pick from: a throttle (429 or the service's own, with Retry-After), a 500, a timeout. */
export type ChaosKind = 'throttle' | 'error' | 'timeout';

export interface ChaosOptions {
    /** The share of requests that fail, 0 to 1. */
    rate: number;
    /** Seeds the generator: the same seed gives the same sequence of faults (under concurrency, arrival order decides
     * which request gets which). */
    seed: number;
    /** The Retry-After of a throttle, or the values to draw it from; default 1. */
    retryAfterSeconds?: number | readonly number[];
    /** Default all three, equally likely. */
    kinds?: readonly ChaosKind[];
    /** Of the timeouts, the share whose request was carried out before the answer was lost; default 0.5. */
    processedShare?: number;
    /** A timeout's connection is dropped after this long if the client has not given up by then; default 30 s. */
    hangMs?: number;
    /** Which requests may fail; default all. */
    match?: (method: string, path: string) => boolean;
}

/** Mulberry32: a small, fast, well-mixed 32-bit generator, plenty for picking faults reproducibly. */
export function seededRandom(seed: number): () => number {
    let a = seed >>> 0;
    return () => {
        a = (a + 0x6d2b79f5) >>> 0;
        let t = a;
        t = Math.imul(t ^ (t >>> 15), t | 1);
        t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
        return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
    };
}

/**
 * The faults an emulator injects. Queued faults (`add`) come first, each used `times` times in the order added; then,
 * when `chaos` is on, each other request fails with probability `rate`, the kind drawn from a seeded generator.
 * `injected` counts every fault handed out, by kind.
 */
export class FaultPlan {
    private readonly faults: QueuedFault[] = [];
    private random?: () => number;
    private chaosOptions?: Required<Omit<ChaosOptions, 'match' | 'seed' | 'retryAfterSeconds'>> &
        Pick<ChaosOptions, 'match'> & { retryAfterSeconds: readonly number[] };
    readonly injected: Record<FaultKind, number> = { throttle: 0, error: 0, slow: 0, drop: 0, hang: 0 };

    add(
        fault: Fault,
        options: { times?: number; method?: string; pathIncludes?: string; pathPattern?: RegExp } = {},
    ): void {
        const method = options.method?.toUpperCase();
        const pathIncludes = options.pathIncludes?.toLowerCase();
        this.faults.push({
            fault,
            remaining: options.times ?? 1,
            match: (m, p) =>
                (method === undefined || m.toUpperCase() === method) &&
                (pathIncludes === undefined || p.toLowerCase().includes(pathIncludes)) &&
                (options.pathPattern === undefined || options.pathPattern.test(p)),
        });
    }

    /** Random faults on every matching request from now on; `chaos(undefined)` turns them off. */
    chaos(options: ChaosOptions | undefined): void {
        if (!options) {
            this.random = undefined;
            this.chaosOptions = undefined;
            return;
        }
        if (!(options.rate >= 0 && options.rate <= 1)) {
            throw new Error(`chaos: rate must be between 0 and 1, got ${options.rate}`);
        }
        this.random = seededRandom(options.seed);
        this.chaosOptions = {
            rate: options.rate,
            retryAfterSeconds: [options.retryAfterSeconds ?? 1].flat(),
            kinds: options.kinds ?? ['throttle', 'error', 'timeout'],
            processedShare: options.processedShare ?? 0.5,
            hangMs: options.hangMs ?? 30_000,
            match: options.match,
        };
    }

    /** Every fault handed out so far. */
    get injectedTotal(): number {
        return Object.values(this.injected).reduce((a, b) => a + b, 0);
    }

    /** Removes the queued faults and turns chaos off. */
    clear(): void {
        this.faults.length = 0;
        this.chaos(undefined);
    }

    take(method: string, path: string): Fault | undefined {
        const fault = this.next(method, path);
        if (fault) {
            this.injected[fault.kind] += 1;
        }
        return fault;
    }

    private next(method: string, path: string): Fault | undefined {
        const found = this.faults.find((f) => f.remaining > 0 && f.match(method, path));
        if (found) {
            found.remaining -= 1;
            return found.fault;
        }
        const options = this.chaosOptions;
        const random = this.random;
        if (!options || !random || (options.match && !options.match(method, path))) {
            return undefined;
        }
        // Three draws for every eligible request, whether it fails or not, so the sequence depends only on the count.
        const fails = random() < options.rate;
        const pick = random();
        const wait = random();
        if (!fails || options.kinds.length === 0) {
            return undefined;
        }
        const scaled = pick * options.kinds.length;
        const index = Math.min(options.kinds.length - 1, Math.floor(scaled));
        switch (options.kinds[index]) {
            case 'throttle': {
                const waits = options.retryAfterSeconds;
                const retryAfterSeconds = waits[Math.min(waits.length - 1, Math.floor(wait * waits.length))] ?? 1;
                return { kind: 'throttle', retryAfterSeconds };
            }
            case 'error':
                return { kind: 'error', status: 500 };
            default:
                // The fraction left over from picking the kind decides whether the request was carried out.
                return {
                    kind: 'hang',
                    afterProcessing: scaled - index < options.processedShare,
                    dropAfterMs: options.hangMs,
                };
        }
    }
}

/** Holds a request without answering until the client goes away, or drops it after `ms`. */
export function hang(res: http.ServerResponse, ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
        const timer = setTimeout(() => {
            res.socket?.destroy();
            resolve();
        }, ms);
        res.once('close', () => {
            clearTimeout(timer);
            resolve();
        });
    });
}

/**
 * Applies a fault. Returns true when the response was fully handled (throttle, error, drop, hang); a slow fault only
 * waits and lets the normal handler answer. A hang here is always a lost request: use `serveWithFault` to carry the
 * request out before its answer is lost.
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
        case 'hang':
            await hang(res, fault.dropAfterMs);
            return true;
    }
}

/**
 * Serves a request under a fault: as `applyFault`, except that a hang after processing runs `handle` against a
 * response that goes nowhere (the request takes effect, its answer is lost) before holding the real one.
 */
export async function serveWithFault(
    fault: Fault | undefined,
    req: http.IncomingMessage,
    res: http.ServerResponse,
    errorBody: (status: number, code: string) => unknown,
    handle: (res: http.ServerResponse) => void | Promise<void>,
): Promise<void> {
    if (fault?.kind === 'hang' && fault.afterProcessing) {
        // A response with no socket buffers what is written to it, and nobody reads it.
        await handle(new http.ServerResponse(req));
        await hang(res, fault.dropAfterMs);
        return;
    }
    if (await applyFault(fault, res, errorBody)) {
        return;
    }
    await handle(res);
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

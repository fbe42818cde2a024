import { randomUUID } from 'node:crypto';
import type { AccessToken, TokenCredential } from '@azure/core-auth';
import { createHttpHeaders, createPipelineRequest, type HttpClient, type HttpHeaders } from '@azure/core-rest-pipeline';
import type { Context, FetchOptions, Middleware } from '@microsoft/microsoft-graph-client';

type GraphModule = typeof import('@microsoft/microsoft-graph-client');

/** Where the app's Graph token may go, and how it is had. */
export interface GraphTokenGrant {
    credential: TokenCredential;
    /** The token's scope, e.g. `https://graph.microsoft.com/.default`. */
    scope: string;
    /** The only origin the token is sent to (`https://graph.microsoft.com`): never a redirect's, never a nextLink's. */
    origin: string;
}

/**
 * The app's Graph middleware chain: graph-client's retry and redirect handlers, then the token and the send
 * (`CoreHttpMessageHandler`). A redirect is followed only to an absolute URL on the Graph origin: an answer from
 * anywhere else would be taken as Graph's, and a membership check's answer decides who may approve. A redirect
 * elsewhere is returned as it came, so the call fails with its 3xx.
 */
export function graphMiddleware(module: GraphModule, client: HttpClient, grant: GraphTokenGrant): Middleware[] {
    return [
        new module.RetryHandler(new module.RetryHandlerOptions()),
        new module.RedirectHandler(
            new module.RedirectHandlerOptions(undefined, (response) => {
                const location = response.headers.get('location');
                return location !== null && originOf(location) === grant.origin;
            }),
        ),
        // A credential that gives no token is a misconfiguration, refused as graph-client's own provider refuses it.
        new CoreHttpMessageHandler(client, grant, (message) => new module.GraphClientError(message)),
    ];
}

/**
 * graph-client's last middleware: the app's token, for Graph's origin only, and the send through the Azure core HTTP
 * client the app's other clients use. graph-client's retry and redirect handlers run before it, unchanged.
 *
 * Why not graph-client's own authentication, telemetry and `fetch` handlers: each looks at the global `Request` to
 * set a header (MiddlewareUtil), and in Node.js 20 the first look at any fetch global loads Node's whole fetch
 * implementation (undici): about 40 ms of a cold start here, for one header. `fetch` itself then parses answers with a
 * WebAssembly HTTP parser that V8 compiles once more, optimised, on a background thread once a few answers make it hot
 * (about 260 ms of CPU on this machine, and node waits for it before it exits), and keeps a connection pool and TLS
 * sessions of its own. So this sends over the shared core client, and answers graph-client with a `GraphAnswer`: the
 * parts of a fetch Response that graph-client and the app read, without constructing one.
 *
 * The token follows graph-client's rule (only to Graph's host, only over https) more strictly: it is added here, at
 * the last hop, only when the URL's origin (scheme, host and port) is the configured endpoint's, so no redirect and no
 * nextLink can carry it elsewhere, and an Authorization header set before is dropped for any other origin.
 */
export class CoreHttpMessageHandler implements Middleware {
    constructor(
        private readonly client: HttpClient,
        private readonly grant?: GraphTokenGrant,
        private readonly noToken: (message: string) => Error = (message) => new Error(message),
    ) {}

    async execute(context: Context): Promise<void> {
        const request = context.request;
        if (typeof request !== 'string') {
            // graph-client passes the URL as a string; a Request object would carry headers and body we would drop.
            throw new TypeError('Graph request: expected the URL as a string');
        }
        const options = context.options ?? {};
        const headers = createHttpHeaders();
        forEachHeader(options.headers, (name, value) => headers.set(name, value));
        if (!headers.has('accept-encoding')) {
            // As fetch asks: a page of 999 members is much smaller compressed, and the core client inflates it.
            headers.set('accept-encoding', 'gzip, deflate');
        }
        const signal = options.signal ?? undefined;
        if (this.grant) {
            if (originOf(request) === this.grant.origin) {
                headers.set('authorization', `Bearer ${await this.token(signal)}`);
                // What graph-client's telemetry handler sent: the id Graph's support asks for.
                if (!headers.has('client-request-id')) {
                    headers.set('client-request-id', randomUUID());
                }
            } else {
                headers.delete('authorization');
            }
        }
        const answer = await this.client
            .sendRequest(
                createPipelineRequest({
                    url: request,
                    method: (options.method ?? 'GET').toUpperCase() as 'GET',
                    headers,
                    ...(options.body !== undefined && options.body !== null ? { body: requestBody(options.body) } : {}),
                    ...(signal ? { abortSignal: signal } : {}),
                }),
            )
            .catch((err: unknown) => {
                // As `fetch` does: an aborted call fails with the signal's reason (a deadline's TimeoutError says so).
                throw signal?.aborted && signal.reason !== undefined ? signal.reason : err;
            });
        // graph-client's RedirectHandler decides from `url` whether a redirect leaves the host, as fetch sets it.
        context.response = new GraphAnswer(
            request,
            answer.status,
            answer.headers,
            answer.bodyAsText ?? '',
        ) as unknown as Response;
    }

    private async token(signal: AbortSignal | undefined): Promise<string> {
        const grant = this.grant!;
        // The call's deadline bounds its wait for the token, but is not handed to the credential: a token fetch is
        // shared by every caller waiting for the same scope, and one call's deadline must not fail the others.
        const token: AccessToken | null = await untilAborted(grant.credential.getToken(grant.scope), signal);
        if (!token?.token) {
            throw this.noToken(`Graph request: the credential gave no token for ${grant.scope}`);
        }
        return token.token;
    }
}

/**
 * What graph-client reads of a fetch Response (status, ok, url, headers.get/has, json, text), over the core client's
 * answer. The app asks Graph for JSON only; `body` is null, as a Response's is when there is none to stream.
 */
export class GraphAnswer {
    readonly ok: boolean;
    readonly statusText = '';
    readonly redirected = false;
    readonly type = 'basic';
    readonly body = null;
    readonly headers: GraphAnswerHeaders;

    constructor(
        readonly url: string,
        readonly status: number,
        headers: HttpHeaders,
        private readonly bodyText: string,
    ) {
        this.ok = status >= 200 && status <= 299;
        this.headers = new GraphAnswerHeaders(headers);
    }

    text(): Promise<string> {
        return Promise.resolve(this.bodyText);
    }

    json(): Promise<unknown> {
        // As fetch's json(): an empty or malformed body is a SyntaxError.
        return Promise.resolve().then(() => JSON.parse(this.bodyText) as unknown);
    }

    arrayBuffer(): Promise<ArrayBuffer> {
        return Promise.resolve(new TextEncoder().encode(this.bodyText).buffer);
    }
}

/** The read side of fetch's Headers: `get` answers null for a header not sent, as graph-client expects. */
export class GraphAnswerHeaders {
    constructor(private readonly headers: HttpHeaders) {}

    get(name: string): string | null {
        return this.headers.get(name) ?? null;
    }

    has(name: string): boolean {
        return this.headers.has(name);
    }

    forEach(callback: (value: string, name: string) => void): void {
        for (const [name, value] of this.headers) {
            callback(value, name);
        }
    }
}

/** `work`'s outcome, or the signal's reason if it aborts first (the work itself goes on for whoever else waits). */
function untilAborted<T>(work: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
    if (!signal) {
        return work;
    }
    if (signal.aborted) {
        work.catch(() => undefined);
        return Promise.reject(signal.reason as Error);
    }
    return new Promise<T>((resolve, reject) => {
        const abort = () => reject(signal.reason as Error);
        signal.addEventListener('abort', abort, { once: true });
        work.then(
            (value) => {
                signal.removeEventListener('abort', abort);
                resolve(value);
            },
            (err: unknown) => {
                signal.removeEventListener('abort', abort);
                reject(err as Error);
            },
        );
    });
}

function originOf(url: string): string | undefined {
    try {
        return new URL(url).origin;
    } catch {
        return undefined;
    }
}

function forEachHeader(headers: FetchOptions['headers'], set: (name: string, value: string) => void): void {
    if (!headers) {
        return;
    }
    if (Array.isArray(headers)) {
        for (const [name, value] of headers) {
            if (name !== undefined && value !== undefined) {
                set(name, value);
            }
        }
    } else if (typeof (headers as { forEach?: unknown }).forEach === 'function') {
        // A Headers object. Told apart by shape, not `instanceof Headers`: that look would load undici (see above).
        (headers as { forEach(cb: (value: string, name: string) => void): void }).forEach((value, name) =>
            set(name, value),
        );
    } else {
        for (const [name, value] of Object.entries(headers as Record<string, unknown>)) {
            if (typeof value === 'string') {
                set(name, value);
            }
        }
    }
}

function requestBody(body: unknown): string | Uint8Array {
    if (typeof body === 'string' || body instanceof Uint8Array) {
        return body;
    }
    // The app sends JSON only, which graph-client has serialised to a string by now.
    throw new TypeError(`Graph request: unsupported body type ${Object.prototype.toString.call(body)}`);
}

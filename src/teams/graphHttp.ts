import { createHttpHeaders, createPipelineRequest, type HttpClient } from '@azure/core-rest-pipeline';
import type { Context, FetchOptions, Middleware } from '@microsoft/microsoft-graph-client';

/**
 * graph-client's last middleware, sending through the Azure core HTTP client the app's other clients use, in place of
 * graph-client's own, which calls the global `fetch`.
 *
 * Why: `fetch` parses answers with a WebAssembly HTTP parser that V8 compiles once more, optimised, on a background
 * thread as soon as a few answers make it hot (about 260 ms of CPU on this machine's cold start, and node waits for
 * it before it exits); and it keeps a connection pool and TLS sessions of its own. Through the core client Graph
 * shares the app's one HTTP stack. The middlewares before it (auth, retry, redirect, telemetry) are graph-client's,
 * unchanged: they read and write `context.options` and `context.response` as they would around `fetch`.
 */
export class CoreHttpMessageHandler implements Middleware {
    constructor(private readonly client: HttpClient) {}

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
        const status = answer.status;
        // A Response may not carry a body with these statuses (the Fetch standard's null body statuses).
        const body = [101, 204, 205, 304].includes(status) ? null : (answer.bodyAsText ?? '');
        const response = new Response(body, { status, headers: answer.headers.toJSON() });
        // A constructed Response has an empty `url`, and graph-client's RedirectHandler decides from it whether a
        // redirect leaves the host: with it empty, the Authorization header would follow a redirect anywhere. fetch
        // sets it to the URL answered; so does this.
        Object.defineProperty(response, 'url', { value: request });
        context.response = response;
    }
}

function forEachHeader(headers: FetchOptions['headers'], set: (name: string, value: string) => void): void {
    if (!headers) {
        return;
    }
    if (headers instanceof Headers) {
        headers.forEach((value, name) => set(name, value));
    } else if (Array.isArray(headers)) {
        for (const [name, value] of headers) {
            if (name !== undefined && value !== undefined) {
                set(name, value);
            }
        }
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

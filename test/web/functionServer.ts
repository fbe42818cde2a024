import type * as http from 'node:http';
import { HttpRequest, HttpResponse, type HttpHandler } from '@azure/functions';
import { startServer } from '../emulators/server';
import { testContext } from '../harness';

/**
 * Serves one Azure Functions v4 HTTP handler over plain http on 127.0.0.1, so a real browser can use it: the node
 * request becomes the `HttpRequest` the Functions host would build, and the handler's answer goes back as the host
 * would write it. Only the route template and the methods are emulated, not the host's other behaviour (cookies,
 * content negotiation, function keys).
 */

export interface FunctionServerOptions {
    /** The route as registered with `app.http`, e.g. `requests/{id}`; served under `/api/`, as the host does. */
    route: string;
    handler: HttpHandler;
    methods?: string[];
    /**
     * What the platform in front of the app does to the request headers before the host sees them, e.g. App Service
     * Authentication stripping a client's `x-ms-client-principal` and adding the signed-in user's.
     */
    platformHeaders?: (headers: Record<string, string>) => Record<string, string>;
}

export interface FunctionServer {
    /** `http://127.0.0.1:PORT`, no trailing slash. */
    url: string;
    /** The handler's log lines, for a failing test's message. */
    logs: string[];
    /** What the handler threw: answered with 500, and kept so a test can insist there was nothing. */
    errors: unknown[];
    close(): Promise<void>;
}

export async function startFunctionServer(options: FunctionServerOptions): Promise<FunctionServer> {
    const route = compileRoute(options.route);
    const methods = (options.methods ?? ['GET', 'POST']).map((m) => m.toUpperCase());
    const logs: string[] = [];
    const errors: unknown[] = [];
    const running = await startServer(
        async (req, res, body) => {
            const url = new URL(req.url ?? '/', running.url);
            const params = route(url.pathname);
            const method = (req.method ?? 'GET').toUpperCase();
            if (!params) {
                writePlain(res, 404, 'Not found');
                return;
            }
            if (!methods.includes(method)) {
                writePlain(res, 405, 'Method not allowed');
                return;
            }
            const headers = flattenHeaders(req.headers);
            const request = new HttpRequest({
                url: url.href,
                method,
                headers: options.platformHeaders ? options.platformHeaders(headers) : headers,
                ...(method === 'GET' || method === 'HEAD' ? {} : { body: { string: body } }),
                params,
            });
            const context = testContext(options.route);
            let response: HttpResponse;
            try {
                const result = await options.handler(request, context);
                // The host accepts either form; HttpResponse does the host's work of turning a body init into bytes.
                response = result instanceof HttpResponse ? result : new HttpResponse(result ?? {});
            } catch (err) {
                errors.push(err);
                writePlain(res, 500, 'The function failed');
                return;
            } finally {
                logs.push(...context.logs);
            }
            const outHeaders: Record<string, string> = {};
            response.headers.forEach((value, name) => {
                outHeaders[name] = value;
            });
            const bytes = Buffer.from(await response.arrayBuffer());
            res.writeHead(response.status, outHeaders);
            res.end(method === 'HEAD' ? undefined : bytes);
        },
        { https: false },
    );
    return { url: running.url, logs, errors, close: () => running.close() };
}

/** `requests/{id}` → a matcher of `/api/requests/<id>` giving `{ id }`; only plain `{name}` parameters. */
function compileRoute(template: string): (pathname: string) => Record<string, string> | undefined {
    const names: string[] = [];
    const pattern = template
        .replace(/^\/+|\/+$/g, '')
        .split('/')
        .map((segment) => {
            const param = /^\{([A-Za-z_]\w*)\}$/.exec(segment);
            if (param) {
                names.push(param[1]!);
                return '([^/]+)';
            }
            if (/[{}]/.test(segment)) {
                throw new Error(`Route segment ${segment} is not supported by this test server`);
            }
            return segment.replace(/[.*+?^$()|[\]\\]/g, '\\$&');
        })
        .join('/');
    const regex = new RegExp(`^/api/${pattern}/?$`, 'i');
    return (pathname) => {
        const m = regex.exec(pathname);
        if (!m) {
            return undefined;
        }
        try {
            return Object.fromEntries(names.map((name, i) => [name, decodeURIComponent(m[i + 1]!)]));
        } catch {
            // A malformed %-escape: the host does not route it either.
            return undefined;
        }
    };
}

function flattenHeaders(headers: http.IncomingHttpHeaders): Record<string, string> {
    const flat: Record<string, string> = {};
    for (const [name, value] of Object.entries(headers)) {
        if (value !== undefined) {
            flat[name] = Array.isArray(value) ? value.join(', ') : value;
        }
    }
    return flat;
}

function writePlain(res: http.ServerResponse, status: number, text: string): void {
    res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8' });
    res.end(text);
}

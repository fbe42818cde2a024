import { createHttpHeaders, type HttpClient, type PipelineRequest } from '@azure/core-rest-pipeline';
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import type { AccessToken } from '@azure/core-auth';
import * as graphModule from '@microsoft/microsoft-graph-client';
import { Client, type Context } from '@microsoft/microsoft-graph-client';
import { CoreHttpMessageHandler, graphMiddleware, type GraphTokenGrant } from '../../src/teams/graphHttp';

/** graph-client's last middleware on the core HTTP client: the token it adds, what it sends, what it answers. */
describe('CoreHttpMessageHandler', () => {
    function client(answer: { status: number; body?: string; headers?: Record<string, string> }) {
        const sent: PipelineRequest[] = [];
        const http: HttpClient = {
            sendRequest: async (request) => {
                sent.push(request);
                return {
                    request,
                    status: answer.status,
                    headers: createHttpHeaders(answer.headers ?? {}),
                    ...(answer.body !== undefined ? { bodyAsText: answer.body } : {}),
                };
            },
        };
        return { http, sent };
    }

    it('sends the method, headers (object or Headers) and body graph-client prepared, and answers with a Response', async () => {
        const { http, sent } = client({
            status: 200,
            body: '{"value":[]}',
            headers: { 'content-type': 'application/json' },
        });
        const handler = new CoreHttpMessageHandler(http);
        const context: Context = {
            request: 'https://graph.example/v1.0/users/x/checkMemberGroups',
            options: {
                method: 'post',
                headers: { Authorization: 'Bearer t', 'Content-Type': 'application/json' },
                body: '{"a":1}',
            },
        };
        await handler.execute(context);
        expect(sent[0]).toMatchObject({ url: context.request, method: 'POST', body: '{"a":1}' });
        expect(sent[0]?.headers.get('authorization')).toBe('Bearer t');
        expect(context.response?.status).toBe(200);
        expect(context.response?.url).toBe(context.request);
        expect(context.response?.headers.get('content-type')).toBe('application/json');
        expect(await context.response?.json()).toEqual({ value: [] });

        const withHeaders: Context = {
            request: 'https://graph.example/v1.0/me',
            options: { headers: new Headers({ ConsistencyLevel: 'eventual' }) },
        };
        await handler.execute(withHeaders);
        expect(sent[1]?.method).toBe('GET');
        expect(sent[1]?.headers.get('consistencylevel')).toBe('eventual');
    });

    /** graph-client's Client with the app's chain: its retry and redirect handlers, then this handler with a grant. */
    const grant = (origin = 'https://graph.example', credential?: GraphTokenGrant['credential']): GraphTokenGrant => ({
        credential: credential ?? {
            getToken: async () => ({ token: 'SECRET', expiresOnTimestamp: Date.now() + 3_600_000 }),
        },
        scope: `${origin}/.default`,
        origin,
    });

    /** graph-client's Client with the app's chain (graphMiddleware), as GraphDirectory builds it. */
    function graphClient(http: HttpClient, tokenGrant = grant()) {
        return Client.initWithMiddleware({
            middleware: graphMiddleware(graphModule, http, tokenGrant),
            baseUrl: tokenGrant.origin,
            defaultVersion: 'v1.0',
        });
    }

    function redirectingTo(location: string) {
        const sent: { url: string; auth: string | undefined }[] = [];
        const http: HttpClient = {
            sendRequest: async (request) => {
                sent.push({ url: request.url, auth: request.headers.get('authorization') });
                return sent.length === 1
                    ? { request, status: 302, headers: createHttpHeaders({ location }) }
                    : {
                          request,
                          status: 200,
                          headers: createHttpHeaders({ 'content-type': 'application/json' }),
                          bodyAsText: '{"id":"x"}',
                      };
            },
        };
        return { http, sent };
    }

    it('sends the token to the configured origin, with a client-request-id, and parses the JSON answer', async () => {
        const { http, sent } = redirectingTo('https://graph.example/v1.0/users/moved');
        expect(await graphClient(http).api('/users/abc').get()).toEqual({ id: 'x' });
        expect(sent).toEqual([
            { url: 'https://graph.example/v1.0/users/abc', auth: 'Bearer SECRET' },
            { url: 'https://graph.example/v1.0/users/moved', auth: 'Bearer SECRET' },
        ]);
    });

    it.each([
        ['another host', 'https://elsewhere.example/x'],
        ['another port of the same host', 'https://graph.example:8443/x'],
        ['http on the same host', 'http://graph.example/x'],
    ])('never follows a redirect to %s, and fails the call with its 3xx', async (_what, location) => {
        // An answer from there would be taken as Graph's (a membership check's answer decides who may approve).
        const { http, sent } = redirectingTo(location);
        await expect(graphClient(http).api('/users/abc').get()).rejects.toMatchObject({ statusCode: 302 });
        expect(sent).toEqual([{ url: 'https://graph.example/v1.0/users/abc', auth: 'Bearer SECRET' }]);
    });

    it.each([
        ['another host', 'https://elsewhere.example/x'],
        ['another port of the same host', 'https://graph.example:8443/x'],
        ['http on the same host', 'http://graph.example/x'],
    ])('never sends the token to %s, even where a redirect handler follows it', async (_what, location) => {
        // graph-client's own redirect options follow any redirect: the last link still keeps the token at home.
        const { http, sent } = redirectingTo(location);
        const client = Client.initWithMiddleware({
            middleware: [
                new graphModule.RedirectHandler(new graphModule.RedirectHandlerOptions()),
                new CoreHttpMessageHandler(http, grant()),
            ],
            baseUrl: 'https://graph.example',
            defaultVersion: 'v1.0',
        });
        await client.api('/users/abc').get();
        expect(sent).toEqual([
            { url: 'https://graph.example/v1.0/users/abc', auth: 'Bearer SECRET' },
            { url: location, auth: undefined },
        ]);
    });

    it('drops an Authorization header set by the caller when the URL is not the configured origin', async () => {
        const { http, sent } = client({ status: 200, body: '{}', headers: { 'content-type': 'application/json' } });
        const handler = new CoreHttpMessageHandler(http, {
            credential: { getToken: async () => ({ token: 'SECRET', expiresOnTimestamp: Date.now() + 60_000 }) },
            scope: 'https://graph.example/.default',
            origin: 'https://graph.example',
        });
        await handler.execute({
            request: 'https://attacker.example/v1.0/x',
            options: { headers: { Authorization: 'Bearer SECRET' } },
        });
        expect(sent[0]?.headers.get('authorization')).toBeUndefined();
        expect(sent[0]?.headers.get('client-request-id')).toBeUndefined();
    });

    it("refuses the call as graph-client's own provider does when the credential gives no token, and sends nothing", async () => {
        const { http, sent } = client({ status: 200, body: '{}' });
        const refused = graphClient(http, grant(undefined, { getToken: async () => null }))
            .api('/users/abc')
            .get();
        await expect(refused).rejects.toBeInstanceOf(graphModule.GraphClientError);
        await expect(refused).rejects.toThrow(/no token/);
        expect(sent).toHaveLength(0);
    });

    it("bounds the wait for the token by the call's deadline, without cancelling the fetch other calls share", async () => {
        const asked: unknown[] = [];
        let release: (token: AccessToken) => void = () => undefined;
        const shared = new Promise<AccessToken>((resolve) => (release = resolve));
        const credential = {
            getToken: (_scope: string | string[], options?: unknown) => (asked.push(options), shared),
        };
        const { http, sent } = client({ status: 200, body: '{}', headers: { 'content-type': 'application/json' } });
        const handler = new CoreHttpMessageHandler(http, grant(undefined, credential));
        const late = handler.execute({
            request: 'https://graph.example/v1.0/a',
            options: { signal: AbortSignal.timeout(10) },
        });
        const patient = handler.execute({ request: 'https://graph.example/v1.0/b' });
        await expect(late).rejects.toMatchObject({ name: 'TimeoutError' });
        release({ token: 'SECRET', expiresOnTimestamp: Date.now() + 60_000 });
        await patient;
        expect(asked).toEqual([undefined, undefined]);
        expect(sent.map((r) => r.url)).toEqual(['https://graph.example/v1.0/b']);
    });

    it("answers as fetch's Response does where graph-client reads it: null for a header not sent, JSON errors", async () => {
        const { http } = client({ status: 404, body: 'not json', headers: { 'content-type': 'text/plain' } });
        const context: Context = { request: 'https://graph.example/v1.0/x' };
        await new CoreHttpMessageHandler(http).execute(context);
        expect(context.response?.ok).toBe(false);
        expect(context.response?.headers.get('retry-after')).toBeNull();
        expect(context.response?.headers.has('content-type')).toBe(true);
        expect(await context.response?.text()).toBe('not json');
        await expect(context.response?.json()).rejects.toThrow(SyntaxError);
        expect(new TextDecoder().decode(await context.response?.arrayBuffer())).toBe('not json');
    });

    it("keeps Node's fetch implementation unloaded through a Graph call with the app's chain", () => {
        // Why graph-client's own auth, telemetry and fetch handlers are left out: each looks at the global `Request`,
        // and the first look loads undici (about 40 ms of a cold start). Checked in a fresh process.
        const script = `
            const http = require('node:http');
            const graph = require('@microsoft/microsoft-graph-client');
            const { createDefaultHttpClient } = require('@azure/core-rest-pipeline');
            const { graphMiddleware } = require(${JSON.stringify(path.join(__dirname, '..', '..', 'src', 'teams', 'graphHttp.ts'))});
            const server = http.createServer((req, res) => {
                res.setHeader('content-type', 'application/json');
                res.end(JSON.stringify({ auth: req.headers.authorization }));
            }).listen(0, '127.0.0.1', async () => {
                const origin = 'http://127.0.0.1:' + server.address().port;
                // Plain http to a local server: the core client refuses that unless the request allows it.
                const base = createDefaultHttpClient();
                const httpClient = { sendRequest: (r) => ((r.allowInsecureConnection = true), base.sendRequest(r)) };
                const credential = { getToken: async () => ({ token: 't', expiresOnTimestamp: Date.now() + 60000 }) };
                const client = graph.Client.initWithMiddleware({
                    middleware: graphMiddleware(graph, httpClient, { credential, scope: origin + '/.default', origin }),
                    baseUrl: origin,
                    defaultVersion: 'v1.0',
                });
                const answer = await client.api('/users/abc').header('ConsistencyLevel', 'eventual').get();
                const loaded = process.moduleLoadList.some((m) => m.includes('undici'));
                server.close();
                process.stdout.write(JSON.stringify({ answer, loaded }));
            });
        `;
        const result = spawnSync(process.execPath, ['--require', 'tsx/cjs', '-e', script], {
            cwd: path.join(__dirname, '..', '..'),
            encoding: 'utf8',
        });
        if (!result.stdout) throw new Error(result.stderr);
        expect(JSON.parse(result.stdout)).toEqual({ answer: { auth: 'Bearer t' }, loaded: false });
    });

    it('gives a 204 an empty body, as fetch would', async () => {
        const { http } = client({ status: 204, body: '' });
        const context: Context = { request: 'https://graph.example/v1.0/x', options: { method: 'DELETE' } };
        await new CoreHttpMessageHandler(http).execute(context);
        expect(context.response?.status).toBe(204);
        expect(context.response?.body).toBeNull();
    });

    it("fails an aborted call with the signal's reason, so a deadline reads as a timeout", async () => {
        const http: HttpClient = {
            sendRequest: (request) =>
                new Promise((_resolve, reject) => {
                    request.abortSignal?.addEventListener('abort', () => reject(new Error('aborted')));
                }),
        };
        const context: Context = {
            request: 'https://graph.example/v1.0/x',
            options: { signal: AbortSignal.timeout(10) },
        };
        await expect(new CoreHttpMessageHandler(http).execute(context)).rejects.toMatchObject({ name: 'TimeoutError' });
    });

    it('refuses a Request object and a body it cannot send, rather than dropping what they carry', async () => {
        const { http, sent } = client({ status: 200, body: '' });
        const handler = new CoreHttpMessageHandler(http);
        await expect(handler.execute({ request: new Request('https://graph.example/v1.0/x') })).rejects.toThrow(
            /string/,
        );
        await expect(
            handler.execute({
                request: 'https://graph.example/v1.0/x',
                options: { method: 'POST', body: new Blob(['x']) },
            }),
        ).rejects.toThrow(/unsupported body/);
        expect(sent).toHaveLength(0);
    });
});

import { createHttpHeaders, type HttpClient, type PipelineRequest } from '@azure/core-rest-pipeline';
import { Client, MiddlewareFactory, type Context } from '@microsoft/microsoft-graph-client';
import { CoreHttpMessageHandler } from '../../src/teams/graphHttp';

/** graph-client's last middleware on the core HTTP client: what it sends, and the Response it hands back. */
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

    it('drops the token when graph-client follows a redirect to another host, as it does over fetch', async () => {
        const sent: { url: string; auth: string | undefined }[] = [];
        const http: HttpClient = {
            sendRequest: async (request) => {
                sent.push({ url: request.url, auth: request.headers.get('authorization') });
                return sent.length === 1
                    ? { request, status: 302, headers: createHttpHeaders({ location: 'https://elsewhere.example/x' }) }
                    : {
                          request,
                          status: 200,
                          headers: createHttpHeaders({ 'content-type': 'application/json' }),
                          bodyAsText: '{"id":"x"}',
                      };
            },
        };
        const middleware = MiddlewareFactory.getDefaultMiddlewareChain({ getAccessToken: async () => 'SECRET' });
        middleware.splice(-1, 1, new CoreHttpMessageHandler(http));
        const client = Client.initWithMiddleware({
            middleware,
            baseUrl: 'https://graph.example',
            defaultVersion: 'v1.0',
            customHosts: new Set(['graph.example']),
        });
        await client.api('/users/abc').get();
        expect(sent).toEqual([
            { url: 'https://graph.example/v1.0/users/abc', auth: 'Bearer SECRET' },
            { url: 'https://elsewhere.example/x', auth: undefined },
        ]);
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

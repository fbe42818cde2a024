import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import {
    createHttpHeaders,
    createPipelineFromOptions,
    createPipelineRequest,
    isRestError,
} from '@azure/core-rest-pipeline';
import { timeoutHttpClient, timeoutErrorCode } from '../../src/http/timeout';

/**
 * The bound on each try of an outgoing request, against a local server that answers or does not: a try without an
 * answer fails as a network error the core retry policy retries, while the caller's own abort stays an abort.
 */

describe('timeoutHttpClient', () => {
    let server: http.Server;
    let url: string;
    /** How many of the next requests get no answer at all. */
    let silent = 0;
    let seen = 0;

    beforeAll(async () => {
        server = http.createServer((req, res) => {
            seen += 1;
            if (silent > 0) {
                silent -= 1;
                return; // holds the connection open, never answers
            }
            res.writeHead(200, { 'content-type': 'application/json' });
            res.end('{"ok":true}');
        });
        await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
        url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
    });
    afterAll(async () => {
        server.closeAllConnections();
        await new Promise<void>((resolve) => server.close(() => resolve()));
    });
    beforeEach(() => {
        silent = 0;
        seen = 0;
    });

    const request = (abortSignal?: AbortSignal) =>
        createPipelineRequest({
            url,
            method: 'GET',
            headers: createHttpHeaders(),
            allowInsecureConnection: true,
            ...(abortSignal ? { abortSignal } : {}),
        });

    it('fails a try that gets no answer as ETIMEDOUT, a network error, instead of waiting forever', async () => {
        silent = 1;
        const error = await timeoutHttpClient(100)
            .sendRequest(request())
            .catch((e: unknown) => e);
        expect(isRestError(error)).toBe(true);
        expect(error).toMatchObject({ code: timeoutErrorCode, message: expect.stringMatching(/within 100 ms/) });
    });

    it('lets the core retry policy try again, so one silent try costs a retry, not the call', async () => {
        silent = 1;
        const pipeline = createPipelineFromOptions({ retryOptions: { maxRetries: 2, retryDelayInMs: 10 } });
        const response = await pipeline.sendRequest(timeoutHttpClient(100), request());
        expect(response.status).toBe(200);
        expect(seen).toBe(2);
    });

    it("keeps the caller's abort an abort (never retried), and gives the request its own signal back", async () => {
        silent = 1;
        const caller = new AbortController();
        const req = request(caller.signal);
        setTimeout(() => caller.abort(), 50);
        const error = await timeoutHttpClient(5_000)
            .sendRequest(req)
            .catch((e: unknown) => e);
        expect(error).toMatchObject({ name: 'AbortError' });
        expect(req.abortSignal).toBe(caller.signal);
    });

    it('passes an answer within the bound through unchanged', async () => {
        const response = await timeoutHttpClient(1_000).sendRequest(request());
        expect(response.status).toBe(200);
        expect(response.bodyAsText).toBe('{"ok":true}');
    });
});

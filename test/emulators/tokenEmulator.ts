import { randomUUID } from 'node:crypto';
import { applyFault, FaultPlan, sendJson, startServer, type RunningServer } from './server';

/**
 * A managed-identity token endpoint speaking the App Service protocol (api-version 2019-08-01): the same one the
 * Functions platform exposes through IDENTITY_ENDPOINT and IDENTITY_HEADER. Pointing those two variables at this
 * emulator lets the production credential code run unchanged. Tokens are unsigned JWT-shaped strings carrying the
 * requested audience, so the other emulators can check that a call used a token minted for them.
 */
export class TokenEmulator {
    readonly header = randomUUID();
    readonly issued: { resource: string; clientId?: string }[] = [];
    readonly faults = new FaultPlan();
    /** Seconds until the tokens it issues expire. */
    lifetimeSeconds = 3600;

    private constructor(private readonly server: RunningServer) {}

    get endpoint(): string {
        return `${this.server.url}/msi/token`;
    }

    /** The environment variables the platform would set. */
    get env(): Record<string, string> {
        return { IDENTITY_ENDPOINT: this.endpoint, IDENTITY_HEADER: this.header };
    }

    static async start(options: { principalId?: string; tenantId?: string } = {}): Promise<TokenEmulator> {
        const self: { current?: TokenEmulator } = {};
        const server = await startServer(
            async (req, res) => {
                const url = new URL(req.url ?? '/', 'http://localhost');
                const errorBody = (_status: number, code: string) => ({ error: code, error_description: code });
                if (await applyFault(self.current?.faults.take(req.method ?? 'GET', url.pathname), res, errorBody)) {
                    return;
                }
                if (url.pathname !== '/msi/token' || req.method !== 'GET') {
                    sendJson(res, 404, { error: 'not_found' });
                    return;
                }
                if (req.headers['x-identity-header'] !== self.current?.header) {
                    sendJson(res, 401, { error: 'unauthorized', error_description: 'X-IDENTITY-HEADER is wrong' });
                    return;
                }
                const resource = url.searchParams.get('resource');
                if (url.searchParams.get('api-version') !== '2019-08-01' || !resource) {
                    sendJson(res, 400, { error: 'invalid_request', error_description: 'api-version or resource' });
                    return;
                }
                const clientId = url.searchParams.get('client_id') ?? undefined;
                self.current?.issued.push({ resource, ...(clientId ? { clientId } : {}) });
                const expiresOn = Math.floor(Date.now() / 1000) + (self.current?.lifetimeSeconds ?? 3600);
                const payload = {
                    aud: resource,
                    appid: clientId ?? 'system-assigned',
                    oid: options.principalId ?? '00000000-0000-0000-0000-00000000a11d',
                    tid: options.tenantId ?? '00000000-0000-0000-0000-0000000000aa',
                    exp: expiresOn,
                };
                const token = [
                    Buffer.from(JSON.stringify({ alg: 'none', typ: 'JWT' })).toString('base64url'),
                    Buffer.from(JSON.stringify(payload)).toString('base64url'),
                    'emulator',
                ].join('.');
                sendJson(res, 200, {
                    access_token: token,
                    expires_on: expiresOn,
                    resource,
                    token_type: 'Bearer',
                    client_id: clientId,
                });
            },
            { https: false },
        );
        self.current = new TokenEmulator(server);
        return self.current;
    }

    close(): Promise<void> {
        return this.server.close();
    }
}

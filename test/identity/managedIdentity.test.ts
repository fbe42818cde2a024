import { PermanentError, TransientError } from '../../src/domain/errors';
import { ManagedIdentityCredential, resourceOf } from '../../src/identity/managedIdentity';
import { TokenEmulator } from '../emulators/tokenEmulator';

const clientId = '5e1f0c2a-1111-4222-8333-444455556666';
let emulator: TokenEmulator;

beforeAll(async () => {
    emulator = await TokenEmulator.start();
});
afterAll(() => emulator.close());
beforeEach(() => {
    emulator.issued.length = 0;
    emulator.faults.clear();
    emulator.lifetimeSeconds = 3600;
});

const credential = (extra: Partial<ConstructorParameters<typeof ManagedIdentityCredential>[0]> = {}) =>
    new ManagedIdentityCredential({
        endpoint: emulator.endpoint,
        secret: emulator.header,
        clientId,
        retryDelayInMs: 5,
        ...extra,
    });

const audienceOf = (token: string) =>
    (JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString('utf8')) as { aud: string }).aud;

describe('ManagedIdentityCredential', () => {
    it('asks the platform endpoint for the resource of a .default scope, as the user-assigned identity', async () => {
        const token = await credential().getToken('https://management.azure.com/.default');
        expect(audienceOf(token.token)).toBe('https://management.azure.com');
        expect(token.expiresOnTimestamp).toBeGreaterThan(Date.now() + 50 * 60 * 1000);
        expect(emulator.issued).toEqual([{ resource: 'https://management.azure.com', clientId }]);
    });

    it('keeps the trailing slash a resource needs (Azure Monitor)', () => {
        expect(resourceOf('https://monitor.azure.com//.default')).toBe('https://monitor.azure.com/');
        expect(resourceOf(['https://api.botframework.com/.default'])).toBe('https://api.botframework.com');
    });

    it('fetches once for a burst of concurrent requests, and caches per resource', async () => {
        const c = credential();
        const tokens = await Promise.all(
            Array.from({ length: 20 }, (_, i) =>
                c.getToken(i % 2 ? 'https://a.example/.default' : 'https://b.example/.default'),
            ),
        );
        expect(new Set(tokens.map((t) => audienceOf(t.token)))).toEqual(
            new Set(['https://a.example', 'https://b.example']),
        );
        await c.getToken('https://a.example/.default');
        expect(emulator.issued).toHaveLength(2);
    });

    it('fetches a new token five minutes before the cached one expires', async () => {
        let now = Date.now();
        const c = credential({ now: () => now });
        emulator.lifetimeSeconds = 600;
        await c.getToken('https://a.example/.default');
        now += 4 * 60 * 1000;
        await c.getToken('https://a.example/.default');
        expect(emulator.issued).toHaveLength(1);
        now += 2 * 60 * 1000;
        await c.getToken('https://a.example/.default');
        expect(emulator.issued).toHaveLength(2);
    });

    it('retries throttling and server errors, honouring Retry-After', async () => {
        emulator.faults.add({ kind: 'throttle', retryAfterSeconds: 0 });
        emulator.faults.add({ kind: 'error', status: 503 });
        const token = await credential().getToken('https://a.example/.default');
        expect(audienceOf(token.token)).toBe('https://a.example');
    });

    it('gives up on a wrong secret at once, with a permanent error that names the resource', async () => {
        const c = credential({ secret: 'not-the-secret' });
        const err = await c.getToken('https://a.example/.default').catch((e: unknown) => e);
        expect(err).toBeInstanceOf(PermanentError);
        expect(String(err)).toMatch(/https:\/\/a\.example.*HTTP 401/);
    });

    it('reports lasting server errors as transient, and does not cache the failure', async () => {
        emulator.faults.add({ kind: 'error', status: 500 }, { times: 10 });
        const c = credential({ maxRetries: 1 });
        await expect(c.getToken('https://a.example/.default')).rejects.toBeInstanceOf(TransientError);
        emulator.faults.clear();
        await expect(c.getToken('https://a.example/.default')).resolves.toMatchObject({ tokenType: 'Bearer' });
    });
});

import { loadConfig } from '../src/config';
import { createDeps, maxPrefetchedTenants } from '../src/runtime';
import { storageTokenScope } from '../src/storage/tables';
import { ArmEmulator } from './emulators/arm';
import { TokenEmulator } from './emulators/tokenEmulator';

/** The composition root: what a new process starts before its first invocation needs it. */
describe('createDeps', () => {
    let token: TokenEmulator;
    beforeAll(async () => {
        token = await TokenEmulator.start();
    });
    afterAll(async () => {
        await token.close();
    });

    function settings(extra: Record<string, string>): NodeJS.ProcessEnv {
        return {
            ...token.env,
            WATCHED_SUBSCRIPTION_IDS: '00000000-0000-4000-8000-000000000001',
            AZURE_TENANT_ID: '00000000-0000-4000-8000-000000000002',
            AZURE_CLIENT_ID: '00000000-0000-4000-8000-000000000003',
            APPROVER_GROUP_IDS: '00000000-0000-4000-8000-000000000004',
            PUBLIC_BASE_URL: 'https://pec-gate.example.net',
            TEAMS_CHANNEL_ID: '19:chan@thread.tacv2',
            SWEEP_SCHEDULE: '0 */15 * * * *',
            // Nothing listens there: only the token requests matter here.
            ARM_ENDPOINT: 'https://127.0.0.1:9',
            GRAPH_ENDPOINT: 'https://graph.example.net',
            ...extra,
        };
    }

    async function scopesAskedFor(env: NodeJS.ProcessEnv): Promise<string[]> {
        token.issued.length = 0;
        createDeps(loadConfig(env));
        for (let i = 0; i < 100 && token.issued.length < 4; i++) {
            await new Promise((r) => setTimeout(r, 10));
        }
        await new Promise((r) => setTimeout(r, 50));
        return token.issued.map((t) => t.resource).sort();
    }

    it('asks for the tokens of ARM, storage, Graph and the bot as it starts, with identity-based storage', async () => {
        const resources = await scopesAskedFor(
            settings({
                AzureWebJobsStorage__accountName: 'pecgatestorage',
            }),
        );
        // The platform's endpoint takes a resource, the scope without its `/.default`.
        const resource = (scope: string) => scope.replace(/\/\.default$/, '');
        expect(resources).toEqual(
            expect.arrayContaining([
                resource(storageTokenScope),
                'https://graph.example.net',
                'https://127.0.0.1:9',
                'https://api.botframework.com',
            ]),
        );
    });

    it('asks for no storage token when storage takes a connection string', async () => {
        const resources = await scopesAskedFor(settings({ AzureWebJobsStorage: 'UseDevelopmentStorage=true' }));
        expect(resources).not.toContain('https://storage.azure.com');
        expect(resources).toContain('https://graph.example.net');
    });

    it("asks ARM for the trusted subscriptions' home tenants as it starts, except those mapped, at most five", async () => {
        const arm = await ArmEmulator.start();
        try {
            const sub = (n: number) => `0b1c2d3e-aaaa-4bbb-8ccc-${String(n).padStart(12, '0')}`;
            const trusted = Array.from({ length: maxPrefetchedTenants + 2 }, (_, i) => sub(i + 1));
            for (const id of trusted) {
                arm.setSubscriptionTenant(id, '00000000-0000-4000-8000-000000000002');
            }
            createDeps(
                loadConfig(
                    settings({
                        AzureWebJobsStorage: 'UseDevelopmentStorage=true',
                        ARM_ENDPOINT: arm.url,
                        TRUSTED_SUBSCRIPTION_IDS: trusted.join(','),
                        // The first is mapped: it needs no lookup.
                        SUBSCRIPTION_TENANTS: `${sub(1)}=00000000-0000-4000-8000-000000000002`,
                    }),
                ),
            );
            const asked = () => arm.requests.filter((r) => /^\/subscriptions\/[^/]+$/.test(r.path)).map((r) => r.path);
            for (let i = 0; i < 200 && asked().length < maxPrefetchedTenants; i++) {
                await new Promise((r) => setTimeout(r, 10));
            }
            await new Promise((r) => setTimeout(r, 50));
            expect(asked().sort()).toEqual(
                trusted.slice(1, 1 + maxPrefetchedTenants).map((id) => `/subscriptions/${id}`),
            );
        } finally {
            await arm.close();
        }
    });
});

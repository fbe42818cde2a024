/**
 * The COMPILED deployment (infra/main.json and infra/eventSubscription.json, what `bicep build` makes of the Bicep;
 * `npm run infra:check` fails when they are stale), read as ARM reads it and checked against the code it deploys:
 * the settings src/config.ts reads, the function functions/ registers for Event Grid, the events the code handles,
 * and the ARM calls src/arm/ makes (replayed against the ARM emulator). Node.js alone runs these: no Bicep, no .NET.
 */
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import * as path from 'node:path';
import type { AccessToken, TokenCredential } from '@azure/core-auth';
import { createArmPecProvider, type PecProvider } from '../../src/arm';
import { loadConfig } from '../../src/config';
import { kindInfo, serverKinds, type PecRef, type ServerKind, type ServerRef } from '../../src/domain/ids';
import { tracedLogger, withTrace } from '../../src/observability/trace';
import { classifyResourceEvent, parseResourceEvent } from '../../src/workflow/resourceEvent';
import { ArmEmulator } from '../emulators/arm';
import { evaluate, isExpression, parse, Runtime, type Ast } from './armExpressions';
import { allResources, home, resourcesOf, scopeOf, tenantId, type Found, type Template } from './armTemplate';

interface Binding {
    type: string;
    direction: string;
    route?: string;
    queueName?: string;
}
interface Registered {
    name: string;
    bindings: Record<string, Binding>;
}

const registered: Registered[] = [];

jest.mock(
    '@azure/functions-core',
    () => ({
        registerFunction: (metadata: Registered) => {
            registered.push(metadata);
            return { dispose: () => undefined };
        },
        setProgrammingModel: () => undefined,
        registerHook: () => ({ dispose: () => undefined }),
    }),
    { virtual: true },
);

const root = path.join(__dirname, '..', '..');
const read = (file: string) => readFileSync(path.join(root, file), 'utf8');

beforeAll(async () => {
    for (const file of readdirSync(path.join(root, 'functions')).filter((f) => f.endsWith('.ts'))) {
        await import(path.join(root, 'functions', file));
    }
});

// ---------------------------------------------------------------------------------------------------------------------
// Reading the compiled template
// ---------------------------------------------------------------------------------------------------------------------

const mainTemplate = JSON.parse(read('infra/main.json')) as Template;
const eventSubscriptionTemplate = JSON.parse(read('infra/eventSubscription.json')) as Template;

const approverGroup = 'a9a9a9a9-0000-4000-8000-000000000001';

/** The parameters azd passes for a first `azd up` with a Teams channel set; the rest keep their defaults. */
const mainParameters: Record<string, unknown> = {
    environmentName: 'dev',
    location: 'westeurope',
    approverGroupIds: approverGroup,
    teamsChannelId: '19:0123456789abcdef0123456789abcdef@thread.tacv2',
};

const mainScope = scopeOf(mainTemplate, mainParameters);
const everything = allResources(mainTemplate, mainScope);
const ofType = (type: string) => everything.filter((f) => f.resource.type.toLowerCase() === type.toLowerCase());
const one = (type: string, module?: string) => {
    const found = ofType(type).filter((f) => module === undefined || f.module === module);
    expect(found).toHaveLength(1);
    return found[0]!;
};
const props = (f: Found) => evaluate(f.resource.properties ?? {}, f.scope) as Record<string, unknown>;
const deploymentName = (f: Found) => f.module.split('/')[0];

// ---------------------------------------------------------------------------------------------------------------------
// App settings against src/config.ts
// ---------------------------------------------------------------------------------------------------------------------

const appSettingsResource = everything.find(
    (f) => f.resource.type === 'Microsoft.Web/sites/config' && /'appsettings'\)\]$/.test(f.resource.name),
)!;
/** The app settings as ARM writes them: the appsettings resource's properties, evaluated. */
const deployedSettings = props(appSettingsResource);

/** What Azure supplies for values known only at deployment (module outputs), with the shapes the real ones have. */
const runtimeValues: Record<string, string> = {
    'identity.outputs.clientId.value': '5e1f0c2a-1111-4222-8333-444455556666',
    'storage.outputs.name.value': 'stpecgateabcdefghijklm',
    'monitoring.outputs.connectionString.value':
        'InstrumentationKey=00000000-0000-4000-8000-000000000000;IngestionEndpoint=https://westeurope-5.in.applicationinsights.azure.com/;LiveEndpoint=https://westeurope.livediagnostics.monitor.azure.com/',
    'functionApp.outputs.defaultHostName.value': 'func-pecgate-abc.azurewebsites.net',
};

function inAzure(value: unknown): string {
    const text = value instanceof Runtime ? value.toString() : String(value);
    return text.replace(/<([^>]+)>/g, (_, source: string) => {
        const v = runtimeValues[source];
        if (v === undefined) {
            throw new Error(`no stand-in for the deployment-time value ${source}; add one to runtimeValues`);
        }
        return v;
    });
}

const deployedEnvironment = (): NodeJS.ProcessEnv =>
    Object.fromEntries(Object.entries(deployedSettings).map(([k, v]) => [k, inAzure(v)]));

/** Runs loadConfig() and records every setting it reads. */
function settingsRead(env: NodeJS.ProcessEnv): Set<string> {
    const readKeys = new Set<string>();
    const spy = new Proxy(env, {
        get(target, key) {
            if (typeof key === 'string') {
                readKeys.add(key);
            }
            return target[key as string];
        },
    });
    loadConfig(spy);
    return readKeys;
}

/** Settings read by the Functions host or the platform, not by src/config.ts. */
const hostOrPlatform: Record<string, string> = {
    AzureWebJobsStorage__credential: 'the host: identity-based storage',
    AzureWebJobsStorage__clientId: 'the host: which user-assigned identity',
    AzureWebJobsStorage__blobServiceUri: 'the host: its leases, timers and secrets',
    WEBSITE_AUTH_AAD_ALLOWED_TENANTS: 'App Service Authentication',
    OVERRIDE_USE_MI_FIC_ASSERTION_CLIENTID: 'App Service Authentication',
    FUNCTIONS_REQUEST_BODY_SIZE_LIMIT: 'the host: the largest request body it buffers',
};

/** Settings src/config.ts reads that the template leaves to their defaults, or to the platform, on purpose. */
const leftOut: Record<string, string> = {
    GRAPH_ENDPOINT: 'public cloud default (environment() has no Microsoft Graph endpoint)',
    BOT_OPENID_METADATA_URL: 'public cloud default',
    BOT_TOKEN_SCOPE: 'public cloud default',
    BOT_TOKEN_ISSUER: 'public cloud default',
    TEAMS_SERVICE_URL: 'learned from incoming activities; documented default',
    ARM_MAX_RETRIES: 'tuning; the default',
    ARM_RETRY_DELAY_MS: 'tuning; the default',
    ARM_LRO_DEADLINE_SECONDS: 'tuning; the default',
    HTTP_TIMEOUT_MS: 'tuning; the default',
    UNKNOWN_REQUESTER_APPROVALS: 'the documented default (a second approver)',
    REQUESTS_TABLE: 'the default table name',
    AUDIT_TABLE: 'the default table name',
    DEV_TRUST_CLIENT_PRINCIPAL: 'local development only; refused in Azure',
    WEBSITE_AUTH_ENABLED: 'set by the platform when App Service Authentication is on',
    WEBSITE_SITE_NAME: 'set by the platform',
    IDENTITY_ENDPOINT: 'set by the platform for an app with a managed identity',
    IDENTITY_HEADER: 'set by the platform for an app with a managed identity',
    AzureWebJobsStorage: 'the connection-string form; the template uses the identity-based settings instead',
};

describe('app settings (compiled) against src/config.ts', () => {
    it('are the whole set: one appsettings resource gets them, and the site itself carries none', () => {
        expect(appSettingsResource.module).toBe('functionAppSettings');
        expect(evaluate(appSettingsResource.resource.condition ?? true, appSettingsResource.scope)).toBe(true);
        const site = props(one('Microsoft.Web/sites', 'functionApp'));
        expect((site.siteConfig as Record<string, unknown>).appSettings).toBeUndefined();
    });

    it('keep capabilities out of the deployment history, which every Reader sees: secure parameters only', () => {
        // The Workflows webhook URL carries its sig=, which lets whoever holds it post into the approvers' channel.
        expect(mainTemplate.parameters?.workflowsWebhookUrl?.type).toBe('securestring');
        const nested: Template[] = [];
        const walk = (template: Template) => {
            for (const resource of Object.values(template.resources ?? {})) {
                const inner = (resource as { properties?: { template?: Template } }).properties?.template;
                if (inner) {
                    nested.push(inner);
                    walk(inner);
                }
            }
        };
        walk(mainTemplate);
        const appSettingsModule = nested.filter((t) =>
            Object.values(t.resources ?? {}).some(
                (r) => (r as { type?: string; name?: string }).type === 'Microsoft.Web/sites/config',
            ),
        );
        expect(appSettingsModule.length).toBeGreaterThan(0);
        for (const t of appSettingsModule) {
            expect(t.parameters?.settings?.type).toBe('secureObject');
        }
    });

    it('give loadConfig() everything it requires', () => {
        const config = loadConfig(deployedEnvironment());
        expect(config.storage.tableServiceUri).toMatch(/^https:\/\/stpecgate\w+\.table\.core\.windows\.net$/);
        expect(config.storage.connectionString).toBeUndefined();
        expect(config.SWEEP_SCHEDULE).toBe('0 */15 * * * *');
        expect(config.ARM_ENDPOINT).toBe('https://management.azure.com');
        expect(config.AZURE_AUTHORITY_HOST).toBe('https://login.microsoftonline.com');
        expect(config.PUBLIC_BASE_URL).toBe('https://func-pecgate-abc.azurewebsites.net');
    });

    it('fail at start-up without a Teams channel or a webhook, as infra/README.md says', () => {
        expect(() => loadConfig({ ...deployedEnvironment(), TEAMS_CHANNEL_ID: '' })).toThrow(/TEAMS_CHANNEL_ID/);
    });

    it('set every setting the code reads at start-up, and none the code does not know', () => {
        const readKeys = settingsRead(deployedEnvironment());
        const deployed = Object.keys(deployedSettings);
        expect(deployed.filter((k) => !readKeys.has(k) && !(k in hostOrPlatform))).toEqual([]);
        expect([...readKeys].filter((k) => !deployed.includes(k) && !(k in leftOut)).sort()).toEqual([]);
        // Neither list goes stale.
        expect(Object.keys(leftOut).filter((k) => !readKeys.has(k))).toEqual([]);
        expect(
            Object.keys(hostOrPlatform).filter((k) => k.startsWith('AzureWebJobs') && !deployed.includes(k)),
        ).toEqual([]);
    });

    it('bound the request body the host buffers well below its 100 MB default, above the largest body the app takes', () => {
        // /api/messages is reachable without a signed-in user; the host reads a whole body before the app can refuse it.
        const limit = Number(deployedSettings.FUNCTIONS_REQUEST_BODY_SIZE_LIMIT);
        expect(limit).toBeLessThanOrEqual(4 * 1024 * 1024);
        // One Event Grid event is at most 1 MB (the subscription delivers one per request); a Teams activity 256 KB.
        expect(limit).toBeGreaterThan(1024 * 1024);
    });

    it('use identity-based storage with the app identity, no keys or connection strings, Entra auth for telemetry', () => {
        expect(deployedSettings.AzureWebJobsStorage__credential).toBe('managedidentity');
        expect(String(deployedSettings.AzureWebJobsStorage__clientId)).toBe('<identity.outputs.clientId.value>');
        expect(String(deployedSettings.AZURE_CLIENT_ID)).toBe('<identity.outputs.clientId.value>');
        expect(deployedSettings.APPLICATIONINSIGHTS_AUTHENTICATION_STRING).toBe(
            'ClientId=<identity.outputs.clientId.value>;Authorization=AAD',
        );
        for (const name of [
            'AzureWebJobsStorage',
            'FUNCTIONS_WORKER_RUNTIME',
            'FUNCTIONS_EXTENSION_VERSION',
            'WEBSITE_RUN_FROM_PACKAGE',
            'WEBSITE_CONTENTSHARE',
            'WEBSITE_CONTENTAZUREFILECONNECTIONSTRING',
            'WEBSITE_NODE_DEFAULT_VERSION',
            'DEV_TRUST_CLIENT_PRINCIPAL',
        ]) {
            expect(deployedSettings).not.toHaveProperty(name);
        }
        // Nothing anywhere in the template asks ARM for a key or builds a connection string with one.
        const text = JSON.stringify(mainTemplate);
        expect(text).not.toMatch(/listKeys|listAccountSas|listServiceSas|AccountKey=|SharedAccessSignature/i);
        const account = props(one('Microsoft.Storage/storageAccounts', 'storage'));
        expect(account.allowSharedKeyAccess).toBe(false);
        expect(account.defaultToOAuthAuthentication).toBe(true);
    });
});

// ---------------------------------------------------------------------------------------------------------------------
// Hosting, TLS, identities
// ---------------------------------------------------------------------------------------------------------------------

describe('hosting and transport', () => {
    it('runs on Flex Consumption, Node.js 22, HTTPS only with TLS 1.2 at least, no FTP or basic-auth publishing', () => {
        const plan = props(one('Microsoft.Web/serverfarms', 'functionApp'));
        expect(one('Microsoft.Web/serverfarms', 'functionApp').resource.sku).toEqual({
            name: 'FC1',
            tier: 'FlexConsumption',
        });
        expect(plan.reserved).toBe(true);
        const siteFound = one('Microsoft.Web/sites', 'functionApp');
        const site = props(siteFound);
        expect(site.httpsOnly).toBe(true);
        const siteConfig = site.siteConfig as Record<string, unknown>;
        expect(siteConfig.minTlsVersion).toBe('1.2');
        expect(siteConfig.scmMinTlsVersion).toBe('1.2');
        expect(siteConfig.ftpsState).toBe('Disabled');
        const runtime = (site.functionAppConfig as { runtime: { name: string; version: string } }).runtime;
        expect(runtime).toEqual({ name: 'node', version: '22' });
        const basic = ofType('Microsoft.Web/sites/basicPublishingCredentialsPolicies').map((f) => props(f).allow);
        expect(basic).toEqual([false, false]);
        const account = props(one('Microsoft.Storage/storageAccounts', 'storage'));
        expect(account.minimumTlsVersion).toBe('TLS1_2');
        expect(account.supportsHttpsTrafficOnly).toBe(true);
        expect(account.allowBlobPublicAccess).toBe(false);
        expect(JSON.parse(read('package.json')).engines.node).toMatch(/\^22\./);
    });

    it('reads the deployment package with an identity of its own, never the app (approver) identity', () => {
        const site = props(one('Microsoft.Web/sites', 'functionApp'));
        const storage = (site.functionAppConfig as { deployment: { storage: Record<string, unknown> } }).deployment
            .storage;
        expect(storage.type).toBe('blobContainer');
        expect(String(storage.value)).toMatch(/deployment-package$/);
        const auth = storage.authentication as Record<string, unknown>;
        expect(auth.type).toBe('UserAssignedIdentity');
        expect(String(auth.userAssignedIdentityResourceId)).toBe('<identity.outputs.deploymentIdentityId.value>');
    });

    it('registers the bot as UserAssignedMSI with the identity the code uses (AZURE_CLIENT_ID) and its /api/messages', () => {
        const bot = props(one('Microsoft.BotService/botServices', 'bot'));
        expect(bot.msaAppType).toBe('UserAssignedMSI');
        expect(String(bot.msaAppId)).toBe(String(deployedSettings.AZURE_CLIENT_ID));
        expect(String(bot.msaAppMSIResourceId)).toBe('<identity.outputs.id.value>');
        expect(bot.msaAppTenantId).toBe(tenantId);
        const route = registered.find((r) => r.name === 'teamsMessages')?.bindings;
        const httpRoute = Object.values(route ?? {}).find((b) => b.type === 'httpTrigger')?.route;
        expect(httpRoute).toBeDefined();
        expect(JSON.parse(read('host.json')).extensions?.http?.routePrefix).toBeUndefined();
        expect(inAzure(bot.endpoint)).toBe(`https://func-pecgate-abc.azurewebsites.net/api/${httpRoute}`);
        const channel = one('Microsoft.BotService/botServices/channels', 'bot');
        expect(channel.resource.name).toMatch(/'MsTeamsChannel'\)\]$/);
    });

    it('puts App Service Authentication in front of the page only, leaving the bot and Event Grid out of it', () => {
        const withAuth = allResources(
            mainTemplate,
            scopeOf(mainTemplate, { ...mainParameters, authClientId: 'app-id' }),
        );
        const auth = withAuth.find(
            (f) => f.resource.type === 'Microsoft.Web/sites/config' && /authsettingsV2/.test(f.resource.name),
        )!;
        expect(evaluate(auth.resource.condition, auth.scope)).toBe(true);
        const p = props(auth) as { globalValidation: Record<string, unknown>; httpSettings: Record<string, unknown> };
        expect(p.globalValidation.requireAuthentication).toBe(true);
        expect(p.globalValidation.excludedPaths).toEqual(['/api/messages', '/runtime/webhooks/eventgrid']);
        expect(p.httpSettings.requireHttps).toBe(true);
        // Without an app registration, no authentication resource is deployed.
        const without = everything.find(
            (f) => f.resource.type === 'Microsoft.Web/sites/config' && /authsettingsV2/.test(f.resource.name),
        )!;
        expect(evaluate(without.resource.condition, without.scope)).toBe(false);
    });
});

// ---------------------------------------------------------------------------------------------------------------------
// Role assignments
// ---------------------------------------------------------------------------------------------------------------------

/** The arguments of a guid() call, as source text of each ARM expression. */
function guidArgs(name: string): Ast[] {
    expect(isExpression(name)).toBe(true);
    const ast = parse(name);
    expect(ast.kind === 'call' && ast.name).toBe('guid');
    return (ast as Extract<Ast, { kind: 'call' }>).args;
}
const source = (ast: Ast): string => JSON.stringify(ast);

describe('role assignments', () => {
    const assignments = ofType('Microsoft.Authorization/roleAssignments');

    it('are each named guid(scope, principal, role), so a re-deployment finds the same assignment', () => {
        // monitoring 1, storage 4 (two of them loops), per watched subscription 1 + its dead-letter access 1.
        expect(assignments.length).toBeGreaterThanOrEqual(7);
        for (const a of assignments) {
            const args = guidArgs(a.resource.name);
            expect(args).toHaveLength(3);
            const [scopeArg, principalArg, roleArg] = args.map(source);
            const p = a.resource.properties as { principalId: string; roleDefinitionId: string };
            // The principal of the name is the assignment's principal.
            expect(principalArg).toBe(source(parse(p.principalId)));
            // The role of the name is the role it assigns (the GUID inside the role definition id).
            expect(source(parse(p.roleDefinitionId))).toContain(roleArg!.slice(1, -1));
            // The scope of the name is the assignment's scope (its resource id), or the subscription for a
            // subscription-level assignment.
            if (a.resource.scope) {
                const scopeText = a.resource.scope.replace(/^\[|\]$/g, '');
                expect(scopeArg).toBe(source(parse(`[${scopeText}]`)));
            } else {
                expect(scopeArg).toBe(source(parse('[subscription().id]')));
            }
        }
    });

    it('give the app identity no broad built-in role anywhere', () => {
        const broad = [
            '8e3af657-a8ff-443c-a75c-2fe8c4bcb635', // Owner
            'b24988ac-6180-42a0-ab88-20f7382dd24c', // Contributor
            '18d7d88d-d35e-4fb5-a5c3-7773c20a72d9', // User Access Administrator
            'f58310d9-a9f6-439a-9e8d-f62e7b41a168', // Role Based Access Control Administrator
        ];
        const text = JSON.stringify(mainTemplate).toLowerCase();
        for (const id of broad) {
            expect(text).not.toContain(id);
        }
    });

    it('let the app read but not write the deployment package, and only add to the audit anchors', () => {
        const appBlob = assignments.find(
            (a) => a.module === 'storage' && String(props(a).description).includes('host storage'),
        )!;
        const p = props(appBlob) as { condition: string; conditionVersion: string; roleDefinitionId: string };
        expect(p.conditionVersion).toBe('2.0');
        const write = 'Microsoft.Storage/storageAccounts/blobServices/containers/blobs/write';
        const add = 'Microsoft.Storage/storageAccounts/blobServices/containers/blobs/add/action';
        const del = 'Microsoft.Storage/storageAccounts/blobServices/containers/blobs/delete';
        // Clause 1: nothing that changes a blob (adding included) unless the container is not the deployment one.
        const [deploymentClause, anchorClause] = p.condition.split(') AND ((');
        expect(deploymentClause).toContain(`!(ActionMatches{'${write}'})`);
        expect(deploymentClause).toContain(`!(ActionMatches{'${add}'})`);
        expect(deploymentClause).toContain(`!(ActionMatches{'${del}'})`);
        expect(deploymentClause).toContain("StringNotEquals 'deployment-package'");
        // Clause 2: in the anchor container, no overwrite or delete, but adding (create or append) stays allowed.
        expect(anchorClause).toContain(`!(ActionMatches{'${write}'})`);
        expect(anchorClause).toContain(`!(ActionMatches{'${del}'})`);
        expect(anchorClause).not.toContain(add);
        expect(anchorClause).toContain("StringNotEquals 'pecauditanchors'");
        // The only writer of the package: the deployment identity, on that container alone.
        const writer = assignments.filter((a) => String(props(a).description).includes('deployment identity'));
        expect(writer).toHaveLength(1);
        expect(writer[0]!.resource.scope).toMatch(/containers'.*deploymentContainerName/);
        expect(String(props(writer[0]!).principalId)).toBe(String(props(writer[0]!).principalId));
    });

    it('keep the audit anchors immutable (time-based WORM) with protected appends, in the agreed container', () => {
        const worm = one('Microsoft.Storage/storageAccounts/blobServices/containers/immutabilityPolicies', 'storage');
        expect(props(worm)).toEqual({ immutabilityPeriodSinceCreationInDays: 3650, allowProtectedAppendWrites: true });
        expect(String(evaluate(worm.resource.name, worm.scope))).toMatch(/\/default\/pecauditanchors\/default$/);
        expect(mainTemplate.outputs?.AUDIT_ANCHOR_CONTAINER?.value).toBe("[variables('auditAnchorContainerName')]");
        expect(mainTemplate.variables?.auditAnchorContainerName).toBe('pecauditanchors');
    });
});

// ---------------------------------------------------------------------------------------------------------------------
// The custom role against the ARM calls the adapters make
// ---------------------------------------------------------------------------------------------------------------------

interface RoleProperties {
    permissions: { actions: string[]; notActions: string[]; dataActions: string[]; notDataActions: string[] }[];
    assignableScopes: string[];
}
/** The compiled custom role, for a deployment with these extra parameters. */
function roleWith(extra: Record<string, unknown> = {}): RoleProperties {
    const found = allResources(mainTemplate, scopeOf(mainTemplate, { ...mainParameters, ...extra })).filter(
        (f) => f.resource.type === 'Microsoft.Authorization/roleDefinitions',
    );
    expect(found).toHaveLength(1);
    return props(found[0]!) as unknown as RoleProperties;
}
const role = roleWith();
/** The actions of the role when every registered kind is watched. */
const allKindsRole = roleWith({ watchedResourceKinds: serverKinds.join(',') });
const roleActions = allKindsRole.permissions.flatMap((p) => p.actions);
const roleHas = (action: string) => roleActions.some((a) => a.toLowerCase() === action.toLowerCase());
const actionsOf = (r: RoleProperties) => r.permissions.flatMap((p) => p.actions);

const providerOperations = (
    JSON.parse(readFileSync(path.join(__dirname, '..', 'fixtures', 'providerOperations.json'), 'utf8')) as {
        operations: { action: string }[];
    }
).operations.map((o) => o.action.toLowerCase());
/** Whether Microsoft's list of provider operations (stored in test/fixtures) has this action. */
const providerLists = (action: string) => providerOperations.includes(action.toLowerCase());

/** The RBAC actions an ARM request needs, by ARM's own rule: provider, resource types, and the verb of the method. */
function rbacActions(method: string, requestPath: string): string[] {
    const segments = requestPath.split('/').filter(Boolean);
    let i = 2; // subscriptions/{id}
    if (segments[i]?.toLowerCase() === 'resourcegroups') {
        i += 2;
    }
    if (segments[0]?.toLowerCase() !== 'subscriptions' || segments[i]?.toLowerCase() !== 'providers') {
        throw new Error(`not an ARM provider path: ${requestPath}`);
    }
    const namespace = segments[i + 1]!;
    const types = segments.slice(i + 2).filter((_, k) => k % 2 === 0);
    const verb: Record<string, string> = {
        GET: 'read',
        PUT: 'write',
        PATCH: 'write',
        DELETE: 'delete',
        POST: 'action',
    };
    const actions = [`${[namespace, ...types].join('/')}/${verb[method] ?? `?${method}`}`];
    const approval = `${namespace}/${types[0]}/privateEndpointConnectionsApproval/action`;
    if (
        method === 'PUT' &&
        types[types.length - 1]?.toLowerCase() === 'privateendpointconnections' &&
        providerLists(approval)
    ) {
        // Approving or rejecting also checks the provider's approval action, where the provider has one.
        actions.push(approval);
    }
    return actions;
}

/**
 * Reads of a long-running operation's status (`…/locations/…/read`, `…/operationStatuses/read`,
 * `…/operationResults/read`): which URL a region answers a PUT with is not documented per kind, so the registry
 * grants the ones each provider lists. Nothing else may be beyond the adapters' own calls.
 */
const isPollingRead = (action: string) =>
    /\/(locations\/[^/]+|operationStatuses|operationStatus|operationResults|azureAsyncOperation|operations)(\/[^/]+)?\/read$/i.test(
        action,
    );

describe('the custom PEC approver role (compiled)', () => {
    let arm: ArmEmulator;
    let provider: PecProvider;
    const subscriptionId = '0b1c2d3e-aaaa-4bbb-8ccc-0000000000aa';
    const credential: TokenCredential = {
        getToken: async (): Promise<AccessToken> => ({ token: 'a.b.c', expiresOnTimestamp: Date.now() + 3_600_000 }),
    };

    beforeAll(async () => {
        arm = await ArmEmulator.start();
        provider = createArmPecProvider({
            endpoint: arm.url,
            credential,
            maxRetries: 0,
            retryDelayInMs: 1,
            lroDeadlineMs: 20_000,
        });
    });
    afterAll(async () => {
        await arm?.close();
    });

    function seed(kind: ServerKind): { server: ServerRef; pec: PecRef } {
        const server: ServerRef = { kind, subscriptionId, resourceGroup: 'rg-data', name: `rbac-${kind}` };
        const { provider: rp, type } = kindInfo[kind];
        const serverId = arm.addServer({ ...server, provider: rp, type });
        const name = `pe-${kind}.00000000-0000-4000-8000-000000000001`;
        arm.addPec(serverId, {
            name,
            privateEndpointId: `/subscriptions/${subscriptionId}/resourceGroups/rg-net/providers/Microsoft.Network/privateEndpoints/pe-${kind}`,
        });
        return { server, pec: { server, name } };
    }

    /** One call of each PecProvider method; a new method fails the test until it is driven here too. */
    const drivers: Record<keyof PecProvider, (target: { server: ServerRef; pec: PecRef }) => Promise<unknown>> = {
        listServers: ({ server }) => provider.listServers(server.subscriptionId, server.kind),
        listServersWithPecs: ({ server }) => provider.listServersWithPecs!(server.subscriptionId, server.kind),
        listPecs: ({ server }) => provider.listPecs(server),
        getPec: ({ pec }) => provider.getPec(pec),
        getServerContext: ({ server }) => provider.getServerContext(server),
        setPecState: ({ pec }) => provider.setPecState(pec, 'Approved', 'Approved by test'),
        // Loads the kind's SDK and makes no call of its own.
        prepare: async ({ server }) => provider.prepare?.(server.kind),
    };

    it('holds exactly what the adapters call for each watched kind, its approval action and status reads, nothing else', async () => {
        expect(Object.keys(provider).sort()).toEqual(Object.keys(drivers).sort());
        for (const kind of serverKinds) {
            const target = seed(kind);
            for (const drive of Object.values(drivers)) {
                await drive(target);
            }
        }
        const needed = new Set(arm.requests.flatMap((r) => rbacActions(r.method, r.path)).map((a) => a.toLowerCase()));
        expect([...needed].filter((action) => !roleHas(action))).toEqual([]);
        for (const kind of serverKinds) {
            const { provider: rp, type } = kindInfo[kind];
            const calls = [
                `${rp}/${type}/read`,
                `${rp}/${type}/privateEndpointConnections/read`,
                `${rp}/${type}/privateEndpointConnections/write`,
            ];
            for (const action of calls) {
                expect(`${action}: ${needed.has(action.toLowerCase())}`).toBe(`${action}: true`);
            }
            // Watching this kind alone: its calls, its approval action, and status reads; nothing else.
            const own = actionsOf(roleWith({ watchedResourceKinds: kind }));
            expect(own).toEqual(expect.arrayContaining(calls));
            expect(own.some((a) => /\/privateEndpointConnectionsApproval\/action$/.test(a))).toBe(
                kindInfo[kind].approvalAction !== undefined,
            );
            const beyond = own.filter(
                (a) => !needed.has(a.toLowerCase()) && !isPollingRead(a) && !/ConnectionsApproval\/action$/.test(a),
            );
            expect(`${kind}: ${beyond.join(' ')}`).toBe(`${kind}: `);
            expect(own.every((a) => a.toLowerCase().startsWith(`${rp.toLowerCase()}/`))).toBe(true);
        }
    });

    it('has no wildcard, no delete, no data actions, and only the watched subscriptions as scopes', () => {
        // The default deployment watches the four database kinds only.
        expect(actionsOf(role).every((a) => /^Microsoft\.DBfor(PostgreSQL|MySQL)\//.test(a))).toBe(true);
        expect(role.permissions).toHaveLength(1);
        expect(role.permissions[0]!.notActions).toEqual([]);
        expect(role.permissions[0]!.dataActions).toEqual([]);
        for (const action of roleActions) {
            expect(action).not.toContain('*');
            expect(action).not.toMatch(/\/delete$/);
        }
        expect(role.assignableScopes).toEqual([`/subscriptions/${home}`]);
        const watching = scopeOf(mainTemplate, {
            ...mainParameters,
            watchedSubscriptionIds: `${home},0b1c2d3e-aaaa-4bbb-8ccc-0000000000BB`,
        });
        const again = allResources(mainTemplate, watching).find(
            (f) => f.resource.type === 'Microsoft.Authorization/roleDefinitions',
        )!;
        expect((props(again) as unknown as RoleProperties).assignableScopes).toEqual([
            `/subscriptions/${home}`,
            '/subscriptions/0b1c2d3e-aaaa-4bbb-8ccc-0000000000bb',
        ]);
    });

    it('is assigned in each watched subscription only after the role deployment finished', () => {
        const watch = resourcesOf(mainTemplate).find((r) => String(r.name).includes('pecgate-watch-'))!;
        expect(String(watch.properties!.parameters!.roleDefinitionGuid!.value)).toMatch(
            /^\[reference\(.*pecgate-role-.*outputs\.name\.value\]$/,
        );
        const assignment = one(
            'Microsoft.Authorization/roleAssignments',
            everything.find(
                (f) =>
                    f.resource.type === 'Microsoft.Authorization/roleAssignments' &&
                    f.module.startsWith('pecgate-watch-'),
            )!.module,
        );
        expect(String(props(assignment).roleDefinitionId)).toMatch(/roleDefinitions/);
    });
});

// ---------------------------------------------------------------------------------------------------------------------
// Event Grid
// ---------------------------------------------------------------------------------------------------------------------

describe('the Event Grid subscription (compiled infra/eventSubscription.json)', () => {
    const topicId = `/subscriptions/${home}/resourceGroups/rg-dev/providers/Microsoft.EventGrid/systemTopics/evgt-pecgate-dev`;
    const esScope = scopeOf(eventSubscriptionTemplate, {
        systemTopicName: 'evgt-pecgate-dev',
        functionAppResourceId: `/subscriptions/${home}/resourceGroups/rg-dev/providers/Microsoft.Web/sites/func-pecgate-abc`,
        deadLetterStorageAccountId: `/subscriptions/${home}/resourceGroups/rg-dev/providers/Microsoft.Storage/storageAccounts/stpecgateabc`,
        deadLetterContainerName: 'eventgrid-deadletter',
    });
    const subscriptionResource = allResources(eventSubscriptionTemplate, esScope).find(
        (f) => f.resource.type === 'Microsoft.EventGrid/systemTopics/eventSubscriptions',
    )!;
    const es = props(subscriptionResource) as {
        destination: { endpointType: string; properties: { resourceId: string } };
        filter: {
            includedEventTypes: string[];
            advancedFilters: { operatorType: string; key: string; values: string[] }[];
        };
        deadLetterWithResourceIdentity: { deadLetterDestination: { properties: Record<string, string> } };
    };

    it('delivers to the function registered with app.eventGrid, one event at a time', () => {
        const eventGridFunctions = registered
            .filter((r) => Object.values(r.bindings).some((b) => b.type === 'eventGridTrigger'))
            .map((r) => r.name);
        expect(eventGridFunctions).toEqual(['pecEvents']);
        expect(es.destination.endpointType).toBe('AzureFunction');
        expect(es.destination.properties.resourceId).toBe(
            `/subscriptions/${home}/resourceGroups/rg-dev/providers/Microsoft.Web/sites/func-pecgate-abc/functions/pecEvents`,
        );
        expect(topicId).toContain('evgt-pecgate-dev');
    });

    it('dead-letters into the app storage account with the topic identity', () => {
        expect(es.deadLetterWithResourceIdentity.deadLetterDestination.properties).toEqual({
            resourceId: `/subscriptions/${home}/resourceGroups/rg-dev/providers/Microsoft.Storage/storageAccounts/stpecgateabc`,
            blobContainerName: 'eventgrid-deadletter',
        });
        expect(mainTemplate.variables?.deadLetterContainerName).toBe('eventgrid-deadletter');
    });

    /** Event Grid's filter semantics: event type in the list; every advanced filter matches (strings case-insensitive). */
    function delivered(event: { eventType: string; subject: string; data: Record<string, unknown> }): boolean {
        if (!es.filter.includedEventTypes.some((t) => t.toLowerCase() === event.eventType.toLowerCase())) {
            return false;
        }
        return es.filter.advancedFilters.every((f) => {
            const value = (
                f.key === 'subject' ? event.subject : String(event.data[f.key.replace(/^data\./, '')] ?? '')
            ).toLowerCase();
            const values = f.values.map((v) => v.toLowerCase());
            switch (f.operatorType) {
                case 'StringContains':
                    return values.some((v) => value.includes(v));
                case 'StringIn':
                    return values.includes(value);
                case 'StringBeginsWith':
                    return values.some((v) => value.startsWith(v));
                default:
                    throw new Error(`filter ${f.operatorType} is not simulated here`);
            }
        });
    }

    it('delivers exactly the events the code handles when every kind is watched (src/workflow/resourceEvent.ts)', () => {
        const eventTypes = ['Write', 'Delete', 'Action'].flatMap((v) =>
            ['Success', 'Failure', 'Cancel'].map((o) => `Microsoft.Resources.Resource${v}${o}`),
        );
        const targets: { subject: string; operationName: string; provider: string }[] = [];
        for (const { provider: rp, type } of Object.values(kindInfo)) {
            const server = `/subscriptions/${home}/resourceGroups/rg-data/providers/${rp}/${type}/db1`;
            for (const child of ['privateEndpointConnections', 'privateEndpointConnectionProxies']) {
                for (const verb of ['write', 'delete']) {
                    targets.push({
                        subject: `${server}/${child}/pe1.abc`,
                        operationName: `${rp}/${type}/${child}/${verb}`,
                        provider: rp,
                    });
                }
            }
            targets.push({ subject: server, operationName: `${rp}/${type}/write`, provider: rp });
            targets.push({
                subject: `${server}/privateEndpointConnections/pe1.abc`,
                operationName: `${rp}/${type}/privateEndpointConnectionsApproval/action`,
                provider: rp,
            });
        }
        targets.push({
            subject: `/subscriptions/${home}/resourceGroups/rg/providers/Microsoft.Synapse/workspaces/ws1/privateEndpointConnections/pe1`,
            operationName: 'Microsoft.Synapse/workspaces/privateEndpointConnections/write',
            provider: 'Microsoft.Synapse',
        });
        targets.push({
            subject: `/subscriptions/${home}/resourceGroups/rg/providers/Microsoft.DBforPostgreSQL/serverGroupsv2/cg1/privateEndpointConnections/pe1`,
            operationName: 'Microsoft.DBforPostgreSQL/serverGroupsv2/privateEndpointConnections/write',
            provider: 'Microsoft.DBforPostgreSQL',
        });
        let handledCount = 0;
        for (const eventType of eventTypes) {
            for (const t of targets) {
                const event = {
                    id: 'e1',
                    eventType,
                    subject: t.subject,
                    data: {
                        operationName: t.operationName,
                        resourceUri: t.subject,
                        resourceProvider: t.provider,
                        subscriptionId: home,
                        claims: {},
                    },
                };
                const parsed = parseResourceEvent(event);
                expect('value' in parsed).toBe(true);
                const handled =
                    'value' in parsed &&
                    'value' in
                        classifyResourceEvent(parsed.value, {
                            watchedSubscriptionIds: [home],
                            ownClientId: 'not-us',
                            // The filter is the same whichever kinds are watched: it lets every registered kind through.
                            watchedKinds: serverKinds,
                        });
                handledCount += handled ? 1 : 0;
                expect(`${eventType} ${t.operationName}: ${delivered(event)}`).toBe(
                    `${eventType} ${t.operationName}: ${handled}`,
                );
            }
        }
        expect(handledCount).toBeGreaterThanOrEqual(16);
    });
});

// ---------------------------------------------------------------------------------------------------------------------
// Alerts, guardrail
// ---------------------------------------------------------------------------------------------------------------------

describe('alerts (issue 19)', () => {
    const rules = () => {
        const found = one('Microsoft.Insights/scheduledQueryRules', 'alerts');
        const variables = found.scope.variables.rules as unknown[];
        return evaluate(variables, found.scope) as {
            name: string;
            query: string;
            windowMinutes: number;
            operator: string;
            threshold: number;
        }[];
    };

    it('watch ALERT lines, the poison queue, Event Grid dead letters and a stalled sweep', () => {
        const byName = Object.fromEntries(rules().map((r) => [r.name, r]));
        expect(Object.keys(byName).sort()).toEqual([
            'alert-lines',
            'eventgrid-dead-letters',
            'poison-queue',
            'sweep-stalled',
        ]);
        // The ALERT rule's pattern against the lines the app's logger really writes.
        const pattern = /matches regex @"(.*)"$/.exec(byName['alert-lines']!.query)?.[1];
        expect(byName['alert-lines']!.query).toMatch(/^AppTraces \| where Message matches regex/);
        const alertLine = new RegExp(pattern ?? '^$');
        const logged: string[] = [];
        const sink = {
            info: () => undefined,
            warn: () => undefined,
            error: (...a: unknown[]) => logged.push(a.join(' ')),
        };
        withTrace({ requestId: 'r1', correlationId: 'c1' }, () =>
            tracedLogger(sink).error('ALERT card of request r1 failed'),
        );
        withTrace({ requestId: 'r2', correlationId: 'c2' }, () =>
            tracedLogger(sink).error('Dropped an event whose operation is ALERT x'),
        );
        tracedLogger(sink).error('ALERT invalid apply message dropped');
        expect(logged.map((l) => alertLine.test(l))).toEqual([true, false, true]);
        // The poison queue the host uses for the apply queue's trigger.
        const applyQueue = registered
            .flatMap((r) => Object.values(r.bindings))
            .find((b) => b.type === 'queueTrigger')?.queueName;
        expect(applyQueue).toBeDefined();
        expect(byName['poison-queue']!.query).toContain(`"/${applyQueue}-poison/"`);
        expect(byName['eventgrid-dead-letters']!.query).toContain('/eventgrid-deadletter/');
        // Two schedules of the default '0 */15 * * * *' = 30 minutes, on the function the timer registers.
        expect(registered.map((r) => r.name)).toContain('sweep');
        expect(byName['sweep-stalled']).toMatchObject({ windowMinutes: 30, operator: 'LessThan', threshold: 1 });
        expect(byName['sweep-stalled']!.query).toContain('Name == "sweep" and Success == true');
    });

    it('mail the alertEmail when one is given, and only then create the action group', () => {
        const group = one('Microsoft.Insights/actionGroups', 'alerts');
        expect(evaluate(group.resource.condition, group.scope)).toBe(false);
        const withMail = allResources(
            mainTemplate,
            scopeOf(mainTemplate, { ...mainParameters, alertEmail: 'ops@example.com' }),
        );
        const g = withMail.find((f) => f.resource.type === 'Microsoft.Insights/actionGroups')!;
        expect(evaluate(g.resource.condition, g.scope)).toBe(true);
        expect((props(g).emailReceivers as { emailAddress: string }[])[0]!.emailAddress).toBe('ops@example.com');
    });

    it('derive the stalled-sweep window from SWEEP_SCHEDULE', () => {
        for (const [schedule, window] of [
            ['0 */5 * * * *', 10],
            ['0 0 */2 * * *', 240],
            ['0 30 9 * * 1-5', 2880],
        ] as const) {
            const found = allResources(
                mainTemplate,
                scopeOf(mainTemplate, { ...mainParameters, sweepSchedule: schedule }),
            ).find((f) => f.resource.type === 'Microsoft.Insights/scheduledQueryRules')!;
            const r = (
                evaluate(found.scope.variables.rules, found.scope) as { name: string; windowMinutes: number }[]
            ).find((x) => x.name === 'sweep-stalled');
            expect(`${schedule}: ${r?.windowMinutes}`).toBe(`${schedule}: ${window}`);
        }
    });
});

describe('the untrusted private endpoint guardrail (Azure Policy, optional)', () => {
    it('is off by default, and when on denies approved PECs from outside the trusted subscriptions on the watched kinds', () => {
        const def = one('Microsoft.Authorization/policyDefinitions');
        expect(evaluate(def.resource.condition, def.scope)).toBe(false);
        const on = allResources(
            mainTemplate,
            scopeOf(mainTemplate, {
                ...mainParameters,
                denyUntrustedPrivateEndpoints: true,
                trustedSubscriptionIds: '0b1c2d3e-aaaa-4bbb-8ccc-0000000000CC',
            }),
        );
        const d = on.find((f) => f.resource.type === 'Microsoft.Authorization/policyDefinitions')!;
        const a = on.find((f) => f.resource.type === 'Microsoft.Authorization/policyAssignments')!;
        expect(evaluate(d.resource.condition, d.scope)).toBe(true);
        const rule = props(d).policyRule as {
            if: { anyOf: { allOf: Record<string, unknown>[] }[] };
            then: { effect: string };
        };
        expect(rule.then.effect).toBe('Deny');
        const types = rule.if.anyOf.map((c) => c.allOf[0]!.equals);
        // The watched kinds' connections (the default: the four database kinds).
        expect(types.sort()).toEqual(
            Object.values(kindInfo)
                .filter((k) => k.provider.startsWith('Microsoft.DBfor'))
                .map((k) => `${k.provider}/${k.type}/privateEndpointConnections`)
                .sort(),
        );
        for (const clause of rule.if.anyOf) {
            expect(clause.allOf[1]).toMatchObject({ equals: 'Approved' });
        }
        const allowed = (props(a).parameters as { allowedSubscriptionIds: { value: string[] } }).allowedSubscriptionIds
            .value;
        expect(allowed.sort()).toEqual([home, '0b1c2d3e-aaaa-4bbb-8ccc-0000000000cc'].sort());
    });
});

/**
 * The guardrail's rule as Azure Policy evaluates a request, for the rule this template writes: `field('type')`, a
 * connection alias (`{type}/privateLinkServiceConnectionState.status` is `properties.…` of the PUT body), `equals`
 * (case-insensitive, as Policy compares strings), `exists`, and `notIn` on the one `value` expression the rule uses.
 */
type PolicyCondition = Record<string, unknown>;
function policyDenies(
    condition: PolicyCondition,
    request: { type: string; body: Record<string, unknown> },
    allowed: readonly string[],
): boolean {
    if (Array.isArray(condition.anyOf)) {
        return (condition.anyOf as PolicyCondition[]).some((c) => policyDenies(c, request, allowed));
    }
    if (Array.isArray(condition.allOf)) {
        return (condition.allOf as PolicyCondition[]).every((c) => policyDenies(c, request, allowed));
    }
    const fieldOf = (alias: string): unknown => {
        if (alias === 'type') {
            return request.type;
        }
        expect(alias.toLowerCase().startsWith(`${request.type.toLowerCase()}/`) || !alias.includes('/')).toBe(true);
        if (!alias.toLowerCase().startsWith(`${request.type.toLowerCase()}/`)) {
            return undefined;
        }
        let value: unknown = request.body.properties;
        for (const key of alias.slice(request.type.length + 1).split('.')) {
            value = (value as Record<string, unknown> | undefined)?.[key];
        }
        return value;
    };
    let actual: unknown;
    if (typeof condition.field === 'string') {
        actual = fieldOf(condition.field);
    } else {
        const idiom = /^\[toLower\(split\(concat\(field\('([^']+)'\), '\/\/'\), '\/'\)\[2\]\)\]$/.exec(
            String(condition.value),
        );
        expect(idiom).not.toBeNull();
        actual = `${String(fieldOf(idiom![1]!) ?? '')}//`.split('/')[2]!.toLowerCase();
    }
    if ('equals' in condition) {
        return String(actual).toLowerCase() === String(condition.equals).toLowerCase();
    }
    if ('exists' in condition) {
        return (actual !== undefined && actual !== null) === condition.exists;
    }
    if ('notIn' in condition) {
        expect(condition.notIn).toBe("[parameters('allowedSubscriptionIds')]");
        return !allowed.includes(String(actual));
    }
    throw new Error(`no operator in ${JSON.stringify(condition)}`);
}

describe("the guardrail against the gate's own PUTs", () => {
    let arm: ArmEmulator;
    const trusted = '0b1c2d3e-aaaa-4bbb-8ccc-0000000000cc';
    const credential: TokenCredential = {
        getToken: async (): Promise<AccessToken> => ({ token: 'a.b.c', expiresOnTimestamp: Date.now() + 3_600_000 }),
    };
    beforeAll(async () => {
        arm = await ArmEmulator.start();
    });
    afterAll(async () => {
        await arm?.close();
    });

    it("lets every kind's approval from a trusted subscription through, and denies an untrusted one or a body without the endpoint", async () => {
        const on = allResources(
            mainTemplate,
            scopeOf(mainTemplate, {
                ...mainParameters,
                watchedResourceKinds: serverKinds.join(','),
                denyUntrustedPrivateEndpoints: true,
                trustedSubscriptionIds: trusted,
            }),
        );
        const rule = props(on.find((f) => f.resource.type === 'Microsoft.Authorization/policyDefinitions')!)
            .policyRule as { if: PolicyCondition };
        const allowed = (
            props(on.find((f) => f.resource.type === 'Microsoft.Authorization/policyAssignments')!).parameters as {
                allowedSubscriptionIds: { value: string[] };
            }
        ).allowedSubscriptionIds.value;
        const provider = createArmPecProvider({
            endpoint: arm.url,
            credential,
            maxRetries: 0,
            retryDelayInMs: 1,
            lroDeadlineMs: 20_000,
        });
        for (const kind of serverKinds) {
            const { provider: rp, type } = kindInfo[kind];
            const server: ServerRef = { kind, subscriptionId: home, resourceGroup: 'rg-data', name: `guard-${kind}` };
            const serverId = arm.addServer({ ...server, provider: rp, type });
            const sends = async (peSubscription: string, name: string) => {
                arm.addPec(serverId, {
                    name,
                    privateEndpointId: `/subscriptions/${peSubscription}/resourceGroups/rg-net/providers/Microsoft.Network/privateEndpoints/${name}`,
                });
                const from = arm.requests.length;
                await provider.setPecState({ server, name }, 'Approved', 'Approved by the gate');
                const put = arm.requests.slice(from).find((r) => r.method === 'PUT');
                return { type: `${rp}/${type}/privateEndpointConnections`, body: put!.body as Record<string, unknown> };
            };
            const ours = await sends(trusted, 'pe-trusted');
            expect(`${kind}: ${policyDenies(rule.if, ours, allowed)}`).toBe(`${kind}: false`);
            const theirs = await sends('0b1c2d3e-aaaa-4bbb-8ccc-0000000000dd', 'pe-foreign');
            expect(`${kind}: ${policyDenies(rule.if, theirs, allowed)}`).toBe(`${kind}: true`);
            // What the portal sends (no private endpoint in the body): denied, as the Cloud Adoption Framework notes.
            const { privateEndpoint: _, ...portal } = (ours.body.properties ?? {}) as Record<string, unknown>;
            expect(policyDenies(rule.if, { ...ours, body: { properties: portal } }, allowed)).toBe(true);
        }
    });
});

// ---------------------------------------------------------------------------------------------------------------------
// azd wiring
// ---------------------------------------------------------------------------------------------------------------------

const azureYaml = read('azure.yaml');

describe('azd wiring', () => {
    it('deploys the bundle staged by `npm run package` as a js function service', () => {
        expect(azureYaml).toMatch(/^ {4}api:\n {8}project: \.\n {8}language: js\n {8}host: function\n/m);
        expect(azureYaml).toMatch(/^ {8}dist: dist\/package$/m);
        expect(azureYaml).toMatch(/^ {8}remoteBuild: false$/m);
        expect(azureYaml).toMatch(/prepackage:[\s\S]*run: npm ci [^\n]*&& npm run package/);
        expect(deploymentName(one('Microsoft.Web/sites', 'functionApp'))).toBe('functionApp');
        expect(JSON.stringify(one('Microsoft.Web/sites', 'functionApp').resource.tags ?? '')).toBe(
            '"[parameters(\'tags\')]"',
        );
    });

    it('runs hooks that exist in both shells', () => {
        const runs = [...azureYaml.matchAll(/^\s+run: (\.\/scripts\/hooks\/\S+)$/gm)].map((m) => m[1]!);
        for (const hook of ['preprovision', 'postprovision', 'postdeploy']) {
            expect(runs).toEqual(expect.arrayContaining([`./scripts/hooks/${hook}.sh`, `./scripts/hooks/${hook}.ps1`]));
        }
        for (const run of runs) {
            expect(readdirSync(path.join(root, 'scripts/hooks'))).toContain(path.basename(run));
        }
        // The bash hooks are executable and parse (PowerShell's parser checks the .ps1 in npm run infra:check).
        for (const script of readdirSync(path.join(root, 'scripts/hooks')).filter((f) => f.endsWith('.sh'))) {
            const file = path.join(root, 'scripts/hooks', script);
            expect(`${script}: ${(statSync(file).mode & 0o111) === 0o111}`).toBe(`${script}: true`);
            expect(readFileSync(file, 'utf8')).toMatch(/^#!\/usr\/bin\/env bash\n/);
            execFileSync('bash', ['-n', file]);
        }
    });

    it('feeds the hooks only values main.bicep outputs, or the documented optional inputs', () => {
        const outputs = new Set(Object.keys(mainTemplate.outputs ?? {}));
        const optional = new Set([
            'AZURE_ENV_NAME',
            'AZURE_SUBSCRIPTION_ID',
            'WATCHED_SUBSCRIPTION_IDS',
            'WATCHED_RESOURCE_KINDS',
            'GRANT_TEAMS_APP_INSTALLATION',
            'EVENTGRID_DELIVERY',
            'AUTH_CLIENT_ID',
            'TEAMS_CHANNEL_ID',
            'WORKFLOWS_WEBHOOK_URL',
        ]);
        for (const hook of ['preprovision.sh', 'postdeploy.sh', 'grant-graph-permissions.sh', 'postprovision.sh']) {
            const text = read(`scripts/hooks/${hook}`);
            const names = [...text.matchAll(/(?:^|\s)(?:load_azd_env|require_vars) ((?:[^\n]*\\\n)*[^\n]*)/gm)]
                .flatMap((m) => m[1]!.split(/[\s\\|]+/))
                .filter((word) => /^[A-Z][A-Z0-9_]+$/.test(word));
            expect(names.length).toBeGreaterThan(0);
            expect(`${hook}: ${names.filter((n) => !outputs.has(n) && !optional.has(n)).join(' ')}`).toBe(`${hook}: `);
        }
        expect(mainTemplate.outputs?.BOT_ID?.value).toBe(mainTemplate.outputs?.AZURE_CLIENT_ID?.value);
    });

    it('gives main.bicepparam a value for every parameter without a default, from the azd environment', () => {
        const bicepparam = read('infra/main.bicepparam');
        const set = new Map([...bicepparam.matchAll(/^param (\w+) = (.+)$/gm)].map((m) => [m[1]!, m[2]!]));
        for (const [name, p] of Object.entries(mainTemplate.parameters ?? {})) {
            if (p.defaultValue === undefined) {
                expect(`${name}: ${set.has(name)}`).toBe(`${name}: true`);
            }
        }
        for (const name of set.keys()) {
            expect(mainTemplate.parameters).toHaveProperty(name);
        }
        expect(set.get('environmentName')).toBe("readEnvironmentVariable('AZURE_ENV_NAME')");
        expect(set.get('alertEmail')).toBe("readEnvironmentVariable('ALERT_EMAIL', '')");
        // A parameter's azd default must be the template default, or `azd up` and a plain deployment would differ.
        expect(set.get('sweepSchedule')).toBe(
            `readEnvironmentVariable('SWEEP_SCHEDULE', '${mainTemplate.parameters?.sweepSchedule?.defaultValue}')`,
        );
    });
});

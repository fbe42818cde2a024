/**
 * The deployment (azure.yaml, infra/*.bicep, the hook scripts) read as text and checked against the code it deploys:
 * the settings src/config.ts requires, the Event Grid function functions/ registers, and the ARM calls src/arm/ makes
 * (replayed against the ARM emulator). Bicep cannot be compiled here, so these checks are what keeps the templates and
 * the app from drifting apart.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import * as path from 'node:path';
import type { AccessToken, TokenCredential } from '@azure/core-auth';
import { createArmPecProvider, type PecProvider } from '../../src/arm';
import { loadConfig } from '../../src/config';
import { kindInfo, serverKinds, type PecRef, type ServerKind, type ServerRef } from '../../src/domain/ids';
import { ArmEmulator } from '../emulators/arm';

interface Binding {
    type: string;
    direction: string;
    route?: string;
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

beforeAll(async () => {
    for (const file of readdirSync(path.join(root, 'functions')).filter((f) => f.endsWith('.ts'))) {
        await import(path.join(root, 'functions', file));
    }
});
const read = (file: string) => readFileSync(path.join(root, file), 'utf8');

const mainBicep = read('infra/main.bicep');
const eventSubscriptionBicep = read('infra/eventSubscription.bicep');
const azureYaml = read('azure.yaml');

function bicepFiles(dir = 'infra'): string[] {
    return readdirSync(path.join(root, dir), { withFileTypes: true }).flatMap((entry) => {
        const file = `${dir}/${entry.name}`;
        if (entry.isDirectory()) {
            return bicepFiles(file);
        }
        return entry.name.endsWith('.bicep') ? [file] : [];
    });
}

// ---------------------------------------------------------------------------------------------------------------------
// A small reader for the parts of Bicep these tests need: strings (with ${} interpolation), comments, brackets.
// ---------------------------------------------------------------------------------------------------------------------

/** Index just past the string literal that opens at `start` (a `'`), interpolations included. */
function skipString(text: string, start: number): number {
    let i = start + 1;
    while (i < text.length) {
        const c = text[i];
        if (c === '\\') {
            i += 2;
        } else if (c === "'") {
            return i + 1;
        } else if (c === '$' && text[i + 1] === '{') {
            i = skipExpression(text, i + 2, '}') + 1;
        } else {
            i += 1;
        }
    }
    throw new Error(`unterminated string at ${start}`);
}

/** Index of the `closer` that ends the expression starting at `start`, skipping nested brackets, strings, comments. */
function skipExpression(text: string, start: number, closer: string): number {
    const pairs: Record<string, string> = { '{': '}', '[': ']', '(': ')' };
    const stack = [closer];
    let i = start;
    while (i < text.length) {
        const c = text[i]!;
        if (c === "'") {
            i = skipString(text, i);
            continue;
        }
        if (c === '/' && text[i + 1] === '/') {
            i = text.indexOf('\n', i);
            if (i < 0) {
                break;
            }
            continue;
        }
        if (pairs[c]) {
            stack.push(pairs[c]);
        } else if (c === stack[stack.length - 1]) {
            stack.pop();
            if (stack.length === 0) {
                return i;
            }
        }
        i += 1;
    }
    throw new Error(`no closing ${closer} after ${start}`);
}

/** The text inside the `{...}`, `[...]` or `(...)` that ends the first match of `header`. */
function blockAfter(text: string, header: RegExp): string {
    const m = header.exec(text);
    if (!m) {
        throw new Error(`not found: ${header}`);
    }
    const open = m.index + m[0].length - 1;
    const opener = text[open];
    const closers: Record<string, string> = { '{': '}', '[': ']', '(': ')' };
    const closer = closers[opener ?? ''];
    if (!closer) {
        throw new Error(`${header} must end at {, [ or (`);
    }
    const close = skipExpression(text, open + 1, closer);
    return text.slice(open + 1, close);
}

/** A line without its trailing `// comment` (outside strings). */
function stripComment(line: string): string {
    let i = 0;
    while (i < line.length) {
        if (line[i] === "'") {
            i = skipString(line, i);
        } else if (line[i] === '/' && line[i + 1] === '/') {
            return line.slice(0, i).trimEnd();
        } else {
            i += 1;
        }
    }
    return line.trimEnd();
}

/** The `key: expression` entries of a one-entry-per-line Bicep object. */
function objectEntries(body: string): Map<string, string> {
    const entries = new Map<string, string>();
    for (const raw of body.split('\n')) {
        const line = stripComment(raw).trim();
        if (!line) {
            continue;
        }
        const m = /^([A-Za-z_][A-Za-z0-9_]*|'[^']+'):\s*(.+)$/.exec(line);
        if (!m) {
            throw new Error(`not a one-line object entry: ${line}`);
        }
        entries.set(m[1]!.replace(/^'|'$/g, ''), m[2]!);
    }
    return entries;
}

/** The string literals at the top level of a Bicep array body. */
function stringItems(body: string): string[] {
    return body
        .split('\n')
        .map((line) => stripComment(line).trim())
        .filter(Boolean)
        .map((item) => {
            const literal = stringLiteral(item);
            if (literal === undefined) {
                throw new Error(`not a string literal: ${item}`);
            }
            return literal;
        });
}

/** The value of a Bicep string literal; interpolations become `placeholderN`. Undefined for any other expression. */
function stringLiteral(expression: string): string | undefined {
    const e = expression.trim();
    if (!e.startsWith("'") || skipString(e, 0) !== e.length) {
        return undefined;
    }
    let n = 0;
    let out = '';
    for (let i = 1; i < e.length - 1; i++) {
        if (e[i] === '\\') {
            out += e[i + 1];
            i += 1;
        } else if (e[i] === '$' && e[i + 1] === '{') {
            i = skipExpression(e, i + 2, '}');
            out += `placeholder${n++}`;
        } else {
            out += e[i];
        }
    }
    return out;
}

interface BicepParam {
    type: string;
    defaultValue?: string;
}

function params(text: string): Map<string, BicepParam> {
    const found = new Map<string, BicepParam>();
    for (const m of text.matchAll(/^param\s+(\w+)\s+([\w[\]]+)(?:\s*=\s*(.+))?$/gm)) {
        found.set(m[1]!, { type: m[2]!, ...(m[3] === undefined ? {} : { defaultValue: m[3].trim() }) });
    }
    return found;
}

function outputs(text: string): Set<string> {
    return new Set([...text.matchAll(/^output\s+(\w+)\s/gm)].map((m) => m[1]!));
}

/** The text of one `resource name '...' = ...` or `module name '...' = ...` declaration's body. */
function declaration(text: string, kind: 'resource' | 'module', name: string): string {
    return blockAfter(
        text,
        new RegExp(`^${kind} ${name} '[^']+' = (?:\\[\\s*for [^\\n]*?:\\s*)?(?:if \\([^)]*\\) )?\\{`, 'm'),
    );
}

// ---------------------------------------------------------------------------------------------------------------------
// The app settings the Bicep deploys, as the environment loadConfig() would see in Azure.
// ---------------------------------------------------------------------------------------------------------------------

const mainParams = params(mainBicep);
const hostSettings = objectEntries(blockAfter(mainBicep, /^var hostSettings = \{/m));
const appSettings = objectEntries(blockAfter(mainBicep, /^var appSettings = \{/m));
const deployedSettings = new Map([...hostSettings, ...appSettings]);

/**
 * What Azure or the operator supplies for settings whose Bicep value is an expression (a resource property, a module
 * output, a required parameter). Placeholders with the real shapes: a GUID, an App Insights connection string.
 */
const supplied: Record<string, string> = {
    WATCHED_SUBSCRIPTION_IDS: '0b1c2d3e-aaaa-4bbb-8ccc-000000000001',
    // join(watchedKinds, ','): the default kinds from infra/resourceKinds.json when the parameter is empty.
    WATCHED_RESOURCE_KINDS: 'postgres-single,postgres-flexible,mysql-single,mysql-flexible',
    AZURE_TENANT_ID: '72f988bf-86f1-41af-91ab-2d7cd011db47',
    AZURE_CLIENT_ID: '5e1f0c2a-1111-4222-8333-444455556666',
    APPROVER_GROUP_IDS: 'a9a9a9a9-0000-4000-8000-000000000001',
    ARM_ENDPOINT: 'https://management.azure.com',
    AZURE_AUTHORITY_HOST: 'https://login.microsoftonline.com',
    PORTAL_URL: 'https://portal.azure.com',
    // Set with `azd env set TEAMS_CHANNEL_ID` once the bot is in the team (infra/README.md).
    TEAMS_CHANNEL_ID: '19:0123456789abcdef0123456789abcdef@thread.tacv2',
    POLICY: '',
    AzureWebJobsStorage__accountName: 'stpecgateabcdefghijklm',
    AzureWebJobsStorage__clientId: '5e1f0c2a-1111-4222-8333-444455556666',
    APPLICATIONINSIGHTS_CONNECTION_STRING:
        'InstrumentationKey=00000000-0000-4000-8000-000000000000;IngestionEndpoint=https://westeurope-5.in.applicationinsights.azure.com/;LiveEndpoint=https://westeurope.livediagnostics.monitor.azure.com/',
};

/** The value a setting has in Azure: a literal, a parameter's default, what is supplied, or a resolvable variable. */
function resolve(setting: string, expression: string, depth = 0): string {
    const literal = stringLiteral(expression);
    if (literal !== undefined) {
        return literal;
    }
    const param = mainParams.get(expression);
    const paramDefault = param?.defaultValue === undefined ? undefined : stringLiteral(param.defaultValue);
    if (paramDefault) {
        return paramDefault;
    }
    if (setting in supplied) {
        return supplied[setting]!;
    }
    if (paramDefault === '') {
        // An empty setting means "unset" to loadConfig: the app's own default applies.
        return '';
    }
    const variable = new RegExp(`^var ${expression.replace(/[^\w]/g, '')} = (.+)$`, 'm').exec(mainBicep);
    if (/^\w+$/.test(expression) && variable && depth < 3) {
        return resolve(setting, variable[1]!, depth + 1);
    }
    throw new Error(`${setting}: no placeholder for the Bicep expression ${expression}; add one to \`supplied\``);
}

function deployedEnvironment(): NodeJS.ProcessEnv {
    const env: NodeJS.ProcessEnv = {};
    for (const [name, expression] of deployedSettings) {
        env[name] = resolve(name, expression);
    }
    return env;
}

describe('app settings (infra/main.bicep) against src/config.ts', () => {
    it('are all applied: the appsettings resource gets both blocks, and nothing else replaces them', () => {
        expect(declaration(mainBicep, 'module', 'functionAppConfig')).toMatch(
            /settings: union\(hostSettings, appSettings\)/,
        );
        const module = read('infra/modules/appSettings.bicep');
        expect(declaration(module, 'resource', 'appsettings')).toMatch(/name: 'appsettings'/);
        expect(declaration(module, 'resource', 'appsettings')).toMatch(/properties: union\(settings, authSettings\)/);
        // A siteConfig.appSettings list on the site would replace the full set with a partial one on re-provision.
        expect(read('infra/modules/functionApp.bicep')).not.toMatch(/appSettings\s*:/);
    });

    it('give loadConfig() everything it requires (a new required setting fails here until the Bicep sets it)', () => {
        const env = deployedEnvironment();
        let config: ReturnType<typeof loadConfig> | undefined;
        expect(() => {
            config = loadConfig(env);
        }).not.toThrow();
        expect(config?.storage.tableServiceUri).toMatch(/^https:\/\//);
        expect(config?.storage.connectionString).toBeUndefined();
        expect(config?.SWEEP_SCHEDULE).toBe('0 */15 * * * *');
    });

    it('fail at start-up without a Teams channel or a webhook, as infra/README.md says', () => {
        const env = { ...deployedEnvironment(), TEAMS_CHANNEL_ID: '' };
        expect(() => loadConfig(env)).toThrow(/TEAMS_CHANNEL_ID/);
    });

    it('set every setting src/config.ts reads, except the ones left to defaults or the platform on purpose', () => {
        const source = read('src/config.ts');
        const start = source.indexOf('const schema = z.object({');
        const schema = source.slice(start, source.indexOf('\n});', start));
        const schemaKeys = [...schema.matchAll(/^ {4}([A-Za-z_][A-Za-z0-9_]*):/gm)].map((m) => m[1]!);
        expect(schemaKeys.length).toBeGreaterThan(20);
        const leftOut: Record<string, string> = {
            GRAPH_ENDPOINT: 'public cloud default (environment() has no Microsoft Graph endpoint)',
            BOT_OPENID_METADATA_URL: 'public cloud default',
            BOT_TOKEN_SCOPE: 'public cloud default',
            TEAMS_SERVICE_URL: 'learned from incoming activities; documented default',
            ARM_MAX_RETRIES: 'tuning; the default',
            ARM_RETRY_DELAY_MS: 'tuning; the default',
            ARM_LRO_DEADLINE_SECONDS: 'tuning; the default',
            HTTP_TIMEOUT_MS: 'tuning; the default',
            SUBSCRIPTION_TENANTS: 'optional map; without it the home tenant is looked up from ARM',
            UNKNOWN_REQUESTER_APPROVALS: 'the documented default (a second approver)',
            REQUESTS_TABLE: 'the default table name',
            AUDIT_TABLE: 'the default table name',
            AUDIT_ANCHOR_CONTAINER: 'the default container name, the one main.bicep deploys with its WORM policy',
            DEV_TRUST_CLIENT_PRINCIPAL: 'local development only; refused in Azure',
            WEBSITE_AUTH_ENABLED: 'set by the platform when App Service Authentication is on',
            WEBSITE_SITE_NAME: 'set by the platform',
            IDENTITY_ENDPOINT: 'set by the platform for an app with a managed identity',
            IDENTITY_HEADER: 'set by the platform for an app with a managed identity',
            DASHBOARD_READER_GROUP_IDS: 'optional; without it only the approver groups read the dashboard',
        };
        const missing = schemaKeys.filter((name) => !deployedSettings.has(name) && !(name in leftOut));
        expect(missing).toEqual([]);
        // The list of exceptions must not go stale either.
        expect(Object.keys(leftOut).filter((name) => !schemaKeys.includes(name))).toEqual([]);
    });

    it('use identity-based storage and Entra auth for Application Insights, and nothing deprecated on Flex', () => {
        expect(hostSettings.get('AzureWebJobsStorage__credential')).toBe("'managedidentity'");
        expect(hostSettings.get('AzureWebJobsStorage__clientId')).toBe('identity.outputs.clientId');
        expect(appSettings.get('AZURE_CLIENT_ID')).toBe('identity.outputs.clientId');
        expect(hostSettings.get('APPLICATIONINSIGHTS_AUTHENTICATION_STRING')).toBe(
            "'ClientId=${identity.outputs.clientId};Authorization=AAD'",
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
            expect(deployedSettings.has(name)).toBe(false);
        }
    });
});

// ---------------------------------------------------------------------------------------------------------------------
// Hosting, storage, monitoring, bot
// ---------------------------------------------------------------------------------------------------------------------

describe('resources', () => {
    it('host the app on Flex Consumption with the user-assigned identity, tagged for azd as the api service', () => {
        const fn = read('infra/modules/functionApp.bicep');
        expect(declaration(fn, 'resource', 'plan')).toMatch(/name: 'FC1'\s+tier: 'FlexConsumption'/);
        expect(declaration(fn, 'resource', 'plan')).toMatch(/reserved: true/);
        const site = declaration(fn, 'resource', 'site');
        expect(site).toMatch(/kind: 'functionapp,linux'/);
        expect(site).toMatch(/type: 'UserAssigned'/);
        expect(site).toMatch(/type: 'blobContainer'[\s\S]*type: 'UserAssignedIdentity'/);
        expect(site).toMatch(/runtime: \{\s+name: 'node'/);
        expect(declaration(mainBicep, 'module', 'functionApp')).toMatch(/'azd-service-name': 'api'/);
        expect(azureYaml).toMatch(/^services:\n {4}api:\n/m);
    });

    it('lock the storage account down: no shared keys, no public blobs, TLS 1.2', () => {
        const account = declaration(read('infra/modules/storage.bicep'), 'resource', 'account');
        expect(account).toMatch(/allowSharedKeyAccess: false/);
        expect(account).toMatch(/allowBlobPublicAccess: false/);
        expect(account).toMatch(/minimumTlsVersion: 'TLS1_2'/);
    });

    it('give the identity the storage and monitoring roles the host and the app use, by built-in role id', () => {
        const storage = read('infra/modules/storage.bicep');
        const appRoles = stringItems(blockAfter(storage, /^var appRoles = \[/m));
        expect(appRoles.sort()).toEqual(
            [
                'b7e6dc6d-f1e8-4753-8033-0f276bb0955b', // Storage Blob Data Owner
                '974c5e8b-45b9-4653-ba55-5f855dd0fb88', // Storage Queue Data Contributor
                '0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3', // Storage Table Data Contributor
            ].sort(),
        );
        const monitoring = read('infra/modules/monitoring.bicep');
        expect(monitoring).toMatch(/var monitoringMetricsPublisher = '3913510d-42f4-4e42-8a64-420c390055eb'/);
        expect(declaration(monitoring, 'resource', 'appInsights')).toMatch(/DisableLocalAuth: true/);
    });

    it('name every role assignment with guid(), so a re-deployment finds the same assignment', () => {
        let count = 0;
        for (const file of bicepFiles()) {
            const text = read(file);
            for (const m of text.matchAll(/^resource (\w+) 'Microsoft\.Authorization\/roleAssignments@/gm)) {
                const body = declaration(text, 'resource', m[1]!);
                expect(`${file} ${m[1]}: ${/^\s*name: (.*)$/m.exec(body)?.[1]}`).toMatch(/: guid\(/);
                count += 1;
            }
        }
        expect(count).toBeGreaterThanOrEqual(5);
    });

    it('register the bot with the identity (UserAssignedMSI) and the endpoint the teamsMessages function serves', () => {
        const bot = declaration(read('infra/modules/bot.bicep'), 'resource', 'bot');
        expect(bot).toMatch(/msaAppType: 'UserAssignedMSI'/);
        expect(bot).toMatch(/msaAppId: identityClientId/);
        expect(bot).toMatch(/msaAppMSIResourceId: identityResourceId/);
        expect(bot).toMatch(/kind: 'azurebot'/);
        expect(read('infra/modules/bot.bicep')).toMatch(/name: 'MsTeamsChannel'/);
        const module = objectEntries(blockAfter(declaration(mainBicep, 'module', 'bot'), /params: \{/));
        expect(module.get('identityClientId')).toBe('identity.outputs.clientId');
        const route = registered.flatMap((r) =>
            Object.values(r.bindings).filter((b) => b.type === 'httpTrigger' && r.name === 'teamsMessages'),
        )[0]?.route;
        expect(route).toBeDefined();
        // host.json keeps the default "api" route prefix.
        expect(JSON.parse(read('host.json')).extensions?.http?.routePrefix).toBeUndefined();
        expect(module.get('endpoint')).toBe(`'\${publicBaseUrl}/api/${route}'`);
        expect(resolve('PUBLIC_BASE_URL', 'publicBaseUrl')).toMatch(/^https:\/\//);
    });

    it('put App Service Authentication in front of the page only, leaving the bot and Event Grid out of it', () => {
        const module = read('infra/modules/appSettings.bicep');
        const auth = declaration(module, 'resource', 'authsettings');
        expect(module).toMatch(/resource authsettings '[^']+' = if \(authEnabled\)/);
        expect(module).toMatch(/^var authEnabled = !empty\(authClientId\)$/m);
        expect(auth).toMatch(/name: 'authsettingsV2'/);
        expect(auth).toMatch(/requireAuthentication: true/);
        expect(auth).toMatch(/unauthenticatedClientAction: 'RedirectToLoginPage'/);
        expect(auth).toMatch(/excludedPaths: authExcludedPaths/);
        const excluded = stringItems(
            blockAfter(declaration(mainBicep, 'module', 'functionAppConfig'), /authExcludedPaths: \[/),
        );
        expect(excluded).toEqual(expect.arrayContaining(['/api/messages', '/runtime/webhooks/eventgrid']));
    });
});

// ---------------------------------------------------------------------------------------------------------------------
// Event Grid
// ---------------------------------------------------------------------------------------------------------------------

describe('Event Grid', () => {
    const eventGridFunctions = () =>
        registered
            .filter((r) => Object.values(r.bindings).some((b) => b.type === 'eventGridTrigger'))
            .map((r) => r.name);

    it('delivers to the function registered with app.eventGrid', () => {
        expect(eventGridFunctions()).toHaveLength(1);
        const declared = params(eventSubscriptionBicep).get('eventGridFunctionName')?.defaultValue;
        expect(stringLiteral(declared ?? '')).toBe(eventGridFunctions()[0]);
        expect(eventSubscriptionBicep).toMatch(
            /resourceId: '\$\{functionAppResourceId\}\/functions\/\$\{eventGridFunctionName\}'/,
        );
        expect(eventSubscriptionBicep).toMatch(
            /endpointUrl: 'https:\/\/\$\{functionAppHostName\}\/runtime\/webhooks\/eventgrid\?functionName=\$\{eventGridFunctionName\}&code=/,
        );
        // The hooks never name the function themselves.
        for (const hook of ['scripts/hooks/postdeploy.sh', 'scripts/hooks/postdeploy.ps1']) {
            expect(read(hook)).not.toMatch(/eventGridFunctionName|functionName=/);
        }
    });

    it('subscribes to successful PEC writes on the registered kinds, in the Event Grid schema, with dead-lettering', () => {
        const subscription = declaration(eventSubscriptionBicep, 'resource', 'pecEvents');
        expect(subscription).toMatch(/eventDeliverySchema: 'EventGridSchema'/);
        expect(stringItems(blockAfter(subscription, /includedEventTypes: \[/)).sort()).toEqual([
            'Microsoft.Resources.ResourceDeleteSuccess',
            'Microsoft.Resources.ResourceWriteSuccess',
        ]);
        const filters = blockAfter(subscription, /advancedFilters: \[/);
        expect(filters).toMatch(
            /operatorType: 'StringContains'\s+key: 'data\.operationName'\s+values: \[\s+'privateEndpointConnection'/,
        );
        // The subjects come from the registry's generated file (test/infra/resourceKinds.test.ts checks its values).
        expect(filters).toMatch(
            /operatorType: 'StringContains'\s+key: 'subject'\s+values: map\(loadJsonContent\('resourceKinds\.json'\)\.kinds, k => k\.eventSubject\)/,
        );
        expect(subscription).toMatch(/deadLetterWithResourceIdentity: \{/);
        expect(subscription).toMatch(/retryPolicy: \{/);
    });

    it('has one system topic per watched subscription, whose outputs the postdeploy hook reads', () => {
        expect(read('infra/modules/systemTopic.bicep')).toMatch(/topicType: 'Microsoft\.Resources\.Subscriptions'/);
        expect(read('infra/modules/systemTopic.bicep')).toMatch(/location: 'global'/);
        expect(mainBicep).toMatch(/^module watchedSubscription '[^']+' = \[\s+for target in watchedTargets: \{/m);
        expect(declaration(mainBicep, 'module', 'watchedSubscription')).toMatch(
            /scope: subscription\(target\.subscriptionId\)/,
        );
        expect(mainBicep).toMatch(/^var watchedTargets = \[\s+for subscriptionId in watched:/m);
        expect(mainBicep).toMatch(/^output EVENTGRID_SYSTEM_TOPIC_IDS string = join\(systemTopicIds, ','\)$/m);
        // The ids the Bicep announces are the ones the hook can take apart.
        const idTemplate = /^ {2}t => ('[^\n]+')$/m.exec(blockAfter(mainBicep, /^var systemTopicIds = map\(/m))?.[1];
        expect(idTemplate).toMatch(/\$\{t\.resourceGroupName\}.*\$\{systemTopicName\}'$/);
        const hookPattern = /^topic_pattern='([^']+)'$/m.exec(read('scripts/hooks/postdeploy.sh'))?.[1] ?? '';
        const id = stringLiteral(idTemplate ?? '') ?? '';
        expect(new RegExp(hookPattern).exec(id)?.slice(1)).toEqual(['placeholder0', 'placeholder1', 'placeholder2']);
        // The dead letters reach the blob container through each topic's own identity.
        expect(declaration(mainBicep, 'module', 'deadLetterAccess')).toMatch(
            /watchedSubscription\[i\]\.outputs\.systemTopicPrincipalId/,
        );
    });
});

// ---------------------------------------------------------------------------------------------------------------------
// The custom role against the ARM calls the adapters make
// ---------------------------------------------------------------------------------------------------------------------

/**
 * The role's actions when every registered kind is watched: main.bicep takes each watched kind's `roleActions` from
 * infra/resourceKinds.json (test/infra/resourceKinds.test.ts checks that wiring and the file against the registry).
 */
const resourceKindsJson = JSON.parse(read('infra/resourceKinds.json')) as {
    kinds: { id: string; roleActions: string[] }[];
};
const roleActions = [...new Set(resourceKindsJson.kinds.flatMap((k) => k.roleActions))];
const roleHas = (action: string) => roleActions.some((a) => a.toLowerCase() === action.toLowerCase());

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
    const resourceType = [namespace, ...types].join('/');
    const verb: Record<string, string> = {
        GET: 'read',
        PUT: 'write',
        PATCH: 'write',
        DELETE: 'delete',
        POST: 'action',
    };
    const actions = [`${resourceType}/${verb[method] ?? `?${method}`}`];
    if (method === 'PUT' && types[types.length - 1]?.toLowerCase() === 'privateendpointconnections') {
        // Approving or rejecting also checks the provider's approval action.
        actions.push(`${namespace}/${types[0]}/privateEndpointConnectionsApproval/action`);
    }
    return actions;
}

describe('the custom PEC approver role', () => {
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

    it('covers every ARM call the four adapters make (replayed against the ARM emulator)', async () => {
        expect(Object.keys(provider).sort()).toEqual(Object.keys(drivers).sort());
        for (const kind of serverKinds) {
            const target = seed(kind);
            for (const drive of Object.values(drivers)) {
                await drive(target);
            }
        }
        const needed = new Set(arm.requests.flatMap((r) => rbacActions(r.method, r.path)));
        // Sanity: every kind was read, listed, written and polled.
        for (const kind of serverKinds) {
            const { provider: rp, type } = kindInfo[kind];
            expect(needed).toContain(`${rp}/${type}/read`);
            expect(needed).toContain(`${rp}/${type}/privateEndpointConnections/write`);
        }
        expect([...needed].some((a) => /\/locations\/(azureAsyncOperation|operationResults)\/read$/i.test(a))).toBe(
            true,
        );
        expect([...needed].filter((action) => !roleHas(action))).toEqual([]);
    });

    it('can also poll the PEC-specific operation status URLs both database providers list', () => {
        const databases = Object.values(kindInfo).filter((k) => k.provider.startsWith('Microsoft.DBfor'));
        for (const rp of new Set(databases.map((k) => k.provider))) {
            for (const op of [
                'azureAsyncOperation',
                'operationResults',
                'privateEndpointConnectionAzureAsyncOperation',
                'privateEndpointConnectionOperationResults',
            ]) {
                expect(roleHas(`${rp}/locations/${op}/read`)).toBe(true);
            }
        }
    });

    it("has no wildcard, nothing outside the registered kinds' providers, and no delete", () => {
        expect(roleActions.length).toBeGreaterThan(0);
        const providers = new Set(Object.values(kindInfo).map((k) => k.provider.toLowerCase()));
        for (const action of roleActions) {
            expect(action).not.toContain('*');
            expect(providers.has(action.split('/')[0]!.toLowerCase())).toBe(true);
            expect(action).not.toMatch(/\/delete$/);
        }
        const role = declaration(mainBicep, 'resource', 'pecApproverRole');
        expect(role).toMatch(/actions: pecApproverActions/);
        expect(role).toMatch(/notActions: \[\]/);
        expect(role).toMatch(
            /assignableScopes: \[for subscriptionId in pecApproverRoleScopes: '\/subscriptions\/\$\{subscriptionId\}'\]/,
        );
        expect(mainBicep).toMatch(
            /^var pecApproverRoleScopes = union\(\[toLower\(subscription\(\)\.subscriptionId\)\], watched\)$/m,
        );
    });

    it('is what the identity gets on each watched subscription; no broad built-in role anywhere', () => {
        const watched = read('infra/modules/watchedSubscription.bicep');
        expect(watched).toMatch(/^targetScope = 'subscription'$/m);
        const assignment = declaration(watched, 'resource', 'pecApprover');
        expect(assignment).toMatch(
            /roleDefinitionId: subscriptionResourceId\('Microsoft\.Authorization\/roleDefinitions', roleDefinitionGuid\)/,
        );
        expect(declaration(mainBicep, 'module', 'watchedSubscription')).toMatch(
            /roleDefinitionGuid: pecApproverRole\.name/,
        );
        const broad = {
            Owner: '8e3af657-a8ff-443c-a75c-2fe8c4bcb635',
            Contributor: 'b24988ac-6180-42a0-ab88-20f7382dd24c',
            'User Access Administrator': '18d7d88d-d35e-4fb5-a5c3-7773c20a72d9',
            'Role Based Access Control Administrator': 'f58310d9-a9f6-439a-9e8d-f62e7b41a168',
        };
        for (const file of bicepFiles()) {
            for (const [name, id] of Object.entries(broad)) {
                expect(`${file}: ${read(file).toLowerCase().includes(id) ? name : 'none'}`).toBe(`${file}: none`);
            }
        }
    });
});

// ---------------------------------------------------------------------------------------------------------------------
// azure.yaml, the parameters file and the hooks
// ---------------------------------------------------------------------------------------------------------------------

/** The lines under a YAML key (header matched by `header`): up to the next line indented no deeper than the key. */
function yamlSection(text: string, header: RegExp): string {
    const m = header.exec(text);
    if (!m) {
        throw new Error(`not found: ${header}`);
    }
    const indent = /^ */.exec(m[0])![0].length;
    const lines: string[] = [];
    for (const line of text.slice(m.index + m[0].length).split('\n')) {
        if (line.trim() && /^ */.exec(line)![0].length <= indent) {
            break;
        }
        lines.push(line);
    }
    return lines.join('\n');
}

describe('azd wiring', () => {
    const hookRuns = [...azureYaml.matchAll(/^\s+run: (\.\/scripts\/hooks\/\S+)$/gm)].map((m) => m[1]!);

    it('deploys the bundle staged by `npm run package` as a js function service', () => {
        const api = yamlSection(azureYaml, /^ {4}api:\n/m);
        expect(api).toMatch(/^ {8}project: \.$/m);
        expect(api).toMatch(/^ {8}language: js$/m);
        expect(api).toMatch(/^ {8}host: function$/m);
        expect(api).toMatch(/^ {8}dist: dist\/package$/m);
        expect(api).toMatch(/^ {8}remoteBuild: false$/m);
        expect(api).toMatch(/prepackage:[\s\S]*run: npm ci [^\n]*&& npm run package/);
        expect(JSON.parse(read('package.json')).scripts.package).toBeDefined();
    });

    it('runs hooks that exist, are executable and parse', () => {
        expect(azureYaml).toMatch(/^ {4}postprovision:\n[\s\S]*run: \.\/scripts\/hooks\/postprovision\.sh/m);
        expect(azureYaml).toMatch(/^ {4}postdeploy:\n[\s\S]*run: \.\/scripts\/hooks\/postdeploy\.sh/m);
        expect(hookRuns).toEqual(
            expect.arrayContaining([
                './scripts/hooks/postprovision.sh',
                './scripts/hooks/postprovision.ps1',
                './scripts/hooks/postdeploy.sh',
                './scripts/hooks/postdeploy.ps1',
            ]),
        );
        for (const run of hookRuns) {
            expect(existsSync(path.join(root, run))).toBe(true);
        }
        const shellScripts = readdirSync(path.join(root, 'scripts/hooks')).filter((f) => f.endsWith('.sh'));
        expect(shellScripts).toEqual(expect.arrayContaining(['grant-graph-permissions.sh', 'lib.sh']));
        for (const script of shellScripts) {
            const file = path.join(root, 'scripts/hooks', script);
            expect(`${script}: ${(statSync(file).mode & 0o111) === 0o111 ? 'executable' : 'not executable'}`).toBe(
                `${script}: executable`,
            );
            expect(readFileSync(file, 'utf8')).toMatch(/^#!\/usr\/bin\/env bash\n/);
            execFileSync('bash', ['-n', file]);
        }
        expect(read('scripts/hooks/postprovision.sh')).toMatch(/grant-graph-permissions\.sh/);
        expect(read('scripts/hooks/postprovision.ps1')).toMatch(/grant-graph-permissions\.ps1/);
    });

    it('feeds the hooks only values main.bicep outputs', () => {
        const declared = outputs(mainBicep);
        const optionalInputs = new Set([
            'AZURE_ENV_NAME',
            'GRANT_TEAMS_APP_INSTALLATION',
            'EVENTGRID_DELIVERY',
            'AUTH_CLIENT_ID',
            'TEAMS_CHANNEL_ID',
            'WORKFLOWS_WEBHOOK_URL',
        ]);
        for (const hook of ['postdeploy.sh', 'grant-graph-permissions.sh', 'postprovision.sh']) {
            const text = read(`scripts/hooks/${hook}`);
            const names = [...text.matchAll(/(?:^|\s)(?:load_azd_env|require_vars) ((?:[^\n]*\\\n)*[^\n]*)/gm)]
                .flatMap((m) => m[1]!.split(/[\s\\]+/))
                .filter((word) => /^[A-Z][A-Z0-9_]+$/.test(word));
            expect(names.length).toBeGreaterThan(0);
            expect(`${hook}: ${names.filter((n) => !declared.has(n) && !optionalInputs.has(n)).join(' ')}`).toBe(
                `${hook}: `,
            );
        }
        for (const name of ['AZURE_CLIENT_ID', 'BOT_ID', 'AZURE_TENANT_ID', 'AZURE_RESOURCE_GROUP', 'AZURE_LOCATION']) {
            expect(declared).toContain(name);
        }
        expect(mainBicep).toMatch(/^output BOT_ID string = identity\.outputs\.clientId$/m);
    });

    it('maps the parameters file onto parameters main.bicep declares, and every required one is mapped', () => {
        const file = JSON.parse(read('infra/main.parameters.json')) as {
            parameters: Record<string, { value: string }>;
        };
        for (const name of Object.keys(file.parameters)) {
            expect(`${name}: ${mainParams.has(name)}`).toBe(`${name}: true`);
        }
        for (const [name, param] of mainParams) {
            if (param.defaultValue === undefined) {
                expect(file.parameters).toHaveProperty(name);
            }
        }
        expect(file.parameters.environmentName?.value).toBe('${AZURE_ENV_NAME}');
        expect(file.parameters.location?.value).toBe('${AZURE_LOCATION}');
        expect(file.parameters.teamsChannelId?.value).toBe('${TEAMS_CHANNEL_ID}');
        expect(file.parameters.approverGroupIds?.value).toBe('${APPROVER_GROUP_IDS}');
        // A parameter's azd default must be the Bicep default, or `azd up` and a plain deployment would differ.
        const sweep = /^\$\{SWEEP_SCHEDULE=(.*)\}$/.exec(file.parameters.sweepSchedule?.value ?? '')?.[1];
        expect(sweep).toBe(stringLiteral(mainParams.get('sweepSchedule')?.defaultValue ?? ''));
    });
});

/**
 * The azd hooks, run for real: each bash hook and its PowerShell twin (run by PowerShell 7.6, the pinned .NET tool)
 * against stand-in `az` and `azd` commands on PATH that record their arguments and answer from a scenario. The two
 * variants of a hook must make the same calls, in the same order, and end with the same exit code.
 *
 * Needs PowerShell: `npm run infra:check` runs this file (jest.tools.config.js) with PEC_GATE_PWSH set; `npm test`
 * does not (it must pass with Node.js alone). Without PowerShell it fails: it never skips.
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

const root = path.join(__dirname, '..', '..');
const hooks = path.join(root, 'scripts', 'hooks');
const pwsh = process.env.PEC_GATE_PWSH;

interface Rule {
    match: string;
    stdout?: string;
    stderr?: string;
    exitCode?: number;
}
interface Call {
    tool: string;
    args: string[];
}
interface Run {
    status: number | null;
    calls: Call[];
    output: string;
}

let work: string;
let fakeBin: string;

beforeAll(() => {
    if (!pwsh) {
        throw new Error(
            'PEC_GATE_PWSH is not set: run this test through `npm run infra:check`, which provides PowerShell',
        );
    }
    work = mkdtempSync(path.join(os.tmpdir(), 'pecgate-hooks-'));
    fakeBin = path.join(work, 'bin');
    mkdirSync(fakeBin);
    for (const tool of ['az', 'azd']) {
        const shim = path.join(fakeBin, tool);
        writeFileSync(
            shim,
            `#!/bin/sh\nexec "${process.execPath}" "${path.join(__dirname, 'standins', 'fake-cli.cjs')}" ${tool} "$@"\n`,
        );
        chmodSync(shim, 0o755);
    }
});

afterAll(() => {
    if (work) {
        rmSync(work, { recursive: true, force: true });
    }
});

/** JSON arguments compare by value (PowerShell and bash build the same body with keys in another order). */
function canonical(arg: string): string {
    const text = arg.trim();
    if (!/^[{[]/.test(text)) {
        return arg;
    }
    try {
        const sort = (v: unknown): unknown =>
            Array.isArray(v)
                ? v.map(sort)
                : v && typeof v === 'object'
                  ? Object.fromEntries(
                        Object.entries(v as Record<string, unknown>)
                            .sort(([a], [b]) => a.localeCompare(b))
                            .map(([k, x]) => [k, sort(x)]),
                    )
                  : v;
        return JSON.stringify(sort(JSON.parse(text)));
    } catch {
        return arg;
    }
}

function run(shell: 'bash' | 'pwsh', hook: string, env: Record<string, string>, rules: Rule[]): Run {
    const dir = mkdtempSync(path.join(work, `${shell}-`));
    const log = path.join(dir, 'calls.jsonl');
    const scenario = path.join(dir, 'scenario.json');
    writeFileSync(log, '');
    writeFileSync(scenario, JSON.stringify({ rules }));
    const command =
        shell === 'bash'
            ? ['bash', [path.join(hooks, `${hook}.sh`)]]
            : [pwsh!, ['-NoProfile', '-NonInteractive', '-File', path.join(hooks, `${hook}.ps1`)]];
    const result = spawnSync(command[0] as string, command[1] as string[], {
        cwd: root,
        encoding: 'utf8',
        timeout: 90_000,
        env: {
            PATH: `${fakeBin}:${process.env.PATH}`,
            HOME: process.env.HOME ?? os.homedir(),
            DOTNET_CLI_TELEMETRY_OPTOUT: '1',
            DOTNET_NOLOGO: '1',
            TMPDIR: dir,
            PEC_GATE_FAKE_LOG: log,
            PEC_GATE_FAKE_SCENARIO: scenario,
            PEC_GATE_HOOK_RETRY_SECONDS: '0',
            ...env,
        },
    });
    const calls = readFileSync(log, 'utf8')
        .split('\n')
        .filter(Boolean)
        .map((line) => JSON.parse(line) as Call)
        .map((c) => ({ tool: c.tool, args: c.args.map(canonical) }));
    return { status: result.status, calls, output: `${result.stdout}\n${result.stderr}` };
}

/** Both variants, compared; returns the bash run for the scenario's own expectations. */
function both(hook: string, env: Record<string, string>, rules: Rule[]): Run {
    const bash = run('bash', hook, env, rules);
    const ps = run('pwsh', hook, env, rules);
    expect({ calls: ps.calls, status: ps.status }).toEqual({ calls: bash.calls, status: bash.status });
    expect(bash.calls.length).toBeGreaterThan(0);
    return bash;
}

const home = '0b1c2d3e-aaaa-4bbb-8ccc-000000000001';
const other = '0b1c2d3e-aaaa-4bbb-8ccc-000000000002';
const principal = '11111111-2222-4333-8444-555555555555';
const graphSp = '99999999-8888-4777-8666-555555555555';
const signedIn: Rule = { match: '^az account show' };
const graphRules: Rule[] = [
    signedIn,
    {
        match: "^az rest .*servicePrincipals\\(appId='00000003-0000-0000-c000-000000000000'\\) --query id",
        stdout: graphSp,
    },
    {
        match: "^az rest .*servicePrincipals\\(appId='00000003-0000-0000-c000-000000000000'\\) --query appRoles",
        stdout: 'GroupMember.Read.All\tr-group\nUser.Read.All\tr-user\nTeamsAppInstallation.ReadWriteSelfForTeam.All\tr-teams',
    },
    { match: '^az rest --only-show-errors --method get .*appRoleAssignments', stdout: 'r-group' },
    { match: '^az rest --only-show-errors --method post .*appRoleAssignments' },
];

describe('azd hooks: bash and PowerShell make the same calls', () => {
    it('preprovision: reuses a foreign system topic, deploys the custom role and waits for it in each subscription', () => {
        const foreign = `/subscriptions/${other}/resourceGroups/rg-other/providers/Microsoft.EventGrid/systemTopics/someone-elses`;
        const r = both(
            'preprovision',
            {
                AZURE_ENV_NAME: 'dev',
                AZURE_LOCATION: 'westeurope',
                AZURE_SUBSCRIPTION_ID: home.toUpperCase(),
                WATCHED_SUBSCRIPTION_IDS: `${home}, ${other}`,
                WATCHED_RESOURCE_KINDS: 'key-vault',
            },
            [
                signedIn,
                {
                    match: `^az eventgrid system-topic list .*--subscription ${other}`,
                    stdout: `${foreign}\n/subscriptions/${other}/resourceGroups/rg-dev-pecgate-events/providers/Microsoft.EventGrid/systemTopics/evgt-pecgate-dev`,
                },
                { match: '^az eventgrid system-topic show', stdout: '' },
                { match: '^az deployment sub create', stdout: 'role-guid' },
                { match: `^az role definition list .*--scope /subscriptions/${home}`, stdout: 'role-guid' },
                // The other subscription sees the role on the second look.
                { match: `^az role definition list .*--scope /subscriptions/${other}`, stdout: '' },
            ],
        );
        expect(r.status).toBe(0);
        expect(r.calls).toContainEqual({ tool: 'azd', args: ['env', 'set', 'EXISTING_SYSTEM_TOPIC_IDS', foreign] });
        const deploy = r.calls.find((c) => c.args.slice(0, 3).join(' ') === 'deployment sub create');
        expect(deploy?.args).toContain(
            canonical(
                JSON.stringify({
                    environmentName: { value: 'dev' },
                    location: { value: 'westeurope' },
                    assignableSubscriptionIds: { value: [home, other] },
                    watchedResourceKinds: { value: 'key-vault' },
                }),
            ),
        );
        // Twelve looks in the subscription that never sees it, then a warning (no failure: azd provision can be re-run).
        expect(r.calls.filter((c) => c.args.join(' ').includes(`role definition list`)).length).toBe(13);
        expect(r.output).toMatch(/has no system-assigned identity/);
    });

    it('postprovision: grants the missing Graph role and configures the sign-in app registration', () => {
        const r = both(
            'postprovision',
            {
                MANAGED_IDENTITY_PRINCIPAL_ID: principal,
                AUTH_CLIENT_ID: 'app-client-id',
                AUTH_IDENTITY_PRINCIPAL_ID: '77777777-6666-4555-8444-333333333333',
                FUNCTION_APP_HOST: 'func-pecgate-x.azurewebsites.net',
                AZURE_TENANT_ID: '72f988bf-86f1-41af-91ab-2d7cd011db47',
                AZURE_ENV_NAME: 'dev',
                TEAMS_CHANNEL_ID: '19:abc@thread.tacv2',
            },
            [
                ...graphRules,
                { match: '^az ad app show', stdout: 'https://elsewhere.example/callback' },
                { match: '^az ad app federated-credential list', stdout: '' },
            ],
        );
        expect(r.status).toBe(0);
        const posts = r.calls.filter((c) => c.args.includes('post'));
        expect(posts).toHaveLength(1);
        expect(posts[0]!.args).toContain(
            canonical(JSON.stringify({ principalId: principal, resourceId: graphSp, appRoleId: 'r-user' })),
        );
        expect(r.calls.map((c) => c.args.slice(0, 4).join(' '))).toEqual(
            expect.arrayContaining(['ad app update --only-show-errors', 'ad app federated-credential create']),
        );
    });

    it('grant-graph-permissions: without the right to read Graph, prints the steps for an admin and exits 0', () => {
        const r = both('grant-graph-permissions', { MANAGED_IDENTITY_PRINCIPAL_ID: principal }, [
            signedIn,
            { match: '^az rest', stderr: 'Forbidden: Authorization_RequestDenied', exitCode: 1 },
        ]);
        expect(r.status).toBe(0);
        expect(r.output).toMatch(/An administrator/);
    });

    it('postdeploy: one event subscription per system topic, with the dead-letter destination', () => {
        const topics = [home, other].map(
            (s, i) =>
                `/subscriptions/${s}/resourceGroups/rg-${i}/providers/Microsoft.EventGrid/systemTopics/evgt-pecgate-dev`,
        );
        const env = {
            EVENTGRID_SYSTEM_TOPIC_IDS: topics.join(','),
            FUNCTION_APP_ID: `/subscriptions/${home}/resourceGroups/rg-dev/providers/Microsoft.Web/sites/func-pecgate-x`,
            FUNCTION_APP_HOST: 'func-pecgate-x.azurewebsites.net',
            AZURE_FUNCTION_APP_NAME: 'func-pecgate-x',
            AZURE_RESOURCE_GROUP: 'rg-dev',
            STORAGE_ACCOUNT_ID: `/subscriptions/${home}/resourceGroups/rg-dev/providers/Microsoft.Storage/storageAccounts/stpecgatex`,
            EVENTGRID_DEADLETTER_CONTAINER: 'eventgrid-deadletter',
            AZURE_ENV_NAME: 'dev',
        };
        const r = both('postdeploy', env, [signedIn]);
        expect(r.status).toBe(0);
        const deployments = r.calls.filter((c) => c.args.slice(0, 3).join(' ') === 'deployment group create');
        expect(deployments.map((c) => c.args[c.args.indexOf('--resource-group') + 1])).toEqual(['rg-0', 'rg-1']);
        expect(deployments[0]!.args).toContain('deadLetterContainerName=eventgrid-deadletter');

        const webhook = both('postdeploy', { ...env, EVENTGRID_DELIVERY: 'webhook' }, [
            signedIn,
            { match: '^az functionapp keys list', stdout: 'system-key' },
        ]);
        expect(webhook.status).toBe(0);
        expect(webhook.calls.at(-1)!.args).toContain('eventGridExtensionKey=system-key');

        const wrong = both('postdeploy', { ...env, EVENTGRID_DELIVERY: 'carrier-pigeon' }, [signedIn]);
        expect(wrong.status).toBe(1);
    });
});

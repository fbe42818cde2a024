import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { loadConfig } from '../../src/config';
import { kindInfo, serverKinds, type ServerKind } from '../../src/domain/ids';
import { defaultWatchedKinds, eventSubjectOf, resourceKinds, roleActionsOf } from '../../src/domain/resourceKinds';
import { readmeKindsTable, resourceKindsJson } from '../../scripts/resource-kinds-json';
import { evaluate } from './armExpressions';
import { allResources, scopeOf, type Template } from './armTemplate';

/**
 * Code and infrastructure cannot drift: the Bicep's custom role and Event Grid filter come from
 * infra/resourceKinds.json, and that file must be exactly what the registry generates. A kind the code can watch
 * without a role action or an event filter fails here.
 */

const root = path.join(__dirname, '..', '..');
const read = (file: string) => readFileSync(path.join(root, file), 'utf8');

interface KindsFile {
    defaultWatched: string[];
    kinds: { id: string; resourceType: string; apiVersion: string; roleActions: string[]; eventSubject: string }[];
}
const file = JSON.parse(read('infra/resourceKinds.json')) as KindsFile;
const mainTemplate = JSON.parse(read('infra/main.json')) as Template;
const mainParameters = {
    environmentName: 'dev',
    location: 'westeurope',
    approverGroupIds: 'a9a9a9a9-0000-4000-8000-000000000001',
    teamsChannelId: '19:chan@thread.tacv2',
};

/** What an ARM PUT of a connection of this kind needs, by ARM's rule (the replay in armTemplate.test.ts checks the rest). */
const neededFor = (kind: ServerKind) => {
    const { provider, type } = kindInfo[kind];
    return [
        `${provider}/${type}/read`,
        `${provider}/${type}/privateEndpointConnections/read`,
        `${provider}/${type}/privateEndpointConnections/write`,
        // Where the provider lists an approval action (Microsoft.CognitiveServices lists none).
        ...(kindInfo[kind].approvalAction ? [kindInfo[kind].approvalAction] : []),
    ];
};

/** The role main.bicep builds for these watched kinds: each one's roleActions from the file (its union/flatten/filter). */
const roleFor = (watched: readonly string[]) => [
    ...new Set(file.kinds.filter((k) => watched.includes(k.id)).flatMap((k) => k.roleActions)),
];

describe('infra/resourceKinds.json', () => {
    it('is what `npm run kinds:json` writes from the registry', () => {
        expect(file).toEqual(JSON.parse(resourceKindsJson()));
    });

    it('has every registered kind with its role actions and event subject, and the default watched kinds', () => {
        expect(file.kinds.map((k) => k.id)).toEqual([...serverKinds]);
        expect(file.defaultWatched).toEqual([...defaultWatchedKinds]);
        for (const kind of resourceKinds) {
            const entry = file.kinds.find((k) => k.id === kind.id)!;
            expect(entry.resourceType).toBe(`${kind.provider}/${kind.type}`);
            expect(entry.roleActions).toEqual(roleActionsOf(kind));
            expect(entry.roleActions).toEqual(expect.arrayContaining(neededFor(kind.id)));
            expect(entry.roleActions).toEqual(expect.arrayContaining(kind.approvalAction ? [kind.approvalAction] : []));
            expect(
                entry.roleActions.some((a) =>
                    /(AzureAsyncOperation|OperationResults|\/operationStatus(es)?|\/operationsStatus|\/asyncOperations|\/operations)\/read$/i.test(
                        a,
                    ),
                ),
            ).toBe(true);
            expect(entry.roleActions.every((a) => !a.includes('*') && !a.endsWith('/delete'))).toBe(true);
            expect(entry.eventSubject).toBe(eventSubjectOf(kind));
        }
    });

    it('fits Event Grid: at most 25 filter values across the advanced filters (operationName + one subject per kind)', () => {
        expect(1 + file.kinds.length).toBeLessThanOrEqual(25);
    });

    it('is where the compiled template takes the role and the watched kinds from, and the event filter its subjects', () => {
        // infra/main.json and infra/eventSubscription.json, what the Bicep compiles to (npm run infra:check).
        for (const watched of [[], ['key-vault'], ['sql-server', 'redis'], [...serverKinds]]) {
            const resources = allResources(
                mainTemplate,
                scopeOf(mainTemplate, { ...mainParameters, watchedResourceKinds: watched.join(',') }),
            );
            const roleFound = resources.find((f) => f.resource.type === 'Microsoft.Authorization/roleDefinitions')!;
            const actions = (
                evaluate(roleFound.resource.properties, roleFound.scope) as { permissions: { actions: string[] }[] }
            ).permissions.flatMap((p) => p.actions);
            const expected = watched.length === 0 ? file.defaultWatched : watched;
            expect(actions.sort()).toEqual(roleFor(expected).sort());
            const settings = resources.find(
                (f) => f.resource.type === 'Microsoft.Web/sites/config' && /'appsettings'\)\]$/.test(f.resource.name),
            )!;
            const env = evaluate(settings.resource.properties, settings.scope) as Record<string, unknown>;
            expect(env.WATCHED_RESOURCE_KINDS).toBe(expected.join(','));
        }
        expect(read('infra/main.bicepparam')).toMatch(
            /^param watchedResourceKinds = readEnvironmentVariable\('WATCHED_RESOURCE_KINDS', ''\)$/m,
        );
        const eventSubscription = JSON.parse(read('infra/eventSubscription.json')) as Template;
        const found = allResources(eventSubscription, scopeOf(eventSubscription, {})).find(
            (f) => f.resource.type === 'Microsoft.EventGrid/systemTopics/eventSubscriptions',
        )!;
        const filters = (
            evaluate((found.resource.properties as { filter: unknown }).filter, found.scope) as {
                advancedFilters: { key: string; values: string[] }[];
            }
        ).advancedFilters;
        expect(filters.find((f) => f.key === 'subject')?.values).toEqual(file.kinds.map((k) => k.eventSubject));
    });

    it.each(serverKinds)('gives a watched %s its role actions and its event filter', (kind) => {
        // The app accepts the kind in the setting...
        const config = loadConfig(
            {
                WATCHED_SUBSCRIPTION_IDS: '0b1c2d3e-aaaa-4bbb-8ccc-000000000001',
                WATCHED_RESOURCE_KINDS: kind,
                AZURE_TENANT_ID: '72f988bf-86f1-41af-91ab-2d7cd011db47',
                AZURE_CLIENT_ID: '5e1f0c2a-1111-4222-8333-444455556666',
                APPROVER_GROUP_IDS: 'a9a9a9a9-0000-4000-8000-000000000001',
                PUBLIC_BASE_URL: 'https://pec-gate.example.net',
                TEAMS_CHANNEL_ID: '19:chan@thread.tacv2',
                SWEEP_SCHEDULE: '0 */15 * * * *',
                AzureWebJobsStorage: 'UseDevelopmentStorage=true',
            },
            () => '',
        );
        expect(config.WATCHED_RESOURCE_KINDS).toEqual([kind]);
        // ...and the Bicep, given the same setting, grants what its calls need and lets its events through.
        expect(roleFor(config.WATCHED_RESOURCE_KINDS)).toEqual(expect.arrayContaining(neededFor(kind)));
        const subject = `/subscriptions/s/resourceGroups/rg/providers/${kindInfo[kind].provider}/${kindInfo[kind].type}/r1/privateEndpointConnections/pe.1`;
        const subjects = file.kinds.map((k) => k.eventSubject.toLowerCase());
        expect(subjects.some((s) => subject.toLowerCase().includes(s))).toBe(true);
    });

    it('grants the default deployment only the four database kinds', () => {
        const role = roleFor(file.defaultWatched);
        expect(role.every((a) => /^Microsoft\.DBfor(PostgreSQL|MySQL)\//.test(a))).toBe(true);
        expect(role).toEqual(expect.arrayContaining(defaultWatchedKinds.flatMap((k) => neededFor(k))));
    });
});

describe('the README', () => {
    it('lists every supported kind as the registry has it (type, API version, approval action, tested examples)', () => {
        const sources = JSON.parse(read('test/fixtures/armSpecs/sources.json')) as {
            kinds: { provider: string; type: string; folder: string }[];
        };
        const folders = new Map(sources.kinds.map((k) => [`${k.provider}/${k.type}`.toLowerCase(), k.folder]));
        const readme = read('README.md');
        const table = /<!-- kinds-table:[^\n]*-->\n([\s\S]*?)\n<!-- \/kinds-table -->/.exec(readme)?.[1];
        expect(table).toBe(readmeKindsTable(folders));
        expect(readme).toMatch(/\| `WATCHED_RESOURCE_KINDS` \|/);
    });
});

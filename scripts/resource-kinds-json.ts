/**
 * Writes infra/resourceKinds.json from the registry (src/domain/resourceKinds.ts): what the Bicep needs per kind (the
 * custom role's actions, the Event Grid subject filter) and the kinds watched by default. The Bicep reads the file
 * with loadJsonContent, so code and infrastructure come from one table; test/infra/resourceKinds.test.ts fails when
 * the file falls behind the registry. `npm run kinds:json` after adding a kind.
 */
import { writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { defaultWatchedKinds, eventSubjectOf, resourceKinds, roleActionsOf } from '../src/domain/resourceKinds';

export function resourceKindsJson(): string {
    const document = {
        $comment:
            'Generated from src/domain/resourceKinds.ts by `npm run kinds:json`; do not edit. main.bicep builds the ' +
            'custom role from the watched kinds here, eventSubscription.bicep the Event Grid filter from all of them.',
        defaultWatched: defaultWatchedKinds,
        kinds: resourceKinds.map((kind) => ({
            id: kind.id,
            resourceType: `${kind.provider}/${kind.type}`,
            label: kind.label,
            apiVersion: kind.apiVersion,
            roleActions: roleActionsOf(kind),
            eventSubject: eventSubjectOf(kind),
        })),
    };
    return `${JSON.stringify(document, null, 4)}\n`;
}

/**
 * The README's table of supported kinds (section "Resource kinds"), from the registry and the examples each kind is
 * tested with (test/fixtures/armSpecs/sources.json); test/infra/resourceKinds.test.ts fails when the README differs.
 */
export function readmeKindsTable(fixtureFolders: ReadonlyMap<string, string>): string {
    const rows = resourceKinds.map((kind) => {
        const type = `${kind.provider}/${kind.type}`;
        const folder = fixtureFolders.get(type.toLowerCase());
        const tested = folder
            ? `[official examples](https://github.com/Azure/azure-rest-api-specs/tree/main/${kind.examples.specFolder}), stored in [\`test/fixtures/armSpecs/${folder}/\`](test/fixtures/armSpecs/${folder}/)`
            : 'the REST contract in the design notes, through the emulator';
        const client = kind.client === 'sdk' ? 'its Azure SDK' : 'generic';
        return `| \`${kind.id}\` | ${kind.label} | \`${type}\` | ${kind.apiVersion} | ${client} | ${kind.approvalAction ? `\`${kind.approvalAction}\`` : 'none listed'} | ${tested} |`;
    });
    return [
        '| kind id | resource | type | API version | client | approval action | tested with |',
        '|---|---|---|---|---|---|---|',
        ...rows,
    ].join('\n');
}

export const resourceKindsJsonPath = path.join(__dirname, '..', 'infra', 'resourceKinds.json');

async function main(): Promise<void> {
    // Formatted as the repository formats JSON, so `npm run lint` (prettier --check) accepts the file as written.
    const prettier = await import('prettier');
    const options = (await prettier.resolveConfig(resourceKindsJsonPath)) ?? {};
    const text = await prettier.format(resourceKindsJson(), { ...options, filepath: resourceKindsJsonPath });
    writeFileSync(resourceKindsJsonPath, text);
    console.log(`wrote ${path.relative(process.cwd(), resourceKindsJsonPath)}`);
}

if (require.main === module) {
    main().catch((err: unknown) => {
        console.error(err);
        process.exitCode = 1;
    });
}

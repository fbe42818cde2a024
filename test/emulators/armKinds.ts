import { existsSync, readFileSync } from 'node:fs';
import * as path from 'node:path';

/**
 * What the ARM emulator knows about each resource type besides the four database kinds: the api-versions it accepts
 * and, from the OFFICIAL examples in Azure/azure-rest-api-specs (stored under test/fixtures/armSpecs/, each with its
 * spec path and api-version in sources.json), the exact shape of its answers: the keys present or absent (no `name`
 * on App Service, no provisioningState on AI services), the casing of `type`, `actionsRequired` or `actionRequired`,
 * body ids that point at another resource group, resource or subscription, a list that repeats one connection, and
 * whether the PUT answers 200 at once or 201/202 with Azure-AsyncOperation. Built from the published examples, not from
 * what src/ expects: the emulator does not import the app's registry.
 */

export interface SpecExample {
    parameters: Record<string, unknown>;
    responses: Record<string, { body?: unknown; headers?: Record<string, string> }>;
}

/** The status resources under a provider's locations that the emulator serves. */
export type LocationStatus =
    'azureAsyncOperation' | 'operationResults' | 'privateEndpointConnectionAzureAsyncOperation' | 'operationsStatus';

export interface SpecSource {
    /** The folder name under test/fixtures/armSpecs/. */
    folder: string;
    provider: string;
    type: string;
    /** The api-versions the emulator accepts for this type. */
    apiVersions: string[];
    /** The resource name parameter of the examples (accountName, vaultName, ...). */
    nameParameter: string;
    /** File names (in the folder) of the official examples, and their paths in azure-rest-api-specs. */
    get?: string;
    list?: string;
    put: string;
    specFolder: string;
    /** How the PUT answers: 200 with the result, or 201/202 with Azure-AsyncOperation (as its example shows). */
    putAnswer: 'sync' | 'async-201' | 'async-202';
    /**
     * Where the Azure-AsyncOperation URL points: under the provider's locations (by the status read the provider's
     * documented operations name, where its example shows no header), or under the connection itself (ACR).
     */
    statusUrl: `locations/${LocationStatus}` | 'operationStatuses';
    /** The resource's list by subscription carries privateEndpointConnections inline (its REST model has them). */
    inlineConnections: boolean;
    /** Where the resource keeps publicNetworkAccess. */
    publicNetworkAccessPath: string[];
    /**
     * Where the provider refuses a PUT that repeats the connection's status (400 InvalidValuesForRequestParameters),
     * the public report of it: the PUT is not idempotent there.
     */
    sameStatusRefused?: string;
}

/** The fixtures folder: next to this file's folder in the source tree, else (compiled elsewhere, the demo) under cwd. */
export const fixturesDir =
    [path.join(__dirname, '..', 'fixtures', 'armSpecs'), path.join(process.cwd(), 'test', 'fixtures', 'armSpecs')].find(
        (dir) => existsSync(path.join(dir, 'sources.json')),
    ) ?? path.join(__dirname, '..', 'fixtures', 'armSpecs');

interface SourcesFile {
    kinds: SpecSource[];
}

export const specSources: SpecSource[] = (
    JSON.parse(readFileSync(path.join(fixturesDir, 'sources.json'), 'utf8')) as SourcesFile
).kinds;

export function readExample(source: SpecSource, file: string): SpecExample {
    return JSON.parse(readFileSync(path.join(fixturesDir, source.folder, file), 'utf8')) as SpecExample;
}

type Json = Record<string, unknown>;

/** A connection body of the example, and the request path it answered (for telling odd ids from consistent ones). */
export interface Template {
    body: Json;
    /** Segments of the example's own request path: subscription, resource group, resource name, connection name. */
    asked: { subscriptionId: string; resourceGroup: string; name: string; connection?: string };
}

export interface SpecShape {
    source: SpecSource;
    get: Template;
    list: Template;
    /** The list example repeats one connection (same id twice): the emulator lists every connection twice too. */
    listsTwice: boolean;
}

function asked(example: SpecExample, source: SpecSource): Template['asked'] {
    const p = example.parameters;
    const connection = p.privateEndpointConnectionName;
    return {
        subscriptionId: String(p.subscriptionId),
        resourceGroup: String(p.resourceGroupName),
        name: String(p[source.nameParameter]),
        ...(typeof connection === 'string' ? { connection } : {}),
    };
}

function successBody(example: SpecExample): Json {
    const body = (example.responses['200'] ?? example.responses['201'])?.body;
    if (!body || typeof body !== 'object') {
        throw new Error('an example without a 200 or 201 body');
    }
    return body as Json;
}

export function shapeOf(source: SpecSource): SpecShape {
    const put = readExample(source, source.put);
    const getExample = source.get ? readExample(source, source.get) : put;
    const get: Template = { body: successBody(getExample), asked: asked(getExample, source) };
    let list: Template = get;
    let listsTwice = false;
    if (source.list) {
        const example = readExample(source, source.list);
        const items = ((successBody(example).value as Json[] | undefined) ?? []).filter(Boolean);
        const first = items[0];
        if (first) {
            const own = asked(example, source);
            // A list request names no connection: an item's own name (else the GET's) stands for it.
            const connection = typeof first.name === 'string' ? first.name : get.asked.connection;
            list = { body: first, asked: { ...own, ...(connection ? { connection } : {}) } };
            listsTwice = items.length > 1 && items.every((i) => i.id === first.id && i.name === first.name);
        }
    }
    return { source, get, list, listsTwice };
}

export interface PecState {
    id: string;
    subscriptionId: string;
    resourceGroup: string;
    resourceName: string;
    name: string;
    privateEndpointId: string;
    status: string;
    description: string;
    provisioningState: string;
}

const lower = (s: string) => s.toLowerCase();

/**
 * The body id the example's service would answer for this connection: the example's own id, with each name in it
 * replaced by ours where the example's id agrees with the request it answered, and kept where it does not (the odd
 * ids of the examples: another resource group, resource, subscription or connection). Literal segments keep the
 * example's casing ("Microsoft.DocumentDb", "Microsoft.Cache/Redis").
 */
function renderId(template: Template, pec: PecState): string {
    const bodyId = typeof template.body.id === 'string' ? template.body.id : '';
    const segments = bodyId.split('/');
    // ['', 'subscriptions', sub, 'resourceGroups', rg, 'providers', ns, type, name, 'privateEndpointConnections', pec]
    if (segments.length !== 11) {
        return bodyId;
    }
    const replace = (i: number, expected: string | undefined, ours: string) => {
        if (expected !== undefined && lower(segments[i] ?? '') === lower(expected)) {
            segments[i] = ours;
        }
    };
    replace(2, template.asked.subscriptionId, pec.subscriptionId);
    replace(4, template.asked.resourceGroup, pec.resourceGroup);
    replace(8, template.asked.name, pec.resourceName);
    replace(10, template.asked.connection, pec.name);
    return segments.join('/');
}

/** A connection body in the exact shape of the example: its keys, casing and quirks, with this connection's state. */
export function renderPec(template: Template, pec: PecState): Json {
    const body = structuredClone(template.body);
    body.id = renderId(template, pec);
    // The examples' odd ids are kept; their names are not (a name that disagrees with the request would make every
    // connection of the kind the same one, which no service does).
    if ('name' in body) {
        body.name = pec.name;
    }
    const properties = (body.properties ?? {}) as Json;
    properties.privateEndpoint = { id: pec.privateEndpointId };
    const state = { ...((properties.privateLinkServiceConnectionState as Json | undefined) ?? {}) };
    state.status = pec.status;
    state.description = pec.description;
    properties.privateLinkServiceConnectionState = state;
    if ('provisioningState' in properties) {
        properties.provisioningState = pec.provisioningState;
    }
    body.properties = properties;
    return body;
}

/**
 * The registry of resource kinds the gate covers: every Private Link resource that follows ARM's common
 * `privateEndpointConnections` contract, one entry each. Code reads this table; it never branches on a kind. Adding a
 * kind is one entry here plus its tests (the official examples under test/fixtures/armSpecs/, replayed by
 * test/arm/specExamples.test.ts and run through the whole loop by test/workflow/everyKind.e2e.test.ts); the Bicep's
 * role actions and Event Grid filter come from infra/resourceKinds.json, which `npm run kinds:json` writes from this
 * table and test/infra/resourceKinds.test.ts compares with it.
 *
 * Pure data: no SDK here (src/domain imports none).
 */

/** How a kind's connection state is spelled in ARM's answers. */
export interface StateSpelling {
    /** Most providers say `actionsRequired`; Storage says `actionRequired` (its official examples and its model). */
    actionsRequiredField: 'actionsRequired' | 'actionRequired';
}

export interface ResourceKindInfo {
    /** The id used by settings (WATCHED_RESOURCE_KINDS), the policy (`resourceKind`) and the stored requests. */
    id: string;
    /** ARM namespace and type, in the canonical casing used to build URLs (ids compare case-insensitively). */
    provider: string;
    type: string;
    /**
     * The names ARM can hold for this kind (a little wider than the service's rules, never narrower). An event naming
     * anything else is dropped before any I/O: sent on, it would reach ARM as a 400 or as a URL meaning something else.
     */
    namePattern: RegExp;
    /** For the card, the web page and the ops CLI. */
    label: string;
    /** What one of them is called on the card ("Server", "Vault", ...). */
    noun: string;
    /** The api-version every call for this kind uses (the SDK's own for the SDK kinds). */
    apiVersion: string;
    /**
     * `sdk`: the kind keeps its Azure SDK client (the design's @azure/arm-postgresql and @azure/arm-mysql).
     * `generic`: the one generic adapter on @azure/core-client (src/arm/genericKind.ts).
     */
    client: 'sdk' | 'generic';
    /**
     * The RBAC action ARM checks, besides `privateEndpointConnections/write`, when a connection is approved or rejected;
     * undefined for a provider whose list of operations has none (granting a name it does not list breaks the role).
     */
    approvalAction: string | undefined;
    /**
     * The read actions needed to poll this kind's long-running PUT (status URLs differ per provider). Each one is in
     * Microsoft's list of the provider's operations (test/fixtures/providerOperations.json): ARM refuses a whole custom
     * role with `InvalidActionOrNotAction` when one of its actions does not exist, so a guessed name breaks the deployment.
     */
    pollActions: readonly string[];
    state: StateSpelling;
    /** Where the resource's GET keeps its public network access, as a path of property names. */
    publicNetworkAccessPath: readonly string[];
    /**
     * The subscription-wide list of this kind carries each resource's `properties.privateEndpointConnections` inline
     * (its REST model says so), so the sweep needs no call per resource. An item without the array is listed the
     * slow way, so a provider that leaves it out costs calls, never a missed connection.
     */
    inlineConnections: boolean;
    /** The official examples this kind is tested with (azure-rest-api-specs paths), for the README table. */
    examples: { specFolder: string; apiVersion: string };
}

// Database servers: 3 to 63 letters, digits and hyphens, starting and ending with a letter or digit.
const databaseName = /^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$/i;
// The other kinds: letters and digits at both ends, "-", "_" and "." between (AI services accounts allow the last
// two), 1 to 64 characters. Each is one URL segment, and a name cannot be "." or "..".
const resourceName = /^[a-z0-9](?:[a-z0-9_.-]{0,62}[a-z0-9])?$/i;

const standard = { actionsRequiredField: 'actionsRequired' } as const;

const databasePolls = (provider: string) => [
    `${provider}/locations/azureAsyncOperation/read`,
    `${provider}/locations/operationResults/read`,
    `${provider}/locations/privateEndpointConnectionAzureAsyncOperation/read`,
    `${provider}/locations/privateEndpointConnectionOperationResults/read`,
];

/** `listsApprovalAction: false` for a provider that lists no `privateEndpointConnectionsApproval/action`. */
function kind<const Id extends string>(
    entry: Omit<ResourceKindInfo, 'id' | 'approvalAction'> & { id: Id; listsApprovalAction?: false },
): ResourceKindInfo & { id: Id } {
    const { listsApprovalAction = true, ...info } = entry;
    return {
        ...info,
        approvalAction: listsApprovalAction
            ? `${entry.provider}/${entry.type}/privateEndpointConnectionsApproval/action`
            : undefined,
    };
}

export const resourceKinds = [
    kind({
        id: 'postgres-single',
        provider: 'Microsoft.DBforPostgreSQL',
        type: 'servers',
        label: 'PostgreSQL single server',
        noun: 'Server',
        namePattern: databaseName,
        apiVersion: '2018-06-01',
        client: 'sdk',
        pollActions: databasePolls('Microsoft.DBforPostgreSQL'),
        state: standard,
        publicNetworkAccessPath: ['publicNetworkAccess'],
        // Its list by subscription (api 2017-12-01, the one @azure/arm-postgresql asks) carries
        // properties.privateEndpointConnections: official example stable/2017-12-01/examples/ServerList.json.
        inlineConnections: true,
        examples: {
            specFolder:
                'specification/postgresql/resource-manager/Microsoft.DBforPostgreSQL/stable/2018-06-01/examples',
            apiVersion: '2018-06-01',
        },
    }),
    kind({
        id: 'mysql-single',
        provider: 'Microsoft.DBforMySQL',
        type: 'servers',
        label: 'MySQL single server',
        noun: 'Server',
        namePattern: databaseName,
        apiVersion: '2018-06-01',
        client: 'sdk',
        pollActions: databasePolls('Microsoft.DBforMySQL'),
        state: standard,
        publicNetworkAccessPath: ['publicNetworkAccess'],
        // The same model as PostgreSQL single server (@azure/arm-mysql 5.1.0's Server has privateEndpointConnections,
        // read from properties.privateEndpointConnections of the 2017-12-01 list).
        inlineConnections: true,
        examples: {
            specFolder: 'specification/mysql/resource-manager/Microsoft.DBforMySQL/legacy/stable/2018-06-01/examples',
            apiVersion: '2018-06-01',
        },
    }),
    kind({
        id: 'postgres-flexible',
        provider: 'Microsoft.DBforPostgreSQL',
        type: 'flexibleServers',
        label: 'PostgreSQL flexible server',
        noun: 'Server',
        namePattern: databaseName,
        apiVersion: '2025-08-01',
        client: 'sdk',
        pollActions: databasePolls('Microsoft.DBforPostgreSQL'),
        state: standard,
        publicNetworkAccessPath: ['network', 'publicNetworkAccess'],
        // ServerProperties.privateEndpointConnections (read-only) in the 2025-08-01 model; @azure/arm-postgresql-flexible
        // 9.0.0's Server carries it, flattened.
        inlineConnections: true,
        examples: {
            specFolder:
                'specification/postgresql/resource-manager/Microsoft.DBforPostgreSQL/stable/2025-08-01/examples',
            apiVersion: '2025-08-01',
        },
    }),
    kind({
        // No published @azure/arm-mysql-flexible has the connection operations, so this kind was always generic.
        id: 'mysql-flexible',
        provider: 'Microsoft.DBforMySQL',
        type: 'flexibleServers',
        label: 'MySQL flexible server',
        noun: 'Server',
        namePattern: databaseName,
        apiVersion: '2023-06-30',
        client: 'generic',
        pollActions: databasePolls('Microsoft.DBforMySQL'),
        state: standard,
        publicNetworkAccessPath: ['properties', 'network', 'publicNetworkAccess'],
        // ServerProperties.privateEndpointConnections (read-only, common-types v4) in FlexibleServers.json 2023-06-30.
        inlineConnections: true,
        examples: {
            specFolder:
                'specification/mysql/resource-manager/Microsoft.DBforMySQL/FlexibleServers/stable/2023-06-30/examples',
            apiVersion: '2023-06-30',
        },
    }),
    kind({
        id: 'sql-server',
        provider: 'Microsoft.Sql',
        type: 'servers',
        label: 'Azure SQL logical server',
        noun: 'Server',
        namePattern: resourceName,
        apiVersion: '2023-08-01',
        client: 'generic',
        // The status URLs of a connection's operations (Microsoft's list of provider operations names these two).
        pollActions: [
            'Microsoft.Sql/locations/privateEndpointConnectionAzureAsyncOperation/read',
            'Microsoft.Sql/locations/privateEndpointConnectionOperationResults/read',
        ],
        state: standard,
        publicNetworkAccessPath: ['properties', 'publicNetworkAccess'],
        inlineConnections: true,
        examples: {
            specFolder: 'specification/sql/resource-manager/Microsoft.Sql/stable/2023-08-01/examples',
            apiVersion: '2023-08-01',
        },
    }),
    kind({
        id: 'storage-account',
        provider: 'Microsoft.Storage',
        type: 'storageAccounts',
        label: 'Storage account',
        noun: 'Account',
        namePattern: resourceName,
        apiVersion: '2023-05-01',
        client: 'generic',
        // Storage lists no location status reads: "Polls the status of an asynchronous operation" is operations/read.
        pollActions: ['Microsoft.Storage/operations/read'],
        state: { actionsRequiredField: 'actionRequired' },
        publicNetworkAccessPath: ['properties', 'publicNetworkAccess'],
        inlineConnections: true,
        examples: {
            specFolder: 'specification/storage/resource-manager/Microsoft.Storage/stable/2023-05-01/examples',
            apiVersion: '2023-05-01',
        },
    }),
    kind({
        id: 'key-vault',
        provider: 'Microsoft.KeyVault',
        type: 'vaults',
        label: 'Key vault',
        noun: 'Vault',
        namePattern: resourceName,
        apiVersion: '2023-07-01',
        client: 'generic',
        pollActions: ['Microsoft.KeyVault/locations/operationResults/read'],
        state: standard,
        publicNetworkAccessPath: ['properties', 'publicNetworkAccess'],
        inlineConnections: true,
        examples: {
            specFolder: 'specification/keyvault/resource-manager/Microsoft.KeyVault/stable/2023-07-01/examples',
            apiVersion: '2023-07-01',
        },
    }),
    kind({
        id: 'cosmos-db',
        provider: 'Microsoft.DocumentDB',
        type: 'databaseAccounts',
        label: 'Azure Cosmos DB account',
        noun: 'Account',
        namePattern: resourceName,
        apiVersion: '2024-08-15',
        client: 'generic',
        pollActions: [
            'Microsoft.DocumentDB/locations/operationsStatus/read',
            'Microsoft.DocumentDB/databaseAccounts/privateEndpointConnections/operationResults/read',
        ],
        state: standard,
        publicNetworkAccessPath: ['properties', 'publicNetworkAccess'],
        inlineConnections: true,
        examples: {
            specFolder: 'specification/cosmos-db/resource-manager/Microsoft.DocumentDB/stable/2024-08-15/examples',
            apiVersion: '2024-08-15',
        },
    }),
    kind({
        id: 'app-service',
        provider: 'Microsoft.Web',
        type: 'sites',
        label: 'App Service app',
        noun: 'App',
        namePattern: resourceName,
        apiVersion: '2023-12-01',
        client: 'generic',
        // Its official example's Azure-AsyncOperation is under locations/{region}/operationResults.
        pollActions: ['Microsoft.Web/locations/operationResults/read'],
        state: standard,
        publicNetworkAccessPath: ['properties', 'publicNetworkAccess'],
        // The site list carries no connections.
        inlineConnections: false,
        examples: {
            specFolder: 'specification/web/resource-manager/Microsoft.Web/stable/2023-12-01/examples',
            apiVersion: '2023-12-01',
        },
    }),
    kind({
        id: 'container-registry',
        provider: 'Microsoft.ContainerRegistry',
        type: 'registries',
        label: 'Container registry',
        noun: 'Registry',
        namePattern: resourceName,
        apiVersion: '2022-12-01',
        client: 'generic',
        // Its official example polls a status URL under the connection itself (.../operationStatuses/...).
        pollActions: [
            'Microsoft.ContainerRegistry/locations/operationResults/read',
            'Microsoft.ContainerRegistry/registries/privateEndpointConnections/operationStatuses/read',
        ],
        state: standard,
        publicNetworkAccessPath: ['properties', 'publicNetworkAccess'],
        inlineConnections: true,
        examples: {
            specFolder:
                'specification/containerregistry/ContainerRegistry.Management/resource-manager/Microsoft.ContainerRegistry/stable/2022-12-01/examples',
            apiVersion: '2022-12-01',
        },
    }),
    kind({
        id: 'ai-services',
        provider: 'Microsoft.CognitiveServices',
        type: 'accounts',
        label: 'Azure AI services account',
        noun: 'Account',
        namePattern: resourceName,
        apiVersion: '2024-10-01',
        client: 'generic',
        // Microsoft.CognitiveServices lists connection reads and writes but no approval action.
        listsApprovalAction: false,
        pollActions: ['Microsoft.CognitiveServices/locations/operationResults/read'],
        state: standard,
        publicNetworkAccessPath: ['properties', 'publicNetworkAccess'],
        inlineConnections: true,
        examples: {
            specFolder:
                'specification/cognitiveservices/resource-manager/Microsoft.CognitiveServices/stable/2024-10-01/examples',
            apiVersion: '2024-10-01',
        },
    }),
    kind({
        id: 'event-hubs',
        provider: 'Microsoft.EventHub',
        type: 'namespaces',
        label: 'Event Hubs namespace',
        noun: 'Namespace',
        namePattern: resourceName,
        apiVersion: '2024-01-01',
        client: 'generic',
        pollActions: [
            'Microsoft.EventHub/namespaces/operationResults/read',
            'Microsoft.EventHub/namespaces/privateEndpointConnections/operationStatus/read',
        ],
        state: standard,
        publicNetworkAccessPath: ['properties', 'publicNetworkAccess'],
        inlineConnections: true,
        examples: {
            specFolder:
                'specification/eventhub/resource-manager/Microsoft.EventHub/stable/2024-01-01/examples/NameSpaces',
            apiVersion: '2024-01-01',
        },
    }),
    kind({
        id: 'service-bus',
        provider: 'Microsoft.ServiceBus',
        type: 'namespaces',
        label: 'Service Bus namespace',
        noun: 'Namespace',
        namePattern: resourceName,
        apiVersion: '2021-11-01',
        client: 'generic',
        pollActions: [
            'Microsoft.ServiceBus/namespaces/operationResults/read',
            'Microsoft.ServiceBus/namespaces/privateEndpointConnections/operationStatus/read',
        ],
        state: standard,
        publicNetworkAccessPath: ['properties', 'publicNetworkAccess'],
        inlineConnections: true,
        examples: {
            specFolder:
                'specification/servicebus/resource-manager/Microsoft.ServiceBus/stable/2021-11-01/examples/NameSpaces',
            apiVersion: '2021-11-01',
        },
    }),
    kind({
        id: 'redis',
        provider: 'Microsoft.Cache',
        type: 'redis',
        label: 'Azure Cache for Redis',
        noun: 'Cache',
        namePattern: resourceName,
        apiVersion: '2024-11-01',
        client: 'generic',
        pollActions: [
            'Microsoft.Cache/locations/operationResults/read',
            'Microsoft.Cache/locations/operationsStatus/read',
            'Microsoft.Cache/locations/asyncOperations/read',
        ],
        state: standard,
        publicNetworkAccessPath: ['properties', 'publicNetworkAccess'],
        inlineConnections: true,
        examples: {
            specFolder: 'specification/redis/resource-manager/Microsoft.Cache/stable/2024-11-01/examples',
            apiVersion: '2024-11-01',
        },
    }),
] as const;

export type ResourceKindId = (typeof resourceKinds)[number]['id'];

/** The kinds watched when WATCHED_RESOURCE_KINDS is not set: the four database kinds, as before the registry. */
export const defaultWatchedKinds: readonly ResourceKindId[] = [
    'postgres-single',
    'postgres-flexible',
    'mysql-single',
    'mysql-flexible',
];

/** The role actions a watched kind needs: read the resource, read and write its connections, approve, poll. */
export function roleActionsOf(info: ResourceKindInfo): string[] {
    const base = `${info.provider}/${info.type}`;
    return [
        `${base}/read`,
        `${base}/privateEndpointConnections/read`,
        `${base}/privateEndpointConnections/write`,
        ...(info.approvalAction ? [info.approvalAction] : []),
        ...info.pollActions,
    ];
}

/** The part of an event's subject (a resource id) that names this kind; Event Grid compares it ignoring case. */
export function eventSubjectOf(info: ResourceKindInfo): string {
    return `/providers/${info.provider}/${info.type}/`;
}

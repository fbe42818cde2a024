// The app's storage account: the Functions host (blob leases, timer state), the pec-apply queue and its poison queue,
// the requests and audit tables, the audit anchors (append-only, WORM), the Flex Consumption deployment package, and
// Event Grid dead letters. Shared keys are off: everything reaches it with an Entra identity.
//
// Who may write where (issue 18, point 4: no path from the app's code to the approver's rights):
//   - the app identity (which approves connections) gets Storage Blob Data Owner with a role assignment CONDITION:
//     in the deployment package container it may only read, and in the audit anchor container it may only read and
//     add (create a new blob or append a block), never overwrite, delete or move;
//   - the deployment identity, attached to the Function App only as functionAppConfig's deployment storage identity,
//     is the only writer of the deployment package container (Storage Blob Data Contributor on that container alone);
//   - each Event Grid system topic may write its dead letters into the dead-letter container only.

@description('Region.')
param location string

@description('Tags.')
param tags object

@minLength(3)
@maxLength(24)
@description('Storage account name: 3-24 lower-case letters and digits.')
param name string

@description('Blob container of the Flex Consumption deployment package.')
param deploymentContainerName string

@description('Blob container of the Event Grid dead letters.')
param deadLetterContainerName string

@description('Blob container of the audit anchors (time-based retention, protected appends only).')
param auditAnchorContainerName string

@minValue(1)
@maxValue(146000)
@description('Days an audit anchor blob is immutable after its creation.')
param auditAnchorRetentionDays int

@description('Principal id of the app identity.')
param appPrincipalId string

@description('Principal id of the identity the platform writes the deployment package with.')
param deploymentPrincipalId string

@description('Principal id of a person or group to give read access to the tables, the dead letters and the anchors (the ops CLI). Empty: none.')
param readerPrincipalId string = ''

@description('Log Analytics workspace that receives the blob and queue write logs (the poison-queue and dead-letter alerts read them).')
param workspaceId string

resource account 'Microsoft.Storage/storageAccounts@2025-06-01' = {
  name: name
  location: location
  tags: tags
  kind: 'StorageV2'
  sku: {
    name: 'Standard_LRS'
  }
  properties: {
    allowSharedKeyAccess: false
    allowBlobPublicAccess: false
    minimumTlsVersion: 'TLS1_2'
    supportsHttpsTrafficOnly: true
    defaultToOAuthAuthentication: true
    allowCrossTenantReplication: false
    // Public network access stays on: a Flex Consumption app without virtual network integration reaches its own
    // storage over the public endpoint from addresses that are not fixed, Event Grid writes dead letters from outside,
    // and azd and the ops CLI run from the operator's machine. Every request still needs an Entra token (shared keys
    // off). infra/README.md ("Storage network access") says how to close it with VNet integration and private endpoints.
    publicNetworkAccess: 'Enabled'
    networkAcls: {
      defaultAction: 'Allow'
      bypass: 'AzureServices'
    }
  }
}

resource blobService 'Microsoft.Storage/storageAccounts/blobServices@2025-06-01' = {
  parent: account
  name: 'default'
}

resource deploymentContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2025-06-01' = {
  parent: blobService
  name: deploymentContainerName
  properties: {
    publicAccess: 'None'
  }
}

resource deadLetterContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2025-06-01' = {
  parent: blobService
  name: deadLetterContainerName
  properties: {
    publicAccess: 'None'
  }
}

resource auditAnchorContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2025-06-01' = {
  parent: blobService
  name: auditAnchorContainerName
  properties: {
    publicAccess: 'None'
  }
}

// WORM: a blob in the anchor container cannot be changed or deleted for auditAnchorRetentionDays after it was
// created, by anyone; appending blocks to an append blob stays allowed (allowProtectedAppendWrites). The policy is
// created unlocked (ARM cannot lock it in the same deployment); lock it once with
// `az storage container immutability-policy lock` (README, "Deploy", step 4) so nobody can shorten or remove it. Until
// then the app identity's Storage Blob Data Owner (control-plane `containers/*`) could delete it: the condition below
// narrows data actions only.
resource auditAnchorWorm 'Microsoft.Storage/storageAccounts/blobServices/containers/immutabilityPolicies@2025-06-01' = {
  parent: auditAnchorContainer
  name: 'default'
  properties: {
    immutabilityPeriodSinceCreationInDays: auditAnchorRetentionDays
    allowProtectedAppendWrites: true
  }
}

var roles = {
  blobDataOwner: 'b7e6dc6d-f1e8-4753-8033-0f276bb0955b'
  blobDataContributor: 'ba92f5b4-2d11-453d-a403-e96b0029c9fe'
  blobDataReader: '2a2b9908-6ea1-4ae2-8e65-a410df84e7d1'
  queueDataContributor: '974c5e8b-45b9-4653-ba55-5f855dd0fb88'
  tableDataContributor: '0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3'
  tableDataReader: '76199698-9eea-4c19-bc75-cec21354c6b6'
}

// Every data action that changes a blob (Storage Blob Data Owner grants blobs/*). Reads stay allowed everywhere.
var blobChangeActions = [
  'Microsoft.Storage/storageAccounts/blobServices/containers/blobs/write'
  'Microsoft.Storage/storageAccounts/blobServices/containers/blobs/delete'
  'Microsoft.Storage/storageAccounts/blobServices/containers/blobs/move/action'
  'Microsoft.Storage/storageAccounts/blobServices/containers/blobs/deleteBlobVersion/action'
  'Microsoft.Storage/storageAccounts/blobServices/containers/blobs/permanentDelete/action'
  'Microsoft.Storage/storageAccounts/blobServices/containers/blobs/tags/write'
  'Microsoft.Storage/storageAccounts/blobServices/containers/blobs/immutableStorage/runAsSuperUser/action'
  'Microsoft.Storage/storageAccounts/blobServices/containers/blobs/modifyPermissions/action'
  'Microsoft.Storage/storageAccounts/blobServices/containers/blobs/manageOwnership/action'
]
// Create a blob or append a block ("Create a blob or snapshot, or append data" in the Blob ABAC action list).
var blobAddAction = 'Microsoft.Storage/storageAccounts/blobServices/containers/blobs/add/action'
var containerName = '@Resource[Microsoft.Storage/storageAccounts/blobServices/containers:name]'
var noChange = join(map(blobChangeActions, a => '!(ActionMatches{\'${a}\'})'), ' AND ')

// Role assignment condition (version 2.0 syntax): each clause is "not one of these actions, or not this container".
var appBlobCondition = '((${noChange} AND !(ActionMatches{\'${blobAddAction}\'})) OR (${containerName} StringNotEquals \'${deploymentContainerName}\')) AND ((${noChange}) OR (${containerName} StringNotEquals \'${auditAnchorContainerName}\'))'

resource appBlob 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(account.id, appPrincipalId, roles.blobDataOwner)
  scope: account
  properties: {
    // Owner, as the Functions host's identity-based storage asks for (blob leases, timer state, secrets), narrowed by
    // the condition below.
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.blobDataOwner)
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
    description: 'pec-gate app: host storage; read-only deployment package; append-only audit anchors'
    conditionVersion: '2.0'
    condition: appBlobCondition
  }
}

var appOtherRoles = [
  // the pec-apply queue (the trigger and the sender) and its poison queue
  roles.queueDataContributor
  // the requests and the hash-chained audit log
  roles.tableDataContributor
]

resource appRoleAssignments 'Microsoft.Authorization/roleAssignments@2022-04-01' = [
  for roleGuid in appOtherRoles: {
    name: guid(account.id, appPrincipalId, roleGuid)
    scope: account
    properties: {
      roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roleGuid)
      principalId: appPrincipalId
      principalType: 'ServicePrincipal'
    }
  }
]

// The only writer of the deployment package: the platform uses this identity when `azd deploy` publishes a package.
resource deploymentWriter 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(deploymentContainer.id, deploymentPrincipalId, roles.blobDataContributor)
  scope: deploymentContainer
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.blobDataContributor)
    principalId: deploymentPrincipalId
    principalType: 'ServicePrincipal'
    description: 'pec-gate deployment identity: writes the Flex Consumption deployment package'
  }
}

var readerRoles = [
  // read the requests and audit (verify the chain)
  roles.tableDataReader
  // read Event Grid dead letters and the audit anchors
  roles.blobDataReader
]

resource readerRoleAssignments 'Microsoft.Authorization/roleAssignments@2022-04-01' = [
  for roleGuid in (empty(readerPrincipalId) ? [] : readerRoles): {
    name: guid(account.id, readerPrincipalId, roleGuid)
    scope: account
    properties: {
      roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roleGuid)
      principalId: readerPrincipalId
    }
  }
]

resource queueService 'Microsoft.Storage/storageAccounts/queueServices@2025-06-01' existing = {
  parent: account
  name: 'default'
}

// Write logs of the blob and queue services into Log Analytics: the alerts on the poison queue and on Event Grid dead
// letters (alerts.bicep) look for the writes into pec-apply-poison and the dead-letter container there.
// Diagnostic settings have no stable API version after 2016-09-01, whose shape is the old activity-log one (it requires
// a location and names the setting 'service'); 2021-05-01-preview is the version Azure's own templates use for
// resource diagnostic settings.
#disable-next-line use-recent-api-versions
resource blobDiagnostics 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  name: 'pecgate-writes'
  scope: blobService
  properties: {
    workspaceId: workspaceId
    logs: [
      {
        category: 'StorageWrite'
        enabled: true
      }
    ]
  }
}

// See blobDiagnostics for the API version.
#disable-next-line use-recent-api-versions
resource queueDiagnostics 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  name: 'pecgate-writes'
  scope: queueService
  properties: {
    workspaceId: workspaceId
    logs: [
      {
        category: 'StorageWrite'
        enabled: true
      }
    ]
  }
}

output name string = account.name
output id string = account.id
output blobEndpoint string = account.properties.primaryEndpoints.blob
output deadLetterContainerId string = deadLetterContainer.id

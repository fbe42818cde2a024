// The app's storage account: the Functions host (blob leases, timer state), the pec-apply queue and its poison queue,
// the requests and audit tables, the Flex Consumption deployment package, and Event Grid dead letters.
// Shared keys are off: everything reaches it with an Entra identity.

@description('Region.')
param location string

@description('Tags.')
param tags object

@minLength(3)
@maxLength(24)
@description('Storage account name: 3-24 lower-case letters and digits.')
param name string

@description('Blob containers to create (the deployment package, the dead letters).')
param containerNames string[]

@description('Principal id of the app identity.')
param appPrincipalId string

@description('Principal id of a person or group to give read access to the tables and the dead letters (the ops CLI). Empty: none.')
param readerPrincipalId string = ''

resource account 'Microsoft.Storage/storageAccounts@2023-05-01' = {
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
    publicNetworkAccess: 'Enabled'
    networkAcls: {
      defaultAction: 'Allow'
      bypass: 'AzureServices'
    }
  }
}

resource blobService 'Microsoft.Storage/storageAccounts/blobServices@2023-05-01' = {
  parent: account
  name: 'default'
}

resource containers 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = [
  for containerName in containerNames: {
    parent: blobService
    name: containerName
    properties: {
      publicAccess: 'None'
    }
  }
]

var appRoles = [
  // Storage Blob Data Owner: the host's blob leases and timer state, and the Flex Consumption deployment package
  'b7e6dc6d-f1e8-4753-8033-0f276bb0955b'
  // Storage Queue Data Contributor: the pec-apply queue (the trigger and the sender) and its poison queue
  '974c5e8b-45b9-4653-ba55-5f855dd0fb88'
  // Storage Table Data Contributor: the requests and the hash-chained audit log
  '0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3'
]

resource appRoleAssignments 'Microsoft.Authorization/roleAssignments@2022-04-01' = [
  for roleGuid in appRoles: {
    name: guid(account.id, appPrincipalId, roleGuid)
    scope: account
    properties: {
      roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roleGuid)
      principalId: appPrincipalId
      principalType: 'ServicePrincipal'
    }
  }
]

var readerRoles = [
  // Storage Table Data Reader: read the requests and audit (verify the chain)
  '76199698-9eea-4c19-bc75-cec21354c6b6'
  // Storage Blob Data Reader: read Event Grid dead letters
  '2a2b9908-6ea1-4ae2-8e65-a410df84e7d1'
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

output name string = account.name
output id string = account.id
output blobEndpoint string = account.properties.primaryEndpoints.blob

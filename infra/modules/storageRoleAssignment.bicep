// One role on one blob container of the app's storage account for another principal (here: an Event Grid system
// topic's identity, which dead-letters undeliverable events into the dead-letter container and nowhere else).

@description('The storage account.')
param storageAccountName string

@description('The blob container the role is scoped to.')
param containerName string

@description('Principal id to grant the role.')
param principalId string

@description('Built-in role definition GUID.')
param roleDefinitionGuid string

resource account 'Microsoft.Storage/storageAccounts@2025-06-01' existing = {
  name: storageAccountName

  resource blobService 'blobServices' existing = {
    name: 'default'

    resource container 'containers' existing = {
      name: containerName
    }
  }
}

resource assignment 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(account::blobService::container.id, principalId, roleDefinitionGuid)
  scope: account::blobService::container
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roleDefinitionGuid)
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}

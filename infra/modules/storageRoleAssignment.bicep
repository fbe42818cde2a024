// One role on the app's storage account for another principal (here: an Event Grid system topic's identity, which
// dead-letters undeliverable events into the blob container).

@description('The storage account.')
param storageAccountName string

@description('Principal id to grant the role.')
param principalId string

@description('Built-in role definition GUID.')
param roleDefinitionGuid string

resource account 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: storageAccountName
}

resource assignment 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(account.id, principalId, roleDefinitionGuid)
  scope: account
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roleDefinitionGuid)
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}

// Everything pec-gate needs in one watched subscription: the custom role for the app's identity at subscription scope
// (events read one server; the sweep lists every server of the four kinds in the subscription), and the Event Grid
// system topic of the subscription's resource events. The event subscription on that topic is created after the code
// is deployed (infra/eventSubscription.bicep, postdeploy hook).

targetScope = 'subscription'

@description('Region of a resource group created here.')
param location string

@description('Tags.')
param tags object

@description('Create the resource group (a subscription other than the one azd deploys to), or use an existing one.')
param createResourceGroup bool

@description('Resource group that holds the system topic.')
param resourceGroupName string

@description('System topic name. Only one system topic may exist per source, so one per watched subscription.')
param systemTopicName string

@description('GUID of the pec-gate custom role definition (assignable in this subscription).')
param roleDefinitionGuid string

@description('Principal id of the app identity.')
param principalId string

resource eventsGroup 'Microsoft.Resources/resourceGroups@2022-09-01' = if (createResourceGroup) {
  name: resourceGroupName
  location: location
  tags: tags
}

module topic 'systemTopic.bicep' = {
  name: 'pecgate-system-topic'
  scope: resourceGroup(resourceGroupName)
  params: {
    name: systemTopicName
    tags: tags
  }
  dependsOn: [eventsGroup]
}

resource pecApprover 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(subscription().id, principalId, roleDefinitionGuid)
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roleDefinitionGuid)
    principalId: principalId
    principalType: 'ServicePrincipal'
    description: 'pec-gate: approve or reject private endpoint connections on database servers'
  }
}

output systemTopicId string = topic.outputs.id
output systemTopicPrincipalId string = topic.outputs.principalId

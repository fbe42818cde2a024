// The custom role: the only ARM permissions the app has. Every action is one an adapter in src/arm/ needs
// (test/infra/ replays the adapters against the ARM emulator and checks each call against the compiled role).
//
// Its own module so that the preprovision hook can create it (scripts/hooks/preprovision.sh deploys this file alone)
// and wait until every watched subscription sees it, before main.bicep assigns it there: a role definition that was
// created a moment ago may not have replicated yet, and the assignment then fails with RoleDefinitionDoesNotExist.
// main.bicep declares the same role again (same name, same properties), which changes nothing.

targetScope = 'subscription'

@description('Name of the azd environment (part of the role name and of its GUID).')
param environmentName string

@description('Subscription ids where the role is assignable (the watched ones; this one is always added).')
param assignableSubscriptionIds string[]

@description('Region of the deployment (seeds the same unique token main.bicep uses in resource names).')
param location string

// Role names are unique in the directory: the token keeps two environments of the same name apart.
var resourceToken = toLower(uniqueString(subscription().id, environmentName, location))

var pecApproverActions = [
  // PostgreSQL single server (api 2018-06-01)
  'Microsoft.DBforPostgreSQL/servers/read'
  'Microsoft.DBforPostgreSQL/servers/privateEndpointConnections/read'
  'Microsoft.DBforPostgreSQL/servers/privateEndpointConnections/write'
  'Microsoft.DBforPostgreSQL/servers/privateEndpointConnectionsApproval/action'
  // PostgreSQL flexible server
  'Microsoft.DBforPostgreSQL/flexibleServers/read'
  'Microsoft.DBforPostgreSQL/flexibleServers/privateEndpointConnections/read'
  'Microsoft.DBforPostgreSQL/flexibleServers/privateEndpointConnections/write'
  'Microsoft.DBforPostgreSQL/flexibleServers/privateEndpointConnectionsApproval/action'
  // MySQL single server (api 2018-06-01)
  'Microsoft.DBforMySQL/servers/read'
  'Microsoft.DBforMySQL/servers/privateEndpointConnections/read'
  'Microsoft.DBforMySQL/servers/privateEndpointConnections/write'
  'Microsoft.DBforMySQL/servers/privateEndpointConnectionsApproval/action'
  // MySQL flexible server
  'Microsoft.DBforMySQL/flexibleServers/read'
  'Microsoft.DBforMySQL/flexibleServers/privateEndpointConnections/read'
  'Microsoft.DBforMySQL/flexibleServers/privateEndpointConnections/write'
  'Microsoft.DBforMySQL/flexibleServers/privateEndpointConnectionsApproval/action'
  // Polling the long-running PUT: the generic operation status URLs, and the PEC-specific ones both providers list
  // in their operations (which of them a given region answers with is not documented, so both are readable).
  'Microsoft.DBforPostgreSQL/locations/azureAsyncOperation/read'
  'Microsoft.DBforPostgreSQL/locations/operationResults/read'
  'Microsoft.DBforPostgreSQL/locations/privateEndpointConnectionAzureAsyncOperation/read'
  'Microsoft.DBforPostgreSQL/locations/privateEndpointConnectionOperationResults/read'
  'Microsoft.DBforMySQL/locations/azureAsyncOperation/read'
  'Microsoft.DBforMySQL/locations/operationResults/read'
  'Microsoft.DBforMySQL/locations/privateEndpointConnectionAzureAsyncOperation/read'
  'Microsoft.DBforMySQL/locations/privateEndpointConnectionOperationResults/read'
]

resource pecApproverRole 'Microsoft.Authorization/roleDefinitions@2022-04-01' = {
  name: guid(subscription().id, environmentName, 'pec-gate-pec-approver')
  properties: {
    roleName: 'PEC gate approver (${environmentName} ${resourceToken})'
    description: 'pec-gate: read database servers and their private endpoint connections, approve or reject them, and poll the operation. Nothing else.'
    type: 'CustomRole'
    permissions: [
      {
        actions: pecApproverActions
        notActions: []
        dataActions: []
        notDataActions: []
      }
    ]
    assignableScopes: [
      for subscriptionId in union([toLower(subscription().subscriptionId)], assignableSubscriptionIds): '/subscriptions/${subscriptionId}'
    ]
  }
}

output id string = pecApproverRole.id
output name string = pecApproverRole.name

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

@description('Comma-separated resource kind ids to watch (infra/resourceKinds.json). Empty: its default (the four database kinds).')
param watchedResourceKinds string = ''

// For each watched kind of the registry (infra/resourceKinds.json, generated from src/domain/resourceKinds.ts):
// read the resource, read and write its connections, approve, and poll the long-running PUT.
var resourceKinds = loadJsonContent('../resourceKinds.json')
var watchedKinds = empty(trim(watchedResourceKinds))
  ? resourceKinds.defaultWatched
  : map(filter(split(watchedResourceKinds, ','), k => !empty(trim(k))), k => toLower(trim(k)))
var pecApproverActions = union(
  flatten(map(filter(resourceKinds.kinds, k => contains(watchedKinds, k.id)), k => k.roleActions)),
  []
)

resource pecApproverRole 'Microsoft.Authorization/roleDefinitions@2022-04-01' = {
  name: guid(subscription().id, environmentName, 'pec-gate-pec-approver')
  properties: {
    roleName: 'PEC gate approver (${environmentName} ${resourceToken})'
    description: 'pec-gate: read the watched Private Link resources and their private endpoint connections, approve or reject them, and poll the operation. Nothing else.'
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

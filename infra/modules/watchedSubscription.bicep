// Everything pec-gate needs in one watched subscription: the custom role for the app's identity at subscription scope
// (events read one server; the sweep lists every server of the four kinds in the subscription), the Event Grid system
// topic of the subscription's resource events (or the one that already exists: Event Grid allows one per source), and
// optionally the Azure Policy guardrail. The event subscription on the topic is created after the code is deployed
// (infra/eventSubscription.bicep, postdeploy hook).

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

@description('Resource id of a system topic of this subscription that already exists (found by the preprovision hook); it is used instead of creating one. Empty: create one.')
param existingSystemTopicId string = ''

@description('GUID of the pec-gate custom role definition (assignable in this subscription).')
param roleDefinitionGuid string

@description('Principal id of the app identity.')
param principalId string

@description('Deny, with Azure Policy, approved private endpoint connections on the watched database servers whose private endpoint is in a subscription outside trustedSubscriptionIds.')
param denyUntrustedPrivateEndpoints bool

@description('Subscriptions whose private endpoints the policy lets through (this one is always added).')
param trustedSubscriptionIds string[]

@description('Connection resource types of the watched kinds, e.g. Microsoft.DBforPostgreSQL/flexibleServers/privateEndpointConnections.')
param pecResourceTypes string[]

var useExistingTopic = !empty(existingSystemTopicId)

resource eventsGroup 'Microsoft.Resources/resourceGroups@2025-04-01' = if (createResourceGroup && !useExistingTopic) {
  name: resourceGroupName
  location: location
  tags: tags
}

module topic 'systemTopic.bicep' = if (!useExistingTopic) {
  name: 'pecgate-system-topic'
  scope: resourceGroup(resourceGroupName)
  params: {
    name: systemTopicName
    tags: tags
  }
  dependsOn: [eventsGroup]
}

// /subscriptions/{s}/resourceGroups/{g}/providers/Microsoft.EventGrid/systemTopics/{name}
var existingParts = split(existingSystemTopicId, '/')

resource existingTopic 'Microsoft.EventGrid/systemTopics@2025-02-15' existing = if (useExistingTopic) {
  name: useExistingTopic ? existingParts[8] : 'none'
  scope: resourceGroup(useExistingTopic ? existingParts[4] : resourceGroupName)
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

// The Cloud Adoption Framework's "limit cross-tenant private endpoint connections" mitigation, for the watched
// resource kinds: an Approved connection whose private endpoint lives in a subscription that is not trusted is denied,
// whoever approves it (the gate, the portal, a pipeline). Policy cannot see a subscription's tenant, so the trust is
// a list of subscriptions (the CAF notes the same caveat).
var pecTypes = pecResourceTypes

resource untrustedPecPolicy 'Microsoft.Authorization/policyDefinitions@2025-03-01' = if (denyUntrustedPrivateEndpoints) {
  name: guid(subscription().id, 'pec-gate-deny-untrusted-pec')
  properties: {
    displayName: 'pec-gate: deny approved private endpoint connections from untrusted subscriptions (watched resources)'
    description: 'Denies an Approved private endpoint connection on a watched Private Link resource whose private endpoint is in a subscription outside the allowed list (Cloud Adoption Framework: limit cross-tenant private endpoint connections).'
    policyType: 'Custom'
    mode: 'All'
    metadata: {
      category: 'Network'
    }
    parameters: {
      allowedSubscriptionIds: {
        type: 'Array'
        metadata: {
          displayName: 'Allowed subscriptions'
          description: 'Subscription ids whose private endpoints may connect.'
        }
      }
    }
    policyRule: {
      if: {
        anyOf: [
          for pecType in pecTypes: {
            allOf: [
              {
                field: 'type'
                equals: pecType
              }
              {
                field: '${pecType}/privateLinkServiceConnectionState.status'
                equals: 'Approved'
              }
              {
                anyOf: [
                  {
                    field: '${pecType}/privateEndpoint.id'
                    exists: false
                  }
                  {
                    value: '[toLower(split(concat(field(\'${pecType}/privateEndpoint.id\'), \'//\'), \'/\')[2])]'
                    notIn: '[parameters(\'allowedSubscriptionIds\')]'
                  }
                ]
              }
            ]
          }
        ]
      }
      then: {
        effect: 'Deny'
      }
    }
  }
}

resource untrustedPecAssignment 'Microsoft.Authorization/policyAssignments@2025-03-01' = if (denyUntrustedPrivateEndpoints) {
  name: take('pecgate-untrusted-pec-${uniqueString(subscription().id)}', 64)
  properties: {
    displayName: 'pec-gate: deny approved private endpoint connections from untrusted subscriptions'
    policyDefinitionId: untrustedPecPolicy.id
    enforcementMode: 'Default'
    parameters: {
      allowedSubscriptionIds: {
        value: map(union([subscription().subscriptionId], trustedSubscriptionIds), id => toLower(id))
      }
    }
  }
}

output systemTopicId string = useExistingTopic ? existingTopic.id : topic!.outputs.id
// An existing topic without a system-assigned identity cannot dead-letter (shared keys are off): empty here, and the
// preprovision hook says how to give it one.
output systemTopicPrincipalId string = useExistingTopic
  ? (existingTopic.?identity.?principalId ?? '')
  : topic!.outputs.principalId

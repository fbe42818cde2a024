// pec-gate: the approval gate for Private Endpoint Connections, deployed with `azd up`.
//
// What this deploys (see infra/README.md for the steps around it):
//   - resource group rg-<env> with a user-assigned managed identity (the app's only identity, also the bot's app id)
//   - storage (no shared keys), Log Analytics + Application Insights (no local auth)
//   - a Function App on Flex Consumption with identity-based settings, and every setting src/config.ts requires
//   - a custom role with only the PEC read/write/approval, server read and operation-status reads, assigned to the
//     identity on each watched subscription; an Event Grid system topic on each watched subscription
//   - an Azure Bot (UserAssignedMSI) with the Teams channel; optional App Service Authentication (Entra)
// The Event Grid *event subscriptions* are not here: infra/eventSubscription.bicep, deployed by the postdeploy hook,
// because Event Grid checks the pecEvents function when the subscription is created, so the code must be live first.

targetScope = 'subscription'

// ---------------------------------------------------------------------------------------------------------------------
// Environment
// ---------------------------------------------------------------------------------------------------------------------

@minLength(1)
@maxLength(40)
@description('Name of the azd environment; names the resource group rg-<name> and seeds the unique resource names.')
param environmentName string

@minLength(1)
@description('Region of the resource group and the regional resources. Must offer Flex Consumption (az functionapp list-flexconsumption-locations).')
@metadata({ azd: { type: 'location' } })
param location string

@description('Object id of the person or principal running azd (azd sets AZURE_PRINCIPAL_ID). Gets read access to the audit tables and the Event Grid dead letters, for the ops CLI. Empty: none.')
param principalId string = ''

// ---------------------------------------------------------------------------------------------------------------------
// What is gated, and by whom
// ---------------------------------------------------------------------------------------------------------------------

@description('Comma-separated subscription ids whose database servers are gated. Empty: the subscription azd deploys to. Each gets the custom role and an Event Grid system topic.')
param watchedSubscriptionIds string = ''

@description('Comma-separated resource kinds to watch (ids in infra/resourceKinds.json, e.g. sql-server,key-vault). Empty: the four database kinds. The app refuses an unknown id at start-up.')
param watchedResourceKinds string = ''

@description('Comma-separated subscription ids whose private endpoints count as ours (the card flags any other). Empty: every endpoint is flagged.')
param trustedSubscriptionIds string = ''

@minLength(36)
@description('Comma-separated Entra group object ids whose (transitive) members may approve or reject. Required.')
param approverGroupIds string

@description('Whether the person who created the private endpoint may decide it themselves: true or false. Empty: the app default (false).')
param allowSelfApproval string = ''

// ---------------------------------------------------------------------------------------------------------------------
// Teams
// ---------------------------------------------------------------------------------------------------------------------

@description('The channel that receives approval cards (19:...@thread.tacv2). The app needs this or workflowsWebhookUrl; without either it refuses to start. Set it with `azd env set TEAMS_CHANNEL_ID ...` once the bot is in the team, then `azd provision`.')
param teamsChannelId string = ''

@description('The team that holds the channel (19:...@thread.tacv2 or the group id). Optional.')
param teamsTeamId string = ''

@description('Optional fallback delivery: a Teams Workflows incoming webhook URL (https). Cards sent this way carry links to the web page instead of buttons.')
param workflowsWebhookUrl string = ''

@allowed(['F0', 'S1'])
@description('Azure Bot pricing tier. F0 is free; the Teams channel is a standard channel either way.')
param botSku string = 'F0'

// ---------------------------------------------------------------------------------------------------------------------
// Sweep, reminders, expiry, policy. Empty strings mean "the app's default" (src/config.ts treats an empty setting as
// unset), so the defaults live in one place.
// ---------------------------------------------------------------------------------------------------------------------

@minLength(11)
@description('NCRONTAB schedule of the sweep (six fields). Required by the Functions host itself for the timer.')
param sweepSchedule string = '0 */15 * * * *'

@description('Hours from the card to the first reminder and between reminders; 0 turns reminders off. Empty: 24.')
param reminderIntervalHours string = ''

@description('Reminders per request, at most. Empty: 3.')
param reminderMaxCount string = ''

@description('Hours until a pending request expires; 0: never. Empty: 168.')
param expiryHours string = ''

@allowed(['', 'leave', 'reject'])
@description('What expiry does: leave (the PEC stays Pending) or reject. Empty: leave.')
param expiryAction string = ''

@maxLength(500)
@description('Text of an expiry reject in the connection description. Empty: the app default.')
param expiryRejectText string = ''

@description('Minutes after which a decision not yet applied is queued again. Empty: 30.')
param stuckApplyMinutes string = ''

@description('Lifetime in hours of the single-use web page link on a card. Empty: 168.')
param linkTokenTtlHours string = ''

@description('The policy JSON, base64-encoded (azd substitutes env values into main.parameters.json as text, so raw JSON quotes would break it): azd env set POLICY_BASE64 "$(base64 -w0 policy.json)". Empty: no policy.')
param policyBase64 string = ''

@description('Path of a policy JSON file inside the deployed package, relative to the app root. Do not combine with policyBase64.')
param policyFile string = ''

// ---------------------------------------------------------------------------------------------------------------------
// Hosting
// ---------------------------------------------------------------------------------------------------------------------

@allowed(['20', '22'])
@description('Node.js major version of the Flex Consumption runtime. 20 is what the app is built and tested on (package.json engines, esbuild target node20).')
param nodeVersion string = '20'

@allowed([512, 2048, 4096])
@description('Instance memory of the Flex Consumption app, in MB.')
param instanceMemoryMB int = 2048

@minValue(40)
@maxValue(1000)
@description('Upper bound on the Flex Consumption scale-out.')
param maximumInstanceCount int = 40

// ---------------------------------------------------------------------------------------------------------------------
// Web page sign-in (optional)
// ---------------------------------------------------------------------------------------------------------------------

@description('Client id of an Entra app registration for App Service Authentication on the web decision page. Empty: no authentication, and the page answers 401 (the bot and Event Grid do not need it).')
param authClientId string = ''

@description('With authClientId: sign users in with the authorization code flow, proving the app registration with a federated credential of a dedicated managed identity (no secret). The postprovision hook adds that credential to the app registration, or prints the command. false: the implicit id_token flow (enable ID tokens on the app registration).')
param authUseManagedIdentityCredential bool = true

// ---------------------------------------------------------------------------------------------------------------------
// Names
// ---------------------------------------------------------------------------------------------------------------------

var resourceToken = toLower(uniqueString(subscription().id, environmentName, location))
var tags = { 'azd-env-name': environmentName }
var resourceGroupName = 'rg-${environmentName}'
var eventsResourceGroupName = 'rg-${environmentName}-pecgate-events'
var systemTopicName = 'evgt-pecgate-${environmentName}'
var functionAppName = 'func-pecgate-${resourceToken}'
var storageAccountName = 'stpecgate${resourceToken}'
var deploymentContainerName = 'deployment-package'
var deadLetterContainerName = 'eventgrid-deadletter'

var watched = empty(trim(watchedSubscriptionIds))
  ? [toLower(subscription().subscriptionId)]
  : map(filter(split(replace(watchedSubscriptionIds, ' ', ''), ','), id => !empty(id)), id => toLower(id))

// Only one system topic may exist per source: each watched subscription gets one, in our resource group for the
// subscription azd deploys to, and in rg-<env>-pecgate-events (created here) for any other.
var watchedTargets = [
  for subscriptionId in watched: {
    subscriptionId: subscriptionId
    isHome: subscriptionId == toLower(subscription().subscriptionId)
    resourceGroupName: subscriptionId == toLower(subscription().subscriptionId) ? resourceGroupName : eventsResourceGroupName
  }
]

// The system topics' ids, known before they exist: the postdeploy hook creates an event subscription on each.
var systemTopicIds = map(
  watchedTargets,
  t => '/subscriptions/${t.subscriptionId}/resourceGroups/${t.resourceGroupName}/providers/Microsoft.EventGrid/systemTopics/${systemTopicName}'
)

// ---------------------------------------------------------------------------------------------------------------------
// Custom role: the only ARM permissions the app has. Every action is one an adapter in src/arm/ needs (a test in
// test/infra/ replays the adapters against the ARM emulator and checks each call against this list).
// ---------------------------------------------------------------------------------------------------------------------

// The custom role, from the resource kind registry (infra/resourceKinds.json, generated from src/domain/resourceKinds.ts):
// for each watched kind, read the resource, read and write its connections, approve, and poll the long-running PUT.
var resourceKinds = loadJsonContent('resourceKinds.json')
var watchedKinds = empty(trim(watchedResourceKinds))
  ? resourceKinds.defaultWatched
  : map(filter(split(watchedResourceKinds, ','), k => !empty(trim(k))), k => toLower(trim(k)))
var pecApproverActions = union(
  flatten(map(filter(resourceKinds.kinds, k => contains(watchedKinds, k.id)), k => k.roleActions)),
  []
)

var pecApproverRoleGuid = guid(subscription().id, environmentName, 'pec-gate-pec-approver')
// The role is created in the deployment subscription, so that one is always an assignable scope too (it is assigned
// there only when it is watched).
var pecApproverRoleScopes = union([toLower(subscription().subscriptionId)], watched)

resource pecApproverRole 'Microsoft.Authorization/roleDefinitions@2022-04-01' = {
  name: pecApproverRoleGuid
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
    assignableScopes: [for subscriptionId in pecApproverRoleScopes: '/subscriptions/${subscriptionId}']
  }
}

// ---------------------------------------------------------------------------------------------------------------------
// Resources
// ---------------------------------------------------------------------------------------------------------------------

resource rg 'Microsoft.Resources/resourceGroups@2022-09-01' = {
  name: resourceGroupName
  location: location
  tags: tags
}

module identity 'modules/identity.bicep' = {
  name: 'identity'
  scope: rg
  params: {
    location: location
    tags: tags
    name: 'id-pecgate-${resourceToken}'
    authIdentityName: !empty(authClientId) && authUseManagedIdentityCredential ? 'id-pecgate-auth-${resourceToken}' : ''
  }
}

module monitoring 'modules/monitoring.bicep' = {
  name: 'monitoring'
  scope: rg
  params: {
    location: location
    tags: tags
    logAnalyticsName: 'log-pecgate-${resourceToken}'
    applicationInsightsName: 'appi-pecgate-${resourceToken}'
    publisherPrincipalId: identity.outputs.principalId
  }
}

module storage 'modules/storage.bicep' = {
  name: 'storage'
  scope: rg
  params: {
    location: location
    tags: tags
    name: storageAccountName
    containerNames: [deploymentContainerName, deadLetterContainerName]
    appPrincipalId: identity.outputs.principalId
    readerPrincipalId: principalId
  }
}

module functionApp 'modules/functionApp.bicep' = {
  name: 'functionApp'
  scope: rg
  params: {
    location: location
    tags: union(tags, { 'azd-service-name': 'api' })
    name: functionAppName
    planName: 'plan-pecgate-${resourceToken}'
    identityIds: filter([identity.outputs.id, identity.outputs.authIdentityId], id => !empty(id))
    identityId: identity.outputs.id
    storageBlobEndpoint: storage.outputs.blobEndpoint
    deploymentContainerName: deploymentContainerName
    nodeVersion: nodeVersion
    instanceMemoryMB: instanceMemoryMB
    maximumInstanceCount: maximumInstanceCount
  }
}

var publicBaseUrl = 'https://${functionApp.outputs.defaultHostName}'

// The Functions host's own settings: identity-based storage (blob for its locks and the timer, queue for the
// applyDecision trigger, table for the requests and audit) and Application Insights with Entra auth. Flex Consumption
// takes the runtime from functionAppConfig.runtime, so FUNCTIONS_WORKER_RUNTIME and FUNCTIONS_EXTENSION_VERSION are
// deprecated there and not set.
var storageSuffix = environment().suffixes.storage
// The cloud's own endpoints, so a sovereign cloud works unchanged (environment() gives them with a trailing slash).
var armEndpoint = environment().resourceManager
var loginEndpoint = environment().authentication.loginEndpoint
var armEndpointNoSlash = endsWith(armEndpoint, '/') ? substring(armEndpoint, 0, length(armEndpoint) - 1) : armEndpoint
var loginEndpointNoSlash = endsWith(loginEndpoint, '/')
  ? substring(loginEndpoint, 0, length(loginEndpoint) - 1)
  : loginEndpoint
var hostSettings = {
  AzureWebJobsStorage__accountName: storage.outputs.name
  AzureWebJobsStorage__credential: 'managedidentity'
  AzureWebJobsStorage__clientId: identity.outputs.clientId
  AzureWebJobsStorage__blobServiceUri: 'https://${storage.outputs.name}.blob.${storageSuffix}'
  AzureWebJobsStorage__queueServiceUri: 'https://${storage.outputs.name}.queue.${storageSuffix}'
  AzureWebJobsStorage__tableServiceUri: 'https://${storage.outputs.name}.table.${storageSuffix}'
  APPLICATIONINSIGHTS_CONNECTION_STRING: monitoring.outputs.connectionString
  APPLICATIONINSIGHTS_AUTHENTICATION_STRING: 'ClientId=${identity.outputs.clientId};Authorization=AAD'
}

// Every setting src/config.ts reads. test/infra/bicep.test.ts loads this block into loadConfig().
var appSettings = {
  WATCHED_SUBSCRIPTION_IDS: join(watched, ',')
  WATCHED_RESOURCE_KINDS: join(watchedKinds, ',')
  TRUSTED_SUBSCRIPTION_IDS: trustedSubscriptionIds
  AZURE_TENANT_ID: tenant().tenantId
  AZURE_CLIENT_ID: identity.outputs.clientId
  APPROVER_GROUP_IDS: approverGroupIds
  PUBLIC_BASE_URL: publicBaseUrl
  ARM_ENDPOINT: armEndpointNoSlash
  AZURE_AUTHORITY_HOST: loginEndpointNoSlash
  PORTAL_URL: environment().portal
  TEAMS_CHANNEL_ID: teamsChannelId
  TEAMS_TEAM_ID: teamsTeamId
  WORKFLOWS_WEBHOOK_URL: workflowsWebhookUrl
  ALLOW_SELF_APPROVAL: allowSelfApproval
  SWEEP_SCHEDULE: sweepSchedule
  REMINDER_INTERVAL_HOURS: reminderIntervalHours
  REMINDER_MAX_COUNT: reminderMaxCount
  EXPIRY_HOURS: expiryHours
  EXPIRY_ACTION: expiryAction
  EXPIRY_REJECT_TEXT: expiryRejectText
  STUCK_APPLY_MINUTES: stuckApplyMinutes
  LINK_TOKEN_TTL_HOURS: linkTokenTtlHours
  POLICY: empty(policyBase64) ? '' : base64ToString(policyBase64)
  POLICY_FILE: policyFile
}

module functionAppConfig 'modules/appSettings.bicep' = {
  name: 'functionAppSettings'
  scope: rg
  params: {
    functionAppName: functionApp.outputs.name
    settings: union(hostSettings, appSettings)
    authClientId: authClientId
    authIdentityClientId: identity.outputs.authIdentityClientId
    // Both reach the app without a signed-in user: the bot's calls carry a Bot Framework JWT checked in code, and
    // Event Grid calls the extension's webhook with its system key.
    authExcludedPaths: [
      '/api/messages'
      '/runtime/webhooks/eventgrid'
    ]
  }
}

module bot 'modules/bot.bicep' = {
  name: 'bot'
  scope: rg
  params: {
    name: 'bot-pecgate-${resourceToken}'
    tags: tags
    sku: botSku
    displayName: 'PEC gate'
    endpoint: '${publicBaseUrl}/api/messages'
    identityClientId: identity.outputs.clientId
    identityResourceId: identity.outputs.id
  }
}

// Per watched subscription: the custom role for the app's identity (at subscription scope: the sweep lists the
// servers of the whole subscription) and the Event Grid system topic.
module watchedSubscription 'modules/watchedSubscription.bicep' = [
  for target in watchedTargets: {
    name: 'pecgate-watch-${take(uniqueString(target.subscriptionId, environmentName), 8)}'
    scope: subscription(target.subscriptionId)
    params: {
      location: location
      tags: tags
      createResourceGroup: !target.isHome
      resourceGroupName: target.resourceGroupName
      systemTopicName: systemTopicName
      roleDefinitionGuid: pecApproverRole.name
      principalId: identity.outputs.principalId
    }
    dependsOn: [rg]
  }
]

// Each system topic dead-letters undeliverable events into our storage with its own identity (shared keys are off).
module deadLetterAccess 'modules/storageRoleAssignment.bicep' = [
  for (target, i) in watchedTargets: {
    name: 'pecgate-deadletter-${take(uniqueString(target.subscriptionId, environmentName), 8)}'
    scope: rg
    params: {
      storageAccountName: storage.outputs.name
      principalId: watchedSubscription[i].outputs.systemTopicPrincipalId
      // Storage Blob Data Contributor
      roleDefinitionGuid: 'ba92f5b4-2d11-453d-a403-e96b0029c9fe'
    }
  }
]

// ---------------------------------------------------------------------------------------------------------------------
// Outputs: azd writes them to .azure/<env>/.env; the hooks and `npm run teams-app` read them from there.
// ---------------------------------------------------------------------------------------------------------------------

output AZURE_LOCATION string = location
output AZURE_TENANT_ID string = tenant().tenantId
output AZURE_RESOURCE_GROUP string = rg.name
output AZURE_FUNCTION_APP_NAME string = functionApp.outputs.name
output SERVICE_API_NAME string = functionApp.outputs.name
output FUNCTION_APP_ID string = functionApp.outputs.id
output FUNCTION_APP_HOST string = functionApp.outputs.defaultHostName
output PUBLIC_BASE_URL string = publicBaseUrl
output SERVICE_API_URI string = publicBaseUrl
output AZURE_CLIENT_ID string = identity.outputs.clientId
output BOT_ID string = identity.outputs.clientId
output BOT_NAME string = bot.outputs.name
output MANAGED_IDENTITY_PRINCIPAL_ID string = identity.outputs.principalId
output MANAGED_IDENTITY_RESOURCE_ID string = identity.outputs.id
output AUTH_IDENTITY_PRINCIPAL_ID string = identity.outputs.authIdentityPrincipalId
output STORAGE_ACCOUNT_NAME string = storage.outputs.name
output STORAGE_ACCOUNT_ID string = storage.outputs.id
output EVENTGRID_DEADLETTER_CONTAINER string = deadLetterContainerName
output WATCHED_SUBSCRIPTION_IDS string = join(watched, ',')
output EVENTGRID_SYSTEM_TOPIC_IDS string = join(systemTopicIds, ',')
output PEC_APPROVER_ROLE_ID string = pecApproverRole.id

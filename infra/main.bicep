// pec-gate: the approval gate for Private Endpoint Connections, deployed with `azd up`.
//
// What this deploys (see infra/README.md for the steps around it):
//   - resource group rg-<env> with a user-assigned managed identity (the app's only identity, also the bot's app id)
//   - storage (no shared keys), Log Analytics + Application Insights (no local auth)
//   - a Function App on Flex Consumption with identity-based settings, and every setting src/config.ts requires
//   - a second identity that alone may write the deployment package (the app identity only reads it)
//   - a custom role with only the PEC read/write/approval, server read and operation-status reads, assigned to the
//     identity on each watched subscription; an Event Grid system topic on each watched subscription (or the existing
//     one); optionally an Azure Policy that denies approved connections from untrusted subscriptions
//   - an audit anchor container with a time-based immutability (WORM) policy, append-only for the app
//   - alert rules (ALERT lines, poison queue, Event Grid dead letters, a stalled sweep) and an optional e-mail
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

@description('Optional explicit home tenants of subscriptions, as subId=tenantId,… (the app otherwise looks each one up). Empty: none.')
param subscriptionTenants string = ''

@description('Comma-separated Entra group ids whose members may open the read-only dashboard. Empty: none.')
param dashboardReaderGroupIds string = ''

// ---------------------------------------------------------------------------------------------------------------------
// Teams
// ---------------------------------------------------------------------------------------------------------------------

@description('The channel that receives approval cards (19:...@thread.tacv2). The app needs this or workflowsWebhookUrl; without either it refuses to start. Set it with `azd env set TEAMS_CHANNEL_ID ...` once the bot is in the team, then `azd provision`.')
param teamsChannelId string = ''

@description('The team that holds the channel, by its thread id (19:...@thread.tacv2, in the team link before /conversations): the bot reads its roster for the approvers\' Teams ids. Optional.')
param teamsTeamId string = ''

@description('The same team by its Microsoft 365 group id (the GUID after groupId= in the team link): Graph reads the channel with it to find a card whose post got no answer. Optional.')
param teamsGroupId string = ''

@description('Optional fallback delivery: a Teams Workflows incoming webhook URL (https). Cards sent this way carry links to the web page instead of buttons. Secure: its sig= lets anyone who holds it post into the channel, and a plain parameter is kept in the deployment history, which every Reader sees.')
@secure()
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

@allowed(['22'])
@description('Node.js major version of the Flex Consumption runtime. 22: Node 20 reached its end of life on 2026-04-30 (package.json engines; the built bundle is tested on Node 22 by npm run infra:check).')
param nodeVersion string = '22'

@allowed([512, 2048, 4096])
@description('Instance memory of the Flex Consumption app, in MB.')
param instanceMemoryMB int = 2048

@minValue(40)
@maxValue(1000)
@description('Upper bound on the Flex Consumption scale-out.')
param maximumInstanceCount int = 40

// ---------------------------------------------------------------------------------------------------------------------
// Guardrail, alerts, audit anchors
// ---------------------------------------------------------------------------------------------------------------------

@description('Turn on the Azure Policy that denies approved private endpoint connections on the watched database servers from subscriptions outside trustedSubscriptionIds (and the watched ones). See infra/README.md before turning it on.')
param denyUntrustedPrivateEndpoints bool = false

@description('Comma-separated ids of system topics (Microsoft.Resources.Subscriptions) that already exist on watched subscriptions; each is used instead of creating one. The preprovision hook fills it in (EXISTING_SYSTEM_TOPIC_IDS).')
param existingSystemTopicIds string = ''

@description('E-mail address that receives the alerts (action group). Empty: the alerts show in the portal only.')
param alertEmail string = ''

@minValue(1)
@maxValue(146000)
@description('Days each audit anchor blob stays immutable (WORM) after it was written.')
param auditAnchorRetentionDays int = 3650

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
// Agreed with src/ (AUDIT_ANCHOR_CONTAINER's default) and with the apply queue's poison queue name.
var auditAnchorContainerName = 'pecauditanchors'
var poisonQueueName = 'pec-apply-poison'

var watched = empty(trim(watchedSubscriptionIds))
  ? [toLower(subscription().subscriptionId)]
  : map(filter(split(replace(watchedSubscriptionIds, ' ', ''), ','), id => !empty(id)), id => toLower(id))

var existingTopics = filter(split(replace(existingSystemTopicIds, ' ', ''), ','), id => !empty(id))

// Only one system topic may exist per source: each watched subscription gets one, in our resource group for the
// subscription azd deploys to, and in rg-<env>-pecgate-events (created here) for any other; unless one exists already
// (another tool, another environment), which is then used as it is.
var watchedTargets = [
  for subscriptionId in watched: {
    subscriptionId: subscriptionId
    isHome: subscriptionId == toLower(subscription().subscriptionId)
    resourceGroupName: subscriptionId == toLower(subscription().subscriptionId) ? resourceGroupName : eventsResourceGroupName
    existingSystemTopicId: first(filter(existingTopics, id => startsWith(toLower(id), '/subscriptions/${subscriptionId}/'))) ?? ''
  }
]

// The resource kind registry (infra/resourceKinds.json, generated from src/domain/resourceKinds.ts by
// `npm run kinds:json`): the watched kinds' role actions (modules/pecApproverRole.bicep), connection types (the
// guardrail) and the app setting.
var resourceKinds = loadJsonContent('resourceKinds.json')
var watchedKinds = empty(trim(watchedResourceKinds))
  ? resourceKinds.defaultWatched
  : map(filter(split(watchedResourceKinds, ','), k => !empty(trim(k))), k => toLower(trim(k)))
var watchedPecTypes = map(
  filter(resourceKinds.kinds, k => contains(watchedKinds, k.id)),
  k => '${k.resourceType}/privateEndpointConnections'
)

var trusted = map(filter(split(replace(trustedSubscriptionIds, ' ', ''), ','), id => !empty(id)), id => toLower(id))

// ---------------------------------------------------------------------------------------------------------------------
// Custom role: the only ARM permissions the app has (modules/pecApproverRole.bicep lists them). The preprovision hook
// deploys the same module first and waits for it to replicate, so the assignments below never meet
// RoleDefinitionDoesNotExist; here it is declared again (no change) so a plain deployment is complete too.
// ---------------------------------------------------------------------------------------------------------------------

module pecApproverRole 'modules/pecApproverRole.bicep' = {
  name: 'pecgate-role-${environmentName}'
  params: {
    environmentName: environmentName
    location: location
    assignableSubscriptionIds: watched
    watchedResourceKinds: watchedResourceKinds
  }
}

// ---------------------------------------------------------------------------------------------------------------------
// Resources
// ---------------------------------------------------------------------------------------------------------------------

resource rg 'Microsoft.Resources/resourceGroups@2025-04-01' = {
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
    deploymentIdentityName: 'id-pecgate-deploy-${resourceToken}'
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
    deploymentContainerName: deploymentContainerName
    deadLetterContainerName: deadLetterContainerName
    auditAnchorContainerName: auditAnchorContainerName
    auditAnchorRetentionDays: auditAnchorRetentionDays
    appPrincipalId: identity.outputs.principalId
    deploymentPrincipalId: identity.outputs.deploymentPrincipalId
    readerPrincipalId: principalId
    workspaceId: monitoring.outputs.workspaceId
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
    identityIds: filter(
      [identity.outputs.id, identity.outputs.deploymentIdentityId, identity.outputs.authIdentityId],
      id => !empty(id)
    )
    deploymentIdentityId: identity.outputs.deploymentIdentityId
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
// Both end with '/' in every cloud; take() would also leave a string without one as it is.
var armEndpointNoSlash = endsWith(armEndpoint, '/') ? take(armEndpoint, max(length(armEndpoint) - 1, 0)) : armEndpoint
var loginEndpointNoSlash = endsWith(loginEndpoint, '/')
  ? take(loginEndpoint, max(length(loginEndpoint) - 1, 0))
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
  // The host buffers a request body up to this before the app sees it (default 100 MB). /api/messages is anonymous
  // at the platform, so anyone can post to it: 2 MB bounds what one request makes the host hold, and still takes the
  // largest body the app accepts (an Event Grid delivery of one event, at most 1 MB; a Teams activity, 256 KB).
  FUNCTIONS_REQUEST_BODY_SIZE_LIMIT: '2097152'
}

// Every setting src/config.ts reads. test/infra/bicep.test.ts loads this block into loadConfig().
var appSettings = {
  WATCHED_SUBSCRIPTION_IDS: join(watched, ',')
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
  TEAMS_GROUP_ID: teamsGroupId
  WORKFLOWS_WEBHOOK_URL: workflowsWebhookUrl
  ALLOW_SELF_APPROVAL: allowSelfApproval
  WATCHED_RESOURCE_KINDS: join(watchedKinds, ',')
  SUBSCRIPTION_TENANTS: subscriptionTenants
  DASHBOARD_READER_GROUP_IDS: dashboardReaderGroupIds
  // The append-only anchor container deployed by modules/storage.bicep (same account as the tables).
  AUDIT_ANCHOR_CONTAINER: auditAnchorContainerName
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
      existingSystemTopicId: target.existingSystemTopicId
      // A module output, so every assignment waits for the role definition's deployment to finish.
      roleDefinitionGuid: pecApproverRole.outputs.name
      principalId: identity.outputs.principalId
      denyUntrustedPrivateEndpoints: denyUntrustedPrivateEndpoints
      pecResourceTypes: watchedPecTypes
      trustedSubscriptionIds: union(watched, trusted)
    }
    // (The home subscription's system topic goes into rg: the identity's outputs already make this wait for it.)
  }
]

// Each system topic dead-letters undeliverable events into the dead-letter container (and nowhere else) with its own
// identity, since shared keys are off. An existing topic without an identity gets none (the preprovision hook warns).
module deadLetterAccess 'modules/storageRoleAssignment.bicep' = [
  for (target, i) in watchedTargets: if (empty(target.existingSystemTopicId)) {
    name: 'pecgate-deadletter-${take(uniqueString(target.subscriptionId, environmentName), 8)}'
    scope: rg
    params: {
      storageAccountName: storage.outputs.name
      containerName: deadLetterContainerName
      principalId: watchedSubscription[i].outputs.systemTopicPrincipalId
      // Storage Blob Data Contributor
      roleDefinitionGuid: 'ba92f5b4-2d11-453d-a403-e96b0029c9fe'
    }
  }
]

// Minutes between sweeps, read from the NCRONTAB schedule's minute or hour field ("*/N"); a daily or irregular
// schedule counts as daily. The stalled-sweep alert fires after two of them.
var sweepFields = split(trim(sweepSchedule), ' ')
var sweepMinuteField = length(sweepFields) > 1 ? sweepFields[1] : ''
var sweepHourField = length(sweepFields) > 2 ? sweepFields[2] : ''
var sweepIntervalMinutes = startsWith(sweepMinuteField, '*/')
  ? int(substring(sweepMinuteField, 2))
  : (sweepMinuteField != '*' && startsWith(sweepHourField, '*/') ? 60 * int(substring(sweepHourField, 2)) : 1440)

module alerts 'modules/alerts.bicep' = {
  name: 'alerts'
  scope: rg
  params: {
    location: location
    tags: tags
    resourceToken: resourceToken
    alertEmail: alertEmail
    workspaceId: monitoring.outputs.workspaceId
    sweepIntervalMinutes: sweepIntervalMinutes
    poisonQueueName: poisonQueueName
    deadLetterContainerName: deadLetterContainerName
  }
}

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
// The topics the postdeploy hook creates an event subscription on: ours, or the one a subscription already had.
output EVENTGRID_SYSTEM_TOPIC_IDS string = join(
  map(
    watchedTargets,
    t => empty(t.existingSystemTopicId)
      ? '/subscriptions/${t.subscriptionId}/resourceGroups/${t.resourceGroupName}/providers/Microsoft.EventGrid/systemTopics/${systemTopicName}'
      : t.existingSystemTopicId
  ),
  ','
)
output PEC_APPROVER_ROLE_ID string = pecApproverRole.outputs.id
output AUDIT_ANCHOR_CONTAINER string = auditAnchorContainerName
output ALERT_ACTION_GROUP_ID string = alerts.outputs.actionGroupId

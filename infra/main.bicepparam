// Parameters of `azd up`: azd runs `bicep build-params` on this file with the azd environment's values
// (.azure/<env>/.env, `azd env set NAME value`) in the environment, so each parameter reads one variable.
// An empty string means "the app's default" for the app settings (src/config.ts treats an empty setting as unset).
// `npm run infra:check` compiles this file against main.bicep (names and types) with sample values.
using 'main.bicep'

param environmentName = readEnvironmentVariable('AZURE_ENV_NAME')
param location = readEnvironmentVariable('AZURE_LOCATION')
param principalId = readEnvironmentVariable('AZURE_PRINCIPAL_ID', '')
param watchedSubscriptionIds = readEnvironmentVariable('WATCHED_SUBSCRIPTION_IDS', '')
param trustedSubscriptionIds = readEnvironmentVariable('TRUSTED_SUBSCRIPTION_IDS', '')
param approverGroupIds = readEnvironmentVariable('APPROVER_GROUP_IDS')
param allowSelfApproval = readEnvironmentVariable('ALLOW_SELF_APPROVAL', '')
param watchedResourceKinds = readEnvironmentVariable('WATCHED_RESOURCE_KINDS', '')
param subscriptionTenants = readEnvironmentVariable('SUBSCRIPTION_TENANTS', '')
param dashboardReaderGroupIds = readEnvironmentVariable('DASHBOARD_READER_GROUP_IDS', '')
param teamsChannelId = readEnvironmentVariable('TEAMS_CHANNEL_ID', '')
param teamsTeamId = readEnvironmentVariable('TEAMS_TEAM_ID', '')
param workflowsWebhookUrl = readEnvironmentVariable('WORKFLOWS_WEBHOOK_URL', '')
param botSku = readEnvironmentVariable('BOT_SKU', 'F0')
param sweepSchedule = readEnvironmentVariable('SWEEP_SCHEDULE', '0 */15 * * * *')
param reminderIntervalHours = readEnvironmentVariable('REMINDER_INTERVAL_HOURS', '')
param reminderMaxCount = readEnvironmentVariable('REMINDER_MAX_COUNT', '')
param expiryHours = readEnvironmentVariable('EXPIRY_HOURS', '')
param expiryAction = readEnvironmentVariable('EXPIRY_ACTION', '')
param expiryRejectText = readEnvironmentVariable('EXPIRY_REJECT_TEXT', '')
param stuckApplyMinutes = readEnvironmentVariable('STUCK_APPLY_MINUTES', '')
param linkTokenTtlHours = readEnvironmentVariable('LINK_TOKEN_TTL_HOURS', '')
param policyBase64 = readEnvironmentVariable('POLICY_BASE64', '')
param policyFile = readEnvironmentVariable('POLICY_FILE', '')
param authClientId = readEnvironmentVariable('AUTH_CLIENT_ID', '')
param denyUntrustedPrivateEndpoints = bool(readEnvironmentVariable('DENY_UNTRUSTED_PRIVATE_ENDPOINTS', 'false'))
param existingSystemTopicIds = readEnvironmentVariable('EXISTING_SYSTEM_TOPIC_IDS', '')
param alertEmail = readEnvironmentVariable('ALERT_EMAIL', '')

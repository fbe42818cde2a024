// Alerts that reach a person (issue 19): an action group (e-mail, optional) and log-search alert rules on the
// workspace the app, the host and the storage logs write to. infra/README.md's runbook says what each means and what
// to do. Without alertEmail the rules still fire and show in the portal (Monitor > Alerts), but nobody is mailed.

@description('Region of the alert rules (the workspace region).')
param location string

@description('Tags.')
param tags object

@description('Suffix of the resource names.')
param resourceToken string

@description('E-mail address that receives the alerts. Empty: no action group; alerts show in the portal only.')
param alertEmail string

@description('Resource id of the Log Analytics workspace (App Insights is workspace-based; storage logs go there too).')
param workspaceId string

@description('Minutes between two sweeps (from SWEEP_SCHEDULE).')
param sweepIntervalMinutes int

@description('Name of the apply queue\'s poison queue.')
param poisonQueueName string

@description('Blob container of the Event Grid dead letters.')
param deadLetterContainerName string

resource actionGroup 'Microsoft.Insights/actionGroups@2023-01-01' = if (!empty(alertEmail)) {
  name: 'ag-pecgate-${resourceToken}'
  location: 'global'
  tags: tags
  properties: {
    groupShortName: 'pecgate'
    enabled: true
    emailReceivers: [
      {
        name: 'operator'
        emailAddress: alertEmail
        useCommonAlertSchema: true
      }
    ]
  }
}

// Evaluated every 5 minutes over the last 15 (the sweep rule looks back two schedules instead). Each rule fires when
// its query returns at least one row (the sweep rule: when it returns none).
// Log alerts accept only some window sizes: the smallest one that covers two schedules.
var allowedWindowMinutes = [5, 10, 15, 30, 45, 60, 120, 180, 240, 300, 360, 1440, 2880]
var sweepWindowMinutes = first(filter(allowedWindowMinutes, w => w >= 2 * sweepIntervalMinutes)) ?? 2880

var rules = [
  {
    name: 'alert-lines'
    displayName: 'pec-gate: ALERT log line'
    description: 'The app logged a line starting with ALERT: a failure that will not fix itself (a card not delivered, a decision not applied, an invalid queue message, a permanent sweep failure). See the runbook in infra/README.md.'
    severity: 1
    // The app's log lines start with the trace label (src/observability/trace.ts), then the message; only a message
    // that itself starts with ALERT counts, not an ALERT quoted inside another message.
    query: 'AppTraces | where Message matches regex @"^(\\[requestId=\\S* correlationId=[^\\]]*\\] )?ALERT "'
    operator: 'GreaterThan'
    threshold: 0
    windowMinutes: 15
    frequencyMinutes: 5
  }
  {
    name: 'poison-queue'
    displayName: 'pec-gate: message in ${poisonQueueName}'
    description: 'The Functions host moved an apply message to ${poisonQueueName} after its last attempt: a recorded decision is not applied. See the runbook in infra/README.md.'
    severity: 1
    query: 'StorageQueueLogs | where OperationName == "PutMessage" and ObjectKey contains "/${poisonQueueName}/"'
    operator: 'GreaterThan'
    threshold: 0
    windowMinutes: 15
    frequencyMinutes: 5
  }
  {
    name: 'eventgrid-dead-letters'
    displayName: 'pec-gate: Event Grid dead letter'
    description: 'Event Grid could not deliver an event to pecEvents and wrote it to the ${deadLetterContainerName} container. The sweep still finds the PEC; see the runbook in infra/README.md.'
    severity: 2
    query: 'StorageBlobLogs | where OperationName in ("PutBlob", "PutBlockList", "AppendBlock") and ObjectKey contains "/${deadLetterContainerName}/"'
    operator: 'GreaterThan'
    threshold: 0
    windowMinutes: 15
    frequencyMinutes: 5
  }
  {
    name: 'sweep-stalled'
    displayName: 'pec-gate: no completed sweep in two schedules'
    description: 'The sweep function has not completed successfully within two schedules (${sweepWindowMinutes} minutes). Missed events are not caught, reminders and expiry stop. See the runbook in infra/README.md.'
    severity: 1
    query: 'AppRequests | where Name == "sweep" and Success == true'
    operator: 'LessThan'
    threshold: 1
    windowMinutes: sweepWindowMinutes
    frequencyMinutes: sweepWindowMinutes < 15 ? 5 : 15
  }
]

resource alertRules 'Microsoft.Insights/scheduledQueryRules@2026-03-01' = [
  for rule in rules: {
    name: 'alert-pecgate-${rule.name}-${resourceToken}'
    location: location
    tags: tags
    kind: 'LogAlert'
    properties: {
      displayName: rule.displayName
      description: rule.description
      severity: rule.severity
      enabled: true
      scopes: [workspaceId]
      evaluationFrequency: 'PT${rule.frequencyMinutes}M'
      windowSize: 'PT${rule.windowMinutes}M'
      criteria: {
        allOf: [
          {
            query: rule.query
            timeAggregation: 'Count'
            operator: rule.operator
            threshold: rule.threshold
            failingPeriods: {
              numberOfEvaluationPeriods: 1
              minFailingPeriodsToAlert: 1
            }
          }
        ]
      }
      autoMitigate: true
      actions: {
        actionGroups: empty(alertEmail) ? [] : [actionGroup!.id]
      }
    }
  }
]

output actionGroupId string = empty(alertEmail) ? '' : actionGroup!.id
output alertRuleNames string[] = [for (rule, i) in rules: alertRules[i].name]

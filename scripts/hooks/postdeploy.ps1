# Windows twin of postdeploy.sh (read its header): creates or updates the Event Grid event subscription on each watched
# subscription's system topic (infra/eventSubscription.bicep), after the code is deployed. Idempotent.
$ErrorActionPreference = 'Stop'
. "$PSScriptRoot/common.ps1"
$template = Join-Path $PSScriptRoot '../../infra/eventSubscription.bicep'

Import-AzdEnv @('EVENTGRID_SYSTEM_TOPIC_IDS', 'FUNCTION_APP_ID', 'FUNCTION_APP_HOST', 'AZURE_FUNCTION_APP_NAME', 'AZURE_RESOURCE_GROUP', 'STORAGE_ACCOUNT_ID', 'EVENTGRID_DEADLETTER_CONTAINER', 'EVENTGRID_DELIVERY', 'AZURE_ENV_NAME')
Assert-Vars @('EVENTGRID_SYSTEM_TOPIC_IDS', 'FUNCTION_APP_ID', 'STORAGE_ACCOUNT_ID', 'EVENTGRID_DEADLETTER_CONTAINER')
Assert-Az

$params = @(
    "functionAppResourceId=$($env:FUNCTION_APP_ID)",
    "deadLetterStorageAccountId=$($env:STORAGE_ACCOUNT_ID)",
    "deadLetterContainerName=$($env:EVENTGRID_DEADLETTER_CONTAINER)"
)
$delivery = if ($env:EVENTGRID_DELIVERY) { $env:EVENTGRID_DELIVERY.ToLower() } else { 'azurefunction' }
if ($delivery -eq 'webhook') {
    Assert-Vars @('AZURE_FUNCTION_APP_NAME', 'AZURE_RESOURCE_GROUP', 'FUNCTION_APP_HOST')
    $key = az functionapp keys list --only-show-errors --name $env:AZURE_FUNCTION_APP_NAME --resource-group $env:AZURE_RESOURCE_GROUP --query 'systemKeys.eventgrid_extension' -o tsv
    if (-not $key) { Write-HookError 'the Function App has no eventgrid_extension system key yet: is the code deployed?'; exit 1 }
    $params += @('deliveryMode=WebHook', "functionAppHostName=$($env:FUNCTION_APP_HOST)", "eventGridExtensionKey=$key")
} elseif ($delivery -ne 'azurefunction') {
    Write-HookError "EVENTGRID_DELIVERY must be azurefunction or webhook, not '$($env:EVENTGRID_DELIVERY)'"; exit 1
}

$envName = if ($env:AZURE_ENV_NAME) { $env:AZURE_ENV_NAME } else { 'app' }
foreach ($topic in ($env:EVENTGRID_SYSTEM_TOPIC_IDS -split ',' | ForEach-Object { $_.Trim() } | Where-Object { $_ })) {
    if ($topic -notmatch '^/subscriptions/([^/]+)/resourceGroups/([^/]+)/providers/Microsoft\.EventGrid/systemTopics/([^/]+)$') {
        Write-HookError "not a system topic id: $topic"; exit 1
    }
    $subscription, $group, $name = $Matches[1], $Matches[2], $Matches[3]
    Write-Host "Event subscription on $name (subscription $subscription, resource group $group)"
    foreach ($attempt in 1..6) {
        az deployment group create --only-show-errors --subscription $subscription --resource-group $group --name "pec-gate-events-$envName" --template-file $template --parameters "systemTopicName=$name" @params --output none
        if ($LASTEXITCODE -eq 0) { Write-Host '  ok'; break }
        if ($attempt -eq 6) {
            Write-HookError "could not create the event subscription on $topic. Check that pecEvents is listed (az functionapp function list), then run ./scripts/hooks/postdeploy.ps1 again (or with EVENTGRID_DELIVERY=webhook)."
            exit 1
        }
        Write-Host "  not yet (attempt $attempt/6); retrying in 30 s"
        Start-Sleep -Seconds 30
    }
}

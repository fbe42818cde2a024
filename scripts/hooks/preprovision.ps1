# Windows twin of preprovision.sh (read its header): existing system topics of the watched subscriptions go to
# EXISTING_SYSTEM_TOPIC_IDS, and the custom role is deployed alone and awaited in every watched subscription before
# infra/main.bicep assigns it. Idempotent.
$ErrorActionPreference = 'Stop'
. "$PSScriptRoot/common.ps1"
$roleTemplate = Join-Path $PSScriptRoot '../../infra/modules/pecApproverRole.bicep'

Import-AzdEnv @('AZURE_ENV_NAME', 'AZURE_LOCATION', 'AZURE_SUBSCRIPTION_ID', 'WATCHED_SUBSCRIPTION_IDS', 'WATCHED_RESOURCE_KINDS')
Assert-Vars @('AZURE_ENV_NAME', 'AZURE_LOCATION', 'AZURE_SUBSCRIPTION_ID')
Assert-Az

$home_ = $env:AZURE_SUBSCRIPTION_ID.ToLower()
$watched = @("$($env:WATCHED_SUBSCRIPTION_IDS)" -split ',' | ForEach-Object { $_.Replace(' ', '').ToLower() } | Where-Object { $_ })
if ($watched.Count -eq 0) { $watched = @($home_) }

$ours = "evgt-pecgate-$($env:AZURE_ENV_NAME)"
$existing = @()
foreach ($subscription in $watched) {
    $ids = @(az eventgrid system-topic list --only-show-errors --subscription $subscription --query "[?topicType=='Microsoft.Resources.Subscriptions'].id" -o tsv)
    if ($LASTEXITCODE -ne 0) { Write-HookError "listing the system topics of $subscription failed"; exit 1 }
    foreach ($topic in $ids) {
        if (-not $topic) { continue }
        if ($topic.Split('/')[-1] -eq $ours) { continue }
        Write-Host "Subscription $subscription already has the system topic ${topic}: using it"
        $principal = az eventgrid system-topic show --only-show-errors --ids $topic --query 'identity.principalId' -o tsv
        if (-not $principal) {
            Write-HookWarning "The system topic $topic has no system-assigned identity, so it cannot dead-letter undeliverable events
into our storage (shared keys are off). Give it one:  az eventgrid system-topic update --ids $topic --identity systemassigned"
        }
        $existing += $topic
    }
}
azd env set EXISTING_SYSTEM_TOPIC_IDS ($existing -join ',')

$paramsFile = New-TemporaryFile
$scopes = ($watched | ForEach-Object { "`"$_`"" }) -join ','
Set-Content -Path $paramsFile -Value "{`"environmentName`":{`"value`":`"$($env:AZURE_ENV_NAME)`"},`"location`":{`"value`":`"$($env:AZURE_LOCATION)`"},`"assignableSubscriptionIds`":{`"value`":[$scopes]},`"watchedResourceKinds`":{`"value`":`"$($env:WATCHED_RESOURCE_KINDS)`"}}" -NoNewline
$role = az deployment sub create --only-show-errors --subscription $home_ --location $env:AZURE_LOCATION --name "pecgate-role-$($env:AZURE_ENV_NAME)" --template-file $roleTemplate --parameters "@$paramsFile" --query 'properties.outputs.name.value' -o tsv
$code = $LASTEXITCODE
Remove-Item $paramsFile
if ($code -ne 0) { Write-HookError 'deploying the custom role failed'; exit 1 }
Write-Host "Custom role $role deployed"
$delay = if ($env:PEC_GATE_HOOK_RETRY_SECONDS) { [int]$env:PEC_GATE_HOOK_RETRY_SECONDS } else { 10 }
foreach ($subscription in $watched) {
    foreach ($attempt in 1..12) {
        $found = az role definition list --only-show-errors --name $role --scope "/subscriptions/$subscription" --query '[0].name' -o tsv
        if ($found -eq $role) { Write-Host "  visible in $subscription"; break }
        if ($attempt -eq 12) {
            Write-HookWarning "The custom role $role is not visible in $subscription yet; if the provision fails with
RoleDefinitionDoesNotExist, run azd provision again in a minute."
            break
        }
        Start-Sleep -Seconds $delay
    }
}

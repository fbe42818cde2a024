# Windows twin of grant-graph-permissions.sh (read its header): grants the app's managed identity the Microsoft Graph
# application roles GroupMember.Read.All and User.Read.All (and TeamsAppInstallation.ReadWriteSelfForTeam.All with
# GRANT_TEAMS_APP_INSTALLATION=true) through `az rest`. Idempotent. Without the rights to grant app roles it prints the
# commands for an administrator and exits 0 with a warning; any other failure exits 1.
$ErrorActionPreference = 'Stop'
. "$PSScriptRoot/common.ps1"

Import-AzdEnv @('MANAGED_IDENTITY_PRINCIPAL_ID', 'GRANT_TEAMS_APP_INSTALLATION')
Assert-Vars @('MANAGED_IDENTITY_PRINCIPAL_ID')
Assert-Az

$graphBase = if ($env:GRAPH_ENDPOINT) { $env:GRAPH_ENDPOINT } else { 'https://graph.microsoft.com' }
$graph = "$($graphBase.TrimEnd('/'))/v1.0"
$graphAppId = '00000003-0000-0000-c000-000000000000'
$graphSpUrl = "$graph/servicePrincipals(appId='$graphAppId')"
$principal = $env:MANAGED_IDENTITY_PRINCIPAL_ID
$roles = @('GroupMember.Read.All', 'User.Read.All')
if ($env:GRANT_TEAMS_APP_INSTALLATION -in @('true', '1', 'yes')) { $roles += 'TeamsAppInstallation.ReadWriteSelfForTeam.All' }

function Show-ManualSteps([string]$Why) {
    Write-HookWarning "Could not grant the Microsoft Graph application permissions ($Why).
An administrator (Privileged Role Administrator or Global Administrator) must run, once (bash syntax):"
    foreach ($role in $roles) {
        Write-Host "  graphSp=`$(az rest --method get --url `"$graphSpUrl`" --query id -o tsv)"
        Write-Host "  roleId=`$(az rest --method get --url `"$graphSpUrl`" --query `"appRoles[?value=='$role'].id | [0]`" -o tsv)"
        Write-Host "  az rest --method post --url `"$graph/servicePrincipals/$principal/appRoleAssignments`" --headers Content-Type=application/json --body `"{\`"principalId\`":\`"$principal\`",\`"resourceId\`":\`"`$graphSp\`",\`"appRoleId\`":\`"`$roleId\`"}`""
    }
    Write-Host "or re-run this script signed in as one. Until then the app refuses every approver."
}

function Test-Denied([string]$Text) { $Text -match 'Authorization_RequestDenied|Insufficient privileges|Forbidden|403' }

$graphSp = az rest --only-show-errors --method get --url $graphSpUrl --query id -o tsv 2>&1
if ($LASTEXITCODE -ne 0) {
    if (Test-Denied "$graphSp") { Show-ManualSteps 'cannot read the Microsoft Graph service principal'; exit 0 }
    Write-HookError "reading the Microsoft Graph service principal: $graphSp"; exit 1
}
# value<TAB>id lines, as the bash twin reads them.
$roleTable = @(az rest --only-show-errors --method get --url $graphSpUrl --query "appRoles[?contains(allowedMemberTypes, 'Application')].[value, id]" -o tsv)

$assigned = @()
foreach ($attempt in 1..6) {
    $out = az rest --only-show-errors --method get --url "$graph/servicePrincipals/$principal/appRoleAssignments" --query "value[?resourceId=='$graphSp'].appRoleId" -o tsv 2>&1
    if ($LASTEXITCODE -eq 0) { $assigned = @($out); break }
    if (Test-Denied "$out") { Show-ManualSteps "cannot read the identity's app role assignments"; exit 0 }
    if ($attempt -eq 6) { Write-HookError "reading the app role assignments of ${principal}: $out"; exit 1 }
    Write-Host "The identity $principal is not visible in Graph yet; retrying in 10 s ($attempt/5)"
    Start-Sleep -Seconds 10
}

foreach ($role in $roles) {
    $roleId = ($roleTable | Where-Object { ($_ -split "`t")[0] -eq $role } | Select-Object -First 1)
    if ($roleId) { $roleId = ($roleId -split "`t")[1] }
    if (-not $roleId) { Write-HookError "Microsoft Graph has no application role $role"; exit 1 }
    if ($assigned -contains $roleId) { Write-Host "Graph ${role}: already granted"; continue }
    $body = @{ principalId = $principal; resourceId = $graphSp; appRoleId = $roleId } | ConvertTo-Json -Compress
    $bodyFile = New-TemporaryFile
    Set-Content -Path $bodyFile -Value $body -NoNewline
    $out = az rest --only-show-errors --method post --url "$graph/servicePrincipals/$principal/appRoleAssignments" --headers Content-Type=application/json --body "@$bodyFile" --output none 2>&1
    $code = $LASTEXITCODE
    Remove-Item $bodyFile
    if ($code -eq 0) { Write-Host "Graph ${role}: granted" }
    elseif (Test-Denied "$out") { Show-ManualSteps 'the signed-in account may not grant application permissions'; exit 0 }
    elseif ("$out" -match 'Permission being assigned already exists') { Write-Host "Graph ${role}: already granted" }
    else { Write-HookError "granting ${role}: $out"; exit 1 }
}
Write-Host "Microsoft Graph permissions of ${principal}: $($roles -join ' ')"

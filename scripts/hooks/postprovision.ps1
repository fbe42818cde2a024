# Windows twin of postprovision.sh (read its header): Graph permissions for the app's identity, the sign-in app
# registration's redirect URI and federated credential (with AUTH_CLIENT_ID), and a reminder of missing settings.
$ErrorActionPreference = 'Stop'
. "$PSScriptRoot/common.ps1"

& "$PSScriptRoot/grant-graph-permissions.ps1"
$status = $LASTEXITCODE

Import-AzdEnv @('AUTH_CLIENT_ID', 'AUTH_IDENTITY_PRINCIPAL_ID', 'FUNCTION_APP_HOST', 'AZURE_TENANT_ID', 'AZURE_ENV_NAME', 'TEAMS_CHANNEL_ID', 'WORKFLOWS_WEBHOOK_URL')

if ($env:AUTH_CLIENT_ID) {
    Assert-Vars @('FUNCTION_APP_HOST', 'AZURE_TENANT_ID')
    Assert-Az
    $app = $env:AUTH_CLIENT_ID
    $callback = "https://$($env:FUNCTION_APP_HOST)/.auth/login/aad/callback"
    $uris = @(az ad app show --only-show-errors --id $app --query 'web.redirectUris' -o tsv 2>$null)
    if ($LASTEXITCODE -ne 0) {
        Write-HookWarning "Cannot read the app registration $app. Its owner must add the redirect URI $callback (Web platform)."
    } elseif ($uris -notcontains $callback) {
        az ad app update --only-show-errors --id $app --web-redirect-uris @($uris + $callback)
        if ($LASTEXITCODE -eq 0) { Write-Host "Sign-in: added the redirect URI $callback" }
        else { Write-HookWarning "Could not add the redirect URI $callback to the app registration ${app}: its owner must add it." }
    }
    if (-not $env:AUTH_IDENTITY_PRINCIPAL_ID) {
        az ad app update --only-show-errors --id $app --enable-id-token-issuance true
        if ($LASTEXITCODE -ne 0) { Write-HookWarning "Enable `"ID tokens`" (implicit grant) on the app registration $app, or sign-in fails." }
    } else {
        $name = "pec-gate-$(if ($env:AZURE_ENV_NAME) { $env:AZURE_ENV_NAME } else { 'app' })"
        $params = @{
            name        = $name
            issuer      = "https://login.microsoftonline.com/$($env:AZURE_TENANT_ID)/v2.0"
            subject     = $env:AUTH_IDENTITY_PRINCIPAL_ID
            audiences   = @('api://AzureADTokenExchange')
            description = 'pec-gate App Service Authentication (managed identity instead of a secret)'
        } | ConvertTo-Json -Compress
        $existing = az ad app federated-credential list --only-show-errors --id $app --query "[?subject=='$($env:AUTH_IDENTITY_PRINCIPAL_ID)'].name" -o tsv 2>$null
        if ($existing) { Write-Host "Sign-in: federated credential present ($existing)" }
        else {
            $file = New-TemporaryFile
            Set-Content -Path $file -Value $params -NoNewline
            az ad app federated-credential create --only-show-errors --id $app --parameters "@$file" --output none
            $code = $LASTEXITCODE
            Remove-Item $file
            if ($code -eq 0) { Write-Host "Sign-in: added the federated credential for $($env:AUTH_IDENTITY_PRINCIPAL_ID)" }
            else { Write-HookWarning "Could not add the federated credential to the app registration $app. Its owner must run:`n  az ad app federated-credential create --id $app --parameters '$params'" }
        }
    }
}

if (-not $env:TEAMS_CHANNEL_ID -and -not $env:WORKFLOWS_WEBHOOK_URL) {
    Write-HookWarning "Neither TEAMS_CHANNEL_ID nor WORKFLOWS_WEBHOOK_URL is set: the app will refuse to start until one is.
Install the Teams app in the approvers' team (see infra/README.md), then:  azd env set TEAMS_CHANNEL_ID '19:...@thread.tacv2'; azd provision"
}
exit $status

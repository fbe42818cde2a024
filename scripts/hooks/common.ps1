# Shared by the azd hooks on Windows (dot-sourced). azd passes the environment's values to hooks as environment
# variables; when a script is run by hand, the missing ones are read from `azd env get-values`.

function Write-HookWarning([string]$Message) { Write-Host "`nWARNING: $Message" -ForegroundColor Yellow }
function Write-HookError([string]$Message) { Write-Host "`nERROR: $Message" -ForegroundColor Red }

function Import-AzdEnv([string[]]$Names) {
    if (-not ($Names | Where-Object { -not [Environment]::GetEnvironmentVariable($_) })) { return }
    if (-not (Get-Command azd -ErrorAction SilentlyContinue)) { return }
    foreach ($line in (azd env get-values 2>$null)) {
        if ($line -match '^([A-Za-z_][A-Za-z0-9_]*)="(.*)"$') {
            $key = $Matches[1]
            $value = $Matches[2] -replace '\\"', '"' -replace '\\\\', '\'
            if ($Names -contains $key -and -not [Environment]::GetEnvironmentVariable($key)) {
                [Environment]::SetEnvironmentVariable($key, $value)
            }
        }
    }
}

function Assert-Vars([string[]]$Names) {
    $absent = @($Names | Where-Object { -not [Environment]::GetEnvironmentVariable($_) })
    if ($absent.Count -gt 0) {
        Write-HookError "missing $($absent -join ', '): run ``azd provision`` first (outputs of infra/main.bicep), or set them"
        exit 1
    }
}

function Assert-Az {
    if (-not (Get-Command az -ErrorAction SilentlyContinue)) {
        Write-HookError 'the Azure CLI (az) is required: https://learn.microsoft.com/cli/azure/install-azure-cli'
        exit 1
    }
    az account show --only-show-errors 2>$null | Out-Null
    if ($LASTEXITCODE -ne 0) {
        Write-HookError 'the Azure CLI is not signed in: run `az login` (azd''s login does not sign in az)'
        exit 1
    }
}

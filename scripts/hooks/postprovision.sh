#!/usr/bin/env bash
# azd postprovision hook: the steps after `azd provision` that ARM templates cannot do, because they are Microsoft
# Entra (Graph) objects rather than Azure resources. Each is idempotent and says what to do by hand when the signed-in
# account lacks the rights.
#   1. Graph application permissions for the app's managed identity (grant-graph-permissions.sh)
#   2. with AUTH_CLIENT_ID: the sign-in app registration's redirect URI and its federated credential (the dedicated
#      managed identity that replaces a client secret)
#   3. a reminder of the settings the app still needs (TEAMS_CHANNEL_ID)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source=scripts/hooks/lib.sh
. "$here/lib.sh"

status=0
"$here/grant-graph-permissions.sh" || status=$?

load_azd_env AUTH_CLIENT_ID AUTH_IDENTITY_PRINCIPAL_ID FUNCTION_APP_HOST AZURE_TENANT_ID AZURE_ENV_NAME \
    TEAMS_CHANNEL_ID WORKFLOWS_WEBHOOK_URL

configure_sign_in() {
    local app="$AUTH_CLIENT_ID" callback="https://$FUNCTION_APP_HOST/.auth/login/aad/callback" uris
    if ! uris=$(az ad app show --only-show-errors --id "$app" --query 'web.redirectUris' -o tsv 2>&1); then
        warn "Cannot read the app registration $app ($uris). Its owner must add the redirect URI $callback (Web platform)."
        return 0
    fi
    if grep -qxF "$callback" <<<"$uris"; then
        info "Sign-in: redirect URI present"
    else
        # shellcheck disable=SC2086 # one URI per word
        if az ad app update --only-show-errors --id "$app" --web-redirect-uris $uris "$callback"; then
            info "Sign-in: added the redirect URI $callback"
        else
            warn "Could not add the redirect URI $callback to the app registration $app: its owner must add it (Web platform)."
        fi
    fi
    if [ -z "${AUTH_IDENTITY_PRINCIPAL_ID:-}" ]; then
        # authUseManagedIdentityCredential=false: the implicit flow, which needs ID tokens from the authorize endpoint.
        az ad app update --only-show-errors --id "$app" --enable-id-token-issuance true ||
            warn "Enable \"ID tokens\" (implicit grant) on the app registration $app, or sign-in fails."
        return 0
    fi
    local issuer="https://login.microsoftonline.com/$AZURE_TENANT_ID/v2.0" name="pec-gate-${AZURE_ENV_NAME:-app}"
    local params="{\"name\":\"$name\",\"issuer\":\"$issuer\",\"subject\":\"$AUTH_IDENTITY_PRINCIPAL_ID\",\"audiences\":[\"api://AzureADTokenExchange\"],\"description\":\"pec-gate App Service Authentication (managed identity instead of a secret)\"}"
    local existing
    existing=$(az ad app federated-credential list --only-show-errors --id "$app" \
        --query "[?subject=='$AUTH_IDENTITY_PRINCIPAL_ID'].name" -o tsv 2>/dev/null || true)
    if [ -n "$existing" ]; then
        info "Sign-in: federated credential present ($existing)"
    elif az ad app federated-credential create --only-show-errors --id "$app" --parameters "$params" --output none; then
        info "Sign-in: added the federated credential for the managed identity $AUTH_IDENTITY_PRINCIPAL_ID"
    else
        warn "Could not add the federated credential to the app registration $app. Its owner must run:
  az ad app federated-credential create --id $app --parameters '$params'
Until then sign-in to the web page fails."
    fi
}

if [ -n "${AUTH_CLIENT_ID:-}" ]; then
    if require_vars FUNCTION_APP_HOST AZURE_TENANT_ID && require_az; then
        configure_sign_in
    else
        status=1
    fi
fi

if [ -z "${TEAMS_CHANNEL_ID:-}" ] && [ -z "${WORKFLOWS_WEBHOOK_URL:-}" ]; then
    warn "Neither TEAMS_CHANNEL_ID nor WORKFLOWS_WEBHOOK_URL is set: the app will refuse to start until one is.
Install the Teams app in the approvers' team (npm run teams-app, see infra/README.md), then:
  azd env set TEAMS_CHANNEL_ID '19:...@thread.tacv2' && azd provision"
fi
exit "$status"

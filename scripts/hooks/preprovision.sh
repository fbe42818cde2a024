#!/usr/bin/env bash
# azd preprovision hook: what must exist or be known before infra/main.bicep runs.
#   1. Existing system topics: Event Grid allows one system topic per source, so a watched subscription that already
#      has a Microsoft.Resources.Subscriptions topic (another tool, another environment) would fail the deployment.
#      Their ids go to EXISTING_SYSTEM_TOPIC_IDS, and main.bicep uses them instead of creating one.
#   2. The custom role: deployed alone (infra/modules/pecApproverRole.bicep) and awaited in every watched subscription,
#      so main.bicep's role assignments never meet a definition that has not replicated yet (RoleDefinitionDoesNotExist).
# Idempotent. Reads AZURE_ENV_NAME, AZURE_LOCATION, AZURE_SUBSCRIPTION_ID (set by azd), WATCHED_SUBSCRIPTION_IDS and
# WATCHED_RESOURCE_KINDS.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source=scripts/hooks/lib.sh
. "$here/lib.sh"
role_template="$here/../../infra/modules/pecApproverRole.bicep"

load_azd_env AZURE_ENV_NAME AZURE_LOCATION AZURE_SUBSCRIPTION_ID WATCHED_SUBSCRIPTION_IDS WATCHED_RESOURCE_KINDS
require_vars AZURE_ENV_NAME AZURE_LOCATION AZURE_SUBSCRIPTION_ID || exit 1
require_az || exit 1

home=$(tr '[:upper:]' '[:lower:]' <<<"$AZURE_SUBSCRIPTION_ID")
watched=()
IFS=',' read -r -a listed <<<"${WATCHED_SUBSCRIPTION_IDS:-}"
for id in "${listed[@]}"; do
    id=$(tr -d ' ' <<<"$id" | tr '[:upper:]' '[:lower:]')
    [ -n "$id" ] && watched+=("$id")
done
[ "${#watched[@]}" -gt 0 ] || watched=("$home")

# 1. Existing system topics of the watched subscriptions (ours, evgt-pecgate-<env>, is managed by the Bicep).
ours="evgt-pecgate-$AZURE_ENV_NAME"
existing=()
for subscription in "${watched[@]}"; do
    ids=$(az eventgrid system-topic list --only-show-errors --subscription "$subscription" \
        --query "[?topicType=='Microsoft.Resources.Subscriptions'].id" -o tsv)
    while IFS= read -r topic; do
        [ -n "$topic" ] || continue
        [ "${topic##*/}" = "$ours" ] && continue
        info "Subscription $subscription already has the system topic $topic: using it"
        principal=$(az eventgrid system-topic show --only-show-errors --ids "$topic" --query 'identity.principalId' -o tsv)
        if [ -z "$principal" ]; then
            warn "The system topic $topic has no system-assigned identity, so it cannot dead-letter undeliverable events
into our storage (shared keys are off). Give it one:  az eventgrid system-topic update --ids $topic --identity systemassigned"
        fi
        existing+=("$topic")
    done <<<"$ids"
done
joined=$(IFS=','; echo "${existing[*]}")
azd env set EXISTING_SYSTEM_TOPIC_IDS "$joined"

# 2. The custom role, then wait until each watched subscription sees it.
params_file=$(mktemp)
trap 'rm -f "$params_file"' EXIT
scopes=$(printf '"%s",' "${watched[@]}")
cat >"$params_file" <<JSON
{"environmentName":{"value":"$AZURE_ENV_NAME"},"location":{"value":"$AZURE_LOCATION"},"assignableSubscriptionIds":{"value":[${scopes%,}]},"watchedResourceKinds":{"value":"${WATCHED_RESOURCE_KINDS:-}"}}
JSON
role=$(az deployment sub create --only-show-errors --subscription "$home" --location "$AZURE_LOCATION" \
    --name "pecgate-role-$AZURE_ENV_NAME" --template-file "$role_template" --parameters "@$params_file" \
    --query 'properties.outputs.name.value' -o tsv)
info "Custom role $role deployed"
for subscription in "${watched[@]}"; do
    for attempt in 1 2 3 4 5 6 7 8 9 10 11 12; do
        found=$(az role definition list --only-show-errors --name "$role" --scope "/subscriptions/$subscription" \
            --query '[0].name' -o tsv)
        if [ "$found" = "$role" ]; then
            info "  visible in $subscription"
            break
        fi
        if [ "$attempt" = 12 ]; then
            warn "The custom role $role is not visible in $subscription yet; if the provision fails with
RoleDefinitionDoesNotExist, run azd provision again in a minute."
            break
        fi
        sleep "${PEC_GATE_HOOK_RETRY_SECONDS:-10}"
    done
done

#!/usr/bin/env bash
# azd postdeploy hook: creates (or updates in place) the Event Grid event subscription on each watched subscription's
# system topic, delivering to the pecEvents function. It runs after the code is deployed because Event Grid checks the
# destination function when the subscription is created. Idempotent: it redeploys infra/eventSubscription.bicep, an ARM
# PUT, every time.
#
# Reads the Bicep outputs azd hands to hooks (or `azd env get-values` when run by hand):
#   EVENTGRID_SYSTEM_TOPIC_IDS      comma-separated system topic ids, one per watched subscription
#   FUNCTION_APP_ID, FUNCTION_APP_HOST, AZURE_FUNCTION_APP_NAME, AZURE_RESOURCE_GROUP
#   STORAGE_ACCOUNT_ID, EVENTGRID_DEADLETTER_CONTAINER
# Optional: EVENTGRID_DELIVERY=webhook delivers to the extension's webhook with its system key instead of the
# AzureFunction destination (for a setup where the AzureFunction destination is refused).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source=scripts/hooks/lib.sh
. "$here/lib.sh"
template="$here/../../infra/eventSubscription.bicep"

load_azd_env EVENTGRID_SYSTEM_TOPIC_IDS FUNCTION_APP_ID FUNCTION_APP_HOST AZURE_FUNCTION_APP_NAME \
    AZURE_RESOURCE_GROUP STORAGE_ACCOUNT_ID EVENTGRID_DEADLETTER_CONTAINER EVENTGRID_DELIVERY AZURE_ENV_NAME
require_vars EVENTGRID_SYSTEM_TOPIC_IDS FUNCTION_APP_ID STORAGE_ACCOUNT_ID EVENTGRID_DEADLETTER_CONTAINER
require_az

params=(
    "functionAppResourceId=$FUNCTION_APP_ID"
    "deadLetterStorageAccountId=$STORAGE_ACCOUNT_ID"
    "deadLetterContainerName=$EVENTGRID_DEADLETTER_CONTAINER"
)
case "${EVENTGRID_DELIVERY:-azurefunction}" in
    azurefunction | AzureFunction) ;;
    webhook | WebHook)
        require_vars AZURE_FUNCTION_APP_NAME AZURE_RESOURCE_GROUP FUNCTION_APP_HOST
        key=$(az functionapp keys list --only-show-errors --name "$AZURE_FUNCTION_APP_NAME" \
            --resource-group "$AZURE_RESOURCE_GROUP" --query 'systemKeys.eventgrid_extension' -o tsv)
        if [ -z "$key" ]; then
            fail "the Function App has no eventgrid_extension system key yet: is the code deployed?"
            exit 1
        fi
        params+=("deliveryMode=WebHook" "functionAppHostName=$FUNCTION_APP_HOST" "eventGridExtensionKey=$key")
        ;;
    *)
        fail "EVENTGRID_DELIVERY must be azurefunction or webhook, not '$EVENTGRID_DELIVERY'"
        exit 1
        ;;
esac

topic_pattern='^/subscriptions/([^/]+)/resourceGroups/([^/]+)/providers/Microsoft\.EventGrid/systemTopics/([^/]+)$'
IFS=',' read -r -a topics <<<"$EVENTGRID_SYSTEM_TOPIC_IDS"
for topic in "${topics[@]}"; do
    topic="${topic// /}"
    [ -n "$topic" ] || continue
    if [[ ! "$topic" =~ $topic_pattern ]]; then
        fail "not a system topic id: $topic"
        exit 1
    fi
    subscription="${BASH_REMATCH[1]}" group="${BASH_REMATCH[2]}" name="${BASH_REMATCH[3]}"
    info "Event subscription on $name (subscription $subscription, resource group $group)"
    # Right after a deployment the host may not have indexed pecEvents yet, and Event Grid refuses a destination
    # function it cannot find: retry for a few minutes.
    for attempt in 1 2 3 4 5 6; do
        if az deployment group create --only-show-errors \
            --subscription "$subscription" --resource-group "$group" \
            --name "pec-gate-events-${AZURE_ENV_NAME:-app}" \
            --template-file "$template" \
            --parameters systemTopicName="$name" "${params[@]}" \
            --output none; then
            info "  ok"
            break
        fi
        if [ "$attempt" = 6 ]; then
            fail "could not create the event subscription on $topic. Check that pecEvents is listed in the Function App
(az functionapp function list -g ${AZURE_RESOURCE_GROUP:-<group>} -n ${AZURE_FUNCTION_APP_NAME:-<app>}), then run
./scripts/hooks/postdeploy.sh again (or EVENTGRID_DELIVERY=webhook ./scripts/hooks/postdeploy.sh)."
            exit 1
        fi
        info "  not yet (attempt $attempt/6); retrying in 30 s"
        sleep 30
    done
done

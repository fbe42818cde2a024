#!/usr/bin/env bash
# Grants the Function App's user-assigned managed identity the Microsoft Graph *application* permissions pec-gate uses:
#
#   GroupMember.Read.All   approver checks (transitive members of APPROVER_GROUP_IDS) and the approvers a reminder mentions
#   User.Read.All          the approver's UPN, named in the connection's description
#   TeamsAppInstallation.ReadWriteSelfForTeam.All
#                          only with GRANT_TEAMS_APP_INSTALLATION=true: lets the app install its own Teams app in a team
#
# A managed identity has no "API permissions" page: the grant is an app role assignment on its service principal,
# made here through Graph (`az rest` POST servicePrincipals/{id}/appRoleAssignments). It needs a Privileged Role
# Administrator or Global Administrator (or Application Administrator with the right to consent to app roles).
#
# Idempotent: roles already assigned are skipped. Runs as azd's postprovision hook (through postprovision.sh), or by
# hand:  MANAGED_IDENTITY_PRINCIPAL_ID=<object id> ./scripts/hooks/grant-graph-permissions.sh
# If the signed-in user may not grant app roles, it prints the exact commands for an admin and exits 0 with a warning,
# so `azd up` carries on; the approver checks fail (and are refused, never let through) until someone runs them.
# Any other failure exits 1.
set -euo pipefail
# shellcheck source=scripts/hooks/lib.sh
. "$(dirname "$0")/lib.sh"

load_azd_env MANAGED_IDENTITY_PRINCIPAL_ID GRANT_TEAMS_APP_INSTALLATION
require_vars MANAGED_IDENTITY_PRINCIPAL_ID || exit 1
require_az || exit 1

graph="${GRAPH_ENDPOINT:-https://graph.microsoft.com}"
graph="${graph%/}/v1.0"
graphAppId='00000003-0000-0000-c000-000000000000'
principal="$MANAGED_IDENTITY_PRINCIPAL_ID"

roles=(GroupMember.Read.All User.Read.All)
case "${GRANT_TEAMS_APP_INSTALLATION:-false}" in
    true | 1 | yes) roles+=(TeamsAppInstallation.ReadWriteSelfForTeam.All) ;;
esac

manual_steps() {
    local role
    warn "Could not grant the Microsoft Graph application permissions ($*).
An administrator (Privileged Role Administrator or Global Administrator) must run, once:

  graphSp=\$(az rest --method get --url \"$graph/servicePrincipals(appId='$graphAppId')\" --query id -o tsv)"
    for role in "${roles[@]}"; do
        cat >&2 <<MANUAL
  roleId=\$(az rest --method get --url "$graph/servicePrincipals(appId='$graphAppId')" \\
      --query "appRoles[?value=='$role' && contains(allowedMemberTypes, 'Application')].id | [0]" -o tsv)
  az rest --method post --url "$graph/servicePrincipals/$principal/appRoleAssignments" \\
      --headers Content-Type=application/json \\
      --body "{\"principalId\":\"$principal\",\"resourceId\":\"\$graphSp\",\"appRoleId\":\"\$roleId\"}"
MANUAL
    done
    cat >&2 <<MANUAL

or re-run this script signed in as one:  MANAGED_IDENTITY_PRINCIPAL_ID=$principal $0
Until then the app refuses every approver (it cannot check group membership).
MANUAL
}

is_denied() {
    grep -qiE 'Authorization_RequestDenied|Insufficient privileges|Forbidden|403' <<<"$1"
}

# The Graph service principal and the ids of the roles, by value.
if ! graphSp=$(az rest --only-show-errors --method get --url "$graph/servicePrincipals(appId='$graphAppId')" --query id -o tsv 2>&1); then
    if is_denied "$graphSp"; then
        manual_steps "cannot read the Microsoft Graph service principal"
        exit 0
    fi
    fail "reading the Microsoft Graph service principal: $graphSp"
    exit 1
fi
roleTable=$(az rest --only-show-errors --method get --url "$graph/servicePrincipals(appId='$graphAppId')" \
    --query "appRoles[?contains(allowedMemberTypes, 'Application')].[value, id]" -o tsv)

# The roles the identity already holds. A managed identity created a minute ago may not have replicated to Graph yet.
assigned=''
for attempt in 1 2 3 4 5 6; do
    if assigned=$(az rest --only-show-errors --method get --url "$graph/servicePrincipals/$principal/appRoleAssignments" \
        --query "value[?resourceId=='$graphSp'].appRoleId" -o tsv 2>&1); then
        break
    fi
    if is_denied "$assigned"; then
        manual_steps "cannot read the identity's app role assignments"
        exit 0
    fi
    if [ "$attempt" = 6 ]; then
        fail "reading the app role assignments of $principal: $assigned"
        exit 1
    fi
    info "The identity $principal is not visible in Graph yet; retrying in 10 s ($attempt/5)"
    sleep 10
done

for role in "${roles[@]}"; do
    roleId=$(awk -F '\t' -v v="$role" '$1 == v { print $2 }' <<<"$roleTable")
    if [ -z "$roleId" ]; then
        fail "Microsoft Graph has no application role $role"
        exit 1
    fi
    if grep -qix "$roleId" <<<"$assigned"; then
        info "Graph $role: already granted"
        continue
    fi
    body="{\"principalId\":\"$principal\",\"resourceId\":\"$graphSp\",\"appRoleId\":\"$roleId\"}"
    if out=$(az rest --only-show-errors --method post --url "$graph/servicePrincipals/$principal/appRoleAssignments" \
        --headers Content-Type=application/json --body "$body" --output none 2>&1); then
        info "Graph $role: granted"
    elif is_denied "$out"; then
        manual_steps "the signed-in account may not grant application permissions"
        exit 0
    elif grep -qi 'Permission being assigned already exists' <<<"$out"; then
        info "Graph $role: already granted"
    else
        fail "granting $role: $out"
        exit 1
    fi
done
info "Microsoft Graph permissions of $principal: ${roles[*]}"

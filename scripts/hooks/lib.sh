#!/usr/bin/env bash
# Shared by the azd hooks (sourced, not run). azd passes the environment's values (.azure/<env>/.env, including the
# Bicep outputs) to hooks as environment variables; when a script is run by hand, the missing ones are read from
# `azd env get-values`, so `./scripts/hooks/postdeploy.sh` works outside azd too.

warn() { printf '\n\033[33mWARNING: %s\033[0m\n' "$*" >&2; }
fail() { printf '\n\033[31mERROR: %s\033[0m\n' "$*" >&2; }
info() { printf '%s\n' "$*"; }

# load_azd_env NAME...: fills in each NAME that is unset from `azd env get-values` (KEY="value" lines).
load_azd_env() {
    local missing=0 name
    for name in "$@"; do
        [ -n "${!name:-}" ] || missing=1
    done
    [ "$missing" = 1 ] || return 0
    command -v azd >/dev/null 2>&1 || return 0
    local line key value
    while IFS= read -r line; do
        [[ "$line" =~ ^([A-Za-z_][A-Za-z0-9_]*)=\"(.*)\"$ ]] || continue
        key="${BASH_REMATCH[1]}"
        value="${BASH_REMATCH[2]}"
        value="${value//\\\"/\"}"
        value="${value//\\\\/\\}"
        for name in "$@"; do
            if [ "$key" = "$name" ] && [ -z "${!name:-}" ]; then
                printf -v "$name" '%s' "$value"
                export "${name?}"
            fi
        done
    done < <(azd env get-values 2>/dev/null || true)
}

# require_vars NAME...: fails naming every NAME that is still empty.
require_vars() {
    local name absent=()
    for name in "$@"; do
        [ -n "${!name:-}" ] || absent+=("$name")
    done
    if [ "${#absent[@]}" -gt 0 ]; then
        fail "missing ${absent[*]}: run \`azd provision\` first (these are outputs of infra/main.bicep), or export them"
        return 1
    fi
}

# require_az: the Azure CLI, signed in (azd's own login is separate: `az login` as well as `azd auth login`).
require_az() {
    if ! command -v az >/dev/null 2>&1; then
        fail "the Azure CLI (az) is required: https://learn.microsoft.com/cli/azure/install-azure-cli"
        return 1
    fi
    if ! az account show --only-show-errors >/dev/null 2>&1; then
        fail "the Azure CLI is not signed in: run \`az login\` (azd's login does not sign in az)"
        return 1
    fi
}

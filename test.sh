#!/usr/bin/env bash
# Runs every test. Installs what the tests need when missing (Debian: redis-server and redis-sentinel, curl, openssl, strongSwan's pki,
# postgresql, Node.js + npm, chromium for the console's browser tests, kubectl for the manifests, nginx for the multi-host run; then the test OIDC provider from npm into tests/oidc).
# Results land as TRX files in ./TestResults; the last line is "N passed, N failed, N skipped".
set -euo pipefail
cd "$(dirname "$0")"

need=()
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
command -v redis-sentinel >/dev/null 2>&1 || need+=(redis-sentinel)
command -v curl >/dev/null 2>&1 || need+=(curl)
command -v openssl >/dev/null 2>&1 || need+=(openssl)
command -v pki >/dev/null 2>&1 || need+=(strongswan-pki)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql)
# strongSwan's EST client fetches over HTTP through its curl plugin, packaged separately.
ls /usr/lib/ipsec/plugins/libstrongswan-curl.so >/dev/null 2>&1 || need+=(libstrongswan-extra-plugins)
command -v swanctl >/dev/null 2>&1 || need+=(strongswan-swanctl)
[ -x /usr/lib/ipsec/charon ] || need+=(strongswan-charon)
# The SeGW lab: userspace ESP (kernel-libipsec) and the openssl plugin (ECDSA, ECDH).
ls /usr/lib/ipsec/plugins/libstrongswan-kernel-libipsec.so >/dev/null 2>&1 || need+=(libcharon-extra-plugins)
ls /usr/lib/ipsec/plugins/libstrongswan-openssl.so >/dev/null 2>&1 || need+=(libstrongswan-standard-plugins)
command -v ip >/dev/null 2>&1 || need+=(iproute2)
command -v node >/dev/null 2>&1 || need+=(nodejs)
command -v chromium >/dev/null 2>&1 || need+=(chromium)
command -v npm >/dev/null 2>&1 || need+=(npm)
command -v kubectl >/dev/null 2>&1 || need+=(kubernetes-client) # kubectl kustomize renders deploy/kubernetes (offline)
command -v nginx >/dev/null 2>&1 || need+=(nginx)   # the upstream host of deploy/multi-host (MultiHostTests)
if [ ${#need[@]} -gt 0 ]; then
  echo "Installing: ${need[*]}"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
fi

# The test OIDC provider (oidc-provider, pinned by tests/oidc/package-lock.json) in the tests' own folder.
if [ ! -d tests/oidc/node_modules/oidc-provider ]; then
  npm ci --prefix tests/oidc --no-audit --no-fund --loglevel=error
fi

rm -rf TestResults
dotnet build KtZeroTrust.sln -c Release -nologo -v quiet
status=0
# One run per test project, each with its own TRX file name, so no result file can overwrite another.
for project in tests/*.Tests/*.Tests.csproj; do
  name=$(basename "$project" .csproj)
  dotnet test "$project" -c Release --no-build --nologo \
    --logger "trx;LogFileName=$name.trx" --logger "console;verbosity=normal" --results-directory TestResults || status=$?
done

# Sum the TRX counters (plain grep/sed: no extra runtime needed on a fresh machine).
passed=0; failed=0; skipped=0; files=0
for trx in TestResults/*.trx; do
  [ -f "$trx" ] || continue
  files=$((files + 1))
  counters=$(grep -o '<Counters [^>]*>' "$trx" | head -1)
  get() { local v; v=$(echo "$counters" | sed -n "s/.* $1=\"\([0-9]*\)\".*/\1/p"); echo "${v:-0}"; }
  passed=$((passed + $(get passed)))
  failed=$((failed + $(get failed) + $(get error) + $(get timeout) + $(get aborted)))
  skipped=$((skipped + $(get notExecuted)))
done
if [ "$files" -eq 0 ]; then echo "no TRX results found" >&2; failed=$((failed + 1)); fi
# The failed tests by name, just above the summary, so the end of the log says which ones.
for trx in TestResults/*.trx; do
  [ -f "$trx" ] || continue
  # Each with the first lines of its message and stack trace (the end of a CI log is often all one gets to read).
  awk '
    /<UnitTestResult / { inres = ($0 ~ /outcome="(Failed|Error|Timeout|Aborted)"/); if (inres) { n = $0; sub(/.* testName="/, "", n); sub(/".*/, "", n); print "FAILED: " n } }
    inres && /<Message>/ { part = "msg"; left = 6 }
    inres && /<StackTrace>/ { part = "stack"; left = 6 }
    inres && part != "" && left > 0 { l = $0; gsub(/<\/?(Message|StackTrace)>/, "", l); gsub(/&lt;/, "<", l); gsub(/&gt;/, ">", l); gsub(/&quot;/, "\"", l); gsub(/&amp;/, "\\&", l); sub(/^[ \t]+/, "", l); if (l != "") { print "    " substr(l, 1, 300); left-- } }
    inres && /<\/(Message|StackTrace)>/ { part = "" }
    /<\/UnitTestResult>/ { inres = 0; part = "" }
  ' "$trx" || true
done
if [ "$failed" -gt 0 ] || [ "$passed" -eq 0 ]; then status=1; fi
echo "$passed passed, $failed failed, $skipped skipped"
exit $status

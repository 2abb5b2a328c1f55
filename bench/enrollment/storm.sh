#!/usr/bin/env bash
# An enrollment storm against one node (embedded defaults: SQLite, in-process nonces), while already-enrolled units
# use its device gateway. Phases: capacity (simulate below the admission limit), baseline (the gateway probe alone),
# storm (FACTOR x MaxInFlight units at once, with the probe). Prints the capacity, the probe's p50/p99 in both phases
# and their ratio, the server's memory (VmRSS sampled, VmHWM), the deferrals, and whether every storm unit enrolled.
# The server runs on core 0; the simulator (at nice 10) and the probe on core 1. Bounded: the storm has a fixed
# number of units, each unit waits at most 30 deferrals; everything stops and is removed at the end.
#
#   bench/enrollment/storm.sh                      # FACTOR=5 MAX_IN_FLIGHT=64 STORM_UNITS=2560 PROBE_RATE=200
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$(pwd)
FACTOR=${FACTOR:-5}
MAX_IN_FLIGHT=${MAX_IN_FLIGHT:-64}
STORM_UNITS=${STORM_UNITS:-2560}
PROBE_RATE=${PROBE_RATE:-200}
PROBE_SECONDS=${PROBE_SECONDS:-15}

SERVER_CPU=""; CLIENT_CPU=""
if [ "$(nproc)" -ge 2 ] && command -v taskset >/dev/null; then SERVER_CPU="taskset -c 0"; CLIENT_CPU="taskset -c 1"; fi

WORK=$(mktemp -d /tmp/ktzt-storm-XXXXXX)
SERVER_PID=""; SAMPLER_PID=""
cleanup() { for p in $SAMPLER_PID $SERVER_PID; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT

echo "Building (Release)..."
dotnet build src/KtZeroTrust.Server -c Release -nologo -v quiet
dotnet build src/KtZeroTrust.Cli -c Release -nologo -v quiet
dotnet build bench/KtZeroTrust.Benchmarks -c Release -nologo -v quiet

port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 1 300); do (exec 3<>/dev/tcp/127.0.0.1/"$1") 2>/dev/null && { exec 3>&-; return 0; }; sleep 0.2; done; echo "port $1 did not open" >&2; exit 2; }
DEVICE=$(port); ENROLL=$(port); USER_PORT=$(port); CONSOLE=$(port); UPSTREAM=$(port)
mkdir -p "$WORK/pki" "$WORK/data"
cp certs-dev/manifest.json certs-dev/reference.json "$WORK/pki/"
(cd "$WORK" && exec $SERVER_CPU dotnet "$ROOT/src/KtZeroTrust.Server/bin/Release/net10.0/KtZeroTrust.Server.dll" --environment=Development \
  --ZeroTrust:DataDirectory="$WORK/data" --ZeroTrust:Pki:Directory="$WORK/pki" \
  --ZeroTrust:Listeners:Device:Address=127.0.0.1 --ZeroTrust:Listeners:Device:Port="$DEVICE" \
  --ZeroTrust:Listeners:Enrollment:Address=127.0.0.1 --ZeroTrust:Listeners:Enrollment:Port="$ENROLL" \
  --ZeroTrust:Listeners:User:Address=127.0.0.1 --ZeroTrust:Listeners:User:Port="$USER_PORT" \
  --ZeroTrust:Listeners:Console:Address=127.0.0.1 --ZeroTrust:Listeners:Console:Port="$CONSOLE" \
  --ZeroTrust:DemoUpstream:Port="$UPSTREAM" --ReverseProxy:Clusters:femto-management:Destinations:demo:Address="http://127.0.0.1:$UPSTREAM/" \
  --ZeroTrust:Attestation:Admission:MaxInFlight="$MAX_IN_FLIGHT" --Logging:LogLevel:Default=Warning > "$WORK/server.log" 2>&1) &
SERVER_PID=$!
wait_port "$DEVICE"; wait_port "$ENROLL"
SERVER_DOTNET=$(pgrep -P "$SERVER_PID" -f KtZeroTrust.Server.dll || echo "$SERVER_PID")
# The server's resident memory every half second, for the whole run ("phase kB").
PHASE_FILE="$WORK/phase"; echo start > "$PHASE_FILE"
(while kill -0 "$SERVER_DOTNET" 2>/dev/null; do echo "$(cat "$PHASE_FILE") $(awk '/VmRSS/ {print $2}' /proc/"$SERVER_DOTNET"/status)"; sleep 0.5; done) > "$WORK/rss" 2>/dev/null &
SAMPLER_PID=$!

ztctl() { nice -n 10 $CLIENT_CPU dotnet "$ROOT/src/KtZeroTrust.Cli/bin/Release/net10.0/ztctl.dll" "$@" --data-dir "$WORK/data" --pki-dir "$WORK/pki"; }
simulate() { ztctl simulate --enroll-url "https://127.0.0.1:$ENROLL" --gateway-url "https://127.0.0.1:$DEVICE" --no-gateway --json "$@"; }
probe() { $CLIENT_CPU dotnet "$ROOT/bench/KtZeroTrust.Benchmarks/bin/Release/net10.0/KtZeroTrust.Benchmarks.dll" gateway-probe --pki "$WORK/pki" \
  --url "https://127.0.0.1:$DEVICE" --rate "$PROBE_RATE" --seconds "$PROBE_SECONDS" | sed -n 's/^RESULT //p'; }
field() { python3 -c "import json,sys; d=json.load(sys.stdin)['honest']; print($1)"; }

echo "Minting and importing $((800 + STORM_UNITS)) simulated units (IDevIDs) before anything is measured"
simulate --units "$((800 + STORM_UNITS))" --rounds 0 > /dev/null
echo "Capacity: 2 x 400 units at concurrency 32 (MaxInFlight=$MAX_IN_FLIGHT), the second measured"
simulate --units 400 --concurrency 32 > /dev/null
CAPACITY=$(simulate --units 800 --concurrency 32 | field "round(d['enrollmentsPerSecond'])")
echo "  capacity: $CAPACITY attested enrollments/s (no gateway request)"

echo baseline > "$PHASE_FILE"
echo "Baseline: the gateway probe alone ($PROBE_RATE req/s for ${PROBE_SECONDS} s)"
BASE=$(probe); echo "  $BASE"

echo storm > "$PHASE_FILE"
STORM_CONCURRENCY=$((FACTOR * MAX_IN_FLIGHT))
echo "Storm: $STORM_UNITS new units, $STORM_CONCURRENCY at once (${FACTOR}x MaxInFlight), the probe alongside"
simulate --units "$((800 + STORM_UNITS))" --concurrency "$STORM_CONCURRENCY" > "$WORK/storm.json" &
STORM_PID=$!
sleep 2
DURING=$(probe); echo "  $DURING"
wait "$STORM_PID" || true
echo after > "$PHASE_FILE"
sleep 1
TOKEN=$(cat "$WORK/data/metrics-token")
METRICS=$(curl -sk -H "Authorization: Bearer $TOKEN" "https://127.0.0.1:$CONSOLE/metrics")
DEFERRED=$(echo "$METRICS" | awk '/^ktzt_admission_deferred_total/ {print $2}')
PEAK=$(echo "$METRICS" | awk '/^ktzt_admission_in_flight_peak/ {print $2}')
STORM=$(field "f\"enrolled={d['enrolled']} failed={d['failed']} seconds={d['seconds']:.1f} rate={d['enrollmentsPerSecond']:.0f}/s\"" < "$WORK/storm.json")
HWM=$(awk '/VmHWM/ {print $2}' /proc/"$SERVER_DOTNET"/status)
max_rss() { awk -v p="$1" '$1 == p && $2 > m { m = $2 } END { printf "%.0f", m / 1024 }' "$WORK/rss"; }
get() { echo "$1" | tr ' ' '\n' | sed -n "s/^$2=//p"; }
ratio() { python3 -c "print(f'{$1/$2:.2f}x')"; }

echo
echo "== $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
echo "capacity (concurrency 32): $CAPACITY/s; storm: $STORM_CONCURRENCY at once = $(python3 -c "print(f'{$STORM_CONCURRENCY/32:.0f}')")x that concurrency, ${FACTOR}x MaxInFlight"
echo "storm units: $STORM; deferred $DEFERRED times; peak in flight $PEAK (limit $MAX_IN_FLIGHT)"
echo "gateway probe baseline: $BASE"
echo "gateway probe in storm: $DURING"
echo "p50 ratio $(ratio "$(get "$DURING" p50_ms)" "$(get "$BASE" p50_ms)"), p99 ratio $(ratio "$(get "$DURING" p99_ms)" "$(get "$BASE" p99_ms)")"
echo "server RSS: baseline max $(max_rss baseline) MB, storm max $(max_rss storm) MB, after $(max_rss after) MB, VmHWM $((HWM / 1024)) MB"

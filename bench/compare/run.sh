#!/usr/bin/env bash
# Side by side on loopback: nginx, haproxy, plain YARP and the KtZeroTrust gateway (mTLS, allow list via Redis, device
# policy, decision stream to Redis + file, detectors) terminating mTLS in front of the same backend. wrk cannot present
# client certificates (wrk#240), so a client-side nginx originates the mTLS: with upstream keep-alive ("keep-alive"
# mode) or with a new TLS connection, no session resumption, per request ("handshake" mode). Targets run on core 0,
# the client side (wrk, client nginx, backend) on core 1 when there are two. Rounds alternate targets (A B C D A B ...).
# Prints medians of requests/s and p99 per target and mode, with each target's ratio to nginx.
#
#   bench/compare/run.sh                 # ROUNDS=3 DURATION=10s CONNECTIONS=64 by default
#   ROUNDS=5 DURATION=15s bench/compare/run.sh
#   TARGETS="yarp ktzerotrust" GATEWAY_ARGS="--ZeroTrust:DecisionStream:Enabled=false" bench/compare/run.sh   # take it apart
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$(pwd)
ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-10s}
CONNECTIONS=${CONNECTIONS:-64}
WARMUP=${WARMUP:-3s}

need=()
for c in nginx haproxy wrk redis-server taskset; do command -v "$c" >/dev/null 2>&1 || need+=("$c"); done
if [ ${#need[@]} -gt 0 ]; then
  pkgs=(); for c in "${need[@]}"; do case $c in taskset) pkgs+=(util-linux);; *) pkgs+=("$c");; esac; done
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${pkgs[@]}" >/dev/null
fi

TARGET_CPU=""; CLIENT_CPU=""
if [ "$(nproc)" -ge 2 ]; then TARGET_CPU="taskset -c 0"; CLIENT_CPU="taskset -c 1"; fi

WORK=$(mktemp -d /tmp/ktzt-compare-XXXXXX)
PIDS=()
cleanup() { for ((i=${#PIDS[@]}-1; i>=0; i--)); do kill "${PIDS[$i]}" 2>/dev/null || true; done; wait 2>/dev/null || true; [ "${KEEP_WORK:-0}" = 1 ] || rm -rf "$WORK/gateway/data" "$WORK/monitor/data"; }
trap cleanup EXIT
echo "work directory: $WORK"

port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 1 300); do (exec 3<>/dev/tcp/127.0.0.1/"$1") 2>/dev/null && { exec 3>&-; return 0; }; sleep 0.2; done; echo "port $1 did not open" >&2; exit 2; }

echo "Building (Release)..."
dotnet build src/KtZeroTrust.Server -c Release -nologo -v quiet
dotnet build bench/compare/PlainYarp -c Release -nologo -v quiet

BACKEND=$(port); REDIS=$(port); NGINX=$(port); HAPROXY=$(port); YARP=$(port); GW=$(port)

# Backend: a static 200 from nginx (client core).
mkdir -p "$WORK/backend"
cat > "$WORK/backend/nginx.conf" <<CONF
worker_processes 1; pid $WORK/backend/nginx.pid; error_log $WORK/backend/error.log warn; daemon off;
events { worker_connections 4096; }
http { access_log off; server { listen 127.0.0.1:$BACKEND; keepalive_requests 100000; location / { return 200 "ok\n"; } } }
CONF
$CLIENT_CPU nginx -c "$WORK/backend/nginx.conf" & PIDS+=($!)

# Redis and the KtZeroTrust gateway (development PKI generated into the work directory; its files serve every target).
$TARGET_CPU redis-server --port "$REDIS" --bind 127.0.0.1 --save "" --appendonly no --daemonize no >/dev/null & PIDS+=($!)
mkdir -p "$WORK/pki" "$WORK/gateway"
cp certs-dev/manifest.json certs-dev/reference.json "$WORK/pki/"
start_gateway() { # environment
  (cd "$WORK/gateway" && exec env ${GATEWAY_ENV:-} $TARGET_CPU dotnet "$ROOT/src/KtZeroTrust.Server/bin/Release/net10.0/KtZeroTrust.Server.dll" --environment="$1" \
    --ZeroTrust:DataDirectory="$WORK/gateway/data" --ZeroTrust:Pki:Directory="$WORK/pki" --ZeroTrust:Roles:Attestation=false --ZeroTrust:Roles:Console=false \
    --ZeroTrust:Listeners:Device:Address=127.0.0.1 --ZeroTrust:Listeners:Device:Port="$GW" --ZeroTrust:Listeners:User:Address=127.0.0.1 --ZeroTrust:Listeners:User:Port="$GW_USER" \
    --ZeroTrust:DemoUpstream:Enabled=false --ReverseProxy:Clusters:femto-management:Destinations:demo:Address="http://127.0.0.1:$BACKEND/" \
    --ZeroTrust:AllowList:Redis="127.0.0.1:$REDIS" \
    --ZeroTrust:Detectors:Enabled="$([ "${MONITOR_NODE:-1}" = 1 ] && echo false || echo true)" --ZeroTrust:Node=gateway-1 \
    --ZeroTrust:DecisionStream:EventsPerEntry=64 --Logging:LogLevel:Default=Warning ${GATEWAY_ARGS:-} >> "$WORK/gateway/server.log" 2>&1) &
  GATEWAY_PID=$!
}
GW_USER=$(port)
# First start in Development: it generates the PKI and imports and issues the sample fleet. Then the measured run
# starts in Staging on the same files: no development-only middleware (exception page) on the request path.
start_gateway Development
wait_port "$GW"
kill "$GATEWAY_PID"; wait "$GATEWAY_PID" 2>/dev/null || true
for _ in $(seq 1 50); do (exec 3<>/dev/tcp/127.0.0.1/"$GW") 2>/dev/null || break; exec 3>&-; sleep 0.1; done
start_gateway "${GATEWAY_ENVIRONMENT:-Staging}"; PIDS+=("$GATEWAY_PID")
wait_port "$GW"
# The monitoring node: console role, reads the shared decision stream and runs the detectors (the gateway node only
# publishes, ZeroTrust:Detectors:Enabled=false), as in the multi-node layout of docs/decision-events.md. It would be
# another machine; here it shares the client core at the lowest priority, so it lags under load and catches up after.
MONITOR=$(port)
if [ "${MONITOR_NODE:-1}" = 1 ]; then
  mkdir -p "$WORK/monitor"
  (cd "$WORK/monitor" && exec nice -n 19 $CLIENT_CPU dotnet "$ROOT/src/KtZeroTrust.Server/bin/Release/net10.0/KtZeroTrust.Server.dll" --environment=Staging \
    --ZeroTrust:Node=monitor --ZeroTrust:DataDirectory="$WORK/monitor/data" --ZeroTrust:Pki:Directory="$WORK/pki" \
    --ZeroTrust:Roles:Gateway=false --ZeroTrust:Roles:Attestation=false --ZeroTrust:Roles:Console=true \
    --ZeroTrust:Listeners:Console:Address=127.0.0.1 --ZeroTrust:Listeners:Console:Port="$MONITOR" --ZeroTrust:DemoUpstream:Enabled=false \
    --ZeroTrust:AllowList:Redis="127.0.0.1:$REDIS" --Logging:LogLevel:Default=Warning >> "$WORK/monitor/server.log" 2>&1) & PIDS+=($!)
  wait_port "$MONITOR"
fi
P="$WORK/pki"
cat "$P/server.pem" "$P/server.key.pem" > "$WORK/server-combined.pem"

# nginx target (mTLS, ssl_verify_client on).
mkdir -p "$WORK/nginx"
cat > "$WORK/nginx/nginx.conf" <<CONF
worker_processes 1; pid $WORK/nginx/nginx.pid; error_log $WORK/nginx/error.log warn; daemon off;
events { worker_connections 4096; }
http { access_log off;
  upstream backend { server 127.0.0.1:$BACKEND; keepalive 64; }
  server { listen 127.0.0.1:$NGINX ssl; ssl_certificate $P/server.pem; ssl_certificate_key $P/server.key.pem;
    ssl_client_certificate $P/operator-ca.pem; ssl_verify_client on; ssl_verify_depth 2; keepalive_requests 100000;
    location / { proxy_pass http://backend; proxy_http_version 1.1; proxy_set_header Connection ""; } } }
CONF
$TARGET_CPU nginx -c "$WORK/nginx/nginx.conf" & PIDS+=($!)

# haproxy target (mTLS, verify required).
cat > "$WORK/haproxy.cfg" <<CONF
global
  nbthread 1
defaults
  mode http
  timeout connect 5s
  timeout client 30s
  timeout server 30s
  option http-keep-alive
frontend mtls
  bind 127.0.0.1:$HAPROXY ssl crt $WORK/server-combined.pem ca-file $P/operator-ca.pem verify required
  default_backend app
backend app
  http-reuse always
  server b 127.0.0.1:$BACKEND
CONF
$TARGET_CPU haproxy -f "$WORK/haproxy.cfg" -db >/dev/null 2>&1 & PIDS+=($!)

# Plain YARP target.
$TARGET_CPU dotnet "$ROOT/bench/compare/PlainYarp/bin/Release/net10.0/PlainYarp.dll" "$YARP" "http://127.0.0.1:$BACKEND/" "$P" >/dev/null 2>&1 & PIDS+=($!)

for p in "$BACKEND" "$NGINX" "$HAPROXY" "$YARP"; do wait_port "$p"; done

# Client-side nginx: one plain-HTTP port per (target, mode), originating mTLS with FC-0001's certificate.
read -r -a TARGETS <<< "${TARGETS:-nginx haproxy yarp ktzerotrust}"
declare -A TPORT=([nginx]=$NGINX [haproxy]=$HAPROXY [yarp]=$YARP [ktzerotrust]=$GW)
declare -A CPORT
mkdir -p "$WORK/client"
{
  echo "worker_processes 1; pid $WORK/client/nginx.pid; error_log $WORK/client/error.log warn; daemon off;"
  echo "events { worker_connections 8192; }"
  echo "http { access_log off;"
  for t in "${TARGETS[@]}"; do
    for mode in keepalive handshake; do
      cp=$(port); CPORT[$t-$mode]=$cp
      if [ "$mode" = keepalive ]; then ka="keepalive $CONNECTIONS;"; reuse="on"; else ka=""; reuse="off"; fi
      echo "  upstream u_${t}_$mode { server 127.0.0.1:${TPORT[$t]}; $ka }"
      echo "  server { listen 127.0.0.1:$cp; keepalive_requests 100000; location / { proxy_pass https://u_${t}_$mode;"
      echo "    proxy_http_version 1.1; proxy_set_header Connection \"\"; proxy_ssl_session_reuse $reuse;"
      echo "    proxy_ssl_certificate $P/ldevid/FC-0001.pem; proxy_ssl_certificate_key $P/ldevid/FC-0001.key.pem;"
      echo "    proxy_ssl_trusted_certificate $P/tls-root.pem; proxy_ssl_verify on; proxy_ssl_name localhost; } }"
    done
  done
  echo "}"
} > "$WORK/client/nginx.conf"
$CLIENT_CPU nginx -c "$WORK/client/nginx.conf" & PIDS+=($!)
for k in "${!CPORT[@]}"; do wait_port "${CPORT[$k]}"; done

for t in "${TARGETS[@]}"; do
  code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:${CPORT[$t-keepalive]}/femto/status")
  [ "$code" = 200 ] || { echo "$t does not answer 200 through the client side (got $code); logs in $WORK" >&2; exit 2; }
done

run_wrk() { # port duration -> "rps p99ms"
  $CLIENT_CPU wrk -t1 -c"$CONNECTIONS" -d"$2" --latency "http://127.0.0.1:$1/femto/status" | awk '
    /Requests\/sec/ { rps=$2 }
    /^ +99%/ { v=$2; if (v ~ /us$/) { sub(/us$/,"",v); v=v/1000 } else if (v ~ /ms$/) { sub(/ms$/,"",v) } else if (v ~ /s$/) { sub(/s$/,"",v); v=v*1000 } p99=v }
    / Non-2xx/ { non2xx=$NF }
    END { printf "%s %s %s\n", rps, p99, (non2xx=="" ? 0 : non2xx) }'
}

echo "Warming up..."
for mode in ${MODES:-keepalive handshake}; do for t in "${TARGETS[@]}"; do run_wrk "${CPORT[$t-$mode]}" "$WARMUP" >/dev/null; done; done

declare -A RPS P99
for mode in ${MODES:-keepalive handshake}; do
  for r in $(seq 1 "$ROUNDS"); do
    for t in "${TARGETS[@]}"; do
      read -r rps p99 bad < <(run_wrk "${CPORT[$t-$mode]}" "$DURATION")
      [ "$bad" = 0 ] || echo "  warning: $t answered $bad non-2xx in $mode round $r" >&2
      RPS[$t-$mode]+="$rps "; P99[$t-$mode]+="$p99 "
      printf '  %-9s round %d %-12s %10s req/s  p99 %8s ms\n' "$mode" "$r" "$t" "$rps" "$p99"
    done
  done
done

# The monitoring node read every decision the gateway published: wait until its saved stream position reaches the end.
MONITOR_NOTE=""
if [ "${MONITOR_NODE:-1}" = 1 ]; then
  last=$(redis-cli -p "$REDIS" xrevrange zt:decisions + - count 1 | head -1)
  entries=$(redis-cli -p "$REDIS" xlen zt:decisions)
  for s in $(seq 1 300); do
    pos=$(redis-cli -p "$REDIS" get zt:detectors:state | grep -o '"[Pp]osition":"[0-9-]*"' | cut -d'"' -f4 || true) # no state saved yet: not caught up (and not an exit under pipefail)
    if [ -n "$pos" ] && [ "${pos%-*}" -ge "${last%-*}" ]; then MONITOR_NOTE="monitoring node (detectors): read all $entries stream entries, caught up within ${s} s after the load"; break; fi
    sleep 1
  done
  MONITOR_NOTE=${MONITOR_NOTE:-"monitoring node (detectors): had NOT caught up with the stream ($entries entries) 300 s after the load; logs in $WORK/monitor"}
fi
redis-cli -p "$REDIS" info commandstats > "$WORK/redis-commandstats.txt" 2>/dev/null || true # what the decision stream cost Redis
median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{a[NR]=$1} END { print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2) }'; }
echo
echo "$(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)), $CONNECTIONS connections, $ROUNDS rounds x $DURATION, targets on ${TARGET_CPU:-any core}, client on ${CLIENT_CPU:-any core}"
echo
[ -n "$MONITOR_NOTE" ] && echo "$MONITOR_NOTE" && echo
echo "| target | keep-alive req/s | vs ${TARGETS[0]} | keep-alive p99 ms | handshake/request req/s | vs ${TARGETS[0]} | handshake p99 ms |"
echo "|---|---|---|---|---|---|---|"
med() { local v="${1:-}"; [ -n "$v" ] && echo "$v" | median || echo 0; }
base_k=$(med "${RPS[${TARGETS[0]}-keepalive]:-}"); base_h=$(med "${RPS[${TARGETS[0]}-handshake]:-}") # the first target (nginx by default)
for t in "${TARGETS[@]}"; do
  k=$(med "${RPS[$t-keepalive]:-}"); h=$(med "${RPS[$t-handshake]:-}")
  pk=$(med "${P99[$t-keepalive]:-}"); ph=$(med "${P99[$t-handshake]:-}")
  awk -v t="$t" -v k="$k" -v h="$h" -v bk="$base_k" -v bh="$base_h" -v pk="$pk" -v ph="$ph" \
    'BEGIN { printf "| %s | %.0f | %.2fx | %.2f | %.0f | %.2fx | %.2f |\n", t, k, (bk ? k/bk : 0), pk, h, (bh ? h/bh : 0), ph }'
done

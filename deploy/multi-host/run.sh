#!/usr/bin/env bash
# A small real deployment on this machine, each "host" its own network namespace on a private bridge (10.78.0.0/24, in
# a namespace of its own: nothing is added to the machine's own network), then the failure scenarios of issue 18:
#
#   gw-1 .11  gw-2 .12  gw-3 .13     gateway nodes (device + user listeners), allow list through Redis/Sentinel
#   attest .21                        attestation node (EST, CMP, OCSP, CRL)
#   console .31                       SOC console node (admin API, detectors; sessions and key ring in Redis)
#   redis-1 .41 (primary)  redis-2 .42 (replica)  sentinel-1..3 .51-.53 (quorum 2)
#   pg .61                            PostgreSQL: the registry
#   upstream .71                      the core-network service (nginx; answers the gateways only)
#   fleet .81                         the femtocells: the bench fleet tool and ztctl
#
#   deploy/multi-host/run.sh            the full run (figures for deploy/README.md)
#   deploy/multi-host/run.sh --short    the same scenarios, smaller and shorter (./test.sh runs it through a test)
#   --no-build                          use the Release build already there
#   KEEP_WORK=1                         keep the work directory (logs) after the run
#
# Prints "RESULT key=value" lines (the test reads them) and a summary. Needs root, iproute2, redis-server,
# redis-sentinel, PostgreSQL, nginx, curl, openssl. Every namespace, process and file it made is removed on exit, and
# the whole run is bounded (LIMIT seconds, default 900; the short run 420).
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$(pwd)
SHORT=0 BUILD=1
for a in "$@"; do case $a in --short) SHORT=1 ;; --no-build) BUILD=0 ;; *) echo "unknown argument: $a" >&2; exit 1 ;; esac; done
[ "$(id -u)" -eq 0 ] || { echo "needs root (network namespaces)" >&2; exit 1; }
for c in ip redis-server redis-sentinel redis-cli nginx curl openssl runuser; do command -v "$c" >/dev/null || { echo "missing: $c (./test.sh installs what the tests need)" >&2; exit 1; }; done
PGBIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
[ -x "$PGBIN/initdb" ] || { echo "missing: PostgreSQL (apt-get install postgresql)" >&2; exit 1; }

if [ $SHORT = 1 ]; then
  DEVICES=${DEVICES:-24} STEADY=${STEADY:-6} REVOCATIONS=${REVOCATIONS:-8} FAILOVER_RUN=${FAILOVER_RUN:-16} GATEWAY_RUN=${GATEWAY_RUN:-10} PG_OUTAGE=${PG_OUTAGE:-8} LIMIT=${LIMIT:-420}
else
  DEVICES=${DEVICES:-150} STEADY=${STEADY:-20} REVOCATIONS=${REVOCATIONS:-60} FAILOVER_RUN=${FAILOVER_RUN:-30} GATEWAY_RUN=${GATEWAY_RUN:-20} PG_OUTAGE=${PG_OUTAGE:-30} LIMIT=${LIMIT:-900}
fi
P=ztmh NET=10.78.0 NET_RE='10\.78\.0'
W=$(mktemp -d /tmp/ztmh-XXXXXX); chmod 755 "$W"
SERVER="$ROOT/src/KtZeroTrust.Server/bin/Release/net10.0/KtZeroTrust.Server.dll"
FLEET="$ROOT/bench/KtZeroTrust.Benchmarks/bin/Release/net10.0/KtZeroTrust.Benchmarks.dll"
ZTCTL="$ROOT/src/KtZeroTrust.Cli/bin/Release/net10.0/ztctl.dll"
SENTINELS="$NET.51:26379,$NET.52:26379,$NET.53:26379,serviceName=ktzt"
PGPASS=$(openssl rand -hex 16)
REGISTRY="Host=$NET.61;Port=5432;Username=zt;Password=$PGPASS;Database=ktzerotrust;Timeout=5;Command Timeout=5"
HOSTS=(gw-1:11 gw-2:12 gw-3:13 attest:21 console:31 redis-1:41 redis-2:42 sentinel-1:51 sentinel-2:52 sentinel-3:53 pg:61 upstream:71 fleet:81)

cleanup() {
  set +e
  [ -n "${WATCHDOG:-}" ] && kill "$WATCHDOG" 2>/dev/null
  for h in "${HOSTS[@]}"; do
    ns=$P-${h%%:*}
    ip netns pids "$ns" 2>/dev/null | xargs -r kill -9 2>/dev/null
    ip netns del "$ns" 2>/dev/null
  done
  ip netns del "$P-switch" 2>/dev/null
  if [ "${KEEP_WORK:-0}" = 1 ]; then echo "work directory kept: $W"; else rm -rf "$W"; fi
}
trap cleanup EXIT
trap 'echo "interrupted" >&2; exit 130' INT TERM
# Bounded: past LIMIT seconds the run stops itself (and cleans up through the trap).
# Its sleep dies with it (the trap), so no stray process holds the caller's output open after the run.
( trap 'kill $sleeper 2>/dev/null; exit 0' TERM; sleep "$LIMIT" & sleeper=$!; wait $sleeper
  echo "multi-host run exceeded ${LIMIT}s: stopping" >&2; kill -TERM $$ ) & WATCHDOG=$!

log() { echo "[$(date +%H:%M:%S)] $*"; }
result() { echo "RESULT $1=$2" | tee -a "$W/results"; }
collect() { grep '^RESULT' "$1" | tee -a "$W/results" || true; }
now_ms() { date +%s%3N; }
in_ns() { local host=$1; shift; ip netns exec "$P-$host" "$@"; }

if [ $BUILD = 1 ]; then
  log "building (Release)"
  dotnet build KtZeroTrust.sln -c Release -nologo -v quiet
fi
for f in "$SERVER" "$FLEET" "$ZTCTL"; do [ -f "$f" ] || { echo "missing $f: build first (dotnet build -c Release)" >&2; exit 1; }; done

# --- the network: a bridge in its own namespace, one veth pair per host --------------------------------------------
log "network: ${#HOSTS[@]} hosts on $NET.0/24"
ip netns add "$P-switch"
ip -n "$P-switch" link add br0 type bridge
ip -n "$P-switch" link set br0 up
for h in "${HOSTS[@]}"; do
  name=${h%%:*} addr=$NET.${h##*:}
  ip netns add "$P-$name"
  ip link add eth0 netns "$P-$name" type veth peer name "v-$name" netns "$P-switch"
  ip -n "$P-switch" link set "v-$name" master br0 up
  ip -n "$P-$name" addr add "$addr/24" dev eth0
  ip -n "$P-$name" link set eth0 up
  ip -n "$P-$name" link set lo up
done

# --- Redis primary, replica, three Sentinels -----------------------------------------------------------------------
start_redis() { # name addr [replicaof]
  mkdir -p "$W/$1"
  in_ns "$1" redis-server --bind "$2" --port 6379 --protected-mode no --save "" --appendonly yes --dir "$W/$1" ${3:+--replicaof $3 6379} \
    > "$W/$1/redis.log" 2>&1 & disown
}
start_redis redis-1 $NET.41
start_redis redis-2 $NET.42 $NET.41
for i in 1 2 3; do
  mkdir -p "$W/sentinel-$i"
  cat > "$W/sentinel-$i/sentinel.conf" <<CONF
port 26379
bind $NET.5$i
protected-mode no
dir $W/sentinel-$i
sentinel monitor ktzt $NET.41 6379 2
sentinel down-after-milliseconds ktzt 1000
sentinel failover-timeout ktzt 5000
sentinel parallel-syncs ktzt 1
CONF
  in_ns "sentinel-$i" redis-sentinel "$W/sentinel-$i/sentinel.conf" > "$W/sentinel-$i/sentinel.log" 2>&1 & disown
done
primary() { in_ns fleet redis-cli -h "$NET.51" -p 26379 --raw SENTINEL get-master-addr-by-name ktzt 2>/dev/null | head -1; }

# --- PostgreSQL --------------------------------------------------------------------------------------------------
start_pg() { in_ns pg runuser -u postgres -- "$PGBIN/postgres" -D "$W/pg/data" -p 5432 -k "$W/pg" -c listen_addresses=$NET.61 -c fsync=off -c max_connections=300 -c wal_compression=lz4 >> "$W/pg/postgres.log" 2>&1 & disown; }
pg_up() { in_ns pg runuser -u postgres -- "$PGBIN/pg_isready" -q -h "$W/pg" -p 5432; }
mkdir -p "$W/pg"; chown postgres:postgres "$W/pg"
echo "$PGPASS" > "$W/pg/pw"; chown postgres:postgres "$W/pg/pw"; chmod 600 "$W/pg/pw"
runuser -u postgres -- "$PGBIN/initdb" -D "$W/pg/data" -U zt --pwfile="$W/pg/pw" --auth-local=trust --auth-host=scram-sha-256 --no-sync -E UTF8 > "$W/pg/initdb.log"
echo "host all all $NET.0/24 scram-sha-256" >> "$W/pg/data/pg_hba.conf"
start_pg
for _ in $(seq 1 100); do pg_up && break; sleep 0.2; done
in_ns pg runuser -u postgres -- "$PGBIN/psql" -q -h "$W/pg" -p 5432 -U zt -d postgres -c "CREATE DATABASE ktzerotrust" > /dev/null

# --- the upstream: answers the three gateways only (the NetworkPolicy of deploy/kubernetes, as nginx rules) ------
mkdir -p "$W/upstream"
cat > "$W/upstream/nginx.conf" <<CONF
worker_processes 1; pid $W/upstream/nginx.pid; error_log $W/upstream/error.log warn; daemon off;
events { worker_connections 4096; }
http {
  access_log off; client_body_temp_path $W/upstream; proxy_temp_path $W/upstream; fastcgi_temp_path $W/upstream; uwsgi_temp_path $W/upstream; scgi_temp_path $W/upstream;
  server {
    listen $NET.71:8080; keepalive_requests 100000;
    # At server level, so it runs before the location's return (allow/deny would come after it).
    if (\$remote_addr !~ "^$NET_RE\.1[123]\$") { return 403; }
    location / { default_type application/json; return 200 '{"service":"femtocell-management","decisionId":"\$http_x_zt_decision_id"}\n'; }
  }
}
CONF
in_ns upstream nginx -c "$W/upstream/nginx.conf" > "$W/upstream/nginx.log" 2>&1 & disown

# --- the PKI and the fleet: a manifest of DEVICES units, imported and issued by a first (Development) start -------
mkdir -p "$W/pki"
cp certs-dev/reference.json "$W/pki/"
{
  echo '{ "vendor": "Multi-host run", "devices": ['
  for i in $(seq 1 "$DEVICES"); do
    printf '  { "serial": "FC-M%04d", "model": "KTF-HNB-5G", "site": "multi-host", "idevidCertificate": "idevid/FC-M%04d.pem" }%s\n' "$i" "$i" "$([ "$i" -lt "$DEVICES" ] && echo ,)"
  done
  echo '] }'
} > "$W/pki/manifest.json"

start_node() { # name addr environment role-arguments...
  local name=$1 addr=$2 environment=$3; shift 3
  mkdir -p "$W/$name"
  (cd "$W/$name" && exec ip netns exec "$P-$name" dotnet "$SERVER" --environment="$environment" \
    --ZeroTrust:Node="$name" --ZeroTrust:DataDirectory="$W/$name/data" --ZeroTrust:Pki:Directory="$W/pki" \
    --ZeroTrust:Registry:PostgreSql="$REGISTRY" --ZeroTrust:DecisionStore:PostgreSql="$REGISTRY" --ZeroTrust:AllowList:Redis="$SENTINELS" \
    --ZeroTrust:DemoUpstream:Enabled=false --ReverseProxy:Clusters:femto-management:Destinations:demo:Address="http://$NET.71:8080/" \
    --Logging:LogLevel:Default=Warning "$@" >> "$W/$name/server.log" 2>&1) & disown
}
GATEWAY_ARGS=(--ZeroTrust:Roles:Attestation=false --ZeroTrust:Roles:Console=false --ZeroTrust:AllowList:SyncRegistryToRedis=false
  --ZeroTrust:Detectors:Enabled=false --ZeroTrust:DecisionStream:EventsPerEntry=64)
start_gateway() { start_node "$1" "$2" Staging "${GATEWAY_ARGS[@]}" --ZeroTrust:Listeners:Device:Address="$2" --ZeroTrust:Listeners:User:Address="$2"; }
start_attest() { start_node attest $NET.21 "$1" --ZeroTrust:Roles:Gateway=false --ZeroTrust:Roles:Console=false --ZeroTrust:Detectors:Enabled=false --ZeroTrust:Listeners:Enrollment:Address=$NET.21; }
start_console() { start_node console $NET.31 Staging --ZeroTrust:Roles:Gateway=false --ZeroTrust:Roles:Attestation=false \
  --ZeroTrust:Listeners:Console:Address=$NET.31 --ZeroTrust:Console:Redis="$SENTINELS"; }
# A node's /readyz, asked from the fleet's host with the name checked (the server certificate names every node's address).
ready() { in_ns fleet curl -s -o /dev/null -w '%{http_code}' --max-time 3 --cacert "$W/pki/tls-root.pem" "https://$1/readyz" 2>/dev/null | grep -q '^200$'; }
readyz() { in_ns fleet curl -s --max-time 3 --cacert "$W/pki/tls-root.pem" "https://$1/readyz" 2>/dev/null || true; }
wait_ready() { for _ in $(seq 1 300); do ready "$1" && return 0; sleep 0.2; done; echo "$1 never became ready" >&2; return 1; }
# Until every unit of a background fleet run has had an answer (the fleet writes the file then), 60 s at most.
wait_running() { for _ in $(seq 1 600); do [ -f "$1" ] && return 0; sleep 0.1; done; echo "the fleet never got going ($1)" >&2; return 1; }
kill_host() { ip netns pids "$P-$1" | xargs -r kill -9 2>/dev/null || true; }
stop_node() { ip netns pids "$P-$1" | xargs -r kill -TERM; for _ in $(seq 1 100); do [ -z "$(ip netns pids "$P-$1")" ] && return; sleep 0.1; done; kill_host "$1"; }

for _ in $(seq 1 100); do [ "$(primary)" = "$NET.41" ] && break; sleep 0.2; done
[ "$(primary)" = "$NET.41" ] || { echo "the Sentinels never agreed on the primary" >&2; exit 1; }
log "bootstrap: the attestation node's first (Development) start generates the PKI, imports $DEVICES units into PostgreSQL and issues them"
start_attest Development
for _ in $(seq 1 600); do
  in_ns fleet curl -s -o /dev/null --max-time 3 --cacert "$W/pki/tls-root.pem" --connect-to "localhost:8444:$NET.21:8444" https://localhost:8444/readyz 2>/dev/null && break
  sleep 0.2
done
stop_node attest
[ -f "$W/pki/ldevid/FC-M$(printf %04d "$DEVICES").pem" ] || { echo "the bootstrap did not issue the fleet's certificates" >&2; tail -20 "$W/attest/server.log" >&2; exit 1; }
# One server certificate naming every node's address (a real deployment has one per node, or a name per Service).
openssl ecparam -name prime256v1 -genkey -noout -out "$W/pki/server.key.pem" 2>/dev/null
openssl req -new -key "$W/pki/server.key.pem" -subj "/CN=ktzerotrust.multi-host" -out "$W/server.csr" 2>/dev/null
printf 'subjectAltName=DNS:localhost,IP:127.0.0.1,IP:%s.11,IP:%s.12,IP:%s.13,IP:%s.21,IP:%s.31\nextendedKeyUsage=serverAuth\nkeyUsage=critical,digitalSignature\n' $NET $NET $NET $NET $NET > "$W/server.ext"
openssl x509 -req -in "$W/server.csr" -CA "$W/pki/tls-root.pem" -CAkey "$W/pki/tls-root.key.pem" -CAcreateserial -CAserial "$W/tls.srl" \
  -days 1 -sha256 -extfile "$W/server.ext" -out "$W/pki/server.pem" 2>/dev/null

log "starting 3 gateways, the attestation node and the console node"
start_attest Staging
start_gateway gw-1 $NET.11; start_gateway gw-2 $NET.12; start_gateway gw-3 $NET.13
start_console
GWS="https://$NET.11:8443,https://$NET.12:8443,https://$NET.13:8443"
for n in $NET.11:9443 $NET.12:9443 $NET.13:9443 $NET.21:8444 $NET.31:9444; do wait_ready "$n"; done
OTP=$(sed -n 's/.*one-time password: \([^ ]*\).*/\1/p' "$W/console/server.log" | head -1)
[ -n "$OTP" ] || { echo "the console printed no one-time password" >&2; exit 1; }
ANALYST_PASSWORD=$(openssl rand -hex 12)
TOKEN=$(in_ns fleet curl -s --cacert "$W/pki/tls-root.pem" -H 'Content-Type: application/json' \
  -d "{\"user\":\"admin\",\"password\":\"$OTP\",\"newPassword\":\"$ANALYST_PASSWORD\"}" "https://$NET.31:9444/api/login" | sed -n 's/.*"token":"\([^"]*\)".*/\1/p')
[ -n "$TOKEN" ] || { echo "console sign-in failed" >&2; exit 1; }
fleet() { in_ns fleet env ZT_TOKEN="$TOKEN" dotnet "$FLEET" fleet "$@" --pki "$W/pki"; }
direct=$(in_ns fleet curl -s -o /dev/null -w '%{http_code}' --max-time 3 "http://$NET.71:8080/femto/status" || true)
result upstream.direct_from_fleet "$direct"

# The revoked units are taken from the end of the fleet; the load uses the rest.
LOAD_DEVICES=$((DEVICES - REVOCATIONS))

# --- 1. steady state ---------------------------------------------------------------------------------------------
log "scenario 1: steady state, $LOAD_DEVICES units on 3 gateways for ${STEADY}s, then $REVOCATIONS revocations through the console"
fleet load --label steady --gateways "$GWS" --devices "$LOAD_DEVICES" --seconds "$STEADY" > "$W/steady.txt"; collect "$W/steady.txt"
fleet propagation --label propagation --gateways "$GWS" --console "https://$NET.31:9444" --first $((LOAD_DEVICES + 1)) --devices "$REVOCATIONS" > "$W/propagation.txt"
collect "$W/propagation.txt"

# --- 2. the Redis primary killed under load ----------------------------------------------------------------------
log "scenario 2: kill -9 the Redis primary under load (paced: 10 requests/s per unit)"
since=$(now_ms)
fleet load --label redis --gateways "$GWS" --devices "$LOAD_DEVICES" --seconds "$FAILOVER_RUN" --interval-ms 100 --ids "$W/redis-ids.txt" --running-file "$W/redis.running" > "$W/redis.txt" &
load=$!
wait_running "$W/redis.running"
t0=$(now_ms); kill_host redis-1
until [ "$(primary)" = "$NET.42" ]; do sleep 0.05; [ $(( $(now_ms) - t0 )) -gt 60000 ] && { echo "no promotion within 60 s" >&2; break; }; done
result redis.promoted_after_ms $(( $(now_ms) - t0 ))
# A gateway has followed once the new primary serves its change-feed subscription and its /readyz says the feed is live.
followed=0
for n in 11 12 13; do
  until in_ns fleet redis-cli -h $NET.42 --raw CLIENT LIST 2>/dev/null | grep -q "addr=$NET.$n:.* sub=[1-9]" \
      && readyz "$NET.$n:9443" | grep -q '"allow-list":{"status":"healthy"'; do
    sleep 0.05; [ $(( $(now_ms) - t0 )) -gt 60000 ] && { echo "gateway $NET.$n did not follow within 60 s" >&2; break; }
  done
  f=$(( $(now_ms) - t0 )); [ $f -gt $followed ] && followed=$f
done
result redis.every_gateway_followed_after_ms "$followed"
result redis.old_primary_back_at_ms "$(now_ms)"; result redis.killed_at_ms "$t0"
# Back as a replica of whoever the Sentinels name, as deploy/kubernetes/base/redis.yaml starts a pod: started as the
# primary it used to be, it would take writes until the Sentinels demote it and then drop them in its resync.
start_redis redis-1 $NET.41 "$(primary)"
wait $load; collect "$W/redis.txt"
fleet decisions --label redis --redis "$SENTINELS" --ids "$W/redis-ids.txt" --since-ms "$since" --wait 60 > "$W/decisions.txt"; collect "$W/decisions.txt"

# --- 3. a gateway node killed under load --------------------------------------------------------------------------
log "scenario 3: kill -9 gateway gw-3 under load"
fleet load --label gateway --gateways "$GWS" --devices "$LOAD_DEVICES" --seconds "$GATEWAY_RUN" --interval-ms 100 --running-file "$W/gateway.running" > "$W/gateway.txt" &
load=$!
wait_running "$W/gateway.running"
kill_host gw-3
wait $load; collect "$W/gateway.txt"
start_gateway gw-3 $NET.13 && wait_ready $NET.13:9443 && result gateway.restarted_ready yes

# --- 4. PostgreSQL down for PG_OUTAGE seconds ---------------------------------------------------------------------
log "scenario 4: PostgreSQL killed for ${PG_OUTAGE}s under load; enrollment tried meanwhile"
fleet load --label postgres --gateways "$GWS" --devices "$LOAD_DEVICES" --seconds $((PG_OUTAGE + 8)) --interval-ms 100 --running-file "$W/postgres.running" > "$W/postgres.txt" &
load=$!
wait_running "$W/postgres.running"
outage_end=$(( $(now_ms) + PG_OUTAGE * 1000 ))
kill_host pg
nonce() { in_ns fleet curl -s -o "$W/nonce.json" -w '%{http_code}' --max-time 10 --cacert "$W/pki/tls-root.pem" \
  --cert "$W/pki/idevid/FC-M0001.pem" --key "$W/pki/idevid/FC-M0001.key.pem" -X POST "https://$NET.21:8444/attest/nonce" || true; }
# The outage as the gateways see it: their registry check degraded (bounded wait), then enrollment is tried.
until readyz $NET.11:9443 | grep -q '"registry":{"status":"degraded"'; do sleep 0.1; [ "$(now_ms)" -gt "$outage_end" ] && break; done
result postgres.enrollment_during_outage_http "$(nonce)"
result postgres.enrollment_during_outage_reason "$(sed -n 's/.*"reasonCode":"\([^"]*\)".*/\1/p' "$W/nonce.json")"
result postgres.gateway_ready_during_outage "$(readyz $NET.11:9443 | sed -n 's/^{"status":"\([a-z]*\)".*/\1/p')"
# The database stays down for PG_OUTAGE seconds while the load runs (stopping early if the load does).
while [ "$(now_ms)" -lt "$outage_end" ] && kill -0 "$load" 2>/dev/null; do sleep 0.2; done
t0=$(now_ms); start_pg
until [ "$(nonce)" = 200 ]; do sleep 0.2; [ $(( $(now_ms) - t0 )) -gt 60000 ] && break; done
result postgres.enrollment_recovered_after_ms $(( $(now_ms) - t0 ))
wait $load; collect "$W/postgres.txt"
# A whole attested enrollment after the outage (ztctl simulate: nonce, evidence, EST, then the gateway).
if in_ns fleet env ZT_POSTGRES="$REGISTRY" dotnet "$ZTCTL" --pki-dir "$W/pki" --data-dir "$W/fleet" simulate --units 3 \
    --enroll-url "https://$NET.21:8444" --gateway-url "https://$NET.11:8443" > "$W/simulate.txt" 2>&1; then
  result postgres.enrollment_after_outage ok
else
  result postgres.enrollment_after_outage failed; tail -5 "$W/simulate.txt"
fi

# --- 5. the console node restarted --------------------------------------------------------------------------------
log "scenario 5: restart the console node; the analyst's session must continue"
api() { in_ns fleet curl -s -o /dev/null -w '%{http_code}' --max-time 10 --cacert "$W/pki/tls-root.pem" -H "Authorization: Bearer $TOKEN" "https://$NET.31:9444/api/decisions?limit=1" || true; }
result console.session_before_restart_http "$(api)"
stop_node console
start_console
wait_ready $NET.31:9444
result console.session_after_restart_http "$(api)"

echo
echo "== multi-host run, $(date -u +%Y-%m-%dT%H:%M:%SZ), $(nproc) cores, $(uname -r) =="
sed 's/^RESULT /  /' "$W/results"

#!/usr/bin/env bash
# The decision store benchmark (bench/README.md, "Decision store"): a throwaway PostgreSQL on loopback, durable as
# deployed (fsync and synchronous_commit on, wal_compression=lz4 as deploy/ configures it; WAL_COMPRESSION=off to compare), loaded with ROWS decisions over 7 days from WRITERS gateway-like writers,
# then the SOC's three questions timed; then the embedded SQLite store with SQLITE_ROWS. Cleans up what it made.
#   bench/store/run.sh            # 10,000,000 rows into PostgreSQL, 1,000,000 into SQLite
#   ROWS=1000000 bench/store/run.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
ROWS=${ROWS:-10000000}
SQLITE_ROWS=${SQLITE_ROWS:-1000000}
WRITERS=${WRITERS:-2}
BATCH=${BATCH:-4096}

bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
root=$(mktemp -d /tmp/ktzt-store-bench.XXXXXX)
as_pg() { if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
cleanup() {
  as_pg "$bin/pg_ctl" -D "$root/data" -m immediate stop >/dev/null 2>&1 || true
  rm -rf "$root"
}
trap cleanup EXIT
[ "$(id -u)" -eq 0 ] && chown postgres:postgres "$root"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
as_pg "$bin/initdb" -D "$root/data" -U zt --auth=trust -E UTF8 >/dev/null
as_pg "$bin/pg_ctl" -D "$root/data" -l "$root/postgres.log" -w -t 60 -o "-p $port -k $root -c listen_addresses=127.0.0.1 -c shared_buffers=2GB -c max_wal_size=16GB -c checkpoint_timeout=30min -c effective_cache_size=8GB -c wal_compression=${WAL_COMPRESSION:-lz4}" start >/dev/null

dotnet build bench/KtZeroTrust.Benchmarks -c Release -nologo -v quiet
tool=(dotnet bench/KtZeroTrust.Benchmarks/bin/Release/net10.0/KtZeroTrust.Benchmarks.dll store-load)
echo "# $(date -u +%Y-%m-%dT%H:%MZ) $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB, PostgreSQL $("$bin/postgres" --version | awk '{print $3}')"
"${tool[@]}" --postgres "Host=127.0.0.1;Port=$port;Username=zt;Database=postgres;Timeout=30;Command Timeout=600" --rows "$ROWS" --writers "$WRITERS" --batch "$BATCH"
as_pg psql -h "$root" -p "$port" -U zt -d postgres -Atc "SELECT 'RESULT postgres_bytes=' || pg_database_size('postgres') || ' partitions=' || (SELECT count(*) FROM pg_inherits i JOIN pg_class p ON p.oid = i.inhparent WHERE p.relname = 'zt_decisions')
  || ' heap_bytes=' || (SELECT sum(pg_table_size(c.oid)) FROM pg_class c JOIN pg_inherits i ON i.inhrelid = c.oid)
  || ' index_bytes=' || (SELECT sum(pg_indexes_size(c.oid)) FROM pg_class c JOIN pg_inherits i ON i.inhrelid = c.oid)
  || ' event_json_bytes=' || (SELECT sum(pg_column_size(event)) FROM zt_decisions);"
"${tool[@]}" --sqlite "$root/decisions.db" --rows "$SQLITE_ROWS" --writers 1 --batch 512
echo "RESULT sqlite_bytes=$(stat -c %s "$root/decisions.db")"

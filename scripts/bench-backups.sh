#!/usr/bin/env bash
# Managed backups (issue 20), in one run on this machine, PostgreSQL 15
# with pgbench data (SCALE; 10 ≈ 160 MiB):
#  (1) `dbgroups backup run` of a group of a master and a slave (taken from
#      the slave: pg_basebackup, tar, sha256sum, rename, record) against
#      pg_basebackup of the same slave run alone, as a ratio;
#  (2) the master's throughput (pgbench, TPC-B-like, 2 clients, SECONDS
#      each) quiet, while backups are taken from the slave in a loop, and
#      while they are taken from the master (the slave stopped, so the run
#      falls back to the master).
# Prints a table; docs/benchmarks.md records the figures.
#   bash scripts/bench-backups.sh [SCALE] [SECONDS]
#   (DBGROUPS_BIN=target/debug/dbgroups skips the release build)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/setup.sh
source scripts/lib/bench.sh
scale=${1:-10}
seconds=${2:-15}
if [ -n "${DBGROUPS_BIN:-}" ]; then
  dbgroups=$(realpath "$DBGROUPS_BIN")
  ensure_package bc /usr/bin/bc
  work=$(mktemp -d); chmod o+x "$work"
else
  bench_prepare
fi
pgbin=/usr/lib/postgresql/15/bin
cleanup() {
  "$dbgroups" destroy -f "$work/manifest.yml" --app bench --auto-approve >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
cd "$work"
cat > manifest.yml <<'YML'
application: bench
postgresql:
  configuration: { version: "15" }
  backups: { managed: true, keep: 100 }
  servers:
    - server: { unique_name: bench-main }
    - server: { unique_name: bench-replica }
YML
"$dbgroups" apply --auto-approve --refresh=false >/dev/null 2>&1
port_of() { state_field bench "[s for g in s['groups'] for s in g['servers'] if s['unique_name']=='$1'][0]['port']"; }
main_port=$(port_of bench-main)
replica_port=$(port_of bench-replica)
password=$(state_field bench "s['credentials']['postgresql.default']['password']")
replication=$(state_field bench "s['credentials']['postgresql.default']['replication_password']")
psql_at() { PGPASSWORD="$password" "$pgbin/psql" -tA -h 127.0.0.1 -p "$1" -U bench -d bench -c "$2"; }
PGPASSWORD="$password" "$pgbin/pgbench" -q -i -s "$scale" -h 127.0.0.1 -p "$main_port" -U bench bench >/dev/null 2>&1
want=$(psql_at "$main_port" "select count(*) from pgbench_accounts")
until [ "$(psql_at "$replica_port" "select count(*) from pgbench_accounts" 2>/dev/null || echo 0)" = "$want" ]; do sleep 0.5; done
bytes=$(psql_at "$main_port" "select pg_database_size('bench')")

# (1) The tool alone against the slave, as the servers' user, and dbgroups'
# run; each twice, alternating, the faster kept (neither gets only the
# warmer page cache).
tool() {
  local dir="$work/bare"; service_dir "$dir"
  local t0 t1; t0=$(now)
  as_service env PGPASSWORD="$replication" "$pgbin/pg_basebackup" -h 127.0.0.1 -p "$replica_port" \
    -U replicator -D "$dir" --checkpoint=fast --wal-method=stream --no-password
  t1=$(now); rm -rf "$dir"; echo "$t1 - $t0" | bc
}
ours() {
  local t0 t1; t0=$(now)
  "$dbgroups" backup run >/dev/null
  t1=$(now); echo "$t1 - $t0" | bc
}
t_tool=$(tool); t_ours=$(ours); t_tool2=$(tool); t_ours2=$(ours)
t_tool=$(printf '%s\n' "$t_tool" "$t_tool2" | sort -n | head -1)
t_ours=$(printf '%s\n' "$t_ours" "$t_ours2" | sort -n | head -1)
size=$("$dbgroups" backup list --format json | python3 -c 'import json,sys; print(json.load(sys.stdin)["backups"][0]["size_bytes"])')
from=$("$dbgroups" backup list --format json | python3 -c 'import json,sys; print(json.load(sys.stdin)["backups"][0]["server"])')

# (2) The master's throughput.
tps() {
  PGPASSWORD="$password" "$pgbin/pgbench" -n -c 2 -T "$seconds" -h 127.0.0.1 -p "$main_port" -U bench bench 2>/dev/null \
    | sed -n 's/^tps = \([0-9.]*\).*/\1/p'
}
while_backing_up() {
  local loop_pid result runs="$work/runs"
  : > "$runs"
  ( while :; do "$dbgroups" backup run >/dev/null 2>&1 && echo ok >> "$runs"; done ) &
  loop_pid=$!
  result=$(tps)
  kill "$loop_pid" 2>/dev/null; wait "$loop_pid" 2>/dev/null || true
  # Let the run in flight end (it holds the state lock).
  "$dbgroups" backup list >/dev/null
  echo "$result $(wc -l < "$runs")"
}
quiet=$(tps)
read -r from_slave slave_runs <<<"$(while_backing_up)"
as_service "$pgbin/pg_ctl" -D "$work/.dbgroups/servers/bench-replica/data" -w -s -m fast stop >/dev/null
read -r from_master master_runs <<<"$(while_backing_up)"
last_from=$("$dbgroups" backup list --format json | python3 -c 'import json,sys; b=json.load(sys.stdin)["backups"]; print(b[0]["server"])')

printf '\n| PostgreSQL 15, pgbench scale %s (%s MiB database) | value |\n|---|---|\n' "$scale" "$((bytes / 1048576))"
printf '| pg_basebackup of the slave alone | %.2f s |\n' "$t_tool"
printf '| `dbgroups backup run` (from %s; %s MiB tar, sha256, record) | %.2f s |\n' "$from" "$((size / 1048576))" "$t_ours"
printf '| ratio | %.2f |\n' "$(echo "$t_ours / $t_tool" | bc -l)"
printf '| master tps, quiet (%s s, 2 clients) | %.0f |\n' "$seconds" "$quiet"
printf '| master tps, backups from the slave in a loop (%s runs) | %.0f (%.2f of quiet) |\n' "$slave_runs" "$from_slave" "$(echo "$from_slave / $quiet" | bc -l)"
printf '| master tps, backups from the master in a loop (%s runs, last from %s) | %.0f (%.2f of quiet) |\n' "$master_runs" "$last_from" "$from_master" "$(echo "$from_master / $quiet" | bc -l)"

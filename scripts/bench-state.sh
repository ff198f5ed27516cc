#!/usr/bin/env bash
# The cost of keeping the state in PostgreSQL rather than in a directory,
# measured in one run on this machine: (1) `plan --refresh=false` of a
# recorded application (what CI runs on every pull request), (2) `apply` of
# a one-server Redis application from nothing (provision and env steps,
# every step's state write), each against both backends with the same
# passphrase, so the ratio is the backend's alone. Prints a table;
# docs/benchmarks.md records the figures.
#   bash scripts/bench-state.sh [PLAN_RUNS] [APPLY_RUNS]
# DBGROUPS_BENCH_BINARY=target/debug/dbgroups skips the release build
# (the ratio is what this measures; say which build the figures came from).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/setup.sh
source scripts/lib/bench.sh
plan_runs=${1:-15}
apply_runs=${2:-3}
if [ -n "${DBGROUPS_BENCH_BINARY:-}" ]; then
  ensure_database_servers
  ensure_package bc /usr/bin/bc
  dbgroups=$(realpath "$DBGROUPS_BENCH_BINARY")
  work=$(mktemp -d)
  chmod 755 "$work"
else
  bench_prepare
fi
pgbin=/usr/lib/postgresql/15/bin
db="$work/state-db"
port=$(free_port)
export DBGROUPS_STATE_PASSPHRASE="benchmark passphrase, long enough"
url="postgres://postgres@127.0.0.1:$port/postgres?sslmode=disable"
cleanup() {
  for backend in dir pg; do
    args=(--state-dir "$work/state"); [ "$backend" = pg ] && args=(--state-url "$url")
    "$dbgroups" destroy -f "$work/plan.yml" --app benchplan --auto-approve "${args[@]}" >/dev/null 2>&1 || true
  done
  as_service "$pgbin/pg_ctl" -D "$db" -m immediate stop >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

# The state server: trust on loopback, so the URL carries no password.
service_dir "$db"
as_service "$pgbin/initdb" -D "$db" -U postgres --auth=trust >/dev/null
as_service "$pgbin/pg_ctl" -D "$db" -o "-p $port -k $db -c listen_addresses=127.0.0.1" -l "$db/log" -w start >/dev/null

manifest() { # APP SERVER
  cat <<YML
application: $1
redis:
  configuration: { version: "7.0" }
  servers:
    - server: { unique_name: $2 }
YML
}
backend_args() { # dir|pg
  if [ "$1" = pg ]; then echo "--state-url $url"; else echo "--state-dir $work/state"; fi
}

# (1) plan --refresh=false of an applied application, per backend.
manifest benchplan bench-plan-main > "$work/plan.yml"
# shellcheck disable=SC2046
"$dbgroups" apply -f "$work/plan.yml" --auto-approve --refresh=false $(backend_args dir) >/dev/null 2>&1
# The same state, copied: both backends plan against identical documents.
"$dbgroups" state migrate --state-dir "$work/state" --to "$url" >/dev/null 2>&1
# Interleaved, so a neighbour's load falls on both alike.
declare -A plan_all plan_times
for _ in $(seq "$plan_runs"); do
  for backend in dir pg; do
    t0=$(now)
    # shellcheck disable=SC2046
    "$dbgroups" plan -f "$work/plan.yml" --refresh=false $(backend_args "$backend") >/dev/null 2>&1
    t1=$(now)
    plan_all[$backend]+="$(echo "$t1 - $t0" | bc) "
  done
done
for backend in dir pg; do
  # shellcheck disable=SC2086
  plan_times[$backend]=$(median ${plan_all[$backend]})
done

# (2) apply from nothing, then destroy, per backend, interleaved.
declare -A apply_all
for run in $(seq "$apply_runs"); do
  for backend in dir pg; do
    manifest "bench$backend$run" "bench-$backend-$run" > "$work/apply-$backend-$run.yml"
    t0=$(now)
    # shellcheck disable=SC2046
    "$dbgroups" apply -f "$work/apply-$backend-$run.yml" --auto-approve --refresh=false $(backend_args "$backend") >/dev/null 2>&1
    t1=$(now)
    apply_all[$backend]+="$(echo "$t1 - $t0" | bc) "
    # shellcheck disable=SC2046
    "$dbgroups" destroy -f "$work/apply-$backend-$run.yml" --app "bench$backend$run" --auto-approve $(backend_args "$backend") >/dev/null 2>&1
  done
done
# shellcheck disable=SC2086
apply_dir=$(median ${apply_all[dir]})
# shellcheck disable=SC2086
apply_pg=$(median ${apply_all[pg]})

printf '\n| measure | directory | PostgreSQL | PostgreSQL / directory |\n|---|---:|---:|---:|\n'
printf '| plan --refresh=false (median of %s) | %.3f s | %.3f s | %.2f× |\n' "$plan_runs" \
  "${plan_times[dir]}" "${plan_times[pg]}" "$(echo "${plan_times[pg]} / ${plan_times[dir]}" | bc -l)"
printf '| apply, one Redis server from nothing (median of %s) | %.3f s | %.3f s | %.2f× |\n' "$apply_runs" \
  "$apply_dir" "$apply_pg" "$(echo "$apply_pg / $apply_dir" | bc -l)"

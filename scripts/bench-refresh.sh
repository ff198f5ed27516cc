#!/usr/bin/env bash
# Times `dbgroups plan` with refresh (every live server asked whether it is
# up and how its replication is) against `--refresh=false`, in one run, over
# GROUPS Redis groups of three servers (a master and two slaves) and one
# PostgreSQL and one MariaDB group of two. Servers are asked concurrently,
# so the refresh should cost about one slow answer, not one per server.
# Prints a table; docs/benchmarks.md records the figures.
#   bash scripts/bench-refresh.sh [GROUPS] [RUNS]   (defaults 10 and 5: 34 servers)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/setup.sh
source scripts/lib/bench.sh
groups=${1:-10}
runs=${2:-5}
bench_prepare
destroy_on_exit refresh

{
  echo "application: refresh"
  echo "postgresql:"
  echo "  configuration: { version: \"15\" }"
  echo "  servers:"
  echo "    - server: { unique_name: pg-a }"
  echo "    - server: { unique_name: pg-b }"
  echo "mysql:"
  echo "  configuration: { engine: mariadb, version: \"10.11\" }"
  echo "  servers:"
  echo "    - server: { unique_name: db-a }"
  echo "    - server: { unique_name: db-b }"
  echo "redis:"
  echo "  groups:"
  for g in $(seq 1 "$groups"); do
    echo "    r$g:"
    echo "      configuration: { version: \"7.0\" }"
    echo "      servers:"
    for s in 1 2 3; do echo "        - server: { unique_name: redis-$g-$s }"; done
  done
} > "$work/manifest.yml"
servers=$((4 + 3 * groups))

"$dbgroups" apply -f "$work/manifest.yml" --auto-approve --refresh=false >/dev/null 2>&1

# Median of RUNS wall times of one command.
median_time() {
  local times=()
  for _ in $(seq 1 "$runs"); do
    local t0 t1
    t0=$(now); "$@" >/dev/null 2>&1; t1=$(now)
    times+=("$(echo "$t1 - $t0" | bc)")
  done
  printf '%s\n' "${times[@]}" | sort -n | sed -n "$(( (runs + 1) / 2 ))p"
}
# Exit code 0: a healthy, converged deployment plans no change either way.
"$dbgroups" plan -f "$work/manifest.yml" --detailed-exitcode >/dev/null
offline=$(median_time "$dbgroups" plan -f "$work/manifest.yml" --refresh=false)
refreshed=$(median_time "$dbgroups" plan -f "$work/manifest.yml")

printf '\n| measurement (%d live servers, median of %d) | seconds |\n|---|---|\n' "$servers" "$runs"
printf '| plan --refresh=false | %.3f |\n' "$offline"
printf '| plan (refresh: every server asked) | %.3f |\n' "$refreshed"
printf '| refresh cost per server | %.4f |\n' "$(echo "($refreshed - $offline) / $servers" | bc -l)"
printf '| ratio refresh / --refresh=false | %.2f |\n' "$(echo "$refreshed / $offline" | bc -l)"

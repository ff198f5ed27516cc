#!/usr/bin/env bash
# Cost to the master, in one run per engine: throughput and p99 latency of a
# write load on a master while `dbgroups apply` scales its group up by one
# slave and makes a second group replicate from it, against the same load
# with no apply, run just before on the same server. PostgreSQL's load is
# pgbench (TPC-B-like, 2 clients); MariaDB's and Redis's a closed loop of
# unique inserts (2 clients). The runs are the writes-during-apply tests
# (tests/integration/apply_live/writes.rs), which also check that no write
# failed and that every acknowledged write reached the master, the new
# slave and the second group. Prints a table; docs/benchmarks.md records it.
#   bash scripts/bench-master-cost.sh [SCALE] [BASELINE_SECONDS]
#   (defaults 10 and 10: pgbench scale 10, 1,000,000 MariaDB rows and
#   Redis keys; PROFILE=dev reuses the test build instead of release)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/setup.sh
ensure_rust_toolchain
ensure_database_servers
profile_args=(--release)
if [ "${PROFILE:-release}" = dev ]; then profile_args=(); fi

export DBGROUPS_LOAD_SCALE=${1:-10}
export DBGROUPS_LOAD_BASELINE_SECONDS=${2:-10}
# The tests' output is shown as it comes through a copy to the inherited
# stderr: `tee /dev/stderr` would reopen it, and when stderr is a file (a
# CI log) that truncates everything written before.
rows=$(cargo test "${profile_args[@]}" --locked -q --test integration -- \
  apply_live::writes --nocapture --test-threads 1 2>&1 | tee >(cat >&2) | grep -oE '\| (PostgreSQL|MariaDB|Redis) .*' || true)
printf '\n| engine (scale %s, baseline %s s) | apply s | writes/s quiet | writes/s during apply | throughput ratio | p99 ms quiet | p99 ms during | p99 ratio | failed writes |\n|---|---|---|---|---|---|---|---|---|\n' \
  "$DBGROUPS_LOAD_SCALE" "$DBGROUPS_LOAD_BASELINE_SECONDS"
printf '%s\n' "$rows"
[ "$(printf '%s\n' "$rows" | grep -c '^| ')" = 3 ] || { echo "a writes-during-apply test failed (above)" >&2; exit 1; }

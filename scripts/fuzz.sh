#!/usr/bin/env bash
# The hostile-input property tests at a larger case count: the manifest
# parser and validator (tests/integration/properties.rs) and the state-file
# and plan-file readers (tests/integration/file_readers.rs). CI runs them at
# their default counts; this runs CASES per property (default 100000) in
# release and prints a table. docs/reliability.md records the figures.
#   bash scripts/fuzz.sh [CASES]
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/setup.sh
source scripts/lib/bench.sh
ensure_rust_toolchain
cases=${1:-100000}
cargo test --release --locked -q --test integration --no-run 2>/dev/null
printf '| property tests | cases each | properties | seconds | result |\n|---|---|---|---|---|\n'
for filter in properties:: file_readers::; do
  t0=$(now)
  out=$(PROPTEST_CASES=$cases cargo test --release --locked -q --test integration -- "$filter" 2>&1) && result=passed || result=FAILED
  t1=$(now)
  count=$(printf '%s\n' "$out" | sed -n 's/^test result: [a-zA-Z]*\. \([0-9]*\) passed.*/\1/p')
  printf '| %s | %s | %s | %.0f | %s |\n' "$filter" "$cases" "$count" "$(echo "$t1 - $t0" | bc)" "$result"
  [ "$result" = passed ] || { printf '%s\n' "$out" >&2; exit 1; }
done

#!/usr/bin/env bash
# The whole test suite, from a fresh Debian machine: formatting, lints, tests.
# `.ci/run` calls exactly this.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/setup.sh
ensure_rust_toolchain
ensure_database_servers

cargo fmt --all --check
cargo clippy --workspace --all-targets --locked -- -D warnings
cargo test --workspace --locked
# The benchmarks' quick versions, so they do not rot; no timing is asserted.
cargo bench --locked --bench plan_scale -- --quick
ROUNDS=1 bash scripts/bench-apply.sh 1
bash scripts/bench-redis.sh 20000 1
bash scripts/bench-mariadb.sh 20000 1
bash scripts/bench-refresh.sh 2 1
bash scripts/bench-fanout.sh 1 1
PROFILE=dev bash scripts/bench-master-cost.sh 1 2

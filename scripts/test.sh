#!/usr/bin/env bash
# The whole test suite, from a fresh Debian machine: formatting, lints, tests.
# `.ci/run` calls exactly this.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/setup.sh
ensure_rust_toolchain
ensure_database_servers
# The test hosts (network namespaces with a real sshd) for the ssh provider.
bash scripts/test-hosts.sh install-deps

cargo fmt --all --check
cargo clippy --workspace --all-targets --locked -- -D warnings
# The suite keeps what every dbgroups run printed (target/tmp/transcripts);
# afterwards one ignored test scans all of it, the snapshots and the docs
# for every secret the suite generated.
rm -rf target/tmp/transcripts
cargo test --workspace --locked
# By exact name, so a rename would run nothing: the script fails unless
# exactly that one test ran and passed.
scan_log=$(mktemp)
cargo test --locked --test integration -- --ignored --exact \
  transcripts::no_generated_secret_in_anything_the_suite_printed_or_wrote --nocapture \
  2>&1 | tee "$scan_log"
if ! grep -q '^test result: ok\. 1 passed; 0 failed' "$scan_log"; then
  echo "error: the secret scan did not run exactly one passing test" >&2
  rm -f "$scan_log"
  exit 1
fi
rm -f "$scan_log"
# The benchmarks' quick versions, so they do not rot; no timing is asserted.
cargo bench --locked --bench plan_scale -- --quick
ROUNDS=1 bash scripts/bench-apply.sh 1
bash scripts/bench-redis.sh 20000 1
bash scripts/bench-mariadb.sh 20000 1
bash scripts/bench-mariadb-physical.sh 20000 1
bash scripts/bench-refresh.sh 2 1
bash scripts/bench-fanout.sh 1 1
PROFILE=dev bash scripts/bench-master-cost.sh 1 2

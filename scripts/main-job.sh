#!/usr/bin/env bash
# The main job, from a fresh Debian machine: build dbgroups and run it on the
# quickstart example. `plan` and `apply` join this as their issues land; today
# it validates the quickstart (and shows the published MySQL example's
# end-of-life warnings and the tabbed copy's errors).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/setup.sh
ensure_rust_toolchain

cargo build --release --locked
dbgroups=target/release/dbgroups

step "validate the quickstart"
"$dbgroups" validate -f examples/quickstart/manifest.yml

step "validate every example"
for manifest in examples/*/*.yml; do
  case "$manifest" in
    *-with-tabs.yml) ;;  # invalid on purpose, shown below
    *) "$dbgroups" validate --format short -f "$manifest" ;;
  esac
done

step "the published MySQL text with TABs is refused at its lines (expected to fail)"
if "$dbgroups" validate -f examples/published-mysql/manifest-with-tabs.yml; then
  echo "error: the tabbed manifest was accepted" >&2
  exit 1
fi
step "main job done"

#!/usr/bin/env bash
# The main job, from a fresh Debian machine: build dbgroups and run it on the
# quickstart example. Until `apply` lands (issue 4) it validates every
# example and plans the quickstart as a new application, offline, in a
# scratch directory so no state is left behind.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/setup.sh
ensure_rust_toolchain

cargo build --release --locked
dbgroups="$PWD/target/release/dbgroups"

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

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp examples/quickstart/manifest.yml "$work/manifest.yml"

step "plan the quickstart (exit 2: there are changes)"
set +e
"$dbgroups" plan -f "$work/manifest.yml" --refresh=false --detailed-exitcode --out "$work/plan.json"
status=$?
set -e
if [ "$status" -ne 2 ]; then
  echo "error: expected exit 2 (changes), got $status" >&2
  exit 1
fi

step "the saved plan as a pull-request comment"
"$dbgroups" show "$work/plan.json" --format markdown

step "the saved plan's step graph (Mermaid)"
"$dbgroups" graph --plan "$work/plan.json" --format mermaid

step "main job done"

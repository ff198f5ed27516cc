#!/usr/bin/env bash
# The main job, from a fresh Debian machine: build dbgroups, validate the
# examples, then plan and apply the quickstart on the local provider (real
# PostgreSQL and Redis servers), show their status and the environment
# file, and destroy them again, all in a scratch directory.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/setup.sh
ensure_rust_toolchain
ensure_database_servers

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
cleanup() {
  "$dbgroups" destroy -f "$work/manifest.yml" --app shop --auto-approve >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
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

step "apply exactly the saved plan: real PostgreSQL (master + slave) and Redis servers"
"$dbgroups" apply -f "$work/manifest.yml" "$work/plan.json"

step "status: roles, up, replication"
"$dbgroups" status -f "$work/manifest.yml"

step "the environment file (secrets masked by \`dbgroups env\`)"
ls -l "$work/.dbgroups/env/shop.env"
"$dbgroups" env -f "$work/manifest.yml"

step "planning again shows no changes (exit 0)"
"$dbgroups" plan -f "$work/manifest.yml" --detailed-exitcode

step "destroy: stop and delete the servers"
"$dbgroups" destroy -f "$work/manifest.yml" --app shop --auto-approve

step "main job done"

#!/usr/bin/env bash
# Times, in one run on this machine: (1) `dbgroups apply` of the quickstart,
# (2) a scale up (backup → provision → restore → enslave → env) of a
# PostgreSQL group holding SIZE_GB of pgbench data, against (3) a bare
# pg_basebackup of the same master, so the ratio (2)/(3) is what dbgroups
# adds. Prints a table; docs/benchmarks.md records the figures.
#   bash scripts/bench-apply.sh [SCALE]   (pgbench scale; 68 ≈ 1 GiB)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/setup.sh
ensure_rust_toolchain
ensure_database_servers
ensure_package bc /usr/bin/bc
scale=${1:-68}

cargo build --release --locked -q
dbgroups="$PWD/target/release/dbgroups"
pgbin=/usr/lib/postgresql/15/bin
work=$(mktemp -d)
cleanup() {
  for m in "$work"/*.yml; do
    [ -f "$m" ] || continue
    app=$(sed -n 's/^application: //p' "$m")
    "$dbgroups" destroy -f "$m" --app "$app" --auto-approve >/dev/null 2>&1 || true
  done
  rm -rf "$work"
}
trap cleanup EXIT
now() { date +%s.%N; }
field() { python3 -c "import json,sys; s=json.load(open('$work/.dbgroups/apps/$1.json')); print(eval(sys.argv[1]))" "$2"; }

cp examples/quickstart/manifest.yml "$work/quickstart.yml"
t0=$(now); "$dbgroups" apply -f "$work/quickstart.yml" --auto-approve --refresh=false >/dev/null 2>&1; t1=$(now)
quickstart=$(echo "$t1 - $t0" | bc)

cat > "$work/bench.yml" <<'YML'
application: bench
postgresql:
  configuration: { version: "15" }
  backups: { managed: true }
  servers:
    - server: { unique_name: bench-main }
YML
"$dbgroups" apply -f "$work/bench.yml" --auto-approve --refresh=false >/dev/null 2>&1
port=$(field bench "[s for g in s['groups'] for s in g['servers']][0]['port']")
password=$(field bench "s['credentials']['postgresql.default']['password']")
replication=$(field bench "s['credentials']['postgresql.default']['replication_password']")
PGPASSWORD="$password" "$pgbin/pgbench" -q -i -s "$scale" -h 127.0.0.1 -p "$port" -U bench bench >/dev/null 2>&1
bytes=$(PGPASSWORD="$password" "$pgbin/psql" -tA -h 127.0.0.1 -p "$port" -U bench -d bench -c "select sum(pg_database_size(datname)) from pg_database")

t0=$(now)
PGPASSWORD="$replication" "$pgbin/pg_basebackup" -h 127.0.0.1 -p "$port" -U replicator -D "$work/bare" --checkpoint=fast --wal-method=stream
t1=$(now)
bare=$(echo "$t1 - $t0" | bc)
rm -rf "$work/bare"

sed -i 's/    - server: { unique_name: bench-main }/    - server: { unique_name: bench-main }\n    - server: { unique_name: bench-replica }/' "$work/bench.yml"
t0=$(now); "$dbgroups" apply -f "$work/bench.yml" --auto-approve --refresh=false >/dev/null 2>&1; t1=$(now)
scaleup=$(echo "$t1 - $t0" | bc)

printf '\n| measurement | seconds |\n|---|---|\n'
printf '| quickstart apply (PostgreSQL master + slave, Redis) | %.2f |\n' "$quickstart"
printf '| data in the PostgreSQL group | %.2f GiB |\n' "$(echo "$bytes / 1073741824" | bc -l)"
printf '| bare pg_basebackup of that master | %.2f |\n' "$bare"
printf '| dbgroups scale up (backup, provision, restore, enslave, env) | %.2f |\n' "$scaleup"
printf '| ratio scale up / bare pg_basebackup | %.2f |\n' "$(echo "$scaleup / $bare" | bc -l)"

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
source scripts/lib/bench.sh
scale=${1:-68}
bench_prepare
pgbin=/usr/lib/postgresql/15/bin
cleanup() {
  for m in "$work"/*.yml; do
    [ -f "$m" ] || continue
    app=$(sed -n 's/^application: //p' "$m")
    "$dbgroups" destroy -f "$m" --app "$app" --auto-approve >/dev/null 2>&1 || true
  done
  rm -rf "$work"
}
trap cleanup EXIT
field() { state_field "$@"; }

cp examples/quickstart/manifest.yml "$work/quickstart.yml"
t0=$(now); "$dbgroups" apply -f "$work/quickstart.yml" --auto-approve --refresh=false >/dev/null 2>&1; t1=$(now)
quickstart=$(echo "$t1 - $t0" | bc)

cat > "$work/one.yml" <<'YML'
application: bench
postgresql:
  configuration: { version: "15" }
  backups: { managed: true }
  servers:
    - server: { unique_name: bench-main }
YML
"$dbgroups" apply -f "$work/one.yml" --auto-approve --refresh=false >/dev/null 2>&1
port=$(field bench "[s for g in s['groups'] for s in g['servers']][0]['port']")
password=$(field bench "s['credentials']['postgresql.default']['password']")
replication=$(field bench "s['credentials']['postgresql.default']['replication_password']")
PGPASSWORD="$password" "$pgbin/pgbench" -q -i -s "$scale" -h 127.0.0.1 -p "$port" -U bench bench >/dev/null 2>&1
bytes=$(PGPASSWORD="$password" "$pgbin/psql" -tA -h 127.0.0.1 -p "$port" -U bench -d bench -c "select sum(pg_database_size(datname)) from pg_database")

# The floor: PostgreSQL's own tool copying the master and a server started
# on the copy, as the servers' user (PostgreSQL refuses root). Taken before
# and after the scale up, and the faster kept, so neither side gets the
# warmer page cache.
floor() {
  local dir="$work/bare" sock="$work/bare-sock" fport
  fport=$(free_port)
  service_dir "$dir"; service_dir "$sock"
  local t0 tc t1
  t0=$(now)
  as_service env PGPASSWORD="$replication" "$pgbin/pg_basebackup" -h 127.0.0.1 -p "$port" -U replicator -D "$dir" --checkpoint=fast --wal-method=stream
  tc=$(now)
  as_service "$pgbin/pg_ctl" -D "$dir" -w -s -o "-p $fport -k $sock -c listen_addresses=127.0.0.1" start >/dev/null
  t1=$(now)
  echo "floor: copy $(echo "$tc - $t0" | bc) s, start $(echo "$t1 - $tc" | bc) s" >&2
  as_service "$pgbin/pg_ctl" -D "$dir" -w -s -m fast stop >/dev/null
  rm -rf "$dir" "$sock"
  echo "$t1 - $t0" | bc
}
# Rounds alternate floor and scale up (the new slave removed again after
# each), and medians are compared: one pair of runs on this machine varies
# by half.
rounds=${ROUNDS:-3}
floors=(); scaleups=()
for round in $(seq 1 "$rounds"); do
  floors+=("$(floor)")
  scaleups+=("$(timed_scale_up "$work/one.yml" bench-main "bench-replica-$round")")
done
bare=$(median "${floors[@]}")
scaleup=$(median "${scaleups[@]}")

printf '\n| measurement | seconds |\n|---|---|\n'
printf '| quickstart apply (PostgreSQL master + slave, Redis) | %.2f |\n' "$quickstart"
printf '| data in the PostgreSQL group | %.2f GiB |\n' "$(echo "$bytes / 1073741824" | bc -l)"
printf '| floor: pg_basebackup -X stream --checkpoint=fast + start (median of %d: %s) | %.2f |\n' "$rounds" "${floors[*]}" "$bare"
printf '| dbgroups scale up: backup, provision, restore, enslave until streaming, env (median of %d: %s) | %.2f |\n' "$rounds" "${scaleups[*]}" "$scaleup"
printf '| ratio scale up / floor (target at most 1.2) | %.2f |\n' "$(echo "$scaleup / $bare" | bc -l)"

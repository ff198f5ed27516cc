#!/usr/bin/env bash
# Fan-out, in one run: a `dbgroups apply` adding 4 slaves to a PostgreSQL
# group holding SCALE pgbench scale (68 ≈ 1 GiB), against the same apply
# adding 1. The floor beside it is PostgreSQL's own tool: 4 pg_basebackup
# + start run in parallel, against 1. Rounds alternate the four runs (new
# slaves removed again after each) and medians are compared.
# Prints a table; docs/benchmarks.md records the figures.
#   bash scripts/bench-fanout.sh [SCALE] [ROUNDS]   (defaults 68 and 3)
# The scratch directory (and so the servers) is made under $TMPDIR: point
# it at a filesystem that can clone files (XFS with reflink, btrfs) to see
# the copies become clones.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/setup.sh
source scripts/lib/bench.sh
scale=${1:-68}
rounds=${2:-3}
bench_prepare
destroy_on_exit fanout
pgbin=/usr/lib/postgresql/15/bin

printf 'application: fanout\npostgresql:\n  configuration: { version: "15" }\n  backups: { managed: true }\n  servers:\n    - server: { unique_name: fanout-main }\n' >"$work/one.yml"
cp "$work/one.yml" "$work/manifest.yml"
"$dbgroups" apply -f "$work/manifest.yml" --auto-approve --refresh=false >/dev/null 2>&1
port=$(state_field fanout "[s for g in s['groups'] for s in g['servers']][0]['port']")
password=$(state_field fanout "s['credentials']['postgresql.default']['password']")
replication=$(state_field fanout "s['credentials']['postgresql.default']['replication_password']")
PGPASSWORD="$password" "$pgbin/pgbench" -q -i -s "$scale" -h 127.0.0.1 -p "$port" -U fanout fanout >/dev/null 2>&1
bytes=$(PGPASSWORD="$password" "$pgbin/psql" -tA -h 127.0.0.1 -p "$port" -U fanout -d fanout -c "select sum(pg_database_size(datname)) from pg_database")

# dbgroups: a scale up by N slaves, timed, then the slaves removed again.
scale_up() {
  local slaves=()
  for i in $(seq 1 "$1"); do slaves+=("fanout-slave-$i"); done
  timed_scale_up "$work/one.yml" fanout-main "${slaves[@]}"
}

# The floor: N pg_basebackup runs in parallel, each followed by a start of
# a server on its copy, as the servers' user.
one_copy() {
  local dir="$work/floor-$1" sock="$work/floor-$1-sock" fport
  fport=$(free_port)
  service_dir "$dir"; service_dir "$sock"
  as_service env PGPASSWORD="$replication" "$pgbin/pg_basebackup" -h 127.0.0.1 -p "$port" \
    -U replicator -D "$dir" --checkpoint=fast --wal-method=stream
  as_service "$pgbin/pg_ctl" -D "$dir" -w -s -o "-p $fport -k $sock -c listen_addresses=127.0.0.1" start >/dev/null
}
floor() {
  local t0 t1 pids=()
  t0=$(now)
  for i in $(seq 1 "$1"); do one_copy "$i" & pids+=($!); done
  for pid in "${pids[@]}"; do wait "$pid"; done
  t1=$(now)
  for i in $(seq 1 "$1"); do
    as_service "$pgbin/pg_ctl" -D "$work/floor-$i" -w -s -m fast stop >/dev/null
    rm -rf "$work/floor-$i" "$work/floor-$i-sock"
  done
  echo "$t1 - $t0" | bc
}

ones=(); fours=(); floor_ones=(); floor_fours=()
for _ in $(seq 1 "$rounds"); do
  ones+=("$(scale_up 1)")
  floor_ones+=("$(floor 1)")
  fours+=("$(scale_up 4)")
  floor_fours+=("$(floor 4)")
done
one=$(median "${ones[@]}"); four=$(median "${fours[@]}")
floor_one=$(median "${floor_ones[@]}"); floor_four=$(median "${floor_fours[@]}")

printf '\n| measurement (median of %d) | seconds |\n|---|---|\n' "$rounds"
printf '| filesystem of the state directory | %s |\n' "$(df --output=fstype "$work" | tail -1)"
printf '| data in the PostgreSQL group | %.2f GiB |\n' "$(echo "$bytes / 1073741824" | bc -l)"
printf '| dbgroups: scale up by 1 slave (%s) | %.2f |\n' "${ones[*]}" "$one"
printf '| dbgroups: scale up by 4 slaves (%s) | %.2f |\n' "${fours[*]}" "$four"
printf '| **dbgroups ratio 4 / 1** (target at most 1.6) | **%.2f** |\n' "$(echo "$four / $one" | bc -l)"
printf '| floor: 1 × pg_basebackup + start (%s) | %.2f |\n' "${floor_ones[*]}" "$floor_one"
printf '| floor: 4 × pg_basebackup + start in parallel (%s) | %.2f |\n' "${floor_fours[*]}" "$floor_four"
printf '| floor ratio 4 / 1 | %.2f |\n' "$(echo "$floor_four / $floor_one" | bc -l)"
printf '| dbgroups 4 slaves / floor 4 copies | %.2f |\n' "$(echo "$four / $floor_four" | bc -l)"

#!/usr/bin/env bash
# Time to a working Redis replica, in one run: a `dbgroups apply` scale up of
# a Redis group holding KEYS keys of 100 bytes, against the floor set by
# Redis itself: a bare redis-server told `REPLICAOF` the same master, until
# its link is up and the sync done. Rounds alternate floor and scale up (the
# new slave removed again after each) and medians are compared.
# Prints a table; docs/benchmarks.md records the figures.
#   bash scripts/bench-redis.sh [KEYS] [ROUNDS]   (defaults 2000000 and 3)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/setup.sh
source scripts/lib/bench.sh
keys=${1:-2000000}
rounds=${2:-3}
bench_prepare
destroy_on_exit rbench
field() { state_field rbench "$1"; }

cat > "$work/one.yml" <<'YML'
application: rbench
redis:
  configuration: { version: "7.0" }
  backups: { managed: true }
  servers:
    - server: { unique_name: rbench-main }
YML
cp "$work/one.yml" "$work/manifest.yml"
"$dbgroups" apply -f "$work/manifest.yml" --auto-approve --refresh=false >/dev/null 2>&1
port=$(field "[s for g in s['groups'] for s in g['servers']][0]['port']")
password=$(field "s['credentials']['redis.default']['password']")
cli() { REDISCLI_AUTH="$password" redis-cli -p "$1" "${@:2}"; }
cli "$port" EVAL "for i=1,tonumber(ARGV[1]) do redis.call('SET','key:'..i,string.rep('x',100)) end return 1" 0 "$keys" >/dev/null
memory=$(cli "$port" INFO memory | sed -n 's/^used_memory_human:\(.*\)\r$/\1/p')

# The floor: a bare redis-server (as the servers' user) replicating the master.
floor() {
  local dir="$work/floor" fport t0 t1
  fport=$(free_port)
  service_dir "$dir"
  t0=$(now)
  as_service redis-server --port "$fport" --bind 127.0.0.1 --dir "$dir" --daemonize yes \
    --pidfile "$dir/redis.pid" --logfile "$dir/redis.log" --masterauth "$password" --requirepass "$password" \
    --replicaof 127.0.0.1 "$port" >/dev/null
  until cli "$fport" INFO replication 2>/dev/null | grep -q "master_link_status:up" \
    && cli "$fport" INFO replication | grep -q "master_sync_in_progress:0"; do sleep 0.02; done
  t1=$(now)
  cli "$fport" SHUTDOWN NOSAVE >/dev/null 2>&1 || true
  sleep 0.5; rm -rf "$dir"
  echo "$t1 - $t0" | bc
}

floors=(); scaleups=()
for round in $(seq 1 "$rounds"); do
  floors+=("$(floor)")
  scaleups+=("$(timed_scale_up "$work/one.yml" rbench-main "rbench-replica-$round")")
done
floor_median=$(median "${floors[@]}")
scaleup_median=$(median "${scaleups[@]}")
syncs=$(cli "$port" INFO stats | sed -n 's/^sync_full:\(.*\)\r$/\1/p')

printf '\n| measurement | seconds |\n|---|---|\n'
printf '| data on the Redis master | %s keys, %s |\n' "$keys" "$memory"
printf '| floor: bare redis-server + REPLICAOF until synced (median of %d: %s) | %.2f |\n' "$rounds" "${floors[*]}" "$floor_median"
printf '| dbgroups scale up: provision, REPLICAOF until synced, env (median of %d: %s) | %.2f |\n' "$rounds" "${scaleups[*]}" "$scaleup_median"
printf '| ratio scale up / floor (target at most 1.2) | %.2f |\n' "$(echo "$scaleup_median / $floor_median" | bc -l)"
printf '| full syncs the master served (one per replica) | %s |\n' "$syncs"

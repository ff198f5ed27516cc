#!/usr/bin/env bash
# MariaDB physical seeding, in one run on this machine: a MariaDB group
# holding ROWS rows of ~110 bytes (8,000,000 rows is about 1 GiB) gets a new
# replica three ways, in alternating rounds:
#   - the floor, MariaDB's own tools by hand: `mariadb-backup --backup` of
#     the master, `--prepare`, the copy as a new server's data directory,
#     start, `SET GLOBAL gtid_slave_pos` from xtrabackup_binlog_info,
#     CHANGE MASTER and START SLAVE until both threads run;
#   - a dbgroups scale up (a slave of the group's own master: physical);
#   - a dbgroups seeding by a dump (a new group with `replicate_from` the
#     first: mariadb-dump, load, enslave), the way every MariaDB replica
#     was seeded before physical seeding.
# Medians are compared. Prints a table; docs/benchmarks.md records it.
# Before each measurement the master's files are read once and writes are
# flushed, so no run pays for the one before it (measured: without it,
# whichever copy ran first after a load paid 2-3 s more on 257 MiB).
#   bash scripts/bench-mariadb-physical.sh [ROWS] [ROUNDS]   (defaults 8000000 and 4)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/setup.sh
source scripts/lib/bench.sh
rows=${1:-8000000}
rounds=${2:-4}
bench_prepare
destroy_on_exit pbench
field() { state_field pbench "$1"; }

cat > "$work/base.yml" <<'YML'
application: pbench
mysql:
  groups:
    default:
      configuration: { engine: mariadb, version: "10.11" }
      backups: { managed: true }
      servers:
        - server: { unique_name: pbench-main }
YML
cp "$work/base.yml" "$work/manifest.yml"
"$dbgroups" apply -f "$work/manifest.yml" --auto-approve --refresh=false >/dev/null 2>&1
port=$(field "[s for g in s['groups'] for s in g['servers']][0]['port']")
admin=$(field "s['credentials']['mysql.default']['admin_password']")
replication=$(field "s['credentials']['mysql.default']['replication_password']")
master_dir="$work/.dbgroups/servers/pbench-main"
printf '[client]\nuser = root\npassword = %s\nsocket = %s/run/mysqld.sock\n' "$admin" "$master_dir" > "$work/master.cnf"
chmod 600 "$work/master.cnf"
[ "$(id -u)" = 0 ] && chown dbgroups:dbgroups "$work/master.cnf"
mariadb --defaults-extra-file="$work/master.cnf" pbench -e \
  "CREATE TABLE orders (id INT PRIMARY KEY, note VARCHAR(100)); INSERT INTO orders SELECT seq, REPEAT('x', 100) FROM seq_1_to_$rows"
size=$(mariadb --defaults-extra-file="$work/master.cnf" -N -e \
  "ANALYZE TABLE pbench.orders" >/dev/null; mariadb --defaults-extra-file="$work/master.cnf" -N -e \
  "SELECT ROUND(SUM(data_length + index_length) / 1048576) FROM information_schema.tables WHERE table_schema = 'pbench'")

# Before each measurement: the master's files read once (so every copy
# reads them from memory, whichever ran before it) and every write flushed.
settle() {
  find "$master_dir/data" -type f -exec cat {} + >/dev/null
  sync
}

# The floor, as the servers' user (mariadb-backup reads the master's files).
floor() {
  local dir="$work/floor" fport t0 t1 gtid
  fport=$(free_port)
  service_dir "$dir"
  as_service mkdir -p "$dir/tmp"
  printf '[mariadbd]\ndatadir = %s/data\nsocket = %s/s.sock\npid-file = %s/m.pid\nport = %s\nbind-address = 127.0.0.1\nserver_id = %s\nlog_bin = binlog\nbinlog_format = ROW\ngtid_strict_mode = ON\nskip_name_resolve = ON\nlog_error = %s/m.log\ntmpdir = %s/tmp\ninnodb_buffer_pool_size = 64M\n' \
    "$dir" "$dir" "$dir" "$fport" "$fport" "$dir" "$dir" | as_service tee "$dir/my.cnf" >/dev/null
  printf '[client]\nuser = root\npassword = %s\nsocket = %s/s.sock\n' "$admin" "$dir" | as_service tee "$dir/client.cnf" >/dev/null
  settle
  t0=$(now)
  as_service mariadb-backup --defaults-file="$work/master.cnf" --backup \
    --datadir="$master_dir/data" --target-dir="$dir/data" >/dev/null 2>&1
  tb=$(now)
  as_service mariadb-backup --no-defaults --prepare --target-dir="$dir/data" >/dev/null 2>&1
  tp=$(now)
  gtid=$(cut -f3 "$dir/data/xtrabackup_binlog_info")
  as_service mariadbd --defaults-file="$dir/my.cnf" >/dev/null 2>&1 &
  until as_service mariadb --defaults-extra-file="$dir/client.cnf" -e 'SELECT 1' >/dev/null 2>&1; do sleep 0.05; done
  ts=$(now)
  as_service mariadb --defaults-extra-file="$dir/client.cnf" -e \
    "SET GLOBAL gtid_slave_pos = '$gtid'; CHANGE MASTER TO MASTER_HOST='127.0.0.1', MASTER_PORT=$port, MASTER_USER='replicator', MASTER_PASSWORD='$replication', MASTER_USE_GTID=slave_pos; START SLAVE"
  until as_service mariadb --defaults-extra-file="$dir/client.cnf" -e 'SHOW SLAVE STATUS\G' | grep -q "Slave_SQL_Running: Yes" \
    && as_service mariadb --defaults-extra-file="$dir/client.cnf" -e 'SHOW SLAVE STATUS\G' | grep -q "Slave_IO_Running: Yes"; do sleep 0.05; done
  t1=$(now)
  printf 'floor: backup %.2f s, prepare %.2f s, start %.2f s, replicating %.2f s\n' \
    "$(echo "$tb - $t0" | bc)" "$(echo "$tp - $tb" | bc)" "$(echo "$ts - $tp" | bc)" "$(echo "$t1 - $ts" | bc)" >&2
  as_service mariadb --defaults-extra-file="$dir/client.cnf" -e 'SHUTDOWN' >/dev/null 2>&1 || true
  while [ -e "$dir/m.pid" ]; do sleep 0.1; done
  rm -rf "$dir"
  echo "$t1 - $t0" | bc
}

# timed_apply MANIFEST ARGS...: MANIFEST applied with ARGS; prints seconds.
timed_apply() {
  local manifest=$1 t0 t1
  shift
  cp "$manifest" "$work/manifest.yml"
  settle
  t0=$(now)
  "$dbgroups" apply -f "$work/manifest.yml" --auto-approve --refresh=false "$@" >"$work/apply.log" 2>&1 \
    || { cat "$work/apply.log" >&2; return 1; }
  t1=$(now)
  grep -E "done " "$work/apply.log" >&2 || true
  echo "$t1 - $t0" | bc
}

# back_to_base ARGS...: the base manifest applied with ARGS (removals).
back_to_base() {
  cp "$work/base.yml" "$work/manifest.yml"
  "$dbgroups" apply -f "$work/manifest.yml" --auto-approve --refresh=false "$@" >/dev/null 2>&1
}

physical() {
  local replica="pbench-replica-$1" seconds
  sed "s/        - server: { unique_name: pbench-main }/&\n        - server: { unique_name: $replica }/" "$work/base.yml" > "$work/scaled.yml"
  seconds=$(timed_apply "$work/scaled.yml")
  back_to_base --remove-server "$replica"
  echo "$seconds"
}

logical() {
  local group="copy$1" seconds
  cp "$work/base.yml" "$work/copy.yml"
  printf '    %s:\n      configuration: { engine: mariadb, version: "10.11" }\n      replicate_from: default\n      servers:\n        - server: { unique_name: pbench-%s }\n' "$group" "$group" >> "$work/copy.yml"
  seconds=$(timed_apply "$work/copy.yml" --add-group "mysql.$group")
  back_to_base --remove-group "mysql.$group"
  echo "$seconds"
}

floors=(); physicals=(); logicals=()
# The order alternates between rounds, so that neither the floor nor the
# scale up always reads the master's files right after the other.
for round in $(seq 1 "$rounds"); do
  if [ $((round % 2)) = 1 ]; then
    floors+=("$(floor)")
    physicals+=("$(physical "$round")")
  else
    physicals+=("$(physical "$round")")
    floors+=("$(floor)")
  fi
  logicals+=("$(logical "$round")")
done
floor_median=$(median "${floors[@]}")
physical_median=$(median "${physicals[@]}")
logical_median=$(median "${logicals[@]}")

printf '\n| measurement | seconds |\n|---|---|\n'
printf '| data in the MariaDB group | %s rows, %s MiB |\n' "$rows" "$size"
printf '| floor: mariadb-backup --backup, --prepare, start, gtid_slave_pos, CHANGE MASTER, until both threads run (median of %d: %s) | %.2f |\n' "$rounds" "${floors[*]}" "$floor_median"
printf '| dbgroups scale up, physical: provision, backup, restore, enslave, env (median of %d: %s) | %.2f |\n' "$rounds" "${physicals[*]}" "$physical_median"
printf '| dbgroups seeding by a dump: a replicate_from group (median of %d: %s) | %.2f |\n' "$rounds" "${logicals[*]}" "$logical_median"
printf '| ratio physical scale up / floor (target at most 1.2) | %.2f |\n' "$(echo "$physical_median / $floor_median" | bc -l)"
printf '| ratio seeding by a dump / physical scale up (target at least 3) | %.2f |\n' "$(echo "$logical_median / $physical_median" | bc -l)"

#!/usr/bin/env bash
# Time to a working MariaDB replica, in one run: a `dbgroups apply` scale up
# of a MariaDB group holding ROWS rows of ~110 bytes, against the floor set
# by MariaDB's own tools: a new server (install-db, start) loaded with
# `mariadb-dump --single-transaction --master-data=1 --gtid | mariadb`,
# then CHANGE MASTER and START SLAVE until both threads run. Rounds
# alternate floor and scale up (the new slave removed again after each) and
# medians are compared. Prints a table; docs/benchmarks.md records it.
#   bash scripts/bench-mariadb.sh [ROWS] [ROUNDS]   (defaults 2000000 and 3)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/setup.sh
source scripts/lib/bench.sh
rows=${1:-2000000}
rounds=${2:-3}
bench_prepare
destroy_on_exit mbench
field() { state_field mbench "$1"; }

cat > "$work/one.yml" <<'YML'
application: mbench
mysql:
  configuration: { engine: mariadb, version: "10.11" }
  backups: { managed: true }
  servers:
    - server: { unique_name: mbench-main }
YML
cp "$work/one.yml" "$work/manifest.yml"
"$dbgroups" apply -f "$work/manifest.yml" --auto-approve --refresh=false >/dev/null 2>&1
port=$(field "[s for g in s['groups'] for s in g['servers']][0]['port']")
admin=$(field "s['credentials']['mysql.default']['admin_password']")
replication=$(field "s['credentials']['mysql.default']['replication_password']")
master_socket="$work/.dbgroups/servers/mbench-main/run/mysqld.sock"
printf '[client]\nuser = root\npassword = %s\nsocket = %s\n' "$admin" "$master_socket" > "$work/master.cnf"
chmod 600 "$work/master.cnf"
mariadb --defaults-extra-file="$work/master.cnf" mbench -e \
  "CREATE TABLE orders (id INT PRIMARY KEY, note VARCHAR(100)); INSERT INTO orders SELECT seq, REPEAT('x', 100) FROM seq_1_to_$rows"
size=$(mariadb --defaults-extra-file="$work/master.cnf" -N -e \
  "ANALYZE TABLE mbench.orders" >/dev/null; mariadb --defaults-extra-file="$work/master.cnf" -N -e \
  "SELECT ROUND(SUM(data_length + index_length) / 1048576) FROM information_schema.tables WHERE table_schema = 'mbench'")

# The floor: MariaDB's tools, on a server started by hand as the servers' user.
# The load is kept out of the new server's binlog, or the dump's closing
# `SET GLOBAL gtid_slave_pos` conflicts with the GTIDs the load wrote.
floor() {
  local dir="$work/floor" fport t0 t1
  fport=$(free_port)
  rm -rf "$dir"; mkdir -p "$dir/data" "$dir/tmp"
  printf '[mariadbd]\ndatadir = %s/data\nsocket = %s/s.sock\npid-file = %s/m.pid\nport = %s\nbind-address = 127.0.0.1\nserver_id = %s\nlog_bin = binlog\nbinlog_format = ROW\ngtid_strict_mode = ON\nskip_name_resolve = ON\nlog_error = %s/m.log\ntmpdir = %s/tmp\ninnodb_buffer_pool_size = 64M\n' \
    "$dir" "$dir" "$dir" "$fport" "$fport" "$dir" "$dir" > "$dir/my.cnf"
  [ "$(id -u)" = 0 ] && chown -R dbgroups:dbgroups "$dir"
  t0=$(now)
  as_service mariadb-install-db --defaults-file="$dir/my.cnf" --auth-root-authentication-method=normal --skip-test-db >/dev/null
  as_service mariadbd --defaults-file="$dir/my.cnf" >/dev/null 2>&1 &
  until as_service mariadb -S "$dir/s.sock" -uroot -e 'SELECT 1' >/dev/null 2>&1; do sleep 0.05; done
  mariadb-dump --defaults-extra-file="$work/master.cnf" --single-transaction --master-data=1 --gtid --databases mbench \
    | as_service mariadb -S "$dir/s.sock" -uroot --init-command='SET SESSION sql_log_bin = 0'
  as_service mariadb -S "$dir/s.sock" -uroot -e \
    "CHANGE MASTER TO MASTER_HOST='127.0.0.1', MASTER_PORT=$port, MASTER_USER='replicator', MASTER_PASSWORD='$replication', MASTER_USE_GTID=slave_pos; START SLAVE"
  until as_service mariadb -S "$dir/s.sock" -uroot -e 'SHOW SLAVE STATUS\G' | grep -q "Slave_SQL_Running: Yes" \
    && as_service mariadb -S "$dir/s.sock" -uroot -e 'SHOW SLAVE STATUS\G' | grep -q "Slave_IO_Running: Yes"; do sleep 0.05; done
  t1=$(now)
  as_service mariadb -S "$dir/s.sock" -uroot -e 'SHUTDOWN' >/dev/null 2>&1 || true
  while [ -e "$dir/m.pid" ]; do sleep 0.1; done
  rm -rf "$dir"
  echo "$t1 - $t0" | bc
}

floors=(); scaleups=()
for round in $(seq 1 "$rounds"); do
  floors+=("$(floor)")
  scaleups+=("$(timed_scale_up "$work/one.yml" mbench-main "mbench-replica-$round")")
done
floor_median=$(median "${floors[@]}")
scaleup_median=$(median "${scaleups[@]}")

printf '\n| measurement | seconds |\n|---|---|\n'
printf '| data in the MariaDB group | %s rows, %s MiB |\n' "$rows" "$size"
printf '| floor: install-db + start + mariadb-dump piped into mariadb + CHANGE MASTER, until both threads run (median of %d: %s) | %.2f |\n' "$rounds" "${floors[*]}" "$floor_median"
printf '| dbgroups scale up: provision, dump, restore, enslave, env (median of %d: %s) | %.2f |\n' "$rounds" "${scaleups[*]}" "$scaleup_median"
printf '| ratio scale up / floor (target at most 1.2) | %.2f |\n' "$(echo "$scaleup_median / $floor_median" | bc -l)"

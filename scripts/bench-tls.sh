#!/usr/bin/env bash
# The cost of TLS between hosts, in one run, on three test hosts
# (scripts/test-hosts.sh): a PostgreSQL 15 master that dbgroups builds on
# host 1 (TLS on, as on every host), holding SCALE pgbench scale; a copy
# for a new replica taken on host 2 with pg_basebackup (what dbgroups runs
# there for a scale up); pgbench on host 3 against the master while the
# copy runs. Each round measures both with TLS (sslmode=verify-full
# against the application's authority) and without (sslmode=disable,
# through a plain `host` rule the script adds to the master's pg_hba.conf
# for the benchmark only), in alternating order; medians are compared.
# Prints a table; docs/benchmarks.md records the figures.
#   bash scripts/bench-tls.sh [SCALE] [ROUNDS]   (defaults 40 and 3)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/setup.sh
source scripts/lib/bench.sh
scale=${1:-40}
rounds=${2:-3}
bench_prepare
bash scripts/test-hosts.sh install-deps >/dev/null
hosts_state="$work/hosts"
# test-hosts.sh COMMAND [OPTIONS]: this benchmark's own set of hosts.
hosts() { bash scripts/test-hosts.sh "$1" --prefix tlsb --subnet 71 --state "$hosts_state" "${@:2}"; }
address() { echo "198.18.71.$((10 + $1))"; }
finish() {
  "$dbgroups" destroy -f "$work/manifest.yml" --app tlsbench --auto-approve >/dev/null 2>&1 || true
  hosts down >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap finish EXIT
hosts up 3 >/dev/null
# Runs a command inside host K (all its namespaces), with a plain
# environment.
on() {
  local k=$1
  shift
  nsenter -t "$(<"$hosts_state/host$k/init.pid")" -a -- env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root \
    /bin/bash -c "$*"
}

cat >"$work/manifest.yml" <<EOF
application: tlsbench
ssh: { user: root, identity_file: $hosts_state/id_ed25519, known_hosts_file: $hosts_state/known_hosts }
postgresql:
  configuration: { version: "15" }
  backups: { managed: true }
  allow_from: [$(address 3)/32]
  servers:
    - server: { unique_name: bench-main, address: $(address 1) }
EOF
"$dbgroups" apply -f "$work/manifest.yml" --auto-approve --refresh=false >"$work/apply.log" 2>&1 \
  || { cat "$work/apply.log" >&2; exit 1; }
port=$(state_field tlsbench "[s for g in s['groups'] for s in g['servers']][0]['port']")
password=$(state_field tlsbench "s['credentials']['postgresql.default']['password']")
replication=$(state_field tlsbench "s['credentials']['postgresql.default']['replication_password']")
authority=$(state_field tlsbench "s['authority']['certificate']")
pgbin=/usr/lib/postgresql/15/bin
data=/var/lib/dbgroups/servers/bench-main/data

# Passwords in ~/.pgpass on the client hosts, never on a command line.
for k in 2 3; do
  printf '%s' "$authority" | on "$k" "cat > /tmp/ca.crt"
  printf '*:*:*:tlsbench:%s\n*:*:*:replicator:%s\n' "$password" "$replication" \
    | on "$k" "umask 077; cat > /root/.pgpass"
done
printf '*:*:*:tlsbench:%s\n*:*:*:postgres:%s\n' "$password" \
  "$(state_field tlsbench "s['credentials']['postgresql.default']['admin_password']")" \
  | on 1 "umask 077; cat > /root/.pgpass"
# The plain path, for this benchmark only: `host` rules for the test
# subnet beside dbgroups' `hostssl` ones, and a reload.
on 1 "printf 'host all all 198.18.71.0/24 scram-sha-256\nhost replication all 198.18.71.0/24 scram-sha-256\n' >> $data/pg_hba.conf"
on 1 "$pgbin/psql -h 127.0.0.1 -p $port -U postgres -d postgres -Atc 'SELECT pg_reload_conf()'" >/dev/null
on 1 "$pgbin/pgbench -q -i -s $scale -h 127.0.0.1 -p $port -U tlsbench tlsbench" >/dev/null 2>&1
bytes=$(on 1 "$pgbin/psql -h 127.0.0.1 -p $port -U tlsbench -d tlsbench -Atc 'SELECT pg_database_size(current_database())'")

conninfo() { echo "host=$(address 1) port=$port sslmode=$1 sslrootcert=/tmp/ca.crt"; }
# One copy for a new replica on host 2, timed (seconds).
copy() {
  on 2 "rm -rf /tmp/copy; t0=\$(date +%s.%N); $pgbin/pg_basebackup -d '$(conninfo "$1") user=replicator' -D /tmp/copy -X stream -c fast --no-sync && t1=\$(date +%s.%N); rm -rf /tmp/copy; echo \"\$t1 - \$t0\" | bc"
}
# pgbench on host 3 for 10 s while a copy runs on host 2: the master's
# transactions per second.
busy_tps() {
  on 3 "$pgbin/pgbench -n -c 4 -j 2 -T 10 -d '$(conninfo "$1") user=tlsbench dbname=tlsbench'" >"$work/pgbench.$1" 2>&1 &
  local bench=$!
  sleep 1
  copy "$1" >/dev/null
  wait "$bench"
  sed -n 's/^tps = \([0-9.]*\).*/\1/p' "$work/pgbench.$1" | head -1
}
# The plain path really is plain, and the TLS path TLS.
on 3 "$pgbin/psql -d '$(conninfo disable) user=tlsbench dbname=tlsbench' -Atc 'SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()'" | grep -qx f
on 3 "$pgbin/psql -d '$(conninfo verify-full) user=tlsbench dbname=tlsbench' -Atc 'SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()'" | grep -qx t

declare -a copy_tls copy_plain tps_tls tps_plain
for round in $(seq 1 "$rounds"); do
  if (( round % 2 )); then order=(verify-full disable); else order=(disable verify-full); fi
  for mode in "${order[@]}"; do
    seconds=$(copy "$mode")
    tps=$(busy_tps "$mode")
    if [ "$mode" = verify-full ]; then
      copy_tls+=("$seconds") tps_tls+=("$tps")
    else
      copy_plain+=("$seconds") tps_plain+=("$tps")
    fi
    echo "round $round $mode: copy ${seconds}s, master ${tps} tps during a copy" >&2
  done
done
ct=$(median "${copy_tls[@]}") cp=$(median "${copy_plain[@]}")
tt=$(median "${tps_tls[@]}") tp=$(median "${tps_plain[@]}")
printf '| data | copy, TLS | copy, plain | ratio | master tps during a copy, TLS | plain | ratio |\n'
printf '|---:|---:|---:|---:|---:|---:|---:|\n'
printf '| %s MiB | %.2f s | %.2f s | **%.2f** | %.0f | %.0f | **%.2f** |\n' \
  "$((bytes / 1048576))" "$ct" "$cp" "$(echo "$ct / $cp" | bc -l)" "$tt" "$tp" "$(echo "$tt / $tp" | bc -l)"

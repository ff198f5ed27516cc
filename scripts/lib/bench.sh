# Helpers shared by the benchmark scripts (sourced; `work` must be set to
# the script's scratch directory before `state_field` is called).

now() { date +%s.%N; }

# The floors run the databases' own clients, which read the caller's
# settings (PGPASSWORD, PGSSLMODE, MYSQL_HOST, REDISCLI_AUTH …): none of
# those may reach them, as none reaches dbgroups' own processes. Each
# client call below names its password, host and port itself.
while read -r name; do unset "$name"; done < <(compgen -e | grep -E '^(PG[A-Z]+|MYSQL_[A-Z_]+|MYSQL_PWD|REDISCLI_AUTH|MONGODB_[A-Z_]+)$')

# Runs a command as the servers' user when we are root: PostgreSQL and
# MariaDB refuse to run as root, and a floor must run as dbgroups' do.
as_service() {
  if [ "$(id -u)" = 0 ]; then
    setpriv --reuid=dbgroups --regid=dbgroups --clear-groups -- "$@"
  else
    "$@"
  fi
}

# A directory the servers' user owns.
service_dir() {
  rm -rf "$1"; mkdir -p "$1"; chmod 700 "$1"
  if [ "$(id -u)" = 0 ]; then chown dbgroups:dbgroups "$1"; fi
}

# The median of its arguments (numbers).
median() { printf '%s\n' "$@" | sort -n | sed -n "$(( ($# + 1) / 2 ))p"; }

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# state_field APP EXPR: EXPR evaluated over the application's state file
# (`s`), for ports and generated passwords.
state_field() {
  python3 -c "import json,sys; s=json.load(open('$work/.dbgroups/apps/$1.json')); print(eval(sys.argv[1]))" "$2"
}

# The tools and database packages, `bc`, and a release build: sets
# `dbgroups` (the binary) and `work` (a scratch directory under $TMPDIR
# that the servers' user can traverse).
bench_prepare() {
  ensure_rust_toolchain
  ensure_database_servers
  ensure_package bc /usr/bin/bc
  # DBGROUPS_BENCH_BINARY names a dbgroups already built (a release build
  # in another target directory, or a debug build for a quick run).
  if [ -n "${DBGROUPS_BENCH_BINARY:-}" ]; then
    dbgroups=$(realpath "$DBGROUPS_BENCH_BINARY")
  else
    cargo build --release --locked -q
    dbgroups="$PWD/target/release/dbgroups"
  fi
  work=$(mktemp -d)
  chmod o+x "$work"
}

# destroy_on_exit APP: when the script ends, APP (declared in
# $work/manifest.yml) is destroyed and $work removed.
destroy_on_exit() {
  bench_app=$1
  trap bench_cleanup EXIT
}
bench_cleanup() {
  "$dbgroups" destroy -f "$work/manifest.yml" --app "$bench_app" --auto-approve >/dev/null 2>&1 \
    || echo "warning: destroy failed; servers may still run under $work" >&2
  rm -rf "$work"
}

# timed_scale_up BASE MASTER REPLICA...: $work/manifest.yml becomes BASE
# (a manifest file) with the REPLICAs declared after MASTER, and is
# applied; prints the apply's seconds (its step lines go to stderr). Then
# BASE is applied again with the replicas removed.
timed_scale_up() {
  local base=$1 master=$2 t0 t1 extra="" removals=()
  shift 2
  for replica in "$@"; do
    extra+="\n    - server: { unique_name: $replica }"
    removals+=(--remove-server "$replica")
  done
  sed "s/    - server: { unique_name: $master }/&$extra/" "$base" >"$work/manifest.yml"
  t0=$(now)
  "$dbgroups" apply -f "$work/manifest.yml" --auto-approve --refresh=false >"$work/scaleup.log" 2>&1 \
    || { cat "$work/scaleup.log" >&2; return 1; }
  t1=$(now)
  grep -E "done " "$work/scaleup.log" | sed "s/^/$# replica(s): /" >&2 || true
  cp "$base" "$work/manifest.yml"
  "$dbgroups" apply -f "$work/manifest.yml" --auto-approve --refresh=false "${removals[@]}" >/dev/null 2>&1
  echo "$t1 - $t0" | bc
}

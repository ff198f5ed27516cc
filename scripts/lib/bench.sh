# Helpers shared by the benchmark scripts (sourced; `work` must be set to
# the script's scratch directory before `state_field` is called).

now() { date +%s.%N; }

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

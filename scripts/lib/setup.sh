# Shared set-up for the scripts: sourced, not run.

step() { printf '\n==> %s\n' "$*"; }

# The Rust toolchain comes with the machine image (rustup); Debian's own
# cargo is too old for edition 2024, so say so rather than install it.
ensure_rust_toolchain() {
  if [ -f "$HOME/.cargo/env" ]; then
    # shellcheck disable=SC1091
    source "$HOME/.cargo/env"
  fi
  if ! command -v cargo >/dev/null 2>&1; then
    echo "error: cargo not found; install Rust 1.85 or newer with rustup (https://rustup.rs)" >&2
    exit 1
  fi
}

# Installs Debian packages that are missing (CI machines are root; elsewhere
# sudo is used when present). `check` is a file the package provides.
ensure_package() {
  local package=$1 check=$2
  [ -e "$check" ] && return 0
  step "installing $package (for $check)"
  local sudo=""
  if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then sudo=sudo; else
      echo "error: $package is missing and this is not root; install it: apt-get install $package" >&2
      exit 1
    fi
  fi
  if [ -z "${DBGROUPS_APT_UPDATED:-}" ]; then
    $sudo apt-get update -q
    DBGROUPS_APT_UPDATED=1
  fi
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends "$package"
}

# The database servers the live tests start.
ensure_database_servers() {
  ensure_package postgresql /usr/lib/postgresql/15/bin/postgres
  ensure_package redis-server /usr/bin/redis-server
  ensure_package mariadb-server /usr/sbin/mariadbd
  # Physical seeding of MariaDB replicas (mariadb-backup, mbstream).
  ensure_package mariadb-backup /usr/bin/mariadb-backup
}

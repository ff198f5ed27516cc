#!/usr/bin/env bash
# Test hosts on one machine: N "hosts", each a network namespace on a
# private bridge with its own PID, mount, UTS and IPC namespaces, its own
# /etc and /var/lib (overlays) and other "disk" directories, and a real
# OpenSSH sshd. For the ssh provider's tests, and for trying the ssh
# provider on one machine. docs/hosts.md ("Test hosts on one machine")
# explains it; `--help` lists the commands.
#
# No test traffic leaves the machine: addresses come only from
# 198.18.0.0/15 (RFC 2544, benchmarking), the hosts have no default route,
# there is no NAT, and an nftables table drops anything forwarded between the
# bridge and any other interface (also should ip_forward ever be turned on).
#
# `up` refuses (exit 3) when the state directory, a namespace, the bridge or
# the subnet is already in use: run `down` first. `down` removes whatever
# exists for the names in the state directory's config (or on the command
# line), so it also cleans up after an `up` that failed half-way.
set -euo pipefail

SELF=$(readlink -f "${BASH_SOURCE[0]}")
DEFAULT_STATE=/var/tmp/dbgroups-test-hosts
LOCK_FILE=/run/lock/dbgroups-test-hosts.lock
MARKER=.dbgroups-test-hosts
TIMEOUT=${DBGROUPS_TEST_HOSTS_TIMEOUT:-120}
EXIT_IN_USE=3

usage() {
  cat <<'EOF'
usage: scripts/test-hosts.sh COMMAND [OPTIONS]

commands:
  up N            create N hosts (1..240) and start them; exit 3 if in use
  down            stop and remove everything (also after a failed up)
  status          table of hosts, addresses, init PIDs and sshd
  power-cut K     kill every process of host K at once (its disk is kept)
  boot K          start host K again (init + sshd) on the same disk
  run K           boot host K in the foreground: returns when it is powered
                  off (for callers that reap it, like the tests' wrapper)
  wait-ssh K      wait until host K's sshd answers
  install-deps    apt-get install the packages this needs (as root)

options:
  --state DIR     state directory (default /var/tmp/dbgroups-test-hosts)
  --prefix P      name prefix, [a-z][a-z0-9]{0,7} (default dbg): namespaces
                  P-hostK, host-side veths P-vK, ssh aliases P-hostK
  --subnet I      198.18.I.0/24, 0..255 (default 0): bridge .1, host K .(10+K)
  --bridge NAME   bridge name (default P-brI, so dbg-br0)
  --no-boot       up: create the hosts but start none (then `run K`)
  --keep-state    down: keep the state directory (the hosts' disks)

Environment: DBGROUPS_TEST_HOSTS_TIMEOUT (seconds, default 120) bounds every
wait (boot, sshd answering, processes dying).
EOF
}

die() {
  echo "test-hosts: error: $*" >&2
  exit 1
}
say() { echo "test-hosts: $*" >&2; }

# ---------------------------------------------------------------- options

STATE="" PREFIX="" SUBNET="" BRIDGE="" KEEP_STATE=0 NO_BOOT=0
parse_options() {
  POSITIONAL=()
  while [ $# -gt 0 ]; do
    case $1 in
      --state) [ $# -ge 2 ] || die "--state needs a directory"; STATE=$2; shift 2 ;;
      --state=*) STATE=${1#*=}; shift ;;
      --prefix) [ $# -ge 2 ] || die "--prefix needs a value"; PREFIX=$2; shift 2 ;;
      --prefix=*) PREFIX=${1#*=}; shift ;;
      --subnet) [ $# -ge 2 ] || die "--subnet needs a value"; SUBNET=$2; shift 2 ;;
      --subnet=*) SUBNET=${1#*=}; shift ;;
      --bridge) [ $# -ge 2 ] || die "--bridge needs a value"; BRIDGE=$2; shift 2 ;;
      --bridge=*) BRIDGE=${1#*=}; shift ;;
      --keep-state) KEEP_STATE=1; shift ;;
      --no-boot) NO_BOOT=1; shift ;;
      -h | --help) usage; exit 0 ;;
      -*) die "unknown option $1 (see --help)" ;;
      *) POSITIONAL+=("$1"); shift ;;
    esac
  done
}

# The names from the state directory's config when it has one (so `down`
# and `boot` need only --state), else from the options, else the defaults.
COUNT=0
load_names() {
  STATE=${STATE:-$DEFAULT_STATE}
  case $STATE in /*) ;; *) STATE=$PWD/$STATE ;; esac
  STATE=${STATE%/}
  [[ $STATE =~ ^/[A-Za-z0-9._/+-]+$ ]] || die "state directory '$STATE': use only letters, digits and ._+-/"
  case $STATE/ in
    /etc/* | /var/lib/* | /var/log/* | /home/* | /proc/* | /sys/* | /dev/*)
      die "state directory '$STATE': not under /etc, /var/lib, /var/log, /home, /proc, /sys or /dev (the hosts mount over those)" ;;
  esac
  if [ -f "$STATE/config" ]; then
    local key value
    while IFS='=' read -r key value; do
      case $key in
        PREFIX) [ -n "$PREFIX" ] && [ "$PREFIX" != "$value" ] && die "$STATE is for prefix $value, not $PREFIX"; PREFIX=$value ;;
        SUBNET) [ -n "$SUBNET" ] && [ "$SUBNET" != "$value" ] && die "$STATE is for subnet $value, not $SUBNET"; SUBNET=$value ;;
        BRIDGE) [ -n "$BRIDGE" ] && [ "$BRIDGE" != "$value" ] && die "$STATE is for bridge $value, not $BRIDGE"; BRIDGE=$value ;;
        COUNT) COUNT=$value ;;
      esac
    done <"$STATE/config"
  fi
  PREFIX=${PREFIX:-dbg}
  SUBNET=${SUBNET:-0}
  [[ $PREFIX =~ ^[a-z][a-z0-9]{0,7}$ ]] || die "prefix '$PREFIX': want [a-z][a-z0-9]{0,7} (interface names have 15 characters)"
  [[ $SUBNET =~ ^[0-9]{1,3}$ ]] && [ "$SUBNET" -le 255 ] || die "subnet '$SUBNET': want 0..255 (198.18.I.0/24)"
  SUBNET=$((10#$SUBNET))
  BRIDGE=${BRIDGE:-$PREFIX-br$SUBNET}
  [[ $BRIDGE =~ ^[A-Za-z0-9][A-Za-z0-9_-]{0,14}$ ]] || die "bridge '$BRIDGE': want at most 15 of [A-Za-z0-9_-]"
  [[ $COUNT =~ ^[0-9]+$ ]] || die "$STATE/config: bad COUNT"
  NET=198.18.$SUBNET
  NFT_TABLE=dbgroups_test_hosts_${BRIDGE//-/_}
}

host_name() { echo "$PREFIX-host$1"; }
host_addr() { echo "$NET.$((10 + $1))"; }
host_veth() { echo "$PREFIX-v$1"; }
host_dir() { echo "$STATE/host$1"; }

require_root() {
  [ "$(id -u)" -eq 0 ] || die "must run as root (it creates network namespaces, a bridge and mounts); try: sudo $0 $*"
}

require_tools() {
  local missing=() tool
  for tool in ip nft unshare nsenter setsid flock sshd ssh ssh-keygen sudo useradd usermod perl timeout findmnt; do
    command -v "$tool" >/dev/null 2>&1 || [ -x "/usr/sbin/$tool" ] || missing+=("$tool")
  done
  [ ${#missing[@]} -eq 0 ] ||
    die "missing ${missing[*]}: run scripts/test-hosts.sh install-deps (openssh-server openssh-client sudo iproute2 nftables util-linux procps)"
  grep -qw overlay /proc/filesystems || modprobe overlay 2>/dev/null || true
  grep -qw overlay /proc/filesystems || die "the kernel has no overlay filesystem (each host's /etc and /var/lib are overlays)"
}

valid_host() {
  [[ $1 =~ ^[0-9]+$ ]] && [ "$1" -ge 1 ] && [ "$1" -le "$COUNT" ] ||
    die "no host '$1' in $STATE (hosts 1..$COUNT; is it up?)"
}

# ------------------------------------------------------------------ waits

# wait_until SECONDS WHAT COMMAND...: polls COMMAND every 0.1 s.
wait_until() {
  local seconds=$1 what=$2
  shift 2
  local deadline=$((SECONDS + seconds))
  until "$@"; do
    [ $SECONDS -lt $deadline ] || { say "timed out after ${seconds}s waiting for $what"; return 1; }
    sleep 0.1
  done
}

sshd_answers() {
  timeout 5 bash -c 'exec 3<>"/dev/tcp/$1/22" && IFS= read -r -t 4 line <&3 && [[ $line == SSH-2.0-* ]]' _ "$1" 2>/dev/null
}

# Host K's init PID (as the root namespace sees it) while it runs. The
# process's start time must be the one recorded at boot, so a reused PID is
# never taken for the host (namespace inode numbers are no use for this:
# the kernel hands a freed one to the next namespace). A zombie init is a
# dead host: the kernel lets a PID namespace's init exit only after every
# other process in that namespace is gone.
running_init() {
  local hd pid start stat
  hd=$(host_dir "$1")
  [ -f "$hd/init.pid" ] && [ -f "$hd/init.start" ] || return 1
  pid=$(<"$hd/init.pid") start=$(<"$hd/init.start")
  stat=$(cat "/proc/$pid/stat" 2>/dev/null) || return 1
  local -a f
  read -r -a f <<<"${stat##*) }"
  [ "${f[0]}" != Z ] && [ "${f[19]}" = "$start" ] || return 1
  echo "$pid"
}

host_is_off() { ! running_init "$1" >/dev/null; }

netns_has_processes() { [ -n "$(ip netns pids "$1" 2>/dev/null)" ]; }
link_exists() { ip link show dev "$1" >/dev/null 2>&1; }
link_gone() { ! link_exists "$1"; }
netns_exists() { [ -e "/run/netns/$1" ]; }

# ------------------------------------------------------------------- lock

# One lock for creating and removing names, so two runs never both decide
# a name is free, and a failed `up` only ever removes what it created.
LOCKED=0
lock_names() {
  [ $LOCKED -eq 1 ] && return 0
  mkdir -p "$(dirname "$LOCK_FILE")"
  exec 9>>"$LOCK_FILE"
  flock -w "$TIMEOUT" 9 || die "could not take $LOCK_FILE within ${TIMEOUT}s"
  LOCKED=1
}
unlock_names() {
  [ $LOCKED -eq 1 ] || return 0
  exec 9>&-
  LOCKED=0
}

# --------------------------------------------------------------------- up

cmd_up() {
  [ ${#POSITIONAL[@]} -eq 1 ] || die "usage: up N [--state DIR] [--prefix P] [--subnet I] [--bridge NAME]"
  local n=${POSITIONAL[0]}
  [[ $n =~ ^[0-9]+$ ]] && [ "$n" -ge 1 ] && [ "$n" -le 240 ] || die "N must be 1..240, not '$n'"
  require_root up
  require_tools
  load_names
  [ "$COUNT" -eq 0 ] || in_use "$STATE already holds $COUNT hosts (prefix $PREFIX): run down first"
  lock_names
  check_free "$n"
  mkdir -p -m 0700 "$STATE"
  : >"$STATE/$MARKER"
  printf 'PREFIX=%s\nSUBNET=%s\nBRIDGE=%s\nCOUNT=%s\n' "$PREFIX" "$SUBNET" "$BRIDGE" "$n" >"$STATE/config"
  COUNT=$n
  trap 'up_failed' EXIT
  trap 'exit 130' INT TERM HUP

  create_network
  unlock_names
  ssh-keygen -q -t ed25519 -N '' -C "dbgroups-test-hosts client" -f "$STATE/id_ed25519" </dev/null
  chmod 0600 "$STATE/id_ed25519"
  local k
  for k in $(seq 1 "$COUNT"); do prepare_host "$k"; done
  write_ssh_files
  if [ $NO_BOOT -eq 0 ]; then
    for k in $(seq 1 "$COUNT"); do launch_host "$k"; done
    for k in $(seq 1 "$COUNT"); do wait_booted "$k"; done
  fi

  trap - EXIT INT TERM HUP
  if [ $NO_BOOT -eq 0 ]; then say "$COUNT hosts up (state $STATE)"; else say "$COUNT hosts created, none booted (state $STATE)"; fi
  print_status
  echo
  echo "ssh -F $STATE/ssh_config root@$(host_name 1)"
}

in_use() {
  echo "test-hosts: in use: $*" >&2
  exit $EXIT_IN_USE
}

check_free() {
  local n=$1 k
  if [ -e "$STATE" ] && [ -n "$(ls -A "$STATE" 2>/dev/null)" ]; then
    in_use "$STATE exists and is not empty (a failed run? try: $0 down --state $STATE)"
  fi
  link_gone "$BRIDGE" || in_use "bridge $BRIDGE exists"
  for k in $(seq 1 "$n"); do
    netns_exists "$(host_name "$k")" && in_use "network namespace $(host_name "$k") exists"
    link_gone "$(host_veth "$k")" || in_use "interface $(host_veth "$k") exists"
  done
  if ip -4 -o addr show | grep -q " inet $NET\."; then in_use "subnet $NET.0/24 has an address here"; fi
  if nft list table inet "$NFT_TABLE" >/dev/null 2>&1; then in_use "nftables table inet $NFT_TABLE exists"; fi
}

up_failed() {
  local rc=$?
  trap - EXIT INT TERM HUP
  say "up failed (exit $rc); removing what it created"
  local k hd
  for k in $(seq 1 "$COUNT"); do
    hd=$(host_dir "$k")
    if [ -s "$hd/console.log" ]; then
      say "console of $(host_name "$k") ($hd/console.log):"
      tail -n 30 "$hd/console.log" | sed 's/^/    /' >&2
    fi
  done
  KEEP_STATE=0
  lock_names
  remove_everything || say "cleanup incomplete: run $0 down --state $STATE"
  exit "$rc"
}

disable_ipv6() {
  # The brief: addresses only from 198.18.0.0/15, so no IPv6 link-local.
  local f=/proc/sys/net/ipv6/conf/$1/disable_ipv6
  if [ -w "$f" ]; then echo 1 >"$f"; fi
}

create_network() {
  nft -f - <<EOF
table inet $NFT_TABLE {
  chain forward {
    type filter hook forward priority filter - 10; policy accept;
    iifname "$BRIDGE" oifname != "$BRIDGE" drop
    oifname "$BRIDGE" iifname != "$BRIDGE" drop
  }
}
EOF
  ip link add "$BRIDGE" type bridge
  disable_ipv6 "$BRIDGE"
  ip addr add "$NET.1/24" dev "$BRIDGE"
  ip link set "$BRIDGE" up
  local k ns veth
  for k in $(seq 1 "$COUNT"); do
    ns=$(host_name "$k") veth=$(host_veth "$k")
    ip netns add "$ns"
    ip netns exec "$ns" sh -c '
      echo 1 >/proc/sys/net/ipv6/conf/default/disable_ipv6 2>/dev/null || true
      echo 0 >/proc/sys/net/ipv4/ip_forward'
    ip link add "$veth" type veth peer name eth0 netns "$ns"
    disable_ipv6 "$veth"
    ip link set "$veth" master "$BRIDGE" up
    ip -n "$ns" addr add "$(host_addr "$k")/24" dev eth0
    ip -n "$ns" link set eth0 up
    ip -n "$ns" link set lo up
  done
}

# The host's disk: overlay upper layers for /etc and /var/lib (the
# machine's as the lower layers; a host's writes land only in its state
# directory), and its own /var/log, /root, /home, /tmp, /var/tmp and /run.
# /etc is a whole overlay rather than bind-mounted copies of passwd and
# friends: useradd replaces /etc/passwd by rename, which fails on a
# bind-mounted file.
prepare_host() {
  local k=$1 hd name etc
  hd=$(host_dir "$k") name=$(host_name "$k")
  etc=$hd/etc
  mkdir -m 0755 "$hd"
  mkdir "$etc" "$hd/etc-work"
  chown --reference=/etc "$etc"
  chmod --reference=/etc "$etc"
  # A fresh host has no dbgroups user, even if this machine's local
  # provider created one here; the "-" backups are hidden (whiteouts).
  local f
  for f in passwd group shadow gshadow; do
    [ -f "/etc/$f" ] || continue
    grep -v '^dbgroups:' "/etc/$f" >"$etc/$f" || true
    chown --reference="/etc/$f" "$etc/$f"
    chmod --reference="/etc/$f" "$etc/$f"
    if [ -e "/etc/$f-" ]; then mknod "$etc/$f-" c 0 0; fi
  done
  echo "$name" >"$etc/hostname"
  od -An -N16 -tx1 /dev/urandom | tr -d ' \n' >"$etc/machine-id"
  echo >>"$etc/machine-id"
  {
    echo "127.0.0.1 localhost"
    echo "::1 localhost ip6-localhost ip6-loopback"
    local j
    for j in $(seq 1 "$COUNT"); do echo "$(host_addr "$j") $(host_name "$j")"; done
  } >"$etc/hosts"
  chmod 0644 "$etc/hostname" "$etc/machine-id" "$etc/hosts"
  install -d -m 0755 "$etc/ssh" "$etc/sudoers.d"
  # The machine's own host keys stay the machine's (whiteouts hide them).
  for f in /etc/ssh/ssh_host_*; do
    case $f in */ssh_host_ed25519_key | */ssh_host_ed25519_key.pub) continue ;; esac
    if [ -e "$f" ]; then mknod "$etc/ssh/${f##*/}" c 0 0; fi
  done
  ssh-keygen -q -t ed25519 -N '' -C "root@$name" -f "$etc/ssh/ssh_host_ed25519_key" </dev/null
  install -m 0644 "$STATE/id_ed25519.pub" "$etc/ssh/authorized_keys"
  cat >"$etc/ssh/sshd_config" <<EOF
# Written by scripts/test-hosts.sh for $name: this host's own sshd.
ListenAddress $(host_addr "$k"):22
HostKey /etc/ssh/ssh_host_ed25519_key
PidFile /run/sshd.pid
AuthorizedKeysFile /etc/ssh/authorized_keys
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
UsePAM no
StrictModes yes
UseDNS no
PrintMotd no
X11Forwarding no
AcceptEnv LANG LC_*
MaxStartups 100:30:200
MaxSessions 100
Subsystem sftp /usr/lib/openssh/sftp-server
EOF
  chmod 0644 "$etc/ssh/sshd_config"
  echo 'deploy ALL=(ALL) NOPASSWD:ALL' >"$etc/sudoers.d/deploy"
  chmod 0440 "$etc/sudoers.d/deploy"

  mkdir -m 0755 "$hd/var-lib" "$hd/var-lib-work" "$hd/home"
  mkdir -m 0700 "$hd/root"
  mkdir -m 1777 "$hd/tmp" "$hd/var-tmp"
  cp -a /etc/skel/. "$hd/root/"
  # /var/log: the machine's directories (owners and modes), no files.
  mkdir "$hd/var-log"
  chown --reference=/var/log "$hd/var-log"
  chmod --reference=/var/log "$hd/var-log"
  (cd /var/log && find . -mindepth 1 -type d -print0) | while IFS= read -r -d '' d; do
    mkdir -p "$hd/var-log/$d"
    chown --reference="/var/log/$d" "$hd/var-log/$d"
    chmod --reference="/var/log/$d" "$hd/var-log/$d"
  done
  : >"$hd/console.log"
}

write_ssh_files() {
  local k key
  : >"$STATE/known_hosts"
  : >"$STATE/ssh_config"
  for k in $(seq 1 "$COUNT"); do
    key=$(cut -d' ' -f1-2 <"$(host_dir "$k")/etc/ssh/ssh_host_ed25519_key.pub")
    echo "$(host_addr "$k") $key" >>"$STATE/known_hosts"
    cat >>"$STATE/ssh_config" <<EOF
Host $(host_name "$k") $(host_addr "$k")
    HostName $(host_addr "$k")
    Port 22
    IdentityFile $STATE/id_ed25519
    IdentitiesOnly yes
    UserKnownHostsFile $STATE/known_hosts
    GlobalKnownHostsFile /dev/null
    StrictHostKeyChecking yes
    BatchMode yes
    ConnectTimeout 30

EOF
  done
}

# ------------------------------------------------------------ boot / init

# The host's outer process: `ip netns exec` into its network namespace,
# then `unshare` the PID, mount, UTS and IPC namespaces and fork its init
# (PID 1 there). That outer process waits for init, so whoever started it
# should reap it: `run K` (foreground, for callers that wait, such as the
# tests' wrapper) or `up`/`boot` (background; on a machine whose PID 1 does
# not reap orphans, each powered-off host then leaves one zombie).
start_boot() {
  local k=$1 hd
  hd=$(host_dir "$k")
  rm -f "$hd/init.pid" "$hd/init.start" "$hd/launcher.pid"
  echo "=== boot $(date -Is)" >>"$hd/console.log"
  LAUNCH=(env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8
    setsid --wait ip netns exec "$(host_name "$k")"
    unshare --pid --fork --mount --propagation private --uts --ipc
    /bin/bash "$SELF" __init "$STATE" "$k")
}

launch_host() {
  local k=$1 hd
  hd=$(host_dir "$k")
  start_boot "$k"
  # Job control on, so the host's processes do not start with SIGINT and
  # SIGQUIT ignored (what a non-interactive shell does to `&` commands).
  set -m
  "${LAUNCH[@]}" </dev/null >>"$hd/console.log" 2>&1 9>&- &
  echo $! >"$hd/launcher.pid"
  set +m
}

# True while the process in the host's launcher.pid runs (not a zombie).
launcher_alive() {
  local hd=$1 pid state
  [ -s "$hd/launcher.pid" ] || return 0
  pid=$(<"$hd/launcher.pid")
  read -r _ _ state _ <"/proc/$pid/stat" 2>/dev/null || return 1
  [ "$state" != Z ]
}

booted_or_failed() {
  local hd=$1
  [ -s "$hd/init.pid" ] && return 0
  launcher_alive "$hd" || return 0
  return 1
}

wait_booted() {
  local k=$1 hd addr pid
  hd=$(host_dir "$k") addr=$(host_addr "$k")
  wait_until "$TIMEOUT" "$(host_name "$k")'s init to start" booted_or_failed "$hd" ||
    die "$(host_name "$k") did not start within ${TIMEOUT}s; console: $hd/console.log"
  local deadline=$((SECONDS + TIMEOUT))
  until sshd_answers "$addr"; do
    pid=$(running_init "$k") || {
      say "console of $(host_name "$k"):"
      tail -n 30 "$hd/console.log" | sed 's/^/    /' >&2
      die "$(host_name "$k")'s init exited during boot"
    }
    [ $SECONDS -lt $deadline ] || die "sshd on $(host_name "$k") ($addr:22) did not answer within ${TIMEOUT}s; console: $hd/console.log"
    sleep 0.2
  done
}

# PID 1 of the host's PID namespace, in its own mount namespace: mounts the
# host's disk, makes sure of the users, starts sshd, and reaps (database
# servers started detached get re-parented here and must not linger as
# zombies).
host_init() {
  STATE=$1
  local k=$2
  load_names
  local hd name outer
  hd=$(host_dir "$k") name=$(host_name "$k")
  # /proc is still the root namespace's: /proc/self is our PID out there.
  local stat
  stat=$(</proc/self/stat)
  outer=${stat%% *}
  local -a f
  read -r -a f <<<"${stat##*) }"
  echo "${f[19]}" >"$hd/init.start"
  echo "$outer" >"$hd/init.pid.new"
  mv "$hd/init.pid.new" "$hd/init.pid"
  echo "init: $name, PID $outer in the root namespace"

  mount -t proc -o nosuid,nodev,noexec proc /proc
  mount -t tmpfs -o nosuid,nodev,mode=1777 tmpfs /dev/shm
  hostname "$name"

  # A boot empties /run and /tmp (Debian's /run is a tmpfs, and its
  # tmpfiles rules clean /tmp); /var/tmp, /var/lib and the rest are kept.
  rm -rf "$hd/run" "$hd/tmp"
  mkdir -m 1777 "$hd/tmp"
  mkdir -m 0755 "$hd/run"
  local d base
  for d in /run/*; do
    base=${d##*/}
    case $base in netns | sshd | sudo | lock | user) continue ;; esac
    if [ -L "$d" ]; then
      cp -a "$d" "$hd/run/$base"
    elif [ -d "$d" ]; then
      mkdir "$hd/run/$base"
      chown --reference="$d" "$hd/run/$base"
      chmod --reference="$d" "$hd/run/$base"
    fi
  done
  mkdir -m 0755 "$hd/run/sshd" "$hd/run/user"
  mkdir -m 1777 "$hd/run/lock"

  # Mount targets that contain the state directory go last, or they would
  # hide the sources of the others.
  local -a first=() last=()
  local entry target
  for entry in "var-log:/var/log" "root:/root" "home:/home" \
    "tmp:/tmp" "var-tmp:/var/tmp" "run:/run"; do
    target=${entry#*:}
    case $hd/ in "$target"/*) last+=("$entry") ;; *) first+=("$entry") ;; esac
  done
  mount -t overlay overlay -o "lowerdir=/etc,upperdir=$hd/etc,workdir=$hd/etc-work" /etc
  mount -t overlay overlay \
    -o "lowerdir=/var/lib,upperdir=$hd/var-lib,workdir=$hd/var-lib-work" /var/lib
  for entry in "${first[@]}" ${last[@]+"${last[@]}"}; do
    mount --bind "$hd/${entry%%:*}" "${entry#*:}"
  done
  mkdir -p -m 0755 /var/lib/dbgroups

  # Users: deploy (passwordless sudo, in this host's /etc only). With
  # UsePAM no, sshd refuses accounts whose password field starts with "!"
  # (locked), so such fields become "*" (no password, not locked).
  if ! getent passwd deploy >/dev/null; then
    useradd --create-home --shell /bin/bash deploy
  fi
  local user
  for user in root deploy; do
    if [ "$(getent shadow "$user" | cut -d: -f2 | cut -c1)" = "!" ]; then
      usermod -p '*' "$user"
    fi
  done

  /usr/sbin/sshd -t -f /etc/ssh/sshd_config
  /usr/sbin/sshd -D -e -f /etc/ssh/sshd_config &
  echo "init: sshd started (PID $!)"
  # shellcheck disable=SC2016
  exec perl -e '
    my $sshd = shift;
    while (1) {
      my $p = wait;
      if ($p == -1) { sleep 1 }
      elsif ($p == $sshd) { print STDERR "init: sshd exited (status $?)\n" }
    }' "$!"
}

check_can_boot() {
  local k=$1 pid
  valid_host "$k"
  if pid=$(running_init "$k"); then
    die "$(host_name "$k") is already running (init PID $pid)"
  fi
  if [ -s "$(host_dir "$k")/launcher.pid" ] && launcher_alive "$(host_dir "$k")"; then
    die "$(host_name "$k") is booting (launcher PID $(<"$(host_dir "$k")/launcher.pid"))"
  fi
  netns_exists "$(host_name "$k")" || die "network namespace $(host_name "$k") is missing: run down, then up"
}

cmd_boot() {
  [ ${#POSITIONAL[@]} -eq 1 ] || die "usage: boot K [--state DIR]"
  require_root boot
  load_names
  local k=${POSITIONAL[0]}
  check_can_boot "$k"
  launch_host "$k"
  wait_booted "$k"
  say "$(host_name "$k") booted (init PID $(running_init "$k"))"
}

# Boots host K in the foreground: this process becomes the host's outer
# process and returns when the host is powered off.
cmd_run() {
  [ ${#POSITIONAL[@]} -eq 1 ] || die "usage: run K [--state DIR]"
  require_root run
  load_names
  local k=${POSITIONAL[0]} hd
  check_can_boot "$k"
  hd=$(host_dir "$k")
  start_boot "$k"
  echo $$ >"$hd/launcher.pid"
  exec "${LAUNCH[@]}" </dev/null >>"$hd/console.log" 2>&1 9>&-
}

cmd_wait_ssh() {
  [ ${#POSITIONAL[@]} -eq 1 ] || die "usage: wait-ssh K [--state DIR]"
  require_root wait-ssh
  load_names
  local k=${POSITIONAL[0]}
  valid_host "$k"
  wait_booted "$k"
}

cmd_power_cut() {
  [ ${#POSITIONAL[@]} -eq 1 ] || die "usage: power-cut K [--state DIR]"
  require_root power-cut
  load_names
  local k=${POSITIONAL[0]}
  valid_host "$k"
  power_off "$k" || die "processes of $(host_name "$k") survived"
}

# kill -9 of a PID namespace's init kills every process in it; then wait
# until none is left. The disk (state directory) is untouched.
power_off() {
  local k=$1 pid hd
  hd=$(host_dir "$k")
  if ! pid=$(running_init "$k"); then
    say "$(host_name "$k") is not running"
    rm -f "$hd/init.pid" "$hd/init.start" "$hd/launcher.pid"
    return 0
  fi
  kill -KILL "$pid" 2>/dev/null || true
  wait_until "$TIMEOUT" "the processes of $(host_name "$k") to die" host_is_off "$k" || return 1
  rm -f "$hd/init.pid" "$hd/init.start" "$hd/launcher.pid"
  say "$(host_name "$k") powered off"
}

# ------------------------------------------------------------------- down

cmd_down() {
  [ ${#POSITIONAL[@]} -eq 0 ] || die "usage: down [--state DIR] [--keep-state]"
  require_root down
  load_names
  lock_names
  remove_everything
}

# Removes every namespace, link, nftables table, process and (unless
# --keep-state) the state directory of these names; whatever exists.
remove_everything() {
  local failed=0 k ns veth
  local -a hosts=()
  for k in $(seq 1 "$COUNT"); do hosts+=("$k"); done
  # Namespaces of this prefix that the config does not know (a lost state).
  for ns in $(ip netns list 2>/dev/null | awk '{print $1}'); do
    if [[ $ns =~ ^$PREFIX-host([0-9]+)$ ]] && [ "${BASH_REMATCH[1]}" -gt "$COUNT" ]; then
      hosts+=("${BASH_REMATCH[1]}")
    fi
  done
  for k in ${hosts[@]+"${hosts[@]}"}; do
    power_off "$k" >/dev/null 2>&1 || failed=1
    ns=$(host_name "$k")
    if netns_exists "$ns"; then
      local pids
      pids=$(ip netns pids "$ns" 2>/dev/null || true)
      # shellcheck disable=SC2086
      [ -z "$pids" ] || kill -KILL $pids 2>/dev/null || true
      wait_until "$TIMEOUT" "the processes in $ns to die" eval "! netns_has_processes '$ns'" || failed=1
      ip netns del "$ns" || failed=1
    fi
  done
  for k in ${hosts[@]+"${hosts[@]}"}; do
    veth=$(host_veth "$k")
    link_gone "$veth" || ip link del "$veth" 2>/dev/null || true
    wait_until "$TIMEOUT" "$veth to go" link_gone "$veth" || failed=1
  done
  # veths of this prefix beyond the known hosts (a lost state).
  for veth in $(ip -o link show 2>/dev/null | awk -F': ' '{print $2}' | cut -d@ -f1); do
    if [[ $veth =~ ^$PREFIX-v[0-9]+$ ]]; then ip link del "$veth" 2>/dev/null || true; fi
  done
  if link_exists "$BRIDGE"; then ip link del "$BRIDGE" || failed=1; fi
  if nft list table inet "$NFT_TABLE" >/dev/null 2>&1; then nft delete table inet "$NFT_TABLE" || failed=1; fi

  if [ -d "$STATE" ]; then
    if grep -qF " $STATE/" /proc/self/mountinfo; then
      say "mounts under $STATE remain:"
      grep -F " $STATE/" /proc/self/mountinfo >&2
      failed=1
    elif [ "$KEEP_STATE" -eq 0 ]; then
      if [ -f "$STATE/$MARKER" ] || [ -z "$(ls -A "$STATE")" ]; then
        rm -rf --one-file-system "$STATE" || failed=1
      else
        say "not removing $STATE: it has no $MARKER (not made by this script)"
        failed=1
      fi
    fi
  fi
  [ $failed -eq 0 ] || { say "down did not remove everything (see above)"; return 1; }
  say "down: removed the hosts of prefix $PREFIX (bridge $BRIDGE)"
}

# ----------------------------------------------------------------- status

cmd_status() {
  [ ${#POSITIONAL[@]} -eq 0 ] || die "usage: status [--state DIR]"
  require_root status
  load_names
  if [ "$COUNT" -eq 0 ]; then
    echo "no hosts in $STATE (not up)"
    return 0
  fi
  print_status
}

print_status() {
  local k pid sshd
  printf '%-14s %-15s %-9s %s\n' HOST ADDRESS INIT_PID SSHD
  for k in $(seq 1 "$COUNT"); do
    pid=$(running_init "$k") || pid=off
    if sshd_answers "$(host_addr "$k")"; then sshd=answers; else sshd="no answer"; fi
    printf '%-14s %-15s %-9s %s\n' "$(host_name "$k")" "$(host_addr "$k")" "$pid" "$sshd"
  done
  echo "state: $STATE  bridge: $BRIDGE ($NET.1/24)  ssh: ssh -F $STATE/ssh_config root@$(host_name 1)"
}

cmd_install_deps() {
  # shellcheck source=lib/setup.sh
  source "$(dirname "$SELF")/lib/setup.sh"
  ensure_package openssh-server /usr/sbin/sshd
  ensure_package openssh-client /usr/bin/ssh
  ensure_package sudo /usr/bin/sudo
  ensure_package iproute2 /bin/ip
  ensure_package nftables /usr/sbin/nft
  ensure_package util-linux /usr/bin/nsenter
  ensure_package procps /bin/ps
}

# ------------------------------------------------------------------- main

[ $# -ge 1 ] || { usage >&2; exit 2; }
command=$1
shift
case $command in
  up) parse_options "$@"; cmd_up ;;
  down) parse_options "$@"; cmd_down ;;
  status) parse_options "$@"; cmd_status ;;
  power-cut) parse_options "$@"; cmd_power_cut ;;
  boot) parse_options "$@"; cmd_boot ;;
  run) parse_options "$@"; cmd_run ;;
  wait-ssh) parse_options "$@"; cmd_wait_ssh ;;
  install-deps) cmd_install_deps ;;
  __init) host_init "$@" ;;
  -h | --help | help) usage ;;
  *) usage >&2; die "unknown command '$command'" ;;
esac

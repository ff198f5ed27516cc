//! The test hosts themselves (scripts/test-hosts.sh through `TestHosts`):
//! isolated from each other and from this machine, reachable over ssh as
//! root and as `deploy` with sudo, a power cut that kills a whole host and
//! a boot that brings it back on the same disk with the same host key, and
//! a teardown that leaves nothing. Skipped (with a message) when not root.

use crate::test_hosts::{WAIT, hosts_or_skip, process_start, wait_for};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output};

fn ok(output: &Output, what: &str) -> String {
    assert!(
        output.status.success(),
        "{what} failed ({}):\nstdout: {}\nstderr: {}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn root_machine(program: &str, args: &[&str]) -> String {
    let output = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{program}: {e}"));
    ok(&output, program)
}

/// Every live process in PID namespace `namespace` (`pid:[inode]`, only
/// meaningful while that namespace exists: the kernel reuses the numbers),
/// as (PID here, start time): together they name one process for good.
fn processes_in(namespace: &str) -> Vec<(u32, u64)> {
    let mut pids = Vec::new();
    for entry in std::fs::read_dir("/proc").expect("/proc").flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse().ok()) else {
            continue;
        };
        if std::fs::read_link(entry.path().join("ns/pid"))
            .is_ok_and(|link| link.as_os_str() == namespace)
            && let Some(start) = process_start(pid)
        {
            pids.push((pid, start));
        }
    }
    pids
}

fn pid_namespace(pid: u32) -> String {
    std::fs::read_link(format!("/proc/{pid}/ns/pid"))
        .expect("init's PID namespace")
        .display()
        .to_string()
}

/// After `down`: no namespace, link, nftables table, mount, process or
/// state directory of that set is left.
fn assert_nothing_left(
    names: &[String],
    state: &Path,
    processes: &[(u32, u64)],
    bridge_table: &str,
) {
    let namespaces = root_machine("ip", &["netns", "list"]);
    let links = root_machine("ip", &["-o", "link", "show"]);
    let link_names: Vec<&str> = links
        .lines()
        .filter_map(|l| l.split(": ").nth(1))
        .map(|n| n.split('@').next().unwrap_or(n))
        .collect();
    for name in names {
        assert!(
            !namespaces
                .lines()
                .any(|l| l.split_whitespace().next() == Some(name)),
            "network namespace {name} left:\n{namespaces}"
        );
        assert!(
            !link_names.contains(&name.as_str()),
            "link {name} left:\n{links}"
        );
    }
    let tables = root_machine("nft", &["list", "tables"]);
    assert!(
        !tables.contains(bridge_table),
        "nftables table left:\n{tables}"
    );
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").expect("mountinfo");
    let state_text = state.display().to_string();
    assert!(
        !mounts.contains(&state_text)
            && !names
                .iter()
                .any(|n| mounts.contains(&format!("/run/netns/{n} "))),
        "mounts left:\n{mounts}"
    );
    assert!(!state.exists(), "{} left", state.display());
    for &(pid, start) in processes {
        assert_ne!(
            process_start(pid),
            Some(start),
            "process {pid} of the hosts left"
        );
    }
}

#[test]
fn test_hosts_are_isolated_from_each_other_and_reachable_over_ssh() {
    let Some(hosts) = hosts_or_skip(3) else {
        return;
    };
    assert_eq!(hosts.count(), 3);

    // The client files.
    let identity = std::fs::metadata(hosts.identity_path()).expect("identity");
    assert_eq!(identity.permissions().mode() & 0o777, 0o600);
    let known = std::fs::read_to_string(hosts.known_hosts_path()).expect("known_hosts");
    let config = std::fs::read_to_string(hosts.ssh_config_path()).expect("ssh_config");
    for k in 1..=3 {
        let address = hosts.address(k).to_string();
        assert!(
            known
                .lines()
                .any(|l| l.starts_with(&format!("{address} ssh-ed25519 "))),
            "{known}"
        );
        assert!(
            config.contains(&format!("Host {} {address}\n", hosts.name(k))),
            "{config}"
        );
    }

    // ssh as root: the host's own name, address, process table and disk.
    let out = ok(
        &hosts.ssh(
            1,
            "root",
            "hostname; hostname -I; ps -e --no-headers | wc -l; id deploy; ls -d /var/lib/dbgroups",
        ),
        "ssh root@host1",
    );
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], hosts.name(1), "{out}");
    assert_eq!(lines[1].trim(), hosts.address(1).to_string(), "{out}");
    let processes: usize = lines[2].trim().parse().expect("a count");
    assert!(processes < 20, "host1 sees {processes} processes:\n{out}");
    assert!(lines[3].starts_with("uid="), "{out}");
    assert_eq!(lines[4], "/var/lib/dbgroups", "{out}");

    // ssh as deploy, with passwordless sudo.
    let out = ok(
        &hosts.ssh(2, "deploy", "id -un && sudo -n true && sudo -n id -un"),
        "ssh deploy@host2 sudo -n",
    );
    assert_eq!(out, "deploy\nroot\n");

    // Host to host on the bridge; nothing beyond it.
    let address2 = hosts.address(2);
    let out = ok(
        &hosts.run_on(
            1,
            &format!("exec 3<>/dev/tcp/{address2}/22 && head -c 8 <&3"),
        ),
        "host1 to host2:22",
    );
    assert_eq!(out, "SSH-2.0-");
    let out = ok(
        &hosts.run_on(
            1,
            &format!(
                "ip -4 route; echo --; ip route get {} && ! ip route get 192.0.2.1 2>/dev/null; echo --; ip -o addr",
                hosts.bridge_address()
            ),
        ),
        "host1 routes",
    );
    assert!(!out.contains("default"), "a default route:\n{out}");
    let subnet_prefix = format!("198.18.{}.", hosts.address(1).octets()[2]);
    for line in out.split("--").nth(2).expect("addresses").lines() {
        let Some(address) = line.split_whitespace().nth(3) else {
            continue;
        };
        assert!(
            address == "127.0.0.1/8" || address == "::1/128" || address.starts_with(&subnet_prefix),
            "address {address} outside 198.18.0.0/15:\n{out}"
        );
    }

    // Distinct process tables: one PID namespace per host, none the
    // machine's; a process on host1 is seen on host1 only.
    let mut namespaces: Vec<String> = (1..=3)
        .map(|k| ok(&hosts.run_on(k, "readlink /proc/self/ns/pid"), "pid ns"))
        .collect();
    namespaces.push(format!("{}\n", pid_namespace(std::process::id())));
    namespaces.sort();
    namespaces.dedup();
    assert_eq!(namespaces.len(), 4, "{namespaces:?}");
    ok(
        &hosts.run_on(
            1,
            "setsid sleep 987654 </dev/null >/dev/null 2>&1 & echo started",
        ),
        "start a process on host1",
    );
    let sees_sleep = |k: usize| {
        ok(&hosts.run_on(k, "ps -eo args --no-headers"), "ps")
            .lines()
            .any(|l| l == "sleep 987654")
    };
    assert!(
        wait_for(WAIT, || sees_sleep(1)),
        "host1 never showed its sleep"
    );
    assert!(!sees_sleep(2), "host2 sees host1's process");

    // Users and files stay on their host: not on another, not here.
    let user = format!("dbgself{}", hosts.address(1).octets()[2]);
    ok(
        &hosts.run_on(
            1,
            &format!("useradd --system --no-create-home dbgroups && useradd {user} && id -u {user} && echo x >/var/lib/dbgroups/{user}"),
        ),
        "useradd on host1",
    );
    let on_host2 = hosts.run_on(
        2,
        &format!("id {user} || id dbgroups || test -e /var/lib/dbgroups/{user}"),
    );
    assert!(
        !on_host2.status.success(),
        "host1's user or file is on host2"
    );
    let here = Command::new("getent")
        .args(["passwd", &user])
        .output()
        .expect("getent");
    assert!(
        !here.status.success(),
        "host1's useradd reached this machine"
    );
    assert!(!Path::new(&format!("/var/lib/dbgroups/{user}")).exists());

    let names = hosts.link_and_namespace_names();
    let state = hosts.state_dir().to_path_buf();
    let table = format!("dbgroups_test_hosts_dbgbr{}", hosts.address(1).octets()[2]);
    let inits: Vec<(u32, u64)> = (1..=3)
        .map(|k| hosts.init_pid(k).expect("host runs"))
        .map(|pid| (pid, process_start(pid).expect("init runs")))
        .collect();
    hosts.down();
    assert_nothing_left(&names, &state, &inits, &table);
}

#[test]
fn a_power_cut_kills_a_whole_host_and_boot_brings_it_back_on_its_disk() {
    let Some(mut hosts) = hosts_or_skip(2) else {
        return;
    };
    ok(
        &hosts.run_on(
            1,
            "setsid sleep 987655 </dev/null >/dev/null 2>&1 & echo kept >/var/lib/dbgroups/kept && touch /tmp/scratch /var/tmp/kept",
        ),
        "prepare host1",
    );
    let init = hosts.init_pid(1).expect("host1 runs");
    let namespace = pid_namespace(init);
    assert!(
        wait_for(WAIT, || processes_in(&namespace).len() >= 3),
        "host1 should run init, sshd and sleep: {:?}",
        processes_in(&namespace)
    );
    let before = processes_in(&namespace);

    hosts.power_cut(1);
    assert_eq!(hosts.init_pid(1), None);
    for &(pid, start) in &before {
        assert_ne!(
            process_start(pid),
            Some(start),
            "process {pid} of host1 survived"
        );
    }
    assert!(
        !hosts.ssh(1, "root", "true").status.success(),
        "ssh to a powered-off host"
    );
    ok(
        &hosts.ssh(2, "root", "true"),
        "host2 after host1's power cut",
    );

    hosts.boot(1);
    assert!(hosts.init_pid(1).is_some(), "host1 runs again");
    // StrictHostKeyChecking yes against the same known_hosts: the same key.
    let out = ok(
        &hosts.ssh(
            1,
            "root",
            "cat /var/lib/dbgroups/kept; ls /var/tmp/kept; test ! -e /tmp/scratch && echo tmp-emptied; ps -eo args --no-headers",
        ),
        "ssh root@host1 after boot",
    );
    assert!(
        out.starts_with("kept\n/var/tmp/kept\ntmp-emptied\n"),
        "{out}"
    );
    assert!(!out.lines().any(|l| l == "sleep 987655"), "{out}");

    let names = hosts.link_and_namespace_names();
    let state = hosts.state_dir().to_path_buf();
    let table = format!("dbgroups_test_hosts_dbgbr{}", hosts.address(1).octets()[2]);
    // Everything of both hosts, sshd and its sessions included.
    let mut processes = Vec::new();
    for k in 1..=2 {
        let init = hosts.init_pid(k).expect("host runs");
        processes.extend(processes_in(&pid_namespace(init)));
    }
    assert!(processes.len() >= 4, "{processes:?}");
    hosts.down();
    assert_nothing_left(&names, &state, &processes, &table);
}

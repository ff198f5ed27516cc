//! Faults on hosts: a host's power cut (every process of it killed at
//! once, its disk kept), and host keys that are unknown or changed.

use super::{TestHosts, app_login, hosts_or_skip, manifest_head, psql, run_ok, state, wait_psql};

/// A PostgreSQL master on host 1 and its slave on host 2.
fn pair(hosts: &TestHosts) -> String {
    format!(
        "{}postgresql:\n  groups:\n    default:\n      configuration: {{ version: \"15\" }}\n      backups: {{ managed: true }}\n      servers:\n        - server: {{ unique_name: pg-main, address: {} }}\n        - server: {{ unique_name: pg-replica-1, address: {} }}\n",
        manifest_head(hosts),
        hosts.address(1),
        hosts.address(2)
    )
}

/// `manifest` applied in a new directory, and `sql` run on the master
/// (host 1) as the application, whose login is returned.
fn deployed(hosts: &TestHosts, manifest: &str, sql: &str) -> (tempfile::TempDir, super::Login) {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("manifest.yml"), manifest).expect("manifest");
    run_ok(dir.path(), &["apply", "--auto-approve", "--refresh=false"]);
    let app = app_login(&state(dir.path()), "postgresql.default");
    psql(hosts, 1, 5432, &app, sql);
    (dir, app)
}

/// Whether `status`'s line for a server says it is up (its fourth
/// column: `yes` or `NO`).
fn shown_up(line: &str) -> bool {
    line.split_whitespace().nth(3) != Some("NO")
}

/// `status`'s line for `server`.
fn status_line(dir: &std::path::Path, server: &str) -> String {
    let status = crate::cli::dbgroups_in(dir, &["status"]);
    status
        .stdout
        .lines()
        .find(|l| l.contains(server))
        .unwrap_or_else(|| panic!("{server} in status:\n{}\n{}", status.stdout, status.stderr))
        .to_string()
}

/// A power cut of the slave's host, then of the master's: `status` shows
/// the servers of a host that is off as down; once the host is back,
/// `apply` starts them and the slave catches up with what the master took
/// meanwhile.
#[test]
fn after_a_power_cut_status_shows_the_servers_down_and_apply_brings_them_back() {
    let Some(mut hosts) = hosts_or_skip(2) else {
        return;
    };
    let (dir, app) = deployed(
        &hosts,
        &pair(&hosts),
        "CREATE TABLE orders (id int PRIMARY KEY); INSERT INTO orders SELECT generate_series(1, 100)",
    );
    let path = dir.path();
    wait_psql(&hosts, 2, 5432, &app, "SELECT count(*) FROM orders", "100");

    // The slave's host loses power; the master takes writes meanwhile.
    hosts.power_cut(2);
    let line = status_line(path, "pg-replica-1");
    assert!(!shown_up(&line), "{line}");
    assert!(
        line.contains(&format!("host {}", hosts.address(2))),
        "the host is named: {line}"
    );
    assert!(
        shown_up(&status_line(path, "pg-main")),
        "the master runs on"
    );
    psql(
        &hosts,
        1,
        5432,
        &app,
        "INSERT INTO orders SELECT generate_series(101, 200)",
    );
    hosts.boot(2);
    let line = status_line(path, "pg-replica-1");
    assert!(!shown_up(&line), "booted, its server does not run: {line}");
    let planned = crate::cli::dbgroups_in(path, &["plan", "--detailed-exitcode"]);
    assert_eq!(planned.code, 2, "{}\n{}", planned.stdout, planned.stderr);
    run_ok(path, &["apply", "--auto-approve"]);
    wait_psql(&hosts, 2, 5432, &app, "SELECT count(*) FROM orders", "200");

    // The master's host loses power.
    hosts.power_cut(1);
    let line = status_line(path, "pg-main");
    assert!(!shown_up(&line), "{line}");
    hosts.boot(1);
    run_ok(path, &["apply", "--auto-approve"]);
    psql(
        &hosts,
        1,
        5432,
        &app,
        "INSERT INTO orders SELECT generate_series(201, 300)",
    );
    wait_psql(&hosts, 2, 5432, &app, "SELECT count(*) FROM orders", "300");
    run_ok(path, &["plan", "--detailed-exitcode"]);
    run_ok(path, &["destroy", "--app", "shop", "--auto-approve"]);
    hosts.down();
}

/// Through the command line: an unknown host key stops `apply` before it
/// changes anything, naming the host and the `ssh-keyscan` line to check;
/// `--accept-new-host-keys` trusts it; a changed key stops `status` and
/// `apply`, even with the flag.
#[test]
fn apply_refuses_an_unknown_or_changed_host_key_and_accept_new_trusts_an_unknown_one() {
    let Some(hosts) = hosts_or_skip(2) else {
        return;
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path();
    let known_hosts = path.join("known_hosts");
    std::fs::write(&known_hosts, "").expect("empty known_hosts");
    let manifest = pair(&hosts).replace(
        &hosts.known_hosts_path().display().to_string(),
        &known_hosts.display().to_string(),
    );
    std::fs::write(path.join("manifest.yml"), manifest).expect("manifest");
    let refused = crate::cli::dbgroups_in(path, &["apply", "--auto-approve", "--refresh=false"]);
    assert_eq!(refused.code, 1, "{}\n{}", refused.stdout, refused.stderr);
    let address = hosts.address(1).to_string();
    // Both keys are unknown: the first host refused is named, with the
    // line to check.
    let keyscan = |k: usize| format!("ssh-keyscan -p 22 {}", hosts.address(k));
    assert!(
        refused.stderr.contains("its ssh host key is not known"),
        "{}",
        refused.stderr
    );
    assert!(
        refused.stderr.contains(&keyscan(1)) || refused.stderr.contains(&keyscan(2)),
        "{}",
        refused.stderr
    );
    for k in 1..=2 {
        let left = hosts.run_on(k, "ls -A /var/lib/dbgroups/servers 2>/dev/null");
        assert!(
            String::from_utf8_lossy(&left.stdout).trim().is_empty(),
            "nothing was built on host {k}"
        );
    }
    run_ok(
        path,
        &[
            "apply",
            "--auto-approve",
            "--refresh=false",
            "--accept-new-host-keys",
        ],
    );
    // Host 1's key is replaced in known_hosts by another key.
    let other = std::fs::read_to_string(hosts.identity_path().with_extension("pub"))
        .expect("a public key of another machine");
    let other: Vec<&str> = other.split_whitespace().take(2).collect();
    let trusted = std::fs::read_to_string(&known_hosts).expect("known_hosts");
    let host2_line = std::fs::read_to_string(hosts.known_hosts_path())
        .expect("the test hosts' known_hosts")
        .lines()
        .find(|l| l.starts_with(&format!("{} ", hosts.address(2))))
        .expect("host 2's key")
        .to_string();
    assert!(trusted.lines().count() >= 2, "both keys were trusted");
    std::fs::write(
        &known_hosts,
        format!("{address} {}\n{host2_line}\n", other.join(" ")),
    )
    .expect("forged known_hosts");
    for args in [
        vec!["status"],
        // With work to do (an apply with none connects no host).
        vec![
            "apply",
            "--auto-approve",
            "--refresh=false",
            "--accept-new-host-keys",
            "--resync",
            "pg-replica-1",
        ],
    ] {
        let run = crate::cli::dbgroups_in(path, &args);
        let shown = format!("{}{}", run.stdout, run.stderr);
        assert!(
            shown.contains(&format!("host {address}")) && shown.contains("CHANGED"),
            "{args:?}: {shown}"
        );
        if args[0] == "apply" {
            assert_eq!(run.code, 1, "{shown}");
        }
    }
    hosts.down();
}

/// `ip` (or `tc`) in the root namespace, which must succeed.
fn root_ns(program: &str, args: &[&str]) {
    let output = std::process::Command::new(program)
        .args(args)
        .output()
        .expect("runs");
    assert!(
        output.status.success(),
        "{program} {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// The link to the receiving host cut while pg_basebackup runs there
/// (its traffic slowed to 16 Mbit/s so that the backup takes a while):
/// `apply` fails, naming the host; once the link is back, the next apply
/// stops the stale pg_basebackup, takes the backup again and finishes,
/// and the slave holds the master's rows.
#[test]
fn a_link_cut_during_a_backup_fails_apply_naming_the_host_and_the_next_apply_finishes() {
    let Some(hosts) = hosts_or_skip(2) else {
        return;
    };
    let whole = pair(&hosts);
    let master_only: String = whole
        .lines()
        .filter(|l| !l.contains("pg-replica-1"))
        .map(|l| format!("{l}\n"))
        .collect();
    let (dir, app) = deployed(
        &hosts,
        &master_only,
        "CREATE TABLE big (id int PRIMARY KEY, payload text); INSERT INTO big SELECT i, repeat(md5(i::text), 8) FROM generate_series(1, 80000) i",
    );
    let path = dir.path();
    let link = hosts.link(2);
    root_ns(
        "tc",
        &[
            "qdisc", "add", "dev", &link, "root", "tbf", "rate", "16mbit", "burst", "32kbit",
            "latency", "400ms",
        ],
    );
    std::fs::write(path.join("manifest.yml"), &whole).expect("manifest");
    let (mut child, _seen, rest) = crate::apply_live::apply_until(path, "start  backup:pg-main@");
    let marker = format!("--host={}", hosts.address(1));
    let running = crate::test_hosts::wait_for(std::time::Duration::from_secs(60), || {
        crate::apply_live::processes_mentioning("pg_basebackup")
            .iter()
            .any(|cmdline| cmdline.contains(&marker))
    });
    assert!(running, "pg_basebackup never ran");
    std::thread::sleep(std::time::Duration::from_secs(2));
    root_ns("ip", &["link", "set", &link, "down"]);
    let after: Vec<String> = rest.map_while(Result::ok).collect();
    let status = child.wait().expect("apply ends");
    crate::transcripts::record_run(&["apply", "(link cut)"], "", &after.join("\n"));
    let shown = after.join("\n");
    assert_eq!(status.code(), Some(1), "{shown}");
    assert!(
        shown.contains(&format!("FAILED backup:pg-main@{}", hosts.address(2)))
            && shown.contains(&format!("host {}", hosts.address(2))),
        "the failure names the host:\n{shown}"
    );
    root_ns("ip", &["link", "set", &link, "up"]);
    root_ns("tc", &["qdisc", "del", "dev", &link, "root"]);
    run_ok(path, &["apply", "--auto-approve", "--refresh=false"]);
    wait_psql(&hosts, 2, 5432, &app, "SELECT count(*) FROM big", "80000");
    run_ok(path, &["plan", "--detailed-exitcode"]);
    run_ok(path, &["destroy", "--app", "shop", "--auto-approve"]);
    hosts.down();
}

//! `dbgroups plan` and `apply` end to end on real hosts
//! (`scripts/test-hosts.sh`: network namespaces on a private bridge, each
//! with its own PID and mount namespaces and a real sshd). Data is read
//! back on the hosts themselves, through a client on each host's loopback.
//! Skipped (with a message) when not root.

use std::path::Path;

use dbgroups_state::{AppState, DirectoryStore, StateStore};

use crate::cli::{Run, dbgroups_in};
use crate::test_hosts::{TestHosts, WAIT, skip_reason, wait_for};
use crate::transcripts::ScannedDeployment;

#[allow(clippy::print_stderr)]
fn hosts_or_skip(n: usize) -> Option<TestHosts> {
    if let Some(why) = skip_reason() {
        eprintln!("skipped: {why}");
        return None;
    }
    Some(TestHosts::up(n))
}

/// The manifest's top: the application and how to reach the test hosts
/// (their key and known_hosts; root unless a server says otherwise).
fn manifest_head(hosts: &TestHosts) -> String {
    format!(
        "application: shop\n\
         ssh: {{ user: root, identity_file: {}, known_hosts_file: {} }}\n",
        hosts.identity_path().display(),
        hosts.known_hosts_path().display()
    )
}

fn run_ok(dir: &Path, args: &[&str]) -> Run {
    let run = dbgroups_in(dir, args);
    assert_eq!(
        run.code,
        0,
        "dbgroups {}:\n{}\n{}",
        args.join(" "),
        run.stdout,
        run.stderr
    );
    run
}

fn state(dir: &Path) -> AppState {
    DirectoryStore::new(dir.join(".dbgroups"))
        .load("shop")
        .expect("loads")
        .expect("recorded")
}

fn secrets(state: &AppState) -> Vec<String> {
    state
        .credentials
        .values()
        .flat_map(|c| [&c.password, &c.admin_password, &c.replication_password])
        .flatten()
        .map(|s| s.expose().to_string())
        .collect()
}

/// Runs `command` on host K, which must succeed; its trimmed stdout.
fn on_host(hosts: &TestHosts, k: usize, command: &str) -> String {
    let output = hosts.run_on(k, command);
    assert!(
        output.status.success(),
        "on {}: {command}: {}",
        hosts.name(k),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).trim().to_string()
}

/// `text` as one word for bash.
fn quoted(text: &str) -> String {
    format!("'{}'", text.replace('\'', "'\\''"))
}

/// psql on host K as `user`, over that host's loopback: its output, or
/// its error (without the password).
fn try_psql(
    hosts: &TestHosts,
    k: usize,
    port: u16,
    (user, password): (&str, &str),
    sql: &str,
) -> Result<String, String> {
    let database = if user == "postgres" {
        "postgres"
    } else {
        "shop"
    };
    let output = hosts.run_on(
        k,
        &format!(
            "PGPASSWORD={} /usr/lib/postgresql/15/bin/psql -h 127.0.0.1 -p {port} -U {user} -d {database} -Atc {}",
            quoted(password),
            quoted(sql),
        ),
    );
    if output.status.success() {
        Ok(String::from_utf8_lossy(&output.stdout).trim().to_string())
    } else {
        Err(format!(
            "psql on {} ({sql}): {}",
            hosts.name(k),
            String::from_utf8_lossy(&output.stderr)
        ))
    }
}

/// [`try_psql`], which must succeed.
fn psql(hosts: &TestHosts, k: usize, port: u16, login: (&str, &str), sql: &str) -> String {
    try_psql(hosts, k, port, login, sql).unwrap_or_else(|e| panic!("{e}"))
}

fn port(state: &AppState, server: &str) -> u16 {
    state
        .server(server)
        .and_then(|(_, s)| s.port)
        .expect("a recorded port")
}

/// Nothing of dbgroups is left on host K: no server directory, no
/// process of the service user, no staged backup.
fn nothing_left_on(hosts: &TestHosts, k: usize) {
    let left = on_host(
        hosts,
        k,
        "ls -A /var/lib/dbgroups/servers /var/lib/dbgroups/backups; pgrep -u dbgroups -a || true",
    );
    let left: Vec<&str> = left
        .lines()
        .filter(|l| !l.ends_with(':') && !l.trim().is_empty())
        .collect();
    assert!(left.is_empty(), "left on {}: {left:?}", hosts.name(k));
}

#[test]
fn a_postgresql_group_across_two_hosts_replicates_host_to_host_and_destroy_leaves_nothing() {
    let Some(hosts) = hosts_or_skip(2) else {
        return;
    };
    let (a1, a2) = (hosts.address(1), hosts.address(2));
    let dir = tempfile::tempdir().expect("temp dir");
    // The slave's host is reached as `deploy`, through `sudo -n`.
    let manifest = format!(
        "{}postgresql:\n  groups:\n    default:\n      configuration: {{ version: \"15\" }}\n      backups: {{ managed: true }}\n      servers:\n        - server: {{ unique_name: pg-main, address: {a1} }}\n        - server: {{ unique_name: pg-replica-1, address: {a2}, ssh: {{ user: deploy }} }}\n",
        manifest_head(&hosts)
    );
    std::fs::write(dir.path().join("manifest.yml"), manifest).expect("manifest");

    let plan = run_ok(dir.path(), &["plan", "--refresh=false"]);
    assert!(
        plan.stdout.contains(&format!("taken on {a2}")),
        "the backup is taken on the slave's host:\n{}",
        plan.stdout
    );
    run_ok(dir.path(), &["apply", "--auto-approve", "--refresh=false"]);
    let recorded = state(dir.path());
    let _scanned =
        ScannedDeployment::new(dir.path(), &secrets(&recorded).iter().collect::<Vec<_>>());
    let password = recorded.credentials["postgresql.default"]
        .password
        .as_ref()
        .expect("generated")
        .expose()
        .to_string();
    let (main_port, replica_port) = (port(&recorded, "pg-main"), port(&recorded, "pg-replica-1"));
    assert_eq!(main_port, 5432, "a host of its own: the engine's own port");
    assert_eq!(replica_port, 5432);
    for (server, address) in [("pg-main", a1), ("pg-replica-1", a2)] {
        let (_, recorded_server) = recorded.server(server).expect("recorded");
        assert_eq!(
            recorded_server.address.as_deref(),
            Some(address.to_string().as_str()),
            "{server}'s address"
        );
    }

    // Rows written on the master reach the slave on the other host.
    psql(
        &hosts,
        1,
        main_port,
        ("shop", &password),
        "CREATE TABLE orders (id int PRIMARY KEY); INSERT INTO orders SELECT generate_series(1, 500)",
    );
    assert!(
        wait_for(WAIT, || try_psql(
            &hosts,
            2,
            replica_port,
            ("shop", &password),
            "SELECT count(*) FROM orders"
        )
        .is_ok_and(|count| count == "500")),
        "the slave on {a2} has the master's rows"
    );
    // It streams from the master, host to host: the master's WAL sender
    // serves the slave's host.
    let superuser = recorded.credentials["postgresql.default"]
        .admin_password
        .as_ref()
        .expect("generated")
        .expose()
        .to_string();
    let senders = psql(
        &hosts,
        1,
        main_port,
        ("postgres", &superuser),
        "SELECT client_addr FROM pg_stat_replication",
    );
    assert_eq!(senders, a2.to_string(), "the master streams to {a2}");
    // The data directory and the files that hold secrets are private.
    let modes = on_host(
        &hosts,
        2,
        "stat -c '%a %U' /var/lib/dbgroups/servers/pg-replica-1 /var/lib/dbgroups/servers/pg-replica-1/data",
    );
    assert_eq!(modes, "700 dbgroups\n700 dbgroups", "{modes}");

    let status = run_ok(dir.path(), &["status"]);
    assert!(
        status.stdout.contains("pg-replica-1") && status.stdout.contains("streaming"),
        "{}",
        status.stdout
    );
    let env = run_ok(dir.path(), &["env"]);
    assert!(
        env.stdout.contains(&format!("POSTGRESQL_ADDRESS={a1}\n")),
        "{}",
        env.stdout
    );
    assert!(
        env.stdout
            .contains(&format!("POSTGRESQL_SLAVE_ADDRESSES={a2}\n")),
        "{}",
        env.stdout
    );
    // Refreshed against the hosts, the plan has nothing left to do.
    run_ok(dir.path(), &["plan", "--detailed-exitcode"]);

    run_ok(dir.path(), &["destroy", "--app", "shop", "--auto-approve"]);
    nothing_left_on(&hosts, 1);
    nothing_left_on(&hosts, 2);
    hosts.down();
}

//! `dbgroups plan` and `apply` end to end on real hosts
//! (`scripts/test-hosts.sh`: network namespaces on a private bridge, each
//! with its own PID and mount namespaces and a real sshd). Data is read
//! back on the hosts themselves, through a client on each host's loopback.
//! Skipped (with a message) when not root. This module holds the
//! helpers; `postgres` holds the tests.

mod backups;
mod crashes;
mod faults;
mod mariadb;
mod mongodb;
mod postgres;
mod preflight;
mod redis;
mod security;
mod tls;
mod tls_mariadb;
mod tls_mongodb;
mod tls_redis;

use std::path::Path;

use dbgroups_state::{AppState, DirectoryStore, StateStore};

use crate::cli::{Run, dbgroups_in};
pub(super) use crate::test_hosts::{TestHosts, WAIT, hosts_or_skip, wait_for};
pub(super) use crate::transcripts::ScannedDeployment;

/// The manifest's top: the application and how to reach the test hosts
/// (their key and known_hosts; root unless a server says otherwise).
pub(super) fn manifest_head(hosts: &TestHosts) -> String {
    format!(
        "application: shop\n\
         ssh: {{ user: root, identity_file: {}, known_hosts_file: {} }}\n",
        hosts.identity_path().display(),
        hosts.known_hosts_path().display()
    )
}

pub(super) fn run_ok(dir: &Path, args: &[&str]) -> Run {
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

pub(super) fn state(dir: &Path) -> AppState {
    DirectoryStore::new(dir.join(".dbgroups"))
        .load("shop")
        .expect("loads")
        .expect("recorded")
}

pub(super) fn secrets(state: &AppState) -> Vec<String> {
    let mut secrets: Vec<String> = state
        .credentials
        .values()
        .flat_map(|c| [&c.password, &c.admin_password, &c.replication_password])
        .flatten()
        .map(|s| s.expose().to_string())
        .collect();
    // The authority's key, line by line of its PEM body: any piece of it
    // found anywhere is a leak.
    if let Some(authority) = &state.authority {
        secrets.extend(
            authority
                .key
                .expose()
                .lines()
                .filter(|line| !line.starts_with("-----") && line.len() >= 40)
                .map(str::to_string),
        );
    }
    secrets
}

/// Runs `command` on host K, which must succeed; its trimmed stdout.
pub(super) fn on_host(hosts: &TestHosts, k: usize, command: &str) -> String {
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
pub(super) fn quoted(text: &str) -> String {
    format!("'{}'", text.replace('\'', "'\\''"))
}

/// Who psql logs in as, and where.
#[derive(Debug, Clone)]
pub(super) struct Login {
    pub(super) user: String,
    pub(super) password: String,
    pub(super) database: String,
}

/// The application's account of `group` (`postgresql.default`).
pub(super) fn app_login(state: &AppState, group: &str) -> Login {
    let credentials = &state.credentials[group];
    Login {
        user: credentials.username.clone(),
        password: credentials
            .password
            .as_ref()
            .expect("generated")
            .expose()
            .to_string(),
        database: credentials.database.clone(),
    }
}

/// The superuser of `group`, in the `postgres` database.
pub(super) fn superuser_login(state: &AppState, group: &str) -> Login {
    Login {
        user: "postgres".into(),
        password: state.credentials[group]
            .admin_password
            .as_ref()
            .expect("generated")
            .expose()
            .to_string(),
        database: "postgres".into(),
    }
}

/// psql on host K over that host's loopback: its output, or its error
/// (without the password).
pub(super) fn try_psql(
    hosts: &TestHosts,
    k: usize,
    port: u16,
    login: &Login,
    sql: &str,
) -> Result<String, String> {
    let output = hosts.run_on(
        k,
        &format!(
            "PGPASSWORD={} /usr/lib/postgresql/15/bin/psql -h 127.0.0.1 -p {port} -U {} -d {} -Atc {}",
            quoted(&login.password),
            quoted(&login.user),
            quoted(&login.database),
            quoted(sql),
        ),
    );
    if output.status.success() {
        Ok(String::from_utf8_lossy(&output.stdout).trim().to_string())
    } else {
        Err(format!(
            "psql on {} port {port} ({sql}): {}",
            hosts.name(k),
            String::from_utf8_lossy(&output.stderr)
        ))
    }
}

/// [`try_psql`], which must succeed.
pub(super) fn psql(hosts: &TestHosts, k: usize, port: u16, login: &Login, sql: &str) -> String {
    try_psql(hosts, k, port, login, sql).unwrap_or_else(|e| panic!("{e}"))
}

/// Waits until `sql` gives `expected` on host K.
pub(super) fn wait_psql(
    hosts: &TestHosts,
    k: usize,
    port: u16,
    login: &Login,
    sql: &str,
    expected: &str,
) {
    let mut last = Err(String::new());
    let arrived = wait_for(WAIT, || {
        last = try_psql(hosts, k, port, login, sql);
        last.as_deref() == Ok(expected)
    });
    assert!(
        arrived,
        "{sql} on {} port {port}: wanted {expected}, last {last:?}",
        hosts.name(k)
    );
}

pub(super) fn port(state: &AppState, server: &str) -> u16 {
    state
        .server(server)
        .and_then(|(_, s)| s.port)
        .expect("a recorded port")
}

/// Nothing of dbgroups is left on host K: no server directory, no
/// process of the service user, no staged backup.
pub(super) fn nothing_left_on(hosts: &TestHosts, k: usize) {
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

//! SIGKILL of `apply` at every step boundary of a PostgreSQL plan that
//! spans three hosts, and once in the middle of its longest step (the
//! backup, pg_basebackup running on the receiving host): after each kill
//! the next `apply` finishes, the master's data is unchanged, the new
//! slave and the replicating group hold exactly the master's data, no
//! journal is left, and a refreshed plan is empty. One set of hosts
//! serves every crash point: each point starts from a fresh deployment
//! and ends with `destroy`, which must leave nothing behind.

use std::path::Path;
use std::time::Duration;

use super::{
    Login, TestHosts, app_login, hosts_or_skip, manifest_head, nothing_left_on, psql, run_ok,
    state, try_psql,
};
use crate::apply_live::crashes::apply_crashing_at;
use crate::apply_live::{apply_until, processes_mentioning};
use crate::test_hosts::{WAIT, wait_for};

/// `default` (pg-main on host 1) and `reporting` (pg-report on host 2),
/// and, grown, a new slave on host 3 and `reporting` replicating from
/// `default`: backups taken on hosts 2 and 3, from host 1.
fn manifests(hosts: &TestHosts) -> (String, String) {
    let server = |name: &str, k: usize| {
        format!(
            "        - server: {{ unique_name: {name}, address: {} }}\n",
            hosts.address(k)
        )
    };
    let base = format!(
        "{}postgresql:\n  groups:\n    default:\n      configuration: {{ version: \"15\" }}\n      backups: {{ managed: true }}\n      servers:\n{}    reporting:\n      configuration: {{ version: \"15\" }}\n      servers:\n{}",
        manifest_head(hosts),
        server("pg-main", 1),
        server("pg-report", 2)
    );
    let grown = base
        .replace(
            &server("pg-main", 1),
            &(server("pg-main", 1) + &server("pg-replica-1", 3)),
        )
        .replace(
            "    reporting:\n",
            "    reporting:\n      replicate_from: default\n",
        );
    (base, grown)
}

/// A digest of every row of `items` on a server.
fn checksum(hosts: &TestHosts, k: usize, port: u16, login: &Login) -> Result<String, String> {
    try_psql(
        hosts,
        k,
        port,
        login,
        "SELECT count(*) || ':' || md5(string_agg(id || '=' || payload, ',' ORDER BY id)) FROM items",
    )
}

/// `apply` killed from outside while pg_basebackup runs on the receiving
/// host (seen in this machine's process table, which holds every test
/// host's processes); the backup must not have finished.
fn killed_mid_backup(dir: &Path, master_address: &str) {
    let (mut child, _seen, rest) = apply_until(dir, "start  backup:pg-main@");
    let marker = format!("--host={master_address}");
    let running = wait_for(Duration::from_secs(60), || {
        processes_mentioning("pg_basebackup")
            .iter()
            .any(|cmdline| cmdline.contains(&marker))
    });
    assert!(running, "pg_basebackup never ran");
    child.kill().expect("kills");
    let _ = child.wait();
    let after: Vec<String> = rest.map_while(Result::ok).collect();
    crate::transcripts::record_run(&["apply", "(killed mid-backup)"], "", &after.join("\n"));
    assert!(
        !after.iter().any(|l| l.contains("done   backup:")),
        "the backup had finished before the kill"
    );
}

/// One crash point on a fresh deployment, every check, then destroy.
fn crash_and_recover(hosts: &TestHosts, crash: &dyn Fn(&Path)) {
    let (base, grown) = manifests(hosts);
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path();
    std::fs::write(path.join("manifest.yml"), &base).expect("manifest");
    run_ok(path, &["apply", "--auto-approve", "--refresh=false"]);
    let recorded = state(path);
    let (main, report) = (
        app_login(&recorded, "postgresql.default"),
        app_login(&recorded, "postgresql.reporting"),
    );
    psql(
        hosts,
        1,
        5432,
        &main,
        "CREATE TABLE items (id int PRIMARY KEY, payload text); INSERT INTO items SELECT i, md5(i::text) FROM generate_series(1, 2000) i",
    );
    psql(
        hosts,
        2,
        5432,
        &report,
        "CREATE TABLE items (id int PRIMARY KEY, payload text); INSERT INTO items SELECT i, 'own' FROM generate_series(1, 50) i",
    );
    let master_sum = checksum(hosts, 1, 5432, &main).expect("master checksum");

    std::fs::write(path.join("manifest.yml"), &grown).expect("manifest");
    crash(path);
    run_ok(
        path,
        &[
            "apply",
            "--auto-approve",
            "--refresh=false",
            "--lock-timeout",
            "30s",
        ],
    );
    let after = state(path);
    assert!(
        after.journal.is_none(),
        "the finished apply left no journal"
    );
    // A physical copy carries the master's roles: the copies log in as
    // the master's application account.
    for (k, what) in [
        (1, "the master's data is unchanged"),
        (3, "the new slave holds the master's data"),
        (2, "the replicating group holds the master's data"),
    ] {
        let mut last = Err(String::new());
        let same = wait_for(WAIT, || {
            last = checksum(hosts, k, 5432, &main);
            last.as_deref() == Ok(master_sum.as_str())
        });
        assert!(same, "{what}: {last:?}, not {master_sum}");
    }
    run_ok(path, &["plan", "--detailed-exitcode"]);
    run_ok(path, &["destroy", "--app", "shop", "--auto-approve"]);
    for k in 1..=3 {
        nothing_left_on(hosts, k);
    }
}

/// The step ids of the plan from the base to the grown manifest.
fn planned_steps(hosts: &TestHosts) -> Vec<String> {
    let (base, grown) = manifests(hosts);
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("manifest.yml"), &base).expect("manifest");
    run_ok(dir.path(), &["apply", "--auto-approve", "--refresh=false"]);
    std::fs::write(dir.path().join("manifest.yml"), &grown).expect("manifest");
    let planned = run_ok(dir.path(), &["plan", "--refresh=false", "--json"]);
    let plan: serde_json::Value = serde_json::from_str(&planned.stdout).expect("plan JSON");
    run_ok(dir.path(), &["destroy", "--app", "shop", "--auto-approve"]);
    plan["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .map(|s| s["id"].as_str().expect("id").to_string())
        .collect()
}

#[test]
#[allow(clippy::print_stdout)] // the count is this test's figure
fn postgresql_across_hosts_survives_sigkill_at_every_step_boundary_and_mid_backup() {
    let Some(hosts) = hosts_or_skip(3) else {
        return;
    };
    let steps = planned_steps(&hosts);
    let (a2, a3) = (hosts.address(2), hosts.address(3));
    for expected in [
        format!("backup:pg-main@{a2}"),
        format!("backup:pg-main@{a3}"),
    ] {
        assert!(steps.contains(&expected), "{expected} in {steps:?}");
    }
    let mut points = 0;
    for step in &steps {
        for moment in ["before", "after"] {
            let point = format!("{moment}:{step}");
            crash_and_recover(&hosts, &|dir| apply_crashing_at(dir, &point));
            points += 1;
        }
    }
    let master = hosts.address(1).to_string();
    crash_and_recover(&hosts, &|dir| killed_mid_backup(dir, &master));
    points += 1;
    assert_eq!(points, 2 * steps.len() + 1, "every boundary and the middle");
    println!(
        "| postgresql on 3 hosts | {} steps ({}) | {points} crash points | all recovered |",
        steps.len(),
        steps.join(", ")
    );
    hosts.down();
}

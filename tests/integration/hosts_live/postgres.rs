//! PostgreSQL on test hosts: every capability of the local provider, with
//! the data moving host to host.

use super::{
    ScannedDeployment, app_login, hosts_or_skip, manifest_head, nothing_left_on, on_host, port,
    psql, run_ok, secrets, state, superuser_login, wait_psql,
};

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
    let app = app_login(&recorded, "postgresql.default");
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
        &app,
        "CREATE TABLE orders (id int PRIMARY KEY); INSERT INTO orders SELECT generate_series(1, 500)",
    );
    wait_psql(
        &hosts,
        2,
        replica_port,
        &app,
        "SELECT count(*) FROM orders",
        "500",
    );
    // It streams from the master, host to host: the master's WAL sender
    // serves the slave's host.
    let senders = psql(
        &hosts,
        1,
        main_port,
        &superuser_login(&recorded, "postgresql.default"),
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

/// The manifest of application `shop` on three hosts: `groups` is the
/// text under `postgresql: groups:`.
fn shop_manifest(hosts: &super::TestHosts, groups: &str) -> String {
    format!("{}postgresql:\n  groups:\n{groups}", manifest_head(hosts))
}

/// A group's text: its extra keys (indented six spaces) and its servers as
/// (name, host number).
fn group(hosts: &super::TestHosts, name: &str, extra: &str, servers: &[(&str, usize)]) -> String {
    let mut text = format!(
        "    {name}:\n      configuration: {{ version: \"15\" }}\n      backups: {{ managed: true }}\n{extra}      servers:\n"
    );
    for (server, k) in servers {
        text.push_str(&format!(
            "        - server: {{ unique_name: {server}, address: {} }}\n",
            hosts.address(*k)
        ));
    }
    text
}

/// The number of steps of `kind` in a plan of `manifest` (its JSON).
fn planned_steps(dir: &std::path::Path, args: &[&str], kind: &str) -> Vec<String> {
    let mut all = vec!["plan", "--refresh=false", "--format", "json"];
    all.extend_from_slice(args);
    let run = run_ok(dir, &all);
    let plan: serde_json::Value = serde_json::from_str(&run.stdout).expect("plan JSON");
    plan["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .filter(|s| s["kind"] == kind)
        .map(|s| s["id"].as_str().unwrap_or_default().to_string())
        .collect()
}

/// Every capability of the local provider, on three hosts: create, a
/// scale up whose one backup serves two new slaves on one host,
/// replication between groups and between applications across hosts, an
/// import, a forced re-sync, drift found by refresh and repaired, disable
/// replication, a primary move, removing a server and a group, status and
/// env, and destroy leaving nothing.
#[test]
fn every_capability_works_across_three_hosts() {
    let Some(hosts) = hosts_or_skip(3) else {
        return;
    };
    let (a2, a3) = (hosts.address(2), hosts.address(3));
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path();
    let write = |name: &str, text: String| std::fs::write(path.join(name), text).expect("manifest");
    let default_of = |servers: &[(&str, usize)]| group(&hosts, "default", "", servers);

    // Create.
    let two = [("pg-main", 1), ("pg-replica-1", 2)];
    write("manifest.yml", shop_manifest(&hosts, &default_of(&two)));
    run_ok(path, &["apply", "--auto-approve", "--refresh=false"]);
    let recorded = state(path);
    let app = app_login(&recorded, "postgresql.default");
    psql(
        &hosts,
        1,
        5432,
        &app,
        "CREATE TABLE orders (id int PRIMARY KEY); INSERT INTO orders SELECT generate_series(1, 100)",
    );

    // Scale up: two new slaves on host 3 share one backup taken there.
    let four = [
        ("pg-main", 1),
        ("pg-replica-1", 2),
        ("pg-replica-2", 3),
        ("pg-replica-3", 3),
    ];
    write("manifest.yml", shop_manifest(&hosts, &default_of(&four)));
    let backups = planned_steps(path, &[], "backup");
    assert_eq!(
        backups,
        [format!("backup:pg-main@{a3}")],
        "one backup, on host 3"
    );
    run_ok(path, &["apply", "--auto-approve", "--refresh=false"]);
    let recorded = state(path);
    let (p2, p3) = (
        port(&recorded, "pg-replica-2"),
        port(&recorded, "pg-replica-3"),
    );
    assert_eq!(
        (p2.min(p3), p2.max(p3)),
        (5432, 5433),
        "the next free port on a shared host"
    );
    psql(
        &hosts,
        1,
        5432,
        &app,
        "INSERT INTO orders SELECT generate_series(101, 200)",
    );
    for (k, port) in [(2, 5432), (3, p2), (3, p3)] {
        wait_psql(&hosts, k, port, &app, "SELECT count(*) FROM orders", "200");
    }

    // Replication between groups (reporting on host 2) and an import
    // (archive on host 3), in one apply.
    let archive_group = group(
        &hosts,
        "archive",
        "      import_from: default\n",
        &[("pg-archive", 3)],
    );
    let groups = default_of(&four)
        + &group(
            &hosts,
            "reporting",
            "      replicate_from: default\n",
            &[("pg-report", 2)],
        )
        + &archive_group;
    write("manifest.yml", shop_manifest(&hosts, &groups));
    let adds = [
        "--add-group",
        "postgresql.reporting",
        "--add-group",
        "postgresql.archive",
    ];
    let mut args = vec!["apply", "--auto-approve", "--refresh=false"];
    args.extend(adds);
    run_ok(path, &args);
    let recorded = state(path);
    let report_port = port(&recorded, "pg-report");
    let archive_port = port(&recorded, "pg-archive");
    assert_eq!(report_port, 5433, "host 2 already serves 5432");
    psql(
        &hosts,
        1,
        5432,
        &app,
        "INSERT INTO orders SELECT generate_series(201, 300)",
    );
    wait_psql(
        &hosts,
        2,
        report_port,
        &app,
        "SELECT count(*) FROM orders",
        "300",
    );
    let archive = app_login(&recorded, "postgresql.archive");
    assert_eq!(
        psql(
            &hosts,
            3,
            archive_port,
            &archive,
            "SELECT count(*) FROM orders"
        ),
        "200",
        "the import is a one-time copy of the rows at the time"
    );

    // Replication between applications: `reports` on host 2 follows shop.
    let other = format!(
        "{}postgresql:\n  groups:\n    default:\n      configuration: {{ version: \"15\" }}\n      replicate_from: {{ application: shop, group: default }}\n      servers:\n        - server: {{ unique_name: pg-other, address: {a2} }}\n",
        manifest_head(&hosts).replace("application: shop", "application: reports")
    );
    write("other.yml", other);
    run_ok(
        path,
        &[
            "apply",
            "-f",
            "other.yml",
            "--auto-approve",
            "--refresh=false",
        ],
    );
    let other_state = dbgroups_state::StateStore::load(
        &dbgroups_state::DirectoryStore::new(path.join(".dbgroups")),
        "reports",
    )
    .expect("loads")
    .expect("recorded");
    let other_port = port(&other_state, "pg-other");
    let mut all_secrets = secrets(&recorded);
    all_secrets.extend(secrets(&other_state));
    let _scanned = ScannedDeployment::new(path, &all_secrets.iter().collect::<Vec<_>>());
    psql(
        &hosts,
        1,
        5432,
        &app,
        "INSERT INTO orders SELECT generate_series(301, 400)",
    );
    wait_psql(
        &hosts,
        2,
        other_port,
        &app,
        "SELECT count(*) FROM orders",
        "400",
    );

    // A forced re-sync of a slave on another host.
    run_ok(
        path,
        &[
            "apply",
            "--auto-approve",
            "--refresh=false",
            "--resync",
            "pg-replica-1",
        ],
    );
    psql(
        &hosts,
        1,
        5432,
        &app,
        "INSERT INTO orders SELECT generate_series(401, 500)",
    );
    wait_psql(&hosts, 2, 5432, &app, "SELECT count(*) FROM orders", "500");

    // Drift: pg-replica-2's link broken on its host; refresh finds it and
    // the plan re-synchronises it.
    let replica_admin = superuser_login(&recorded, "postgresql.default");
    psql(
        &hosts,
        3,
        p2,
        &replica_admin,
        "ALTER SYSTEM SET primary_conninfo = 'host=127.0.0.1 port=1 user=replicator'",
    );
    psql(&hosts, 3, p2, &replica_admin, "SELECT pg_reload_conf()");
    wait_psql(
        &hosts,
        3,
        p2,
        &replica_admin,
        "SELECT count(*) FROM pg_stat_wal_receiver WHERE status = 'streaming'",
        "0",
    );
    let drift = crate::cli::dbgroups_in(path, &["plan", "--detailed-exitcode"]);
    assert_eq!(drift.code, 2, "{}\n{}", drift.stdout, drift.stderr);
    assert!(
        drift.stdout.contains("re-synchronise pg-replica-2"),
        "{}",
        drift.stdout
    );
    run_ok(path, &["apply", "--auto-approve"]);
    psql(
        &hosts,
        1,
        5432,
        &app,
        "INSERT INTO orders SELECT generate_series(501, 600)",
    );
    wait_psql(&hosts, 3, p2, &app, "SELECT count(*) FROM orders", "600");

    // Disable replication, and move the primary to the detached group.
    let groups = default_of(&four)
        + &group(
            &hosts,
            "reporting",
            "      primary: true\n",
            &[("pg-report", 2)],
        )
        + &archive_group;
    write("manifest.yml", shop_manifest(&hosts, &groups));
    run_ok(path, &["apply", "--auto-approve", "--refresh=false"]);
    psql(
        &hosts,
        2,
        report_port,
        &app,
        "INSERT INTO orders VALUES (100000)",
    );
    let env = run_ok(path, &["env"]);
    assert!(
        env.stdout.contains(&format!("POSTGRESQL_ADDRESS={a2}\n"))
            && env
                .stdout
                .contains(&format!("POSTGRESQL_PORT={report_port}\n")),
        "the root variables follow the primary:\n{}",
        env.stdout
    );

    // Remove a server and a group: their directories go from host 3.
    let three = [("pg-main", 1), ("pg-replica-1", 2), ("pg-replica-2", 3)];
    let groups = default_of(&three)
        + &group(
            &hosts,
            "reporting",
            "      primary: true\n",
            &[("pg-report", 2)],
        );
    write("manifest.yml", shop_manifest(&hosts, &groups));
    run_ok(
        path,
        &[
            "apply",
            "--auto-approve",
            "--refresh=false",
            "--remove-server",
            "pg-replica-3",
            "--remove-group",
            "postgresql.archive",
        ],
    );
    let on_three = on_host(&hosts, 3, "ls /var/lib/dbgroups/servers");
    assert_eq!(
        on_three, "pg-replica-2",
        "only pg-replica-2 is left on host 3"
    );
    let status = run_ok(path, &["status"]);
    for server in ["pg-main", "pg-replica-1", "pg-replica-2", "pg-report"] {
        assert!(
            status.stdout.contains(server),
            "{server}:\n{}",
            status.stdout
        );
    }
    assert!(!status.stdout.contains("pg-replica-3"), "{}", status.stdout);
    // Refreshed against every host, nothing is left to do.
    run_ok(path, &["plan", "--detailed-exitcode"]);

    run_ok(path, &["destroy", "--app", "reports", "--auto-approve"]);
    run_ok(path, &["destroy", "--app", "shop", "--auto-approve"]);
    for k in 1..=3 {
        nothing_left_on(&hosts, k);
    }
    hosts.down();
}

//! MariaDB on test hosts: a replica on another host is seeded by a dump
//! taken on its own host against the master (the data goes host to host),
//! then follows by GTID; a scale up adds one on a third host, an import
//! copies the group into another on the third host, and destroy leaves
//! nothing. dbgroups reaches each server's root over its socket, relayed
//! through the host's ssh connection; the slave's host is reached as
//! `deploy`, through `sudo -n`.

use super::{
    ScannedDeployment, TestHosts, WAIT, hosts_or_skip, manifest_head, nothing_left_on, port,
    quoted, run_ok, secrets, state, wait_for,
};

/// The mariadb client on host K over its loopback, as `user`: the output
/// of `sql`, or its error (without the password).
fn try_sql(
    hosts: &TestHosts,
    k: usize,
    port: u16,
    (user, password): (&str, &str),
    sql: &str,
) -> Result<String, String> {
    let output = hosts.run_on(
        k,
        &format!(
            "MYSQL_PWD={} mariadb --no-defaults --ssl --protocol=TCP -h 127.0.0.1 -P {port} -u {} -N -B -e {}",
            quoted(password),
            quoted(user),
            quoted(sql),
        ),
    );
    if output.status.success() {
        Ok(String::from_utf8_lossy(&output.stdout).trim().to_string())
    } else {
        Err(format!(
            "mariadb on {} port {port} ({sql}): {}",
            hosts.name(k),
            String::from_utf8_lossy(&output.stderr)
        ))
    }
}

/// Waits until `sql` gives `expected` on host K.
fn wait_sql(
    hosts: &TestHosts,
    k: usize,
    port: u16,
    login: (&str, &str),
    sql: &str,
    expected: &str,
) {
    let mut last = Err(String::new());
    let arrived = wait_for(WAIT, || {
        last = try_sql(hosts, k, port, login, sql);
        last.as_deref() == Ok(expected)
    });
    assert!(
        arrived,
        "{sql} on {} port {port}: wanted {expected}, last {last:?}",
        hosts.name(k)
    );
}

/// `mysql: groups:` with `default` on hosts 1 and 2 (as `deploy`), more
/// servers of it as (name, host), and `extra` groups' text.
fn manifest(hosts: &TestHosts, more: &[(&str, usize)], extra: &str) -> String {
    let mut text = format!(
        "{}mysql:\n  groups:\n    default:\n      configuration: {{ engine: mariadb, version: \"10.11\" }}\n      backups: {{ managed: true }}\n      servers:\n        - server: {{ unique_name: db-main, address: {} }}\n        - server: {{ unique_name: db-replica-1, address: {}, ssh: {{ user: deploy }} }}\n",
        manifest_head(hosts),
        hosts.address(1),
        hosts.address(2)
    );
    for (name, k) in more {
        text.push_str(&format!(
            "        - server: {{ unique_name: {name}, address: {} }}\n",
            hosts.address(*k)
        ));
    }
    text.push_str(extra);
    text
}

#[test]
fn a_mariadb_group_across_three_hosts_replicates_scales_up_imports_detaches_and_is_destroyed() {
    let Some(hosts) = hosts_or_skip(3) else {
        return;
    };
    let (a1, a2, a3) = (hosts.address(1), hosts.address(2), hosts.address(3));
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path();
    std::fs::write(path.join("manifest.yml"), manifest(&hosts, &[], "")).expect("manifest");
    let plan = run_ok(path, &["plan", "--refresh=false"]);
    assert!(
        plan.stdout.contains(&format!("taken on {a2}")),
        "the dump is taken on the slave's host:\n{}",
        plan.stdout
    );
    run_ok(path, &["apply", "--auto-approve", "--refresh=false"]);
    let recorded = state(path);
    let _scanned = ScannedDeployment::new(path, &secrets(&recorded).iter().collect::<Vec<_>>());
    let credentials = &recorded.credentials["mysql.default"];
    let password = credentials.password.as_ref().expect("generated").expose();
    let app = (credentials.username.as_str(), password);
    let database = credentials.database.clone();
    let (main_port, replica_port) = (port(&recorded, "db-main"), port(&recorded, "db-replica-1"));
    assert_eq!(main_port, 3306, "a host of its own: the engine's own port");
    assert_eq!(replica_port, 3306);

    // Rows written on the master reach the slave on the other host.
    try_sql(
        &hosts,
        1,
        main_port,
        app,
        &format!(
            "USE `{database}`; CREATE TABLE orders (id INT PRIMARY KEY); INSERT INTO orders SELECT seq FROM seq_1_to_500"
        ),
    )
    .expect("rows on the master");
    let count = format!("SELECT COUNT(*) FROM `{database}`.orders");
    wait_sql(&hosts, 2, replica_port, app, &count, "500");
    // Both servers listen on their host's address and on loopback.
    for (k, address) in [(1, a1), (2, a2)] {
        let listening = super::on_host(&hosts, k, "ss -Hltn 'sport = :3306'");
        for expected in [format!("{address}:3306"), "127.0.0.1:3306".to_string()] {
            assert!(
                listening.contains(&expected),
                "{}: {listening}",
                hosts.name(k)
            );
        }
    }
    let status = run_ok(path, &["status"]);
    assert!(
        status.stdout.contains("db-replica-1")
            && status
                .stdout
                .contains("IO thread running, SQL thread running"),
        "{}",
        status.stdout
    );

    // A scale up onto host 3, a group on host 3 importing host 1's, and
    // one on host 2 replicating from it.
    let groups = |reporting_seed: &str| {
        format!(
            "    copy:\n      configuration: {{ engine: mariadb, version: \"10.11\" }}\n      import_from: default\n      servers:\n        - server: {{ unique_name: db-copy, address: {a3} }}\n    reporting:\n      configuration: {{ engine: mariadb, version: \"10.11\" }}\n{reporting_seed}      servers:\n        - server: {{ unique_name: db-report, address: {a2} }}\n"
        )
    };
    std::fs::write(
        path.join("manifest.yml"),
        manifest(
            &hosts,
            &[("db-replica-2", 3)],
            &groups("      replicate_from: default\n"),
        ),
    )
    .expect("manifest");
    run_ok(
        path,
        &[
            "apply",
            "--auto-approve",
            "--refresh=false",
            "--add-group",
            "mysql.copy",
            "--add-group",
            "mysql.reporting",
        ],
    );
    let recorded = state(path);
    let _scanned = ScannedDeployment::new(path, &secrets(&recorded).iter().collect::<Vec<_>>());
    try_sql(
        &hosts,
        1,
        main_port,
        app,
        &format!("INSERT INTO `{database}`.orders VALUES (501)"),
    )
    .expect("a later write");
    wait_sql(
        &hosts,
        3,
        port(&recorded, "db-replica-2"),
        app,
        &count,
        "501",
    );
    let reporting = &recorded.credentials["mysql.reporting"];
    let reporting_login = (
        reporting.username.as_str(),
        reporting.password.as_ref().expect("generated").expose(),
    );
    let report_port = port(&recorded, "db-report");
    wait_sql(&hosts, 2, report_port, reporting_login, &count, "501");
    let copy = &recorded.credentials["mysql.copy"];
    let copy_login = (
        copy.username.as_str(),
        copy.password.as_ref().expect("generated").expose(),
    );
    let copy_port = port(&recorded, "db-copy");
    assert_ne!(
        copy_port,
        port(&recorded, "db-replica-2"),
        "two servers on host 3, two ports"
    );
    assert_eq!(
        try_sql(&hosts, 3, copy_port, copy_login, &count).as_deref(),
        Ok("500"),
        "the import holds the master's rows of its time, and follows nothing"
    );

    // Replication disabled: the reporting group keeps its rows, takes
    // writes of its own, and no longer follows.
    std::fs::write(
        path.join("manifest.yml"),
        manifest(&hosts, &[("db-replica-2", 3)], &groups("")),
    )
    .expect("manifest");
    run_ok(path, &["apply", "--auto-approve", "--refresh=false"]);
    try_sql(
        &hosts,
        1,
        main_port,
        app,
        &format!("INSERT INTO `{database}`.orders VALUES (502)"),
    )
    .expect("a write after the detach");
    wait_sql(
        &hosts,
        3,
        port(&recorded, "db-replica-2"),
        app,
        &count,
        "502",
    );
    assert_eq!(
        try_sql(&hosts, 2, report_port, reporting_login, &count).as_deref(),
        Ok("501"),
        "the detached group follows no more"
    );

    let env = run_ok(path, &["env"]);
    assert!(
        env.stdout.contains(&format!("MYSQL_ADDRESS={a1}\n")),
        "{}",
        env.stdout
    );
    // Refreshed against the hosts, the plan has nothing left to do.
    run_ok(path, &["plan", "--detailed-exitcode"]);
    run_ok(path, &["destroy", "--app", "shop", "--auto-approve"]);
    for k in 1..=3 {
        nothing_left_on(&hosts, k);
    }
    hosts.down();
}

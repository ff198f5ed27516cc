//! A fresh quickstart, a Redis group with a slave, NDJSON, stale plan files,
//! planned starts, a missing version, and destroy.

use super::*;

#[test]
fn a_fresh_quickstart_replicates_writes_its_environment_and_converges() {
    let (dir, _servers) = quickstart();
    let run = dbgroups_in(dir.path(), &["apply", "--auto-approve", "--refresh=false"]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert!(
        run.stderr.contains("Apply complete: 7 steps."),
        "{}",
        run.stderr
    );
    let state = state(dir.path());
    assert!(
        state.journal.is_none(),
        "a finished apply leaves no journal"
    );
    for secret in all_secrets(&state) {
        assert!(
            !run.stdout.contains(&secret) && !run.stderr.contains(&secret),
            "a password was printed"
        );
    }

    let runtime = crate::common::runtime();
    runtime.block_on(async {
        let pg_password = password(&state, "postgresql.default");
        let master = pg(port(&state, "pg-main"), &pg_password).await;
        master
            .batch_execute("CREATE TABLE orders (id int PRIMARY KEY); INSERT INTO orders SELECT generate_series(1, 100);")
            .await
            .expect("writes on the master");
        let slave = pg(port(&state, "pg-replica-1"), &pg_password).await;
        assert_eq!(wait_for_rows(&slave, 100).await, 100, "the rows reached the slave");

        let redis_password = password(&state, "redis.default");
        let client = redis::Client::open(format!("redis://:{redis_password}@127.0.0.1:{}/0", port(&state, "redis-main"))).expect("url");
        let mut redis = client.get_multiplexed_async_connection().await.expect("connects with the password");
        let _: () = redis.set("greeting", "hello").await.expect("writes");
        let read: String = redis.get("greeting").await.expect("reads");
        assert_eq!(read, "hello");
    });

    let env_file = dir.path().join(".dbgroups/env/shop.env");
    let mode = std::fs::metadata(&env_file)
        .expect("written")
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o600);
    let env = std::fs::read_to_string(&env_file).expect("readable");
    assert!(
        env.contains(&format!("POSTGRESQL_PORT={}\n", port(&state, "pg-main"))),
        "{env}"
    );
    assert!(
        env.contains(&format!(
            "POSTGRESQL_SLAVE_ADDRESSES=127.0.0.1:{}\n",
            port(&state, "pg-replica-1")
        )),
        "{env}"
    );

    let shown = dbgroups_in(dir.path(), &["env"]);
    assert!(
        shown.stdout.contains("POSTGRESQL_PASSWORD=(sensitive)"),
        "{}",
        shown.stdout
    );
    let revealed = dbgroups_in(dir.path(), &["env", "--show-secrets"]);
    assert!(revealed.stdout.contains(&format!(
        "POSTGRESQL_PASSWORD={}",
        password(&state, "postgresql.default")
    )));

    let status = dbgroups_in(dir.path(), &["status"]);
    assert!(
        status.stdout.contains("streaming (receiver streaming)"),
        "{}",
        status.stdout
    );

    let replan = dbgroups_in(dir.path(), &["plan", "--detailed-exitcode"]);
    assert_eq!(
        replan.code, 0,
        "planning again after apply shows no changes:\n{}",
        replan.stdout
    );
}

#[test]
fn destroy_leaves_no_process_and_no_data_behind() {
    let (dir, _servers) = quickstart();
    let applied = dbgroups_in(dir.path(), &["apply", "--auto-approve", "--refresh=false"]);
    assert_eq!(applied.code, 0, "{}", applied.stderr);
    let before = state(dir.path());
    let ports: Vec<u16> = ["pg-main", "pg-replica-1", "redis-main"]
        .iter()
        .map(|s| port(&before, s))
        .collect();
    let servers_dir = dir
        .path()
        .join(".dbgroups/servers")
        .canonicalize()
        .expect("exists");
    assert!(
        !processes_mentioning(&servers_dir.display().to_string()).is_empty(),
        "servers run before destroy"
    );

    let unconfirmed = dbgroups_in(dir.path(), &["destroy", "--app", "shop"]);
    assert_eq!(unconfirmed.code, 1);
    assert!(
        unconfirmed
            .stderr
            .contains("refusing to destroy without confirmation"),
        "{}",
        unconfirmed.stderr
    );

    let destroyed = dbgroups_in(dir.path(), &["destroy", "--app", "shop", "--auto-approve"]);
    assert_eq!(
        destroyed.code, 0,
        "{}\n{}",
        destroyed.stdout, destroyed.stderr
    );
    assert!(
        destroyed.stdout.contains("- remove postgresql.default"),
        "{}",
        destroyed.stdout
    );

    for port in ports {
        assert!(
            std::net::TcpStream::connect(("127.0.0.1", port)).is_err(),
            "something still listens on {port}"
        );
    }
    assert_no_server_left(&servers_dir);
    let after = destroyed_state(dir.path());
    assert!(
        after.groups.is_empty() && after.journal.is_none(),
        "the state records the destruction"
    );
    assert!(after.serial > before.serial);
}

#[test]
fn ndjson_events_a_stale_plan_file_and_a_planned_start() {
    let (dir, _servers) = quickstart();
    let planned = dbgroups_in(
        dir.path(),
        &["plan", "--refresh=false", "--out", "plan.json"],
    );
    assert_eq!(planned.code, 0, "{}", planned.stderr);
    let applied = dbgroups_in(dir.path(), &["apply", "plan.json", "--json"]);
    assert_eq!(applied.code, 0, "{}", applied.stderr);
    let events: Vec<serde_json::Value> = applied
        .stdout
        .lines()
        .map(|line| {
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not NDJSON ({e}): {line}"))
        })
        .collect();
    let finished = events
        .iter()
        .filter(|e| e["event"] == "step_finished")
        .count();
    assert_eq!(finished, 7, "{}", applied.stdout);
    assert!(
        events
            .iter()
            .any(|e| e["event"] == "step_started" && e["step"] == "provision:pg-main")
    );

    // The same plan file again: the state moved on, so it is refused.
    let stale = dbgroups_in(dir.path(), &["apply", "plan.json"]);
    assert_eq!(stale.code, 1);
    assert!(
        stale
            .stderr
            .contains("the plan file is stale; make a new plan"),
        "{}",
        stale.stderr
    );
    assert!(
        stale
            .stderr
            .contains("the plan was made for a new application, but state has been recorded since"),
        "it says what moved: {}",
        stale.stderr
    );

    // A server that stopped (a reboot, say) is planned to start, and started.
    let recorded = state(dir.path());
    let provider = LocalHost::prepare(&dir.path().join(".dbgroups"))
        .expect("provider")
        .0
        .into_ref();
    crate::common::block_on(PostgresServer::new(
        &provider,
        "pg-replica-1",
        "15",
        port(&recorded, "pg-replica-1"),
    ))
    .expect("installed")
    .stop_now();
    let plan = dbgroups_in(dir.path(), &["plan", "--detailed-exitcode"]);
    assert_eq!(plan.code, 2, "{}", plan.stdout);
    assert!(
        plan.stdout
            .contains("~ start pg-replica-1 in postgresql.default"),
        "{}",
        plan.stdout
    );
    assert!(
        plan.stdout
            .contains("reason: observed: pg-replica-1 is not running"),
        "{}",
        plan.stdout
    );
    let started = dbgroups_in(dir.path(), &["apply", "--auto-approve"]);
    assert_eq!(started.code, 0, "{}", started.stderr);
    let replan = dbgroups_in(dir.path(), &["plan", "--detailed-exitcode"]);
    assert_eq!(replan.code, 0, "up and streaming again:\n{}", replan.stdout);
}

#[test]
fn a_version_that_is_not_installed_names_its_package() {
    let dir = tempfile::tempdir().expect("temp dir");
    let provider = LocalHost::inspect(dir.path()).expect("provider").into_ref();
    let err = crate::common::block_on(PostgresServer::new(&provider, "pg-old", "13", 5432))
        .expect_err("13 is not installed");
    assert_eq!(
        err.to_string(),
        "postgres for postgresql 13 is not installed (looked in /usr/lib/postgresql/13/bin); install the Debian package postgresql-13"
    );
}

#[test]
fn a_redis_group_with_a_slave_replicates_through_apply() {
    let (dir, _servers) = quickstart();
    set_manifest(
        dir.path(),
        "application: shop\nredis:\n  configuration: { version: \"7.0\" }\n  backups: { managed: true }\n  servers:\n    - server: { unique_name: redis-main }\n    - server: { unique_name: redis-replica-1 }\n",
    );
    let applied = dbgroups_in(dir.path(), &["apply", "--auto-approve", "--refresh=false"]);
    assert_eq!(applied.code, 0, "{}\n{}", applied.stdout, applied.stderr);
    let recorded = state(dir.path());
    let redis_password = password(&recorded, "redis.default");
    let runtime = crate::common::runtime();
    runtime.block_on(async {
        let url = |port: u16| format!("redis://:{redis_password}@127.0.0.1:{port}/0");
        let master = redis::Client::open(url(port(&recorded, "redis-main"))).expect("url");
        let replica = redis::Client::open(url(port(&recorded, "redis-replica-1"))).expect("url");
        let mut on_master = master
            .get_multiplexed_async_connection()
            .await
            .expect("connects");
        let mut on_replica = replica
            .get_multiplexed_async_connection()
            .await
            .expect("connects");
        let _: () = on_master.set("cart:1", "3 items").await.expect("writes");
        let mut seen: Option<String> = None;
        for _ in 0..600 {
            // a generous budget: a loaded CI machine is slow
            seen = on_replica.get("cart:1").await.expect("reads");
            if seen.is_some() {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        assert_eq!(
            seen.as_deref(),
            Some("3 items"),
            "the key reached the slave"
        );
    });
    let env = std::fs::read_to_string(dir.path().join(".dbgroups/env/shop.env")).expect("env");
    assert!(
        env.contains(&format!(
            "REDIS_SLAVE_ADDRESSES=127.0.0.1:{}\n",
            port(&recorded, "redis-replica-1")
        )),
        "{env}"
    );
    let replan = dbgroups_in(dir.path(), &["plan", "--detailed-exitcode"]);
    assert_eq!(replan.code, 0, "converged:\n{}", replan.stdout);
}

#[test]
fn a_group_mixing_this_machine_and_existing_hosts_is_refused_at_plan_time() {
    let (dir, _servers) = quickstart();
    set_manifest(
        dir.path(),
        "application: shop\nredis:\n  servers:\n    - server: { unique_name: redis-here }\n    - server: { unique_name: redis-remote, address: db7.internal }\n",
    );
    // Servers of the local provider listen on loopback only: no host can
    // replicate with them, so the plan blocks the group, naming both.
    let planned = dbgroups_in(dir.path(), &["plan", "--refresh=false"]);
    assert_eq!(planned.code, 1, "{}\n{}", planned.stdout, planned.stderr);
    let shown = format!("{}{}", planned.stdout, planned.stderr);
    assert!(
        shown.contains("redis.default mixes servers on this machine (redis-here) with servers on existing hosts (redis-remote)"),
        "{shown}"
    );
    assert!(!shown.contains("provision:redis"), "{shown}");
    let refused = dbgroups_in(dir.path(), &["apply", "--auto-approve", "--refresh=false"]);
    assert_eq!(refused.code, 1, "{}", refused.stderr);
    assert!(
        !dir.path().join(".dbgroups/servers/redis-here").exists(),
        "nothing was built here"
    );
}

#[test]
fn a_mariadb_group_with_a_slave_replicates_through_apply() {
    use mysql_async::prelude::Queryable;

    let (dir, _servers) = quickstart();
    set_manifest(
        dir.path(),
        "application: shop\nmysql:\n  configuration: { engine: mariadb, version: \"10.11\" }\n  backups: { managed: true }\n  servers:\n    - server: { unique_name: db-main }\n    - server: { unique_name: db-replica-1 }\n",
    );
    let applied = dbgroups_in(dir.path(), &["apply", "--auto-approve", "--refresh=false"]);
    assert_eq!(applied.code, 0, "{}\n{}", applied.stdout, applied.stderr);
    assert!(
        applied.stdout.contains("backup:db-main"),
        "a MariaDB slave on its master's host is seeded by a physical copy (mariadb-backup):\n{}",
        applied.stdout
    );
    let recorded = state(dir.path());
    let app_password = password(&recorded, "mysql.default");
    let runtime = crate::common::runtime();
    runtime.block_on(async {
        let connect = |port: u16| {
            let password = app_password.clone();
            async move {
                mysql_async::Conn::new(
                    mysql_async::OptsBuilder::default()
                        .ip_or_hostname("127.0.0.1")
                        .tcp_port(port)
                        .user(Some("shop"))
                        .pass(Some(password))
                        .db_name(Some("shop")),
                )
                .await
                .expect("the application connects")
            }
        };
        let mut master = connect(port(&recorded, "db-main")).await;
        master
            .query_drop("CREATE TABLE orders (id INT PRIMARY KEY)")
            .await
            .expect("creates");
        master
            .query_drop("INSERT INTO orders VALUES (1), (2), (3)")
            .await
            .expect("writes");
        let mut slave = connect(port(&recorded, "db-replica-1")).await;
        let mut count: Option<i64> = None;
        for _ in 0..600 {
            // a generous budget: a loaded CI machine is slow
            count = slave
                .query_first("SELECT COUNT(*) FROM orders")
                .await
                .unwrap_or(None);
            if count == Some(3) {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        assert_eq!(count, Some(3), "the rows reached the slave");
    });
    let env = std::fs::read_to_string(dir.path().join(".dbgroups/env/shop.env")).expect("env");
    assert!(
        env.contains(&format!("MYSQL_PORT={}\n", port(&recorded, "db-main"))),
        "{env}"
    );
    let replan = dbgroups_in(
        dir.path(),
        &["plan", "--detailed-exitcode", "--refresh=false"],
    );
    assert_eq!(replan.code, 0, "converged:\n{}", replan.stdout);
}

/// A Redis slave added to a group holding data gets it by one full sync on
/// REPLICAOF, with no backup step before it (an RDB restored first would be
/// discarded by that sync: measured, docs/benchmarks.md).
#[test]
fn a_redis_scale_up_copies_the_data_by_one_full_sync() {
    let (dir, _servers) = quickstart();
    let one = "application: shop\nredis:\n  configuration: { version: \"7.0\" }\n  backups: { managed: true }\n  servers:\n    - server: { unique_name: redis-main }\n";
    set_manifest(dir.path(), one);
    let applied = dbgroups_in(dir.path(), &["apply", "--auto-approve", "--refresh=false"]);
    assert_eq!(applied.code, 0, "{}\n{}", applied.stdout, applied.stderr);
    let recorded = state(dir.path());
    let redis_password = password(&recorded, "redis.default");
    let url = |port: u16| format!("redis://:{redis_password}@127.0.0.1:{port}/0");
    let runtime = crate::common::runtime();
    let master_url = url(port(&recorded, "redis-main"));
    runtime.block_on(async {
        let master = redis::Client::open(master_url.as_str()).expect("url");
        let mut conn = master
            .get_multiplexed_async_connection()
            .await
            .expect("connects");
        for i in 0..1000 {
            let _: () = conn.set(format!("key:{i}"), i).await.expect("writes");
        }
    });
    set_manifest(
        dir.path(),
        &one.replace(
            "    - server: { unique_name: redis-main }\n",
            "    - server: { unique_name: redis-main }\n    - server: { unique_name: redis-replica-1 }\n",
        ),
    );
    let scaled = dbgroups_in(dir.path(), &["apply", "--auto-approve", "--refresh=false"]);
    assert_eq!(scaled.code, 0, "{}\n{}", scaled.stdout, scaled.stderr);
    assert!(
        !scaled.stdout.contains("backup:redis-main"),
        "no backup step:\n{}",
        scaled.stdout
    );
    let after = state(dir.path());
    runtime.block_on(async {
        let master = redis::Client::open(master_url.as_str()).expect("url");
        let mut on_master = master
            .get_multiplexed_async_connection()
            .await
            .expect("connects");
        let _: () = on_master.set("key:later", 1).await.expect("writes");
        let replica = redis::Client::open(url(port(&after, "redis-replica-1"))).expect("url");
        let mut on_replica = replica
            .get_multiplexed_async_connection()
            .await
            .expect("connects");
        let mut keys = 0;
        for _ in 0..600 {
            // a generous budget: a loaded CI machine is slow
            keys = redis::cmd("DBSIZE")
                .query_async(&mut on_replica)
                .await
                .expect("DBSIZE");
            if keys == 1001 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        assert_eq!(keys, 1001, "existing and later keys reached the slave");
        let stats: String = redis::cmd("INFO")
            .arg("stats")
            .query_async(&mut on_master)
            .await
            .expect("INFO");
        assert!(
            stats.contains("sync_full:1\r\n"),
            "exactly one full sync:\n{stats}"
        );
    });
}

//! Changes applied to live groups: scale ups, replication between groups
//! and between applications, disabling it, moving the primary, imports,
//! re-syncs.

use super::*;

#[test]
fn scale_up_replicate_between_groups_disable_and_move_the_primary_on_real_servers() {
    let (dir, _servers) = quickstart();
    set_manifest(dir.path(), TWO_GROUPS);
    let applied = dbgroups_in(dir.path(), &["apply", "--auto-approve", "--refresh=false"]);
    assert_eq!(applied.code, 0, "{}", applied.stderr);
    let first = state(dir.path());
    let runtime = crate::common::runtime();
    let default_password = password(&first, "postgresql.default");
    let admin = first.credentials["postgresql.default"]
        .admin_password
        .as_ref()
        .expect("admin")
        .expose()
        .to_string();
    let main_port = port(&first, "pg-main");
    let started = runtime.block_on(async {
        let master = pg(main_port, &default_password).await;
        master
            .batch_execute("CREATE TABLE orders (id int PRIMARY KEY); INSERT INTO orders SELECT generate_series(1, 500);")
            .await
            .expect("existing data");
        let report = pg(port(&first, "pg-report"), &password(&first, "postgresql.reporting")).await;
        report.batch_execute("CREATE TABLE stale (id int); INSERT INTO stale VALUES (1);").await.expect("old data on the replica-to-be");
        pg_start_time(main_port, &admin).await
    });

    // Scale up: a slave added to a group that holds data.
    set_manifest(
        dir.path(),
        &TWO_GROUPS.replace("        - server: { unique_name: pg-main }\n", "        - server: { unique_name: pg-main }\n        - server: { unique_name: pg-replica-1 }\n"),
    );
    let scaled = dbgroups_in(dir.path(), &["apply", "--auto-approve", "--refresh=false"]);
    assert_eq!(scaled.code, 0, "{}\n{}", scaled.stdout, scaled.stderr);
    assert!(
        scaled
            .stdout
            .contains("+ scale up postgresql.default: add pg-replica-1"),
        "{}",
        scaled.stdout
    );
    let second = state(dir.path());
    runtime.block_on(async {
        let master = pg(main_port, &default_password).await;
        master
            .batch_execute("INSERT INTO orders SELECT generate_series(501, 600);")
            .await
            .expect("later writes");
        let slave = pg(port(&second, "pg-replica-1"), &default_password).await;
        assert_eq!(
            wait_for_rows(&slave, 600).await,
            600,
            "existing and later rows are on the new slave"
        );
        assert_eq!(
            pg_start_time(main_port, &admin).await,
            started,
            "the master was not restarted"
        );
    });

    // Replication between groups: reporting follows default; its data is replaced.
    let grown = std::fs::read_to_string(dir.path().join("manifest.yml")).expect("read");
    let replicating = grown.replace("      configuration: { version: \"15\" }\n      servers:\n        - server: { unique_name: pg-report }", "      configuration: { version: \"15\" }\n      replicate_from: default\n      servers:\n        - server: { unique_name: pg-report }");
    set_manifest(dir.path(), &replicating);
    let enabled = dbgroups_in(dir.path(), &["apply", "--auto-approve", "--refresh=false"]);
    assert_eq!(enabled.code, 0, "{}\n{}", enabled.stdout, enabled.stderr);
    assert!(
        enabled.stdout.contains("all data on pg-report is replaced"),
        "{}",
        enabled.stdout
    );
    let third = state(dir.path());
    runtime.block_on(async {
        // A PostgreSQL copy carries the source's roles: the group's
        // credentials are now the source's.
        let report = pg(
            port(&third, "pg-report"),
            &password(&third, "postgresql.reporting"),
        )
        .await;
        assert_eq!(
            wait_for_rows(&report, 600).await,
            600,
            "the source's data replaced the old"
        );
        let stale = report
            .query_opt("SELECT 1 FROM pg_tables WHERE tablename = 'stale'", &[])
            .await
            .expect("reads");
        assert!(stale.is_none(), "the replica's old data is gone");
        let master = pg(main_port, &default_password).await;
        master
            .batch_execute("INSERT INTO orders VALUES (601);")
            .await
            .expect("writes");
        assert_eq!(
            wait_for_rows(&report, 601).await,
            601,
            "writes flow to the other group"
        );
    });
    assert_eq!(
        third
            .group(dbgroups_manifest::DbType::Postgresql, "reporting")
            .and_then(|g| g.replicate_from.clone())
            .map(|s| s.group),
        Some("default".into())
    );

    // Disable replication: reporting keeps its data and becomes writable.
    set_manifest(dir.path(), &grown);
    let disabled = dbgroups_in(dir.path(), &["apply", "--auto-approve", "--refresh=false"]);
    assert_eq!(disabled.code, 0, "{}\n{}", disabled.stdout, disabled.stderr);
    let fourth = state(dir.path());
    runtime.block_on(async {
        let report = pg(
            port(&fourth, "pg-report"),
            &password(&fourth, "postgresql.reporting"),
        )
        .await;
        report
            .batch_execute("INSERT INTO orders VALUES (9999);")
            .await
            .expect("writable after detach");
        let master = pg(main_port, &default_password).await;
        crate::common::eventually(
            "the master no longer streams to pg-report",
            async || crate::common::pg_streams_to(&master, "pg-report").await,
            |streams| *streams == 0,
        )
        .await;
        master
            .batch_execute("INSERT INTO orders VALUES (602);")
            .await
            .expect("writes");
        let followed: i64 = report
            .query_one("SELECT count(*) FROM orders WHERE id = 602", &[])
            .await
            .expect("reads")
            .get(0);
        assert_eq!(followed, 0, "it no longer follows");
        let kept: i64 = report
            .query_one("SELECT count(*) FROM orders", &[])
            .await
            .expect("reads")
            .get(0);
        assert_eq!(kept, 602, "it kept its data (601 + its own row)");
    });

    // Move the primary: the root variables point at reporting.
    set_manifest(
        dir.path(),
        &grown.replace("    reporting:\n", "    reporting:\n      primary: true\n"),
    );
    let moved = dbgroups_in(dir.path(), &["apply", "--auto-approve", "--refresh=false"]);
    assert_eq!(moved.code, 0, "{}\n{}", moved.stdout, moved.stderr);
    let fifth = state(dir.path());
    let env = std::fs::read_to_string(dir.path().join(".dbgroups/env/shop.env")).expect("env file");
    assert!(
        env.contains(&format!("POSTGRESQL_PORT={}\n", port(&fifth, "pg-report"))),
        "{env}"
    );
    assert!(
        env.contains(&format!("POSTGRESQL_DEFAULT_PORT={main_port}\n")),
        "{env}"
    );

    let replan = dbgroups_in(dir.path(), &["plan", "--detailed-exitcode"]);
    assert_eq!(replan.code, 0, "converged:\n{}", replan.stdout);
}

#[test]
fn a_broken_slave_is_planned_for_resync_with_the_reason_and_repaired() {
    let (dir, _servers) = quickstart();
    let applied = dbgroups_in(dir.path(), &["apply", "--auto-approve", "--refresh=false"]);
    assert_eq!(applied.code, 0, "{}", applied.stderr);
    let recorded = state(dir.path());
    let admin = recorded.credentials["postgresql.default"]
        .admin_password
        .as_ref()
        .expect("admin")
        .expose()
        .to_string();
    let app_password = password(&recorded, "postgresql.default");
    let runtime = crate::common::runtime();
    runtime.block_on(async {
        // Point the slave at a port nothing listens on: its WAL receiver stops.
        let client = super::pg_superuser(port(&recorded, "pg-replica-1"), &admin).await;
        // ALTER SYSTEM refuses to run inside a (multi-statement) transaction.
        client
            .batch_execute(
                "ALTER SYSTEM SET primary_conninfo = 'host=127.0.0.1 port=1 user=replicator'",
            )
            .await
            .expect("breaks the link");
        client
            .batch_execute("SELECT pg_reload_conf()")
            .await
            .expect("reloads");
        for _ in 0..600 {
            // a generous budget: a loaded CI machine is slow
            let receiving = client
                .query_opt(
                    "SELECT status FROM pg_stat_wal_receiver WHERE status = 'streaming'",
                    &[],
                )
                .await
                .expect("reads");
            if receiving.is_none() {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    });

    let planned = dbgroups_in(dir.path(), &["plan", "--detailed-exitcode"]);
    assert_eq!(planned.code, 2, "{}\n{}", planned.stdout, planned.stderr);
    assert!(
        planned
            .stdout
            .contains("~ re-synchronise pg-replica-1 in postgresql.default"),
        "{}",
        planned.stdout
    );
    assert!(
        planned
            .stdout
            .contains("reason: observed: replication on pg-replica-1 is broken"),
        "{}",
        planned.stdout
    );

    let repaired = dbgroups_in(dir.path(), &["apply", "--auto-approve"]);
    assert_eq!(repaired.code, 0, "{}\n{}", repaired.stdout, repaired.stderr);
    runtime.block_on(async {
        let master = pg(port(&recorded, "pg-main"), &app_password).await;
        master
            .batch_execute(
                "CREATE TABLE orders (id int PRIMARY KEY); INSERT INTO orders VALUES (1), (2);",
            )
            .await
            .expect("writes");
        let slave = pg(port(&recorded, "pg-replica-1"), &app_password).await;
        assert_eq!(
            wait_for_rows(&slave, 2).await,
            2,
            "the repaired slave follows again"
        );
    });
    let replan = dbgroups_in(dir.path(), &["plan", "--detailed-exitcode"]);
    assert_eq!(replan.code, 0, "healthy again:\n{}", replan.stdout);
}

#[test]
fn replication_between_two_applications_sharing_one_state_directory() {
    let dir = tempfile::tempdir().expect("temp dir");
    let _servers = (
        Servers {
            state_dir: dir.path().join(".dbgroups"),
        },
        AnalyticsServers {
            state_dir: dir.path().join(".dbgroups"),
        },
    );
    std::fs::write(
        dir.path().join("shop.yml"),
        "application: shop\npostgresql:\n  configuration: { version: \"15\" }\n  servers:\n    - server: { unique_name: shop-pg }\n",
    )
    .expect("write");
    std::fs::write(
        dir.path().join("analytics.yml"),
        "application: analytics\npostgresql:\n  configuration: { version: \"15\" }\n  replicate_from: { application: shop, group: default }\n  servers:\n    - server: { unique_name: analytics-pg }\n",
    )
    .expect("write");
    let shop = dbgroups_in(
        dir.path(),
        &[
            "apply",
            "-f",
            "shop.yml",
            "--auto-approve",
            "--refresh=false",
        ],
    );
    assert_eq!(shop.code, 0, "{}", shop.stderr);
    let shop_state = state(dir.path());
    let runtime = crate::common::runtime();
    let shop_password = password(&shop_state, "postgresql.default");
    runtime.block_on(async {
        let master = pg(port(&shop_state, "shop-pg"), &shop_password).await;
        master.batch_execute("CREATE TABLE orders (id int PRIMARY KEY); INSERT INTO orders SELECT generate_series(1, 50);").await.expect("writes");
    });

    let analytics = dbgroups_in(
        dir.path(),
        &[
            "apply",
            "-f",
            "analytics.yml",
            "--auto-approve",
            "--refresh=false",
        ],
    );
    assert_eq!(
        analytics.code, 0,
        "{}\n{}",
        analytics.stdout, analytics.stderr
    );
    assert!(
        analytics
            .stdout
            .contains("replicating from shop/postgresql.default"),
        "{}",
        analytics.stdout
    );
    let analytics_state = DirectoryStore::new(dir.path().join(".dbgroups"))
        .load("analytics")
        .expect("loads")
        .expect("recorded");
    runtime.block_on(async {
        // A physical copy carries shop's roles: analytics' credentials are shop's.
        let replica = pg(
            port(&analytics_state, "analytics-pg"),
            &password(&analytics_state, "postgresql.default"),
        )
        .await;
        assert_eq!(
            wait_for_rows(&replica, 50).await,
            50,
            "shop's data arrived in analytics"
        );
        let master = pg(port(&shop_state, "shop-pg"), &shop_password).await;
        master
            .batch_execute("INSERT INTO orders VALUES (51);")
            .await
            .expect("writes");
        assert_eq!(
            wait_for_rows(&replica, 51).await,
            51,
            "writes flow across applications"
        );
    });
    let replan = dbgroups_in(
        dir.path(),
        &["plan", "-f", "analytics.yml", "--detailed-exitcode"],
    );
    assert_eq!(replan.code, 0, "converged:\n{}", replan.stdout);
}

#[test]
fn an_import_into_a_new_group_copies_the_data_and_leaves_no_replication() {
    let (dir, _servers) = quickstart();
    let applied = dbgroups_in(dir.path(), &["apply", "--auto-approve", "--refresh=false"]);
    assert_eq!(applied.code, 0, "{}", applied.stderr);
    let first = state(dir.path());
    let default_password = password(&first, "postgresql.default");
    let runtime = crate::common::runtime();
    runtime.block_on(async {
        let master = pg(port(&first, "pg-main"), &default_password).await;
        master
            .batch_execute("CREATE TABLE orders (id int PRIMARY KEY, note text); INSERT INTO orders SELECT g, 'n' || g FROM generate_series(1, 250) g;")
            .await
            .expect("writes");
    });
    let manifest = std::fs::read_to_string(dir.path().join("manifest.yml")).expect("read").replace(
        "redis:",
        "    archive:\n      configuration: { version: \"15\" }\n      import_from: default\n      servers:\n        - server: { unique_name: pg-archive }\nredis:",
    );
    set_manifest(dir.path(), &manifest);
    let imported = dbgroups_in(
        dir.path(),
        &[
            "apply",
            "--auto-approve",
            "--refresh=false",
            "--add-group",
            "postgresql.archive",
        ],
    );
    assert_eq!(imported.code, 0, "{}\n{}", imported.stdout, imported.stderr);
    assert!(
        imported.stdout.contains("dump:pg-main"),
        "an import is a logical dump:\n{}",
        imported.stdout
    );
    let after = state(dir.path());
    runtime.block_on(async {
        let archive = pg(
            port(&after, "pg-archive"),
            &password(&after, "postgresql.archive"),
        )
        .await;
        assert_eq!(
            wait_for_rows(&archive, 250).await,
            250,
            "the data was copied"
        );
        let recovering: bool = archive
            .query_one("SELECT pg_is_in_recovery()", &[])
            .await
            .expect("reads")
            .get(0);
        assert!(!recovering, "the archive is a master, not a replica");
        archive
            .batch_execute("INSERT INTO orders VALUES (1000, 'own')")
            .await
            .expect("writable, owned by its own role");
        let master = pg(port(&after, "pg-main"), &default_password).await;
        master
            .batch_execute("INSERT INTO orders VALUES (251, 'later')")
            .await
            .expect("writes");
        crate::common::eventually(
            "the master streams nothing to the imported pg-archive",
            async || crate::common::pg_streams_to(&master, "pg-archive").await,
            |streams| *streams == 0,
        )
        .await;
        let later: i64 = archive
            .query_one("SELECT count(*) FROM orders WHERE id = 251", &[])
            .await
            .expect("reads")
            .get(0);
        assert_eq!(later, 0, "no replication was left behind");
    });
    let group = after
        .group(dbgroups_manifest::DbType::Postgresql, "archive")
        .expect("recorded");
    assert!(group.replicate_from.is_none());
    assert_eq!(
        group.imported_from.as_ref().map(|s| s.group.as_str()),
        Some("default")
    );
    let replan = dbgroups_in(dir.path(), &["plan", "--detailed-exitcode"]);
    assert_eq!(replan.code, 0, "converged:\n{}", replan.stdout);
}

#[test]
fn removing_a_slave_stops_it_deletes_its_data_and_drops_its_slot_on_the_master() {
    let (dir, _servers) = quickstart();
    let applied = dbgroups_in(dir.path(), &["apply", "--auto-approve", "--refresh=false"]);
    assert_eq!(applied.code, 0, "{}", applied.stderr);
    let recorded = state(dir.path());
    let admin = recorded.credentials["postgresql.default"]
        .admin_password
        .as_ref()
        .expect("admin")
        .expose()
        .to_string();
    let main_port = port(&recorded, "pg-main");
    let slots = |runtime: &tokio::runtime::Runtime| -> i64 {
        runtime.block_on(async {
            let client = super::pg_superuser(main_port, &admin).await;
            client
                .query_one("SELECT count(*) FROM pg_replication_slots", &[])
                .await
                .expect("reads")
                .get(0)
        })
    };
    let runtime = crate::common::runtime();
    assert_eq!(slots(&runtime), 1, "the slave streams through a slot");

    let manifest = std::fs::read_to_string(dir.path().join("manifest.yml"))
        .expect("read")
        .replace(
            "        - server: { unique_name: pg-replica-1 } # the rest = slaves in the group\n",
            "",
        );
    set_manifest(dir.path(), &manifest);
    let removed = dbgroups_in(
        dir.path(),
        &[
            "apply",
            "--auto-approve",
            "--refresh=false",
            "--remove-server",
            "pg-replica-1",
        ],
    );
    assert_eq!(removed.code, 0, "{}\n{}", removed.stdout, removed.stderr);
    assert!(
        !dir.path().join(".dbgroups/servers/pg-replica-1").exists(),
        "its data directory is deleted"
    );
    assert_eq!(
        slots(&runtime),
        0,
        "no slot is left to hold WAL on the master forever"
    );
    let env = std::fs::read_to_string(dir.path().join(".dbgroups/env/shop.env")).expect("env");
    assert!(
        env.contains("POSTGRESQL_SLAVE_ADDRESSES=\n")
            || env.contains("POSTGRESQL_SLAVE_ADDRESSES=\"\"\n"),
        "{env}"
    );
    let replan = dbgroups_in(dir.path(), &["plan", "--detailed-exitcode"]);
    assert_eq!(replan.code, 0, "converged:\n{}", replan.stdout);
}

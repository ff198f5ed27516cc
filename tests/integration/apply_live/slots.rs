//! Slot hygiene: every path that ends a PostgreSQL replica (removing a
//! slave, detaching a group, removing a replicating group, destroying an
//! application that replicates from another) drops its replication slot on
//! the source. A slot nobody reads keeps every WAL segment from then on.

use super::*;

/// The slots dbgroups made on a server, with whether each is active.
async fn dbgroups_slots(port: u16, admin: &str) -> Vec<(String, bool)> {
    pg_superuser(port, admin)
        .await
        .query(
            "SELECT slot_name::text, active FROM pg_replication_slots WHERE slot_name LIKE 'dbgroups%' ORDER BY 1",
            &[],
        )
        .await
        .expect("reads")
        .iter()
        .map(|row| (row.get(0), row.get(1)))
        .collect()
}

/// Asserts that the source keeps no slot of `gone` and no inactive slot
/// of dbgroups at all.
fn assert_slots(
    runtime: &tokio::runtime::Runtime,
    port: u16,
    admin: &str,
    gone: &str,
    after: &str,
) {
    let slots = runtime.block_on(dbgroups_slots(port, admin));
    assert!(
        slots.iter().all(|(name, active)| name != gone && *active),
        "after {after}, the source keeps {slots:?}"
    );
}

#[test]
fn every_path_that_ends_a_postgresql_replica_drops_its_slot() {
    let (dir, _servers) = quickstart();
    let _analytics = AnalyticsServers {
        state_dir: dir.path().join(".dbgroups"),
    };
    let grown = scaled_and_replicating(TWO_GROUPS, "pg-main", "pg-replica-1");
    set_manifest(dir.path(), &grown);
    apply_ok(dir.path(), &[]);
    let recorded = state(dir.path());
    let admin = recorded.credentials["postgresql.default"]
        .admin_password
        .as_ref()
        .expect("admin")
        .expose()
        .to_string();
    let source = port(&recorded, "pg-main");
    let runtime = runtime();
    let slots = runtime.block_on(dbgroups_slots(source, &admin));
    assert_eq!(
        slots
            .iter()
            .map(|(name, _)| name.as_str())
            .collect::<Vec<_>>(),
        ["dbgroups_pg_replica_1", "dbgroups_pg_report"],
        "a slot per replica to begin with"
    );

    let without_slave = grown.replace("        - server: { unique_name: pg-replica-1 }\n", "");
    set_manifest(dir.path(), &without_slave);
    apply_ok(dir.path(), &["--remove-server", "pg-replica-1"]);
    assert_slots(
        &runtime,
        source,
        &admin,
        "dbgroups_pg_replica_1",
        "--remove-server",
    );

    let detached = without_slave.replace("      replicate_from: default\n", "");
    set_manifest(dir.path(), &detached);
    apply_ok(dir.path(), &[]);
    assert_slots(&runtime, source, &admin, "dbgroups_pg_report", "a detach");

    // Replicating again, then the replicating group is removed.
    set_manifest(dir.path(), &without_slave);
    apply_ok(dir.path(), &[]);
    assert_eq!(
        runtime.block_on(dbgroups_slots(source, &admin)),
        [("dbgroups_pg_report".to_string(), true)]
    );
    let without_reporting = without_slave
        .split("    reporting:\n")
        .next()
        .expect("default first")
        .to_string();
    set_manifest(dir.path(), &without_reporting);
    apply_ok(dir.path(), &["--remove-group", "postgresql.reporting"]);
    assert_slots(
        &runtime,
        source,
        &admin,
        "dbgroups_pg_report",
        "--remove-group",
    );

    // Another application follows shop's group, and is destroyed.
    std::fs::write(
        dir.path().join("analytics.yml"),
        "application: analytics\npostgresql:\n  configuration: { version: \"15\" }\n  replicate_from: { application: shop, group: default }\n  servers:\n    - server: { unique_name: analytics-pg }\n",
    )
    .expect("write");
    apply_ok(dir.path(), &["-f", "analytics.yml"]);
    assert_eq!(
        runtime.block_on(dbgroups_slots(source, &admin)),
        [("dbgroups_analytics_pg".to_string(), true)]
    );
    let destroyed = dbgroups_in(
        dir.path(),
        &["destroy", "--app", "analytics", "--auto-approve"],
    );
    assert_eq!(
        destroyed.code, 0,
        "{}\n{}",
        destroyed.stdout, destroyed.stderr
    );
    assert_slots(&runtime, source, &admin, "dbgroups_analytics_pg", "destroy");
    assert!(runtime.block_on(dbgroups_slots(source, &admin)).is_empty());
}

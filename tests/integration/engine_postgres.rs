//! The PostgreSQL engine on real servers started by the test.

use dbgroups_engines::{LocalHost, PostgresServer, free_port, generate_password};

use crate::common::runtime;

/// Stops the server when the test ends, pass or fail.
struct Running(PostgresServer);

impl Drop for Running {
    fn drop(&mut self) {
        self.0.stop_now();
    }
}

#[test]
fn provision_is_replication_ready_runs_unprivileged_and_is_idempotent() {
    let dir = tempfile::tempdir().expect("temp dir");
    let state_dir = dir.path().join(".dbgroups");
    let provider = LocalHost::prepare(&state_dir)
        .expect("provider")
        .0
        .into_ref();
    let server = crate::common::block_on(PostgresServer::new(
        &provider,
        "pg-main",
        "15",
        free_port().expect("port"),
    ))
    .expect("postgresql 15 is installed");
    let (superuser, app, replication) = (
        generate_password(),
        generate_password(),
        generate_password(),
    );
    let _scanned =
        crate::transcripts::ScannedDeployment::new(dir.path(), &[&superuser, &app, &replication]);
    let _guard = Running(server.clone());

    runtime().block_on(async {
        server.ensure_initialised(&superuser).await.expect("initdb");
        server.ensure_running().await.expect("start");
        server
            .ensure_accounts(&superuser, "shop", &app, "shop", &replication)
            .await
            .expect("accounts");

        let client = server
            .connect("shop", &app, "shop")
            .await
            .expect("the application can log in");
        client
            .batch_execute(
                "CREATE TABLE orders (id int PRIMARY KEY); INSERT INTO orders VALUES (1), (2);",
            )
            .await
            .expect("writes");
        let count: i64 = client
            .query_one("SELECT count(*) FROM orders", &[])
            .await
            .expect("reads")
            .get(0);
        assert_eq!(count, 2);
        let wal_level: String = client
            .query_one("SHOW wal_level", &[])
            .await
            .expect("show")
            .get(0);
        assert_eq!(wal_level, "replica", "replication-ready from birth");
        let senders: String = client
            .query_one("SHOW max_wal_senders", &[])
            .await
            .expect("show")
            .get(0);
        assert_eq!(senders, "10");
        let wrong = server.connect("shop", "not-the-password", "shop").await;
        assert!(wrong.is_err(), "password authentication is enforced");

        // Everything again: nothing is re-initialised and the data stays.
        let identifier = system_identifier(&server, &superuser).await;
        let started = start_time(&server, &superuser).await;
        server.ensure_running().await.expect("running already");
        assert_eq!(
            start_time(&server, &superuser).await,
            started,
            "ensuring a running server runs does not restart it"
        );
        server.ensure_stopped().await.expect("stop");
        assert!(!server.is_running().await);
        server
            .ensure_initialised(&superuser)
            .await
            .expect("initdb again is a no-op");
        server.ensure_running().await.expect("start again");
        server
            .ensure_accounts(&superuser, "shop", &app, "shop", &replication)
            .await
            .expect("accounts again");
        assert_eq!(
            system_identifier(&server, &superuser).await,
            identifier,
            "initdb did not run again (a new cluster has a new system identifier)"
        );
        let client = server.connect("shop", &app, "shop").await.expect("logs in");
        let count: i64 = client
            .query_one("SELECT count(*) FROM orders", &[])
            .await
            .expect("reads")
            .get(0);
        assert_eq!(
            count, 2,
            "the data survived a restart and a second provision"
        );
    });

    if let Some(uid) = provider.service_uid() {
        // Running as root: the server runs as the unprivileged user.
        assert_eq!(
            crate::common::block_on(provider.owner_of(&server.data_dir())),
            Some(uid)
        );
    }
    let log = std::fs::read_to_string(server.dir().join("postgresql.log")).unwrap_or_default();
    for secret in [&superuser, &app, &replication] {
        assert!(
            !log.contains(secret.as_str()),
            "a password reached the server log"
        );
    }
}

/// The cluster's identity, which initdb chooses anew.
async fn system_identifier(server: &PostgresServer, superuser: &str) -> i64 {
    let client = server
        .connect("postgres", superuser, "postgres")
        .await
        .expect("connects");
    client
        .query_one("SELECT system_identifier FROM pg_control_system()", &[])
        .await
        .expect("system identifier")
        .get(0)
}

async fn start_time(server: &PostgresServer, superuser: &str) -> std::time::SystemTime {
    let client = server
        .connect("postgres", superuser, "postgres")
        .await
        .expect("connects");
    client
        .query_one("SELECT pg_postmaster_start_time()", &[])
        .await
        .expect("start time")
        .get(0)
}

#[test]
fn backup_restore_enslave_then_promote_on_real_servers() {
    use dbgroups_engines::postgres::{ReplicationStatus, slot_name};

    let dir = tempfile::tempdir().expect("temp dir");
    let provider = LocalHost::prepare(&dir.path().join(".dbgroups"))
        .expect("provider")
        .0
        .into_ref();
    let master = crate::common::block_on(PostgresServer::new(
        &provider,
        "pg-main",
        "15",
        free_port().expect("port"),
    ))
    .expect("installed");
    let slave = crate::common::block_on(PostgresServer::new(
        &provider,
        "pg-replica-1",
        "15",
        free_port().expect("port"),
    ))
    .expect("installed");
    let (superuser, app, replication) = (
        generate_password(),
        generate_password(),
        generate_password(),
    );
    let _scanned =
        crate::transcripts::ScannedDeployment::new(dir.path(), &[&superuser, &app, &replication]);
    let (_m, _s) = (Running(master.clone()), Running(slave.clone()));

    runtime().block_on(async {
        master.ensure_initialised(&superuser).await.expect("initdb");
        master.ensure_running().await.expect("start");
        master.ensure_accounts(&superuser, "shop", &app, "shop", &replication).await.expect("accounts");
        let on_master = master.connect("shop", &app, "shop").await.expect("connects");
        on_master
            .batch_execute("CREATE TABLE orders (id int PRIMARY KEY); INSERT INTO orders SELECT generate_series(1, 1000);")
            .await
            .expect("existing rows");
        let started = start_time(&master, &superuser).await;

        let staging = provider.staging_dir("backup-pg-main");
        master.backup_to(&provider, &staging, &replication).await.expect("pg_basebackup");
        let label = || std::fs::read_to_string(staging.join("backup_label")).expect("the backup's label");
        let first_label = label();
        master.backup_to(&provider, &staging, &replication).await.expect("a finished backup is not taken again");
        assert_eq!(label(), first_label, "no second backup was taken (its label names its start time and WAL position)");
        slave.restore_from(&staging, false).await.expect("restore");
        slave.enslave_to(&master, &superuser, &replication).await.expect("enslave");

        on_master.batch_execute("INSERT INTO orders SELECT generate_series(1001, 1500);").await.expect("later rows");
        let on_slave = slave.connect("shop", &app, "shop").await.expect("the slave accepts the application's login");
        let mut count = 0i64;
        for _ in 0..600 { // a generous budget: a loaded CI machine is slow
            count = on_slave.query_one("SELECT count(*) FROM orders", &[]).await.expect("reads").get(0);
            if count == 1500 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        assert_eq!(count, 1500, "existing and later rows reached the slave");
        assert!(on_slave.batch_execute("INSERT INTO orders VALUES (0)").await.is_err(), "a slave is read-only");
        assert_eq!(start_time(&master, &superuser).await, started, "the master was never restarted");
        assert_eq!(
            master.replication_status(&superuser).await.expect("status"),
            ReplicationStatus::Master { replicas: vec![slot_name("pg-replica-1")] }
        );
        match slave.replication_status(&superuser).await.expect("status") {
            ReplicationStatus::Replica { streaming, lag_seconds, .. } => {
                assert!(streaming);
                assert!(lag_seconds.is_some_and(|lag| lag < 60.0), "{lag_seconds:?}");
            }
            other => panic!("the slave reports {other:?}"),
        }

        slave.promote(&superuser, Some((&master, &superuser))).await.expect("promote");
        let on_slave = slave.connect("shop", &app, "shop").await.expect("connects");
        on_slave.batch_execute("INSERT INTO orders VALUES (0)").await.expect("the promoted server is writable");
        let kept: i64 = on_slave.query_one("SELECT count(*) FROM orders", &[]).await.expect("reads").get(0);
        assert_eq!(kept, 1501, "it kept its data");
        crate::common::eventually(
            "the master no longer streams to pg-replica-1",
            async || crate::common::pg_streams_to(&on_master, "pg-replica-1").await,
            |streams| *streams == 0,
        )
        .await;
        on_master.batch_execute("INSERT INTO orders VALUES (5000)").await.expect("the master still writes");
        let after: i64 = on_slave.query_one("SELECT count(*) FROM orders WHERE id = 5000", &[]).await.expect("reads").get(0);
        assert_eq!(after, 0, "it no longer follows");
        let admin = master.connect("postgres", &superuser, "postgres").await.expect("connects");
        let slots: i64 = admin.query_one("SELECT count(*) FROM pg_replication_slots", &[]).await.expect("reads").get(0);
        assert_eq!(slots, 0, "the slot was dropped on the old master");
        slave.ensure_stopped().await.expect("stop");
        slave.ensure_running().await.expect("restarts");
        assert!(matches!(slave.replication_status(&superuser).await.expect("status"), ReplicationStatus::Master { .. }), "still a master after a restart");
    });
}

/// A slave's start is done only once it streams again; with its slot
/// dropped on the master it fails with PostgreSQL's reason instead of
/// reporting a start that is no replica.
#[test]
fn a_slaves_start_waits_for_streaming_and_fails_without_its_slot() {
    use dbgroups_engines::postgres::{ReplicationStatus, slot_name};

    let dir = tempfile::tempdir().expect("temp dir");
    let provider = LocalHost::prepare(&dir.path().join(".dbgroups"))
        .expect("provider")
        .0
        .into_ref();
    let master = crate::common::block_on(PostgresServer::new(
        &provider,
        "pg-main",
        "15",
        free_port().expect("port"),
    ))
    .expect("installed");
    let slave = crate::common::block_on(PostgresServer::new(
        &provider,
        "pg-replica-1",
        "15",
        free_port().expect("port"),
    ))
    .expect("installed");
    let (_m, _s) = (Running(master.clone()), Running(slave.clone()));
    let (superuser, app, replication) = (
        generate_password(),
        generate_password(),
        generate_password(),
    );
    runtime().block_on(async {
        master.ensure_initialised(&superuser).await.expect("initdb");
        master.ensure_running().await.expect("start");
        master
            .ensure_accounts(&superuser, "shop", &app, "shop", &replication)
            .await
            .expect("accounts");
        let staging = provider.staging_dir("backup-pg-main");
        master
            .backup_to(&provider, &staging, &replication)
            .await
            .expect("pg_basebackup");
        slave.restore_from(&staging, true).await.expect("restore");
        slave
            .enslave_to(&master, &superuser, &replication)
            .await
            .expect("enslave");

        slave.ensure_stopped().await.expect("stops");
        slave
            .ensure_running_and_streaming(&superuser, Some((&master, &superuser)))
            .await
            .expect("starts");
        assert!(
            matches!(
                slave.replication_status(&superuser).await,
                Ok(ReplicationStatus::Replica {
                    streaming: true,
                    ..
                })
            ),
            "the start returned once the slave streams"
        );

        slave.ensure_stopped().await.expect("stops");
        master
            .drop_slot_of("pg-replica-1", &superuser)
            .await
            .expect("drops the slot");
        let failed = slave
            .ensure_running_and_streaming(&superuser, Some((&master, &superuser)))
            .await
            .expect_err("a slave without its slot does not stream");
        let reason = failed.to_string();
        assert!(
            reason.contains(&slot_name("pg-replica-1")) && reason.contains("does not exist"),
            "the reason is PostgreSQL's: {reason}"
        );
    });
}

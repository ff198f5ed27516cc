//! The MariaDB engine on real servers started by the test (issue 5's start).

use dbgroups_engines::{LocalHost, MysqlServer, free_port, generate_password};
use dbgroups_manifest::Engine;
use mysql_async::prelude::Queryable;

/// Shuts the server down when the test ends, pass or fail.
struct Running(MysqlServer, String);

fn mariadb(provider: &dbgroups_engines::HostRef, name: &str, port: u16) -> MysqlServer {
    crate::common::block_on(MysqlServer::new(
        provider,
        Engine::Mariadb,
        "10.11",
        name,
        port,
    ))
    .expect("mariadb-server is installed")
}

impl Drop for Running {
    fn drop(&mut self) {
        let (server, password) = (self.0.clone(), self.1.clone());
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            runtime.block_on(async { server.ensure_stopped(&password).await })
        })
        .join();
    }
}

#[test]
fn provision_is_replication_ready_without_anonymous_accounts_and_is_idempotent() {
    let dir = tempfile::tempdir().expect("temp dir");
    let provider = LocalHost::prepare(&dir.path().join(".dbgroups"))
        .expect("provider")
        .0
        .into_ref();
    let port = free_port().expect("port");
    let server = mariadb(&provider, "db-main", port);
    let (admin, app, replication) = (
        generate_password(),
        generate_password(),
        generate_password(),
    );
    let _scanned =
        crate::transcripts::ScannedDeployment::new(dir.path(), &[&admin, &app, &replication]);
    let _guard = Running(server.clone(), admin.clone());
    let runtime = crate::common::runtime();

    runtime.block_on(async {
        server
            .ensure_provisioned(&admin, "shop", &app, "shop", &replication)
            .await
            .expect("provision");
        let mut conn = server
            .connect("shop", &app, "shop")
            .await
            .expect("the application logs in over TCP");
        conn.query_drop("CREATE TABLE orders (id INT PRIMARY KEY)")
            .await
            .expect("creates");
        conn.query_drop("INSERT INTO orders VALUES (1), (2), (3)")
            .await
            .expect("writes");
        let count: Option<i64> = conn
            .query_first("SELECT COUNT(*) FROM orders")
            .await
            .expect("reads");
        assert_eq!(count, Some(3));
        let settings: Option<(i64, i64, i64, String)> = conn
            .query_first("SELECT @@log_bin, @@gtid_strict_mode, @@server_id, @@binlog_format")
            .await
            .expect("reads settings");
        assert_eq!(
            settings,
            Some((
                1,
                1,
                i64::from(dbgroups_engines::mysql::server_id_for("db-main")),
                "ROW".to_string()
            )),
            "binlog and GTID on from birth, a unique server_id"
        );
        assert!(
            server.connect("shop", "wrong", "shop").await.is_err(),
            "passwords are enforced"
        );

        let mut replicator = server
            .connect("replicator", &replication, "information_schema")
            .await
            .expect("the replication account logs in");
        let grants: Vec<String> = replicator.query("SHOW GRANTS").await.expect("grants");
        assert!(
            grants.iter().any(|g| g.contains("REPLICATION SLAVE")),
            "{grants:?}"
        );

        let pid =
            || std::fs::read_to_string(server.dir().join("run/mysqld.pid")).expect("pid file");
        let running_pid = pid();
        server
            .ensure_provisioned(&admin, "shop", &app, "shop", &replication)
            .await
            .expect("provisioning a running server again is a no-op");
        assert_eq!(
            pid(),
            running_pid,
            "provisioning again did not restart the server"
        );
        server.ensure_stopped(&admin).await.expect("stops");
        assert!(!server.is_running(&admin).await);
        server
            .ensure_provisioned(&admin, "shop", &app, "shop", &replication)
            .await
            .expect("provisioning again is a no-op");
        let mut conn = server.connect("shop", &app, "shop").await.expect("logs in");
        let count: Option<i64> = conn
            .query_first("SELECT COUNT(*) FROM orders")
            .await
            .expect("reads");
        assert_eq!(
            count,
            Some(3),
            "the data survived a restart and a second provision"
        );
        let anonymous = server
            .anonymous_accounts(&admin)
            .await
            .expect("reads as root");
        assert_eq!(anonymous, 0, "no anonymous account");
        assert!(
            server.connect("", "", "information_schema").await.is_err(),
            "a nameless login is refused"
        );
    });
    if let Some(uid) = provider.service_uid() {
        use std::os::unix::fs::MetadataExt;
        let owner = std::fs::metadata(server.data_dir())
            .expect("data dir")
            .uid();
        assert_eq!(
            owner, uid,
            "running as root, the server runs as the unprivileged user"
        );
    }
}

#[test]
fn dump_restore_gtid_replication_and_detach_on_real_servers() {
    let dir = tempfile::tempdir().expect("temp dir");
    let provider = LocalHost::prepare(&dir.path().join(".dbgroups"))
        .expect("provider")
        .0
        .into_ref();
    let (admin, app, replication) = (
        generate_password(),
        generate_password(),
        generate_password(),
    );
    let _scanned =
        crate::transcripts::ScannedDeployment::new(dir.path(), &[&admin, &app, &replication]);
    let master = mariadb(&provider, "db-main", free_port().expect("port"));
    let slave = mariadb(&provider, "db-replica-1", free_port().expect("port"));
    let _guards = (
        Running(master.clone(), admin.clone()),
        Running(slave.clone(), admin.clone()),
    );
    let runtime = crate::common::runtime();

    runtime.block_on(async {
        master.ensure_provisioned(&admin, "shop", &app, "shop", &replication).await.expect("master");
        let mut on_master = master.connect("shop", &app, "shop").await.expect("connects");
        on_master.query_drop("CREATE TABLE orders (id INT PRIMARY KEY)").await.expect("creates");
        on_master
            .query_drop("INSERT INTO orders SELECT seq FROM seq_1_to_1000")
            .await
            .expect("existing rows");
        let started: Option<String> = on_master
            .query_first("SELECT VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS WHERE VARIABLE_NAME = 'UPTIME'")
            .await
            .expect("uptime");

        let staging = provider.staging_dir("dump-db-main");
        master.dump_to(&staging, &admin, "shop").await.expect("mariadb-dump");
        let position = slave.dump_gtid_position(&staging).await.expect("the dump records its GTID position");
        slave.ensure_provisioned(&admin, "shop", &app, "shop", &replication).await.expect("slave");
        slave.restore_dump(&staging, &admin).await.expect("restore");
        slave.enslave_to(&master, &admin, &admin, &replication, position.as_deref()).await.expect("enslave");

        on_master.query_drop("INSERT INTO orders SELECT seq FROM seq_1001_to_1500").await.expect("later rows");
        let mut on_slave = slave.connect("shop", &app, "shop").await.expect("connects");
        let mut count = Some(0i64);
        for _ in 0..600 { // a generous budget: a loaded CI machine is slow
            count = on_slave.query_first("SELECT COUNT(*) FROM orders").await.expect("reads");
            if count == Some(1500) {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        assert_eq!(count, Some(1500), "existing and later rows reached the slave");
        assert!(on_slave.query_drop("INSERT INTO orders VALUES (0)").await.is_err(), "the slave is read-only");
        let status = slave.replication(&admin).await.expect("SHOW SLAVE STATUS").expect("follows");
        assert!(status.io_running && status.sql_running, "{status:?}");
        assert_eq!(status.last_error, None);
        let uptime_later: Option<String> = on_master
            .query_first("SELECT VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS WHERE VARIABLE_NAME = 'UPTIME'")
            .await
            .expect("uptime");
        let (before, after): (u64, u64) = (
            started.and_then(|s| s.parse().ok()).expect("a number"),
            uptime_later.and_then(|s| s.parse().ok()).expect("a number"),
        );
        assert!(after >= before, "the master was not restarted (uptime {before} s then {after} s)");

        slave.detach(&admin).await.expect("detach");
        let _ = crate::common::eventually(
            "the detached server has no replication configured",
            async || slave.replication(&admin).await.map_err(|e| e.to_string()),
            |status| matches!(status, Ok(None)),
        )
        .await;
        let mut on_slave = slave.connect("shop", &app, "shop").await.expect("connects");
        on_slave.query_drop("INSERT INTO orders VALUES (0)").await.expect("the detached server is writable");
        on_master.query_drop("INSERT INTO orders VALUES (2000)").await.expect("the master still writes");
        let followed: Option<i64> = on_slave.query_first("SELECT COUNT(*) FROM orders WHERE id = 2000").await.expect("reads");
        assert_eq!(followed, Some(0), "it no longer follows");
        let kept: Option<i64> = on_slave.query_first("SELECT COUNT(*) FROM orders").await.expect("reads");
        assert_eq!(kept, Some(1501), "it kept its data");
        assert_eq!(slave.replication(&admin).await.expect("status"), None, "no replication configured");
    });
}

/// Root over the server's socket, for reading its global state.
async fn root(server: &MysqlServer, admin: &str) -> mysql_async::Conn {
    mysql_async::Conn::new(
        mysql_async::OptsBuilder::default()
            .socket(Some(
                server.dir().join("run/mysqld.sock").display().to_string(),
            ))
            .prefer_socket(true)
            .user(Some("root"))
            .pass(Some(admin.to_string())),
    )
    .await
    .expect("root over the socket")
}

/// A re-sync's restore onto a replica that still follows its master: the
/// old replication must be stopped and reset first (threads left running
/// apply and binlog the master's events during the load, and the slave
/// then breaks on out-of-order GTIDs or lacks rows), read-only off during
/// it; and the enslave returns only once the replica has caught up.
#[test]
fn a_restore_stops_replication_first_and_enslave_returns_caught_up() {
    let dir = tempfile::tempdir().expect("temp dir");
    let provider = LocalHost::prepare(&dir.path().join(".dbgroups"))
        .expect("provider")
        .0
        .into_ref();
    let (admin, app, replication) = (
        generate_password(),
        generate_password(),
        generate_password(),
    );
    let master = mariadb(&provider, "db-main", free_port().expect("port"));
    let slave = mariadb(&provider, "db-replica-1", free_port().expect("port"));
    let _guards = (
        Running(master.clone(), admin.clone()),
        Running(slave.clone(), admin.clone()),
    );
    crate::common::runtime().block_on(async {
        master
            .ensure_provisioned(&admin, "shop", &app, "shop", &replication)
            .await
            .expect("master");
        slave
            .ensure_provisioned(&admin, "shop", &app, "shop", &replication)
            .await
            .expect("slave");
        let mut on_master = master
            .connect("shop", &app, "shop")
            .await
            .expect("connects");
        on_master
            .query_drop("CREATE TABLE orders (id INT AUTO_INCREMENT PRIMARY KEY, v INT)")
            .await
            .expect("creates");
        let first = provider.staging_dir("dump-1");
        master.dump_to(&first, &admin, "shop").await.expect("dump");
        slave.restore_dump(&first, &admin).await.expect("restore");
        let position = slave.dump_gtid_position(&first).await.expect("position");
        slave
            .enslave_to(&master, &admin, &admin, &replication, position.as_deref())
            .await
            .expect("enslave");

        // The re-sync: a new dump, and writes the old replication applies.
        let second = provider.staging_dir("dump-2");
        master.dump_to(&second, &admin, "shop").await.expect("dump");
        for n in 0..500 {
            on_master
                .exec_drop("INSERT INTO orders (v) VALUES (?)", (n,))
                .await
                .expect("writes");
        }
        slave.restore_dump(&second, &admin).await.expect("restore");
        assert_eq!(
            slave.replication(&admin).await.expect("status"),
            None,
            "the old replication was stopped and reset before the load"
        );
        let mut on_slave = root(&slave, &admin).await;
        let (read_only, binlogged): (i64, String) = on_slave
            .query_first("SELECT @@GLOBAL.read_only, @@GLOBAL.gtid_binlog_pos")
            .await
            .expect("reads")
            .expect("a row");
        assert_eq!(read_only, 0, "read-only is off for the restore");
        assert_eq!(
            binlogged, "",
            "nothing was binlogged on the replica during the load"
        );

        // Writes past the dump that the replica must apply before its
        // enslave is done.
        for n in 0..2000 {
            on_master
                .exec_drop("INSERT INTO orders (v) VALUES (?)", (n,))
                .await
                .expect("writes");
        }
        let on_master_count: Option<i64> = on_master
            .query_first("SELECT COUNT(*) FROM orders")
            .await
            .expect("reads");
        let position = slave.dump_gtid_position(&second).await.expect("position");
        slave
            .enslave_to(&master, &admin, &admin, &replication, position.as_deref())
            .await
            .expect("enslave");
        let on_slave_count: Option<i64> = on_slave
            .query_first("SELECT COUNT(*) FROM shop.orders")
            .await
            .expect("reads");
        assert_eq!(
            on_slave_count, on_master_count,
            "the enslave returned once the replica had caught up"
        );
        let status = slave
            .replication(&admin)
            .await
            .expect("status")
            .expect("follows");
        assert!(
            status.io_running && status.sql_running && status.last_error.is_none(),
            "{status:?}"
        );
    });
}

/// Issue 21, item 2: `SET GLOBAL read_only` lasts until a restart, so a
/// replica's config must make it read-only from its start. A restarted
/// replica refuses the application's writes (it would otherwise diverge
/// while replication resumes), still replicates, and a provision on it
/// (the accounts set by root) keeps it read-only; once detached, a restart
/// leaves it writable.
#[test]
fn a_restarted_replica_stays_read_only_and_a_detached_one_stays_writable() {
    let dir = tempfile::tempdir().expect("temp dir");
    let provider = LocalHost::prepare(&dir.path().join(".dbgroups"))
        .expect("provider")
        .0
        .into_ref();
    let (admin, app, replication) = (
        generate_password(),
        generate_password(),
        generate_password(),
    );
    let master = mariadb(&provider, "db-main", free_port().expect("port"));
    let slave = mariadb(&provider, "db-replica-1", free_port().expect("port"));
    let _guards = (
        Running(master.clone(), admin.clone()),
        Running(slave.clone(), admin.clone()),
    );
    crate::common::runtime().block_on(async {
        for server in [&master, &slave] {
            server
                .ensure_provisioned(&admin, "shop", &app, "shop", &replication)
                .await
                .expect("provisions");
        }
        let mut on_master = master
            .connect("shop", &app, "shop")
            .await
            .expect("connects");
        on_master
            .query_drop("CREATE TABLE orders (id INT PRIMARY KEY)")
            .await
            .expect("creates");
        let staging = provider.staging_dir("dump-db-main");
        master
            .dump_to(&staging, &admin, "shop")
            .await
            .expect("dump");
        slave.restore_dump(&staging, &admin).await.expect("restore");
        let position = slave.dump_gtid_position(&staging).await.expect("position");
        slave
            .enslave_to(&master, &admin, &admin, &replication, position.as_deref())
            .await
            .expect("enslave");

        slave.ensure_stopped(&admin).await.expect("stops");
        slave
            .ensure_running_and_replicating(&admin)
            .await
            .expect("starts and replicates again");
        let mut on_slave = slave.connect("shop", &app, "shop").await.expect("connects");
        let refused = on_slave
            .query_drop("INSERT INTO orders VALUES (1)")
            .await
            .expect_err("a restarted replica refuses the application's writes");
        assert!(
            refused.to_string().contains("read-only") || refused.to_string().contains("1290"),
            "{refused}"
        );
        // The apply's provision of an existing replica runs root's account
        // statements on it; it stays read-only.
        slave
            .ensure_provisioned(&admin, "shop", &app, "shop", &replication)
            .await
            .expect("provisions a read-only replica");
        let read_only: Option<i64> = root(&slave, &admin)
            .await
            .query_first("SELECT @@GLOBAL.read_only")
            .await
            .expect("reads");
        assert_eq!(read_only, Some(1), "still read-only after the provision");
        on_master
            .query_drop("INSERT INTO orders VALUES (2)")
            .await
            .expect("the master writes");
        let _ = crate::common::eventually(
            "the restarted replica applies the master's write",
            async || {
                slave
                    .connect("shop", &app, "shop")
                    .await
                    .map_err(|e| e.to_string())?
                    .query_first::<i64, _>("SELECT COUNT(*) FROM orders WHERE id = 2")
                    .await
                    .map_err(|e| e.to_string())
            },
            |count| matches!(count, Ok(Some(1))),
        )
        .await;

        slave.detach(&admin).await.expect("detach");
        slave.ensure_stopped(&admin).await.expect("stops");
        slave.ensure_running(&admin).await.expect("starts");
        let mut on_slave = slave.connect("shop", &app, "shop").await.expect("connects");
        on_slave
            .query_drop("INSERT INTO orders VALUES (3)")
            .await
            .expect("a detached server is writable after a restart");
    });
}

//! `apply --resync` while the application writes to the master, on each
//! engine that runs here: afterwards master and slave hold the same data,
//! and the slave follows on. A MariaDB replica stays read-only across a
//! restart, and a detached one stays writable.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use mysql_async::prelude::Queryable;
use redis::AsyncCommands;

use super::*;

/// Runs `write` (one acknowledged write per call) in a loop until told to
/// stop; returns how many writes were acknowledged.
struct WriteLoop {
    stop: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<u64>,
}

impl WriteLoop {
    fn start<F, Fut>(runtime: &tokio::runtime::Runtime, mut write: F) -> Self
    where
        F: FnMut(u64) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = ()> + Send,
    {
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = Arc::clone(&stop);
        let task = runtime.spawn(async move {
            let mut written = 0;
            while !stopping.load(Ordering::SeqCst) {
                written += 1;
                write(written).await;
            }
            written
        });
        Self { stop, task }
    }

    fn finish(self, runtime: &tokio::runtime::Runtime) -> u64 {
        self.stop.store(true, Ordering::SeqCst);
        runtime.block_on(self.task).expect("the write loop ran")
    }
}

fn admin(state: &AppState, group: &str) -> String {
    state.credentials[group]
        .admin_password
        .as_ref()
        .expect("admin")
        .expose()
        .to_string()
}

const MARIADB_PAIR: &str = "application: shop\nmysql:\n  configuration: { engine: mariadb, version: \"10.11\" }\n  servers:\n    - server: { unique_name: db-main }\n    - server: { unique_name: db-replica-1 }\n";

/// A table's row count and a checksum of its rows.
async fn mysql_digest(conn: &mut mysql_async::Conn) -> (i64, String) {
    let row: Option<(i64, Option<String>)> = conn
        .query_first("SELECT COUNT(*), MD5(GROUP_CONCAT(id, ':', v ORDER BY id)) FROM orders")
        .await
        .expect("reads");
    let (count, digest) = row.expect("a row");
    (count, digest.unwrap_or_default())
}

#[test]
fn a_mariadb_resync_under_writes_leaves_master_and_slave_identical() {
    let (dir, _servers) = quickstart();
    set_manifest(dir.path(), MARIADB_PAIR);
    apply_ok(dir.path(), &[]);
    let recorded = state(dir.path());
    let runtime = runtime();
    runtime.block_on(async {
        let mut master = mysql_conn(&recorded, "mysql.default", "db-main", None).await;
        master
            .query_drop("SET SESSION group_concat_max_len = 1073741824")
            .await
            .expect("sets");
        master
            .query_drop("CREATE TABLE orders (id INT AUTO_INCREMENT PRIMARY KEY, v INT)")
            .await
            .expect("creates");
        master
            .query_drop("INSERT INTO orders (v) SELECT seq FROM seq_1_to_50000")
            .await
            .expect("existing rows");
    });
    let writer = {
        let recorded = recorded.clone();
        let conn = runtime.block_on(mysql_conn(&recorded, "mysql.default", "db-main", None));
        let conn = Arc::new(tokio::sync::Mutex::new(conn));
        WriteLoop::start(&runtime, move |n| {
            let conn = Arc::clone(&conn);
            async move {
                conn.lock()
                    .await
                    .exec_drop("INSERT INTO orders (v) VALUES (?)", (n,))
                    .await
                    .expect("the master takes writes throughout");
            }
        })
    };
    let resynced = apply_ok(dir.path(), &["--resync", "db-replica-1"]);
    let written = writer.finish(&runtime);
    assert!(written > 0, "writes ran during the re-sync");
    assert!(
        resynced.stdout.contains("backup:db-main"),
        "a re-sync within the group on one host is a physical copy:\n{}",
        resynced.stdout
    );
    runtime.block_on(async {
        let mut master = mysql_conn(&recorded, "mysql.default", "db-main", None).await;
        let mut replica = mysql_conn(&recorded, "mysql.default", "db-replica-1", None).await;
        for conn in [&mut master, &mut replica] {
            conn.query_drop("SET SESSION group_concat_max_len = 1073741824")
                .await
                .expect("sets");
        }
        let on_master = mysql_digest(&mut master).await;
        assert_eq!(on_master.0, 50000 + i64::try_from(written).expect("fits"));
        let on_replica = poll(
            async || mysql_digest(&mut replica).await,
            |seen| *seen == on_master,
        )
        .await;
        assert_eq!(
            on_replica, on_master,
            "the slave holds exactly the master's rows"
        );
        let slave = mariadb_server(dir.path(), &recorded, "db-replica-1");
        let status = slave
            .replication(&admin(&recorded, "mysql.default"))
            .await
            .expect("status")
            .expect("follows");
        assert!(
            status.io_running && status.sql_running && status.last_error.is_none(),
            "{status:?}"
        );
    });
    converged(dir.path(), "manifest.yml");
}

fn mariadb_server(dir: &Path, state: &AppState, server: &str) -> dbgroups_engines::MysqlServer {
    crate::common::block_on(dbgroups_engines::MysqlServer::new(
        &LocalHost::inspect(&dir.join(".dbgroups"))
            .expect("provider")
            .into_ref(),
        dbgroups_manifest::Engine::Mariadb,
        "10.11",
        server,
        port(state, server),
    ))
    .expect("installed")
}

/// A restarted replica used to come back writable: `read_only` was set
/// with SET GLOBAL only, and lasted until the restart.
#[test]
fn a_mariadb_replica_stays_read_only_across_a_restart_and_a_detached_one_writable() {
    let (dir, _servers) = quickstart();
    set_manifest(dir.path(), MARIADB_PAIR);
    apply_ok(dir.path(), &[]);
    let recorded = state(dir.path());
    let admin = admin(&recorded, "mysql.default");
    let slave = mariadb_server(dir.path(), &recorded, "db-replica-1");
    let runtime = runtime();
    runtime.block_on(async {
        let mut master = mysql_conn(&recorded, "mysql.default", "db-main", None).await;
        master
            .query_drop("CREATE TABLE orders (id INT PRIMARY KEY)")
            .await
            .expect("creates");
        let mut replica = mysql_conn(&recorded, "mysql.default", "db-replica-1", None).await;
        let replicated = poll(
            async || {
                replica
                    .query_first::<i64, _>("SELECT COUNT(*) FROM orders")
                    .await
                    .ok()
                    .flatten()
            },
            |seen| seen.is_some(),
        )
        .await;
        assert_eq!(replicated, Some(0), "the table reached the replica");
        drop(replica);
        slave.ensure_stopped(&admin).await.expect("stops");
        slave.ensure_running(&admin).await.expect("starts again");
        let mut replica = mysql_conn(&recorded, "mysql.default", "db-replica-1", None).await;
        let refused = replica.query_drop("INSERT INTO orders VALUES (1)").await;
        assert!(
            refused
                .as_ref()
                .is_err_and(|e| e.to_string().contains("read-only")),
            "the restarted replica refuses the application's write: {refused:?}"
        );

        slave.detach(&admin).await.expect("detach");
        slave.ensure_stopped(&admin).await.expect("stops");
        slave.ensure_running(&admin).await.expect("starts again");
        let mut detached = mysql_conn(&recorded, "mysql.default", "db-replica-1", None).await;
        detached
            .query_drop("INSERT INTO orders VALUES (1)")
            .await
            .expect("a detached server stays writable after a restart");
    });
}

const POSTGRESQL_PAIR: &str = "application: shop\npostgresql:\n  configuration: { version: \"15\" }\n  servers:\n    - server: { unique_name: pg-main }\n    - server: { unique_name: pg-replica-1 }\n";

async fn pg_digest(client: &tokio_postgres::Client) -> (i64, String) {
    let row = client
        .query_one(
            "SELECT count(*), coalesce(md5(string_agg(id::text || ':' || v::text, ',' ORDER BY id)), '') FROM orders",
            &[],
        )
        .await
        .expect("reads");
    (row.get(0), row.get(1))
}

#[test]
fn a_postgresql_resync_under_writes_leaves_master_and_slave_identical() {
    let (dir, _servers) = quickstart();
    set_manifest(dir.path(), POSTGRESQL_PAIR);
    apply_ok(dir.path(), &[]);
    let recorded = state(dir.path());
    let app_password = password(&recorded, "postgresql.default");
    let runtime = runtime();
    let master_port = port(&recorded, "pg-main");
    runtime.block_on(async {
        pg(master_port, &app_password)
            .await
            .batch_execute(
                "CREATE TABLE orders (id serial PRIMARY KEY, v bigint); INSERT INTO orders (v) SELECT g FROM generate_series(1, 50000) g;",
            )
            .await
            .expect("existing rows");
    });
    let writer = {
        let client = Arc::new(runtime.block_on(pg(master_port, &app_password)));
        WriteLoop::start(&runtime, move |n| {
            let client = Arc::clone(&client);
            async move {
                let n = i64::try_from(n).expect("fits");
                client
                    .execute("INSERT INTO orders (v) VALUES ($1)", &[&n])
                    .await
                    .expect("the master takes writes throughout");
            }
        })
    };
    apply_ok(dir.path(), &["--resync", "pg-replica-1"]);
    let written = writer.finish(&runtime);
    assert!(written > 0, "writes ran during the re-sync");
    runtime.block_on(async {
        let master = pg(master_port, &app_password).await;
        let replica = pg(port(&recorded, "pg-replica-1"), &app_password).await;
        let on_master = pg_digest(&master).await;
        assert_eq!(on_master.0, 50000 + i64::try_from(written).expect("fits"));
        let on_replica = poll(
            async || pg_digest(&replica).await,
            |seen| *seen == on_master,
        )
        .await;
        assert_eq!(
            on_replica, on_master,
            "the slave holds exactly the master's rows"
        );
    });
    converged(dir.path(), "manifest.yml");
}

/// How many keys, and the sum of the counter values written.
async fn redis_digest(conn: &mut redis::aio::MultiplexedConnection, written: u64) -> (u64, u64) {
    let size: u64 = redis::cmd("DBSIZE")
        .query_async(conn)
        .await
        .expect("DBSIZE");
    let mut sum = 0;
    let keys: Vec<String> = (1..=written).map(|n| format!("order:{n}")).collect();
    for chunk in keys.chunks(1000) {
        let values: Vec<Option<u64>> = conn.mget(chunk).await.expect("MGET");
        sum += values.into_iter().flatten().sum::<u64>();
    }
    (size, sum)
}

#[test]
fn a_redis_resync_under_writes_leaves_master_and_slave_identical() {
    let (dir, _servers) = quickstart();
    set_manifest(dir.path(), REDIS_PAIR);
    apply_ok(dir.path(), &[]);
    let recorded = state(dir.path());
    let runtime = runtime();
    let writer = {
        let conn = runtime.block_on(redis_client(&recorded, "redis-main"));
        WriteLoop::start(&runtime, move |n| {
            let mut conn = conn.clone();
            async move {
                let _: () = conn
                    .set(format!("order:{n}"), n)
                    .await
                    .expect("the master takes writes throughout");
            }
        })
    };
    apply_ok(dir.path(), &["--resync", "redis-replica-1"]);
    let written = writer.finish(&runtime);
    assert!(written > 0, "writes ran during the re-sync");
    runtime.block_on(async {
        let mut master = redis_client(&recorded, "redis-main").await;
        let mut replica = redis_client(&recorded, "redis-replica-1").await;
        let on_master = redis_digest(&mut master, written).await;
        assert_eq!(on_master, (written, written * (written + 1) / 2));
        let on_replica = poll(
            async || redis_digest(&mut replica, written).await,
            |seen| *seen == on_master,
        )
        .await;
        assert_eq!(
            on_replica, on_master,
            "the slave holds exactly the master's keys"
        );
    });
    converged(dir.path(), "manifest.yml");
}

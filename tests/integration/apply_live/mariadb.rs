//! `dbgroups apply` on real MariaDB servers: each change of issue 5's list,
//! checked by reading rows back through a client.

use mysql_async::prelude::Queryable;

use super::*;

async fn count(conn: &mut mysql_async::Conn, table: &str) -> Option<i64> {
    conn.query_first(format!("SELECT COUNT(*) FROM {table}"))
        .await
        .unwrap_or(None)
}

/// Polls until `table` holds `expected` rows (replication is asynchronous).
async fn wait_for_count(conn: &mut mysql_async::Conn, table: &str, expected: i64) -> Option<i64> {
    poll(
        async || count(conn, table).await,
        |seen| *seen == Some(expected),
    )
    .await
}

/// The server's process id, from its pid file: unchanged means the server
/// was not restarted.
fn pid_of(dir: &Path, server: &str) -> String {
    std::fs::read_to_string(dir.join(format!(".dbgroups/servers/{server}/run/mysqld.pid")))
        .expect("pid file")
        .trim()
        .to_string()
}

#[test]
fn scale_up_replicate_between_groups_and_disable_on_real_mariadb_servers() {
    let (dir, _servers) = quickstart();
    set_manifest(dir.path(), TWO_MARIADB_GROUPS);
    apply_ok(dir.path(), &[]);
    let first = state(dir.path());
    let runtime = runtime();
    runtime.block_on(async {
        let mut master = mysql_conn(&first, "mysql.default", "db-main", None).await;
        master
            .query_drop("CREATE TABLE orders (id INT PRIMARY KEY)")
            .await
            .expect("creates");
        master
            .query_drop("INSERT INTO orders SELECT seq FROM seq_1_to_500")
            .await
            .expect("existing data");
        let mut report = mysql_conn(&first, "mysql.reporting", "db-report", None).await;
        report
            .query_drop("CREATE TABLE stale (id INT); INSERT INTO stale VALUES (1)")
            .await
            .expect("old data on the replica-to-be, in its own binary log");
    });
    let master_pid = pid_of(dir.path(), "db-main");

    // Scale up a group that holds data.
    let scaled_manifest = TWO_MARIADB_GROUPS.replace(
        "        - server: { unique_name: db-main }\n",
        "        - server: { unique_name: db-main }\n        - server: { unique_name: db-replica-1 }\n",
    );
    set_manifest(dir.path(), &scaled_manifest);
    apply_ok(dir.path(), &[]);
    let second = state(dir.path());
    runtime.block_on(async {
        let mut master = mysql_conn(&second, "mysql.default", "db-main", None).await;
        master
            .query_drop("INSERT INTO orders SELECT seq FROM seq_501_to_600")
            .await
            .expect("later writes");
        let mut slave = mysql_conn(&second, "mysql.default", "db-replica-1", None).await;
        assert_eq!(
            wait_for_count(&mut slave, "orders", 600).await,
            Some(600),
            "existing and later rows are on the new slave"
        );
    });
    assert_eq!(
        pid_of(dir.path(), "db-main"),
        master_pid,
        "the master was not restarted"
    );

    // Replication between groups: reporting's data is replaced by default's.
    let replicating = scaled_manifest.replace(
        "    reporting:\n      configuration: { engine: mariadb, version: \"10.11\" }\n",
        "    reporting:\n      configuration: { engine: mariadb, version: \"10.11\" }\n      replicate_from: default\n",
    );
    set_manifest(dir.path(), &replicating);
    let enabled = apply_ok(dir.path(), &[]);
    assert!(
        enabled.stdout.contains("all data on db-report is replaced"),
        "{}",
        enabled.stdout
    );
    let third = state(dir.path());
    runtime.block_on(async {
        let mut report = mysql_conn(&third, "mysql.reporting", "db-report", None).await;
        assert_eq!(wait_for_count(&mut report, "orders", 600).await, Some(600));
        assert_eq!(
            count(&mut report, "stale").await,
            None,
            "the replica's own table is gone"
        );
        let mut master = mysql_conn(&third, "mysql.default", "db-main", None).await;
        master
            .query_drop("INSERT INTO orders VALUES (601)")
            .await
            .expect("writes");
        assert_eq!(
            wait_for_count(&mut report, "orders", 601).await,
            Some(601),
            "writes flow to the other group, past the replica's own old GTIDs"
        );
    });
    converged(dir.path(), "manifest.yml");

    // Disable replication: reporting keeps its data and becomes writable.
    set_manifest(dir.path(), &scaled_manifest);
    apply_ok(dir.path(), &[]);
    let fourth = state(dir.path());
    runtime.block_on(async {
        let mut report = mysql_conn(&fourth, "mysql.reporting", "db-report", None).await;
        report
            .query_drop("INSERT INTO orders VALUES (9999)")
            .await
            .expect("writable after detach");
        super::mariadb_follows_nothing(
            &dir.path().join(".dbgroups"),
            &fourth,
            "mysql.reporting",
            "db-report",
        )
        .await;
        let mut master = mysql_conn(&fourth, "mysql.default", "db-main", None).await;
        master
            .query_drop("INSERT INTO orders VALUES (602)")
            .await
            .expect("writes");
        let followed: Option<i64> = report
            .query_first("SELECT COUNT(*) FROM orders WHERE id = 602")
            .await
            .expect("reads");
        assert_eq!(followed, Some(0), "it no longer follows");
        assert_eq!(
            count(&mut report, "orders").await,
            Some(602),
            "it kept its data (601 + its own row)"
        );
    });
    assert_eq!(
        pid_of(dir.path(), "db-main"),
        master_pid,
        "no step restarted the master"
    );
    converged(dir.path(), "manifest.yml");
}

#[test]
fn a_broken_mariadb_slave_is_planned_for_resync_and_repaired() {
    let (dir, _servers) = quickstart();
    set_manifest(
        dir.path(),
        "application: shop\nmysql:\n  configuration: { engine: mariadb, version: \"10.11\" }\n  backups: { managed: true }\n  servers:\n    - server: { unique_name: db-main }\n    - server: { unique_name: db-replica-1 }\n",
    );
    apply_ok(dir.path(), &[]);
    let recorded = state(dir.path());
    let admin = recorded.credentials["mysql.default"]
        .admin_password
        .as_ref()
        .expect("admin")
        .expose()
        .to_string();
    let runtime = runtime();
    runtime.block_on(async {
        // A row only the slave has, then the same key from the master: the
        // SQL thread stops on a duplicate key, as a drifted replica does.
        let slave = dbgroups_engines::MysqlServer::new(
            &LocalHost::inspect(&dir.path().join(".dbgroups"))
                .expect("provider")
                .into_ref(),
            dbgroups_manifest::Engine::Mariadb,
            "10.11",
            "db-replica-1",
            port(&recorded, "db-replica-1"),
        )
        .await
        .expect("installed");
        let mut master = mysql_conn(&recorded, "mysql.default", "db-main", None).await;
        master
            .query_drop("CREATE TABLE orders (id INT PRIMARY KEY)")
            .await
            .expect("creates");
        let mut replica = mysql_conn(&recorded, "mysql.default", "db-replica-1", None).await;
        wait_for_count(&mut replica, "orders", 0).await;
        slave_write(&dir, &admin).await;
        master
            .query_drop("INSERT INTO orders VALUES (1)")
            .await
            .expect("writes");
        for _ in 0..600 {
            // a generous budget: a loaded CI machine is slow
            let status = slave.replication(&admin).await.expect("status");
            if status.is_some_and(|s| !s.sql_running) {
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
            .contains("~ re-synchronise db-replica-1 in mysql.default"),
        "{}",
        planned.stdout
    );
    assert!(
        planned.stdout.contains("Duplicate entry"),
        "the plan quotes MariaDB's reason:\n{}",
        planned.stdout
    );
    let status = dbgroups_in(dir.path(), &["status"]);
    assert!(
        status.stdout.contains("SQL thread STOPPED"),
        "{}",
        status.stdout
    );

    // Refreshed again, apply finds the same broken slave and re-seeds it.
    let repaired = dbgroups_in(dir.path(), &["apply", "--auto-approve"]);
    assert_eq!(repaired.code, 0, "{}\n{}", repaired.stdout, repaired.stderr);
    assert!(
        repaired.stdout.contains("backup:db-main"),
        "a physical copy of the master (mariadb-backup):\n{}",
        repaired.stdout
    );
    runtime.block_on(async {
        let mut master = mysql_conn(&recorded, "mysql.default", "db-main", None).await;
        master
            .query_drop("INSERT INTO orders VALUES (2), (3)")
            .await
            .expect("writes");
        let mut replica = mysql_conn(&recorded, "mysql.default", "db-replica-1", None).await;
        assert_eq!(
            wait_for_count(&mut replica, "orders", 3).await,
            Some(3),
            "the re-seeded slave holds the master's rows and follows again"
        );
    });
    converged(dir.path(), "manifest.yml");
}

/// Writes a row on the slave as root, past `read_only`, the way a drifted
/// replica gets rows its master does not have.
async fn slave_write(dir: &tempfile::TempDir, admin: &str) {
    let socket = dir
        .path()
        .join(".dbgroups/servers/db-replica-1/run/mysqld.sock");
    let mut root = mysql_async::Conn::new(
        mysql_async::OptsBuilder::default()
            .socket(Some(socket.display().to_string()))
            .prefer_socket(true)
            .user(Some("root"))
            .pass(Some(admin.to_string()))
            .db_name(Some("shop")),
    )
    .await
    .expect("root over the socket");
    root.query_drop("SET SESSION sql_log_bin = 0; INSERT INTO orders VALUES (1)")
        .await
        .expect("a row only the slave has");
}

#[test]
fn mariadb_replication_between_applications_and_an_import() {
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
        "application: shop\nmysql:\n  configuration: { engine: mariadb, version: \"10.11\" }\n  servers:\n    - server: { unique_name: shop-db }\n",
    )
    .expect("write");
    apply_ok(dir.path(), &["-f", "shop.yml"]);
    let shop_state = state(dir.path());
    let runtime = runtime();
    runtime.block_on(async {
        let mut master = mysql_conn(&shop_state, "mysql.default", "shop-db", None).await;
        master
            .query_drop("CREATE TABLE orders (id INT PRIMARY KEY); INSERT INTO orders SELECT seq FROM seq_1_to_50")
            .await
            .expect("writes");
    });

    // analytics follows shop's group, and imports a one-time copy into a
    // second group.
    std::fs::write(
        dir.path().join("analytics.yml"),
        "application: analytics\nmysql:\n  groups:\n    live:\n      configuration: { engine: mariadb, version: \"10.11\" }\n      replicate_from: { application: shop, group: default }\n      servers:\n        - server: { unique_name: analytics-live }\n    snapshot:\n      configuration: { engine: mariadb, version: \"10.11\" }\n      import_from: { application: shop, group: default }\n      servers:\n        - server: { unique_name: analytics-snapshot }\n",
    )
    .expect("write");
    apply_ok(dir.path(), &["-f", "analytics.yml"]);
    let analytics_state = DirectoryStore::new(dir.path().join(".dbgroups"))
        .load("analytics")
        .expect("loads")
        .expect("recorded");
    assert_eq!(
        analytics_state.credentials["mysql.live"].database, "shop",
        "the copy keeps shop's database name, which replication events use"
    );
    runtime.block_on(async {
        let mut live = mysql_conn(&analytics_state, "mysql.live", "analytics-live", None).await;
        assert_eq!(wait_for_count(&mut live, "orders", 50).await, Some(50));
        let mut snapshot = mysql_conn(
            &analytics_state,
            "mysql.snapshot",
            "analytics-snapshot",
            None,
        )
        .await;
        assert_eq!(
            count(&mut snapshot, "orders").await,
            Some(50),
            "the import copied the rows"
        );
        let mut master = mysql_conn(&shop_state, "mysql.default", "shop-db", None).await;
        master
            .query_drop("INSERT INTO orders VALUES (51)")
            .await
            .expect("writes");
        assert_eq!(
            wait_for_count(&mut live, "orders", 51).await,
            Some(51),
            "writes flow across applications"
        );
        super::mariadb_follows_nothing(
            &dir.path().join(".dbgroups"),
            &analytics_state,
            "mysql.snapshot",
            "analytics-snapshot",
        )
        .await;
        assert_eq!(
            count(&mut snapshot, "orders").await,
            Some(50),
            "an import is a one-time copy, not replication"
        );
        snapshot
            .query_drop("INSERT INTO orders VALUES (1000)")
            .await
            .expect("the imported group is writable");
    });
    converged(dir.path(), "analytics.yml");
}

#[test]
fn a_mariadb_apply_killed_mid_backup_and_mid_restore_is_finished_by_the_next_apply() {
    let (dir, _servers) = quickstart();
    let one = "application: shop\nmysql:\n  configuration: { engine: mariadb, version: \"10.11\" }\n  backups: { managed: true }\n  servers:\n    - server: { unique_name: db-main }\n";
    set_manifest(dir.path(), one);
    apply_ok(dir.path(), &[]);
    let recorded = state(dir.path());
    let runtime = runtime();
    runtime.block_on(async {
        let mut master = mysql_conn(&recorded, "mysql.default", "db-main", None).await;
        master
            .query_drop("CREATE TABLE orders (id INT PRIMARY KEY, note VARCHAR(200))")
            .await
            .expect("creates");
        // Enough rows that the restore takes a moment to load.
        master
            .query_drop("INSERT INTO orders SELECT seq, REPEAT('x', 200) FROM seq_1_to_200000")
            .await
            .expect("writes");
    });
    set_manifest(
        dir.path(),
        &one.replace(
            "    - server: { unique_name: db-main }\n",
            "    - server: { unique_name: db-main }\n    - server: { unique_name: db-replica-1 }\n",
        ),
    );
    // First killed while mariadb-backup copies the master's files (its
    // options name the master's data directory), then, by the next apply,
    // as soon as the restore has started (the copy moved in place of the
    // replica's data, its server restarted, its position set: a kill lands
    // somewhere among those).
    let (mut child, _, _) = apply_until(dir.path(), "start  backup:db-main");
    let master_data = dir.path().join(".dbgroups/servers/db-main/data");
    let master_data = std::fs::canonicalize(&master_data).unwrap_or(master_data);
    let copying = || {
        super::processes_mentioning(&master_data.display().to_string())
            .into_iter()
            .any(|cmdline| cmdline.contains("mariadb-backup") && cmdline.contains("--backup"))
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !copying() {
        assert!(
            std::time::Instant::now() < deadline,
            "mariadb-backup never started copying db-main"
        );
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    child.kill().expect("SIGKILL");
    let _ = child.wait();
    let crashed = state(dir.path());
    assert!(crashed.journal.is_some(), "the crash left the journal");
    // The killed apply's mariadb-backup goes with its process group;
    // the next apply starts the copy over.
    let (mut child, _, _) = apply_until(dir.path(), "start  restore:db-replica-1");
    child.kill().expect("SIGKILL");
    let _ = child.wait();
    let crashed = state(dir.path());
    assert!(crashed.journal.is_some(), "the crash left the journal");
    assert!(
        crashed.server("db-replica-1").is_none(),
        "the unfinished slave is not a member yet"
    );

    apply_ok(dir.path(), &[]);
    let finished = state(dir.path());
    assert!(finished.journal.is_none());
    runtime.block_on(async {
        let mut master = mysql_conn(&finished, "mysql.default", "db-main", None).await;
        master
            .query_drop("INSERT INTO orders VALUES (200001, 'after')")
            .await
            .expect("writes");
        let mut slave = mysql_conn(&finished, "mysql.default", "db-replica-1", None).await;
        assert_eq!(
            wait_for_count(&mut slave, "orders", 200_001).await,
            Some(200_001),
            "every row, once, after the resume"
        );
    });
    converged(dir.path(), "manifest.yml");
}

/// MySQL 8 is not packaged by Debian, and Debian's `mysqld` is a link to
/// MariaDB's server: a MySQL group is refused with where to get MySQL,
/// never run on MariaDB. Where a real MySQL is installed, the group is
/// built instead, and the test checks that.
#[test]
fn a_mysql_group_is_refused_with_where_to_get_mysql_unless_mysql_is_installed() {
    let (dir, _servers) = quickstart();
    set_manifest(
        dir.path(),
        "application: shop\nmysql:\n  configuration: { engine: mysql, version: \"8.4\" }\n  servers:\n    - server: { unique_name: db-main }\n",
    );
    let applied = dbgroups_in(dir.path(), &["apply", "--auto-approve", "--refresh=false"]);
    let host = dbgroups_engines::LocalHost::inspect(&dir.path().join(".dbgroups"))
        .expect("host")
        .into_ref();
    let real_mysql = dbgroups_engines::find_program("mysqld").is_some_and(|path| {
        !crate::common::block_on(dbgroups_engines::mysql::is_mariadb_program(&host, &path))
    });
    if real_mysql {
        assert_eq!(applied.code, 0, "{}\n{}", applied.stdout, applied.stderr);
        return;
    }
    assert_eq!(applied.code, 1, "{}\n{}", applied.stdout, applied.stderr);
    assert!(
        applied
            .stderr
            .contains("mysqld for mysql 8.4 is not installed"),
        "{}",
        applied.stderr
    );
    assert!(
        applied.stderr.contains("repo.mysql.com"),
        "{}",
        applied.stderr
    );
}

/// A MariaDB release other than the installed one is refused before any
/// server is made, naming the version found; it is never built on the
/// installed release under the asked-for name.
#[test]
fn a_mariadb_version_that_is_not_installed_is_refused_with_the_one_found() {
    let installed = std::process::Command::new(
        dbgroups_engines::find_program("mariadbd").expect("mariadb-server is installed"),
    )
    .arg("--version")
    .output()
    .expect("runs");
    let installed = dbgroups_engines::mysql::dialect::installed_series(&String::from_utf8_lossy(
        &installed.stdout,
    ))
    .expect("a readable version");
    // Ask for a release that is not the installed one.
    let wanted = if installed == (11, 4) {
        "10.11"
    } else {
        "11.4"
    };
    let (dir, _servers) = quickstart();
    set_manifest(
        dir.path(),
        &format!(
            "application: shop\nmysql:\n  configuration: {{ engine: mariadb, version: \"{wanted}\" }}\n  servers:\n    - server: {{ unique_name: db-main }}\n"
        ),
    );
    let refused = dbgroups_in(dir.path(), &["apply", "--auto-approve", "--refresh=false"]);
    assert_eq!(refused.code, 1, "{}\n{}", refused.stdout, refused.stderr);
    assert!(
        refused
            .stderr
            .contains(&format!("mariadbd for mariadb {wanted} is not installed"))
            && refused
                .stderr
                .contains(&format!("which is {}.{}", installed.0, installed.1)),
        "{}",
        refused.stderr
    );
    assert!(
        !dir.path()
            .join(".dbgroups/servers/db-main/data/mysql")
            .exists(),
        "no server was initialised"
    );
}

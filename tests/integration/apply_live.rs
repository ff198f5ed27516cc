//! `dbgroups apply` end to end on real PostgreSQL and Redis servers, each
//! test asserting on data read back through a client.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use dbgroups_engines::{LocalProvider, PostgresServer, RedisServer};
use dbgroups_state::{AppState, DirectoryStore, StateStore};
use redis::AsyncCommands;

use crate::cli::dbgroups_in;
use crate::common::repo_path;

/// Stops every server the state records when the test ends, pass or fail.
struct Servers {
    state_dir: PathBuf,
}

impl Drop for Servers {
    fn drop(&mut self) {
        let Ok(Some(state)) = DirectoryStore::new(&self.state_dir).load("shop") else {
            return;
        };
        let Ok((provider, _)) = LocalProvider::prepare(&self.state_dir) else {
            return;
        };
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        for group in &state.groups {
            let password = state
                .credentials
                .get(&group.address())
                .and_then(|c| c.password.as_ref())
                .map(|p| p.expose().to_string())
                .unwrap_or_default();
            for server in &group.servers {
                let port = server.port.unwrap_or_default();
                match group.db_type {
                    dbgroups_manifest::DbType::Postgresql => {
                        if let Ok(pg) = PostgresServer::new(
                            &provider,
                            &server.unique_name,
                            &group.version,
                            port,
                        ) {
                            pg.stop_now();
                        }
                    }
                    _ => {
                        if let Ok(redis) = RedisServer::new(&provider, &server.unique_name, port) {
                            let _ = runtime.block_on(redis.ensure_stopped(&password));
                        }
                    }
                }
            }
        }
    }
}

fn quickstart() -> (tempfile::TempDir, Servers) {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::copy(
        repo_path("examples/quickstart/manifest.yml"),
        dir.path().join("manifest.yml"),
    )
    .expect("copy");
    let servers = Servers {
        state_dir: dir.path().join(".dbgroups"),
    };
    (dir, servers)
}

fn state(dir: &Path) -> AppState {
    DirectoryStore::new(dir.join(".dbgroups"))
        .load("shop")
        .expect("loads")
        .expect("recorded")
}

fn port(state: &AppState, server: &str) -> u16 {
    state
        .server(server)
        .and_then(|(_, s)| s.port)
        .expect("a recorded port")
}

fn password(state: &AppState, group: &str) -> String {
    state.credentials[group]
        .password
        .as_ref()
        .expect("generated")
        .expose()
        .to_string()
}

fn all_secrets(state: &AppState) -> Vec<String> {
    state
        .credentials
        .values()
        .flat_map(|c| [&c.password, &c.admin_password, &c.replication_password])
        .flatten()
        .map(|s| s.expose().to_string())
        .collect()
}

async fn pg(port: u16, password: &str) -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::Config::new()
        .host("127.0.0.1")
        .port(port)
        .user("shop")
        .password(password)
        .dbname("shop")
        .connect(tokio_postgres::NoTls)
        .await
        .expect("the application connects");
    tokio::spawn(connection);
    client
}

async fn wait_for_rows(client: &tokio_postgres::Client, expected: i64) -> i64 {
    let mut count = -1;
    for _ in 0..100 {
        count = client
            .query_one("SELECT count(*) FROM orders", &[])
            .await
            .map(|r| r.get(0))
            .unwrap_or(-1);
        if count == expected {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    count
}

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

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
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
fn a_failed_apply_is_finished_by_the_next_one_with_nothing_lost() {
    let (dir, _servers) = quickstart();
    // redis-main cannot get its directory: its provision fails while the
    // PostgreSQL steps in flight finish.
    let blocker = dir.path().join(".dbgroups/servers/redis-main");
    std::fs::create_dir_all(blocker.parent().expect("parent")).expect("mkdir");
    std::fs::write(&blocker, "in the way").expect("block");
    let failed = dbgroups_in(
        dir.path(),
        &[
            "apply",
            "--auto-approve",
            "--refresh=false",
            "--parallelism",
            "1",
        ],
    );
    assert_eq!(failed.code, 1, "{}", failed.stderr);
    assert!(
        failed.stderr.contains("FAILED provision:redis-main"),
        "{}",
        failed.stderr
    );
    let interrupted = state(dir.path());
    assert!(
        interrupted.journal.is_some(),
        "the journal says an apply is unfinished"
    );

    // Steps run in plan order with --parallelism 1: pg-main was provisioned
    // and recorded before redis-main failed; its slave was not finished.
    assert!(
        interrupted.server("pg-main").is_some(),
        "pg-main is recorded"
    );
    assert!(
        interrupted.server("pg-replica-1").is_none(),
        "an unfinished slave is not recorded as a member"
    );

    // Data written between the two runs survives the second.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let master = pg(port(&interrupted, "pg-main"), &password(&interrupted, "postgresql.default")).await;
        master
            .batch_execute("CREATE TABLE orders (id int PRIMARY KEY); INSERT INTO orders VALUES (1), (2), (3);")
            .await
            .expect("writes");
    });

    std::fs::remove_file(&blocker).expect("unblock");
    let resumed = dbgroups_in(dir.path(), &["apply", "--auto-approve", "--refresh=false"]);
    assert_eq!(resumed.code, 0, "{}\n{}", resumed.stdout, resumed.stderr);
    assert!(
        resumed.stdout.contains("create redis.default"),
        "the resumed plan still builds redis without --add-group:\n{}",
        resumed.stdout
    );
    let finished = state(dir.path());
    assert!(finished.journal.is_none());
    runtime.block_on(async {
        let pg_password = password(&finished, "postgresql.default");
        let master = pg(port(&finished, "pg-main"), &pg_password).await;
        let slave = pg(port(&finished, "pg-replica-1"), &pg_password).await;
        let on_master: i64 = master
            .query_one("SELECT count(*) FROM orders", &[])
            .await
            .expect("reads")
            .get(0);
        assert_eq!(on_master, 3, "the rows written between the runs are kept");
        assert_eq!(wait_for_rows(&slave, 3).await, 3, "and reached the slave");
    });
    let replan = dbgroups_in(dir.path(), &["plan", "--detailed-exitcode"]);
    assert_eq!(replan.code, 0, "converged:\n{}", replan.stdout);
}

/// Processes whose command line mentions `needle`.
fn processes_mentioning(needle: &str) -> Vec<String> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        if cmdline.contains(needle) {
            found.push(cmdline);
        }
    }
    found
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

    assert!(
        processes_mentioning(&servers_dir.display().to_string()).is_empty(),
        "a server process is left"
    );
    for port in ports {
        assert!(
            std::net::TcpStream::connect(("127.0.0.1", port)).is_err(),
            "something still listens on {port}"
        );
    }
    let left: Vec<_> = std::fs::read_dir(&servers_dir)
        .expect("readable")
        .flatten()
        .map(|e| e.path())
        .collect();
    assert!(left.is_empty(), "data directories are left: {left:?}");
    let after = state(dir.path());
    assert!(
        after.groups.is_empty() && after.journal.is_none(),
        "the state records the destruction"
    );
    assert!(after.serial > before.serial);
}

/// Rewrites the scratch manifest.
fn set_manifest(dir: &Path, text: &str) {
    std::fs::write(dir.join("manifest.yml"), text).expect("write manifest");
}

const TWO_GROUPS: &str = r#"
application: shop
postgresql:
  groups:
    default:
      configuration: { version: "15" }
      backups: { managed: true }
      servers:
        - server: { unique_name: pg-main }
    reporting:
      configuration: { version: "15" }
      servers:
        - server: { unique_name: pg-report }
"#;

async fn pg_start_time(port: u16, admin: &str) -> std::time::SystemTime {
    let (client, connection) = tokio_postgres::Config::new()
        .host("127.0.0.1")
        .port(port)
        .user("postgres")
        .password(admin)
        .dbname("postgres")
        .connect(tokio_postgres::NoTls)
        .await
        .expect("connects");
    tokio::spawn(connection);
    client
        .query_one("SELECT pg_postmaster_start_time()", &[])
        .await
        .expect("reads")
        .get(0)
}

#[test]
fn scale_up_replicate_between_groups_disable_and_move_the_primary_on_real_servers() {
    let (dir, _servers) = quickstart();
    set_manifest(dir.path(), TWO_GROUPS);
    let applied = dbgroups_in(dir.path(), &["apply", "--auto-approve", "--refresh=false"]);
    assert_eq!(applied.code, 0, "{}", applied.stderr);
    let first = state(dir.path());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
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
        master
            .batch_execute("INSERT INTO orders VALUES (602);")
            .await
            .expect("writes");
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
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
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        // Point the slave at a port nothing listens on: its WAL receiver stops.
        let (client, connection) = tokio_postgres::Config::new()
            .host("127.0.0.1")
            .port(port(&recorded, "pg-replica-1"))
            .user("postgres")
            .password(&admin)
            .dbname("postgres")
            .connect(tokio_postgres::NoTls)
            .await
            .expect("connects");
        tokio::spawn(connection);
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
        for _ in 0..100 {
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
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
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

/// Stops the analytics application's servers too.
struct AnalyticsServers {
    state_dir: PathBuf,
}

impl Drop for AnalyticsServers {
    fn drop(&mut self) {
        let Ok(Some(state)) = DirectoryStore::new(&self.state_dir).load("analytics") else {
            return;
        };
        let Ok(provider) = LocalProvider::inspect(&self.state_dir) else {
            return;
        };
        for group in &state.groups {
            for server in &group.servers {
                if let Ok(pg) = PostgresServer::new(
                    &provider,
                    &server.unique_name,
                    &group.version,
                    server.port.unwrap_or_default(),
                ) {
                    pg.stop_now();
                }
            }
        }
    }
}

#[test]
fn apply_killed_mid_step_with_sigkill_is_finished_by_the_next_apply() {
    use std::io::BufRead;

    let (dir, _servers) = quickstart();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_dbgroups"))
        .args(["apply", "--auto-approve", "--refresh=false"])
        .current_dir(dir.path())
        .env("NO_COLOR", "1")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("starts");
    let stderr = child.stderr.take().expect("piped");
    let mut seen = Vec::new();
    for line in std::io::BufReader::new(stderr).lines() {
        let line = line.expect("reads");
        let in_enslave = line.contains("start  enslave:pg-replica-1");
        seen.push(line);
        if in_enslave {
            // SIGKILL: no handler runs, nothing is flushed, the lock is
            // released only because the OS closes the file.
            child.kill().expect("kills");
            break;
        }
    }
    let _ = child.wait();
    assert!(
        seen.iter()
            .any(|l| l.contains("start  enslave:pg-replica-1")),
        "never reached the step:\n{}",
        seen.join("\n")
    );

    let crashed = state(dir.path());
    assert!(crashed.journal.is_some(), "the crash left the journal");
    assert!(
        crashed.server("pg-replica-1").is_none(),
        "the slave was not finished, so it is not a member"
    );

    let resumed = dbgroups_in(dir.path(), &["apply", "--auto-approve", "--refresh=false"]);
    assert_eq!(resumed.code, 0, "{}\n{}", resumed.stdout, resumed.stderr);
    let finished = state(dir.path());
    assert!(finished.journal.is_none());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let pg_password = password(&finished, "postgresql.default");
        let master = pg(port(&finished, "pg-main"), &pg_password).await;
        master
            .batch_execute(
                "CREATE TABLE orders (id int PRIMARY KEY); INSERT INTO orders VALUES (1), (2);",
            )
            .await
            .expect("writes");
        let slave = pg(port(&finished, "pg-replica-1"), &pg_password).await;
        assert_eq!(
            wait_for_rows(&slave, 2).await,
            2,
            "the slave follows after the resume"
        );
    });
    let replan = dbgroups_in(dir.path(), &["plan", "--detailed-exitcode"]);
    assert_eq!(replan.code, 0, "converged:\n{}", replan.stdout);
}

#[test]
fn an_import_into_a_new_group_copies_the_data_and_leaves_no_replication() {
    let (dir, _servers) = quickstart();
    let applied = dbgroups_in(dir.path(), &["apply", "--auto-approve", "--refresh=false"]);
    assert_eq!(applied.code, 0, "{}", applied.stderr);
    let first = state(dir.path());
    let default_password = password(&first, "postgresql.default");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
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
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
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

/// A tmpfs mounted over a directory for the test's lifetime.
struct SmallFilesystem(PathBuf);

impl SmallFilesystem {
    fn mount(at: &Path, size: &str) -> Self {
        std::fs::create_dir_all(at).expect("mount point");
        let status = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(at)
            .status()
            .expect("runs mount");
        assert!(status.success(), "mounting a tmpfs needs root, as CI has");
        Self(at.to_path_buf())
    }
}

impl Drop for SmallFilesystem {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(&self.0).status();
    }
}

#[test]
fn the_disk_space_guard_refuses_a_backup_that_cannot_fit_and_changes_nothing() {
    let (dir, _servers) = quickstart();
    let applied = dbgroups_in(dir.path(), &["apply", "--auto-approve", "--refresh=false"]);
    assert_eq!(applied.code, 0, "{}", applied.stderr);
    let before = state(dir.path());
    // Backups land on a 1 MiB filesystem; the master holds far more.
    let _small = SmallFilesystem::mount(&dir.path().join(".dbgroups/backups"), "1m");
    let manifest = std::fs::read_to_string(dir.path().join("manifest.yml")).expect("read").replace(
        "        - server: { unique_name: pg-replica-1 } # the rest = slaves in the group\n",
        "        - server: { unique_name: pg-replica-1 }\n        - server: { unique_name: pg-replica-2 }\n",
    );
    set_manifest(dir.path(), &manifest);
    let refused = dbgroups_in(dir.path(), &["apply", "--auto-approve", "--refresh=false"]);
    assert_eq!(refused.code, 1, "{}\n{}", refused.stdout, refused.stderr);
    assert!(
        refused
            .stderr
            .contains("FAILED backup:pg-main: not enough free space for the backup"),
        "{}",
        refused.stderr
    );
    assert!(
        refused.stderr.contains("nothing was changed"),
        "{}",
        refused.stderr
    );
    let after = state(dir.path());
    assert!(
        after.server("pg-replica-2").is_none(),
        "no server was added"
    );
    assert_eq!(
        after.groups, before.groups,
        "the recorded groups are unchanged"
    );

    let off = dbgroups_in(
        dir.path(),
        &["plan", "--refresh=false", "--skip-disk-check"],
    );
    assert!(
        off.stdout
            .contains("! DISK-SPACE CHECK OFF (--skip-disk-check)"),
        "the plan says the check is off:\n{}",
        off.stdout
    );
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
    let (provider, _) = LocalProvider::prepare(&dir.path().join(".dbgroups")).expect("provider");
    PostgresServer::new(
        &provider,
        "pg-replica-1",
        "15",
        port(&recorded, "pg-replica-1"),
    )
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
fn ctrl_c_lets_running_steps_finish_and_the_next_apply_completes() {
    use std::io::BufRead;

    let (dir, _servers) = quickstart();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_dbgroups"))
        .args(["apply", "--auto-approve", "--refresh=false"])
        .current_dir(dir.path())
        .env("NO_COLOR", "1")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("starts");
    let stderr = child.stderr.take().expect("piped");
    let mut lines = std::io::BufReader::new(stderr).lines();
    let mut seen = Vec::new();
    for line in lines.by_ref() {
        let line = line.expect("reads");
        let at_backup = line.contains("start  backup:pg-main");
        seen.push(line);
        if at_backup {
            // Ctrl-C reaches dbgroups; the servers run in their own process
            // groups and do not see it.
            let status = std::process::Command::new("kill")
                .args(["-INT", &child.id().to_string()])
                .status()
                .expect("kill");
            assert!(status.success());
            break;
        }
    }
    seen.extend(lines.map_while(Result::ok));
    let status = child.wait().expect("waits");
    let output = seen.join("\n");
    assert_eq!(status.code(), Some(1), "{output}");
    assert!(
        output.contains("interrupted: no new steps start"),
        "{output}"
    );
    assert!(
        output.contains("done   backup:pg-main"),
        "the running step finished:\n{output}"
    );
    assert!(
        !output.contains("start  restore:pg-replica-1"),
        "nothing new started:\n{output}"
    );
    assert!(output.contains("apply stopped: interrupted"), "{output}");

    let resumed = dbgroups_in(dir.path(), &["apply", "--auto-approve", "--refresh=false"]);
    assert_eq!(resumed.code, 0, "{}\n{}", resumed.stdout, resumed.stderr);
    let replan = dbgroups_in(dir.path(), &["plan", "--detailed-exitcode"]);
    assert_eq!(replan.code, 0, "converged:\n{}", replan.stdout);
}

#[test]
fn a_version_that_is_not_installed_names_its_package() {
    let dir = tempfile::tempdir().expect("temp dir");
    let provider = LocalProvider::inspect(dir.path()).expect("provider");
    let err =
        PostgresServer::new(&provider, "pg-old", "13", 5432).expect_err("13 is not installed");
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
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
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
        for _ in 0..100 {
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

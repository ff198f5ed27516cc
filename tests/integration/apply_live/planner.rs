//! The planner's decisions carried out on real servers (issues 12 and 13):
//! the disk checks refuse before anything is built, a replica's copied
//! accounts reach the environment in the same apply, a master that is down
//! is started without re-syncing its slaves, a lost replication slot is
//! planned as a re-sync, and destroy ends the application.

use super::*;

const STATE_DIR: &str = ".dbgroups";

fn provider(dir: &Path) -> dbgroups_engines::HostRef {
    LocalHost::inspect(&dir.join(STATE_DIR))
        .expect("a provider")
        .into_ref()
}

fn admin(state: &AppState, group: &str) -> String {
    state.credentials[group]
        .admin_password
        .as_ref()
        .expect("generated")
        .expose()
        .to_string()
}

fn postgres(dir: &Path, state: &AppState, server: &str) -> PostgresServer {
    crate::common::block_on(PostgresServer::new(
        &provider(dir),
        server,
        "15",
        port(state, server),
    ))
    .expect("a server")
}

/// One variable of the environment file apply wrote.
fn variable(dir: &Path, name: &str) -> String {
    let env = std::fs::read_to_string(dir.join(STATE_DIR).join("env/shop.env")).expect("env");
    env.lines()
        .find_map(|line| line.strip_prefix(&format!("{name}=")))
        .unwrap_or_else(|| panic!("{name} is not in the environment file"))
        .to_string()
}

/// `psql URL -c SQL` with nothing of the caller's environment, as an
/// application would connect.
fn psql(url: &str, sql: &str) -> std::process::Output {
    std::process::Command::new(dbgroups_engines::postgres::binaries("15").join("psql"))
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .args([url, "-XAtc", sql])
        .output()
        .expect("psql runs")
}

/// `dbgroups apply` that refreshes first, as a user runs it; must succeed.
fn refreshed_apply(dir: &Path) -> crate::cli::Run {
    let applied = dbgroups_in(dir, &["apply", "--auto-approve"]);
    assert_eq!(applied.code, 0, "{}\n{}", applied.stdout, applied.stderr);
    applied
}

#[test]
fn a_group_that_replicates_from_another_connects_through_its_url_after_one_apply() {
    let (dir, _servers) = quickstart();
    set_manifest(dir.path(), TWO_GROUPS);
    apply_ok(dir.path(), &[]);
    let replicating = TWO_GROUPS.replace(
        "    reporting:\n",
        "    reporting:\n      replicate_from: default\n",
    );
    set_manifest(dir.path(), &replicating);
    let planned = dbgroups_in(dir.path(), &["plan", "--refresh=false"]);
    assert!(
        planned
            .stdout
            .contains("+ POSTGRESQL_REPORTING_PASSWORD=(sensitive) changed"),
        "the plan shows the password the copy brings:\n{}",
        planned.stdout
    );
    apply_ok(dir.path(), &[]);
    let url = variable(dir.path(), "POSTGRESQL_REPORTING_URL");
    let answer = psql(&url, "SELECT pg_is_in_recovery()");
    assert!(
        answer.status.success(),
        "psql \"$POSTGRESQL_REPORTING_URL\" fails: {}",
        String::from_utf8_lossy(&answer.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&answer.stdout).trim(), "t");
    converged(dir.path(), "manifest.yml");
}

/// A tmpfs of one and a half times `size`: room for one copy, not two, so
/// the check refuses only because of its factor of two.
fn between_one_and_two_copies(at: &Path, size: u64) -> SmallFilesystem {
    SmallFilesystem::mount(at, &format!("{}k", size * 3 / 2 / 1024))
}

/// A refused apply left nothing: no process or data directory for
/// `server`, and the state exactly as before (no journal either).
fn nothing_built(dir: &Path, before: &AppState, server: &str, refused: &crate::cli::Run) {
    assert_eq!(refused.code, 1, "{}\n{}", refused.stdout, refused.stderr);
    let server_dir = dir.join(STATE_DIR).join("servers").join(server);
    assert!(
        processes_mentioning(&server_dir.display().to_string()).is_empty(),
        "a process of {server} runs"
    );
    let contents: Vec<_> = std::fs::read_dir(&server_dir)
        .into_iter()
        .flatten()
        .flatten()
        .collect();
    assert!(contents.is_empty(), "{server} has data: {contents:?}");
    assert_eq!(&state(dir), before, "the state did not change");
}

#[test]
fn the_disk_checks_refuse_before_anything_is_built() {
    let (dir, _servers) = quickstart();
    let managed_redis = std::fs::read_to_string(dir.path().join("manifest.yml"))
        .expect("read")
        .replace(
            "  configuration: { version: \"7.0\" }\n",
            "  configuration: { version: \"7.0\" }\n  backups: { managed: true }\n",
        );
    set_manifest(dir.path(), &managed_redis);
    apply_ok(dir.path(), &[]);
    let before = state(dir.path());
    let runtime = runtime();
    let pg_size = runtime.block_on(async {
        postgres(dir.path(), &before, "pg-main")
            .data_size(&admin(&before, "postgresql.default"), None)
            .await
            .expect("measures")
    });
    let scaled = managed_redis.replace(
        "        - server: { unique_name: pg-replica-1 } # the rest = slaves in the group\n",
        "        - server: { unique_name: pg-replica-1 }\n        - server: { unique_name: pg-replica-2 }\n",
    );
    set_manifest(dir.path(), &scaled);

    // The backup's check: the staging area holds one copy, not two.
    {
        let _small =
            between_one_and_two_copies(&dir.path().join(STATE_DIR).join("backups"), pg_size);
        let refused = dbgroups_in(dir.path(), &["apply", "--auto-approve", "--refresh=false"]);
        assert!(
            refused
                .stderr
                .contains("FAILED disk-check:backup:pg-main: not enough free space for the backup"),
            "{}",
            refused.stderr
        );
        nothing_built(dir.path(), &before, "pg-replica-2", &refused);
    }

    // The restore's check: the new server's place holds one copy, not two.
    let replica_dir = dir.path().join(STATE_DIR).join("servers/pg-replica-2");
    {
        let _small = between_one_and_two_copies(&replica_dir, pg_size);
        let refused = dbgroups_in(dir.path(), &["apply", "--auto-approve", "--refresh=false"]);
        assert!(
            refused.stderr.contains(
                "FAILED disk-check:backup:pg-main: not enough free space for the restore"
            ),
            "{}",
            refused.stderr
        );
        nothing_built(dir.path(), &before, "pg-replica-2", &refused);
    }
    std::fs::remove_dir(&replica_dir).expect("the empty mount point goes");

    // Redis's full sync: the new replica's place holds one copy, not two.
    set_manifest(dir.path(), &managed_redis.replace(
        "    - server: { unique_name: redis-main }\n",
        "    - server: { unique_name: redis-main }\n    - server: { unique_name: redis-replica-1 }\n",
    ));
    let redis_size = runtime.block_on(async {
        let redis = RedisServer::new(
            &provider(dir.path()),
            "redis-main",
            port(&before, "redis-main"),
        )
        .await
        .expect("a server");
        let password = password(&before, "redis.default");
        let client = redis::Client::open(format!(
            "redis://default:{password}@127.0.0.1:{}/0",
            port(&before, "redis-main")
        ))
        .expect("a client");
        let mut connection = client
            .get_multiplexed_async_connection()
            .await
            .expect("connects");
        let value = "x".repeat(64 * 1024);
        for key in 0..64 {
            let _: () = connection
                .set(format!("key-{key}"), &value)
                .await
                .expect("writes");
        }
        redis.data_size(&password).await.expect("measures")
    });
    let redis_before = state(dir.path());
    let redis_dir = dir.path().join(STATE_DIR).join("servers/redis-replica-1");
    {
        let _small = between_one_and_two_copies(&redis_dir, redis_size);
        let refused = dbgroups_in(dir.path(), &["apply", "--auto-approve", "--refresh=false"]);
        assert!(
            refused.stderr.contains(
                "FAILED disk-check:sync:redis-main: not enough free space for the full sync"
            ),
            "{}",
            refused.stderr
        );
        nothing_built(dir.path(), &redis_before, "redis-replica-1", &refused);
    }
    std::fs::remove_dir(&redis_dir).expect("the empty mount point goes");
    // With room, the same change goes through.
    apply_ok(dir.path(), &[]);
}

#[test]
fn a_master_that_is_down_is_started_and_its_slave_is_not_resynchronised() {
    let (dir, _servers) = quickstart();
    apply_ok(dir.path(), &[]);
    let recorded = state(dir.path());
    let password = password(&recorded, "postgresql.default");
    let (master_port, replica_port) = (port(&recorded, "pg-main"), port(&recorded, "pg-replica-1"));
    let runtime = runtime();
    let writing = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    let written = runtime.block_on(async {
        pg(master_port, &password)
            .await
            .batch_execute("CREATE TABLE orders (id serial PRIMARY KEY)")
            .await
            .expect("creates");
        // Writes keep coming while the master is killed and started again;
        // those that reach it are counted.
        let writer = {
            let (writing, password) = (writing.clone(), password.clone());
            tokio::spawn(async move {
                let mut written = 0_i64;
                while writing.load(std::sync::atomic::Ordering::Relaxed) {
                    let connected = tokio_postgres::Config::new()
                        .host("127.0.0.1")
                        .port(master_port)
                        .user("shop")
                        .password(&password)
                        .dbname("shop")
                        .connect(tokio_postgres::NoTls)
                        .await;
                    let Ok((client, connection)) = connected else {
                        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                        continue;
                    };
                    tokio::spawn(connection);
                    while writing.load(std::sync::atomic::Ordering::Relaxed) {
                        match client
                            .execute("INSERT INTO orders DEFAULT VALUES", &[])
                            .await
                        {
                            Ok(_) => written += 1,
                            Err(_) => break,
                        }
                    }
                }
                written
            })
        };
        let master = postgres(dir.path(), &recorded, "pg-main");
        poll(
            async || {
                pg(replica_port, &password)
                    .await
                    .query_one("SELECT count(*) FROM orders", &[])
                    .await
                    .map(|r| r.get::<_, i64>(0))
                    .unwrap_or(0)
            },
            |rows| *rows > 100,
        )
        .await;
        master.stop_now();
        // Until the replica notices its master is gone it may still say it
        // streams; every plan meanwhile must start the master and nothing
        // else.
        let mut planned = dbgroups_in(dir.path(), &["plan"]);
        for _ in 0..50 {
            assert!(
                planned
                    .stdout
                    .contains("~ start pg-main in postgresql.default")
                    && !planned.stdout.contains("re-synchronise pg-replica-1 in"),
                "only the master is started:\n{}",
                planned.stdout
            );
            if planned
                .stdout
                .contains("pg-replica-1 is not judged while its master pg-main is down")
            {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
            planned = dbgroups_in(dir.path(), &["plan"]);
        }
        assert!(
            planned
                .stdout
                .contains("pg-replica-1 is not judged while its master pg-main is down"),
            "the plan says why the slave waits:\n{}",
            planned.stdout
        );
        let applied = refreshed_apply(dir.path());
        assert!(
            !applied.stderr.contains("backup:"),
            "no backup is taken: {}",
            applied.stderr
        );
        // At once, before the slave's next retry (PostgreSQL's 5 s): the
        // refresh waits that long for it, so no re-sync is planned.
        let at_once = dbgroups_in(dir.path(), &["plan", "--detailed-exitcode"]);
        assert_eq!(at_once.code, 0, "{}\n{}", at_once.stdout, at_once.stderr);
        // Writes after the restart reach the master before the writer stops.
        let restarted = pg(master_port, &password).await;
        let at_restart: i64 = restarted
            .query_one("SELECT count(*) FROM orders", &[])
            .await
            .expect("counts")
            .get(0);
        poll(
            async || {
                restarted
                    .query_one("SELECT count(*) FROM orders", &[])
                    .await
                    .map(|r| r.get::<_, i64>(0))
                    .unwrap_or(0)
            },
            |rows| *rows > at_restart + 100,
        )
        .await;
        writing.store(false, std::sync::atomic::Ordering::Relaxed);
        writer.await.expect("the writer ends")
    });
    let rows = runtime.block_on(async {
        let master = pg(master_port, &password).await;
        let rows: i64 = master
            .query_one("SELECT count(*) FROM orders", &[])
            .await
            .expect("counts")
            .get(0);
        assert!(rows >= written, "the master lost acknowledged writes");
        let slave = pg(replica_port, &password).await;
        // The slave reconnects by itself (PostgreSQL retries every 5 s).
        let copied = poll(
            async || {
                slave
                    .query_one("SELECT count(*) FROM orders", &[])
                    .await
                    .map(|r| r.get::<_, i64>(0))
                    .unwrap_or(-1)
            },
            |count| *count == rows,
        )
        .await;
        assert_eq!(copied, rows, "the slave holds the master's rows");
        rows
    });
    assert!(rows > 0);
    let staged = std::fs::read_dir(dir.path().join(STATE_DIR).join("backups"))
        .into_iter()
        .flatten()
        .count();
    assert_eq!(staged, 0, "no backup was staged");
    converged(dir.path(), "manifest.yml");
}

#[test]
fn a_replica_whose_slot_was_dropped_is_planned_for_resync_and_streams_again() {
    let (dir, _servers) = quickstart();
    apply_ok(dir.path(), &[]);
    let recorded = state(dir.path());
    let admin = admin(&recorded, "postgresql.default");
    let master = postgres(dir.path(), &recorded, "pg-main");
    postgres(dir.path(), &recorded, "pg-replica-1").stop_now();
    let runtime = runtime();
    runtime.block_on(async {
        // The slot is released once the replica's sender has gone.
        let gone = poll(
            async || {
                let _ = master.drop_slot_of("pg-replica-1", &admin).await;
                !master
                    .has_slot_for("pg-replica-1", &admin)
                    .await
                    .expect("asks")
            },
            |gone| *gone,
        )
        .await;
        assert!(gone, "the slot was dropped");
    });
    let planned = dbgroups_in(dir.path(), &["plan"]);
    assert!(
        planned
            .stdout
            .contains("re-synchronise pg-replica-1 in postgresql.default")
            && planned
                .stdout
                .contains("no longer exists on its master pg-main")
            && !planned.stdout.contains("start:pg-replica-1"),
        "a re-sync, not a start:\n{}",
        planned.stdout
    );
    refreshed_apply(dir.path());
    let password = password(&recorded, "postgresql.default");
    runtime.block_on(async {
        pg(port(&recorded, "pg-main"), &password)
            .await
            .batch_execute("CREATE TABLE orders (id int PRIMARY KEY); INSERT INTO orders VALUES (1), (2), (3);")
            .await
            .expect("writes");
        let slave = pg(port(&recorded, "pg-replica-1"), &password).await;
        assert_eq!(wait_for_rows(&slave, 3).await, 3, "the replica streams again");
        assert!(master.has_slot_for("pg-replica-1", &admin).await.expect("asks"));
    });
    converged(dir.path(), "manifest.yml");
}

#[test]
fn a_refused_destroy_shows_no_plan_and_a_destroyed_application_is_new_again() {
    let (dir, _servers) = quickstart();
    apply_ok(dir.path(), &[]);
    // Another application replicating from this one refuses its destroy.
    let analytics = "application: analytics\npostgresql:\n  groups:\n    copy:\n      configuration: { version: \"15\" }\n      replicate_from: { application: shop, group: default }\n      servers:\n        - server: { unique_name: analytics-pg }\n";
    std::fs::write(dir.path().join("analytics.yml"), analytics).expect("write");
    let _analytics = AnalyticsServers {
        state_dir: dir.path().join(STATE_DIR),
    };
    apply_ok(dir.path(), &["-f", "analytics.yml"]);
    let before = state(dir.path());
    let refused = dbgroups_in(dir.path(), &["destroy", "--app", "shop", "--auto-approve"]);
    assert_eq!(refused.code, 1, "{}", refused.stderr);
    assert!(
        !refused.stdout.contains("POSTGRESQL") && !refused.stdout.contains("remove"),
        "a refused destroy shows no plan:\n{}",
        refused.stdout
    );
    assert!(
        refused
            .stderr
            .contains("the replication source of analytics/"),
        "{}",
        refused.stderr
    );
    assert_eq!(state(dir.path()), before);
    let detached = dbgroups_in(
        dir.path(),
        &["destroy", "--app", "analytics", "--auto-approve"],
    );
    assert_eq!(detached.code, 0, "{}", detached.stderr);

    let destroyed = dbgroups_in(dir.path(), &["destroy", "--app", "shop", "--auto-approve"]);
    assert_eq!(
        destroyed.code, 0,
        "{}\n{}",
        destroyed.stdout, destroyed.stderr
    );
    assert!(
        destroyed
            .stdout
            .contains("reason: `destroy --app shop` removes every group of the application")
            && !destroyed.stdout.contains("--remove-group"),
        "{}",
        destroyed.stdout
    );
    // The same manifest again builds a new application, no flag needed.
    let again = apply_ok(dir.path(), &[]);
    assert!(!again.stderr.contains("--add-group"), "{}", again.stderr);
    let rebuilt = state(dir.path());
    assert_ne!(rebuilt.lineage, before.lineage, "a new application");
    assert_eq!(rebuilt.groups.len(), before.groups.len());
}

/// A Redis replica's `INFO replication` and its key count (empty and 0
/// while it does not answer).
async fn link_and_keys(conn: &mut redis::aio::MultiplexedConnection) -> (String, u64) {
    let link: String = redis::cmd("INFO")
        .arg("replication")
        .query_async(conn)
        .await
        .unwrap_or_default();
    let keys: u64 = redis::cmd("DBSIZE").query_async(conn).await.unwrap_or(0);
    (link, keys)
}

/// Issue 13.11: a Redis master killed under a closed write loop. The next
/// plan refuses to just start it while its replica is up holding the data
/// (a restarted master would make the replica copy it again and drop what
/// only the replica holds); the refused apply leaves the replica's data
/// alone; the documented recovery (the replica's snapshot becomes the
/// master's data) and `--restart-master` keep every write the replica held.
#[test]
#[allow(clippy::print_stdout)] // what survived is this test's figure
fn a_redis_master_killed_under_writes_is_not_restarted_over_its_replicas_data() {
    let (dir, _servers) = quickstart();
    set_manifest(dir.path(), REDIS_PAIR);
    apply_ok(dir.path(), &[]);
    let recorded = state(dir.path());
    let redis_password = password(&recorded, "redis.default");
    let provider = provider(dir.path());
    let master = crate::common::block_on(RedisServer::new(
        &provider,
        "redis-main",
        port(&recorded, "redis-main"),
    ))
    .expect("a server");
    let runtime = runtime();
    runtime.block_on(async {
        let mut on_replica = redis_client(&recorded, "redis-replica-1").await;
        // One writer, one key per acknowledged write, in order: what
        // survives is then a count.
        let writer = {
            let mut conn = redis_client(&recorded, "redis-main").await;
            tokio::spawn(async move {
                let mut acknowledged = 0_u64;
                loop {
                    let written: redis::RedisResult<()> =
                        conn.set(format!("order:{acknowledged}"), acknowledged).await;
                    if written.is_err() {
                        return acknowledged;
                    }
                    acknowledged += 1;
                }
            })
        };
        let replicated = poll(
            async || redis::cmd("DBSIZE").query_async::<u64>(&mut on_replica).await.unwrap_or(0),
            |keys| *keys >= 2000,
        )
        .await;
        assert!(replicated >= 2000, "the replica follows: {replicated} keys");
        let pid: i32 = std::fs::read_to_string(master.dir().join("redis.pid"))
            .expect("the master's pid file")
            .trim()
            .parse()
            .expect("a pid");
        // SIGKILL: a crash, not a shutdown (which would save and hand over).
        assert!(
            std::process::Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status()
                .expect("kill runs")
                .success()
        );
        let acknowledged = writer.await.expect("the writer ends");
        let held = poll(
            async || {
                let (link, keys) = link_and_keys(&mut on_replica).await;
                (link.contains("master_link_status:down"), keys)
            },
            |(down, _)| *down,
        )
        .await;
        assert!(held.0, "the replica sees its master gone");
        let held = held.1;
        println!("acknowledged writes: {acknowledged}; the replica holds {held} keys");

        // The plan does not just start the master.
        let planned = dbgroups_in(dir.path(), &["plan"]);
        assert!(
            planned.stdout.contains("! redis-main: the master of redis.default is down")
                && planned.stdout.contains("redis-replica-1 (offset ")
                && planned.stdout.contains("--restart-master redis-main")
                && !planned.stdout.contains("~ start redis-main"),
            "{}\n{}",
            planned.stdout,
            planned.stderr
        );
        // Nor does apply: the master stays down, the replica's data stays.
        let refused = dbgroups_in(dir.path(), &["apply", "--auto-approve"]);
        assert_ne!(refused.code, 0, "{}", refused.stdout);
        assert!(!master.is_running(&redis_password).await, "not started");
        let keys: u64 = redis::cmd("DBSIZE")
            .query_async(&mut on_replica)
            .await
            .expect("counts");
        assert_eq!(keys, held, "the replica keeps what it held");

        // The recovery docs/reliability.md gives: the replica's snapshot
        // becomes the master's data, then the master is restarted.
        let _: () = redis::cmd("SAVE")
            .query_async(&mut on_replica)
            .await
            .expect("saves");
        let replica_server = RedisServer::new(
            &provider,
            "redis-replica-1",
            port(&recorded, "redis-replica-1"),
        ).await
        .expect("a server");
        std::fs::remove_dir_all(master.rdb_file().with_file_name("appendonlydir"))
            .expect("the master's append-only file goes");
        std::fs::copy(replica_server.rdb_file(), master.rdb_file()).expect("copies the snapshot");
        let restarted = dbgroups_in(
            dir.path(),
            &["apply", "--auto-approve", "--restart-master", "redis-main"],
        );
        assert_eq!(restarted.code, 0, "{}\n{}", restarted.stdout, restarted.stderr);
        assert!(
            restarted.stdout.contains("--restart-master redis-main: redis-main starts from the data it kept"),
            "{}",
            restarted.stdout
        );
        let mut on_master = redis_client(&recorded, "redis-main").await;
        let survived: u64 = redis::cmd("DBSIZE")
            .query_async(&mut on_master)
            .await
            .expect("counts");
        assert_eq!(survived, held, "every write the replica held is on the master");
        let last: Option<u64> = on_master
            .get(format!("order:{}", held - 1))
            .await
            .expect("reads");
        assert_eq!(last, Some(held - 1), "the writes survive as a prefix");
        let synced = poll(
            async || {
                let (link, keys) = link_and_keys(&mut on_replica).await;
                (link.contains("master_link_status:up"), keys)
            },
            |(up, keys)| *up && *keys == held,
        )
        .await;
        assert_eq!(synced, (true, held), "the replica follows again, whole");
        // A write the master applied and replicated but was killed before
        // acknowledging is held without being counted, so either side may
        // be ahead.
        println!(
            "after recovery: {survived} keys on the master and the replica; {} acknowledged writes were not on the replica, {} held writes were never acknowledged",
            acknowledged.saturating_sub(held),
            held.saturating_sub(acknowledged)
        );
    });
    let replan = dbgroups_in(dir.path(), &["plan", "--detailed-exitcode"]);
    assert_eq!(replan.code, 0, "converged:\n{}", replan.stdout);
}

/// Issue 13.3 on MariaDB, where it was found: a killed master is started,
/// and the plan right after it does not re-sync the slave while its IO
/// thread is still retrying; the slave reconnects by itself (its retry is
/// dbgroups's 2 s, not the server's 60 s) and receives new writes, with no
/// copy taken.
#[test]
fn a_mariadb_slave_reconnecting_after_its_master_restarts_is_not_resynchronised() {
    let (dir, _servers) = quickstart();
    set_manifest(
        dir.path(),
        "application: shop\nmysql:\n  configuration: { engine: mariadb, version: \"10.11\" }\n  backups: { managed: true }\n  servers:\n    - server: { unique_name: db-main }\n    - server: { unique_name: db-replica-1 }\n",
    );
    apply_ok(dir.path(), &[]);
    let recorded = state(dir.path());
    let admin = admin(&recorded, "mysql.default");
    let provider = provider(dir.path());
    let replica = crate::common::block_on(dbgroups_engines::MysqlServer::new(
        &provider,
        dbgroups_manifest::Engine::Mariadb,
        "10.11",
        "db-replica-1",
        port(&recorded, "db-replica-1"),
    ))
    .expect("a server");
    let runtime = runtime();
    runtime.block_on(async {
        let pid = std::fs::read_to_string(provider.server_dir("db-main").join("run/mysqld.pid"))
            .expect("the master's pid file");
        assert!(
            std::process::Command::new("kill")
                .args(["-KILL", pid.trim()])
                .status()
                .expect("kill runs")
                .success()
        );
        // The slave notices: its IO thread retries.
        let retrying = poll(
            async || {
                replica
                    .replication(&admin)
                    .await
                    .ok()
                    .flatten()
                    .is_some_and(|s| s.reconnecting)
            },
            |yes| *yes,
        )
        .await;
        assert!(retrying, "the slave retries its master");
        let started = refreshed_apply(dir.path());
        assert!(
            started.stdout.contains("~ start db-main in mysql.default")
                && !started.stdout.contains("~ re-synchronise"),
            "{}",
            started.stdout
        );
        // Right after the start, before the slave's next retry, the plan
        // has nothing destructive to do (it may say the slave reconnects).
        let planned = dbgroups_in(dir.path(), &["plan", "--detailed-exitcode"]);
        assert_eq!(planned.code, 0, "{}\n{}", planned.stdout, planned.stderr);
        let mut on_master = mysql_conn(&recorded, "mysql.default", "db-main", None).await;
        for sql in [
            "CREATE TABLE after_restart (id INT PRIMARY KEY)",
            "INSERT INTO after_restart VALUES (1)",
        ] {
            mysql_async::prelude::Queryable::query_drop(&mut on_master, sql)
                .await
                .expect("writes");
        }
        let followed = poll(
            async || {
                replica
                    .replication(&admin)
                    .await
                    .ok()
                    .flatten()
                    .is_some_and(|s| s.io_running && s.sql_running)
            },
            |yes| *yes,
        )
        .await;
        assert!(followed, "the slave follows again by itself");
        let mut on_replica = mysql_conn(&recorded, "mysql.default", "db-replica-1", None).await;
        let rows = poll(
            async || {
                mysql_async::prelude::Queryable::query_first::<u64, _>(
                    &mut on_replica,
                    "SELECT count(*) FROM after_restart",
                )
                .await
                .ok()
                .flatten()
                .unwrap_or(0)
            },
            |rows| *rows == 1,
        )
        .await;
        assert_eq!(rows, 1, "a write after the restart reached the slave");
    });
    let after = state(dir.path());
    assert_eq!(
        after.backups.len(),
        recorded.backups.len(),
        "no copy was taken"
    );
}

//! Managed backups on real servers (issue 20): `dbgroups backup run`
//! takes them from the slave and the master does no copy work, `verify`
//! restores them into a scratch server, `keep` deletes older ones, a
//! killed run records nothing, and a full store is refused.

use mysql_async::prelude::Queryable;
use redis::AsyncCommands;

use super::*;
use dbgroups_state::{BackupRecord, Verification};

const PG_WITH_SLAVE: &str = r#"
application: shop
postgresql:
  groups:
    default:
      configuration: { version: "15" }
      backups: { managed: true, keep: 1 }
      servers:
        - server: { unique_name: pg-main }
        - server: { unique_name: pg-replica-1 }
"#;

const REDIS_WITH_SLAVE: &str = r#"
application: shop
redis:
  configuration: { version: "7.0" }
  backups: { managed: true }
  servers:
    - server: { unique_name: redis-main }
    - server: { unique_name: redis-replica-1 }
"#;

const MARIADB_WITH_SLAVE: &str = r#"
application: shop
mysql:
  configuration: { engine: mariadb, version: "10.11" }
  backups: { managed: true }
  servers:
    - server: { unique_name: db-main }
    - server: { unique_name: db-replica-1 }
"#;

fn deployed(manifest: &str) -> (tempfile::TempDir, Servers) {
    let (dir, servers) = quickstart();
    set_manifest(dir.path(), manifest);
    apply_ok(dir.path(), &[]);
    (dir, servers)
}

fn managed(state: &AppState) -> Vec<BackupRecord> {
    state
        .backups
        .iter()
        .filter(|r| r.managed.is_some())
        .cloned()
        .collect()
}

fn verification(record: &BackupRecord) -> Verification {
    record
        .managed
        .as_ref()
        .expect("managed")
        .verification
        .clone()
}

fn backup_ok(dir: &Path, args: &[&str]) -> crate::cli::Run {
    let mut all = vec!["backup"];
    all.extend_from_slice(args);
    let run = dbgroups_in(dir, &all);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    run
}

#[test]
fn postgresql_backups_come_from_the_slave_verify_are_kept_and_damage_is_found() {
    let (dir, _servers) = deployed(PG_WITH_SLAVE);
    let path = dir.path();
    let recorded = state(path);
    let admin = admin_password(&recorded, "postgresql.default");
    let master_port = port(&recorded, "pg-main");
    let runtime = runtime();
    let before = runtime.block_on(async {
        let master = pg(master_port, &password(&recorded, "postgresql.default")).await;
        master
            .batch_execute(
                "CREATE TABLE orders (id int); INSERT INTO orders SELECT generate_series(1, 250)",
            )
            .await
            .expect("data on the master");
        let replica = pg(
            port(&recorded, "pg-replica-1"),
            &password(&recorded, "postgresql.default"),
        )
        .await;
        assert_eq!(
            wait_for_rows(&replica, 250).await,
            250,
            "the slave has the rows"
        );
        checkpoints_requested(master_port, &admin).await
    });

    let first = backup_ok(path, &["run"]);
    assert!(
        first.stdout.contains("from pg-replica-1"),
        "{}",
        first.stdout
    );
    let after = runtime.block_on(checkpoints_requested(master_port, &admin));
    assert_eq!(
        before, after,
        "the master was asked for no checkpoint: no backup ran against it"
    );
    let taken = managed(&state(path));
    assert_eq!(taken.len(), 1);
    let record = &taken[0];
    assert_eq!(record.server, "pg-replica-1");
    let facts = record.managed.as_ref().expect("managed");
    assert!(!facts.from_master);
    assert!(
        facts
            .position
            .as_deref()
            .is_some_and(|p| p.starts_with("LSN ")),
        "{facts:?}"
    );
    assert_eq!(facts.summary.get("public.orders"), Some(&250));
    assert!(Path::new(&record.path).is_file());
    assert_eq!(verification(record), Verification::Unverified);
    let listed = backup_ok(path, &["list"]);
    assert!(listed.stdout.contains("NOT VERIFIED"), "{}", listed.stdout);

    let verified = backup_ok(path, &["verify", "--latest"]);
    assert!(verified.stdout.contains("verified"), "{}", verified.stdout);
    assert!(matches!(
        verification(&managed(&state(path))[0]),
        Verification::Passed { .. }
    ));
    assert!(
        processes_mentioning(&format!("verify-{}", record.id)).is_empty(),
        "the scratch server is gone"
    );

    // keep: 1 — a second verified backup replaces the first.
    backup_ok(path, &["run", "--verify"]);
    let kept = managed(&state(path));
    assert_eq!(kept.len(), 1, "{kept:?}");
    assert_ne!(kept[0].id, record.id);
    assert!(
        !Path::new(&record.path).exists(),
        "the older file is deleted"
    );
    let json = backup_ok(path, &["list", "--format", "json"]);
    let document: serde_json::Value = serde_json::from_str(&json.stdout).expect("json");
    assert_eq!(document["backups"][0]["verified"], true);

    // A damaged file fails verification, and is recorded as failed.
    backup_ok(path, &["run"]);
    let newest = managed(&state(path))
        .into_iter()
        .max_by(|a, b| a.taken_at.cmp(&b.taken_at))
        .expect("a newest");
    let mut bytes = std::fs::read(&newest.path).expect("reads");
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0xff;
    std::fs::write(&newest.path, bytes).expect("damages");
    let failed = dbgroups_in(path, &["backup", "verify", &newest.id]);
    assert_eq!(failed.code, 1, "{}\n{}", failed.stdout, failed.stderr);
    assert!(failed.stderr.contains("SHA-256"), "{}", failed.stderr);
    let judged = managed(&state(path));
    let damaged = judged.iter().find(|r| r.id == newest.id).expect("kept");
    assert!(matches!(verification(damaged), Verification::Failed { .. }));
    assert_eq!(judged.len(), 2, "the verified one stays: {judged:?}");
}

async fn redis_connection(port: u16, password: &str) -> redis::aio::MultiplexedConnection {
    redis::Client::open(format!("redis://:{password}@127.0.0.1:{port}/"))
        .expect("url")
        .get_multiplexed_async_connection()
        .await
        .expect("connects")
}

async fn rdb_saves(connection: &mut redis::aio::MultiplexedConnection) -> u64 {
    let info: String = redis::cmd("INFO")
        .arg("persistence")
        .query_async(connection)
        .await
        .expect("INFO");
    info.lines()
        .find_map(|l| l.trim().strip_prefix("rdb_saves:"))
        .and_then(|v| v.parse().ok())
        .expect("rdb_saves")
}

#[test]
fn a_redis_backup_is_a_bgsave_on_the_replica_and_none_on_the_master() {
    let (dir, _servers) = deployed(REDIS_WITH_SLAVE);
    let path = dir.path();
    let recorded = state(path);
    let secret = password(&recorded, "redis.default");
    let runtime = runtime();
    let saves_before = runtime.block_on(async {
        let mut master = redis_connection(port(&recorded, "redis-main"), &secret).await;
        for i in 0..300 {
            let _: () = master.set(format!("key:{i}"), i).await.expect("set");
        }
        let mut replica = redis_connection(port(&recorded, "redis-replica-1"), &secret).await;
        let keys = poll(
            async || {
                redis::cmd("DBSIZE")
                    .query_async::<u64>(&mut replica)
                    .await
                    .unwrap_or(0)
            },
            |n| *n == 300,
        )
        .await;
        assert_eq!(keys, 300, "the replica has the keys");
        rdb_saves(&mut master).await
    });
    let run = backup_ok(path, &["run", "--verify"]);
    assert!(
        run.stdout.contains("from redis-replica-1"),
        "{}",
        run.stdout
    );
    let saves_after = runtime.block_on(async {
        let mut master = redis_connection(port(&recorded, "redis-main"), &secret).await;
        rdb_saves(&mut master).await
    });
    assert_eq!(saves_before, saves_after, "no BGSAVE on the master");
    let taken = managed(&state(path));
    assert_eq!(taken.len(), 1);
    assert_eq!(taken[0].server, "redis-replica-1");
    let facts = taken[0].managed.as_ref().expect("managed");
    assert_eq!(facts.summary.get("db0"), Some(&300));
    assert!(
        matches!(facts.verification, Verification::Passed { .. }),
        "{facts:?}"
    );
}

async fn com_flush(state: &AppState, server: &str) -> u64 {
    let mut conn = mysql_conn(state, "mysql.default", server, None).await;
    let row: Option<(String, u64)> = conn
        .query_first("SHOW GLOBAL STATUS LIKE 'Com_flush'")
        .await
        .expect("status");
    row.expect("Com_flush").1
}

#[test]
fn a_mariadb_backup_is_dumped_from_the_replica_and_the_master_is_not_flushed() {
    let (dir, _servers) = deployed(MARIADB_WITH_SLAVE);
    let path = dir.path();
    let recorded = state(path);
    let runtime = runtime();
    let flushes_before = runtime.block_on(async {
        let mut master = mysql_conn(&recorded, "mysql.default", "db-main", None).await;
        master
            .query_drop("CREATE TABLE orders (id INT PRIMARY KEY); INSERT INTO orders SELECT seq FROM seq_1_to_400")
            .await
            .expect("data on the master");
        let mut replica = mysql_conn(&recorded, "mysql.default", "db-replica-1", None).await;
        let rows = poll(
            async || replica.query_first::<i64, _>("SELECT COUNT(*) FROM orders").await.ok().flatten(),
            |n| *n == Some(400),
        )
        .await;
        assert_eq!(rows, Some(400), "the replica has the rows");
        com_flush(&recorded, "db-main").await
    });
    let run = backup_ok(path, &["run", "--verify"]);
    assert!(run.stdout.contains("from db-replica-1"), "{}", run.stdout);
    let flushes_after = runtime.block_on(com_flush(&recorded, "db-main"));
    assert_eq!(
        flushes_before, flushes_after,
        "the dump's FLUSH TABLES WITH READ LOCK ran on the replica, not the master"
    );
    let taken = managed(&state(path));
    assert_eq!(taken.len(), 1);
    assert_eq!(taken[0].server, "db-replica-1");
    let facts = taken[0].managed.as_ref().expect("managed");
    assert_eq!(facts.summary.get("orders"), Some(&400));
    assert!(
        facts
            .position
            .as_deref()
            .is_some_and(|p| p.starts_with("GTID")),
        "{facts:?}"
    );
    assert!(
        matches!(facts.verification, Verification::Passed { .. }),
        "{facts:?}"
    );
}

#[test]
fn a_killed_backup_records_nothing_and_the_next_run_succeeds() {
    let (dir, _servers) = deployed(PG_WITH_SLAVE);
    let path = dir.path();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_dbgroups"))
        .args(["backup", "run"])
        .current_dir(path)
        .env("NO_COLOR", "1")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("starts");
    let partial = path.join(".dbgroups/backups/managed/shop/postgresql.default/.partial");
    let seen = crate::test_hosts::wait_for(crate::test_hosts::WAIT, || partial.exists());
    // SIGKILL: no handler runs, as when a machine loses power.
    let _ = child.kill();
    let _ = child.wait();
    assert!(seen, "the backup started");
    assert!(
        managed(&state(path)).is_empty(),
        "nothing recorded by a killed run"
    );
    backup_ok(path, &["run", "--verify"]);
    let taken = managed(&state(path));
    assert_eq!(taken.len(), 1, "{taken:?}");
    assert!(matches!(
        verification(&taken[0]),
        Verification::Passed { .. }
    ));
    assert!(
        !partial.exists(),
        "the interrupted run's leftovers are gone"
    );
    let files: Vec<String> = std::fs::read_dir(partial.parent().expect("group dir"))
        .expect("lists")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(files.len(), 2, "one backup and its checksum: {files:?}");
}

/// A tmpfs of 1 MiB as the store: the backup is refused for room, with
/// what it needs, and nothing is recorded. Needs root (mount).
#[test]
#[allow(clippy::print_stderr)]
fn a_full_store_is_a_clear_error_and_records_nothing() {
    if crate::test_hosts::skip_reason().is_some() {
        eprintln!("skipped: mounting a small tmpfs needs root");
        return;
    }
    let (dir, _servers) = deployed(PG_WITH_SLAVE);
    let path = dir.path();
    let store = tempfile::tempdir().expect("store dir");
    let mounted = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=1m,mode=0755", "tmpfs"])
        .arg(store.path())
        .status()
        .expect("mount runs");
    assert!(mounted.success(), "tmpfs mounted");
    struct Unmount(PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = std::process::Command::new("umount").arg(&self.0).status();
        }
    }
    let _unmount = Unmount(store.path().to_path_buf());
    let manifest = PG_WITH_SLAVE.replace(
        "backups: { managed: true, keep: 1 }",
        &format!(
            "backups: {{ managed: true, store: {} }}",
            store.path().display()
        ),
    );
    set_manifest(path, &manifest);
    let run = dbgroups_in(path, &["backup", "run"]);
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    assert!(
        run.stderr.contains("free"),
        "says there is no room: {}",
        run.stderr
    );
    assert!(managed(&state(path)).is_empty(), "nothing recorded");
    assert!(
        !store
            .path()
            .join("shop/postgresql.default/.partial")
            .exists(),
        "no partial backup left"
    );
}

//! `import_from: { group, backup: latest }` on real servers (issue 20): the
//! new group holds the data of the managed backup — not of its source as it
//! is now, which has changed since — its own accounts work, nothing of the
//! scratch server is left, and a re-plan is empty.

use mysql_async::prelude::Queryable;
use redis::AsyncCommands;

use super::*;

fn backup_verified(dir: &Path, group: &str) -> String {
    let run = dbgroups_in(dir, &["backup", "run", "--group", group, "--verify"]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    let recorded = state(dir);
    let record = recorded
        .backups
        .iter()
        .rfind(|r| r.group == group)
        .expect("a recorded backup");
    record.id.clone()
}

/// Applies `manifest` adding `group`; the plan fetches backup `id` and
/// takes no new backup of the source.
fn import_applied(dir: &Path, manifest: &str, group: &str, id: &str) {
    set_manifest(dir, manifest);
    let applied = apply_ok(dir, &["--add-group", group]);
    assert!(
        applied.stdout.contains(&format!("fetch:{id}")),
        "{}",
        applied.stdout
    );
    assert!(
        !applied.stdout.contains("start  backup:") && !applied.stdout.contains("start  dump:"),
        "no new backup of the source:\n{}",
        applied.stdout
    );
    converged(dir, "manifest.yml");
    let leftovers: Vec<String> = std::fs::read_dir(dir.join(".dbgroups/servers"))
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|name| name.starts_with("import-"))
                .collect()
        })
        .unwrap_or_default();
    assert!(leftovers.is_empty(), "scratch servers left: {leftovers:?}");
}

const PG: &str = r#"
application: shop
postgresql:
  groups:
    default:
      configuration: { version: "15" }
      backups: { managed: true }
      servers:
        - server: { unique_name: pg-main }
"#;

const PG_ARCHIVE: &str = r#"
    archive:
      configuration: { version: "15" }
      import_from: { group: default, backup: latest }
      servers:
        - server: { unique_name: pg-archive }
"#;

#[test]
fn a_postgresql_import_from_the_latest_managed_backup_holds_the_backups_rows() {
    let (dir, _servers) = quickstart();
    let path = dir.path();
    set_manifest(path, PG);
    apply_ok(path, &[]);
    let recorded = state(path);
    let source_port = port(&recorded, "pg-main");
    let source_password = password(&recorded, "postgresql.default");
    let runtime = runtime();
    runtime.block_on(async {
        pg(source_port, &source_password)
            .await
            .batch_execute("CREATE TABLE orders (id int PRIMARY KEY); INSERT INTO orders SELECT generate_series(1, 300)")
            .await
            .expect("rows");
    });
    let id = backup_verified(path, "postgresql.default");
    runtime.block_on(async {
        pg(source_port, &source_password)
            .await
            .batch_execute("INSERT INTO orders SELECT generate_series(301, 500)")
            .await
            .expect("rows after the backup");
    });
    import_applied(
        path,
        &format!("{PG}{PG_ARCHIVE}"),
        "postgresql.archive",
        &id,
    );
    let recorded = state(path);
    let rows: i64 = runtime.block_on(async {
        pg(
            port(&recorded, "pg-archive"),
            &password(&recorded, "postgresql.archive"),
        )
        .await
        .query_one("SELECT count(*) FROM orders", &[])
        .await
        .expect("the archive's own account reads the imported table")
        .get(0)
    });
    assert_eq!(rows, 300, "the backup's rows, not the source's 500");
}

const MARIADB: &str = r#"
application: shop
mysql:
  groups:
    default:
      configuration: { engine: mariadb, version: "10.11" }
      backups: { managed: true }
      servers:
        - server: { unique_name: db-main }
"#;

const MARIADB_ARCHIVE: &str = r#"
    archive:
      configuration: { engine: mariadb, version: "10.11" }
      import_from: { group: default, backup: latest }
      servers:
        - server: { unique_name: db-archive }
"#;

#[test]
fn a_mariadb_import_from_the_latest_managed_backup_holds_the_backups_rows() {
    let (dir, _servers) = quickstart();
    let path = dir.path();
    set_manifest(path, MARIADB);
    apply_ok(path, &[]);
    let runtime = runtime();
    let recorded = state(path);
    runtime.block_on(async {
        mysql_conn(&recorded, "mysql.default", "db-main", None)
            .await
            .query_drop("CREATE TABLE orders (id INT PRIMARY KEY); INSERT INTO orders SELECT seq FROM seq_1_to_300")
            .await
            .expect("rows");
    });
    let id = backup_verified(path, "mysql.default");
    runtime.block_on(async {
        mysql_conn(&recorded, "mysql.default", "db-main", None)
            .await
            .query_drop("INSERT INTO orders SELECT seq FROM seq_301_to_500")
            .await
            .expect("rows after the backup");
    });
    import_applied(
        path,
        &format!("{MARIADB}{MARIADB_ARCHIVE}"),
        "mysql.archive",
        &id,
    );
    let recorded = state(path);
    let rows: Option<i64> = runtime.block_on(async {
        mysql_conn(&recorded, "mysql.archive", "db-archive", None)
            .await
            .query_first("SELECT COUNT(*) FROM orders")
            .await
            .expect("the archive's own account reads the imported table")
    });
    assert_eq!(rows, Some(300), "the backup's rows, not the source's 500");
}

const REDIS: &str = r#"
application: shop
redis:
  groups:
    default:
      configuration: { version: "7.0" }
      backups: { managed: true }
      servers:
        - server: { unique_name: redis-main }
"#;

const REDIS_ARCHIVE: &str = r#"
    archive:
      configuration: { version: "7.0" }
      import_from: { group: default, backup: latest }
      servers:
        - server: { unique_name: redis-archive }
"#;

#[test]
fn a_redis_import_from_the_latest_managed_backup_holds_the_backups_keys() {
    let (dir, _servers) = quickstart();
    let path = dir.path();
    set_manifest(path, REDIS);
    apply_ok(path, &[]);
    let runtime = runtime();
    let recorded = state(path);
    let connect = |state: AppState, group: &'static str, server: &'static str| async move {
        redis::Client::open(format!(
            "redis://default:{}@127.0.0.1:{}/0",
            password(&state, group),
            port(&state, server)
        ))
        .expect("url")
        .get_multiplexed_async_connection()
        .await
        .expect("connects")
    };
    runtime.block_on(async {
        let mut source = connect(recorded.clone(), "redis.default", "redis-main").await;
        for i in 0..300 {
            let _: () = source.set(format!("key:{i}"), i).await.expect("set");
        }
    });
    let id = backup_verified(path, "redis.default");
    runtime.block_on(async {
        let mut source = connect(recorded.clone(), "redis.default", "redis-main").await;
        for i in 300..500 {
            let _: () = source.set(format!("key:{i}"), i).await.expect("set");
        }
    });
    import_applied(
        path,
        &format!("{REDIS}{REDIS_ARCHIVE}"),
        "redis.archive",
        &id,
    );
    let keys: u64 = runtime.block_on(async {
        let mut archive = connect(state(path), "redis.archive", "redis-archive").await;
        redis::cmd("DBSIZE")
            .query_async(&mut archive)
            .await
            .expect("the archive's own password works")
    });
    assert_eq!(keys, 300, "the backup's keys, not the source's 500");
}

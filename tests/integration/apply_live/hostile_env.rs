//! dbgroups run from a caller whose environment is full of database client
//! settings, as a CI job or a developer's shell often is: every variable
//! and dotfile below points the standard clients at the wrong user,
//! password, host, port, service or TLS mode. The product builds every
//! process's environment itself (crates/engines/src/process.rs), so a
//! scale up, replication between groups, `status`, a refreshed `plan` and
//! `destroy` all work as if none of it were there.

use std::path::Path;

use super::{
    TWO_GROUPS, TWO_MARIADB_GROUPS, TWO_REDIS_GROUPS, assert_no_server_left, mysql_conn, password,
    pg, poll, port, quickstart, runtime, scaled_and_replicating, set_manifest, state,
};
use crate::cli::{Run, dbgroups_with_env};

/// A caller's home with a `.pgpass`, `.my.cnf`, `.pg_service.conf` and
/// `.mongoshrc.js` that all point elsewhere, and the variables that libpq,
/// the MariaDB client and redis-cli read.
struct HostileCaller {
    home: tempfile::TempDir,
}

impl HostileCaller {
    fn new() -> Self {
        let home = tempfile::tempdir().expect("temp dir");
        let write = |name: &str, text: &str| {
            std::fs::write(home.path().join(name), text).expect("write dotfile");
            use std::os::unix::fs::PermissionsExt;
            // libpq ignores a .pgpass that others can read; 0600 makes it
            // one it would use.
            std::fs::set_permissions(
                home.path().join(name),
                std::fs::Permissions::from_mode(0o600),
            )
            .expect("chmod");
        };
        write(".pgpass", "*:*:*:*:not-the-password\n");
        write(
            ".pg_service.conf",
            "[elsewhere]\nhost=198.18.0.9\nport=1\nuser=nobody\npassword=wrong\nsslmode=require\n",
        );
        write(
            ".my.cnf",
            "[client]\nhost=198.18.0.9\nport=1\nuser=nobody\npassword=wrong\nprotocol=tcp\n\n[mysqldump]\nuser=nobody\npassword=wrong\n",
        );
        write(
            ".mongoshrc.js",
            "db = connect('mongodb://nobody:wrong@198.18.0.9:1/admin');\n",
        );
        Self { home }
    }

    fn env(&self) -> Vec<(String, String)> {
        let home = self.home.path().display().to_string();
        [
            ("HOME", home.as_str()),
            ("PGPASSWORD", "not-the-password"),
            ("PGUSER", "nobody"),
            ("PGDATABASE", "nowhere"),
            ("PGSSLMODE", "require"),
            ("PGSERVICE", "elsewhere"),
            ("PGOPTIONS", "-c default_transaction_read_only=on"),
            ("PGPASSFILE", &format!("{home}/.pgpass")),
            ("MYSQL_PWD", "wrong"),
            ("MYSQL_HOST", "198.18.0.9"),
            ("MYSQL_TCP_PORT", "1"),
            ("REDISCLI_AUTH", "wrong"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
    }

    fn run(&self, dir: &Path, args: &[&str]) -> Run {
        dbgroups_with_env(dir, args, &self.env())
    }

    fn ok(&self, dir: &Path, args: &[&str]) -> Run {
        let run = self.run(dir, args);
        assert_eq!(
            run.code, 0,
            "dbgroups {args:?} under a hostile environment:\n{}\n{}",
            run.stdout, run.stderr
        );
        run
    }

    fn apply(&self, dir: &Path) -> Run {
        self.ok(dir, &["apply", "--auto-approve", "--refresh=false"])
    }

    /// `status`, a refreshed plan with nothing to do, and `destroy`, all
    /// under this environment; `status` must show every replica of
    /// `replicas` healthy by `healthy` (the engine's own word for it).
    fn status_plan_destroy(&self, dir: &Path, replicas: &[&str], healthy: &str) {
        let status = self.ok(dir, &["status"]);
        for replica in replicas {
            let row = status
                .stdout
                .lines()
                .find(|line| line.starts_with(replica))
                .unwrap_or_else(|| panic!("status shows {replica}:\n{}", status.stdout));
            assert!(row.contains(healthy), "{replica} is healthy: {row}");
        }
        let plan = self.run(dir, &["plan", "--detailed-exitcode"]);
        assert_eq!(
            plan.code, 0,
            "a refreshed plan has nothing to do:\n{}\n{}",
            plan.stdout, plan.stderr
        );
        self.ok(dir, &["destroy", "--app", "shop", "--auto-approve"]);
        assert_no_server_left(&dir.join(".dbgroups/servers"));
    }
}

#[test]
fn a_postgresql_scale_up_and_replication_ignore_the_callers_client_settings() {
    let caller = HostileCaller::new();
    let (dir, _servers) = quickstart();
    set_manifest(dir.path(), TWO_GROUPS);
    caller.apply(dir.path());
    let recorded = state(dir.path());
    runtime().block_on(async {
        let master = pg(
            port(&recorded, "pg-main"),
            &password(&recorded, "postgresql.default"),
        )
        .await;
        master
            .batch_execute(
                "CREATE TABLE orders (id int); INSERT INTO orders SELECT generate_series(1, 100)",
            )
            .await
            .expect("writes");
    });
    set_manifest(
        dir.path(),
        &scaled_and_replicating(TWO_GROUPS, "pg-main", "pg-replica-1"),
    );
    caller.apply(dir.path());
    let recorded = state(dir.path());
    runtime().block_on(async {
        let password = password(&recorded, "postgresql.default");
        for server in ["pg-replica-1", "pg-report"] {
            let client = pg(port(&recorded, server), &password).await;
            let rows = super::wait_for_rows(&client, 100).await;
            assert_eq!(rows, 100, "{server} holds the master's rows");
        }
    });
    caller.status_plan_destroy(dir.path(), &["pg-replica-1", "pg-report"], "streaming");
}

#[test]
fn a_mariadb_scale_up_and_replication_ignore_the_callers_client_settings() {
    use mysql_async::prelude::Queryable;

    let caller = HostileCaller::new();
    let (dir, _servers) = quickstart();
    set_manifest(dir.path(), TWO_MARIADB_GROUPS);
    caller.apply(dir.path());
    let recorded = state(dir.path());
    runtime().block_on(async {
        let mut master = mysql_conn(&recorded, "mysql.default", "db-main", None).await;
        master
            .query_drop("CREATE TABLE orders (id INT PRIMARY KEY)")
            .await
            .expect("creates");
        master
            .query_drop("INSERT INTO orders SELECT seq FROM seq_1_to_100")
            .await
            .expect("writes");
    });
    set_manifest(
        dir.path(),
        &scaled_and_replicating(TWO_MARIADB_GROUPS, "db-main", "db-replica-1"),
    );
    caller.apply(dir.path());
    let recorded = state(dir.path());
    runtime().block_on(async {
        for (server, group) in [
            ("db-replica-1", "mysql.default"),
            ("db-report", "mysql.reporting"),
        ] {
            let mut conn = mysql_conn(&recorded, group, server, None).await;
            let rows = poll(
                async || {
                    conn.query_first::<i64, _>("SELECT COUNT(*) FROM orders")
                        .await
                        .ok()
                        .flatten()
                },
                |count| *count == Some(100),
            )
            .await;
            assert_eq!(rows, Some(100), "{server} holds the master's rows");
        }
    });
    caller.status_plan_destroy(
        dir.path(),
        &["db-replica-1", "db-report"],
        "SQL thread running",
    );
}

#[test]
fn a_redis_scale_up_and_replication_ignore_the_callers_client_settings() {
    use redis::AsyncCommands;

    let caller = HostileCaller::new();
    let (dir, _servers) = quickstart();
    set_manifest(dir.path(), TWO_REDIS_GROUPS);
    caller.apply(dir.path());
    let recorded = state(dir.path());
    let url = |state: &dbgroups_state::AppState, group: &str, server: &str| {
        format!(
            "redis://default:{}@127.0.0.1:{}/0",
            password(state, group),
            port(state, server)
        )
    };
    runtime().block_on(async {
        let client =
            redis::Client::open(url(&recorded, "redis.default", "redis-main")).expect("url");
        let mut master = client
            .get_multiplexed_async_connection()
            .await
            .expect("connects");
        let _: () = master.set("cart:1", "3 items").await.expect("writes");
    });
    set_manifest(
        dir.path(),
        &scaled_and_replicating(TWO_REDIS_GROUPS, "redis-main", "redis-replica-1"),
    );
    caller.apply(dir.path());
    let recorded = state(dir.path());
    runtime().block_on(async {
        for (server, group) in [
            ("redis-replica-1", "redis.default"),
            ("redis-report", "redis.reporting"),
        ] {
            let client = redis::Client::open(url(&recorded, group, server)).expect("url");
            let mut replica = client
                .get_multiplexed_async_connection()
                .await
                .expect("connects");
            let seen: Option<String> = poll(
                async || replica.get("cart:1").await.ok().flatten(),
                |seen: &Option<String>| seen.is_some(),
            )
            .await;
            assert_eq!(seen.as_deref(), Some("3 items"), "{server} holds the key");
        }
    });
    caller.status_plan_destroy(dir.path(), &["redis-replica-1", "redis-report"], "link up");
}

/// MongoDB's tools (mongodump, mongorestore) and `mongod` under the same
/// caller. Runs only where MongoDB is installed (build.rs looks); elsewhere
/// it is reported as ignored, never as passed.
#[test]
#[cfg_attr(
    not(mongod_available),
    ignore = "mongod, mongodump and mongorestore are not installed (MongoDB is not packaged by Debian; install mongodb-org and rebuild)"
)]
fn a_mongodb_scale_up_and_import_ignore_the_callers_client_settings() {
    let caller = HostileCaller::new();
    let (dir, _servers) = quickstart();
    let manifest = |servers: &[&str], import: bool| {
        let mut text = String::from(
            "application: shop\nmongodb:\n  groups:\n    default:\n      configuration: { version: \"7.0\" }\n      backups: { managed: true }\n      servers:\n",
        );
        for server in servers {
            text.push_str(&format!("        - server: {{ unique_name: {server} }}\n"));
        }
        if import {
            text.push_str("    copy:\n      configuration: { version: \"7.0\" }\n      import_from: default\n      servers:\n        - server: { unique_name: mongo-copy }\n");
        }
        text
    };
    set_manifest(dir.path(), &manifest(&["mongo-a"], false));
    caller.apply(dir.path());
    set_manifest(
        dir.path(),
        &manifest(&["mongo-a", "mongo-b", "mongo-c"], true),
    );
    caller.ok(
        dir.path(),
        &[
            "apply",
            "--auto-approve",
            "--refresh=false",
            "--add-group",
            "mongodb.copy",
        ],
    );
    let recorded = state(dir.path());
    assert_eq!(recorded.groups.len(), 2, "both groups were built");
    caller.status_plan_destroy(dir.path(), &["mongo-b", "mongo-c"], "SECONDARY");
}

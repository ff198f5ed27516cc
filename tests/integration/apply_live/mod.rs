//! `dbgroups apply` end to end on real PostgreSQL and Redis servers, each
//! test asserting on data read back through a client. This module holds the
//! helpers; `basics`, `changes` and `faults` hold the tests.

mod backups;
mod basics;
mod changes;
mod contention;
mod copy_source;
pub(crate) mod crashes;
mod damaged;
mod faults;
mod hostile_env;
mod managed_import;
mod mariadb;
mod mongodb;
mod planner;
mod ports;
mod resync_load;
mod security;
mod slots;
mod status_events;
mod writes;

use crate::cli::dbgroups_in;
use crate::common::repo_path;
pub(super) use crate::common::runtime;
use dbgroups_engines::{LocalHost, PostgresServer, RedisServer};
use dbgroups_state::{AppState, DirectoryStore, StateStore};
use redis::AsyncCommands;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// Stops every server the state records when the test ends, pass or fail.
pub(super) struct Servers {
    pub(super) state_dir: PathBuf,
}

impl Drop for Servers {
    fn drop(&mut self) {
        stop_all(&self.state_dir, "shop");
    }
}

/// Stops every server `application`'s state records, whatever its engine.
fn stop_all(state_dir: &Path, application: &str) {
    let Ok(Some(state)) = DirectoryStore::new(state_dir).load(application) else {
        return;
    };
    if let Some(deployment) = state_dir.parent() {
        crate::transcripts::record_deployment(deployment, &all_secrets(&state));
    }
    let Ok(provider) = LocalHost::prepare(state_dir).map(|(p, _)| p.into_ref()) else {
        return;
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    for group in &state.groups {
        let secret = |pick: fn(&dbgroups_state::Credentials) -> Option<&dbgroups_state::Secret>| {
            state
                .credentials
                .get(&group.address())
                .and_then(pick)
                .map(|p| p.expose().to_string())
                .unwrap_or_default()
        };
        let (password, admin) = (
            secret(|c| c.password.as_ref()),
            secret(|c| c.admin_password.as_ref()),
        );
        // Members, and servers an interrupted apply left pending.
        let pending = state
            .journal
            .iter()
            .flat_map(|j| j.pending.values())
            .filter(|p| p.group == group.address())
            .map(|p| &p.server);
        for server in group.servers.iter().chain(pending) {
            let (name, port) = (server.unique_name.as_str(), server.port.unwrap_or_default());
            match group.db_type {
                dbgroups_manifest::DbType::Postgresql => {
                    if let Ok(pg) = crate::common::block_on(PostgresServer::new(
                        &provider,
                        name,
                        &group.version,
                        port,
                    )) {
                        pg.stop_now();
                    }
                }
                dbgroups_manifest::DbType::Mysql => {
                    if let Ok(mysql) = crate::common::block_on(dbgroups_engines::MysqlServer::new(
                        &provider,
                        group.engine,
                        &group.version,
                        name,
                        port,
                    )) {
                        let _ = runtime.block_on(mysql.ensure_stopped(&admin));
                    }
                }
                dbgroups_manifest::DbType::Mongodb => {
                    if let Ok(mongo) = crate::common::block_on(dbgroups_engines::MongoServer::new(
                        &provider,
                        name,
                        &group.version,
                        port,
                    )) {
                        let _ = runtime.block_on(mongo.ensure_stopped(&admin));
                    }
                }
                dbgroups_manifest::DbType::Redis => {
                    if let Ok(redis) =
                        crate::common::block_on(RedisServer::new(&provider, name, port))
                    {
                        let _ = runtime.block_on(redis.ensure_stopped(&password));
                    }
                }
            }
        }
    }
}

/// `dbgroups apply --auto-approve --refresh=false` with `extra` arguments in
/// `dir`, which must succeed.
pub(super) fn apply_ok(dir: &Path, extra: &[&str]) -> crate::cli::Run {
    let mut args = vec!["apply", "--auto-approve", "--refresh=false"];
    args.extend_from_slice(extra);
    let applied = dbgroups_in(dir, &args);
    assert_eq!(applied.code, 0, "{}\n{}", applied.stdout, applied.stderr);
    applied
}

/// A refreshed plan of `manifest` in `dir` has nothing left to do.
pub(super) fn converged(dir: &Path, manifest: &str) {
    let replan = dbgroups_in(dir, &["plan", "-f", manifest, "--detailed-exitcode"]);
    assert_eq!(
        replan.code, 0,
        "converged:\n{}\n{}",
        replan.stdout, replan.stderr
    );
}

pub(super) fn quickstart() -> (tempfile::TempDir, Servers) {
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

pub(super) fn state(dir: &Path) -> AppState {
    DirectoryStore::new(dir.join(".dbgroups"))
        .load("shop")
        .expect("loads")
        .expect("recorded")
}

/// The last state of a destroyed application: its record is closed (no
/// longer loaded, so the same manifest makes a new application) and kept
/// beside the others as `<app>.json.destroyed`.
pub(super) fn destroyed_state(dir: &Path) -> AppState {
    let store = DirectoryStore::new(dir.join(".dbgroups"));
    assert!(
        store.load("shop").expect("loads").is_none(),
        "a destroyed application has no state"
    );
    let text = std::fs::read(dir.join(".dbgroups/apps/shop.json.destroyed"))
        .expect("the destroyed record is kept");
    serde_json::from_slice(&text).expect("a state")
}

pub(super) fn port(state: &AppState, server: &str) -> u16 {
    state
        .server(server)
        .and_then(|(_, s)| s.port)
        .expect("a recorded port")
}

pub(super) fn password(state: &AppState, group: &str) -> String {
    state.credentials[group]
        .password
        .as_ref()
        .expect("generated")
        .expose()
        .to_string()
}

pub(super) fn all_secrets(state: &AppState) -> Vec<String> {
    state
        .credentials
        .values()
        .flat_map(|c| [&c.password, &c.admin_password, &c.replication_password])
        .flatten()
        .map(|s| s.expose().to_string())
        .collect()
}

pub(super) async fn pg(port: u16, password: &str) -> tokio_postgres::Client {
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

/// The application's connection to a MariaDB server, as its variables
/// describe it, to `database` or else the group's own.
pub(super) async fn mysql_conn(
    state: &AppState,
    group: &str,
    server: &str,
    database: Option<&str>,
) -> mysql_async::Conn {
    let credentials = &state.credentials[group];
    mysql_async::Conn::new(
        mysql_async::OptsBuilder::default()
            .ip_or_hostname("127.0.0.1")
            .tcp_port(port(state, server))
            .user(Some(credentials.username.clone()))
            .pass(Some(password(state, group)))
            .db_name(Some(database.unwrap_or(&credentials.database).to_string())),
    )
    .await
    .expect("the application connects")
}

/// Reads with `read` every 100 ms until `done` holds for what it read
/// (replication is asynchronous), for at most a minute; returns the last
/// reading, for the caller's assertion to show. The budget is generous
/// because a loaded CI machine is slow; a condition that holds returns at
/// once.
pub(super) async fn poll<T>(mut read: impl AsyncFnMut() -> T, done: impl Fn(&T) -> bool) -> T {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let mut seen = read().await;
    while !done(&seen) && std::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        seen = read().await;
    }
    seen
}

pub(super) async fn wait_for_rows(client: &tokio_postgres::Client, expected: i64) -> i64 {
    poll(
        async || {
            client
                .query_one("SELECT count(*) FROM orders", &[])
                .await
                .map(|r| r.get(0))
                .unwrap_or(-1)
        },
        |count| *count == expected,
    )
    .await
}

/// Waits until the MariaDB server `server` of `group` in the state under
/// `state_dir` has no replication configured (SHOW SLAVE STATUS is empty),
/// failing the test after a minute: the positive condition a "no longer
/// follows" check waits on instead of a fixed sleep.
pub(super) async fn mariadb_follows_nothing(
    state_dir: &Path,
    state: &AppState,
    group: &str,
    server: &str,
) {
    let provider = LocalHost::inspect(state_dir).expect("provider").into_ref();
    let admin = state.credentials[group]
        .admin_password
        .as_ref()
        .expect("an admin password")
        .expose()
        .to_string();
    let mysql = dbgroups_engines::MysqlServer::new(
        &provider,
        dbgroups_manifest::Engine::Mariadb,
        "10.11",
        server,
        port(state, server),
    )
    .await
    .expect("MariaDB is installed");
    let _ = crate::common::eventually(
        &format!("{server} has no replication configured"),
        async || mysql.replication(&admin).await.map_err(|e| e.to_string()),
        |status| matches!(status, Ok(None)),
    )
    .await;
}

/// Processes whose command line mentions `needle`.
pub(crate) fn processes_mentioning(needle: &str) -> Vec<String> {
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

/// After a destroy: no process runs from `servers_dir` and no server's
/// directory is left in it.
pub(super) fn assert_no_server_left(servers_dir: &Path) {
    assert!(
        processes_mentioning(&servers_dir.display().to_string()).is_empty(),
        "a server process is left"
    );
    let left: Vec<_> = std::fs::read_dir(servers_dir)
        .expect("readable")
        .flatten()
        .map(|e| e.path())
        .collect();
    assert!(left.is_empty(), "data directories are left: {left:?}");
}

/// Rewrites the scratch manifest.
pub(super) fn set_manifest(dir: &Path, text: &str) {
    std::fs::write(dir.join("manifest.yml"), text).expect("write manifest");
}

pub(super) const TWO_GROUPS: &str = r#"
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

/// A MariaDB group `default` (managed backups) holding `db-main`, and a
/// single-server group `reporting`.
pub(super) const TWO_MARIADB_GROUPS: &str = r#"
application: shop
mysql:
  groups:
    default:
      configuration: { engine: mariadb, version: "10.11" }
      backups: { managed: true }
      servers:
        - server: { unique_name: db-main }
    reporting:
      configuration: { engine: mariadb, version: "10.11" }
      servers:
        - server: { unique_name: db-report }
"#;

/// A Redis group `default` (managed backups) holding `redis-main`, and a
/// single-server group `reporting`.
pub(super) const TWO_REDIS_GROUPS: &str = r#"
application: shop
redis:
  groups:
    default:
      configuration: { version: "7.0" }
      backups: { managed: true }
      servers:
        - server: { unique_name: redis-main }
    reporting:
      configuration: { version: "7.0" }
      servers:
        - server: { unique_name: redis-report }
"#;

/// One of the two-group manifests above, changed the way issue 6's tests
/// change it: `default` grows by `slave` after `master`, and `reporting`
/// replicates from `default`.
pub(super) fn scaled_and_replicating(manifest: &str, master: &str, slave: &str) -> String {
    let scaled = manifest.replace(
        &format!("        - server: {{ unique_name: {master} }}\n"),
        &format!(
            "        - server: {{ unique_name: {master} }}\n        - server: {{ unique_name: {slave} }}\n"
        ),
    );
    let grown = scaled.replace(
        "    reporting:\n",
        "    reporting:\n      replicate_from: default\n",
    );
    assert!(
        grown != scaled && scaled != manifest,
        "{master} and a reporting group are declared"
    );
    grown
}

/// A Redis group of a master and one slave.
pub(super) const REDIS_PAIR: &str = "application: shop\nredis:\n  configuration: { version: \"7.0\" }\n  servers:\n    - server: { unique_name: redis-main }\n    - server: { unique_name: redis-replica-1 }\n";

/// A connection to a Redis server of `redis.default` as its application.
pub(super) async fn redis_client(
    state: &AppState,
    server: &str,
) -> redis::aio::MultiplexedConnection {
    redis::Client::open(format!(
        "redis://default:{}@127.0.0.1:{}/0",
        password(state, "redis.default"),
        port(state, server)
    ))
    .expect("url")
    .get_multiplexed_async_connection()
    .await
    .expect("connects")
}

/// A connection to a PostgreSQL server as its superuser.
pub(super) async fn pg_superuser(port: u16, admin: &str) -> tokio_postgres::Client {
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
}

pub(super) async fn pg_start_time(port: u16, admin: &str) -> std::time::SystemTime {
    pg_superuser(port, admin)
        .await
        .query_one("SELECT pg_postmaster_start_time()", &[])
        .await
        .expect("reads")
        .get(0)
}

/// Stops the analytics application's servers too.
pub(super) struct AnalyticsServers {
    pub(super) state_dir: PathBuf,
}

impl Drop for AnalyticsServers {
    fn drop(&mut self) {
        stop_all(&self.state_dir, "analytics");
    }
}

/// A tmpfs mounted over a directory for the test's lifetime.
pub(super) struct SmallFilesystem(PathBuf);

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

/// Starts `dbgroups apply` in `dir` and reads its progress lines until one
/// contains `marker`. Returns the running child, the lines read, and the
/// rest of its stderr.
pub(crate) fn apply_until(
    dir: &Path,
    marker: &str,
) -> (
    std::process::Child,
    Vec<String>,
    std::io::Lines<std::io::BufReader<std::process::ChildStderr>>,
) {
    use std::io::BufRead;
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_dbgroups"))
        .args(["apply", "--auto-approve", "--refresh=false"])
        .current_dir(dir)
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
        let found = line.contains(marker);
        seen.push(line);
        if found {
            break;
        }
    }
    crate::transcripts::record_run(&["apply", "(until", marker, ")"], "", &seen.join("\n"));
    assert!(
        seen.iter().any(|l| l.contains(marker)),
        "never reached {marker}:\n{}",
        seen.join("\n")
    );
    (child, seen, lines)
}

/// The recorded admin password of `group`.
pub(super) fn admin_password(state: &AppState, group: &str) -> String {
    state.credentials[group]
        .admin_password
        .as_ref()
        .expect("an admin password")
        .expose()
        .to_string()
}

/// Checkpoints requested of the master: pg_basebackup against it asks for
/// one (`--checkpoint=fast`); against its standby, the standby makes a
/// restartpoint and the master is not asked.
pub(super) async fn checkpoints_requested(port: u16, admin: &str) -> i64 {
    let (client, connection) = tokio_postgres::Config::new()
        .host("127.0.0.1")
        .port(port)
        .user("postgres")
        .password(admin)
        .dbname("postgres")
        .connect(tokio_postgres::NoTls)
        .await
        .expect("the superuser connects");
    tokio::spawn(connection);
    client
        .query_one("SELECT checkpoints_req FROM pg_stat_bgwriter", &[])
        .await
        .expect("reads")
        .get(0)
}

//! `status` as a script and a person read it, and `apply --json` as a
//! machine reads it, on real servers.

use dbgroups_engines::{LocalHost, MysqlServer, PostgresServer, free_port};
use dbgroups_state::{DirectoryStore, PendingServer, StateStore};

use super::{Servers, apply_ok, quickstart, set_manifest, state};
use crate::cli::{Run, dbgroups_in};

/// The lines of `status` after its header, as (server, the rest).
fn rows(run: &Run) -> Vec<(String, String)> {
    run.stdout
        .lines()
        .skip(1)
        .map(|line| {
            let (server, rest) = line.split_once(' ').expect("a row");
            (server.to_string(), rest.trim().to_string())
        })
        .collect()
}

fn row<'a>(rows: &'a [(String, String)], server: &str) -> &'a str {
    rows.iter()
        .find(|(s, _)| s == server)
        .map(|(_, rest)| rest.as_str())
        .unwrap_or_else(|| panic!("no row for {server}: {rows:?}"))
}

/// Runs `status` every 200 ms until `done` holds for its output, for at most
/// 60 s (the machine is loaded): replication reacts asynchronously.
fn status_until(dir: &std::path::Path, done: impl Fn(&Run) -> bool) -> Run {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let run = dbgroups_in(dir, &["status"]);
        if done(&run) || std::time::Instant::now() > deadline {
            return run;
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
}

#[test]
fn status_names_servers_sorts_rows_and_exits_1_when_one_is_down() {
    let (dir, _servers) = quickstart();
    // Redis listed first, so the order is status's own.
    set_manifest(
        dir.path(),
        "application: shop\nredis:\n  configuration: { version: \"7.0\" }\n  servers:\n    - server: { unique_name: redis-main }\npostgresql:\n  configuration: { version: \"15\" }\n  backups: { managed: true }\n  servers:\n    - server: { unique_name: pg-main }\n    - server: { unique_name: pg-replica-1 }\n",
    );
    apply_ok(dir.path(), &[]);

    let healthy = status_until(dir.path(), |run| {
        run.stdout.contains("master of pg-replica-1")
    });
    assert_eq!(healthy.code, 0, "{}{}", healthy.stdout, healthy.stderr);
    let listed = rows(&healthy);
    let order: Vec<&str> = listed.iter().map(|(s, _)| s.as_str()).collect();
    assert_eq!(
        order,
        ["pg-main", "pg-replica-1", "redis-main"],
        "by type, then group"
    );
    assert!(
        row(&listed, "pg-main").ends_with("master of pg-replica-1"),
        "{listed:?}"
    );
    assert!(
        row(&listed, "redis-main").ends_with("master, no replica connected"),
        "{listed:?}"
    );
    let json = dbgroups_in(dir.path(), &["status", "--format", "json"]);
    assert_eq!(json.code, 0, "{}", json.stderr);
    let document: serde_json::Value = serde_json::from_str(&json.stdout).expect("JSON");
    assert_eq!(document["all_up"], true);
    assert_eq!(document["servers"][0]["server"], "pg-main");
    assert_eq!(document["servers"][0]["up"], true);

    // The master stops: its row says why, the replica shows no lag, and
    // status exits 1.
    let recorded = state(dir.path());
    let provider = LocalHost::prepare(&dir.path().join(".dbgroups"))
        .expect("provider")
        .0
        .into_ref();
    let port = super::port(&recorded, "pg-main");
    crate::common::block_on(PostgresServer::new(&provider, "pg-main", "15", port))
        .expect("engine")
        .stop_now();
    let down = status_until(dir.path(), |run| run.stdout.contains("NOT STREAMING"));
    assert_eq!(down.code, 1, "{}{}", down.stdout, down.stderr);
    assert!(
        down.stderr
            .contains("1 of 3 servers is down or not answering"),
        "{}",
        down.stderr
    );
    let listed = rows(&down);
    let main = row(&listed, "pg-main");
    assert!(main.contains(" NO "), "{main}");
    assert!(
        main.contains("error connecting to server: Connection refused"),
        "the cause is kept: {main}"
    );
    let replica = row(&listed, "pg-replica-1");
    assert!(replica.contains("NOT STREAMING"), "{replica}");
    assert!(
        !replica.contains("lag"),
        "no lag without streaming: {replica}"
    );
    let json = dbgroups_in(dir.path(), &["status", "--format", "json"]);
    assert_eq!(json.code, 1);
    let document: serde_json::Value = serde_json::from_str(&json.stdout).expect("JSON");
    assert_eq!(document["all_up"], false);
}

#[test]
fn status_shows_a_slave_an_interrupted_apply_provisioned() {
    let (dir, _servers) = quickstart();
    apply_ok(dir.path(), &[]);
    // As an apply interrupted between restore and enslave leaves it: the
    // slave's process runs, and the journal holds it as pending.
    let store = DirectoryStore::new(dir.path().join(".dbgroups"));
    let lock = store
        .lock(
            dbgroups_state::LockScope::Everything,
            "test",
            std::time::Duration::ZERO,
        )
        .expect("lock");
    let mut recorded = state(dir.path());
    let group = recorded
        .groups
        .iter_mut()
        .find(|g| g.address() == "postgresql.default")
        .expect("group");
    let index = group
        .servers
        .iter()
        .position(|s| s.unique_name == "pg-replica-1")
        .expect("slave");
    let slave = group.servers.remove(index);
    let mut journal = dbgroups_state::Journal {
        plan_id: "interrupted".into(),
        started_at: "2026-01-01T00:00:00Z".into(),
        steps: Default::default(),
        new_application: false,
        creating: Default::default(),
        pending: Default::default(),
    };
    journal.pending.insert(
        "pg-replica-1".into(),
        PendingServer {
            group: "postgresql.default".into(),
            server: slave,
        },
    );
    recorded.journal = Some(journal);
    store.save(&lock, &mut recorded).expect("save");
    drop(lock);

    let run = dbgroups_in(dir.path(), &["status"]);
    let listed = rows(&run);
    let pending = row(&listed, "pg-replica-1");
    assert!(pending.contains(" yes "), "its process runs: {pending}");
    assert!(
        pending.contains("pending: an interrupted apply provisioned it"),
        "{pending}"
    );
    let json = dbgroups_in(dir.path(), &["status", "--format", "json"]);
    let document: serde_json::Value = serde_json::from_str(&json.stdout).expect("JSON");
    let server = document["servers"]
        .as_array()
        .expect("servers")
        .iter()
        .find(|s| s["server"] == "pg-replica-1")
        .expect("listed");
    assert_eq!(server["pending"], true);
}

#[test]
fn servers_that_are_down_are_reported_with_their_cause() {
    let dir = tempfile::tempdir().expect("temp dir");
    let provider = LocalHost::inspect(dir.path()).expect("provider").into_ref();
    let port = free_port().expect("port");
    let mariadb = crate::common::block_on(MysqlServer::new(
        &provider,
        dbgroups_manifest::Engine::Mariadb,
        "10.11",
        "db-down",
        port,
    ))
    .expect("engine");
    let err = crate::common::runtime()
        .block_on(mariadb.replication("pw"))
        .expect_err("nothing runs");
    let message = err.to_string();
    assert!(message.contains("not running"), "{message}");
    assert!(
        !message.contains("Input/output error: Input/output error"),
        "{message}"
    );
    let postgres = crate::common::block_on(PostgresServer::new(&provider, "pg-down", "15", port))
        .expect("engine");
    let message = crate::common::runtime()
        .block_on(postgres.replication_status("pw"))
        .expect_err("nothing runs")
        .to_string();
    assert!(
        message.contains("error connecting to server: Connection refused"),
        "{message}"
    );
}

const ONE_REDIS: &str = "application: shop\nredis:\n  configuration: { version: \"7.0\" }\n  servers:\n    - server: { unique_name: redis-main }\n";

fn events(run: &Run) -> Vec<serde_json::Value> {
    run.stdout
        .lines()
        .map(|line| {
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not NDJSON ({e}): {line}"))
        })
        .collect()
}

#[test]
fn json_events_open_with_a_version_and_close_with_the_result() {
    let dir = tempfile::tempdir().expect("temp dir");
    let _servers = Servers {
        state_dir: dir.path().join(".dbgroups"),
    };
    set_manifest(dir.path(), ONE_REDIS);
    let applied = dbgroups_in(dir.path(), &["apply", "--auto-approve", "--json"]);
    assert_eq!(applied.code, 0, "{}{}", applied.stdout, applied.stderr);
    assert!(
        !applied.stderr.contains("Apply complete"),
        "no text summary in --json mode: {}",
        applied.stderr
    );
    let stream = events(&applied);
    let (first, last) = (
        stream.first().expect("events"),
        stream.last().expect("events"),
    );
    assert_eq!(first["event"], "apply_started");
    assert_eq!(first["format_version"], 1);
    assert_eq!(first["application"], "shop");
    assert_eq!(last["event"], "apply_finished");
    assert_eq!(last["result"], "succeeded");
    assert_eq!(
        last["completed"].as_array().map(Vec::len),
        first["steps"].as_u64().map(|n| n as usize)
    );
    assert!(
        last["environment_file"]
            .as_str()
            .is_some_and(|f| f.ends_with("env/shop.env"))
    );

    let again = dbgroups_in(dir.path(), &["apply", "--auto-approve", "--json"]);
    assert_eq!(again.code, 0, "{}", again.stderr);
    let stream = events(&again);
    assert_eq!(stream.len(), 2, "{}", again.stdout);
    assert_eq!(stream[1]["result"], "no_changes");

    // Stopped, the server is planned to start: one step, said in the singular.
    let recorded = state(dir.path());
    let provider = LocalHost::prepare(&dir.path().join(".dbgroups"))
        .expect("provider")
        .0
        .into_ref();
    let redis = crate::common::block_on(dbgroups_engines::RedisServer::new(
        &provider,
        "redis-main",
        super::port(&recorded, "redis-main"),
    ))
    .expect("engine");
    crate::common::runtime()
        .block_on(redis.ensure_stopped(&super::password(&recorded, "redis.default")))
        .expect("stops");
    let started = dbgroups_in(dir.path(), &["apply", "--auto-approve"]);
    assert_eq!(started.code, 0, "{}{}", started.stdout, started.stderr);
    assert!(started.stdout.contains("; 1 step."), "{}", started.stdout);
    assert!(
        started.stderr.contains("Apply complete: 1 step."),
        "{}",
        started.stderr
    );
}

#[test]
fn a_failed_json_apply_says_so_in_its_last_event_and_points_there() {
    let dir = tempfile::tempdir().expect("temp dir");
    let _servers = Servers {
        state_dir: dir.path().join(".dbgroups"),
    };
    // PostgreSQL 13 is not installed here, so its provision fails.
    set_manifest(
        dir.path(),
        "application: shop\npostgresql:\n  configuration: { version: \"13\" }\n  servers:\n    - server: { unique_name: pg-old }\n",
    );
    let applied = dbgroups_in(
        dir.path(),
        &["apply", "--auto-approve", "--json", "--refresh=false"],
    );
    assert_eq!(applied.code, 1, "{}{}", applied.stdout, applied.stderr);
    let stream = events(&applied);
    let last = stream.last().expect("events");
    assert_eq!(last["event"], "apply_finished");
    assert_eq!(last["result"], "failed");
    assert_eq!(last["failed"][0]["step"], "provision:pg-old");
    assert!(
        last["failed"][0]["error"]
            .as_str()
            .is_some_and(|e| e.contains("postgresql 13 is not installed")),
        "{last}"
    );
    assert!(
        !applied.stderr.contains("is above"),
        "the error is on stdout, not above on stderr: {}",
        applied.stderr
    );
    assert!(
        applied.stderr.contains("apply_finished event on stdout"),
        "{}",
        applied.stderr
    );
}

/// `destroy --format json` prints no text plan: stdout is the NDJSON event
/// stream alone, closing with the result.
#[test]
fn destroy_in_json_prints_only_events_and_closes_with_the_result() {
    let dir = tempfile::tempdir().expect("temp dir");
    let _servers = Servers {
        state_dir: dir.path().join(".dbgroups"),
    };
    set_manifest(dir.path(), ONE_REDIS);
    let applied = dbgroups_in(dir.path(), &["apply", "--auto-approve"]);
    assert_eq!(applied.code, 0, "{}{}", applied.stdout, applied.stderr);
    let destroyed = dbgroups_in(
        dir.path(),
        &[
            "destroy",
            "--app",
            "shop",
            "--auto-approve",
            "--format",
            "json",
        ],
    );
    assert_eq!(
        destroyed.code, 0,
        "{}{}",
        destroyed.stdout, destroyed.stderr
    );
    let stream = events(&destroyed);
    assert_eq!(stream.first().expect("events")["event"], "apply_started");
    let last = stream.last().expect("events");
    assert_eq!(last["event"], "apply_finished");
    assert_eq!(last["result"], "succeeded");
}

//! Crash at every step boundary: for each live engine, one plan that scales
//! a group up, makes a second group replicate from it and moves the primary
//! to the second group. `apply` is killed with SIGKILL before each step
//! (recorded as started, nothing done) and after it (done, not recorded),
//! and in the middle of the longest steps (the backup, MariaDB's
//! provision, Redis's full sync), with a fresh deployment for each crash
//! point. After each kill the next `apply` must finish, the master's
//! data must be unchanged, the new slave and the second group must hold
//! exactly the master's data, the state file must read back with no
//! journal, and a fresh plan must be empty.
//!
//! The boundary kills come from the debug build's `DBGROUPS_CRASH_AT` hook
//! (crates/apply/src/crash.rs: the process SIGKILLs itself at that exact
//! moment); a mid-step kill is sent from here while the step's program
//! runs (or, for Redis's sync, within its one-second diskless delay), and
//! the step is checked not to have finished. Each test prints its count of crash points, recorded in
//! docs/reliability.md.

use std::time::Duration;

use mysql_async::prelude::Queryable;
use redis::AsyncCommands;

use super::*;

/// One engine's deployment and how to read its data.
struct Scenario {
    engine: &'static str,
    /// Two groups, `default` (managed backups, its master only) and
    /// `reporting` (one server, `report`, with data of its own).
    base: &'static str,
    master: &'static str,
    slave: &'static str,
    report: &'static str,
    /// The steps killed in their middle: the longest ones.
    mid_steps: &'static [MidStep],
    /// The crash points the matrix must reach: a planner change that drops
    /// a step (or a loop that skips one) fails here instead of passing
    /// with fewer kills.
    expected_points: usize,
}

/// A step to kill in its middle: from outside, while `program` (run by the
/// step, with the test's directory on its command line) is running, or,
/// for a step that runs no program of its own, 300 ms after it starts.
struct MidStep {
    /// The step's id, or the start of it: the first step to start whose id
    /// begins so is the one killed.
    step: &'static str,
    program: Option<&'static str>,
}

impl Scenario {
    /// `base` grown: one more slave, `reporting` replicating from
    /// `default`, and the primary moved to `reporting`.
    fn grown(&self) -> String {
        scaled_and_replicating(self.base, self.master, self.slave).replace(
            "      replicate_from: default\n",
            "      replicate_from: default\n      primary: true\n",
        )
    }
}

/// Writes the data the checksums cover: 2,000 rows or keys on the master,
/// and 50 of the reporting group's own, which the replication replaces.
fn seed(engine: &str, dir: &Path) {
    let state = state(dir);
    runtime().block_on(async {
        match engine {
            "postgresql" => {
                for (server, group, rows) in [
                    ("pg-main", "postgresql.default", 2000),
                    ("pg-report", "postgresql.reporting", 50),
                ] {
                    let client = pg(port(&state, server), &password(&state, group)).await;
                    client
                        .batch_execute(&format!(
                            "CREATE TABLE items (id int PRIMARY KEY, payload text);
                             INSERT INTO items SELECT i, md5(i::text) FROM generate_series(1, {rows}) i;"
                        ))
                        .await
                        .expect("seeds");
                }
            }
            "mariadb" => {
                for (server, group, rows) in [
                    ("db-main", "mysql.default", 2000),
                    ("db-report", "mysql.reporting", 50),
                ] {
                    let mut conn = mysql_conn(&state, group, server, None).await;
                    conn.query_drop(format!(
                        "CREATE TABLE items (id INT PRIMARY KEY, payload CHAR(32));
                         INSERT INTO items SELECT seq, MD5(seq) FROM seq_1_to_{rows}"
                    ))
                    .await
                    .expect("seeds");
                }
            }
            _ => {
                for (server, group, keys) in [
                    ("redis-main", "redis.default", 2000),
                    ("redis-report", "redis.reporting", 50),
                ] {
                    let mut conn = redis_conn(&state, group, server).await;
                    for i in 1..=keys {
                        let _: () = conn.set(format!("item:{i}"), i * 7).await.expect("seeds");
                    }
                }
            }
        }
    });
}

async fn redis_conn(
    state: &AppState,
    group: &str,
    server: &str,
) -> redis::aio::MultiplexedConnection {
    redis::Client::open(format!(
        "redis://:{}@127.0.0.1:{}/0",
        password(state, group),
        port(state, server)
    ))
    .expect("url")
    .get_multiplexed_async_connection()
    .await
    .expect("connects")
}

/// A digest of everything in the server's data set (rows or keys), read
/// through the group's own credentials; a copy reads the source's database.
async fn checksum(engine: &str, state: &AppState, group: &str, server: &str) -> String {
    match engine {
        "postgresql" => {
            let client = pg(port(state, server), &password(state, group)).await;
            let row = client
                .query_one(
                    "SELECT count(*)::text || ':' || md5(string_agg(id || '=' || payload, ',' ORDER BY id)) FROM items",
                    &[],
                )
                .await
                .expect("reads");
            row.get(0)
        }
        "mariadb" => {
            let mut conn = mysql_conn(state, group, server, Some("shop")).await;
            let row: Option<(i64, i64)> = conn
                .query_first("SELECT COUNT(*), BIT_XOR(CRC32(CONCAT(id, '=', payload))) FROM items")
                .await
                .expect("reads");
            format!("{row:?}")
        }
        _ => {
            let mut conn = redis_conn(state, group, server).await;
            let mut keys: Vec<String> = redis::cmd("KEYS")
                .arg("*")
                .query_async(&mut conn)
                .await
                .expect("lists");
            keys.sort();
            let mut digest = String::new();
            for key in keys {
                let value: String = conn.get(&key).await.expect("reads");
                digest.push_str(&format!("{key}={value},"));
            }
            format!("{}:{:x}", digest.len(), fnv1a(&digest))
        }
    }
}

/// FNV-1a: enough to compare two key sets here without another crate.
fn fnv1a(text: &str) -> u64 {
    text.bytes().fold(0xcbf29ce484222325, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x100000001b3)
    })
}

/// Polls until `server` holds `expected` (replication is asynchronous).
fn wait_for_checksum(
    engine: &str,
    dir: &Path,
    group: &str,
    server: &str,
    expected: &str,
) -> String {
    let state = state(dir);
    runtime().block_on(poll(
        async || checksum(engine, &state, group, server).await,
        |seen| seen == expected,
    ))
}

/// `apply` with the crash hook set; it must die of SIGKILL.
pub(crate) fn apply_crashing_at(dir: &Path, point: &str) {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_dbgroups"))
        .args(["apply", "--auto-approve", "--refresh=false"])
        .current_dir(dir)
        .env("NO_COLOR", "1")
        .env("DBGROUPS_CRASH_AT", point)
        .output()
        .expect("dbgroups runs");
    crate::transcripts::record_run(
        &["apply", "(crashing at", point, ")"],
        &String::from_utf8_lossy(&output.stdout),
        &String::from_utf8_lossy(&output.stderr),
    );
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(
        output.status.signal(),
        Some(9),
        "apply was to die at {point}:\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// `apply` killed from outside in the middle of `mid.step`, which must not
/// have finished.
fn apply_killed_mid_step(dir: &Path, mid: &MidStep) {
    let (mut child, seen, rest) = apply_until(dir, &format!("start  {}", mid.step));
    // "[   0.0s] start  enslave:redis-report: redis-report follows …"
    let started = seen
        .last()
        .and_then(|line| line.split("start  ").nth(1))
        .and_then(|rest| rest.split(": ").next())
        .expect("the started step's id")
        .to_string();
    match mid.program {
        Some(program) => {
            let here = dir.display().to_string();
            // A minute: on a loaded machine the tool can take seconds to
            // start, and it runs for a while once it has.
            let deadline = std::time::Instant::now() + Duration::from_secs(60);
            while !processes_mentioning(program)
                .iter()
                .any(|cmdline| cmdline.contains(&here))
            {
                assert!(std::time::Instant::now() < deadline, "{program} never ran");
                std::thread::sleep(Duration::from_millis(5));
            }
        }
        // The first Redis replica to connect waits out the master's 1 s
        // diskless-sync delay; one that connects later joins that sync and
        // may finish at once, hence the first to start is the one killed.
        None => std::thread::sleep(Duration::from_millis(300)),
    }
    child.kill().expect("kills");
    let _ = child.wait();
    let after: Vec<String> = rest.map_while(Result::ok).collect();
    crate::transcripts::record_run(&["apply", "(killed mid-step)"], "", &after.join("\n"));
    assert!(
        !after
            .iter()
            .any(|l| l.contains(&format!("done   {started}"))),
        "{started} had finished before the kill"
    );
}

/// The step ids of the plan from `base` to its grown manifest.
fn planned_steps(scenario: &Scenario) -> Vec<String> {
    let (dir, _servers) = quickstart();
    set_manifest(dir.path(), scenario.base);
    apply_ok(dir.path(), &[]);
    set_manifest(dir.path(), &scenario.grown());
    let planned = dbgroups_in(dir.path(), &["plan", "--refresh=false", "--json"]);
    assert_eq!(planned.code, 0, "{}", planned.stderr);
    let plan: serde_json::Value = serde_json::from_str(&planned.stdout).expect("plan JSON");
    plan["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .map(|s| s["id"].as_str().expect("id").to_string())
        .collect()
}

/// One crash point on a fresh deployment, then every check.
fn crash_and_recover(scenario: &Scenario, crash: &dyn Fn(&Path)) {
    let (dir, _servers) = quickstart();
    set_manifest(dir.path(), scenario.base);
    apply_ok(dir.path(), &[]);
    seed(scenario.engine, dir.path());
    let master_sum = {
        let before = state(dir.path());
        runtime().block_on(checksum(
            scenario.engine,
            &before,
            &default_group(scenario),
            scenario.master,
        ))
    };
    set_manifest(dir.path(), &scenario.grown());
    crash(dir.path());

    // The kernel releases a killed apply's lock when the last copy of its
    // descriptor closes; a child caught between fork and exec holds one
    // for a moment (seen once in CI, under load), so the recovery may wait.
    apply_ok(dir.path(), &["--lock-timeout", "30s"]);
    let after = state(dir.path());
    assert!(
        after.journal.is_none(),
        "the finished apply left no journal"
    );
    let default = default_group(scenario);
    let reporting = default.replace(".default", ".reporting");
    for (group, server, holds) in [
        (&default, scenario.master, "the master's data is unchanged"),
        (
            &default,
            scenario.slave,
            "the new slave holds the master's data",
        ),
        (
            &reporting,
            scenario.report,
            "the replicating group holds the master's data",
        ),
    ] {
        assert_eq!(
            wait_for_checksum(scenario.engine, dir.path(), group, server, &master_sum),
            master_sum,
            "{holds}"
        );
    }
    converged(dir.path(), "manifest.yml");
}

fn default_group(scenario: &Scenario) -> String {
    let db_type = match scenario.engine {
        "postgresql" => "postgresql",
        "mariadb" => "mysql",
        _ => "redis",
    };
    format!("{db_type}.default")
}

/// Every boundary of the plan, and the middle of the longest steps.
#[allow(clippy::print_stdout)] // the count is this test's figure
fn crash_everywhere(scenario: &Scenario) {
    let steps = planned_steps(scenario);
    let mut points = 0;
    for step in &steps {
        for moment in ["before", "after"] {
            let point = format!("{moment}:{step}");
            crash_and_recover(scenario, &|dir| apply_crashing_at(dir, &point));
            points += 1;
        }
    }
    for mid in scenario.mid_steps {
        crash_and_recover(scenario, &|dir| apply_killed_mid_step(dir, mid));
        points += 1;
    }
    assert_eq!(
        points,
        scenario.expected_points,
        "crash points for {} ({} steps: {})",
        scenario.engine,
        steps.len(),
        steps.join(", ")
    );
    assert_eq!(
        points,
        2 * steps.len() + scenario.mid_steps.len(),
        "every boundary of every step is killed at"
    );
    println!(
        "| {} | {} steps ({}) | {points} crash points | all recovered |",
        scenario.engine,
        steps.len(),
        steps.join(", ")
    );
}

#[test]
fn postgresql_survives_sigkill_at_every_step_boundary() {
    crash_everywhere(&Scenario {
        engine: "postgresql",
        base: TWO_GROUPS,
        master: "pg-main",
        slave: "pg-replica-1",
        report: "pg-report",
        mid_steps: &[MidStep {
            step: "backup:pg-main",
            program: Some("pg_basebackup"),
        }],
        expected_points: 17,
    });
}

#[test]
fn mariadb_survives_sigkill_at_every_step_boundary() {
    crash_everywhere(&Scenario {
        engine: "mariadb",
        base: TWO_MARIADB_GROUPS,
        master: "db-main",
        slave: "db-replica-1",
        report: "db-report",
        // The physical copy for the new slave (mariadb-backup), the dump
        // for the replicating group, and the provision
        // (mariadb-install-db), the longest step with this little data.
        mid_steps: &[
            MidStep {
                step: "backup:db-main",
                program: Some("mariadb-backup"),
            },
            MidStep {
                step: "dump:db-main",
                program: Some("mariadb-dump"),
            },
            MidStep {
                step: "provision:db-replica-1",
                program: Some("mariadb-install-db"),
            },
        ],
        expected_points: 23,
    });
}

#[test]
fn redis_survives_sigkill_at_every_step_boundary() {
    crash_everywhere(&Scenario {
        engine: "redis",
        base: TWO_REDIS_GROUPS,
        master: "redis-main",
        slave: "redis-replica-1",
        report: "redis-report",
        // No backup: the full sync of enslave is the longest step; the
        // first of the two to start.
        mid_steps: &[MidStep {
            step: "enslave:",
            program: None,
        }],
        expected_points: 11,
    });
}

//! Writes during apply: a write load runs on a master while one `apply`
//! scales its group up and makes a second group replicate from it. No write
//! may fail, and every acknowledged write must be on the master, on the new
//! slave and on the second group's server once they catch up. The load's
//! throughput and p99 latency during the apply are compared with the same
//! load run just before with no apply, and printed as one table row per
//! engine: the figures of docs/benchmarks.md ("cost to the master") and of
//! docs/reliability.md. PostgreSQL's load is pgbench itself; MariaDB's and
//! Redis's is a closed write loop of unique keys (`LOAD_CLIENTS` clients).
//!
//! `scripts/bench-master-cost.sh` runs these tests with more data and a
//! longer baseline: `DBGROUPS_LOAD_SCALE` (pgbench scale; MariaDB and Redis
//! get 100,000 rows or keys per unit) and `DBGROUPS_LOAD_BASELINE_SECONDS`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use mysql_async::prelude::Queryable;

use super::*;

const LOAD_CLIENTS: u64 = 2;

fn setting(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn scale() -> u64 {
    setting("DBGROUPS_LOAD_SCALE", 1)
}

fn baseline() -> Duration {
    Duration::from_secs(setting("DBGROUPS_LOAD_BASELINE_SECONDS", 3))
}

/// One load run: what failed, how long each acknowledged write took, and,
/// for a write loop, the ids it wrote (pgbench's transactions are counted
/// by their latencies; their rows are checked by digest).
#[derive(Default)]
struct LoadRun {
    acknowledged: Vec<u64>,
    failures: Vec<String>,
    latencies_us: Vec<u64>,
    elapsed: Duration,
}

impl LoadRun {
    fn merge(&mut self, other: LoadRun) {
        self.acknowledged.extend(other.acknowledged);
        self.failures.extend(other.failures);
        self.latencies_us.extend(other.latencies_us);
    }

    /// Acknowledged writes (committed transactions, for pgbench).
    fn writes(&self) -> usize {
        self.latencies_us.len()
    }

    fn per_second(&self) -> f64 {
        self.writes() as f64 / self.elapsed.as_secs_f64()
    }

    fn p99_ms(&mut self) -> f64 {
        self.latencies_us.sort_unstable();
        let Some(last) = self.latencies_us.len().checked_sub(1) else {
            return f64::NAN;
        };
        self.latencies_us[last * 99 / 100] as f64 / 1000.0
    }
}

/// A test's two load runs on the master: alone, then through the apply.
struct Runs {
    quiet: LoadRun,
    during: LoadRun,
    apply_seconds: f64,
}

impl Runs {
    /// Runs `quiet` (the load alone), rewrites the manifest to `grown`, and
    /// runs `during` through the apply of it. No write may fail, and the
    /// load must have written during the apply.
    fn through_apply<Q, F, Fut>(
        runtime: &tokio::runtime::Runtime,
        dir: &Path,
        grown: &str,
        quiet: Q,
        during: F,
    ) -> Runs
    where
        Q: std::future::Future<Output = LoadRun>,
        F: FnOnce(Arc<AtomicBool>) -> Fut,
        Fut: std::future::Future<Output = LoadRun>,
    {
        let quiet = runtime.block_on(quiet);
        set_manifest(dir, grown);
        let (during, apply_seconds) = runtime.block_on(load_during_apply(dir, during));
        assert!(
            quiet.failures.is_empty() && during.failures.is_empty(),
            "failed writes: {:?} {:?}",
            quiet.failures.first(),
            during.failures.first()
        );
        assert!(during.writes() > 0, "the load wrote during the apply");
        Runs {
            quiet,
            during,
            apply_seconds,
        }
    }

    /// The ids a write loop had acknowledged, in both runs.
    fn acknowledged(&self) -> Vec<u64> {
        self.quiet
            .acknowledged
            .iter()
            .chain(&self.during.acknowledged)
            .copied()
            .collect()
    }

    fn writes(&self) -> usize {
        self.quiet.writes() + self.during.writes()
    }

    /// Prints the comparison of the load with and without the apply: the
    /// row is this test's measurement, read by scripts/bench-master-cost.sh.
    #[allow(clippy::print_stdout)]
    fn report(mut self, engine: &str) {
        let (quiet_p99, during_p99) = (self.quiet.p99_ms(), self.during.p99_ms());
        let (quiet, during) = (self.quiet.per_second(), self.during.per_second());
        println!(
            "| {engine} | {:.1} | {quiet:.0} | {during:.0} | **{:.2}** | {quiet_p99:.2} | {during_p99:.2} | **{:.2}** | {} |",
            self.apply_seconds,
            during / quiet,
            during_p99 / quiet_p99,
            self.quiet.failures.len() + self.during.failures.len(),
        );
    }
}

/// Runs `apply` on a thread while `load` runs, and stops the load when the
/// apply ends. Returns the load and the apply's duration.
async fn load_during_apply<F, Fut>(dir: &Path, load: F) -> (LoadRun, f64)
where
    F: FnOnce(Arc<AtomicBool>) -> Fut,
    Fut: std::future::Future<Output = LoadRun>,
{
    let stop = Arc::new(AtomicBool::new(false));
    let applying = {
        let (dir, stop) = (dir.to_path_buf(), Arc::clone(&stop));
        std::thread::spawn(move || {
            let began = Instant::now();
            let applied =
                crate::cli::dbgroups_in(&dir, &["apply", "--auto-approve", "--refresh=false"]);
            stop.store(true, Ordering::SeqCst);
            (applied, began.elapsed().as_secs_f64())
        })
    };
    let run = load(stop).await;
    let (applied, seconds) = applying.join().expect("apply thread");
    assert_eq!(applied.code, 0, "{}\n{}", applied.stdout, applied.stderr);
    (run, seconds)
}

/// A closed loop of `LOAD_CLIENTS` clients, each writing unique ids (from
/// `first_id`) until `stop`.
async fn write_loop<W, Fut>(first_id: u64, stop: Arc<AtomicBool>, write: W) -> LoadRun
where
    W: Fn(u64, u64) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = Result<(), String>> + Send,
{
    let began = Instant::now();
    let mut clients = tokio::task::JoinSet::new();
    for client in 0..LOAD_CLIENTS {
        let (stop, write) = (Arc::clone(&stop), write.clone());
        clients.spawn(async move {
            let mut run = LoadRun::default();
            let mut id = first_id + client * 1_000_000_000;
            while !stop.load(Ordering::SeqCst) {
                let started = Instant::now();
                match write(client, id).await {
                    Ok(()) => {
                        run.latencies_us.push(started.elapsed().as_micros() as u64);
                        run.acknowledged.push(id);
                    }
                    Err(error) => run.failures.push(error),
                }
                id += 1;
            }
            run
        });
    }
    let mut total = LoadRun::default();
    while let Some(run) = clients.join_next().await {
        total.merge(run.expect("load client"));
    }
    total.elapsed = began.elapsed();
    total
}

/// The same loop for `duration`, with no apply running.
async fn quiet_loop<W, Fut>(first_id: u64, duration: Duration, write: W) -> LoadRun
where
    W: Fn(u64, u64) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = Result<(), String>> + Send,
{
    let stop = Arc::new(AtomicBool::new(false));
    let timer = {
        let stop = Arc::clone(&stop);
        tokio::spawn(async move {
            tokio::time::sleep(duration).await;
            stop.store(true, Ordering::SeqCst);
        })
    };
    let run = write_loop(first_id, stop, write).await;
    timer.await.expect("timer");
    run
}

#[test]
fn redis_writes_during_a_scale_up_and_replication_all_succeed_and_arrive() {
    let (dir, _servers) = quickstart();
    set_manifest(dir.path(), TWO_REDIS_GROUPS);
    apply_ok(dir.path(), &[]);
    let first = state(dir.path());
    let url = |state: &AppState, group: &str, server: &str| {
        format!(
            "redis://:{}@127.0.0.1:{}/0",
            password(state, group),
            port(state, server)
        )
    };
    let runtime = runtime();
    let client = redis::Client::open(url(&first, "redis.default", "redis-main")).expect("url");
    let keys = scale() * 100_000;
    // One connection per load client, opened before the clock starts.
    let connections = runtime.block_on(async {
        let mut conn = client
            .get_multiplexed_async_connection()
            .await
            .expect("connects");
        let _: () = redis::cmd("EVAL")
            .arg(
                "for i=1,tonumber(ARGV[1]) do redis.call('SET','data:'..i,string.rep('x',100)) end",
            )
            .arg(0)
            .arg(keys)
            .query_async(&mut conn)
            .await
            .expect("existing data");
        // Saved now, so Redis's own save rules (10,000 changes in 60 s)
        // do not fork a background save in the middle of the baseline.
        let _: () = redis::cmd("SAVE")
            .query_async(&mut conn)
            .await
            .expect("saves");
        let mut connections = Vec::new();
        for _ in 0..LOAD_CLIENTS {
            connections.push(
                client
                    .get_multiplexed_async_connection()
                    .await
                    .expect("connects"),
            );
        }
        Arc::new(connections)
    });
    let write = move |client: u64, id: u64| {
        let mut conn = connections[client as usize].clone();
        async move {
            redis::cmd("SET")
                .arg(format!("load:{id}"))
                .arg(id)
                .query_async::<()>(&mut conn)
                .await
                .map_err(|e| e.to_string())
        }
    };
    let runs = Runs::through_apply(
        &runtime,
        dir.path(),
        &scaled_and_replicating(TWO_REDIS_GROUPS, "redis-main", "redis-replica-1"),
        quiet_loop(0, baseline(), write.clone()),
        |stop| write_loop(10_000_000_000, stop, write),
    );

    let after = state(dir.path());
    let acknowledged = runs.acknowledged();
    for (group, server) in [
        ("redis.default", "redis-main"),
        ("redis.default", "redis-replica-1"),
        ("redis.reporting", "redis-report"),
    ] {
        let client = redis::Client::open(url(&after, group, server)).expect("url");
        let missing = runtime.block_on(async {
            let mut conn = client
                .get_multiplexed_async_connection()
                .await
                .expect("connects");
            poll(
                async || {
                    let mut missing = 0;
                    for chunk in acknowledged.chunks(1000) {
                        let names: Vec<String> =
                            chunk.iter().map(|id| format!("load:{id}")).collect();
                        let found: usize = redis::cmd("EXISTS")
                            .arg(&names)
                            .query_async(&mut conn)
                            .await
                            .expect("reads");
                        missing += chunk.len() - found;
                    }
                    missing
                },
                |missing| *missing == 0,
            )
            .await
        });
        assert_eq!(missing, 0, "acknowledged writes missing on {server}");
    }
    // The row is printed only for a run that converged.
    converged(dir.path(), "manifest.yml");
    runs.report("Redis");
}

#[test]
fn mariadb_writes_during_a_scale_up_and_replication_all_succeed_and_arrive() {
    let (dir, _servers) = quickstart();
    set_manifest(dir.path(), TWO_MARIADB_GROUPS);
    apply_ok(dir.path(), &[]);
    let first = state(dir.path());
    let runtime = runtime();
    let rows = scale() * 100_000;
    let connections = runtime.block_on(async {
        let mut conn = mysql_conn(&first, "mysql.default", "db-main", None).await;
        conn.query_drop(format!(
            "CREATE TABLE data (id INT PRIMARY KEY, payload CHAR(100)); \
             INSERT INTO data SELECT seq, REPEAT('x', 100) FROM seq_1_to_{rows}; \
             CREATE TABLE load_writes (id BIGINT PRIMARY KEY)"
        ))
        .await
        .expect("existing data");
        let mut connections = Vec::new();
        for _ in 0..LOAD_CLIENTS {
            let conn = mysql_conn(&first, "mysql.default", "db-main", None).await;
            connections.push(tokio::sync::Mutex::new(conn));
        }
        Arc::new(connections)
    });
    // Each client owns one connection; the lock is never contended.
    let write = move |client: u64, id: u64| {
        let connections = Arc::clone(&connections);
        async move {
            let mut conn = connections[client as usize].lock().await;
            conn.exec_drop("INSERT INTO load_writes (id) VALUES (?)", (id,))
                .await
                .map_err(|e| e.to_string())
        }
    };
    let runs = Runs::through_apply(
        &runtime,
        dir.path(),
        &scaled_and_replicating(TWO_MARIADB_GROUPS, "db-main", "db-replica-1"),
        quiet_loop(0, baseline(), write.clone()),
        |stop| write_loop(10_000_000_000, stop, write),
    );

    let after = state(dir.path());
    let acknowledged: std::collections::BTreeSet<u64> = runs.acknowledged().into_iter().collect();
    for (group, server) in [
        ("mysql.default", "db-main"),
        ("mysql.default", "db-replica-1"),
        ("mysql.reporting", "db-report"),
    ] {
        // The copy on reporting keeps the source's database name.
        let missing = runtime.block_on(async {
            let mut conn = mysql_conn(&after, group, server, Some("shop")).await;
            poll(
                async || {
                    let present: Vec<u64> = conn
                        .query("SELECT id FROM load_writes")
                        .await
                        .unwrap_or_default();
                    let present: std::collections::BTreeSet<u64> = present.into_iter().collect();
                    acknowledged.difference(&present).count()
                },
                |missing| *missing == 0,
            )
            .await
        });
        assert_eq!(missing, 0, "acknowledged writes missing on {server}");
    }
    // The row is printed only for a run that converged.
    converged(dir.path(), "manifest.yml");
    runs.report("MariaDB");
}

/// One pgbench run of `seconds` (TPC-B-like, `LOAD_CLIENTS` clients), its
/// per-transaction log in `logs`: the committed transactions' latencies, and
/// any failure pgbench reported.
fn pgbench(port: u16, password: &str, seconds: u64, logs: &Path, run: usize) -> LoadRun {
    let prefix = logs.join(format!("run{run}"));
    let output =
        crate::common::client_tool(dbgroups_engines::postgres::binaries("15").join("pgbench"))
            .env("PGPASSWORD", password)
            .args([
                "-n",
                "-h",
                "127.0.0.1",
                "-p",
                &port.to_string(),
                "-U",
                "shop",
            ])
            .args([
                "-c",
                &LOAD_CLIENTS.to_string(),
                "-j",
                &LOAD_CLIENTS.to_string(),
            ])
            .args(["-T", &seconds.to_string(), "-l"])
            .arg(format!("--log-prefix={}", prefix.display()))
            .arg("shop")
            .output()
            .expect("pgbench runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let mut load = LoadRun::default();
    let failed: u64 = stdout
        .lines()
        .find_map(|l| l.strip_prefix("number of failed transactions: "))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    if !output.status.success() || failed > 0 {
        load.failures.push(format!(
            "pgbench: {} failed; {}",
            failed,
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    for entry in std::fs::read_dir(logs).expect("logs").flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if !name.starts_with(&format!("run{run}.")) {
            continue;
        }
        let text = std::fs::read_to_string(entry.path()).expect("a pgbench log");
        // client_id transaction_no latency_us script_no epoch epoch_us
        load.latencies_us.extend(
            text.lines()
                .filter_map(|l| l.split_whitespace().nth(2)?.parse::<u64>().ok()),
        );
    }
    load
}

/// pgbench in one-second runs until `stop` (or for `duration`).
async fn pgbench_until(
    port: u16,
    password: String,
    logs: PathBuf,
    first_run: usize,
    stop: Arc<AtomicBool>,
    duration: Option<Duration>,
) -> LoadRun {
    let began = Instant::now();
    let mut total = LoadRun::default();
    let mut run = first_run;
    while !stop.load(Ordering::SeqCst) && duration.is_none_or(|d| began.elapsed() < d) {
        let (password, logs) = (password.clone(), logs.clone());
        let chunk = tokio::task::spawn_blocking(move || pgbench(port, &password, 1, &logs, run))
            .await
            .expect("pgbench");
        total.merge(chunk);
        run += 1;
    }
    total.elapsed = began.elapsed();
    total
}

#[test]
fn postgresql_pgbench_during_a_scale_up_and_replication_all_succeed_and_arrive() {
    let (dir, _servers) = quickstart();
    set_manifest(dir.path(), TWO_GROUPS);
    apply_ok(dir.path(), &[]);
    let first = state(dir.path());
    let (master_port, app_password) = (
        port(&first, "pg-main"),
        password(&first, "postgresql.default"),
    );
    let initialised =
        crate::common::client_tool(dbgroups_engines::postgres::binaries("15").join("pgbench"))
            .env("PGPASSWORD", &app_password)
            .args(["-i", "-q", "-s", &scale().to_string(), "-h", "127.0.0.1"])
            .args(["-p", &master_port.to_string(), "-U", "shop", "shop"])
            .output()
            .expect("pgbench -i runs");
    assert!(
        initialised.status.success(),
        "{}",
        String::from_utf8_lossy(&initialised.stderr)
    );
    let logs = tempfile::tempdir().expect("log dir");
    let runtime = runtime();
    let runs = Runs::through_apply(
        &runtime,
        dir.path(),
        &scaled_and_replicating(TWO_GROUPS, "pg-main", "pg-replica-1"),
        pgbench_until(
            master_port,
            app_password.clone(),
            logs.path().to_path_buf(),
            0,
            Arc::new(AtomicBool::new(false)),
            Some(baseline()),
        ),
        |stop| {
            pgbench_until(
                master_port,
                app_password.clone(),
                logs.path().to_path_buf(),
                1_000_000,
                stop,
                None,
            )
        },
    );

    // Every committed pgbench transaction inserts one pgbench_history row:
    // the master holds exactly the committed ones, and the replicas the
    // same rows (a digest of all of them) once caught up.
    let committed = runs.writes() as i64;
    let after = state(dir.path());
    let digest_query = "SELECT count(*), md5(coalesce(string_agg(concat_ws(':', tid, bid, aid, delta, mtime), ',' ORDER BY mtime, tid, aid, delta), '')) || ':' || (SELECT sum(abalance) FROM pgbench_accounts) FROM pgbench_history";
    let digests: Vec<(i64, String)> = runtime.block_on(async {
        let mut digests = Vec::new();
        for (group, server) in [
            ("postgresql.default", "pg-main"),
            ("postgresql.default", "pg-replica-1"),
            ("postgresql.reporting", "pg-report"),
        ] {
            let client = pg(port(&after, server), &password(&after, group)).await;
            let digest = poll(
                async || {
                    let row = client.query_one(digest_query, &[]).await.expect("reads");
                    (row.get::<_, i64>(0), row.get::<_, String>(1))
                },
                |seen| seen.0 == committed,
            )
            .await;
            digests.push(digest);
        }
        digests
    });
    assert_eq!(
        digests[0].0, committed,
        "the master holds every committed transaction"
    );
    assert_eq!(digests[1], digests[0], "the new slave equals the master");
    assert_eq!(
        digests[2], digests[0],
        "the replicating group equals the master"
    );
    // The row is printed only for a run that converged.
    converged(dir.path(), "manifest.yml");
    runs.report("PostgreSQL (pgbench)");
}

use dbgroups_manifest::{ParseOptions, Parsed, SourceFile};

/// A multi-threaded tokio runtime for a test's client calls.
pub(crate) fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

/// Property-test settings: `default` cases, or PROPTEST_CASES to run more;
/// no failure files (the shrunk case is printed).
pub(crate) fn proptest_cases(default: u32) -> proptest::prelude::ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default);
    proptest::prelude::ProptestConfig {
        cases,
        failure_persistence: None,
        ..proptest::prelude::ProptestConfig::default()
    }
}

/// Every regular file below `dir`, not descending into directories named
/// in `skip`.
pub(crate) fn files_under(dir: &std::path::Path, skip: &[&str]) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            if !skip.iter().any(|s| entry.file_name() == *s) {
                files.extend(files_under(&path, skip));
            }
        } else if path.is_file() {
            files.push(path);
        }
    }
    files
}

pub(crate) fn repo_path(relative: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(relative)
}

/// Parses manifest text as if it were `manifest.yml`.
pub(crate) fn parse_text(text: &str, options: &ParseOptions) -> (SourceFile, Parsed) {
    let source = SourceFile::new("manifest.yml", text);
    let parsed = dbgroups_manifest::parse(&source, options);
    (source, parsed)
}

/// Every diagnostic as `manifest.yml:LINE:COLUMN: severity[code]: message`
/// (with its help line), the form the rule tests assert on.
pub(crate) fn diagnose(text: &str) -> String {
    diagnose_with(text, &ParseOptions::default())
}

pub(crate) fn diagnose_with(text: &str, options: &ParseOptions) -> String {
    let (source, parsed) = parse_text(text, options);
    parsed
        .diagnostics
        .iter()
        .map(|d| d.to_compact_string(&source))
        .collect::<Vec<_>>()
        .join("\n")
}

/// A valid manifest from text (panics with the diagnostics otherwise).
pub(crate) fn manifest(text: &str) -> dbgroups_manifest::Manifest {
    let (source, parsed) = parse_text(text, &ParseOptions::default());
    let rendered: Vec<String> = parsed
        .diagnostics
        .iter()
        .map(|d| d.to_compact_string(&source))
        .collect();
    parsed
        .manifest
        .unwrap_or_else(|| panic!("invalid test manifest:\n{}", rendered.join("\n")))
}

/// The fake passwords tests put in state; no rendering may contain them.
pub(crate) const FAKE_PASSWORD_PREFIX: &str = "fake-secret-";

/// Stands in for apply in planner tests: fills what apply would learn
/// (addresses, ports, passwords) into an expected state, deterministically,
/// keeping the values of servers that already have them.
pub(crate) fn fake_apply(
    expected: &dbgroups_state::AppState,
    lineage: &str,
) -> dbgroups_state::AppState {
    use dbgroups_state::Secret;
    let mut state = expected.clone();
    if state.lineage == dbgroups_plan::NEW_LINEAGE {
        state.lineage = lineage.to_string();
    }
    let mut used: std::collections::BTreeSet<u16> = state
        .groups
        .iter()
        .flat_map(|g| g.servers.iter().filter_map(|s| s.port))
        .collect();
    for group in &mut state.groups {
        for server in &mut group.servers {
            if server.port.is_none() {
                let mut port = 20_000 + (group.db_type as u16) * 1_000;
                while used.contains(&port) {
                    port += 1;
                }
                used.insert(port);
                server.port = Some(port);
            }
            server
                .address
                .get_or_insert_with(|| "127.0.0.1".to_string());
        }
    }
    for (group, credentials) in state.credentials.iter_mut() {
        if credentials.password.is_none() {
            credentials.password = Some(Secret::new(format!("{FAKE_PASSWORD_PREFIX}{group}")));
        }
    }
    state.environment = dbgroups_plan::env::variables(&state);
    state.serial += 1;
    state
}

/// Plans `text` against `state` with these intents, offline.
pub(crate) fn plan_with(
    text: &str,
    state: Option<&dbgroups_state::AppState>,
    others: &std::collections::BTreeMap<String, dbgroups_state::AppState>,
    observed: &dbgroups_plan::ObservedFacts,
    intents: &dbgroups_plan::Intents,
) -> (dbgroups_plan::Plan, dbgroups_state::AppState) {
    let manifest = manifest(text);
    dbgroups_plan::plan_with_expected_state(&dbgroups_plan::PlanInput {
        manifest: &manifest,
        state,
        other_applications: others,
        observed,
        intents,
    })
    .expect("plans")
}

/// Writes `state` as the next version in the directory store at
/// `state_dir` (a `.dbgroups`), under the whole store's lock, as a command
/// would.
pub(crate) fn save_state(state_dir: &std::path::Path, state: &mut dbgroups_state::AppState) {
    use dbgroups_state::StateStore;
    let store = dbgroups_state::DirectoryStore::new(state_dir);
    let lock = store
        .lock(
            dbgroups_state::LockScope::Everything,
            "test",
            std::time::Duration::ZERO,
        )
        .expect("lock");
    store.save(&lock, state).expect("save");
}

/// The recorded state after applying `text` to a new application.
pub(crate) fn applied(text: &str) -> dbgroups_state::AppState {
    let (_, expected) = plan_with(
        text,
        None,
        &Default::default(),
        &dbgroups_plan::ObservedFacts::offline(),
        &Default::default(),
    );
    fake_apply(&expected, "lineage-test")
}

/// Reads with `read` every 100 ms until `done` holds for what it read, and
/// returns that reading; fails the test, naming `what` and the last reading,
/// if it does not hold within a minute. A loaded CI machine is slow, so the
/// budget is generous; a condition that holds returns at once.
pub(crate) async fn eventually<T: std::fmt::Debug>(
    what: &str,
    mut read: impl AsyncFnMut() -> T,
    done: impl Fn(&T) -> bool,
) -> T {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let seen = read().await;
        if done(&seen) {
            return seen;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{what}: still {seen:?} after 60 s"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

/// How many replication connections a PostgreSQL master serves to the
/// replica `application_name` (its unique name, as dbgroups configures it).
pub(crate) async fn pg_streams_to(master: &tokio_postgres::Client, application_name: &str) -> i64 {
    master
        .query_one(
            "SELECT count(*) FROM pg_stat_replication WHERE application_name = $1",
            &[&application_name],
        )
        .await
        .map(|row| row.get(0))
        .unwrap_or(-1)
}

/// Whether process `pid` has `path` open (one of its /proc fd links).
pub(crate) fn has_open(pid: u32, path: &std::path::Path) -> bool {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .into_iter()
        .flatten()
        .flatten()
        .any(|fd| std::fs::read_link(fd.path()).is_ok_and(|target| target == path))
}

/// A database client tool (pgbench, psql, redis-cli …) run by a test, with
/// an environment built from nothing as the product builds its own: the
/// suite's results must not depend on the developer's `PGPASSWORD`,
/// `~/.my.cnf` or `REDISCLI_AUTH`.
pub(crate) fn client_tool(program: impl AsRef<std::ffi::OsStr>) -> std::process::Command {
    let mut command = std::process::Command::new(program);
    command
        .env_clear()
        .env("PATH", dbgroups_engines::process::SYSTEM_PATH)
        .env("LC_ALL", dbgroups_engines::process::LOCALE)
        .env("HOME", std::env::temp_dir());
    command
}

/// Runs one future to its end on a runtime of its own, in a thread of its
/// own, for the sync helpers' one-off calls (an engine's constructor, say):
/// it works whether or not the caller is itself inside a runtime.
pub(crate) fn block_on<F>(future: F) -> F::Output
where
    F: std::future::Future + Send,
    F::Output: Send,
{
    std::thread::scope(|scope| {
        scope
            .spawn(|| runtime().block_on(future))
            .join()
            .expect("the future does not panic")
    })
}

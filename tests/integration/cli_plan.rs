//! `plan`, `show`, `graph` and `state` as a user runs them, plan files and
//! their refusals, and the state lock across processes.

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use dbgroups_plan::planfile::{PlanFile, PlanFileError, Stale};
use dbgroups_state::{DirectoryStore, StateStore};
use insta::assert_snapshot;

use crate::cli::dbgroups_in;
use crate::common::{FAKE_PASSWORD_PREFIX, applied, repo_path, save_state};

/// A scratch directory holding the quickstart manifest.
pub(crate) fn quickstart() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::copy(
        repo_path("examples/quickstart/manifest.yml"),
        dir.path().join("manifest.yml"),
    )
    .expect("copy");
    dir
}

/// Records the quickstart as applied in the directory's state store.
pub(crate) fn record_quickstart(dir: &std::path::Path) -> dbgroups_state::AppState {
    let text = std::fs::read_to_string(dir.join("manifest.yml")).expect("manifest");
    let mut state = applied(&text);
    state.serial = 0;
    save_state(&dir.join(".dbgroups"), &mut state);
    state
}

#[test]
fn plan_a_new_application_exits_2_with_detailed_exitcode() {
    let dir = quickstart();
    let run = dbgroups_in(
        dir.path(),
        &["plan", "--refresh=false", "--detailed-exitcode"],
    );
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stdout.contains(
            "+ create postgresql.default (postgresql 15): master pg-main, slaves pg-replica-1"
        ),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout
            .trim_end()
            .ends_with("Plan: 2 to create, 0 to change, 0 to remove; 7 steps."),
        "{}",
        run.stdout
    );
    let plain = dbgroups_in(dir.path(), &["plan", "--refresh=false"]);
    assert_eq!(
        plain.code, 0,
        "without --detailed-exitcode a plan with changes succeeds"
    );
}

#[test]
fn plan_with_no_changes_exits_0_with_detailed_exitcode() {
    let dir = quickstart();
    record_quickstart(dir.path());
    let run = dbgroups_in(
        dir.path(),
        &["plan", "--refresh=false", "--detailed-exitcode"],
    );
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert_snapshot!(run.stdout, @r#"
    dbgroups plan for application "shop" (state serial 1, lineage lineage-test)

    No changes: the recorded state matches the manifest.
    "#);
}

#[test]
fn plan_errors_exit_1() {
    let dir = quickstart();
    let run = dbgroups_in(
        dir.path(),
        &[
            "plan",
            "--refresh=false",
            "--detailed-exitcode",
            "--remove-server",
            "nope",
        ],
    );
    assert_eq!(run.code, 1);
    assert!(
        run.stderr
            .contains("--remove-server nope: no such server is recorded"),
        "{}",
        run.stderr
    );
    std::fs::write(
        dir.path().join("manifest.yml"),
        "application: shop\npostgresql:\n  verison: 1\n",
    )
    .expect("write");
    let run = dbgroups_in(dir.path(), &["plan", "--detailed-exitcode"]);
    assert_eq!(run.code, 1);
    assert!(
        run.stderr.contains("unknown key \"verison\""),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("manifest.yml is invalid"),
        "{}",
        run.stderr
    );
    let run = dbgroups_in(dir.path(), &["plan", "--add-group", "postgres.x"]);
    assert_eq!(run.code, 1);
    assert!(
        run.stderr.contains("\"postgres\" is not a type"),
        "{}",
        run.stderr
    );
}

#[test]
fn plan_out_writes_a_private_plan_file_that_show_renders() {
    let dir = quickstart();
    record_quickstart(dir.path());
    let manifest = dir.path().join("manifest.yml");
    let grown = std::fs::read_to_string(&manifest)
        .expect("read")
        .replace("        - server: { unique_name: pg-replica-1 } # the rest = slaves in the group\n", "        - server: { unique_name: pg-replica-1 }\n        - server: { unique_name: pg-replica-2 }\n");
    std::fs::write(&manifest, grown).expect("write");
    let run = dbgroups_in(
        dir.path(),
        &["plan", "--refresh=false", "--out", "plan.json"],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stdout
            .contains("+ scale up postgresql.default: add pg-replica-2"),
        "{}",
        run.stdout
    );
    let path = dir.path().join("plan.json");
    let mode = std::fs::metadata(&path)
        .expect("written")
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o600);
    let bytes = std::fs::read(&path).expect("read");
    assert!(
        !String::from_utf8_lossy(&bytes).contains(FAKE_PASSWORD_PREFIX),
        "no secret in the plan file"
    );

    let shown = dbgroups_in(dir.path(), &["show", "plan.json"]);
    assert_eq!(shown.code, 0, "{}", shown.stderr);
    assert_eq!(
        shown.stdout, run.stdout,
        "show renders exactly the saved plan"
    );
    let markdown = dbgroups_in(dir.path(), &["show", "plan.json", "--format", "markdown"]);
    assert!(
        markdown.stdout.starts_with("### dbgroups plan: `shop`"),
        "{}",
        markdown.stdout
    );
    let mermaid = dbgroups_in(
        dir.path(),
        &["graph", "--plan", "plan.json", "--format", "mermaid"],
    );
    assert_snapshot!(mermaid.stdout, @r#"
    flowchart LR
      s1["disk check<br/>pg-main"]
      s2["provision<br/>pg-replica-2"]
      s3["backup<br/>pg-main"]
      s4["restore<br/>pg-replica-2"]
      s5["enslave<br/>pg-replica-2"]
      s6["env update"]
      s1 --> s2
      s1 --> s3
      s2 --> s4
      s3 --> s4
      s4 --> s5
      s5 --> s6
    "#);
    let dot = dbgroups_in(dir.path(), &["graph", "--refresh=false"]);
    assert!(
        dot.stdout.starts_with("digraph \"dbgroups plan: shop\""),
        "{}",
        dot.stdout
    );
    assert!(
        dot.stdout
            .contains("\"backup:pg-main\" -> \"restore:pg-replica-2\";"),
        "{}",
        dot.stdout
    );
}

#[test]
fn a_stale_plan_file_is_refused_saying_what_moved() {
    let dir = quickstart();
    let state = record_quickstart(dir.path());
    let run = dbgroups_in(
        dir.path(),
        &["plan", "--refresh=false", "--out", "plan.json"],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let file = PlanFile::parse(&std::fs::read(dir.path().join("plan.json")).expect("read"))
        .expect("parses");
    let manifest = std::fs::read(dir.path().join("manifest.yml")).expect("read");
    assert_eq!(file.check_current("shop", Some(&state), &manifest), Ok(()));

    // The state moved on.
    let store = DirectoryStore::new(dir.path().join(".dbgroups"));
    let mut moved = store.load("shop").expect("loads").expect("exists");
    save_state(&dir.path().join(".dbgroups"), &mut moved);
    let err = file
        .check_current("shop", Some(&moved), &manifest)
        .expect_err("stale");
    assert_eq!(
        err,
        Stale::Serial {
            planned: 1,
            current: 2
        }
    );
    assert_eq!(
        err.to_string(),
        "the state moved on since the plan was made (serial 1 then, 2 now)"
    );

    // Another state altogether.
    let mut other = moved.clone();
    other.lineage = "another-lineage".into();
    let err = file
        .check_current("shop", Some(&other), &manifest)
        .expect_err("stale");
    assert!(
        err.to_string().starts_with(
            "the state's lineage changed (planned against lineage-test, now another-lineage)"
        ),
        "{err}"
    );

    // The manifest changed.
    let mut edited = manifest.clone();
    edited.extend_from_slice(b"# a comment\n");
    let err = file
        .check_current("shop", Some(&state), &edited)
        .expect_err("stale");
    assert!(matches!(err, Stale::Manifest { .. }), "{err}");
    assert!(
        err.to_string()
            .starts_with("the manifest changed since the plan was made"),
        "{err}"
    );

    // Another application's state.
    let err = file
        .check_current("billing", Some(&state), &manifest)
        .expect_err("stale");
    assert_eq!(
        err.to_string(),
        "the plan is for application \"shop\", not \"billing\""
    );
}

#[test]
fn a_tampered_or_truncated_plan_file_is_refused() {
    let dir = quickstart();
    let run = dbgroups_in(
        dir.path(),
        &["plan", "--refresh=false", "--out", "plan.json"],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let path = dir.path().join("plan.json");
    let text = std::fs::read_to_string(&path).expect("read");

    let tampered = text.replacen("pg-replica-1", "pg-replica-9", 1);
    assert_eq!(
        PlanFile::parse(tampered.as_bytes()),
        Err(PlanFileError::Tampered)
    );
    std::fs::write(&path, &tampered).expect("write");
    let shown = dbgroups_in(dir.path(), &["show", "plan.json"]);
    assert_eq!(shown.code, 1);
    assert!(
        shown
            .stderr
            .contains("the plan file was modified after it was written"),
        "{}",
        shown.stderr
    );

    let truncated = &text.as_bytes()[..text.len() / 2];
    assert!(matches!(
        PlanFile::parse(truncated),
        Err(PlanFileError::Unreadable(_))
    ));
    let newer = text.replacen("\"format_version\": 2", "\"format_version\": 9", 1);
    assert_eq!(
        PlanFile::parse(newer.as_bytes()),
        Err(PlanFileError::NewerFormat {
            found: 9,
            supported: 2
        })
    );
    // A file of version 1 named its backups by step id: refused, with what
    // to do.
    let older = text.replacen("\"format_version\": 2", "\"format_version\": 1", 1);
    assert_eq!(
        PlanFile::parse(older.as_bytes()),
        Err(PlanFileError::OlderFormat {
            found: 1,
            supported: 2
        })
    );
    std::fs::write(&path, &older).expect("write");
    let shown = dbgroups_in(dir.path(), &["show", "plan.json"]);
    assert_eq!(shown.code, 1);
    assert!(
        shown.stderr.contains("format version 1")
            && shown.stderr.contains("dbgroups plan --out FILE"),
        "{}",
        shown.stderr
    );
}

#[test]
fn a_second_writer_is_told_who_holds_the_lock_or_waits_for_it() {
    let dir = quickstart();
    let store = DirectoryStore::new(dir.path().join(".dbgroups"));
    // This test process holds the lock; dbgroups runs as a second process.
    let held = store
        .lock(
            dbgroups_state::LockScope::Everything,
            "apply (test holder)",
            Duration::ZERO,
        )
        .expect("lock");
    let run = dbgroups_in(
        dir.path(),
        &["plan", "--refresh=false", "--out", "plan.json"],
    );
    assert_eq!(run.code, 1);
    assert!(
        run.stderr.contains(&format!(
            "the state is locked by `apply (test holder)` (pid {}",
            std::process::id()
        )),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains(&held.info().id),
        "the message names the lock id for `state unlock`"
    );
    assert!(
        !dir.path().join("plan.json").exists(),
        "nothing was written"
    );

    // The waiter must really wait: the lock is let go only once dbgroups
    // has the lock file open (it is in its wait loop), and the plan file
    // appears only after that.
    let mut waiter = std::process::Command::new(env!("CARGO_BIN_EXE_dbgroups"))
        .args(["plan", "--refresh=false", "--out", "plan.json"])
        .args(["--lock-timeout", "120s"])
        .current_dir(dir.path())
        .env("NO_COLOR", "1")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("starts");
    let lock_file = std::fs::canonicalize(dir.path().join(".dbgroups/lock")).expect("lock file");
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while !crate::common::has_open(waiter.id(), &lock_file) {
        assert!(
            waiter.try_wait().expect("polls").is_none(),
            "dbgroups ended instead of waiting for the lock"
        );
        assert!(
            std::time::Instant::now() < deadline,
            "dbgroups never opened the lock file"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(
        !dir.path().join("plan.json").exists(),
        "nothing is written while the lock is held"
    );
    assert!(waiter.try_wait().expect("polls").is_none(), "still waiting");
    drop(held);
    let waited = waiter.wait_with_output().expect("ends");
    let stderr = String::from_utf8_lossy(&waited.stderr);
    assert!(waited.status.success(), "{stderr}");
    assert!(dir.path().join("plan.json").exists());
}

#[test]
fn state_commands_mask_secrets() {
    let dir = quickstart();
    let empty = dbgroups_in(dir.path(), &["state", "list"]);
    assert_eq!(empty.code, 0);
    assert!(
        empty.stderr.contains("No recorded state"),
        "{}",
        empty.stderr
    );
    record_quickstart(dir.path());
    let list = dbgroups_in(dir.path(), &["state", "list"]);
    assert_eq!(list.stdout, "shop\tserial 1\t2 groups\n");
    let show = dbgroups_in(dir.path(), &["state", "show"]);
    assert_eq!(show.code, 0, "{}", show.stderr);
    assert!(
        !show.stdout.contains(FAKE_PASSWORD_PREFIX),
        "{}",
        show.stdout
    );
    assert!(
        show.stdout.contains("\"password\": \"(sensitive)\""),
        "{}",
        show.stdout
    );
    let by_app = dbgroups_in(dir.path(), &["state", "show", "--app", "shop"]);
    assert_eq!(by_app.stdout, show.stdout);
    let unlock = dbgroups_in(dir.path(), &["state", "unlock", "no-such-id"]);
    assert_eq!(unlock.code, 1);
    assert!(
        unlock.stderr.contains("no lock with id no-such-id is held"),
        "{}",
        unlock.stderr
    );
}

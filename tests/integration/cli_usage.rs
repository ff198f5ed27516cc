//! Exit statuses, flags and help as a script meets them: usage errors,
//! plans that can do nothing, flags a command has no use for, and the
//! `-` for stdin and stdout.

use std::io::Write;
use std::process::{Command, Stdio};

use dbgroups_plan::planfile::PlanFile;

use crate::cli::{dbgroups, dbgroups_in};
use crate::cli_plan::{quickstart, record_quickstart};

#[test]
fn usage_errors_exit_1_even_with_detailed_exitcode() {
    let dir = quickstart();
    for args in [
        &["plan", "--fromat", "json", "--detailed-exitcode"][..],
        &["plan", "--refresh=flase", "--detailed-exitcode"],
        &["plan", "--detailed-exitcode", "--format", "yaml"],
        &["validate", "--no-such-flag"],
        &["no-such-command"],
    ] {
        let run = dbgroups_in(dir.path(), args);
        assert_eq!(run.code, 1, "{args:?}: {}", run.stderr);
        assert!(run.stderr.contains("error:"), "{args:?}: {}", run.stderr);
    }
    // Help and version are not errors.
    assert_eq!(dbgroups(&["plan", "--help"]).code, 0);
    assert_eq!(dbgroups(&["--version"]).code, 0);
}

/// The quickstart recorded, then a group added to the manifest without
/// `--add-group`: the only change asked for is blocked.
fn everything_blocked() -> tempfile::TempDir {
    let dir = quickstart();
    record_quickstart(dir.path());
    let manifest = dir.path().join("manifest.yml");
    let text = std::fs::read_to_string(&manifest).expect("manifest");
    let with_new_group = text.replace(
        "redis:",
        "    reporting:\n      configuration: { version: \"15\" }\n      servers:\n        - server: { unique_name: pg-report }\nredis:",
    );
    assert_ne!(with_new_group, text);
    std::fs::write(&manifest, with_new_group).expect("write");
    dir
}

#[test]
fn a_plan_whose_every_change_is_blocked_exits_1() {
    let dir = everything_blocked();
    for args in [
        &["plan", "--refresh=false"][..],
        &["plan", "--refresh=false", "--detailed-exitcode"],
        &["plan", "--refresh=false", "--format", "json"],
    ] {
        let run = dbgroups_in(dir.path(), args);
        assert_eq!(run.code, 1, "{args:?}: {}{}", run.stdout, run.stderr);
        assert!(
            run.stderr
                .contains("nothing can be planned: 1 change is blocked"),
            "{args:?}: {}",
            run.stderr
        );
    }
    // The JSON is still the plan (one document), saying what is blocked.
    let json = dbgroups_in(dir.path(), &["plan", "--refresh=false", "--json"]);
    let plan: serde_json::Value = serde_json::from_str(&json.stdout).expect("one JSON document");
    assert_eq!(plan["summary"]["blocked"], 1);
    assert_eq!(plan["summary"]["has_changes"], false);
    // apply refuses it the same way, and changes nothing.
    let apply = dbgroups_in(dir.path(), &["apply", "--refresh=false", "--auto-approve"]);
    assert_eq!(apply.code, 1, "{}", apply.stderr);
    assert!(
        apply.stderr.contains("nothing can be planned"),
        "{}",
        apply.stderr
    );
    // With --json, the events open and close, saying why nothing ran.
    let json = dbgroups_in(
        dir.path(),
        &["apply", "--refresh=false", "--auto-approve", "--json"],
    );
    assert_eq!(json.code, 1, "{}", json.stderr);
    let events: Vec<serde_json::Value> = json
        .stdout
        .lines()
        .map(|line| serde_json::from_str(line).expect("NDJSON"))
        .collect();
    assert_eq!(events.len(), 2, "{}", json.stdout);
    assert_eq!(events[0]["event"], "apply_started");
    assert_eq!(events[1]["result"], "blocked");
    // Asked for, the change is planned and the exit status is the usual.
    let added = dbgroups_in(
        dir.path(),
        &[
            "plan",
            "--refresh=false",
            "--add-group",
            "postgresql.reporting",
            "--detailed-exitcode",
        ],
    );
    assert_eq!(added.code, 2, "{}", added.stderr);
}

#[test]
fn flags_that_do_nothing_for_a_command_are_refused() {
    let dir = quickstart();
    for (args, flag) in [
        (&["schema", "--app", "shop"][..], "--app"),
        (&["schema", "-f", "manifest.yml"], "--manifest"),
        (
            &["show", "plan.json", "--environment", "production"],
            "--environment",
        ),
        (&["show", "plan.json", "--state-dir", "x"], "--state-dir"),
        (&["state", "unlock", "some-id", "--app", "shop"], "--app"),
        (
            &["state", "unlock", "some-id", "--lock-timeout", "5s"],
            "--lock-timeout",
        ),
    ] {
        let run = dbgroups_in(dir.path(), args);
        assert_eq!(run.code, 1, "{args:?}");
        assert!(
            run.stderr
                .contains(&format!("{flag} does nothing for `dbgroups")),
            "{args:?}: {}",
            run.stderr
        );
    }
    // --no-color is fine everywhere, and unlock finds the state by --state-dir.
    assert_eq!(dbgroups_in(dir.path(), &["schema", "--no-color"]).code, 0);
    let unlock = dbgroups_in(
        dir.path(),
        &["state", "unlock", "some-id", "--state-dir", ".dbgroups"],
    );
    assert!(
        unlock.stderr.contains("no lock with id some-id is held"),
        "{}",
        unlock.stderr
    );
}

#[test]
fn every_command_that_acts_says_its_exit_status_in_its_help() {
    for command in [
        "apply", "show", "graph", "env", "status", "destroy", "plan", "validate",
    ] {
        let run = dbgroups(&[command, "--help"]);
        assert_eq!(run.code, 0);
        assert!(
            run.stdout.contains("Exit status:"),
            "{command}: {}",
            run.stdout
        );
    }
    let plan = dbgroups(&["plan", "--help"]).stdout;
    assert!(plan.contains("every change is blocked"), "{plan}");
    let status = dbgroups(&["status", "--help"]).stdout;
    assert!(status.contains("1 when one is down"), "{status}");
}

#[test]
fn out_dash_writes_the_plan_file_to_stdout_and_the_rendering_to_stderr() {
    let dir = quickstart();
    let run = dbgroups_in(dir.path(), &["plan", "--refresh=false", "--out", "-"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let file = PlanFile::parse(run.stdout.as_bytes()).expect("stdout is the plan file");
    assert_eq!(file.plan.application, "shop");
    assert!(
        run.stderr.contains("Plan: 2 to create"),
        "the rendering is on stderr: {}",
        run.stderr
    );
    assert!(!dir.path().join("-").exists(), "no file named -");
}

/// `dbgroups ARGS` in `dir` with `input` on its stdin.
fn with_stdin(dir: &std::path::Path, args: &[&str], input: &[u8]) -> std::process::Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_dbgroups"))
        .args(args)
        .current_dir(dir)
        .env("NO_COLOR", "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("dbgroups runs");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input)
        .expect("write the manifest");
    child.wait_with_output().expect("dbgroups ends")
}

#[test]
fn dash_f_dash_reads_the_manifest_from_stdin() {
    let dir = tempfile::tempdir().expect("temp dir");
    let manifest =
        std::fs::read(crate::common::repo_path("examples/quickstart/manifest.yml")).expect("read");
    let output = with_stdin(
        dir.path(),
        &["plan", "--refresh=false", "-f", "-"],
        &manifest,
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        stdout.contains("Plan: 2 to create, 0 to change, 0 to remove; 7 steps."),
        "{stdout}"
    );
}

#[test]
fn validate_reads_the_manifest_from_stdin_and_names_it_in_each_line() {
    let dir = tempfile::tempdir().expect("temp dir");
    let manifest = "application: x\npostgresql:\n  groups:\n    d:\n      bogus: 1\n      servers:\n        - server: { unique_name: pg-one }\n";
    let output = with_stdin(
        dir.path(),
        &["validate", "-f", "-", "--format", "short"],
        manifest.as_bytes(),
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(1), "{stdout}");
    assert_eq!(
        stdout.trim_end(),
        "<stdin>:5:7: error[unknown-key]: unknown key \"bogus\" (help: group `postgresql.d` accepts: configuration, servers, primary, backups, replicate_from, import_from, add_odd_member, allow_from)",
        "one line per diagnostic on stdout"
    );
    assert!(
        !dir.path().join("-").exists(),
        "stdin is not a file named -"
    );
}

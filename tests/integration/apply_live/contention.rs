//! Two writers on one state at the same moment: two `apply` runs, and an
//! `apply` beside a `plan --out`. Exactly one proceeds; the other stops
//! with a message naming the holder, or waits within `--lock-timeout`. The
//! state's serial only grows, and no step runs twice.

use std::process::{Command, Output, Stdio};

use super::*;

fn spawn(dir: &Path, args: &[&str]) -> std::process::Child {
    Command::new(env!("CARGO_BIN_EXE_dbgroups"))
        .args(args)
        .current_dir(dir)
        .env("NO_COLOR", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starts")
}

/// What a run printed, kept for the secret scan as well.
fn text(output: &Output) -> String {
    let (stdout, stderr) = (
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr),
    );
    crate::transcripts::record_run(&["(concurrent run)"], &stdout, &stderr);
    format!("{stdout}{stderr}")
}

fn serial(dir: &Path) -> u64 {
    state(dir).serial
}

#[test]
fn two_applies_at_once_one_proceeds_and_the_other_names_the_holder() {
    let (dir, _servers) = quickstart();
    let apply = [
        "apply",
        "--auto-approve",
        "--refresh=false",
        "--lock-timeout",
        "0s",
    ];
    let (first, second) = (spawn(dir.path(), &apply), spawn(dir.path(), &apply));
    let outputs = [
        first.wait_with_output().expect("first ends"),
        second.wait_with_output().expect("second ends"),
    ];
    let succeeded: Vec<&Output> = outputs.iter().filter(|o| o.status.success()).collect();
    let refused: Vec<&Output> = outputs.iter().filter(|o| !o.status.success()).collect();
    assert_eq!(
        (succeeded.len(), refused.len()),
        (1, 1),
        "exactly one proceeds:\n{}\n---\n{}",
        text(&outputs[0]),
        text(&outputs[1])
    );
    let refusal = text(refused[0]);
    assert!(
        refusal.contains("the state is locked by `apply` (pid "),
        "the refusal names its holder: {refusal}"
    );
    assert!(
        !refusal.contains("provision:"),
        "the refused apply ran no step: {refusal}"
    );
    let provisions = text(succeeded[0])
        .matches("done   provision:pg-main")
        .count();
    assert_eq!(provisions, 1, "pg-main provisioned once");
    converged(dir.path(), "manifest.yml");
}

#[test]
fn a_waiting_apply_and_a_plan_out_beside_a_running_apply() {
    let (dir, _servers) = quickstart();
    apply_ok(dir.path(), &[]);
    let before = serial(dir.path());
    // A scale up holds the lock while it runs.
    let grown = std::fs::read_to_string(dir.path().join("manifest.yml"))
        .expect("manifest")
        .replace(
            "- server: { unique_name: pg-replica-1 }",
            "- server: { unique_name: pg-replica-1 }\n        - server: { unique_name: pg-replica-2 }",
        );
    assert!(
        grown.contains("pg-replica-2"),
        "the quickstart declares pg-replica-1"
    );
    set_manifest(dir.path(), &grown);
    let (mut running, _, rest) = apply_until(dir.path(), "start  ");
    // Its progress keeps coming: read it, so the pipe never fills.
    let progress = std::thread::spawn(move || rest.map_while(Result::ok).collect::<Vec<String>>());

    // plan --out without waiting: refused, naming the running apply.
    let planned = dbgroups_in(
        dir.path(),
        &[
            "plan",
            "--refresh=false",
            "--out",
            "plan.json",
            "--lock-timeout",
            "0s",
        ],
    );
    assert_ne!(planned.code, 0, "{}", planned.stdout);
    assert!(
        planned
            .stderr
            .contains("the state is locked by `apply` (pid "),
        "{}",
        planned.stderr
    );
    assert!(
        !dir.path().join("plan.json").exists(),
        "no plan file written"
    );
    // A second apply that may wait: it runs once the first is done, and
    // finds nothing left to do.
    let waiting = spawn(
        dir.path(),
        &[
            "apply",
            "--auto-approve",
            "--refresh=false",
            "--lock-timeout",
            "5m",
        ],
    );
    let first = running.wait().expect("first apply ends");
    let progress = progress.join().expect("progress").join("\n");
    crate::transcripts::record_run(&["apply", "(running)"], "", &progress);
    assert!(first.success(), "{progress}");
    assert!(
        progress.contains("done   provision:pg-replica-2"),
        "{progress}"
    );
    let second = waiting.wait_with_output().expect("waiting apply ends");
    let printed = text(&second);
    assert!(second.status.success(), "{printed}");
    assert!(
        !printed.contains("provision:pg-replica-2"),
        "the waiting apply did not provision again: {printed}"
    );
    let after = serial(dir.path());
    assert!(after > before, "the serial grew: {before} → {after}");

    // plan --out that may wait, now that nobody holds the lock: written,
    // and empty; the serial is unchanged by planning.
    let planned = dbgroups_in(
        dir.path(),
        &[
            "plan",
            "--refresh=false",
            "--out",
            "plan.json",
            "--lock-timeout",
            "5m",
            "--detailed-exitcode",
        ],
    );
    assert_eq!(planned.code, 0, "{}\n{}", planned.stdout, planned.stderr);
    assert!(dir.path().join("plan.json").exists());
    assert_eq!(serial(dir.path()), after, "planning wrote no state");
}

//! Faults: a failed apply, SIGKILL and Ctrl-C in the middle of a step, and
//! the disk-space guard. Each is finished by the next apply with nothing lost.

use super::*;

#[test]
fn a_failed_apply_is_finished_by_the_next_one_with_nothing_lost() {
    let (dir, _servers) = quickstart();
    // redis-main cannot get its directory: its provision fails while the
    // PostgreSQL steps in flight finish.
    let blocker = dir.path().join(".dbgroups/servers/redis-main");
    std::fs::create_dir_all(blocker.parent().expect("parent")).expect("mkdir");
    std::fs::write(&blocker, "in the way").expect("block");
    let failed = dbgroups_in(
        dir.path(),
        &[
            "apply",
            "--auto-approve",
            "--refresh=false",
            "--parallelism",
            "1",
        ],
    );
    assert_eq!(failed.code, 1, "{}", failed.stderr);
    assert!(
        failed.stderr.contains("FAILED provision:redis-main"),
        "{}",
        failed.stderr
    );
    let interrupted = state(dir.path());
    assert!(
        interrupted.journal.is_some(),
        "the journal says an apply is unfinished"
    );

    // Steps run in plan order with --parallelism 1: pg-main was provisioned
    // and recorded before redis-main failed; its slave was not finished.
    assert!(
        interrupted.server("pg-main").is_some(),
        "pg-main is recorded"
    );
    assert!(
        interrupted.server("pg-replica-1").is_none(),
        "an unfinished slave is not recorded as a member"
    );

    // Data written between the two runs survives the second.
    let runtime = crate::common::runtime();
    runtime.block_on(async {
        let master = pg(port(&interrupted, "pg-main"), &password(&interrupted, "postgresql.default")).await;
        master
            .batch_execute("CREATE TABLE orders (id int PRIMARY KEY); INSERT INTO orders VALUES (1), (2), (3);")
            .await
            .expect("writes");
    });

    std::fs::remove_file(&blocker).expect("unblock");
    let resumed = dbgroups_in(dir.path(), &["apply", "--auto-approve", "--refresh=false"]);
    assert_eq!(resumed.code, 0, "{}\n{}", resumed.stdout, resumed.stderr);
    assert!(
        resumed.stdout.contains("create redis.default"),
        "the resumed plan still builds redis without --add-group:\n{}",
        resumed.stdout
    );
    let finished = state(dir.path());
    assert!(finished.journal.is_none());
    runtime.block_on(async {
        let pg_password = password(&finished, "postgresql.default");
        let master = pg(port(&finished, "pg-main"), &pg_password).await;
        let slave = pg(port(&finished, "pg-replica-1"), &pg_password).await;
        let on_master: i64 = master
            .query_one("SELECT count(*) FROM orders", &[])
            .await
            .expect("reads")
            .get(0);
        assert_eq!(on_master, 3, "the rows written between the runs are kept");
        assert_eq!(wait_for_rows(&slave, 3).await, 3, "and reached the slave");
    });
    let replan = dbgroups_in(dir.path(), &["plan", "--detailed-exitcode"]);
    assert_eq!(replan.code, 0, "converged:\n{}", replan.stdout);
}

#[test]
fn apply_killed_mid_step_with_sigkill_is_finished_by_the_next_apply() {
    let (dir, _servers) = quickstart();
    let (mut child, _, _) = apply_until(dir.path(), "start  enslave:pg-replica-1");
    // SIGKILL: no handler runs, nothing is flushed, the lock is released
    // only because the OS closes the file.
    child.kill().expect("kills");
    let _ = child.wait();

    let crashed = state(dir.path());
    assert!(crashed.journal.is_some(), "the crash left the journal");
    assert!(
        crashed.server("pg-replica-1").is_none(),
        "the slave was not finished, so it is not a member"
    );

    let resumed = dbgroups_in(dir.path(), &["apply", "--auto-approve", "--refresh=false"]);
    assert_eq!(resumed.code, 0, "{}\n{}", resumed.stdout, resumed.stderr);
    let finished = state(dir.path());
    assert!(finished.journal.is_none());
    let runtime = crate::common::runtime();
    runtime.block_on(async {
        let pg_password = password(&finished, "postgresql.default");
        let master = pg(port(&finished, "pg-main"), &pg_password).await;
        master
            .batch_execute(
                "CREATE TABLE orders (id int PRIMARY KEY); INSERT INTO orders VALUES (1), (2);",
            )
            .await
            .expect("writes");
        let slave = pg(port(&finished, "pg-replica-1"), &pg_password).await;
        assert_eq!(
            wait_for_rows(&slave, 2).await,
            2,
            "the slave follows after the resume"
        );
    });
    let replan = dbgroups_in(dir.path(), &["plan", "--detailed-exitcode"]);
    assert_eq!(replan.code, 0, "converged:\n{}", replan.stdout);
}

#[test]
fn the_disk_space_guard_refuses_a_backup_that_cannot_fit_and_changes_nothing() {
    let (dir, _servers) = quickstart();
    let applied = dbgroups_in(dir.path(), &["apply", "--auto-approve", "--refresh=false"]);
    assert_eq!(applied.code, 0, "{}", applied.stderr);
    let before = state(dir.path());
    // Backups land on a 1 MiB filesystem; the master holds far more.
    let _small = SmallFilesystem::mount(&dir.path().join(".dbgroups/backups"), "1m");
    let manifest = std::fs::read_to_string(dir.path().join("manifest.yml")).expect("read").replace(
        "        - server: { unique_name: pg-replica-1 } # the rest = slaves in the group\n",
        "        - server: { unique_name: pg-replica-1 }\n        - server: { unique_name: pg-replica-2 }\n",
    );
    set_manifest(dir.path(), &manifest);
    let refused = dbgroups_in(dir.path(), &["apply", "--auto-approve", "--refresh=false"]);
    assert_eq!(refused.code, 1, "{}\n{}", refused.stdout, refused.stderr);
    assert!(
        refused
            .stderr
            .contains("FAILED disk-check:backup:pg-main: not enough free space for the backup"),
        "{}",
        refused.stderr
    );
    assert!(
        refused.stderr.contains("nothing was changed"),
        "{}",
        refused.stderr
    );
    let after = state(dir.path());
    assert!(
        after.server("pg-replica-2").is_none(),
        "no server was added"
    );
    assert_eq!(
        after.groups, before.groups,
        "the recorded groups are unchanged"
    );

    let off = dbgroups_in(
        dir.path(),
        &["plan", "--refresh=false", "--skip-disk-check"],
    );
    assert!(
        off.stdout
            .contains("! DISK-SPACE CHECK OFF (--skip-disk-check)"),
        "the plan says the check is off:\n{}",
        off.stdout
    );
}

#[test]
fn ctrl_c_lets_running_steps_finish_and_the_next_apply_completes() {
    let (dir, _servers) = quickstart();
    let (mut child, mut seen, rest) = apply_until(dir.path(), "start  backup:pg-main");
    // Ctrl-C reaches dbgroups; the servers run in their own process groups
    // and do not see it.
    let status = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    seen.extend(rest.map_while(Result::ok));
    let status = child.wait().expect("waits");
    let output = seen.join("\n");
    assert_eq!(status.code(), Some(1), "{output}");
    assert!(
        output.contains("interrupted: no new steps start"),
        "{output}"
    );
    assert!(
        output.contains("done   backup:pg-main"),
        "the running step finished:\n{output}"
    );
    assert!(
        !output.contains("start  restore:pg-replica-1"),
        "nothing new started:\n{output}"
    );
    assert!(output.contains("apply stopped: interrupted"), "{output}");

    let resumed = dbgroups_in(dir.path(), &["apply", "--auto-approve", "--refresh=false"]);
    assert_eq!(resumed.code, 0, "{}\n{}", resumed.stdout, resumed.stderr);
    let replan = dbgroups_in(dir.path(), &["plan", "--detailed-exitcode"]);
    assert_eq!(replan.code, 0, "converged:\n{}", replan.stdout);
}

/// An apply killed after a new slave started following, but before the
/// state recorded it: the slave runs, pending in the journal. `destroy`
/// stops and deletes it with the rest.
#[test]
fn destroy_after_a_crash_also_removes_the_pending_servers() {
    let (dir, _servers) = quickstart();
    let crashed = std::process::Command::new(env!("CARGO_BIN_EXE_dbgroups"))
        .args(["apply", "--auto-approve", "--refresh=false"])
        .current_dir(dir.path())
        .env("NO_COLOR", "1")
        .env("DBGROUPS_CRASH_AT", "after:enslave:pg-replica-1")
        .output()
        .expect("runs");
    crate::transcripts::record_run(
        &["apply", "(crashing after enslave)"],
        &String::from_utf8_lossy(&crashed.stdout),
        &String::from_utf8_lossy(&crashed.stderr),
    );
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(
        crashed.status.signal(),
        Some(9),
        "killed at the crash point"
    );
    let left = state(dir.path());
    assert!(
        left.server("pg-replica-1").is_none()
            && left
                .journal
                .as_ref()
                .is_some_and(|j| j.pending.contains_key("pg-replica-1")),
        "the slave is pending, not a member"
    );
    let servers_dir = dir
        .path()
        .join(".dbgroups/servers")
        .canonicalize()
        .expect("exists");
    let replica_dir = servers_dir.join("pg-replica-1").display().to_string();
    assert!(
        !processes_mentioning(&replica_dir).is_empty(),
        "the pending slave runs"
    );

    let destroyed = dbgroups_in(
        dir.path(),
        &[
            "destroy",
            "--app",
            "shop",
            "--auto-approve",
            "--lock-timeout",
            "30s",
        ],
    );
    assert_eq!(
        destroyed.code, 0,
        "{}\n{}",
        destroyed.stdout, destroyed.stderr
    );
    assert!(
        destroyed.stdout.contains("pg-replica-1"),
        "the plan names the pending slave: {}",
        destroyed.stdout
    );
    assert_no_server_left(&servers_dir);
    let after = destroyed_state(dir.path());
    assert!(after.groups.is_empty() && after.journal.is_none());
}

/// Ctrl-C twice during `apply --resync`: the first stops the scheduling,
/// the second the running backup tool (the servers keep running). The
/// message says so and names the exact command that finishes the re-sync,
/// no staged backup is left, and that command then finishes it.
#[test]
fn a_second_ctrl_c_stops_the_running_tools_and_names_the_command_to_finish() {
    use std::io::BufRead;
    let (dir, _servers) = quickstart();
    set_manifest(
        dir.path(),
        "application: shop\npostgresql:\n  configuration: { version: \"15\" }\n  servers:\n    - server: { unique_name: pg-main }\n    - server: { unique_name: pg-replica-1 }\n",
    );
    apply_ok(dir.path(), &[]);
    let recorded = state(dir.path());
    let app_password = password(&recorded, "postgresql.default");
    let runtime = crate::common::runtime();
    // Enough data that the base backup is still running at the second Ctrl-C.
    runtime.block_on(async {
        pg(port(&recorded, "pg-main"), &app_password)
            .await
            .batch_execute(
                "CREATE TABLE orders (id int PRIMARY KEY, note text); INSERT INTO orders SELECT g, repeat('x', 200) FROM generate_series(1, 600000) g;",
            )
            .await
            .expect("writes");
    });

    let args = [
        "apply",
        "--auto-approve",
        "--refresh=false",
        "--resync",
        "pg-replica-1",
    ];
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_dbgroups"))
        .args(args)
        .current_dir(dir.path())
        .env("NO_COLOR", "1")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("starts");
    let mut lines = std::io::BufReader::new(child.stderr.take().expect("piped")).lines();
    let mut seen = Vec::new();
    let interrupt = |child: &std::process::Child| {
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(i32::try_from(child.id()).expect("a pid")),
            nix::sys::signal::Signal::SIGINT,
        )
        .expect("SIGINT");
    };
    let mut read_until = |marker: &str, seen: &mut Vec<String>| {
        for line in lines.by_ref() {
            let line = line.expect("reads");
            let found = line.contains(marker);
            seen.push(line);
            if found {
                return;
            }
        }
        panic!("never reached {marker}:\n{}", seen.join("\n"));
    };
    read_until("start  backup:pg-main", &mut seen);
    interrupt(&child);
    read_until("interrupted: no new steps start", &mut seen);
    // The step checks free space before its tool starts: the second Ctrl-C
    // is sent once pg_basebackup runs (else it is refused, not stopped).
    let backups = dir.path().join(".dbgroups/backups").canonicalize();
    let mut tool_runs = false;
    for _ in 0..600 {
        tool_runs = backups.as_ref().is_ok_and(|backups| {
            processes_mentioning(&backups.display().to_string())
                .iter()
                .any(|p| p.contains("pg_basebackup"))
        });
        if tool_runs {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert!(tool_runs, "pg_basebackup started:\n{}", seen.join("\n"));
    interrupt(&child);
    seen.extend(lines.map_while(Result::ok));
    let status = child.wait().expect("waits");
    let output = seen.join("\n");
    crate::transcripts::record_run(&["apply", "(Ctrl-C twice)"], "", &output);
    assert_eq!(status.code(), Some(1), "{output}");
    assert!(
        output.contains("second Ctrl-C: stopped 1 running tool"),
        "the second Ctrl-C says what it stopped:\n{output}"
    );
    assert!(
        output.contains("FAILED backup:pg-main"),
        "the backup did not run to its end:\n{output}"
    );
    // The message is wrapped to the terminal's width.
    let flat = output
        .split_whitespace()
        .filter(|word| *word != "│")
        .collect::<Vec<_>>()
        .join(" ");
    assert!(
        flat.contains(
            "not finished: --resync pg-replica-1; to finish, run: dbgroups apply --auto-approve --refresh=false --resync pg-replica-1"
        ),
        "the exact command to repeat is named:\n{output}"
    );
    let staged: Vec<_> = std::fs::read_dir(dir.path().join(".dbgroups/backups"))
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .collect();
    assert!(staged.is_empty(), "no staged backup is left: {staged:?}");

    // The servers ran on; the named command finishes the re-sync.
    let finished = dbgroups_in(dir.path(), &args);
    assert_eq!(finished.code, 0, "{}\n{}", finished.stdout, finished.stderr);
    assert!(
        finished.stdout.contains("re-synchronise pg-replica-1"),
        "{}",
        finished.stdout
    );
    runtime.block_on(async {
        let slave = pg(port(&recorded, "pg-replica-1"), &app_password).await;
        assert_eq!(wait_for_rows(&slave, 600000).await, 600000);
    });
}

/// Ctrl-C while the last step runs: that step finishes, nothing was left
/// undone, so the apply is complete, exits 0 and says so (it used to say
/// "interrupted; 3 steps finished, 0 did not start" and exit 1).
#[test]
fn ctrl_c_during_the_last_step_reports_a_complete_apply() {
    let (dir, _servers) = quickstart();
    set_manifest(
        dir.path(),
        "application: shop\npostgresql:\n  configuration: { version: \"15\" }\n  servers:\n    - server: { unique_name: pg-main }\n    - server: { unique_name: pg-replica-1 }\n",
    );
    apply_ok(dir.path(), &[]);
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_dbgroups"))
        .args([
            "apply",
            "--auto-approve",
            "--refresh=false",
            "--resync",
            "pg-replica-1",
        ])
        .current_dir(dir.path())
        .env("NO_COLOR", "1")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("starts");
    use std::io::BufRead;
    let mut lines = std::io::BufReader::new(child.stderr.take().expect("piped")).lines();
    let mut seen = Vec::new();
    for line in lines.by_ref() {
        let line = line.expect("reads");
        let last_step = line.contains("start  enslave:pg-replica-1");
        seen.push(line);
        if last_step {
            break;
        }
    }
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(i32::try_from(child.id()).expect("a pid")),
        nix::sys::signal::Signal::SIGINT,
    )
    .expect("SIGINT");
    seen.extend(lines.map_while(Result::ok));
    let status = child.wait().expect("waits");
    let output = seen.join("\n");
    crate::transcripts::record_run(&["apply", "(Ctrl-C in the last step)"], "", &output);
    assert!(
        output.contains("interrupted: no new steps start"),
        "{output}"
    );
    assert_eq!(status.code(), Some(0), "{output}");
    assert!(
        output.contains("Apply complete: 4 steps. Ctrl-C came after the last step had started, and every step finished."),
        "{output}"
    );
    assert!(
        state(dir.path()).journal.is_none(),
        "the apply is recorded as finished"
    );
    converged(dir.path(), "manifest.yml");
}

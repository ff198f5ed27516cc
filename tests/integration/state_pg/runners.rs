//! CI end to end: two runners (two working directories with no state of
//! their own) share the state in PostgreSQL. Runner A plans and saves a
//! plan file; runner B applies exactly that file; a plan made before
//! someone else's apply is refused as stale. Then the faults: an apply
//! killed with SIGKILL, and the state server restarted under an apply.

use std::path::Path;

use dbgroups_state::StateStore;

use super::{PASSPHRASE, StateServer, encrypted, eventually, run};

const MANIFEST: &str = "application: shop\nredis:\n  configuration: { version: \"7.0\" }\n  servers:\n    - server: { unique_name: redis-shared }\n";

/// A working directory with the manifest and nothing else.
fn runner() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("manifest.yml"), MANIFEST).expect("manifest");
    dir
}

/// Destroys what `dir` applied when the test ends, pass or fail.
struct Cleanup<'a> {
    dir: &'a Path,
    url: String,
}

impl Drop for Cleanup<'_> {
    fn drop(&mut self) {
        for application in ["shop", "blog"] {
            let _ = run(
                self.dir,
                &["destroy", "--app", application, "--auto-approve"],
                &[
                    ("DBGROUPS_STATE_URL", &self.url),
                    ("DBGROUPS_STATE_PASSPHRASE", PASSPHRASE),
                ],
            );
        }
    }
}

/// Waits until the child holds the lock (or has already ended).
fn holding_or_done(child: &mut std::process::Child, holders: &dyn Fn() -> usize) {
    eventually("the apply takes the lock", || {
        holders() > 0 || child.try_wait().ok().flatten().is_some()
    });
}

#[test]
fn two_runners_share_the_state_and_a_stale_plan_is_refused() {
    let server = StateServer::start();
    let url = server.url();
    let env = [
        ("DBGROUPS_STATE_URL", url.as_str()),
        ("DBGROUPS_STATE_PASSPHRASE", PASSPHRASE),
    ];
    let (a, b, c) = (runner(), runner(), runner());
    let _cleanup = Cleanup {
        dir: b.path(),
        url: url.clone(),
    };

    let planned = run(
        a.path(),
        &[
            "plan",
            "--out",
            "plan.bin",
            "--detailed-exitcode",
            "--format",
            "markdown",
        ],
        &env,
    );
    assert_eq!(planned.code, 2, "{}", planned.stderr);
    let late = run(c.path(), &["plan", "--out", "late.bin"], &env);
    assert_eq!(late.code, 0, "{}", late.stderr);
    std::fs::copy(a.path().join("plan.bin"), b.path().join("plan.bin")).expect("artifact");

    let applied = run(
        b.path(),
        &["apply", "plan.bin", "--lock-timeout", "2m"],
        &env,
    );
    assert_eq!(applied.code, 0, "{}\n{}", applied.stdout, applied.stderr);
    assert!(
        b.path().join(".dbgroups/env/shop.env").is_file(),
        "written locally too"
    );

    // Runner A, with no state of its own, sees what B applied.
    let offline = run(
        a.path(),
        &["plan", "--refresh=false", "--detailed-exitcode"],
        &[("DBGROUPS_STATE_URL", url.as_str())],
    );
    assert_eq!(offline.code, 0, "{}\n{}", offline.stdout, offline.stderr);
    assert!(!a.path().join(".dbgroups/apps").exists());
    let secrets = run(a.path(), &["env", "--show-secrets"], &env);
    assert_eq!(secrets.code, 0, "{}", secrets.stderr);
    let password = secrets
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("REDIS_PASSWORD="))
        .expect("a password")
        .to_string();
    assert!(password.len() >= 16, "{password}");
    assert!(
        !server.dump().contains(&password),
        "the dump holds no secret"
    );
    let history = run(
        a.path(),
        &["state", "history"],
        &[("DBGROUPS_STATE_URL", url.as_str())],
    );
    assert_eq!(history.code, 0, "{}", history.stderr);
    assert!(history.stdout.contains("\tapply\t"), "{}", history.stdout);
    let first = run(
        a.path(),
        &["state", "show", "--serial", "1"],
        &[("DBGROUPS_STATE_URL", url.as_str())],
    );
    assert_eq!(first.code, 0, "{}", first.stderr);
    assert!(first.stdout.contains("\"serial\": 1"), "{}", first.stdout);

    // C planned before B's apply: its plan is stale, and says what moved.
    let stale = run(c.path(), &["apply", "late.bin"], &env);
    assert_eq!(stale.code, 1);
    assert!(stale.stderr.contains("stale"), "{}", stale.stderr);
    assert!(
        stale.stderr.contains("state has been recorded since"),
        "{}",
        stale.stderr
    );
}

#[test]
fn an_apply_killed_or_cut_from_its_state_server_is_finished_by_the_next() {
    let server = StateServer::start();
    let url = server.url();
    let env = [
        ("DBGROUPS_STATE_URL", url.as_str()),
        ("DBGROUPS_STATE_PASSPHRASE", PASSPHRASE),
    ];
    let dir = runner();
    let _cleanup = Cleanup {
        dir: dir.path(),
        url: url.clone(),
    };
    let holders = || {
        dbgroups_state::PostgresStore::open(&url, "dbgroups", encrypted())
            .and_then(|s| s.lock_holders())
            .map(|h| h.len())
            .unwrap_or_default()
    };

    // SIGKILL while it holds the lock: the server releases it.
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_dbgroups"))
        .args(["apply", "--auto-approve"])
        .current_dir(dir.path())
        .envs(env)
        .env("NO_COLOR", "1")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("apply starts");
    holding_or_done(&mut child, &holders);
    child.kill().expect("SIGKILL");
    let _ = child.wait();
    eventually("the lock is released", || holders() == 0);
    let finished = run(dir.path(), &["apply", "--auto-approve"], &env);
    assert_eq!(finished.code, 0, "{}\n{}", finished.stdout, finished.stderr);

    // The state server restarts while an apply's step runs (its start
    // line is read before the restart): the session, and the lock with
    // it, is gone, so the apply fails saying so at its next write rather
    // than writing without the lock; no recorded step is lost, and the
    // next apply converges.
    std::fs::write(
        dir.path().join("blog.yml"),
        MANIFEST
            .replace("shop", "blog")
            .replace("redis-shared", "redis-blog"),
    )
    .expect("manifest");
    let before = versions(&url, "blog");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_dbgroups"))
        .args(["apply", "--auto-approve", "-f", "blog.yml"])
        .current_dir(dir.path())
        .envs(env)
        .env("NO_COLOR", "1")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("apply starts");
    let mut lines =
        std::io::BufRead::lines(std::io::BufReader::new(child.stderr.take().expect("piped")));
    let mut seen = Vec::new();
    for line in lines.by_ref() {
        let line = line.expect("reads");
        let started = line.contains("start  provision:redis-blog");
        seen.push(line);
        if started {
            break;
        }
    }
    assert!(
        seen.iter()
            .any(|l| l.contains("start  provision:redis-blog")),
        "the provision never started:\n{}",
        seen.join("\n")
    );
    server.restart();
    seen.extend(lines.map_while(Result::ok));
    let status = child.wait().expect("apply ends");
    let shown = seen.join("\n");
    crate::transcripts::record_run(&["apply", "(state server restarted)"], "", &shown);
    assert!(
        !status.success(),
        "the apply went on without its lock:\n{shown}"
    );
    assert!(shown.contains("state database"), "{shown}");
    assert!(
        versions(&url, "blog") >= before,
        "no recorded version was lost"
    );
    let next = run(
        dir.path(),
        &["apply", "--auto-approve", "-f", "blog.yml"],
        &env,
    );
    assert_eq!(next.code, 0, "{}\n{}", next.stdout, next.stderr);
    let converged = run(
        dir.path(),
        &["plan", "--detailed-exitcode", "-f", "blog.yml"],
        &env,
    );
    assert_eq!(
        converged.code, 0,
        "{}\n{}",
        converged.stdout, converged.stderr
    );
}

fn versions(url: &str, application: &str) -> usize {
    dbgroups_state::PostgresStore::open(url, "dbgroups", encrypted())
        .and_then(|s| s.versions(application))
        .map(|v| v.len())
        .unwrap_or_default()
}

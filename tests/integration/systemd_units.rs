//! The systemd unit a server on an ssh host becomes where the host runs
//! systemd (`crates/engines/src/ssh/systemd.rs`). No test host runs
//! systemd, so a unit never starts a server here: its text is
//! snapshot-tested, checked by `systemd-analyze verify` where that is
//! installed, and its scripts are snapshot-tested too.

use std::path::Path;

use dbgroups_engines::Program;
use dbgroups_engines::host::ServerStart;
use dbgroups_engines::ssh::systemd::{forget_script, start_script, unit_name, unit_text};
use insta::assert_snapshot;

fn servers_dir(name: &str) -> std::path::PathBuf {
    Path::new("/var/lib/dbgroups/servers").join(name)
}

/// PostgreSQL's start: pg_ctl forks the postmaster off.
fn postgresql() -> (Program, ServerStart) {
    let dir = servers_dir("pg-main");
    let mut start = Program::new(&dir, Path::new("/usr/lib/postgresql/15/bin/pg_ctl"));
    start
        .arg("start")
        .arg("--pgdata")
        .arg(dir.join("data"))
        .arg("--log")
        .arg(dir.join("postgresql.log"))
        .args(["--wait", "--timeout=120"]);
    let daemon = ServerStart::Daemonizes {
        pid_file: dir.join("data/postmaster.pid"),
    };
    (start, daemon)
}

/// MariaDB's start: the server in the foreground, output discarded.
fn mariadb() -> (Program, ServerStart) {
    let dir = servers_dir("db-main");
    let mut start = Program::new(&dir, Path::new("/usr/sbin/mariadbd"));
    start
        .arg(format!("--defaults-file={}", dir.join("my.cnf").display()))
        .env("TZ", "UTC")
        .stdout_null();
    (start, ServerStart::Foreground)
}

#[test]
fn a_forking_server_becomes_a_forking_unit_run_as_the_service_user() {
    let (program, start) = postgresql();
    let unit = unit_text("pg-main", &program, &start).expect("a unit");
    assert_snapshot!("postgresql_unit", unit);
}

#[test]
fn a_foreground_server_becomes_a_simple_unit() {
    let (program, start) = mariadb();
    let unit = unit_text("db-main", &program, &start).expect("a unit");
    assert_snapshot!("mariadb_unit", unit);
}

/// systemd expands `%` specifiers and `$` variables in a command line:
/// both are doubled, and quotes escaped, so an argument reaches the server
/// as written. A line break, which would start a new setting, is refused,
/// as is a path setting systemd could not take unquoted.
#[test]
fn arguments_are_quoted_for_systemd_and_what_cannot_be_is_refused() {
    let dir = servers_dir("odd");
    let mut program = Program::new(&dir, Path::new("/usr/bin/server"));
    program.arg("--name=50% of \"$HOME\"\\x");
    let unit = unit_text("odd", &program, &ServerStart::Foreground).expect("a unit");
    assert!(
        unit.contains(r#"ExecStart="/usr/bin/server" "--name=50%% of \"$$HOME\"\\x""#),
        "{unit}"
    );
    let mut broken = program.clone();
    broken.arg("two\nlines");
    let err = unit_text("odd", &broken, &ServerStart::Foreground).expect_err("refused");
    assert!(err.to_string().contains("line break"), "{err}");
    let spaced = Program::new(Path::new("/var/lib/a b"), Path::new("/usr/bin/server"));
    let err = unit_text("odd", &spaced, &ServerStart::Foreground).expect_err("refused");
    assert!(err.to_string().contains("/var/lib/a b"), "{err}");
}

/// Where `systemd-analyze` is installed, it accepts both units without a
/// word (it checks every setting and that the command exists: the
/// README's commands install PostgreSQL and MariaDB here). A quoted
/// `WorkingDirectory=`, say, is refused by it.
#[test]
#[allow(clippy::print_stderr)]
fn systemd_analyze_verifies_the_units() {
    if std::process::Command::new("systemd-analyze")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("skipped: systemd-analyze is not installed");
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    for (name, (program, start)) in [("pg-main", postgresql()), ("db-main", mariadb())] {
        let path = dir.path().join(unit_name(name));
        std::fs::write(&path, unit_text(name, &program, &start).expect("a unit")).expect("unit");
        let verified = std::process::Command::new("systemd-analyze")
            .arg("verify")
            .arg(&path)
            .output()
            .expect("runs");
        let said = String::from_utf8_lossy(&verified.stderr);
        assert!(verified.status.success(), "{name}: {said}");
        assert!(said.trim().is_empty(), "{name}: {said}");
    }
}

#[test]
fn the_unit_is_installed_enabled_and_started_and_removed_with_its_server() {
    assert_snapshot!("start_script", start_script("pg-main").expect("a script"));
    assert_snapshot!("forget_script", forget_script("pg-main").expect("a script"));
}

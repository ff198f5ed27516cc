//! The one place dbgroups builds a process.
//!
//! Every program dbgroups starts (database servers, their tools, and the
//! `setpriv`/`useradd` wrappers) gets an environment built here from
//! nothing, never the caller's. Users' shells and CI jobs set database
//! client variables all the time (`PGPASSWORD`, `PGSSLMODE`, `PGSERVICE`,
//! `MYSQL_HOST`, `MYSQL_PWD`, `REDISCLI_AUTH` …) and keep `~/.pgpass`,
//! `~/.my.cnf` or `~/.pg_service.conf` for their own work. libpq prefers
//! `PGPASSWORD` to the passfile dbgroups writes, and the MariaDB client
//! goes where `MYSQL_HOST` says; a server inherits its starter's
//! environment and hands it to its own clients (the postmaster to its WAL
//! receiver). So what a step needs it sets explicitly, and nothing else
//! reaches the process:
//!
//! - `PATH`: the system directories, so a program is the package's;
//! - `LC_ALL`/`LANG`: `C.UTF-8`, so tools' messages and sorting are the same
//!   on every machine (and parsable);
//! - `HOME`: the server's own directory (or, for a command that belongs to
//!   no server, a directory of dbgroups' own), so no client reads a
//!   caller's dotfile;
//! - whatever the step adds itself (`PGPASSFILE` …).
//!
//! `tests/integration/architecture.rs` fails if a process is started
//! anywhere else, and the hostile-environment tests prove the result.

use std::path::Path;

use crate::local::ServiceUser;

/// The `PATH` every process gets: the directories Debian's packages put
/// programs in.
pub const SYSTEM_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// The locale every process gets. `C.UTF-8` is built into glibc, so it
/// exists on every Debian and Ubuntu machine without a locales package.
pub const LOCALE: &str = "C.UTF-8";

/// A command for `program` with the environment described above, run as
/// `run_as` (through `setpriv`, root's supplementary groups cleared) when
/// given. Blocking callers use it as is; async callers convert it with
/// `tokio::process::Command::from`.
pub fn built_command(
    program: &Path,
    home: &Path,
    run_as: Option<&ServiceUser>,
) -> std::process::Command {
    let mut command = match run_as {
        Some(user) => {
            let mut command = std::process::Command::new("setpriv");
            command
                .arg(format!("--reuid={}", user.uid))
                .arg(format!("--regid={}", user.gid))
                .arg("--clear-groups")
                .arg("--")
                .arg(program);
            command
        }
        None => std::process::Command::new(program),
    };
    // `env_clear` before `PATH` is set: std then looks `setpriv` up on this
    // PATH, not the caller's.
    command
        .env_clear()
        .env("PATH", SYSTEM_PATH)
        .env("LC_ALL", LOCALE)
        .env("LANG", LOCALE)
        .env("HOME", home);
    command
}

#[cfg(test)]
mod tests {
    use super::*;

    fn environment(command: &std::process::Command) -> Vec<(String, Option<String>)> {
        command
            .get_envs()
            .map(|(k, v)| {
                (
                    k.to_string_lossy().into_owned(),
                    v.map(|v| v.to_string_lossy().into_owned()),
                )
            })
            .collect()
    }

    #[test]
    fn a_built_command_carries_only_what_dbgroups_sets() {
        let command = built_command(Path::new("/bin/true"), Path::new("/srv/x"), None);
        let mut env = environment(&command);
        env.sort();
        assert_eq!(
            env,
            vec![
                ("HOME".into(), Some("/srv/x".into())),
                ("LANG".into(), Some(LOCALE.into())),
                ("LC_ALL".into(), Some(LOCALE.into())),
                ("PATH".into(), Some(SYSTEM_PATH.into())),
            ]
        );
    }

    #[test]
    fn a_built_command_passes_nothing_of_the_callers_environment() {
        // The process's own environment has at least PATH and HOME; a child
        // of this command must see only the four variables set above.
        let output = built_command(Path::new("/usr/bin/env"), Path::new("/"), None)
            .output()
            .expect("env runs");
        let mut seen: Vec<String> = String::from_utf8_lossy(&output.stdout)
            .lines()
            .map(|line| line.split('=').next().unwrap_or("").to_string())
            .collect();
        seen.sort();
        assert_eq!(seen, ["HOME", "LANG", "LC_ALL", "PATH"]);
    }
}

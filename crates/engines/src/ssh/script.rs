//! The shell text an ssh host sends: pure functions, so that what reaches
//! a remote shell is tested without a host.
//!
//! Everything variable in a script (paths, arguments, values) is quoted
//! with `shlex`, so a path holding a space or a quote stays one word. No
//! secret is ever in a script: file contents travel on the command's
//! standard input, and a [`Program`]'s environment holds none by the host
//! interface's contract.

use std::ffi::OsStr;
use std::path::Path;

use crate::error::EngineError;
use crate::host::{Input, Output, Program};
use crate::local::SERVICE_USER;
use crate::process::{LOCALE, SYSTEM_PATH};

/// One shell word for `text`.
pub fn quote(text: &str) -> Result<String, EngineError> {
    shlex::try_quote(text)
        .map(|quoted| quoted.into_owned())
        .map_err(|_| EngineError::Ssh {
            host: String::new(),
            detail: format!("{text:?} cannot be passed to a remote shell (it holds a NUL byte)"),
        })
}

fn quote_os(text: &OsStr) -> Result<String, EngineError> {
    match text.to_str() {
        Some(text) => quote(text),
        None => Err(EngineError::Ssh {
            host: String::new(),
            detail: format!("{text:?} is not UTF-8 and cannot be passed to a remote shell"),
        }),
    }
}

/// One shell word for a path.
pub fn quote_path(path: &Path) -> Result<String, EngineError> {
    quote_os(path.as_os_str())
}

/// The command line ssh sends: the script run by `sh` as root, through
/// `sudo -n` (never prompting) when the ssh user is not root.
pub fn as_root(script: &str, via_sudo: bool) -> Result<String, EngineError> {
    let script = quote(script)?;
    Ok(if via_sudo {
        format!("sudo -n -- sh -c {script}")
    } else {
        format!("sh -c {script}")
    })
}

/// The words that start `program` as the host interface describes it: as
/// the service user when asked (through `setpriv`, groups cleared, as the
/// local host does), with an environment built from nothing (`env -i`):
/// the system `PATH`, the C.UTF-8 locale, `HOME`, and what the step set.
fn command_words(program: &Program) -> Result<String, EngineError> {
    let mut words = Vec::new();
    if program.as_service_user {
        words.push(format!(
            "setpriv --reuid={SERVICE_USER} --regid={SERVICE_USER} --clear-groups --"
        ));
    }
    words.push("env -i".to_string());
    words.push(quote(&format!("PATH={SYSTEM_PATH}"))?);
    words.push(quote(&format!("LC_ALL={LOCALE}"))?);
    words.push(quote(&format!("LANG={LOCALE}"))?);
    let home = program.home.to_str().ok_or_else(|| EngineError::Ssh {
        host: String::new(),
        detail: format!("{} is not UTF-8", program.home.display()),
    })?;
    words.push(quote(&format!("HOME={home}"))?);
    for (key, value) in &program.env {
        if key.is_empty() || !key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(EngineError::Ssh {
                host: String::new(),
                detail: format!("{key:?} is not an environment variable name"),
            });
        }
        let value = value.to_str().ok_or_else(|| EngineError::Ssh {
            host: String::new(),
            detail: format!("the value of {key} is not UTF-8"),
        })?;
        words.push(quote(&format!("{key}={value}"))?);
    }
    words.push(quote_path(&program.program)?);
    for arg in &program.args {
        words.push(quote_os(arg)?);
    }
    Ok(words.join(" "))
}

/// A script that runs `program` to its end. A file it writes its output to
/// is made first, 0600 and the service user's, as the local host makes it.
pub fn run(program: &Program) -> Result<String, EngineError> {
    let mut script = String::from("umask 077\n");
    if let Some(dir) = &program.current_dir {
        script.push_str(&format!("cd -- {} || exit 125\n", quote_path(dir)?));
    }
    let stdin = match &program.stdin {
        Input::Null => "< /dev/null".to_string(),
        Input::File(path) => format!("< {}", quote_path(path)?),
    };
    let stdout = match &program.stdout {
        Output::Captured => String::new(),
        Output::Null => "> /dev/null".to_string(),
        Output::File(path) => {
            let path = quote_path(path)?;
            script.push_str(&format!(
                ": > {path} && chown {SERVICE_USER}:{SERVICE_USER} {path} && chmod 600 {path} || exit 125\n"
            ));
            format!("> {path}")
        }
    };
    script.push_str(&format!(
        "exec {} {stdin} {stdout}\n",
        command_words(program)?
    ));
    Ok(script)
}

/// A script that starts `program` in a session of its own and returns at
/// once: the program keeps running after the ssh session ends (it holds
/// none of the session's descriptors, and no terminal hangs it up).
pub fn start_detached(program: &Program) -> Result<String, EngineError> {
    let mut script = String::from("umask 077\n");
    if let Some(dir) = &program.current_dir {
        script.push_str(&format!("cd -- {} || exit 125\n", quote_path(dir)?));
    }
    script.push_str(&format!(
        "setsid -f {} < /dev/null > /dev/null 2>&1\n",
        command_words(program)?
    ));
    Ok(script)
}

/// A script that writes its standard input to `path` durably, 0600 and
/// the service user's: into a temporary file beside it, then renamed over
/// it, so a cut link never leaves half a file.
pub fn write_private_file(path: &Path) -> Result<String, EngineError> {
    let parent = path.parent().unwrap_or_else(|| Path::new("/"));
    let parent = quote_path(parent)?;
    let target = quote_path(path)?;
    Ok(format!(
        "umask 077\n\
         tmp=$(mktemp {parent}/.dbgroups-write.XXXXXX) || exit 1\n\
         cat > \"$tmp\" && chown {SERVICE_USER}:{SERVICE_USER} \"$tmp\" && chmod 600 \"$tmp\" \
         && sync -d \"$tmp\" && mv -f -- \"$tmp\" {target} || {{ rm -f -- \"$tmp\"; exit 1; }}\n"
    ))
}

/// A script that makes `dir` and its missing parents 0700, the service
/// user's (the parents that exist keep their modes).
pub fn private_dir(dir: &Path) -> Result<String, EngineError> {
    let dir = quote_path(dir)?;
    Ok(format!(
        "mkdir -p -m 700 -- {dir} && chmod 700 -- {dir} && chown {SERVICE_USER}:{SERVICE_USER} -- {dir}\n"
    ))
}

/// Exit status of [`read_file`] when the file does not exist.
pub const ABSENT: i32 = 3;

/// A script that prints a file, or exits [`ABSENT`] when there is none.
pub fn read_file(path: &Path) -> Result<String, EngineError> {
    let path = quote_path(path)?;
    Ok(format!(
        "[ -e {path} ] || exit {ABSENT}\nexec cat -- {path}\n"
    ))
}

/// A script that prints the free bytes (for an unprivileged writer) of the
/// filesystem holding `path` or its nearest existing ancestor.
pub fn free_bytes(path: &Path) -> Result<String, EngineError> {
    let path = quote_path(path)?;
    Ok(format!(
        "p={path}\nwhile [ ! -e \"$p\" ]; do p=$(dirname -- \"$p\"); done\n\
         df -B1 --output=avail -- \"$p\" | tail -n 1\n"
    ))
}

/// A script that prints the first of `names` installed: on the system
/// `PATH`, or an absolute path given.
pub fn find_program(names: &[&str]) -> Result<String, EngineError> {
    let mut script = String::new();
    for name in names {
        let quoted = quote(name)?;
        if name.starts_with('/') {
            script.push_str(&format!(
                "[ -f {quoted} ] && [ -x {quoted} ] && {{ echo {quoted}; exit 0; }}\n"
            ));
        } else {
            script.push_str(&format!(
                "for d in $(echo {SYSTEM_PATH} | tr : ' '); do [ -f \"$d\"/{quoted} ] && [ -x \"$d\"/{quoted} ] && {{ echo \"$d\"/{quoted}; exit 0; }}; done\n"
            ));
        }
    }
    script.push_str("exit 1\n");
    Ok(script)
}

/// A script that succeeds when apt can install every one of `packages`:
/// apt is there, and its package lists name a candidate for each (or the
/// host has no package lists yet, which an install first fetches).
pub fn can_install(packages: &[String]) -> Result<String, EngineError> {
    let mut script = String::from(
        "command -v apt-get > /dev/null 2>&1 || exit 1\n\
         set -- /var/lib/apt/lists/*_Packages*\n\
         [ -e \"$1\" ] || exit 0\n",
    );
    for package in packages {
        script.push_str(&format!(
            "apt-cache policy {} 2>/dev/null | grep -q 'Candidate: [^(]' || exit 1\n",
            quote(package)?
        ));
    }
    Ok(script)
}

/// Exit status of [`install_packages`] on a system that is neither
/// Debian nor Ubuntu (its `ID` is on standard output).
pub const NOT_DEBIAN: i32 = 4;

/// A script that installs `packages` with apt, run as root: only where
/// `os_release` (`/etc/os-release`) says Debian or Ubuntu (`ID` or
/// `ID_LIKE`), else it exits [`NOT_DEBIAN`]. Non-interactive, without
/// recommended packages, waiting for another apt to finish rather than
/// failing on its lock; when the install fails (on a fresh host, for
/// package lists it has not fetched yet) the lists are updated and the
/// install tried once more.
pub fn install_packages(packages: &[String], os_release: &Path) -> Result<String, EngineError> {
    let os_release = quote_path(os_release)?;
    let names = packages
        .iter()
        .map(|p| quote(p))
        .collect::<Result<Vec<_>, _>>()?
        .join(" ");
    let install =
        format!("apt-get -o DPkg::Lock::Timeout=600 install -y --no-install-recommends {names}");
    Ok(format!(
        "field() {{ sed -n \"s/^$1=//p\" {os_release} 2>/dev/null | head -n 1 | tr -d \"\\\"'\"; }}\n\
         id=$(field ID); like=$(field ID_LIKE)\n\
         case \" $id $like \" in\n\
         *\" debian \"* | *\" ubuntu \"*) ;;\n\
         *) echo \"${{id:-unknown}}\"; exit {NOT_DEBIAN} ;;\n\
         esac\n\
         export DEBIAN_FRONTEND=noninteractive\n\
         {install} < /dev/null || {{ apt-get -o DPkg::Lock::Timeout=600 update < /dev/null && {install} < /dev/null; }}\n"
    ))
}

/// The ports something listens on, from the kernel's socket tables
/// (`/proc/net/tcp*`, state `0A`): read by dbgroups, so the host needs no
/// `ss` or `netstat`.
pub fn listening_ports(tables: &str) -> std::collections::BTreeSet<u16> {
    tables
        .lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            if fields.len() < 4 || fields[3] != "0A" {
                return None;
            }
            let port = fields[1].rsplit(':').next()?;
            u16::from_str_radix(port, 16).ok()
        })
        .collect()
}

/// An extended regular expression (pkill's) matching `path` in a command
/// line, written so that it does not match its own text: the shell and
/// sudo that run pkill carry the pattern on their command lines, and a
/// pattern matching itself would kill them. Its first character goes in a
/// bracket (`[/]var/lib/...` matches `/var/lib/...`, and not the text
/// `[/]var/lib/...`); the others are escaped where they mean something.
pub fn unmatched_by_itself(path: &Path) -> String {
    let text = path.to_string_lossy();
    let mut pattern = String::new();
    for (i, c) in text.chars().enumerate() {
        if i == 0 {
            pattern.push('[');
            pattern.push(c);
            pattern.push(']');
        } else if "\\.[]()*+?{}|^$".contains(c) {
            pattern.push('\\');
            pattern.push(c);
        } else {
            pattern.push(c);
        }
    }
    pattern
}

#[cfg(test)]
mod tests {
    use super::*;

    fn program() -> Program {
        let mut program = Program::new(
            Path::new("/var/lib/dbgroups/servers/pg main"),
            Path::new("/usr/bin/psql"),
        );
        program
            .arg("--file=/tmp/it's")
            .env("PGPASSFILE", "/var/lib/dbgroups/servers/pg main/.pgpass");
        program
    }

    #[test]
    fn a_program_runs_as_the_service_user_with_only_the_built_environment() {
        let script = run(&program()).expect("script");
        assert_eq!(
            script,
            "umask 077\nexec setpriv --reuid=dbgroups --regid=dbgroups --clear-groups -- env -i \
             'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' 'LC_ALL=C.UTF-8' 'LANG=C.UTF-8' \
             'HOME=/var/lib/dbgroups/servers/pg main' 'PGPASSFILE=/var/lib/dbgroups/servers/pg main/.pgpass' \
             /usr/bin/psql \"--file=/tmp/it's\" < /dev/null \n"
        );
    }

    #[test]
    fn the_words_of_a_script_survive_a_shell() {
        // What sh makes of the quoted words is what the program was given.
        let mut echo = Program::new(Path::new("/"), Path::new("printf"));
        echo.args([
            "%s\\n",
            "a b",
            "it's",
            "$(id)",
            "`id`",
            "; rm -rf /",
            "\"q\"",
        ]);
        echo.as_service_user = false;
        let output = crate::process::built_command(Path::new("sh"), Path::new("/"), None)
            .args([OsStr::new("-c"), OsStr::new(&run(&echo).expect("script"))])
            .output()
            .expect("sh runs");
        assert_eq!(
            String::from_utf8_lossy(&output.stdout),
            "a b\nit's\n$(id)\n`id`\n; rm -rf /\n\"q\"\n"
        );
    }

    #[test]
    fn a_command_line_through_sudo_never_prompts() {
        assert_eq!(
            as_root("id -u", true).expect("line"),
            "sudo -n -- sh -c 'id -u'"
        );
        assert_eq!(as_root("id -u", false).expect("line"), "sh -c 'id -u'");
    }

    #[test]
    fn an_environment_name_that_is_not_one_is_refused() {
        let mut bad = program();
        bad.env("X; id", "1");
        assert!(run(&bad).is_err());
    }

    #[test]
    fn listening_ports_come_from_the_kernels_tables() {
        let tables = "  sl  local_address rem_address   st\n\
           0: 00000000:1538 00000000:0000 0A 00000000:00000000\n\
           1: 0100007F:18EB 0100007F:D2F0 01 00000000:00000000\n\
           0: 00000000000000000000000000000000:0050 00000000000000000000000000000000:0000 0A\n";
        assert_eq!(listening_ports(tables), [80, 5432].into());
    }

    #[test]
    fn package_names_are_quoted_words() {
        let script = install_packages(
            &["a b".to_string(), "$(id)".to_string()],
            Path::new("/etc/os-release"),
        )
        .expect("script");
        assert!(
            script.contains("--no-install-recommends 'a b' '$(id)'"),
            "{script}"
        );
        let check = can_install(&["postgresql-15".to_string()]).expect("script");
        assert!(
            check.contains(
                "apt-cache policy postgresql-15 2>/dev/null | grep -q 'Candidate: [^(]' || exit 1"
            ),
            "{check}"
        );
    }
}

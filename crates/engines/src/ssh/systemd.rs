//! A server on an ssh host that runs systemd becomes the unit
//! `dbgroups-<unique_name>.service`: systemd starts it again when the host
//! boots and after a crash, and it lives in its own cgroup, not the ssh
//! session's. The unit's text is made here (pure; snapshot-tested) from the
//! same [`Program`] a host without systemd starts detached, so both paths
//! run the same command with the same environment.

use std::path::Path;

use crate::error::EngineError;
use crate::host::{Output, Program, ServerStart};
use crate::local::SERVICE_USER;
use crate::process::{LOCALE, SYSTEM_PATH};

/// Where units written by dbgroups live.
pub const UNIT_DIR: &str = "/etc/systemd/system";

/// The unit's name for a server.
pub fn unit_name(server: &str) -> String {
    format!("dbgroups-{server}.service")
}

/// The unit's path for a server.
pub fn unit_path(server: &str) -> String {
    format!("{UNIT_DIR}/{}", unit_name(server))
}

/// One word of a unit's command line or `Environment=`, in systemd's own
/// quoting: double quotes, with `\` and `"` escaped, and `%` and `$`
/// doubled (systemd expands specifiers and variables in both).
fn word(text: &str) -> Result<String, EngineError> {
    if text.contains(['\n', '\r', '\0']) {
        return Err(EngineError::Ssh {
            host: String::new(),
            detail: format!("{text:?} cannot go into a systemd unit (it holds a line break)"),
        });
    }
    let mut quoted = String::from("\"");
    for c in text.chars() {
        match c {
            '\\' => quoted.push_str("\\\\"),
            '"' => quoted.push_str("\\\""),
            '%' => quoted.push_str("%%"),
            '$' => quoted.push_str("$$"),
            c => quoted.push(c),
        }
    }
    quoted.push('"');
    Ok(quoted)
}

/// A path as a setting's whole value (`WorkingDirectory=`, `PIDFile=`),
/// which systemd takes unquoted: only plain path characters (servers'
/// directories are made of validated names), `%` doubled.
fn path_setting(path: &Path) -> Result<String, EngineError> {
    let text = path.to_str().unwrap_or_default();
    let plain = !text.is_empty()
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "/._-+:@%".contains(c));
    if !plain {
        return Err(EngineError::Ssh {
            host: String::new(),
            detail: format!(
                "{} cannot be a systemd unit's path setting (only letters, digits and / . _ - + : @)",
                path.display()
            ),
        });
    }
    Ok(text.replace('%', "%%"))
}

fn path_word(path: &Path) -> Result<String, EngineError> {
    match path.to_str() {
        Some(text) => word(text),
        None => Err(EngineError::Ssh {
            host: String::new(),
            detail: format!("{} is not UTF-8", path.display()),
        }),
    }
}

/// The unit that runs `server` with `program`.
pub fn unit_text(
    server: &str,
    program: &Program,
    start: &ServerStart,
) -> Result<String, EngineError> {
    let mut exec = vec![path_word(&program.program)?];
    for arg in &program.args {
        exec.push(word(&arg.to_string_lossy())?);
    }
    let mut environment = vec![
        word(&format!("PATH={SYSTEM_PATH}"))?,
        word(&format!("LC_ALL={LOCALE}"))?,
        word(&format!("LANG={LOCALE}"))?,
        word(&format!("HOME={}", program.home.display()))?,
    ];
    for (key, value) in &program.env {
        environment.push(word(&format!("{key}={}", value.to_string_lossy()))?);
    }
    let (kind, pid_file) = match start {
        ServerStart::Foreground => ("simple", String::new()),
        ServerStart::Daemonizes { pid_file } => {
            ("forking", format!("PIDFile={}\n", path_setting(pid_file)?))
        }
    };
    let user = if program.as_service_user {
        format!("User={SERVICE_USER}\nGroup={SERVICE_USER}\n")
    } else {
        String::new()
    };
    let directory = program.current_dir.as_deref().unwrap_or(&program.home);
    let output = match &program.stdout {
        Output::File(path) => format!("file:{}", path_setting(path)?),
        Output::Captured | Output::Null => "null".to_string(),
    };
    Ok(format!(
        "# Written by dbgroups for the server {server}; removed with it.\n\
         [Unit]\n\
         Description=dbgroups server {server}\n\
         Wants=network-online.target\n\
         After=network-online.target\n\
         \n\
         [Service]\n\
         Type={kind}\n\
         {pid_file}\
         {user}\
         UMask=0077\n\
         WorkingDirectory={directory}\n\
         Environment={environment}\n\
         ExecStart={exec}\n\
         StandardInput=null\n\
         StandardOutput={output}\n\
         StandardError=null\n\
         Restart=on-failure\n\
         RestartSec=5s\n\
         TimeoutStartSec=180\n\
         TimeoutStopSec=120\n\
         \n\
         [Install]\n\
         WantedBy=multi-user.target\n",
        directory = path_setting(directory)?,
        environment = environment.join(" "),
        exec = exec.join(" "),
    ))
}

/// The script that installs the unit (its text on standard input), and
/// starts it: enabled, so the host's boot starts it again.
pub fn start_script(server: &str) -> Result<String, EngineError> {
    let unit = crate::ssh::script::quote(&unit_name(server))?;
    let path = crate::ssh::script::quote(&unit_path(server))?;
    Ok(format!(
        "umask 022\n\
         cat > {path}.tmp && mv -f -- {path}.tmp {path} || exit 1\n\
         systemctl daemon-reload && systemctl enable --quiet {unit} && systemctl restart {unit}\n"
    ))
}

/// The script that stops and removes a server's unit, when there is one.
pub fn forget_script(server: &str) -> Result<String, EngineError> {
    let unit = crate::ssh::script::quote(&unit_name(server))?;
    let path = crate::ssh::script::quote(&unit_path(server))?;
    Ok(format!(
        "[ -e {path} ] || exit 0\n\
         systemctl disable --now --quiet {unit}; rm -f -- {path}\n\
         systemctl daemon-reload\n"
    ))
}

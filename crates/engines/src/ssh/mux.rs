//! One multiplexed OpenSSH connection per host: the system `ssh` client
//! (so the user's `~/.ssh/config`, agent, ProxyJump and certificates work
//! as in their shell), a ControlMaster started once, and every command a
//! session on it, at most [`SESSIONS`] at a time (sshd's `MaxSessions` is
//! 10 by default).
//!
//! It never prompts (`BatchMode=yes`) and checks host keys strictly
//! (`StrictHostKeyChecking=yes`, or `accept-new` when the user asked for
//! it: a changed key is refused either way). The `ssh` processes get an
//! environment built here, not the caller's: the system `PATH`, the C
//! locale, and of the caller's only what ssh needs to be the user's own
//! client (`HOME` for `~/.ssh`, `USER`, `LOGNAME`, `SSH_AUTH_SOCK`).

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use tokio::io::AsyncWriteExt;
use tokio::process::Command;
use tokio::sync::{Mutex, Semaphore};

use crate::error::EngineError;

/// Sessions one connection carries at once.
pub const SESSIONS: usize = 8;

/// How dbgroups reaches one host, from the manifest's `address` and `ssh:`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SshTarget {
    pub address: String,
    pub user: Option<String>,
    pub port: Option<u16>,
    pub identity_file: Option<PathBuf>,
    pub known_hosts_file: Option<PathBuf>,
    pub jump: Option<String>,
}

/// What the command line says about every ssh connection.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SshClient {
    /// `--ssh-config FILE` (or `DBGROUPS_SSH_CONFIG`).
    pub config_file: Option<PathBuf>,
    /// `--accept-new-host-keys`: ssh's `accept-new`.
    pub accept_new_host_keys: bool,
}

#[derive(Debug)]
pub struct Connection {
    target: SshTarget,
    client: SshClient,
    /// A 0700 directory of this process's, holding the control socket and
    /// the master's log; removed with the connection.
    control: tempfile::TempDir,
    sessions: Semaphore,
    /// Held while the master is (re)started.
    master: Mutex<()>,
}

/// A finished remote command.
#[derive(Debug)]
pub struct Finished {
    pub status: std::process::ExitStatus,
    pub stdout: Vec<u8>,
    pub stderr: String,
}

impl Connection {
    /// Connects: starts the ControlMaster, which authenticates once.
    pub async fn open(target: SshTarget, client: SshClient) -> Result<Self, EngineError> {
        let control = tempfile::Builder::new()
            .prefix("dbgroups-ssh-")
            .tempdir_in("/tmp")
            .map_err(|e| EngineError::Ssh {
                host: target.address.clone(),
                detail: format!("cannot make a directory for the control socket: {e}"),
            })?;
        let connection = Self {
            target,
            client,
            control,
            sessions: Semaphore::new(SESSIONS),
            master: Mutex::new(()),
        };
        connection.start_master().await?;
        Ok(connection)
    }

    pub fn address(&self) -> &str {
        &self.target.address
    }

    /// A 0700 directory of this process's, for this connection's local
    /// ends (its control socket, relays' sockets).
    pub fn local_dir(&self) -> &Path {
        self.control.path()
    }

    fn socket(&self) -> PathBuf {
        self.control.path().join("cm")
    }

    fn master_log(&self) -> PathBuf {
        self.control.path().join("master.log")
    }

    /// `ssh` with the built environment and the options every use shares.
    fn ssh(&self) -> Command {
        let home = std::env::var_os("HOME").unwrap_or_else(|| OsString::from("/root"));
        let mut command = crate::process::built_command(Path::new("ssh"), Path::new(&home), None);
        for name in ["USER", "LOGNAME", "SSH_AUTH_SOCK"] {
            if let Some(value) = std::env::var_os(name) {
                command.env(name, value);
            }
        }
        command.args(self.options());
        command.stdin(Stdio::null());
        // Its own process group, as every local tool's: Ctrl-C in the
        // terminal does not cut a session, and a second one stops a copy's
        // session by its group (`interrupt`).
        std::os::unix::process::CommandExt::process_group(&mut command, 0);
        let mut command = Command::from(command);
        command.kill_on_drop(true);
        command
    }

    /// The options, in order: the user's config file, then dbgroups' own
    /// rules, then the target's settings (command-line options win over
    /// the config file in OpenSSH).
    fn options(&self) -> Vec<OsString> {
        let mut args: Vec<OsString> = Vec::new();
        let mut option = |text: String| {
            args.push("-o".into());
            args.push(text.into());
        };
        option("BatchMode=yes".into());
        option(format!(
            "StrictHostKeyChecking={}",
            if self.client.accept_new_host_keys {
                "accept-new"
            } else {
                "yes"
            }
        ));
        option("ConnectTimeout=15".into());
        option("ServerAliveInterval=5".into());
        option("ServerAliveCountMax=4".into());
        option(format!("ControlPath={}", self.socket().display()));
        if let Some(file) = &self.target.known_hosts_file {
            option(format!(
                "UserKnownHostsFile={}",
                expand_home(file).display()
            ));
        }
        if let Some(config) = &self.client.config_file {
            args.splice(0..0, [OsString::from("-F"), config.clone().into()]);
        }
        if let Some(user) = &self.target.user {
            args.extend(["-l".into(), user.into()]);
        }
        if let Some(port) = self.target.port {
            args.extend(["-p".into(), port.to_string().into()]);
        }
        if let Some(identity) = &self.target.identity_file {
            args.extend(["-i".into(), expand_home(identity).into_os_string()]);
        }
        if let Some(jump) = &self.target.jump {
            args.extend(["-J".into(), jump.into()]);
        }
        args
    }

    /// Starts the ControlMaster in the background (`-f -N`) once it has
    /// authenticated; its own messages go to a log of its own (`-E`), so it
    /// holds none of this command's pipes.
    async fn start_master(&self) -> Result<(), EngineError> {
        let mut command = self.ssh();
        command
            .args([
                "-o",
                "ControlMaster=yes",
                "-o",
                "ControlPersist=300",
                "-N",
                "-f",
            ])
            .arg("-E")
            .arg(self.master_log())
            .arg("--")
            .arg(&self.target.address)
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let output = command.output().await.map_err(|source| EngineError::Io {
            action: "run",
            path: PathBuf::from("ssh"),
            source,
        })?;
        if output.status.success() {
            return Ok(());
        }
        let mut said = String::from_utf8_lossy(&output.stderr).into_owned();
        if let Ok(log) = tokio::fs::read_to_string(self.master_log()).await {
            said.push_str(&log);
        }
        Err(classify(&self.target, &said))
    }

    /// The master is up, or is started again (it ends after five idle
    /// minutes, or when the link dies).
    async fn ensure_master(&self) -> Result<(), EngineError> {
        let _starting = self.master.lock().await;
        let mut check = self.ssh();
        check
            .args(["-O", "check", "--"])
            .arg(&self.target.address)
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if check.status().await.is_ok_and(|s| s.success()) {
            return Ok(());
        }
        let _ = tokio::fs::remove_file(self.socket()).await;
        self.start_master().await
    }

    /// A session on the master running `command_line` (one string: the
    /// remote login shell parses it), `stdin` written to it.
    fn session(&self, command_line: &str) -> Command {
        let mut command = self.ssh();
        command
            .args(["-o", "ControlMaster=no", "-T", "--"])
            .arg(&self.target.address)
            .arg(command_line)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        command
    }

    /// A session on the master running `command_line`, once one of the
    /// [`SESSIONS`] is free (held by the permit while it lasts): stdin
    /// piped when `stdin`, stderr captured when `stderr` (else discarded).
    async fn start_session(
        &self,
        command_line: &str,
        stdin: bool,
        stderr: bool,
    ) -> Result<(tokio::sync::SemaphorePermit<'_>, tokio::process::Child), EngineError> {
        let permit = self
            .sessions
            .acquire()
            .await
            .map_err(|_| EngineError::Ssh {
                host: self.target.address.clone(),
                detail: "the connection is closed".into(),
            })?;
        self.ensure_master().await?;
        let mut command = self.session(command_line);
        if stdin {
            command.stdin(Stdio::piped());
        }
        if !stderr {
            command.stderr(Stdio::null());
        }
        let child = command.spawn().map_err(|source| EngineError::Io {
            action: "run",
            path: PathBuf::from("ssh"),
            source,
        })?;
        Ok((permit, child))
    }

    /// Runs `command_line` on the host to its end.
    pub async fn exec(
        &self,
        command_line: &str,
        stdin: Option<&[u8]>,
    ) -> Result<Finished, EngineError> {
        self.exec_with(command_line, stdin, |_| ()).await
    }

    /// [`Connection::exec`], telling `started` the local ssh process's id
    /// (so a second Ctrl-C can stop it: the remote command then loses its
    /// channel).
    pub async fn exec_with(
        &self,
        command_line: &str,
        stdin: Option<&[u8]>,
        started: impl FnOnce(Option<u32>),
    ) -> Result<Finished, EngineError> {
        let (_permit, mut child) = self
            .start_session(command_line, stdin.is_some(), true)
            .await?;
        started(child.id());
        if let (Some(bytes), Some(mut pipe)) = (stdin, child.stdin.take()) {
            // A command that exits without reading all of it is judged by
            // its status, not by the broken pipe.
            let _ = pipe.write_all(bytes).await;
            drop(pipe);
        }
        let output = child
            .wait_with_output()
            .await
            .map_err(|source| EngineError::Io {
                action: "run",
                path: PathBuf::from("ssh"),
                source,
            })?;
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        // 255 is ssh's own failure (the link, the master), not the
        // command's.
        if output.status.code() == Some(255) {
            return Err(classify(&self.target, &stderr));
        }
        Ok(Finished {
            status: output.status,
            stdout: output.stdout,
            stderr,
        })
    }

    /// [`Connection::exec`] for paths that cannot await (guards on drop).
    pub fn exec_blocking(&self, command_line: &str) -> bool {
        let mut command = self.session(command_line).into_std();
        command.stdout(Stdio::null()).stderr(Stdio::null());
        command.status().is_ok_and(|s| s.success())
    }

    /// Forwards a port of this machine's loopback to `remote_port` on the
    /// host's loopback, for dbgroups' own database connections: they reach
    /// the server as a local client of its host does, whatever the host's
    /// access rules say about this machine.
    pub async fn forward(&self, local_port: u16, remote_port: u16) -> Result<(), EngineError> {
        self.ensure_master().await?;
        let mut command = self.ssh();
        command
            .args(["-O", "forward", "-L"])
            .arg(format!("127.0.0.1:{local_port}:127.0.0.1:{remote_port}"))
            .arg("--")
            .arg(&self.target.address)
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let output = command.output().await.map_err(|source| EngineError::Io {
            action: "run",
            path: PathBuf::from("ssh"),
            source,
        })?;
        if output.status.success() {
            Ok(())
        } else {
            Err(classify(
                &self.target,
                &String::from_utf8_lossy(&output.stderr),
            ))
        }
    }
}

impl Connection {
    /// Joins `stream` to a session running `command_line` (its stdin and
    /// stdout), until both ends are done: a local client talking to a
    /// program on the host as if it were there. The session counts against
    /// [`SESSIONS`] while it lasts.
    pub async fn pipe(
        &self,
        command_line: &str,
        mut stream: tokio::net::UnixStream,
    ) -> Result<(), EngineError> {
        let (_permit, mut child) = self.start_session(command_line, true, false).await?;
        if let (Some(stdout), Some(stdin)) = (child.stdout.take(), child.stdin.take()) {
            let mut remote = tokio::io::join(stdout, stdin);
            // Either side closing ends the copy of its direction; errors
            // are the client's or the link's, and end the session alike.
            let _ = tokio::io::copy_bidirectional(&mut stream, &mut remote).await;
        }
        let _ = child.kill().await;
        Ok(())
    }
}

impl Drop for Connection {
    /// The master ends with the connection rather than idling for minutes.
    fn drop(&mut self) {
        let mut exit = self.ssh().into_std();
        exit.args(["-O", "exit", "--"])
            .arg(&self.target.address)
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let _ = exit.status();
    }
}

/// `~/x` as ssh itself would read it (ssh expands `-i ~/x` too, but a
/// `UserKnownHostsFile` given on the command line is taken as written).
fn expand_home(path: &Path) -> PathBuf {
    match (path.strip_prefix("~"), std::env::var_os("HOME")) {
        (Ok(rest), Some(home)) => PathBuf::from(home).join(rest),
        _ => path.to_path_buf(),
    }
}

/// What ssh's failure means, in words that say what to do.
pub fn classify(target: &SshTarget, said: &str) -> EngineError {
    let host = target.address.clone();
    let port = target.port.unwrap_or(22);
    let known_hosts = target.known_hosts_file.as_ref().map_or_else(
        || "~/.ssh/known_hosts".to_string(),
        |file| file.display().to_string(),
    );
    if said.contains("REMOTE HOST IDENTIFICATION HAS CHANGED")
        || said.contains("has changed and you have requested strict checking")
    {
        return EngineError::HostKey {
            host,
            problem: "has CHANGED since it was trusted (a reinstalled host, or someone in between); dbgroups does not connect, and --accept-new-host-keys never accepts a changed key".into(),
            remedy: format!(
                "if the host was reinstalled, check its new key and replace the old one: `ssh-keygen -R {} -f {known_hosts}`, then `ssh-keyscan -p {port} {}` and compare its fingerprint with `ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub` run on the host",
                target.address, target.address
            ),
        };
    }
    if said.contains("host key is known for") || said.contains("Host key verification failed") {
        return EngineError::HostKey {
            host,
            problem: "is not known, and dbgroups checks host keys strictly".into(),
            remedy: format!(
                "check it and trust it: `ssh-keyscan -p {port} {}` prints the host's keys; compare the fingerprint (`ssh-keygen -lf` of that line) with `ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub` run on the host, then add the line to {known_hosts}; or run again with --accept-new-host-keys to trust a key seen for the first time",
                target.address
            ),
        };
    }
    let detail = said
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with("Warning: Permanently added"))
        .collect::<Vec<_>>()
        .join("; ");
    let detail = if said.contains("Permission denied") {
        format!("{detail} (dbgroups never prompts: use a key the agent holds, or `identity_file`)")
    } else if detail.is_empty() {
        // Seen when the link went down under a running command: the
        // connection's keepalive gave up, and ssh says nothing more.
        "the connection failed or was lost, and ssh gave no reason (it gives up on a host that stops answering for about 20 s: ServerAliveInterval=5, ServerAliveCountMax=4)".to_string()
    } else {
        detail
    };
    EngineError::Ssh { host, detail }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target() -> SshTarget {
        SshTarget {
            address: "198.18.0.11".into(),
            user: Some("deploy".into()),
            port: Some(2222),
            identity_file: None,
            known_hosts_file: None,
            jump: None,
        }
    }

    #[test]
    fn an_unknown_host_key_says_how_to_trust_it() {
        let err = classify(
            &target(),
            "No ED25519 host key is known for 198.18.0.11 and you have requested strict checking.\nHost key verification failed.\n",
        );
        let text = err.to_string();
        assert!(
            text.starts_with("host 198.18.0.11: its ssh host key is not known"),
            "{text}"
        );
        assert!(text.contains("ssh-keyscan -p 2222 198.18.0.11"), "{text}");
        assert!(text.contains("--accept-new-host-keys"), "{text}");
    }

    #[test]
    fn a_connection_lost_without_a_word_says_what_ssh_waits_for() {
        let text = classify(&target(), "\n").to_string();
        assert!(
            text.starts_with("host 198.18.0.11: the connection failed or was lost"),
            "{text}"
        );
        assert!(text.contains("ServerAliveInterval=5"), "{text}");
    }

    #[test]
    fn a_changed_host_key_is_never_accepted() {
        let err = classify(
            &target(),
            "@@@@@\n@    WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED!     @\n@@@@@\nHost key verification failed.\n",
        );
        let text = err.to_string();
        assert!(text.contains("has CHANGED"), "{text}");
        assert!(text.contains("ssh-keygen -R 198.18.0.11"), "{text}");
    }

    #[test]
    fn the_options_put_dbgroups_rules_before_the_targets_settings() {
        let connection_options = {
            let client = SshClient {
                config_file: Some("/etc/dbgroups/ssh_config".into()),
                accept_new_host_keys: false,
            };
            let control = tempfile::tempdir().expect("dir");
            let connection = Connection {
                target: target(),
                client,
                control,
                sessions: Semaphore::new(1),
                master: Mutex::new(()),
            };
            let options: Vec<String> = connection
                .options()
                .iter()
                .map(|o| o.to_string_lossy().into_owned())
                .collect();
            drop(connection);
            options
        };
        assert_eq!(
            &connection_options[..4],
            ["-F", "/etc/dbgroups/ssh_config", "-o", "BatchMode=yes"]
        );
        assert!(connection_options.contains(&"StrictHostKeyChecking=yes".to_string()));
        let tail = &connection_options[connection_options.len() - 4..];
        assert_eq!(tail, ["-l", "deploy", "-p", "2222"]);
    }
}

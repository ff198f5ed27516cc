//! The ssh provider's host: an existing machine reached over OpenSSH.
//!
//! Every operation of the host interface is one remote command on the
//! host's multiplexed connection ([`mux`]), run as root (the ssh user is
//! root, or has passwordless `sudo -n`), with the shell text built by
//! [`script`]. Servers live under [`SERVERS_DIR`], owned by the service
//! user `dbgroups` (created when missing, as the local host does when run
//! as root). File contents travel on standard input, never on a command
//! line, so no secret appears in the host's `ps`.

pub mod mux;
pub mod script;
pub mod systemd;

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};

use crate::error::EngineError;
use crate::host::{Host, Program};
use crate::local::SERVICE_USER;
pub use mux::{SshClient, SshTarget};

/// Where servers live on a host.
pub const SERVERS_DIR: &str = "/var/lib/dbgroups/servers";
/// Where backups are staged on a host.
pub const STAGING_DIR: &str = "/var/lib/dbgroups/backups";

#[derive(Debug)]
pub struct SshHost {
    connection: mux::Connection,
    /// The ssh user is not root: every command goes through `sudo -n`.
    via_sudo: bool,
    /// The host's address as its servers listen on it.
    listen: IpAddr,
    service_uid: u32,
    /// The host runs systemd: servers become units (`systemd.rs`).
    systemd: bool,
    /// Loopback ports of this machine forwarded to a server's port there.
    forwards: tokio::sync::Mutex<BTreeMap<u16, u16>>,
}

/// What the first look at a host found.
struct Probe {
    uid: u32,
    sudo: bool,
}

impl SshHost {
    /// Connects to a host and makes it ready for servers: the service user
    /// and the directories servers and backups live in.
    pub async fn connect(target: SshTarget, client: SshClient) -> Result<Self, EngineError> {
        let connection = mux::Connection::open(target, client).await?;
        let probe = probe(&connection).await?;
        let via_sudo = probe.uid != 0;
        if via_sudo && !probe.sudo {
            return Err(EngineError::Ssh {
                host: connection.address().to_string(),
                detail: "the ssh user is not root and cannot run `sudo -n` without a password: dbgroups needs root or passwordless sudo there".into(),
            });
        }
        let mut host = Self {
            connection,
            via_sudo,
            listen: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            service_uid: 0,
            systemd: false,
            forwards: tokio::sync::Mutex::new(BTreeMap::new()),
        };
        let prepared = host
            .root(&prepare_script(host.connection.address())?)
            .await?;
        let mut lines = prepared.lines();
        host.service_uid = parse_line(lines.next(), host.name(), "the service user's uid")?;
        host.listen = parse_line(lines.next(), host.name(), "the host's address")?;
        host.systemd = lines.next().map(str::trim) == Some("systemd");
        Ok(host)
    }

    /// Runs a script as root, its stdout or its failure.
    async fn root(&self, script: &str) -> Result<String, EngineError> {
        let finished = self.root_finished(script, None).await?;
        self.judged(finished, "a command")
    }

    async fn root_finished(
        &self,
        script: &str,
        stdin: Option<&[u8]>,
    ) -> Result<mux::Finished, EngineError> {
        let line = script::as_root(script, self.via_sudo).map_err(|e| self.named(e))?;
        self.connection.exec(&line, stdin).await
    }

    fn judged(&self, finished: mux::Finished, shown_as: &str) -> Result<String, EngineError> {
        if finished.status.success() {
            Ok(String::from_utf8_lossy(&finished.stdout).into_owned())
        } else {
            Err(EngineError::Command {
                command: format!("{shown_as} on {}", self.name()),
                status: finished.status.to_string(),
                stderr: finished.stderr.trim().to_string(),
            })
        }
    }

    /// A script error without a host gets this one's name.
    fn named(&self, err: EngineError) -> EngineError {
        match err {
            EngineError::Ssh { host, detail } if host.is_empty() => EngineError::Ssh {
                host: self.name().to_string(),
                detail,
            },
            other => other,
        }
    }

    async fn succeeds(&self, script: &str) -> bool {
        self.root_finished(script, None)
            .await
            .is_ok_and(|f| f.status.success())
    }

    async fn path_script(
        &self,
        path: &Path,
        make: impl Fn(&str) -> String,
    ) -> Result<String, EngineError> {
        let quoted = script::quote_path(path).map_err(|e| self.named(e))?;
        Ok(make(&quoted))
    }
}

/// Who the ssh user is, and whether `sudo -n` works for it.
async fn probe(connection: &mux::Connection) -> Result<Probe, EngineError> {
    let finished = connection
        .exec("id -u; sudo -n true 2>/dev/null && echo sudo", None)
        .await?;
    let text = String::from_utf8_lossy(&finished.stdout);
    let mut lines = text.lines();
    let uid = parse_line(lines.next(), connection.address(), "the ssh user's uid")?;
    Ok(Probe {
        uid,
        sudo: lines.next() == Some("sudo"),
    })
}

/// Creates the service user and the directories when missing, then prints
/// the user's uid and the address the host has for `address` (an IP given
/// as is; a name as the host resolves it).
fn prepare_script(address: &str) -> Result<String, EngineError> {
    let quoted = script::quote(address)?;
    Ok(format!(
        "set -e\n\
         id -u {SERVICE_USER} > /dev/null 2>&1 || useradd --system --user-group --no-create-home \
         --home-dir /nonexistent --shell /usr/sbin/nologin {SERVICE_USER}\n\
         mkdir -p {SERVERS_DIR} {STAGING_DIR}\n\
         chmod 711 /var/lib/dbgroups {SERVERS_DIR}\n\
         chown {SERVICE_USER}:{SERVICE_USER} {STAGING_DIR}\n\
         chmod 700 {STAGING_DIR}\n\
         id -u {SERVICE_USER}\n\
         getent ahosts {quoted} | awk 'NR == 1 {{ print $1 }}' | grep . || echo {quoted}\n\
         [ -d /run/systemd/system ] && echo systemd || echo detached\n"
    ))
}

fn parse_line<T: std::str::FromStr>(
    line: Option<&str>,
    host: &str,
    what: &str,
) -> Result<T, EngineError> {
    line.map(str::trim)
        .and_then(|l| l.parse().ok())
        .ok_or_else(|| EngineError::Ssh {
            host: host.to_string(),
            detail: format!("could not read {what} from the host (got {line:?})"),
        })
}

#[async_trait::async_trait]
impl Host for SshHost {
    fn name(&self) -> &str {
        self.connection.address()
    }

    fn provider(&self) -> dbgroups_manifest::ProviderKind {
        dbgroups_manifest::ProviderKind::Ssh
    }

    fn listen_addresses(&self) -> Vec<IpAddr> {
        vec![self.listen, IpAddr::V4(Ipv4Addr::LOCALHOST)]
    }

    fn dial_address(&self) -> String {
        self.connection.address().to_string()
    }

    fn servers_dir(&self) -> PathBuf {
        PathBuf::from(SERVERS_DIR)
    }

    fn staging_dir(&self, backup: &str) -> PathBuf {
        Path::new(STAGING_DIR).join(backup)
    }

    async fn client_endpoint(&self, port: u16) -> Result<(String, u16), EngineError> {
        let mut forwards = self.forwards.lock().await;
        if let Some(&local) = forwards.get(&port) {
            return Ok((Ipv4Addr::LOCALHOST.to_string(), local));
        }
        let local = crate::local::free_port()?;
        self.connection.forward(local, port).await?;
        forwards.insert(port, local);
        Ok((Ipv4Addr::LOCALHOST.to_string(), local))
    }

    async fn run(&self, program: &Program, shown_as: &str) -> Result<String, EngineError> {
        let script = script::run(program).map_err(|e| self.named(e))?;
        let finished = self.root_finished(&script, None).await?;
        self.judged(finished, shown_as)
    }

    async fn run_stoppable(
        &self,
        program: &Program,
        shown_as: &str,
    ) -> Result<String, EngineError> {
        if crate::interrupt::stopping() {
            return Err(crate::interrupt::stopped(shown_as));
        }
        let script = script::run(program).map_err(|e| self.named(e))?;
        let line = script::as_root(&script, self.via_sudo).map_err(|e| self.named(e))?;
        let registered = std::sync::Mutex::new(None);
        let running = self.connection.exec_with(&line, None, |pid| {
            if let Ok(mut slot) = registered.lock() {
                *slot = Some(crate::interrupt::Registered::new(pid));
            }
        });
        tokio::pin!(running);
        let mut ticker = crate::progress::Ticker::default();
        let mut every = tokio::time::interval(std::time::Duration::from_secs(1));
        let finished = loop {
            tokio::select! {
                finished = &mut running => break finished,
                _ = every.tick() => ticker.tick(&format!("running {shown_as} on {}", self.name())),
            }
        };
        drop(registered.lock().map(|mut slot| slot.take()));
        let finished = finished?;
        if crate::interrupt::stopping() && !finished.status.success() {
            return Err(crate::interrupt::stopped(shown_as));
        }
        self.judged(finished, shown_as)
    }

    async fn start_detached(&self, program: &Program, shown_as: &str) -> Result<(), EngineError> {
        let script = script::start_detached(program).map_err(|e| self.named(e))?;
        let finished = self.root_finished(&script, None).await?;
        self.judged(finished, shown_as).map(drop)
    }

    async fn start_server(
        &self,
        server: &str,
        program: &Program,
        start: crate::host::ServerStart,
        shown_as: &str,
    ) -> Result<(), EngineError> {
        if !self.systemd {
            return match start {
                crate::host::ServerStart::Foreground => {
                    self.start_detached(program, shown_as).await
                }
                crate::host::ServerStart::Daemonizes { .. } => {
                    self.run(program, shown_as).await.map(drop)
                }
            };
        }
        let unit = systemd::unit_text(server, program, &start).map_err(|e| self.named(e))?;
        let script = systemd::start_script(server).map_err(|e| self.named(e))?;
        let finished = self.root_finished(&script, Some(unit.as_bytes())).await?;
        self.judged(
            finished,
            &format!("{shown_as} (as {})", systemd::unit_name(server)),
        )
        .map(drop)
    }

    async fn forget_server(&self, server: &str) -> Result<(), EngineError> {
        let script = systemd::forget_script(server).map_err(|e| self.named(e))?;
        self.root(&script).await.map(drop)
    }

    fn run_blocking(&self, program: &Program) -> bool {
        script::run(program)
            .and_then(|s| script::as_root(&s, self.via_sudo))
            .is_ok_and(|line| self.connection.exec_blocking(&line))
    }

    async fn write_private_file(&self, path: &Path, contents: &[u8]) -> Result<(), EngineError> {
        let script = script::write_private_file(path).map_err(|e| self.named(e))?;
        let finished = self.root_finished(&script, Some(contents)).await?;
        self.judged(finished, &format!("writing {}", path.display()))
            .map(drop)
    }

    async fn private_dir(&self, dir: &Path) -> Result<(), EngineError> {
        let script = script::private_dir(dir).map_err(|e| self.named(e))?;
        self.root(&script).await.map(drop)
    }

    async fn read_file(&self, path: &Path) -> Result<Option<Vec<u8>>, EngineError> {
        let script = script::read_file(path).map_err(|e| self.named(e))?;
        let finished = self.root_finished(&script, None).await?;
        if finished.status.code() == Some(script::ABSENT) {
            return Ok(None);
        }
        if !finished.status.success() {
            return Err(EngineError::Command {
                command: format!("reading {} on {}", path.display(), self.name()),
                status: finished.status.to_string(),
                stderr: finished.stderr.trim().to_string(),
            });
        }
        Ok(Some(finished.stdout))
    }

    async fn is_file(&self, path: &Path) -> bool {
        match self.path_script(path, |p| format!("[ -f {p} ]")).await {
            Ok(script) => self.succeeds(&script).await,
            Err(_) => false,
        }
    }

    async fn exists(&self, path: &Path) -> bool {
        match self.path_script(path, |p| format!("[ -e {p} ]")).await {
            Ok(script) => self.succeeds(&script).await,
            Err(_) => false,
        }
    }

    async fn file_len(&self, path: &Path) -> u64 {
        self.number(path, |p| format!("stat -c %s -- {p} 2>/dev/null || echo 0"))
            .await
            .unwrap_or(0)
    }

    async fn owner_of(&self, path: &Path) -> Option<u32> {
        self.number(path, |p| format!("stat -c %u -- {p}"))
            .await
            .and_then(|n| u32::try_from(n).ok())
    }

    async fn remove_dir(&self, path: &Path) -> Result<(), EngineError> {
        let script = self.path_script(path, |p| format!("rm -rf -- {p}")).await?;
        self.root(&script).await.map(drop)
    }

    async fn remove_file(&self, path: &Path) -> Result<(), EngineError> {
        let script = self.path_script(path, |p| format!("rm -f -- {p}")).await?;
        self.root(&script).await.map(drop)
    }

    async fn rename(&self, from: &Path, to: &Path) -> Result<(), EngineError> {
        let from = script::quote_path(from).map_err(|e| self.named(e))?;
        let to = script::quote_path(to).map_err(|e| self.named(e))?;
        self.root(&format!("mv -T -- {from} {to}")).await.map(drop)
    }

    async fn free_bytes(&self, path: &Path) -> Result<u64, EngineError> {
        let script = script::free_bytes(path).map_err(|e| self.named(e))?;
        let text = self.root(&script).await?;
        parse_line(text.lines().next(), self.name(), "the free space")
    }

    async fn size_of(&self, path: &Path) -> u64 {
        self.number(path, |p| {
            format!("du -sb -- {p} 2>/dev/null | cut -f1 | grep . || echo 0")
        })
        .await
        .unwrap_or(0)
    }

    async fn choose_port(&self, default: u16) -> Result<u16, EngineError> {
        let tables = self
            .root("cat /proc/net/tcp /proc/net/tcp6 2>/dev/null")
            .await?;
        let taken = script::listening_ports(&tables);
        if !taken.contains(&default) {
            return Ok(default);
        }
        // The next free port above the default, as a person would choose.
        (default.saturating_add(1)..=u16::MAX)
            .find(|port| !taken.contains(port))
            .ok_or_else(|| {
                EngineError::NoPort(std::io::Error::other(format!(
                    "every port above {default} is taken on {}",
                    self.name()
                )))
            })
    }

    async fn find_program(&self, names: &[&str]) -> Option<PathBuf> {
        let script = script::find_program(names).ok()?;
        let text = self.root(&script).await.ok()?;
        text.lines().next().map(PathBuf::from)
    }

    async fn remove_staged(&self, prefix: &str) {
        if let Ok(prefix) = script::quote(prefix) {
            let _ = self
                .root(&format!(
                    "for e in {STAGING_DIR}/* {STAGING_DIR}/.[!.]*; do [ -e \"$e\" ] || continue; \
                     case \"${{e##*/}}\" in {prefix}*) rm -rf -- \"$e\";; esac; done"
                ))
                .await;
        }
    }

    async fn stop_programs_naming(&self, path: &Path) {
        let Ok(pattern) = script::quote(&script::unmatched_by_itself(path)) else {
            return;
        };
        // pkill exits 1 when nothing matched: not a failure.
        let _ = self
            .root(&format!("pkill -KILL -f -- {pattern}; true"))
            .await;
    }

    fn service_uid(&self) -> Option<u32> {
        Some(self.service_uid)
    }
}

impl SshHost {
    async fn number(&self, path: &Path, make: impl Fn(&str) -> String) -> Option<u64> {
        let script = self.path_script(path, make).await.ok()?;
        let text = self.root(&script).await.ok()?;
        text.lines().next()?.trim().parse().ok()
    }
}

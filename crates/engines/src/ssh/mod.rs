//! The ssh provider's host: an existing machine reached over OpenSSH.
//!
//! Every operation of the host interface is one remote command on the
//! host's multiplexed connection ([`mux`]), run as root (the ssh user is
//! root, or has passwordless `sudo -n`), with the shell text built by
//! [`script`]. Servers live under [`SERVERS_DIR`], owned by the service
//! user `dbgroups` (created when missing, as the local host does when run
//! as root). File contents travel on standard input, never on a command
//! line, so no secret appears in the host's `ps`.

mod firewall;
pub mod mux;
mod relay;
pub mod script;
pub mod systemd;

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};

use crate::error::EngineError;
use crate::host::{Host, Packages, Program};
use crate::local::SERVICE_USER;
pub use mux::{SshClient, SshTarget};

/// Where servers live on a host.
pub const SERVERS_DIR: &str = "/var/lib/dbgroups/servers";
/// Where backups are staged on a host.
pub const STAGING_DIR: &str = "/var/lib/dbgroups/backups";

#[derive(Debug)]
pub struct SshHost {
    /// Shared with the tasks relaying sockets ([`relay`]).
    connection: std::sync::Arc<mux::Connection>,
    relays: relay::Relays,
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
            connection: std::sync::Arc::new(connection),
            relays: relay::Relays::default(),
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

    fn reached_over_network(&self) -> bool {
        true
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

    /// In the connection's own 0700 directory on this machine (with its
    /// control socket), so it goes when the connection does.
    async fn client_file(&self, name: &str, contents: &[u8]) -> Result<PathBuf, EngineError> {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let plain = !name.is_empty()
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
            && !name.starts_with('.');
        if !plain {
            return Err(self.named(EngineError::Command {
                command: "a client file".into(),
                status: "refused".into(),
                stderr: format!("\"{name}\" is not a plain file name"),
            }));
        }
        let path = self.connection.local_dir().join(name);
        let failed = |action: &'static str| {
            let path = path.clone();
            move |source| EngineError::Io {
                action,
                path,
                source,
            }
        };
        // Written beside (under a name of its own) and renamed: a
        // connection reading the file at the same moment sees the old
        // bytes or the new, never half.
        static WRITES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = WRITES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let partial = self.connection.local_dir().join(format!(".{name}.{n}"));
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&partial)
            .map_err(failed("create"))?;
        file.write_all(contents).map_err(failed("write"))?;
        std::fs::rename(&partial, &path).map_err(failed("write"))?;
        Ok(path)
    }

    async fn admin_socket(&self, socket: &Path) -> Result<PathBuf, EngineError> {
        self.relays
            .socket_for(
                &self.connection,
                self.via_sudo,
                self.connection.local_dir(),
                socket,
            )
            .await
            .map_err(|e| self.named(e))
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
            return crate::host::start_unsupervised(self, program, &start, shown_as).await;
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

    async fn restrict_port(
        &self,
        server: &str,
        port: u16,
        sources: &[String],
    ) -> Result<(), EngineError> {
        // nftables comes with the firewall's own package when missing.
        self.ensure_packages(&Packages {
            names: vec!["nftables".into()],
            program: "nft".into(),
            outside_distribution: None,
        })
        .await?;
        let script = firewall::restrict(server, port, sources).map_err(|e| self.named(e))?;
        self.root(&script).await.map(drop)
    }

    async fn unrestrict_port(&self, port: u16) -> Result<(), EngineError> {
        self.root(&firewall::unrestrict(port)).await.map(drop)
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

    async fn can_install(&self, packages: &[String]) -> bool {
        match script::can_install(packages) {
            Ok(script) => self.succeeds(&script).await,
            Err(_) => false,
        }
    }

    async fn ensure_packages(&self, packages: &Packages) -> Result<(), EngineError> {
        if self.find_program(&[&packages.program]).await.is_some() {
            return Ok(());
        }
        let refused = |detail: String| EngineError::Packages {
            host: self.name().to_string(),
            packages: packages.names.clone(),
            detail,
        };
        if let Some(elsewhere) = &packages.outside_distribution
            && !self.can_install(&packages.names).await
        {
            return Err(refused(elsewhere.clone()));
        }
        let script = script::install_packages(&packages.names, Path::new("/etc/os-release"))
            .map_err(|e| self.named(e))?;
        let finished = self.root_finished(&script, None).await?;
        match finished.status.code() {
            Some(0) => {}
            Some(script::NOT_DEBIAN) => {
                let id = String::from_utf8_lossy(&finished.stdout).trim().to_string();
                return Err(refused(format!(
                    "its /etc/os-release says {id}, neither Debian nor Ubuntu, so dbgroups does not install packages there: install them by hand"
                )));
            }
            _ => {
                let said: Vec<&str> = finished.stderr.trim().lines().rev().take(5).collect();
                let said: Vec<&str> = said.into_iter().rev().collect();
                return Err(refused(format!(
                    "`apt-get install -y --no-install-recommends {}` failed ({}): {}",
                    packages.names.join(" "),
                    finished.status,
                    said.join(" / ")
                )));
            }
        }
        match self.find_program(&[&packages.program]).await {
            Some(_) => Ok(()),
            None => Err(refused(format!(
                "apt-get installed them, but {} is still missing",
                packages.program
            ))),
        }
    }
}

impl SshHost {
    async fn number(&self, path: &Path, make: impl Fn(&str) -> String) -> Option<u64> {
        let script = self.path_script(path, make).await.ok()?;
        let text = self.root(&script).await.ok()?;
        text.lines().next()?.trim().parse().ok()
    }
}

/// The install script's decision, run by `sh` against a fake
/// `/etc/os-release` and a stub `apt-get` (never the real one: the test
/// hosts share this machine's `/usr`).
#[cfg(test)]
mod install_tests {
    use std::path::Path;

    use super::script;

    /// A directory with `os-release` holding `release` and a stub `apt-get`
    /// that logs each call (and `DEBIAN_FRONTEND`), failing its first
    /// install when `fail_first` is set, as apt does on a host whose
    /// package lists were never fetched.
    fn fake_host(test: &str, release: &str, fail_first: bool) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("dbgroups-apt-{}-{test}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("bin")).expect("dir");
        std::fs::write(dir.join("os-release"), release).expect("os-release");
        let stub = format!(
            "#!/bin/sh\n\
             echo \"DEBIAN_FRONTEND=$DEBIAN_FRONTEND $*\" >> {log}\n\
             case \"$*\" in *' install '*) if {fail} && [ ! -e {dir}/failed ]; then : > {dir}/failed; exit 100; fi;; esac\n\
             exit 0\n",
            log = dir.join("log").display(),
            dir = dir.display(),
            fail = if fail_first { "true" } else { "false" },
        );
        let apt = dir.join("bin/apt-get");
        std::fs::write(&apt, stub).expect("stub");
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&apt, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        dir
    }

    /// Runs [`install_packages`] on the fake host: its status, stdout and
    /// the stub's log.
    fn install_on(dir: &Path, packages: &[&str]) -> (Option<i32>, String, String) {
        let packages: Vec<String> = packages.iter().map(|p| p.to_string()).collect();
        let script = script::install_packages(&packages, &dir.join("os-release")).expect("script");
        let output = crate::process::built_command(Path::new("sh"), dir, None)
            .env(
                "PATH",
                format!(
                    "{}:{}",
                    dir.join("bin").display(),
                    crate::process::SYSTEM_PATH
                ),
            )
            .args([std::ffi::OsStr::new("-c"), std::ffi::OsStr::new(&script)])
            .output()
            .expect("sh runs");
        let log = std::fs::read_to_string(dir.join("log")).unwrap_or_default();
        (
            output.status.code(),
            String::from_utf8_lossy(&output.stdout).into_owned(),
            log,
        )
    }

    #[test]
    fn packages_are_installed_with_apt_on_debian_without_questions_or_recommends() {
        let dir = fake_host(
            "debian",
            "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nID=debian\nVERSION_ID=\"12\"\n",
            false,
        );
        let (status, _, log) = install_on(&dir, &["postgresql-15"]);
        assert_eq!(status, Some(0));
        assert_eq!(
            log,
            "DEBIAN_FRONTEND=noninteractive -o DPkg::Lock::Timeout=600 install -y --no-install-recommends postgresql-15\n"
        );
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn a_failed_install_updates_the_package_lists_and_tries_once_more() {
        let dir = fake_host(
            "update",
            "ID=ubuntu\nID_LIKE=debian\nVERSION_ID=\"22.04\"\n",
            true,
        );
        let (status, _, log) = install_on(&dir, &["mariadb-server", "mariadb-client"]);
        assert_eq!(status, Some(0));
        let install = "-o DPkg::Lock::Timeout=600 install -y --no-install-recommends mariadb-server mariadb-client";
        assert_eq!(
            log,
            format!(
                "DEBIAN_FRONTEND=noninteractive {install}\n\
                 DEBIAN_FRONTEND=noninteractive -o DPkg::Lock::Timeout=600 update\n\
                 DEBIAN_FRONTEND=noninteractive {install}\n"
            )
        );
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn a_system_like_debian_installs_and_any_other_is_refused_without_running_apt() {
        let dir = fake_host("like", "ID=linuxmint\nID_LIKE='ubuntu debian'\n", false);
        assert_eq!(install_on(&dir, &["redis-server"]).0, Some(0));
        let _ = std::fs::remove_dir_all(dir);
        for (test, release, id) in [
            (
                "fedora",
                "ID=fedora\nVERSION_ID=40\nID_LIKE=\"rhel centos\"\n",
                "fedora",
            ),
            ("none", "NAME=nothing\n", "unknown"),
            // A word that only contains "debian" is not Debian.
            (
                "debianish",
                "ID=notdebian\nID_LIKE=debianish\n",
                "notdebian",
            ),
        ] {
            let dir = fake_host(test, release, false);
            let (status, stdout, log) = install_on(&dir, &["postgresql-15"]);
            assert_eq!(status, Some(script::NOT_DEBIAN), "{test}");
            assert_eq!(stdout.trim(), id, "{test}");
            assert_eq!(log, "", "{test}: apt-get must not run");
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

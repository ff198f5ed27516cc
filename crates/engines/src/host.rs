//! The host interface: everything an engine does to a machine.
//!
//! An engine never touches `std::fs`, starts a process or names a loopback
//! address itself (`tests/integration/architecture.rs` checks it): it
//! describes a [`Program`] and asks its [`Host`] to run it, and reads and
//! writes files through the host. [`crate::LocalHost`] is this machine (the
//! local provider); the ssh provider is another implementation of the same
//! trait, which is why every path an engine passes here is a path *on that
//! host* and why secrets travel in files (written with
//! [`Host::write_private_file`]), never in arguments or the environment:
//! over ssh both end up on a command line.

use std::ffi::OsString;
use std::fmt::Debug;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::error::EngineError;

/// A host as engines hold it.
pub type HostRef = Arc<dyn Host>;

/// Where a program's standard input comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// Nothing (`/dev/null`).
    Null,
    /// A file on the host.
    File(PathBuf),
}

/// Where a program's standard output goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// Captured and returned by [`Host::run`].
    Captured,
    /// A file on the host (created 0600, replaced if present).
    File(PathBuf),
    /// Discarded.
    Null,
}

/// A program to run on a host: plain data, so that a host decides how it
/// is started (a local process with the environment `process.rs` builds,
/// or a command over ssh). Its environment holds only what the step sets
/// here on top of the built one; never a secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Program {
    pub program: PathBuf,
    pub args: Vec<OsString>,
    pub env: Vec<(String, OsString)>,
    /// `HOME` (the server's own directory, or one of dbgroups' own).
    pub home: PathBuf,
    pub current_dir: Option<PathBuf>,
    pub stdin: Input,
    pub stdout: Output,
    /// Run as the servers' unprivileged user (always, but for root's own
    /// tools such as `useradd`).
    pub as_service_user: bool,
}

impl Program {
    /// `program` with `HOME` set to `home`, output captured, run as the
    /// servers' user.
    pub fn new(home: &Path, program: &Path) -> Self {
        Self {
            program: program.to_path_buf(),
            args: Vec::new(),
            env: Vec::new(),
            home: home.to_path_buf(),
            current_dir: None,
            stdin: Input::Null,
            stdout: Output::Captured,
            as_service_user: true,
        }
    }

    pub fn arg(&mut self, arg: impl Into<OsString>) -> &mut Self {
        self.args.push(arg.into());
        self
    }

    pub fn args<I, S>(&mut self, args: I) -> &mut Self
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    pub fn env(&mut self, key: &str, value: impl Into<OsString>) -> &mut Self {
        self.env.push((key.to_string(), value.into()));
        self
    }

    pub fn current_dir(&mut self, dir: &Path) -> &mut Self {
        self.current_dir = Some(dir.to_path_buf());
        self
    }

    pub fn stdin_from(&mut self, file: &Path) -> &mut Self {
        self.stdin = Input::File(file.to_path_buf());
        self
    }

    pub fn stdout_to(&mut self, file: &Path) -> &mut Self {
        self.stdout = Output::File(file.to_path_buf());
        self
    }

    pub fn stdout_null(&mut self) -> &mut Self {
        self.stdout = Output::Null;
        self
    }
}

/// How a server's start program runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerStart {
    /// It stays in the foreground: the server itself.
    Foreground,
    /// It forks the server off and returns once it runs (`pg_ctl start
    /// --wait`, Redis's `daemonize yes`); the server's pid is in
    /// `pid_file`.
    Daemonizes { pid_file: PathBuf },
}

/// The Debian/Ubuntu packages a server of one engine and version needs,
/// as its engine names them ([`crate::DatabaseEngine::packages`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packages {
    pub names: Vec<String>,
    /// A program whose presence shows them installed: an absolute path, or
    /// a name looked for on the system `PATH`.
    pub program: String,
    /// What to do when neither Debian nor Ubuntu packages them (another
    /// vendor's apt repository); `None` when the distribution does.
    pub outside_distribution: Option<String>,
}

/// The operating system a host's `/etc/os-release` names.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct OsRelease {
    /// `ID` (`debian`, `ubuntu`, `fedora` …).
    pub id: String,
    /// `VERSION_ID` (`12`, `22.04`); empty when absent (Debian testing).
    pub version_id: String,
    /// `ID_LIKE`, split at spaces.
    pub id_like: Vec<String>,
}

impl OsRelease {
    /// Reads the `KEY=value` lines of an os-release file (values quoted
    /// or not, as os-release(5) allows).
    pub fn parse(text: &str) -> Self {
        let mut release = Self::default();
        for line in text.lines() {
            let Some((key, value)) = line.trim().split_once('=') else {
                continue;
            };
            let value = value.trim();
            let value = value
                .strip_prefix('"')
                .and_then(|v| v.strip_suffix('"'))
                .or_else(|| value.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')))
                .unwrap_or(value)
                .to_string();
            match key.trim() {
                "ID" => release.id = value,
                "VERSION_ID" => release.version_id = value,
                "ID_LIKE" => release.id_like = value.split_whitespace().map(String::from).collect(),
                _ => {}
            }
        }
        release
    }

    /// Debian, Ubuntu, or a system that says it is like one of them: apt
    /// installs their packages.
    pub fn is_debian_family(&self) -> bool {
        std::iter::once(&self.id)
            .chain(&self.id_like)
            .any(|id| id == "debian" || id == "ubuntu")
    }
}

/// Whether one engine's packages are on a host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackageCheck {
    pub packages: Packages,
    /// Their program is there.
    pub installed: bool,
    /// apt there knows a version of every one of them (its package lists
    /// name them): an apply can install them.
    pub installable: bool,
}

/// What a host says about itself before a plan touches it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Preflight {
    /// `None` when `/etc/os-release` cannot be read.
    pub os: Option<OsRelease>,
    /// Free bytes under the servers' directory.
    pub free_bytes: Option<u64>,
    pub packages: Vec<PackageCheck>,
}

/// Everything an engine does to a machine.
///
/// Object-safe (the engines hold a [`HostRef`]), so its async methods come
/// through `async-trait` (docs/decisions.md says why).
#[async_trait::async_trait]
pub trait Host: Send + Sync + Debug {
    /// The host's name as plans and errors show it (`local`).
    fn name(&self) -> &str;

    /// The provider that manages this host, as state records it.
    fn provider(&self) -> dbgroups_manifest::ProviderKind;

    /// The addresses servers listen on: the host's own and loopback
    /// (only loopback on this machine), the first the one peers dial.
    fn listen_addresses(&self) -> Vec<IpAddr>;

    /// The address a peer dials to reach a server here.
    fn dial_address(&self) -> String;

    /// Where dbgroups' own client connects to reach `port` here: this
    /// machine's loopback for the local host; for an ssh host a loopback
    /// port forwarded over its connection, so dbgroups reaches a server as
    /// a client on its host does, whatever that host lets in from outside.
    async fn client_endpoint(&self, port: u16) -> Result<(String, u16), EngineError> {
        Ok((self.dial_address(), port))
    }

    /// Whether other machines reach this host's servers over the network
    /// (an ssh host), so they serve TLS and keep access rules; this
    /// machine's servers listen on loopback only.
    fn reached_over_network(&self) -> bool {
        false
    }

    /// Where dbgroups' own client connects to reach the unix socket
    /// `socket` here, as root on the host would: the socket itself on this
    /// machine; for an ssh host a socket of this machine's relayed to it.
    /// For administrators that exist only on the socket (a MySQL-family
    /// server's root, never reachable over TCP).
    async fn admin_socket(&self, socket: &Path) -> Result<PathBuf, EngineError> {
        Ok(socket.to_path_buf())
    }

    /// A file on the machine running dbgroups (mode 0600, in a 0700
    /// directory of this process's own), holding `contents`, for a client
    /// library that reads a setting only from a path: the MongoDB driver's
    /// CA file for its own connections to a server here. `name` is a plain
    /// file name. This machine's servers serve no TLS, so only a host
    /// reached over the network keeps such files (docs/decisions.md).
    async fn client_file(&self, name: &str, _contents: &[u8]) -> Result<PathBuf, EngineError> {
        Err(EngineError::Unsupported {
            what: format!("a client file ({name}) for {}", self.name()),
            remedy: "none needed: servers on this machine serve no TLS".into(),
        })
    }

    /// The directory all servers' directories live under.
    fn servers_dir(&self) -> PathBuf;

    /// Where one server keeps everything: data, logs, sockets, config.
    fn server_dir(&self, server: &str) -> PathBuf {
        self.servers_dir().join(server)
    }

    /// The staging area a backup named `backup` is taken into.
    fn staging_dir(&self, backup: &str) -> PathBuf;

    /// Runs `program` to its end: its stdout (when captured), or its stderr
    /// as the error. `shown_as` names it in errors (never a secret).
    async fn run(&self, program: &Program, shown_as: &str) -> Result<String, EngineError>;

    /// [`Host::run`] for a tool that copies data and may take long: a
    /// second Ctrl-C stops it, and it does not start after one. Never for
    /// a command that starts or stops a server.
    async fn run_stoppable(&self, program: &Program, shown_as: &str)
    -> Result<String, EngineError>;

    /// Starts `program` and does not wait for it: a server that stays in
    /// the foreground (it survives dbgroups; its output is discarded).
    async fn start_detached(&self, program: &Program, shown_as: &str) -> Result<(), EngineError>;

    /// Starts the server `server` with `program`, the way it always
    /// starts (never a one-off start with special arguments). Where the
    /// host runs systemd (an ssh host), as the unit
    /// `dbgroups-<server>.service`, enabled, so the host's boot starts it
    /// again; elsewhere detached, or run to its end when it daemonizes
    /// itself.
    async fn start_server(
        &self,
        _server: &str,
        program: &Program,
        start: ServerStart,
        shown_as: &str,
    ) -> Result<(), EngineError> {
        start_unsupervised(self, program, &start, shown_as).await
    }

    /// Lets only `sources` (addresses or CIDR networks) and loopback reach
    /// TCP `port` here, for `server`: for engines with no per-source rules
    /// of their own. An ensure; the rules are replaced at once. This
    /// machine's servers listen on loopback only, so here it does nothing.
    async fn restrict_port(
        &self,
        _server: &str,
        _port: u16,
        _sources: &[String],
    ) -> Result<(), EngineError> {
        Ok(())
    }

    /// Removes what [`Host::restrict_port`] set for `port`, if anything.
    async fn unrestrict_port(&self, _port: u16) -> Result<(), EngineError> {
        Ok(())
    }

    /// Removes what [`Host::start_server`] left of a removed server beside
    /// its directory (a systemd unit).
    async fn forget_server(&self, _server: &str) -> Result<(), EngineError> {
        Ok(())
    }

    /// [`Host::run`] for paths that cannot await (guards and teardown on
    /// drop): its exit status, `false` when it could not run.
    fn run_blocking(&self, program: &Program) -> bool;

    /// Writes a file (mode 0600) the servers' user owns, durably.
    async fn write_private_file(&self, path: &Path, contents: &[u8]) -> Result<(), EngineError>;

    /// Creates `dir` and its parents (mode 0700), owned by the servers' user.
    async fn private_dir(&self, dir: &Path) -> Result<(), EngineError>;

    /// A file's bytes; `None` when it does not exist.
    async fn read_file(&self, path: &Path) -> Result<Option<Vec<u8>>, EngineError>;

    /// A text file's contents; `None` when it does not exist or cannot be
    /// read.
    async fn read_text(&self, path: &Path) -> Option<String> {
        self.read_file(path)
            .await
            .ok()
            .flatten()
            .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
    }

    /// The last `lines` lines of a text file (empty when absent): where a
    /// database says why it would not start.
    async fn tail(&self, path: &Path, lines: usize) -> String {
        let text = self.read_text(path).await.unwrap_or_default();
        let tail: Vec<&str> = text.lines().rev().take(lines).collect();
        tail.into_iter().rev().collect::<Vec<_>>().join("\n")
    }

    /// Whether `path` is a regular file.
    async fn is_file(&self, path: &Path) -> bool;

    /// Whether anything exists at `path`.
    async fn exists(&self, path: &Path) -> bool;

    /// A file's length in bytes (0 when absent).
    async fn file_len(&self, path: &Path) -> u64;

    /// The owner's uid of `path`.
    async fn owner_of(&self, path: &Path) -> Option<u32>;

    /// Removes a directory and everything in it; absent is not an error.
    async fn remove_dir(&self, path: &Path) -> Result<(), EngineError>;

    /// Removes a file; absent is not an error.
    async fn remove_file(&self, path: &Path) -> Result<(), EngineError>;

    /// Renames `from` to `to` on this host (one filesystem: the caller
    /// falls back to a copy when it fails).
    async fn rename(&self, from: &Path, to: &Path) -> Result<(), EngineError>;

    /// Free bytes for an unprivileged writer on the filesystem holding
    /// `path` (or its nearest existing ancestor).
    async fn free_bytes(&self, path: &Path) -> Result<u64, EngineError>;

    /// The bytes of every file under `path` (0 when absent).
    async fn size_of(&self, path: &Path) -> u64;

    /// A port nothing listens on now, for a new server whose engine's own
    /// port is `default`: that one on a host of its own (the ssh
    /// provider), unless it is taken; on this machine, shared by many
    /// servers on loopback, one at random.
    async fn choose_port(&self, default: u16) -> Result<u16, EngineError>;

    /// [`Host::listen_addresses`] as one comma-separated list (the form
    /// PostgreSQL, MariaDB and MongoDB take).
    fn listen_list(&self) -> String {
        self.listen_addresses()
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(",")
    }

    /// The first of `names` installed on the host, on `PATH` or in the
    /// system directories packages put servers in.
    async fn find_program(&self, names: &[&str]) -> Option<PathBuf>;

    /// Removes the staging entries whose names start with `prefix` (all
    /// of them for an empty one).
    async fn remove_staged(&self, prefix: &str);

    /// Stops (SIGKILL) every process here whose command line names
    /// `path`: a data tool an interrupted apply left running (dbgroups
    /// killed, or its link to the host cut while the tool ran on) must not
    /// go on writing into a staging entry that a new attempt replaces.
    async fn stop_programs_naming(&self, path: &Path);

    /// The uid servers run as here, when it differs from dbgroups' own
    /// (the engines compare it with their data directory's owner).
    fn service_uid(&self) -> Option<u32>;

    /// Whether the host's package manager can install every one of
    /// `packages` now. This machine's host installs nothing (its programs
    /// come from the README's commands), so it says no.
    async fn can_install(&self, _packages: &[String]) -> bool {
        false
    }

    /// The host's facts a plan is checked against: its operating system,
    /// the free space where servers live, and whether each of `wanted` is
    /// installed or installable. Never an error: what cannot be read is
    /// left out, and the planner says so.
    async fn preflight(&self, wanted: &[Packages]) -> Preflight {
        let os = self
            .read_text(Path::new("/etc/os-release"))
            .await
            .map(|text| OsRelease::parse(&text));
        let free_bytes = self.free_bytes(&self.servers_dir()).await.ok();
        let mut packages = Vec::new();
        for package in wanted {
            let installed = self.find_program(&[&package.program]).await.is_some();
            let installable = !installed && self.can_install(&package.names).await;
            packages.push(PackageCheck {
                packages: package.clone(),
                installed,
                installable,
            });
        }
        Preflight {
            os,
            free_bytes,
            packages,
        }
    }

    /// Makes sure `packages` are installed before a server needs them.
    /// An ssh host installs them with apt when their program is missing
    /// (and refuses on a system that is not Debian or Ubuntu, naming
    /// them). This machine's host installs nothing: its programs come from
    /// the README's commands, and a missing one stops the engine with
    /// `MissingBinary`, naming the package.
    async fn ensure_packages(&self, _packages: &Packages) -> Result<(), EngineError> {
        Ok(())
    }

    /// The SHA-256 of a file here, in hex, computed here by coreutils'
    /// `sha256sum`: a backup on a host is never read through this machine.
    async fn sha256(&self, file: &Path) -> Result<String, EngineError> {
        let home = file.parent().unwrap_or(file);
        let mut sum = Program::new(home, Path::new("sha256sum"));
        sum.arg("--binary").arg(file);
        let out = self.run_stoppable(&sum, "sha256sum").await?;
        out.split_whitespace()
            .next()
            .filter(|hex| hex.len() == 64)
            .map(str::to_string)
            .ok_or_else(|| EngineError::Command {
                command: "sha256sum".into(),
                status: "unreadable output".into(),
                stderr: out.chars().take(200).collect(),
            })
    }

    /// Packs the directory `dir` into the tar file `file` (both here), as
    /// the servers' user.
    async fn pack(&self, dir: &Path, file: &Path) -> Result<(), EngineError> {
        let mut tar = Program::new(dir, Path::new("tar"));
        tar.arg("--create")
            .arg(format!("--file={}", file.display()))
            .arg(format!("--directory={}", dir.display()))
            .arg(".");
        self.run_stoppable(&tar, "tar --create").await.map(drop)
    }

    /// Unpacks the tar file `file` into the directory `dir` (made here,
    /// 0700), as the servers' user.
    async fn unpack(&self, file: &Path, dir: &Path) -> Result<(), EngineError> {
        self.private_dir(dir).await?;
        let mut tar = Program::new(dir, Path::new("tar"));
        tar.arg("--extract")
            .arg(format!("--file={}", file.display()))
            .arg(format!("--directory={}", dir.display()));
        self.run_stoppable(&tar, "tar --extract").await.map(drop)
    }
}

/// The entry of a host's staging area that holds the default store of
/// managed backups: a finished apply empties its staging area but this.
pub const MANAGED_STORE_ENTRY: &str = "managed";

/// A server's start where no supervisor runs it: detached when it stays
/// in the foreground, run to its end when it daemonizes itself. The
/// default of [`Host::start_server`], and an ssh host's without systemd.
pub async fn start_unsupervised<H: Host + ?Sized>(
    host: &H,
    program: &Program,
    start: &ServerStart,
    shown_as: &str,
) -> Result<(), EngineError> {
    match start {
        ServerStart::Foreground => host.start_detached(program, shown_as).await,
        ServerStart::Daemonizes { .. } => host.run(program, shown_as).await.map(drop),
    }
}

/// Whether two hosts are one machine: the same connection, or the same
/// name (every server of the local provider is on `local`).
pub fn same_host(a: &HostRef, b: &HostRef) -> bool {
    Arc::ptr_eq(a, b) || a.name() == b.name()
}

//! The local provider: real server processes on this machine, with their
//! data under the state directory, on loopback ports.
//!
//! PostgreSQL and MariaDB refuse to run as root, and a CI job often is root.
//! So when dbgroups runs as root, every server runs as the unprivileged
//! system user `dbgroups` (created on first use), through `setpriv` with
//! root's supplementary groups cleared. Its data directories belong to that
//! user (mode 0700), and the directories above the state directory are made
//! traversable (`o+x`, never readable) so that user can reach them.

use std::net::{IpAddr, Ipv4Addr, TcpListener};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use tokio::process::Command;

use crate::error::{EngineError, io};
use crate::host::{Host, Input, Output, Program};

/// The user servers run as when dbgroups runs as root.
pub const SERVICE_USER: &str = "dbgroups";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceUser {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
}

#[derive(Debug, Clone)]
pub struct LocalHost {
    state_dir: PathBuf,
    /// `Some` when running as root.
    service_user: Option<ServiceUser>,
}

impl LocalHost {
    /// Prepares the provider for a state directory, creating the service
    /// user when running as root. Returns the provider and a sentence for
    /// each change it made to the machine, for the user to read.
    pub fn prepare(state_dir: &Path) -> Result<(Self, Vec<String>), EngineError> {
        let mut notes = Vec::new();
        let service_user = if rustix::process::geteuid().is_root() {
            let user = match lookup_user(SERVICE_USER)? {
                Some(user) => user,
                None => {
                    create_service_user()?;
                    notes.push(format!(
                        "created the system user `{SERVICE_USER}`: running as root, the database servers run as it"
                    ));
                    lookup_user(SERVICE_USER)?.ok_or_else(|| EngineError::ServiceUser {
                        user: SERVICE_USER.into(),
                        detail: "useradd succeeded but the user is not in /etc/passwd".into(),
                    })?
                }
            };
            Some(user)
        } else {
            None
        };
        // Servers read these paths from their config files with another
        // working directory, so they must be absolute.
        let servers = state_dir.join("servers");
        std::fs::create_dir_all(&servers).map_err(io("create", &servers))?;
        let state_dir = std::fs::canonicalize(state_dir).map_err(io("resolve", state_dir))?;
        let provider = Self {
            state_dir,
            service_user,
        };
        if provider.service_user.is_some() {
            notes.extend(make_traversable(&provider.servers_dir())?);
        }
        Ok((provider, notes))
    }

    /// A provider for looking only (refresh, status): it creates no user and
    /// changes no permission.
    pub fn inspect(state_dir: &Path) -> Result<Self, EngineError> {
        let service_user = if rustix::process::geteuid().is_root() {
            lookup_user(SERVICE_USER)?
        } else {
            None
        };
        let state_dir =
            std::fs::canonicalize(state_dir).unwrap_or_else(|_| state_dir.to_path_buf());
        Ok(Self {
            state_dir,
            service_user,
        })
    }

    /// This host behind the host interface, as engines take it.
    pub fn into_ref(self) -> crate::HostRef {
        std::sync::Arc::new(self)
    }

    /// Writes a file (mode 0600) the servers' user owns.
    fn private_file(&self, path: &Path, contents: &[u8]) -> Result<(), EngineError> {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(path)
            .map_err(io("create", path))?;
        file.write_all(contents).map_err(io("write", path))?;
        file.sync_all().map_err(io("write", path))?;
        self.give(path)
    }

    fn give(&self, path: &Path) -> Result<(), EngineError> {
        match &self.service_user {
            Some(user) => std::os::unix::fs::chown(path, Some(user.uid), Some(user.gid))
                .map_err(io("change the owner of", path)),
            None => Ok(()),
        }
    }
}

impl LocalHost {
    /// `program` as a local process: the environment `process` builds,
    /// as the servers' user when dbgroups is root, in its own process
    /// group so that Ctrl-C in the terminal does not reach the servers it
    /// starts.
    fn process(&self, program: &Program) -> Result<std::process::Command, EngineError> {
        use std::os::unix::process::CommandExt;
        let run_as = if program.as_service_user {
            self.service_user.as_ref()
        } else {
            None
        };
        let mut command = crate::process::built_command(&program.program, &program.home, run_as);
        command.args(&program.args);
        for (key, value) in &program.env {
            command.env(key, value);
        }
        if let Some(dir) = &program.current_dir {
            command.current_dir(dir);
        }
        command.process_group(0).stderr(Stdio::piped());
        match &program.stdin {
            Input::Null => command.stdin(Stdio::null()),
            Input::File(path) => command.stdin(Stdio::from(
                std::fs::File::open(path).map_err(io("read", path))?,
            )),
        };
        match &program.stdout {
            Output::Captured => command.stdout(Stdio::piped()),
            Output::Null => command.stdout(Stdio::null()),
            Output::File(path) => {
                use std::os::unix::fs::OpenOptionsExt;
                let file = std::fs::OpenOptions::new()
                    .write(true)
                    .create(true)
                    .truncate(true)
                    .mode(0o600)
                    .open(path)
                    .map_err(io("create", path))?;
                self.give(path)?;
                command.stdout(Stdio::from(file))
            }
        };
        Ok(command)
    }
}

#[async_trait::async_trait]
impl Host for LocalHost {
    fn name(&self) -> &str {
        "local"
    }

    fn provider(&self) -> dbgroups_manifest::ProviderKind {
        dbgroups_manifest::ProviderKind::Local
    }

    fn listen_addresses(&self) -> Vec<IpAddr> {
        vec![IpAddr::V4(Ipv4Addr::LOCALHOST)]
    }

    fn dial_address(&self) -> String {
        Ipv4Addr::LOCALHOST.to_string()
    }

    fn servers_dir(&self) -> PathBuf {
        self.state_dir.join("servers")
    }

    fn staging_dir(&self, backup: &str) -> PathBuf {
        self.state_dir.join("backups").join(backup)
    }

    async fn run(&self, program: &Program, shown_as: &str) -> Result<String, EngineError> {
        let command = Command::from(self.process(program)?);
        run(command, shown_as).await
    }

    async fn run_stoppable(
        &self,
        program: &Program,
        shown_as: &str,
    ) -> Result<String, EngineError> {
        let command = Command::from(self.process(program)?);
        run_stoppable(command, shown_as).await
    }

    async fn start_detached(&self, program: &Program, shown_as: &str) -> Result<(), EngineError> {
        let mut command = self.process(program)?;
        command.stdout(Stdio::null()).stderr(Stdio::null());
        // The child is not waited on: the server outlives this call (and
        // dbgroups); the kernel reaps it when dbgroups exits.
        command.spawn().map(drop).map_err(|source| EngineError::Io {
            action: "start",
            path: PathBuf::from(shown_as),
            source,
        })
    }

    fn run_blocking(&self, program: &Program) -> bool {
        self.process(program)
            .and_then(|mut command| {
                command.output().map_err(|source| EngineError::Io {
                    action: "run",
                    path: program.program.clone(),
                    source,
                })
            })
            .is_ok_and(|output| output.status.success())
    }

    async fn write_private_file(&self, path: &Path, contents: &[u8]) -> Result<(), EngineError> {
        self.private_file(path, contents)
    }

    async fn private_dir(&self, dir: &Path) -> Result<(), EngineError> {
        std::fs::create_dir_all(dir).map_err(io("create", dir))?;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
            .map_err(io("set permissions on", dir))?;
        self.give(dir)
    }

    async fn read_file(&self, path: &Path) -> Result<Option<Vec<u8>>, EngineError> {
        match std::fs::read(path) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(err) => Err(io("read", path)(err)),
        }
    }

    async fn is_file(&self, path: &Path) -> bool {
        path.is_file()
    }

    async fn exists(&self, path: &Path) -> bool {
        path.exists()
    }

    async fn file_len(&self, path: &Path) -> u64 {
        std::fs::metadata(path).map_or(0, |m| m.len())
    }

    async fn owner_of(&self, path: &Path) -> Option<u32> {
        use std::os::unix::fs::MetadataExt;
        std::fs::metadata(path).ok().map(|m| m.uid())
    }

    async fn remove_dir(&self, path: &Path) -> Result<(), EngineError> {
        match std::fs::remove_dir_all(path) {
            Err(err) if err.kind() != std::io::ErrorKind::NotFound => Err(io("delete", path)(err)),
            _ => Ok(()),
        }
    }

    async fn remove_file(&self, path: &Path) -> Result<(), EngineError> {
        match std::fs::remove_file(path) {
            Err(err) if err.kind() != std::io::ErrorKind::NotFound => Err(io("delete", path)(err)),
            _ => Ok(()),
        }
    }

    async fn rename(&self, from: &Path, to: &Path) -> Result<(), EngineError> {
        std::fs::rename(from, to).map_err(io("rename", from))
    }

    async fn free_bytes(&self, path: &Path) -> Result<u64, EngineError> {
        crate::disk::free_bytes(path)
    }

    async fn size_of(&self, path: &Path) -> u64 {
        crate::disk::size_of(path)
    }

    async fn choose_port(&self, _default: u16) -> Result<u16, EngineError> {
        free_port()
    }

    async fn find_program(&self, names: &[&str]) -> Option<PathBuf> {
        names.iter().find_map(|name| find_program(name))
    }

    async fn remove_staged(&self, prefix: &str) {
        let dir = self.staging_dir("");
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            // The default store of managed backups lives beside the
            // staging entries, and is no apply's to empty.
            if name.starts_with(prefix) && name != crate::host::MANAGED_STORE_ENTRY {
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
    }

    async fn stop_programs_naming(&self, path: &Path) {
        use std::os::unix::ffi::OsStrExt;
        let needle = path.as_os_str().as_bytes();
        let own = std::process::id();
        for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
            let Some(pid) = entry
                .file_name()
                .to_str()
                .and_then(|n| n.parse::<u32>().ok())
            else {
                continue;
            };
            let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
                continue;
            };
            let names = cmdline.windows(needle.len().max(1)).any(|w| w == needle);
            if pid != own
                && names
                && let Some(pid) = rustix::process::Pid::from_raw(pid as i32)
            {
                let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
            }
        }
    }

    fn service_uid(&self) -> Option<u32> {
        self.service_user.as_ref().map(|u| u.uid)
    }
}

/// Runs a prepared command, returning its stdout, or its stderr as the error.
pub async fn run(mut command: Command, shown_as: &str) -> Result<String, EngineError> {
    let output = command.output().await.map_err(|source| EngineError::Io {
        action: "run",
        path: PathBuf::from(shown_as),
        source,
    })?;
    outcome(output, shown_as)
}

/// A finished command's stdout, or what it said as the error.
fn outcome(output: std::process::Output, shown_as: &str) -> Result<String, EngineError> {
    if output.status.success() {
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    } else {
        // Some tools (mariadb-install-db) explain themselves on stdout.
        let stderr = String::from_utf8_lossy(&output.stderr).trim().to_string();
        let said = if stderr.is_empty() {
            let stdout = String::from_utf8_lossy(&output.stdout);
            let tail: Vec<&str> = stdout.lines().rev().take(8).collect();
            tail.into_iter().rev().collect::<Vec<_>>().join("\n")
        } else {
            stderr
        };
        Err(EngineError::Command {
            command: shown_as.to_string(),
            status: output.status.to_string(),
            stderr: said,
        })
    }
}

/// [`run`] for a tool that copies data and may take long (a backup, a
/// dump, a restore, a copy): a second Ctrl-C stops it (its process group
/// must be its own, as [`LocalHost::command`] makes it), and it does not
/// start after one. Never for a command that starts or stops a server.
pub async fn run_stoppable(mut command: Command, shown_as: &str) -> Result<String, EngineError> {
    if crate::interrupt::stopping() {
        return Err(crate::interrupt::stopped(shown_as));
    }
    let child = command.spawn().map_err(|source| EngineError::Io {
        action: "run",
        path: PathBuf::from(shown_as),
        source,
    })?;
    let _registered = crate::interrupt::Registered::new(child.id());
    // A copy of a large database takes minutes: the step says it is still
    // running while it waits.
    let output = child.wait_with_output();
    tokio::pin!(output);
    let mut ticker = crate::progress::Ticker::default();
    let mut every = tokio::time::interval(std::time::Duration::from_secs(1));
    let output = loop {
        tokio::select! {
            finished = &mut output => break finished,
            _ = every.tick() => ticker.tick(&format!("running {shown_as}")),
        }
    }
    .map_err(|source| EngineError::Io {
        action: "run",
        path: PathBuf::from(shown_as),
        source,
    })?;
    if crate::interrupt::stopping() && !output.status.success() {
        return Err(crate::interrupt::stopped(shown_as));
    }
    outcome(output, shown_as)
}

/// The port an earlier (perhaps interrupted) provision wrote into a
/// server's config text (`port = 5433` or `port 6380`), so a re-run keeps it
/// instead of moving the server. Pure: the engines read the file through
/// their host.
pub fn port_in_config(text: &str) -> Option<u16> {
    text.lines().find_map(|line| {
        let rest = line.trim().strip_prefix("port")?;
        rest.trim_start_matches([' ', '=']).trim().parse().ok()
    })
}

/// Polls `ready` until it says yes: `Ok(true)` ends the wait, `Ok(false)`
/// waits on, an error ends it at once. After `seconds` it gives up with a
/// timeout naming `what`. Every engine's "wait until the server …" is this.
pub async fn wait_until<F, Fut>(what: &str, seconds: u64, ready: F) -> Result<(), EngineError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<bool, EngineError>>,
{
    wait_every(what, seconds, std::time::Duration::from_millis(100), ready).await
}

/// [`wait_until`], asking every `every` (MongoDB's member states change
/// over seconds, and each question opens a connection).
pub async fn wait_every<F, Fut>(
    what: &str,
    seconds: u64,
    every: std::time::Duration,
    mut ready: F,
) -> Result<(), EngineError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<bool, EngineError>>,
{
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(seconds);
    let mut ticker = crate::progress::Ticker::default();
    loop {
        // After a second Ctrl-C nobody waits on: the step fails (and a
        // caller that was about to delete something does not go on).
        if crate::interrupt::stopping() {
            return Err(crate::interrupt::stopped(what));
        }
        if ready().await? {
            return Ok(());
        }
        ticker.tick(&format!("waiting for {what}"));
        if tokio::time::Instant::now() >= deadline {
            return Err(EngineError::Timeout {
                what: what.to_string(),
                seconds,
            });
        }
        tokio::time::sleep(every).await;
    }
}

/// The last lines of a server's log, for errors about a server that would
/// not start: that is where the database says why.
pub fn log_tail(path: &Path) -> String {
    let log = std::fs::read_to_string(path).unwrap_or_default();
    let tail: Vec<&str> = log.lines().rev().take(5).collect();
    tail.into_iter().rev().collect::<Vec<_>>().join("\n")
}

/// A loopback port nothing listens on now, for a server. Apply records it
/// in state; the plan only says "(known after apply)".
///
/// Taken at random from below the kernel's ephemeral range (20000 up to
/// `ip_local_port_range`'s start, 32768 by default): a port the kernel
/// handed out would be one it also gives to outgoing connections, so a
/// client connecting anywhere on this host could hold it by the time the
/// server binds (seen in CI: "Address already in use"). Random, so that two
/// applies running at once rarely try the same one. Falls back to the
/// kernel's choice when that range is empty or full.
pub fn free_port() -> Result<u16, EngineError> {
    const FLOOR: u16 = 20000;
    let ceiling = ephemeral_range_start().unwrap_or(32768);
    if ceiling > FLOOR {
        let span = u32::from(ceiling - FLOOR);
        for _ in 0..256 {
            let mut bytes = [0u8; 4];
            if getrandom::fill(&mut bytes).is_err() {
                break;
            }
            let offset = u32::from_le_bytes(bytes) % span;
            let candidate = FLOOR + u16::try_from(offset).unwrap_or(0);
            if TcpListener::bind(("127.0.0.1", candidate)).is_ok() {
                return Ok(candidate);
            }
        }
    }
    let listener = TcpListener::bind("127.0.0.1:0").map_err(EngineError::NoPort)?;
    listener
        .local_addr()
        .map(|a| a.port())
        .map_err(EngineError::NoPort)
}

/// The first port of the kernel's ephemeral range.
fn ephemeral_range_start() -> Option<u16> {
    std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

fn lookup_user(name: &str) -> Result<Option<ServiceUser>, EngineError> {
    let passwd = std::fs::read_to_string("/etc/passwd").map_err(io("read", "/etc/passwd"))?;
    Ok(passwd.lines().find_map(|line| {
        let fields: Vec<&str> = line.split(':').collect();
        (fields.len() >= 4 && fields[0] == name).then(|| ServiceUser {
            name: name.to_string(),
            uid: fields[2].parse().unwrap_or(u32::MAX),
            gid: fields[3].parse().unwrap_or(u32::MAX),
        })
    }))
}

fn create_service_user() -> Result<(), EngineError> {
    // Root's own tool, run as root: the environment is still built, so
    // nothing of the caller's reaches it either.
    let output = crate::process::built_command(Path::new("useradd"), Path::new("/"), None)
        .args([
            "--system",
            "--user-group",
            "--no-create-home",
            "--home-dir",
            "/nonexistent",
            "--shell",
            "/usr/sbin/nologin",
            SERVICE_USER,
        ])
        .output()
        .map_err(|e| EngineError::ServiceUser {
            user: SERVICE_USER.into(),
            detail: e.to_string(),
        })?;
    if output.status.success() {
        Ok(())
    } else {
        Err(EngineError::ServiceUser {
            user: SERVICE_USER.into(),
            detail: String::from_utf8_lossy(&output.stderr).trim().to_string(),
        })
    }
}

/// Adds `o+x` (traverse, not read) to the directories above `dir` that lack
/// it, and says which.
fn make_traversable(dir: &Path) -> Result<Vec<String>, EngineError> {
    let mut notes = Vec::new();
    let absolute = std::fs::canonicalize(dir).map_err(io("resolve", dir))?;
    for ancestor in absolute.ancestors().skip(1) {
        let mode = std::fs::metadata(ancestor)
            .map_err(io("inspect", ancestor))?
            .permissions()
            .mode();
        if mode & 0o001 == 0 {
            std::fs::set_permissions(ancestor, std::fs::Permissions::from_mode(mode | 0o001))
                .map_err(io("make traversable", ancestor))?;
            notes.push(format!(
                "made {} traversable by others (o+x, not readable) so the `{SERVICE_USER}` user can reach its data",
                ancestor.display()
            ));
        }
    }
    Ok(notes)
}

/// A random password: 32 letters and digits, safe in any URL or config.
pub fn generate_password() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    // Rejection sampling: bytes past the largest multiple of the alphabet's
    // size would make the first letters more likely.
    let limit = 256 - 256 % ALPHABET.len();
    let mut password = String::with_capacity(32);
    while password.len() < 32 {
        let mut bytes = [0u8; 64];
        // The OS generator failing is not something to carry on from.
        getrandom::fill(&mut bytes).expect("the OS random generator is available");
        for byte in bytes {
            if usize::from(byte) < limit && password.len() < 32 {
                password.push(ALPHABET[usize::from(byte) % ALPHABET.len()] as char);
            }
        }
    }
    password
}

/// Finds a program on `PATH` or in the system directories a package puts
/// servers in (`/usr/sbin` is often missing from a non-root `PATH`).
pub fn find_program(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(
            [
                "/usr/sbin",
                "/usr/local/sbin",
                "/usr/bin",
                "/usr/local/bin",
                "/sbin",
                "/bin",
            ]
            .map(PathBuf::from),
        )
        .map(|dir| dir.join(name))
        .find(|candidate| {
            candidate
                .metadata()
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_ports_come_from_below_the_ephemeral_range_and_are_free() {
        let ceiling = ephemeral_range_start().unwrap_or(32768);
        let mut still_free = 0;
        for _ in 0..50 {
            let port = free_port().expect("a port");
            if ceiling > 20000 {
                assert!(
                    (20000..ceiling).contains(&port),
                    "{port} outside 20000..{ceiling}"
                );
            }
            still_free += usize::from(TcpListener::bind(("127.0.0.1", port)).is_ok());
        }
        // Another process may take a port between the choice and this
        // check (seen once in a whole-suite run, a server of another test
        // starting): the choice is free, not reserved, which is why
        // provision moves to another port on "address in use".
        assert!(
            still_free >= 45,
            "only {still_free} of 50 ports were still free"
        );
    }
}

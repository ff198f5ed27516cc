//! Real hosts on this machine for tests: a wrapper over
//! `scripts/test-hosts.sh` (docs/hosts.md, "Test hosts on one machine").
//!
//! Each `TestHosts` gets its own subnet 198.18.I.0/24 (I in 1..=250, claimed
//! under `/run/dbgroups-test-hosts-claims` so tests running in parallel, in
//! this binary or another, never share one), namespaces `dbgtI-hostK`,
//! bridge `dbgbrI` and a state directory under /var/tmp. `Drop` tears it
//! all down, also when the test panics; a claim left by a process that died
//! without its `Drop` is torn down by the next `up` that finds it.
//!
//! The hosts' outer processes are children of the test process (the
//! script's `run K`), so they are reaped here and leave no zombie even on a
//! machine whose PID 1 does not reap orphans.

use std::fs::{self, OpenOptions};
use std::io::Read;
use std::net::Ipv4Addr;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

const CLAIMS: &str = "/run/dbgroups-test-hosts-claims";
const SUBNETS: u32 = 250;
/// Every wait polls up to this long: generous, for a loaded 2-core machine.
pub(crate) const WAIT: Duration = Duration::from_secs(180);

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// Why these tests cannot run here (they need root), or `None`.
pub(crate) fn skip_reason() -> Option<String> {
    let root = fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0);
    (!root).then(|| {
        "test hosts need root (network namespaces, a bridge, mounts): run the suite as root"
            .to_string()
    })
}

/// `n` test hosts, or `None` (saying why on stderr) where they cannot be
/// made: the test is then skipped.
#[allow(clippy::print_stderr)]
pub(crate) fn hosts_or_skip(n: usize) -> Option<TestHosts> {
    if let Some(why) = skip_reason() {
        eprintln!("skipped: {why}");
        return None;
    }
    Some(TestHosts::up(n))
}

/// Polls `condition` every 100 ms until it holds; false after `timeout`.
pub(crate) fn wait_for(timeout: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if condition() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The start time (clock ticks since boot) of live process `pid`: with the
/// PID, it names one process; `None` when it is gone or a zombie.
pub(crate) fn process_start(pid: u32) -> Option<u64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after_name = &stat[stat.rfind(") ")? + 2..];
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    if fields.first() == Some(&"Z") {
        return None;
    }
    fields.get(19)?.parse().ok()
}

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/test-hosts.sh")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// N hosts, each with its own network, PID, mount, UTS and IPC namespaces,
/// its own /etc, /var/lib, /var/log, /root, /home, /tmp, /var/tmp and /run,
/// and a real sshd on port 22 that accepts `identity_path()` for root and
/// for `deploy` (passwordless sudo). Hosts are numbered from 1.
#[derive(Debug)]
pub(crate) struct TestHosts {
    count: usize,
    subnet: u32,
    prefix: String,
    bridge: String,
    state: PathBuf,
    claim: PathBuf,
    /// Host K's outer process (`test-hosts.sh run K`), at K - 1.
    launchers: Vec<Option<Child>>,
    down: bool,
}

impl TestHosts {
    /// Creates and boots `n` hosts; panics (after cleaning up) if it cannot.
    pub(crate) fn up(n: usize) -> TestHosts {
        assert!(
            skip_reason().is_none(),
            "TestHosts::up needs root; call skip_reason() first"
        );
        let pid = std::process::id();
        let mut tried = Vec::new();
        while tried.len() < SUBNETS as usize {
            let counter = COUNTER.fetch_add(1, Ordering::Relaxed);
            let state = PathBuf::from(format!("/var/tmp/dbgroups-test-hosts-{pid}-{counter}"));
            let start = pid.wrapping_mul(31).wrapping_add(counter.wrapping_mul(7));
            let Some((subnet, claim)) = claim_subnet(&state, start, &tried) else {
                break;
            };
            tried.push(subnet);
            let mut hosts = TestHosts {
                count: n,
                subnet,
                prefix: format!("dbgt{subnet}"),
                bridge: format!("dbgbr{subnet}"),
                state,
                claim,
                launchers: (0..n).map(|_| None).collect(),
                down: false,
            };
            let output = hosts.script_with_names(&["up", &n.to_string(), "--no-boot"]);
            if output.status.code() == Some(3) {
                // In use by something that holds no claim: try another.
                hosts.down = true;
                let _ = fs::remove_file(&hosts.claim);
                continue;
            }
            if !output.status.success() {
                hosts.down = true;
                let _ = fs::remove_file(&hosts.claim);
                panic!(
                    "scripts/test-hosts.sh up {n} failed ({}):\n{}{}",
                    output.status,
                    text(&output.stdout),
                    text(&output.stderr)
                );
            }
            for k in 1..=n {
                hosts.launch(k);
            }
            for k in 1..=n {
                hosts.wait_ssh(k);
            }
            return hosts;
        }
        panic!("no free test-host subnet in 198.18.1.0/24 ..= 198.18.{SUBNETS}.0/24");
    }

    pub(crate) fn count(&self) -> usize {
        self.count
    }

    /// Host K's name: its network namespace, hostname and ssh alias.
    pub(crate) fn name(&self, k: usize) -> String {
        self.check(k);
        format!("{}-host{k}", self.prefix)
    }

    /// Host K's address, 198.18.I.(10 + K); sshd listens on port 22.
    pub(crate) fn address(&self, k: usize) -> Ipv4Addr {
        self.check(k);
        Ipv4Addr::new(198, 18, self.subnet as u8, 10 + k as u8)
    }

    /// The bridge's address in the root namespace, 198.18.I.1.
    pub(crate) fn bridge_address(&self) -> Ipv4Addr {
        Ipv4Addr::new(198, 18, self.subnet as u8, 1)
    }

    /// Host K's link: the root namespace's end of its veth, on the bridge
    /// (set down, the host is cut off; shaped, its traffic is slowed).
    pub(crate) fn link(&self, k: usize) -> String {
        self.check(k);
        format!("{}-v{k}", self.prefix)
    }

    /// The names of everything in the root namespace that this set owns:
    /// the bridge, the host-side veths and the network namespaces.
    pub(crate) fn link_and_namespace_names(&self) -> Vec<String> {
        let mut names = vec![self.bridge.clone()];
        for k in 1..=self.count {
            names.push(self.link(k));
            names.push(self.name(k));
        }
        names
    }

    pub(crate) fn state_dir(&self) -> &Path {
        &self.state
    }

    /// An ssh config with a `Host` entry per host (its name and address).
    pub(crate) fn ssh_config_path(&self) -> PathBuf {
        self.state.join("ssh_config")
    }

    pub(crate) fn known_hosts_path(&self) -> PathBuf {
        self.state.join("known_hosts")
    }

    /// The client's private key (ed25519, no passphrase, 0600).
    pub(crate) fn identity_path(&self) -> PathBuf {
        self.state.join("id_ed25519")
    }

    /// Host K's PID 1 as the root namespace sees it (for `nsenter -t PID
    /// -a`), or `None` while the host is powered off.
    pub(crate) fn init_pid(&self, k: usize) -> Option<u32> {
        self.check(k);
        let dir = self.state.join(format!("host{k}"));
        let read = |name: &str| fs::read_to_string(dir.join(name)).ok();
        let pid: u32 = read("init.pid")?.trim().parse().ok()?;
        let start: u64 = read("init.start")?.trim().parse().ok()?;
        // The start time tells a reused PID from the init; a zombie init is
        // a host whose processes are all gone.
        (process_start(pid) == Some(start)).then_some(pid)
    }

    /// Runs `command` with bash inside host K (all its namespaces, via
    /// nsenter, not ssh), with a plain environment, from `/`.
    pub(crate) fn run_on(&self, k: usize, command: &str) -> Output {
        let pid = self
            .init_pid(k)
            .unwrap_or_else(|| panic!("{} is powered off", self.name(k)));
        Command::new("nsenter")
            .args([
                "-t",
                &pid.to_string(),
                "-a",
                "--",
                "/bin/bash",
                "-c",
                command,
            ])
            .env_clear()
            .env(
                "PATH",
                "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            )
            .env("HOME", "/root")
            .env("LANG", "C.UTF-8")
            .current_dir("/")
            .stdin(Stdio::null())
            .output()
            .expect("nsenter runs")
    }

    /// Runs `command` on host K over ssh as `user` (with this set's
    /// ssh_config: its key, its known_hosts, strict host key checking).
    pub(crate) fn ssh(&self, k: usize, user: &str, command: &str) -> Output {
        let config = self.ssh_config_path();
        let destination = format!("{user}@{}", self.name(k));
        Command::new("ssh")
            .arg("-F")
            .arg(&config)
            .args(["--", &destination, command])
            .stdin(Stdio::null())
            .output()
            .expect("ssh runs")
    }

    /// Kills every process of host K at once (its PID namespace's init);
    /// its disk is kept. Returns when none is left.
    pub(crate) fn power_cut(&mut self, k: usize) {
        self.check(k);
        let output = self.script(&["power-cut", &k.to_string()]);
        assert!(
            output.status.success(),
            "power-cut {k} failed:\n{}",
            text(&output.stderr)
        );
        self.reap(k).unwrap_or_else(|e| panic!("{e}"));
    }

    /// Starts host K again on the same disk; returns once sshd answers.
    pub(crate) fn boot(&mut self, k: usize) {
        self.check(k);
        self.reap(k).unwrap_or_else(|e| panic!("{e}"));
        self.launch(k);
        self.wait_ssh(k);
    }

    /// Tears everything down now and panics if anything was left.
    pub(crate) fn down(mut self) {
        if let Err(error) = self.teardown() {
            panic!("{error}");
        }
    }

    fn check(&self, k: usize) {
        assert!(
            (1..=self.count).contains(&k),
            "no host {k} (hosts 1..={})",
            self.count
        );
    }

    fn script(&self, args: &[&str]) -> Output {
        Command::new("bash")
            .arg(script())
            .args(args)
            .arg("--state")
            .arg(&self.state)
            .stdin(Stdio::null())
            .output()
            .expect("bash runs scripts/test-hosts.sh")
    }

    fn script_with_names(&self, args: &[&str]) -> Output {
        let subnet = self.subnet.to_string();
        let mut all = args.to_vec();
        all.extend([
            "--prefix",
            &self.prefix,
            "--subnet",
            &subnet,
            "--bridge",
            &self.bridge,
        ]);
        self.script(&all)
    }

    fn launch(&mut self, k: usize) {
        let child = Command::new("bash")
            .arg(script())
            .args(["run", &k.to_string(), "--state"])
            .arg(&self.state)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("bash runs scripts/test-hosts.sh run");
        self.launchers[k - 1] = Some(child);
    }

    fn wait_ssh(&mut self, k: usize) {
        // `run K` records itself before booting; until then the script
        // could not tell a boot not yet begun from one that failed.
        let launcher_pid = self.state.join(format!("host{k}/launcher.pid"));
        if let Some(child) = self.launchers[k - 1].as_mut() {
            let id = child.id().to_string();
            wait_for(WAIT, || {
                fs::read_to_string(&launcher_pid).is_ok_and(|p| p.trim() == id)
                    || !matches!(child.try_wait(), Ok(None))
            });
        }
        let output = self.script(&["wait-ssh", &k.to_string()]);
        if output.status.success() {
            return;
        }
        let mut launcher = String::new();
        if let Some(child) = self.launchers[k - 1].as_mut()
            && let Ok(Some(status)) = child.try_wait()
        {
            let mut stderr = String::new();
            if let Some(pipe) = child.stderr.as_mut() {
                let _ = pipe.read_to_string(&mut stderr);
            }
            launcher = format!("\n`run {k}` exited ({status}): {stderr}");
        }
        panic!(
            "{} did not come up:\n{}{launcher}",
            self.name(k),
            text(&output.stderr)
        );
    }

    /// Waits for host K's outer process to exit (after a power cut).
    fn reap(&mut self, k: usize) -> Result<(), String> {
        let Some(mut child) = self.launchers[k - 1].take() else {
            return Ok(());
        };
        let mut exited = false;
        wait_for(WAIT, || {
            exited = !matches!(child.try_wait(), Ok(None));
            exited
        });
        if exited {
            return Ok(());
        }
        let _ = child.kill();
        let _ = child.wait();
        Err(format!(
            "{}'s outer process (PID {}) outlived the host",
            self.name(k),
            child.id()
        ))
    }

    fn teardown(&mut self) -> Result<(), String> {
        if self.down {
            return Ok(());
        }
        self.down = true;
        let output = self.script(&["down"]);
        let mut errors = Vec::new();
        if !output.status.success() {
            errors.push(format!(
                "scripts/test-hosts.sh down --state {} failed:\n{}",
                self.state.display(),
                text(&output.stderr)
            ));
        }
        for k in 1..=self.count {
            if let Err(e) = self.reap(k) {
                errors.push(e);
            }
        }
        if errors.is_empty() {
            let _ = fs::remove_file(&self.claim);
            Ok(())
        } else {
            Err(errors.join("\n"))
        }
    }
}

impl Drop for TestHosts {
    #[allow(clippy::print_stderr)]
    fn drop(&mut self) {
        if let Err(error) = self.teardown() {
            if std::thread::panicking() {
                eprintln!("test hosts teardown: {error}");
            } else {
                panic!("{error}");
            }
        }
    }
}

/// Claims a subnet index not in `tried`, searching from `start`: creates
/// `CLAIMS/<index>` holding this process (PID and start time) and `state`,
/// under a lock. First every claim whose process is gone (a test binary
/// killed before its `Drop`) is torn down (its hosts, via the script's
/// `down`) and removed.
fn claim_subnet(state: &Path, start: u32, tried: &[u32]) -> Option<(u32, PathBuf)> {
    fs::create_dir_all(CLAIMS).expect("claims directory");
    let lock = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(Path::new(CLAIMS).join(".lock"))
        .expect("claims lock file");
    lock.lock().expect("claims lock");
    for entry in fs::read_dir(CLAIMS).expect("claims directory").flatten() {
        let Some(subnet) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        let held = fs::read_to_string(entry.path()).unwrap_or_default();
        let mut fields = held.split('\n');
        let owner: Option<u32> = fields.next().and_then(|p| p.parse().ok());
        let started: Option<u64> = fields.next().and_then(|t| t.parse().ok());
        let owner_state = fields.next().unwrap_or("");
        let alive = owner.is_some_and(|pid| process_start(pid) == started);
        if !alive && reclaim(subnet, owner_state) {
            let _ = fs::remove_file(entry.path());
        }
    }
    let me = std::process::id();
    let my_start = process_start(me).expect("this process's start time");
    for offset in 0..SUBNETS {
        let subnet = start.wrapping_add(offset) % SUBNETS + 1;
        let claim = Path::new(CLAIMS).join(subnet.to_string());
        if tried.contains(&subnet) || claim.exists() {
            continue;
        }
        fs::write(&claim, format!("{me}\n{my_start}\n{}\n", state.display())).expect("write claim");
        return Some((subnet, claim));
    }
    None
}

/// Tears down what a dead process left on `subnet`; true when it is gone.
fn reclaim(subnet: u32, state: &str) -> bool {
    // Without a recorded state directory, one that cannot exist: never the
    // script's default (a user's hosts).
    let fallback = format!("/var/tmp/dbgroups-test-hosts-reclaimed-{subnet}");
    let state = if state.starts_with('/') {
        state
    } else {
        &fallback
    };
    let output = Command::new("bash")
        .arg(script())
        .args(["down", "--state", state])
        .args(["--prefix", &format!("dbgt{subnet}")])
        .args(["--subnet", &subnet.to_string()])
        .args(["--bridge", &format!("dbgbr{subnet}")])
        .stdin(Stdio::null())
        .output();
    output.is_ok_and(|o| o.status.success())
}

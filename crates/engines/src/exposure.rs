//! The files that say how a server on a host meets the network, shared by
//! the engines that serve TLS and keep their own access rules (PostgreSQL,
//! the MySQL family). They live in the server's directory beside its data,
//! so a restore (which replaces the data) keeps them:
//!
//! - `tls/server.crt`, `tls/server.key`: its certificate and key;
//! - `tls/authority.crt`: its application's authority, for its own host's
//!   clients;
//! - `tls/upstream.crt`: its master's authority, when it is a replica (the
//!   master may belong to another application);
//! - `admitted-peers`: other hosts' addresses it lets in for replication
//!   and backups, one per line;
//! - `allowed-networks`: the client networks it lets in (`allow_from`).
//!
//! Each engine turns them into its own rules: `pg_hba.conf`, or accounts
//! restricted by host.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::LazyLock;

use crate::engine::{Certificate, Exposure};
use crate::error::EngineError;
use crate::host::HostRef;

/// One change at a time, in this process, to a firewalled server's files
/// and the firewall rules made from them: an admit is a read-modify-write
/// of `admitted-peers` and then of the port's chain, and two steps may
/// admit peers on one server at once (two new replicas of one master; a
/// MongoDB member joining, which admits on every other member), so each
/// would read the list before the other wrote it, and the rules applied
/// last could miss a peer.
static FIREWALL: LazyLock<tokio::sync::Mutex<()>> = LazyLock::new(|| tokio::sync::Mutex::new(()));

/// One server's exposure files on its host.
pub(crate) struct ExposureFiles<'a> {
    host: &'a HostRef,
    dir: PathBuf,
}

impl<'a> ExposureFiles<'a> {
    /// The files of the server whose directory is `dir` on `host`.
    pub(crate) fn new(host: &'a HostRef, dir: PathBuf) -> Self {
        Self { host, dir }
    }

    pub(crate) fn tls_dir(&self) -> PathBuf {
        self.dir.join("tls")
    }

    pub(crate) fn certificate(&self) -> PathBuf {
        self.tls_dir().join("server.crt")
    }

    pub(crate) fn key(&self) -> PathBuf {
        self.tls_dir().join("server.key")
    }

    /// Its own application's authority.
    pub(crate) fn authority(&self) -> PathBuf {
        self.tls_dir().join("authority.crt")
    }

    /// Its master's authority (a replica's).
    pub(crate) fn upstream(&self) -> PathBuf {
        self.tls_dir().join("upstream.crt")
    }

    /// For an engine without per-source rules of its own (Redis, MongoDB):
    /// the host's firewall lets exactly these reach the server's `port`:
    /// its own host's addresses, the peers it admitted, and its client
    /// networks (loopback is never filtered).
    pub(crate) async fn restrict_port(&self, server: &str, port: u16) -> Result<(), EngineError> {
        let _one_at_a_time = FIREWALL.lock().await;
        self.restrict_port_now(server, port).await
    }

    /// [`ExposureFiles::set_allowed`], then the firewall from it.
    pub(crate) async fn allow_through_firewall(
        &self,
        server: &str,
        port: u16,
        networks: &[String],
    ) -> Result<(), EngineError> {
        let _one_at_a_time = FIREWALL.lock().await;
        self.set_allowed(networks).await?;
        self.restrict_port_now(server, port).await
    }

    /// [`ExposureFiles::admit`] of `peers`, then the firewall from it.
    pub(crate) async fn admit_through_firewall(
        &self,
        server: &str,
        port: u16,
        peers: &[IpAddr],
    ) -> Result<(), EngineError> {
        let _one_at_a_time = FIREWALL.lock().await;
        self.admit(&self.host.listen_addresses(), peers).await?;
        self.restrict_port_now(server, port).await
    }

    /// The firewall's rules for `port` go (its server goes).
    pub(crate) async fn unrestrict_port(&self, port: u16) -> Result<(), EngineError> {
        let _one_at_a_time = FIREWALL.lock().await;
        self.host.unrestrict_port(port).await
    }

    /// [`ExposureFiles::restrict_port`], the caller holding [`FIREWALL`].
    async fn restrict_port_now(&self, server: &str, port: u16) -> Result<(), EngineError> {
        let mut sources: Vec<String> = self
            .host
            .listen_addresses()
            .into_iter()
            .chain(self.admitted().await)
            .filter(|a| !a.is_loopback())
            .map(|a| a.to_string())
            .collect();
        sources.extend(self.allowed().await);
        self.host.restrict_port(server, port, &sources).await
    }

    /// Whether its certificate is installed: from then on it serves TLS.
    pub(crate) async fn has_certificate(&self) -> bool {
        self.host.is_file(&self.certificate()).await
    }

    /// Installs `certificate`, its key and the authority; a new server also
    /// gets its group's client networks (later changes come from the plan's
    /// allow step). Returns whether a TLS file changed, so that a running
    /// server reloads them.
    pub(crate) async fn install(
        &self,
        certificate: &Certificate,
        exposure: &Exposure,
    ) -> Result<bool, EngineError> {
        self.host.private_dir(&self.dir).await?;
        self.host.private_dir(&self.tls_dir()).await?;
        if !self.host.exists(&self.allowed_file()).await {
            self.set_allowed(&exposure.allow_from).await?;
        }
        let files = [
            (self.certificate(), certificate.certificate.as_bytes()),
            (self.key(), certificate.key.as_bytes()),
            (self.authority(), exposure.authority.as_bytes()),
        ];
        let mut changed = false;
        for (path, contents) in files {
            if self.host.read_file(&path).await?.as_deref() != Some(contents) {
                self.host.write_private_file(&path, contents).await?;
                changed = true;
            }
        }
        Ok(changed)
    }

    /// Writes `authority` as this server's master's (a replica's), and
    /// returns where it is.
    pub(crate) async fn trust_upstream(&self, authority: &str) -> Result<PathBuf, EngineError> {
        self.host.private_dir(&self.tls_dir()).await?;
        let path = self.upstream();
        self.host
            .write_private_file(&path, authority.as_bytes())
            .await?;
        Ok(path)
    }

    fn admitted_file(&self) -> PathBuf {
        self.dir.join("admitted-peers")
    }

    fn allowed_file(&self) -> PathBuf {
        self.dir.join("allowed-networks")
    }

    /// The other hosts' addresses it lets in.
    pub(crate) async fn admitted(&self) -> Vec<IpAddr> {
        self.lines(&self.admitted_file())
            .await
            .iter()
            .filter_map(|line| line.parse().ok())
            .collect()
    }

    /// Adds `peers` to the admitted hosts, but for its own host's
    /// addresses (`own`) and loopback, which are always let in. Returns
    /// whether the list changed.
    pub(crate) async fn admit(
        &self,
        own: &[IpAddr],
        peers: &[IpAddr],
    ) -> Result<bool, EngineError> {
        let mut admitted = self.admitted().await;
        let before = admitted.len();
        for peer in peers {
            if !peer.is_loopback() && !own.contains(peer) && !admitted.contains(peer) {
                admitted.push(*peer);
            }
        }
        if admitted.len() == before {
            return Ok(false);
        }
        admitted.sort();
        let listed: String = admitted.iter().map(|a| format!("{a}\n")).collect();
        self.host
            .write_private_file(&self.admitted_file(), listed.as_bytes())
            .await?;
        Ok(true)
    }

    /// The client networks it lets in (`allow_from`, CIDR).
    pub(crate) async fn allowed(&self) -> Vec<String> {
        self.lines(&self.allowed_file()).await
    }

    /// Lets exactly `networks` in, from the next rules written.
    pub(crate) async fn set_allowed(&self, networks: &[String]) -> Result<(), EngineError> {
        let listed: String = networks.iter().map(|n| format!("{n}\n")).collect();
        self.host
            .write_private_file(&self.allowed_file(), listed.as_bytes())
            .await
    }

    async fn lines(&self, path: &Path) -> Vec<String> {
        self.host
            .read_text(path)
            .await
            .unwrap_or_default()
            .lines()
            .map(str::trim)
            .filter(|line| !line.is_empty())
            .map(str::to_string)
            .collect()
    }
}

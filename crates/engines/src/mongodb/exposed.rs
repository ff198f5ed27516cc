//! A MongoDB server on a host, as the network meets it, written to
//! MongoDB's manual ("Configure mongod and mongos for TLS/SSL",
//! "rotateCertificates", the database tools' `--tls` options) and not run
//! here: mongod cannot be installed on the machines this was built on.
//!
//! - **TLS only** (`net.tls.mode: requireTLS`), loopback included, with its
//!   certificate and key in one file (`tls/server.pem`, 0600) and the
//!   authorities it verifies its peers against in `tls/trusted.crt`.
//!   Members of a set connect to each other over TLS with the same
//!   settings (each presents its own certificate, which names the address
//!   the set's config gives it); they still authenticate with the keyfile.
//!   Clients show no certificate (`allowConnectionsWithoutCertificates`):
//!   they log in with their password (SCRAM).
//! - **dbgroups' own connections** verify the server against its
//!   application's authority. The driver reads the authority only from a
//!   file, so it is written on the machine running dbgroups through the
//!   host ([`crate::host::Host::client_file`]), never by this engine
//!   (docs/decisions.md).
//! - **Access through the host's firewall**, as Redis: MongoDB has no
//!   per-source rules, so [`crate::host::Host::restrict_port`] lets in
//!   loopback, the server's own host, the peers it admitted (the other
//!   members of its set, hosts that take backups of it) and its group's
//!   `allow_from` networks.

use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;

use mongodb::options::{Tls, TlsOptions};

use super::{MongoServer, commands};
use crate::engine::{Certificate, Exposure};
use crate::error::EngineError;
use crate::exposure::ExposureFiles;
use crate::host::HostRef;

impl MongoServer {
    /// The same server, reached beyond loopback as `exposure` says.
    pub fn exposed(mut self, exposure: Option<Arc<Exposure>>) -> Self {
        self.exposure = exposure;
        self
    }

    pub(crate) fn files(&self) -> ExposureFiles<'_> {
        ExposureFiles::new(&self.host, self.dir())
    }

    /// Its certificate followed by its key: mongod's `certificateKeyFile`.
    fn certificate_key_file(&self) -> PathBuf {
        self.files().tls_dir().join("server.pem")
    }

    /// The authorities it verifies peers against: `CAFile`.
    fn trusted_file(&self) -> PathBuf {
        self.files().tls_dir().join("trusted.crt")
    }

    /// Its application's authority (PEM) when it serves TLS: on a host,
    /// once its certificate is installed. A server made on a host before
    /// MongoDB served TLS there has none, and stays as it was.
    pub(super) async fn authority_if_tls(&self) -> Option<String> {
        let exposure = self.exposure.as_ref()?;
        self.files()
            .has_certificate()
            .await
            .then(|| exposure.authority.clone())
    }

    /// Writes `server.pem` from the installed certificate and key when it
    /// differs. Returns whether it changed.
    async fn write_certificate_key(&self) -> Result<bool, EngineError> {
        let files = self.files();
        let (Some(certificate), Some(key)) = (
            self.host.read_file(&files.certificate()).await?,
            self.host.read_file(&files.key()).await?,
        ) else {
            return Ok(false);
        };
        let mut combined = certificate;
        if !combined.ends_with(b"\n") {
            combined.push(b'\n');
        }
        combined.extend_from_slice(&key);
        let path = self.certificate_key_file();
        if self.host.read_file(&path).await?.as_deref() == Some(combined.as_slice()) {
            return Ok(false);
        }
        self.host.write_private_file(&path, &combined).await?;
        Ok(true)
    }

    /// The files `net.tls` names, written before the config that names
    /// them: `(certificateKeyFile, CAFile)`, or `None` when it serves no
    /// TLS. A set lives in one group, and so in one application (the
    /// manifest refuses replication between MongoDB groups): its members
    /// trust their application's authority.
    pub(super) async fn tls_files(&self) -> Result<Option<(String, String)>, EngineError> {
        let Some(authority) = self.authority_if_tls().await else {
            return Ok(None);
        };
        self.write_certificate_key().await?;
        let trusted = self.trusted_file();
        if self.host.read_text(&trusted).await.as_deref() != Some(authority.as_str()) {
            self.host
                .write_private_file(&trusted, authority.as_bytes())
                .await?;
        }
        Ok(Some((
            self.certificate_key_file().display().to_string(),
            trusted.display().to_string(),
        )))
    }

    /// dbgroups' own client's TLS: verified against the authority (the
    /// certificate names the host's loopback, where the forwarded
    /// connection arrives), the authority read from a file the host keeps
    /// on this machine. `None` when it serves no TLS.
    pub(super) async fn client_tls(&self) -> Result<Option<Tls>, EngineError> {
        let Some(authority) = self.authority_if_tls().await else {
            return Ok(None);
        };
        let path = self
            .host
            .client_file(
                &format!("{}-authority.crt", self.name),
                authority.as_bytes(),
            )
            .await?;
        Ok(Some(Tls::Enabled(
            TlsOptions::builder()
                .ca_file_path(path)
                .allow_invalid_certificates(false)
                .build(),
        )))
    }

    /// The authority file the database tools on `host` verify this server
    /// against (`--tlsCAFile`), written into `dir` there when `host` is
    /// not its own; `None` when it serves no TLS.
    pub(super) async fn tools_authority(
        &self,
        host: &HostRef,
        dir: &std::path::Path,
    ) -> Result<Option<String>, EngineError> {
        let Some(authority) = self.authority_if_tls().await else {
            return Ok(None);
        };
        let path = if crate::host::same_host(&self.host, host) {
            self.files().authority()
        } else {
            let path = dir.join("authority.crt");
            host.write_private_file(&path, authority.as_bytes()).await?;
            path
        };
        Ok(Some(path.display().to_string()))
    }

    /// The host's firewall lets exactly its sources in.
    async fn apply_rules(&self) -> Result<(), EngineError> {
        if self.exposure.is_none() {
            return Ok(());
        }
        self.files().restrict_port(&self.name, self.port).await
    }

    /// Installs its certificate (and, before its first start, its
    /// firewall rules, so it never listens open). A running server reads
    /// a renewed certificate by `rotateCertificates` (5.0+); 4.4 is
    /// restarted.
    pub async fn install_certificate(
        &self,
        certificate: &Certificate,
        admin_password: &str,
    ) -> Result<(), EngineError> {
        let Some(exposure) = &self.exposure else {
            return Ok(());
        };
        let changed = self.files().install(certificate, exposure).await?;
        let combined = self.write_certificate_key().await?;
        self.apply_rules().await?;
        if (changed || combined) && self.is_running().await {
            if commands::rotates_certificates_online(&self.version) {
                self.admin_command(Some(admin_password), commands::rotate_certificates())
                    .await?;
            } else {
                self.ensure_stopped(admin_password).await?;
                self.ensure_running().await?;
            }
        }
        Ok(())
    }

    /// Lets exactly `networks` reach it, besides its peers.
    pub async fn allow(&self, networks: &[String]) -> Result<(), EngineError> {
        if self.exposure.is_none() {
            return self.files().set_allowed(networks).await;
        }
        self.files()
            .allow_through_firewall(&self.name, self.port, networks)
            .await
    }

    /// Lets `peers` (another host's addresses) reach it.
    pub async fn admit(&self, peers: &[IpAddr]) -> Result<(), EngineError> {
        if self.exposure.is_none() {
            return Ok(());
        }
        self.files()
            .admit_through_firewall(&self.name, self.port, peers)
            .await
    }

    /// Before this server joins the set of `members`: every member on
    /// another host lets it in, and it lets them in. Members heartbeat
    /// each other and any of them may become the primary, so each reaches
    /// each (not only the primary and the new member).
    pub async fn admit_each_other(&self, members: &[MongoServer]) -> Result<(), EngineError> {
        for member in members {
            if crate::host::same_host(&self.host, &member.host) {
                continue;
            }
            member.admit(&self.host.listen_addresses()).await?;
            self.admit(&member.host.listen_addresses()).await?;
        }
        Ok(())
    }

    /// Its firewall rules go with it.
    pub async fn forget_rules(&self) -> Result<(), EngineError> {
        if self.exposure.is_none() {
            return Ok(());
        }
        self.files().unrestrict_port(self.port).await
    }
}

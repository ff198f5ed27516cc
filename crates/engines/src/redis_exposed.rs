//! A Redis server on a host, as the network meets it. Redis has TLS but no
//! per-source rules, so: TLS only (`port 0`, `tls-port`), replication over
//! TLS verified against the master's authority (`tls-replication yes`),
//! clients not asked for certificates (`tls-auth-clients no`: the password
//! is their credential), and who may reach the port decided by the host's
//! firewall ([`crate::host::Host::restrict_port`]): loopback, the server's
//! own host, the peers it admitted and its group's `allow_from` networks.
//! Redis does not check the name in its master's certificate, only that
//! the authority signed it (its manual, "TLS").

use std::net::IpAddr;
use std::path::PathBuf;

use crate::engine::Certificate;
use crate::error::EngineError;
use crate::exposure::ExposureFiles;
use crate::redis_engine::RedisServer;

impl RedisServer {
    pub(crate) fn files(&self) -> ExposureFiles<'_> {
        ExposureFiles::new(&self.host, self.dir())
    }

    /// Its application's authority (PEM) when it serves TLS: on a host,
    /// once its certificate is installed.
    pub(crate) async fn authority_if_tls(&self) -> Option<String> {
        let exposure = self.exposure.as_ref()?;
        self.files()
            .has_certificate()
            .await
            .then(|| exposure.authority.clone())
    }

    /// The authorities it verifies peers against: its own application's,
    /// and its master's when it follows one.
    pub(crate) fn trusted_file(&self) -> PathBuf {
        self.files().tls_dir().join("trusted.crt")
    }

    /// The config lines for TLS, appended last. `port 0` comes after the
    /// plain `port` line (the last of a directive wins in Redis), which is
    /// where the port recorded for the server is read back from.
    pub(crate) async fn tls_settings(
        &self,
        master: Option<&RedisServer>,
    ) -> Result<String, EngineError> {
        let Some(own) = self.authority_if_tls().await else {
            return Ok(String::new());
        };
        let files = self.files();
        let mut trusted = own;
        if let Some(upstream) = master.and_then(|m| m.exposure.as_ref()) {
            files.trust_upstream(&upstream.authority).await?;
            trusted.push_str(&upstream.authority);
        }
        self.host
            .write_private_file(&self.trusted_file(), trusted.as_bytes())
            .await?;
        Ok(format!(
            "# TLS only, off loopback and on it.\n\
             port 0\n\
             tls-port {port}\n\
             tls-cert-file {certificate}\n\
             tls-key-file {key}\n\
             tls-ca-cert-file {trusted}\n\
             tls-auth-clients no\n\
             tls-replication yes\n\
             tls-protocols \"TLSv1.2 TLSv1.3\"\n",
            port = self.port,
            certificate = files.certificate().display(),
            key = files.key().display(),
            trusted = self.trusted_file().display(),
        ))
    }

    /// The host's firewall lets exactly its sources in.
    async fn apply_rules(&self) -> Result<(), EngineError> {
        if self.exposure.is_none() {
            return Ok(());
        }
        self.files().restrict_port(&self.name, self.port).await
    }

    /// Installs its certificate (and, before its first start, its
    /// firewall rules, so it never listens open). A running server reads a
    /// renewed certificate when its file settings are set again.
    pub async fn install_certificate(
        &self,
        certificate: &Certificate,
        password: &str,
    ) -> Result<(), EngineError> {
        let Some(exposure) = &self.exposure else {
            return Ok(());
        };
        let changed = self.files().install(certificate, exposure).await?;
        self.apply_rules().await?;
        if changed && self.is_running(password).await {
            let files = self.files();
            self.query::<String>(
                password,
                redis::cmd("CONFIG")
                    .arg("SET")
                    .arg("tls-cert-file")
                    .arg(files.certificate().display().to_string())
                    .arg("tls-key-file")
                    .arg(files.key().display().to_string()),
            )
            .await?;
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

    /// Its firewall rules go with it.
    pub async fn forget_rules(&self) -> Result<(), EngineError> {
        if self.exposure.is_none() {
            return Ok(());
        }
        self.files().unrestrict_port(self.port).await
    }
}

//! A MySQL-family server on a host, as the network meets it: its TLS files
//! and settings, and its accounts restricted to the sources it lets in
//! (see [`super::access`]). The files are the ones PostgreSQL keeps too
//! ([`ExposureFiles`]).

use std::net::IpAddr;

use mysql_async::prelude::Queryable;

use super::MysqlServer;
use super::access::{self, AccountHost, Reach, TlsPaths};
use crate::engine::Certificate;
use crate::error::EngineError;
use crate::exposure::ExposureFiles;

/// Where a server's accounts log in from, read from its files.
pub(super) enum Sources {
    /// A server on loopback only: anywhere, as before hosts.
    Anywhere,
    Only {
        peers: Vec<IpAddr>,
        networks: Vec<String>,
        tls: bool,
    },
}

impl Sources {
    pub(super) fn reach(&self) -> Reach<'_> {
        match self {
            Sources::Anywhere => Reach::Anywhere,
            Sources::Only {
                peers,
                networks,
                tls,
            } => Reach::Only {
                peers,
                networks,
                tls: *tls,
            },
        }
    }
}

/// The group's secrets an account change sets again (an account from a
/// new source is made with its password).
pub struct AccountSecrets<'a> {
    pub admin_password: &'a str,
    pub username: &'a str,
    pub password: &'a str,
    pub database: &'a str,
    pub replication_password: &'a str,
}

impl std::fmt::Debug for AccountSecrets<'_> {
    // The passwords never reach a log or an error through Debug.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccountSecrets")
            .field("username", &self.username)
            .field("database", &self.database)
            .finish_non_exhaustive()
    }
}

impl MysqlServer {
    pub(super) fn files(&self) -> ExposureFiles<'_> {
        ExposureFiles::new(&self.host, self.dir())
    }

    /// Its own host (loopback included) and the peers it admitted, and its
    /// client networks; anywhere for a server that is not exposed.
    pub(super) async fn sources(&self) -> Result<Sources, EngineError> {
        if self.exposure.is_none() {
            return Ok(Sources::Anywhere);
        }
        let files = self.files();
        let mut peers = self.host.listen_addresses();
        peers.extend(files.admitted().await);
        let networks = files
            .allowed()
            .await
            .iter()
            .map(|network| access::network_host(network))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|reason| EngineError::Command {
                command: format!("allow_from for {}", self.name),
                status: "refused".into(),
                stderr: reason,
            })?;
        Ok(Sources::Only {
            peers,
            networks,
            tls: files.has_certificate().await,
        })
    }

    /// The config lines for TLS, once the certificate is installed.
    pub(super) async fn tls_settings(&self) -> Vec<String> {
        let files = self.files();
        if self.exposure.is_none() || !files.has_certificate().await {
            return Vec::new();
        }
        let (certificate, key, authority) = (
            files.certificate().display().to_string(),
            files.key().display().to_string(),
            files.authority().display().to_string(),
        );
        self.dialect.tls_settings(&TlsPaths {
            certificate: &certificate,
            key: &key,
            authority: &authority,
        })
    }

    /// `DROP USER` for the sources of each `(user, wanted)` that exist on
    /// the server and are no longer wanted; the connection is handed back.
    pub(super) async fn stale_accounts(
        &self,
        mut conn: mysql_async::Conn,
        users: &[(&str, Vec<AccountHost>)],
    ) -> Result<(mysql_async::Conn, Vec<String>), EngineError> {
        let mut stale = Vec::new();
        for (user, wanted) in users {
            let existing: Vec<String> = conn
                .exec(
                    "SELECT CAST(Host AS CHAR) FROM mysql.user WHERE User = ?",
                    (user.to_string(),),
                )
                .await
                .map_err(self.error())?;
            stale.extend(self.dialect.stale_accounts(user, &existing, wanted));
        }
        Ok((conn, stale))
    }

    /// Installs its certificate, key and authority. A running server
    /// reads the renewed files without a restart where its release can.
    pub async fn install_certificate(
        &self,
        certificate: &Certificate,
        admin_password: &str,
    ) -> Result<(), EngineError> {
        let Some(exposure) = &self.exposure else {
            return Ok(());
        };
        let changed = self.files().install(certificate, exposure).await?;
        if !changed || !self.is_running(admin_password).await {
            return Ok(());
        }
        self.write_config().await?;
        match self.dialect.reload_tls_statement() {
            Some(reload) => self.root_query(admin_password, &[reload.to_string()]).await,
            None => {
                self.ensure_stopped(admin_password).await?;
                self.ensure_running(admin_password).await
            }
        }
    }

    /// Lets exactly `networks` (CIDR) in as the application's account.
    pub async fn allow(
        &self,
        networks: &[String],
        secrets: &AccountSecrets<'_>,
    ) -> Result<(), EngineError> {
        for network in networks {
            access::network_host(network).map_err(|reason| EngineError::Command {
                command: format!("allow_from for {}", self.name),
                status: "refused".into(),
                stderr: reason,
            })?;
        }
        self.files().set_allowed(networks).await?;
        self.set_accounts(secrets).await
    }

    /// Lets `peers` (another host's addresses) log in, for replication and
    /// backups. An ensure: the accounts are set again either way.
    pub async fn admit(
        &self,
        peers: &[IpAddr],
        secrets: &AccountSecrets<'_>,
    ) -> Result<(), EngineError> {
        if self.exposure.is_none() {
            return Ok(());
        }
        self.files()
            .admit(&self.host.listen_addresses(), peers)
            .await?;
        self.set_accounts(secrets).await
    }

    async fn set_accounts(&self, secrets: &AccountSecrets<'_>) -> Result<(), EngineError> {
        self.ensure_accounts(
            secrets.admin_password,
            secrets.username,
            secrets.password,
            secrets.database,
            secrets.replication_password,
        )
        .await
    }
}

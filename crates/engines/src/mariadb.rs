//! The MariaDB engine on the local provider (the MySQL family's member that
//! Debian ships): a config with the binary log and GTIDs on from the first
//! start and a unique `server_id`, so a master never needs a restart later;
//! `mariadb-install-db`; the anonymous accounts removed; the application's
//! and the replication accounts. Queries go through mysql_async.
//!
//! This is the start of issue 5: backup (mariadb-dump), restore, enslave
//! (`MASTER_USE_GTID=slave_pos`), detach and status build on it.

use std::path::{Path, PathBuf};
use std::time::Duration;

use mysql_async::prelude::Queryable;

use crate::error::{EngineError, io};
use crate::local::{LocalProvider, run};

const MARIADBD: &str = "/usr/sbin/mariadbd";
const INSTALL_DB: &str = "/usr/bin/mariadb-install-db";
/// The role replicas connect as.
pub const REPLICATION_USER: &str = "replicator";

#[derive(Debug, Clone)]
pub struct MariadbServer {
    provider: LocalProvider,
    name: String,
    port: u16,
}

/// Names that reach SQL as identifiers or account names: validated by the
/// manifest, and checked again here so nothing else can be spliced in.
fn checked(name: &str) -> Result<&str, EngineError> {
    let safe = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if safe {
        Ok(name)
    } else {
        Err(EngineError::Command {
            command: "SQL".into(),
            status: "refused".into(),
            stderr: format!("\"{name}\" is not a safe identifier"),
        })
    }
}

impl MariadbServer {
    pub fn new(provider: &LocalProvider, name: &str, port: u16) -> Result<Self, EngineError> {
        for program in [MARIADBD, INSTALL_DB] {
            if !Path::new(program).is_file() {
                return Err(EngineError::MissingBinary {
                    program: program.rsplit('/').next().unwrap_or(program).into(),
                    engine: "mariadb".into(),
                    version: "10.11".into(),
                    looked: PathBuf::from(program),
                    package: "mariadb-server".into(),
                });
            }
        }
        Ok(Self {
            provider: provider.clone(),
            name: name.to_string(),
            port,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn dir(&self) -> PathBuf {
        self.provider.server_dir(&self.name)
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir().join("data")
    }

    fn socket(&self) -> PathBuf {
        self.dir().join("run").join("mysqld.sock")
    }

    fn config_file(&self) -> PathBuf {
        self.dir().join("my.cnf")
    }

    /// The server's own config. `server_id` is the port: ports are unique on
    /// this machine, and ids must be unique among servers that replicate.
    fn write_config(&self) -> Result<(), EngineError> {
        self.provider.private_dir(&self.dir())?;
        self.provider.private_dir(&self.dir().join("run"))?;
        let config = format!(
            "# Written by dbgroups; changes here are overwritten.\n\
             [mariadbd]\n\
             datadir = {data}\n\
             socket = {socket}\n\
             pid-file = {dir}/run/mariadbd.pid\n\
             port = {port}\n\
             bind-address = 127.0.0.1\n\
             server_id = {port}\n\
             log_bin = binlog\n\
             binlog_format = ROW\n\
             log_slave_updates = ON\n\
             gtid_strict_mode = ON\n\
             skip_name_resolve = ON\n\
             log_error = {dir}/mariadb.log\n\
             innodb_buffer_pool_size = 64M\n",
            data = self.data_dir().display(),
            socket = self.socket().display(),
            dir = self.dir().display(),
            port = self.port,
        );
        self.provider
            .private_file(&self.config_file(), config.as_bytes())
    }

    /// The port an earlier provision of this server chose, if any.
    pub fn earlier_port(provider: &LocalProvider, name: &str) -> Option<u16> {
        crate::local::configured_port(&provider.server_dir(name).join("my.cnf"))
    }

    /// A connection as root over the server's socket.
    async fn root(&self, password: Option<&str>) -> Result<mysql_async::Conn, EngineError> {
        let options = mysql_async::OptsBuilder::default()
            .socket(Some(self.socket().display().to_string()))
            .user(Some("root"))
            .pass(password.map(str::to_string))
            .prefer_socket(true);
        mysql_async::Conn::new(options)
            .await
            .map_err(|source| EngineError::Mariadb {
                port: self.port,
                source,
            })
    }

    /// A connection over TCP, as `user`.
    pub async fn connect(
        &self,
        user: &str,
        password: &str,
        database: &str,
    ) -> Result<mysql_async::Conn, EngineError> {
        let options = mysql_async::OptsBuilder::default()
            .ip_or_hostname("127.0.0.1")
            .tcp_port(self.port)
            .user(Some(user))
            .pass(Some(password))
            .db_name(Some(database))
            .prefer_socket(false);
        mysql_async::Conn::new(options)
            .await
            .map_err(|source| EngineError::Mariadb {
                port: self.port,
                source,
            })
    }

    pub async fn is_running(&self, admin_password: &str) -> bool {
        match self.root(Some(admin_password)).await {
            Ok(conn) => {
                let _ = conn.disconnect().await;
                true
            }
            // Before the first provision finished, root has no password yet.
            Err(_) => self.root(None).await.is_ok(),
        }
    }

    /// The data directory (unless made), the config, a running server, and
    /// the accounts.
    pub async fn ensure_provisioned(
        &self,
        admin_password: &str,
        username: &str,
        password: &str,
        database: &str,
        replication_password: &str,
    ) -> Result<(), EngineError> {
        self.write_config()?;
        if !self.data_dir().join("mysql").is_dir() {
            if self.data_dir().exists() {
                std::fs::remove_dir_all(self.data_dir())
                    .map_err(io("remove the unfinished", self.data_dir()))?;
            }
            self.provider.private_dir(&self.data_dir())?;
            let mut install = self.provider.command(Path::new(INSTALL_DB));
            install
                .arg(format!("--defaults-file={}", self.config_file().display()))
                .args(["--auth-root-authentication-method=normal", "--skip-test-db"]);
            run(install, "mariadb-install-db").await?;
        }
        self.ensure_running(admin_password).await?;
        self.ensure_accounts(
            admin_password,
            username,
            password,
            database,
            replication_password,
        )
        .await
    }

    /// Starts mariadbd detached (it outlives dbgroups) and waits for it.
    pub async fn ensure_running(&self, admin_password: &str) -> Result<(), EngineError> {
        if self.is_running(admin_password).await {
            return Ok(());
        }
        let mut start = self.provider.command(Path::new(MARIADBD));
        start
            .arg(format!("--defaults-file={}", self.config_file().display()))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null());
        // Not waited for: mariadbd runs in the foreground of its own group.
        start.spawn().map_err(|source| EngineError::Io {
            action: "start",
            path: PathBuf::from(MARIADBD),
            source,
        })?;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
        while !self.is_running(admin_password).await {
            if tokio::time::Instant::now() >= deadline {
                let log =
                    std::fs::read_to_string(self.dir().join("mariadb.log")).unwrap_or_default();
                return Err(EngineError::Command {
                    command: "mariadbd".into(),
                    status: "not answering after 120 s".into(),
                    stderr: log.lines().rev().take(5).collect::<Vec<_>>().join("\n"),
                });
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        Ok(())
    }

    async fn ensure_accounts(
        &self,
        admin_password: &str,
        username: &str,
        password: &str,
        database: &str,
        replication_password: &str,
    ) -> Result<(), EngineError> {
        let (username, database) = (checked(username)?, checked(database)?);
        for secret in [admin_password, password, replication_password] {
            checked(secret)?;
        }
        let mut conn = match self.root(Some(admin_password)).await {
            Ok(conn) => conn,
            Err(_) => self.root(None).await?,
        };
        let statements = [
            // Binary-log nothing of the set-up: a replica gets its own
            // accounts and must not replay these.
            "SET SESSION sql_log_bin = 0".to_string(),
            format!("ALTER USER 'root'@'localhost' IDENTIFIED BY '{admin_password}'"),
            // Anonymous accounts let anyone log in without a name.
            "DELETE FROM mysql.global_priv WHERE User = ''".to_string(),
            format!("CREATE USER IF NOT EXISTS '{username}'@'%' IDENTIFIED BY '{password}'"),
            format!("ALTER USER '{username}'@'%' IDENTIFIED BY '{password}'"),
            format!("CREATE DATABASE IF NOT EXISTS `{database}`"),
            format!("GRANT ALL PRIVILEGES ON `{database}`.* TO '{username}'@'%'"),
            format!(
                "CREATE USER IF NOT EXISTS '{REPLICATION_USER}'@'%' IDENTIFIED BY '{replication_password}'"
            ),
            format!("ALTER USER '{REPLICATION_USER}'@'%' IDENTIFIED BY '{replication_password}'"),
            format!(
                "GRANT REPLICATION SLAVE, REPLICATION CLIENT ON *.* TO '{REPLICATION_USER}'@'%'"
            ),
            "FLUSH PRIVILEGES".to_string(),
        ];
        for statement in statements {
            conn.query_drop(statement)
                .await
                .map_err(|source| EngineError::Mariadb {
                    port: self.port,
                    source,
                })?;
        }
        let _ = conn.disconnect().await;
        Ok(())
    }

    /// How many anonymous (nameless) accounts exist: provisioning removes
    /// them, and the reliability checks verify it.
    pub async fn anonymous_accounts(&self, admin_password: &str) -> Result<i64, EngineError> {
        let mut conn = self.root(Some(admin_password)).await?;
        let count: Option<i64> = conn
            .query_first("SELECT COUNT(*) FROM mysql.global_priv WHERE User = ''")
            .await
            .map_err(|source| EngineError::Mariadb {
                port: self.port,
                source,
            })?;
        let _ = conn.disconnect().await;
        Ok(count.unwrap_or(0))
    }

    pub async fn ensure_stopped(&self, admin_password: &str) -> Result<(), EngineError> {
        let Ok(mut conn) = self.root(Some(admin_password)).await else {
            return Ok(());
        };
        // SHUTDOWN ends the connection instead of answering.
        let _ = conn.query_drop("SHUTDOWN").await;
        let pid_file = self.dir().join("run").join("mariadbd.pid");
        let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
        while pid_file.exists() || self.is_running(admin_password).await {
            if tokio::time::Instant::now() >= deadline {
                return Err(EngineError::Timeout {
                    what: format!("shutdown of {}", self.name),
                    seconds: 120,
                });
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        Ok(())
    }
}

//! The PostgreSQL engine on the local provider: initdb, a configuration that
//! is replication-ready from birth (so a master never needs a restart when
//! it gets its first slave), pg_ctl, and accounts through tokio-postgres.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::error::{EngineError, io};
use crate::local::{LocalProvider, run};

/// The superuser every server is initialised with.
pub const SUPERUSER: &str = "postgres";
/// The role slaves stream with.
pub const REPLICATION_USER: &str = "replicator";

/// One PostgreSQL server of the local provider.
#[derive(Debug, Clone)]
pub struct PostgresServer {
    provider: LocalProvider,
    name: String,
    port: u16,
    bin: PathBuf,
}

/// Where Debian installs a major version's programs.
pub fn binaries(major: &str) -> PathBuf {
    PathBuf::from(format!("/usr/lib/postgresql/{major}/bin"))
}

impl PostgresServer {
    /// Finds the programs for `version` (its major part), or says which
    /// Debian package provides them.
    pub fn new(
        provider: &LocalProvider,
        name: &str,
        version: &str,
        port: u16,
    ) -> Result<Self, EngineError> {
        let major = version.split('.').next().unwrap_or(version);
        let bin = binaries(major);
        if !bin.join("postgres").is_file() {
            return Err(EngineError::MissingBinary {
                program: "postgres".into(),
                engine: "postgresql".into(),
                version: version.into(),
                looked: bin,
                package: format!("postgresql-{major}"),
            });
        }
        Ok(Self {
            provider: provider.clone(),
            name: name.to_string(),
            port,
            bin,
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

    fn socket_dir(&self) -> PathBuf {
        self.dir().join("run")
    }

    fn log_file(&self) -> PathBuf {
        self.dir().join("postgresql.log")
    }

    fn tool(&self, name: &str) -> tokio::process::Command {
        self.provider.command(&self.bin.join(name))
    }

    fn is_initialised(&self) -> bool {
        self.data_dir().join("PG_VERSION").is_file()
    }

    /// initdb (unless done), then the configuration dbgroups owns.
    pub async fn ensure_initialised(&self, superuser_password: &str) -> Result<(), EngineError> {
        self.provider.private_dir(&self.dir())?;
        self.provider.private_dir(&self.socket_dir())?;
        if !self.is_initialised() {
            // A half-made data directory from an interrupted initdb is
            // removed: initdb refuses a non-empty one, and it holds nothing.
            if self.data_dir().exists() {
                std::fs::remove_dir_all(self.data_dir())
                    .map_err(io("remove the unfinished", self.data_dir()))?;
            }
            let password_file = self.dir().join("initdb.password");
            self.provider
                .private_file(&password_file, superuser_password.as_bytes())?;
            let mut initdb = self.tool("initdb");
            initdb
                .arg("--pgdata")
                .arg(self.data_dir())
                .arg(format!("--username={SUPERUSER}"))
                .arg("--pwfile")
                .arg(&password_file)
                .args(["--auth=scram-sha-256", "--encoding=UTF8", "--no-locale"]);
            let result = run(initdb, "initdb").await;
            let _ = std::fs::remove_file(&password_file);
            result.map(drop)?;
        }
        self.write_configuration()
    }

    /// Settings dbgroups owns, in their own file included by
    /// postgresql.conf. Replication-ready: wal_level, senders and slots are
    /// set before the first start, so enslaving never restarts a master.
    fn write_configuration(&self) -> Result<(), EngineError> {
        let data = self.data_dir();
        let settings = format!(
            "# Written by dbgroups; changes here are overwritten.\n\
             listen_addresses = '127.0.0.1'\n\
             port = {port}\n\
             unix_socket_directories = '{socket}'\n\
             password_encryption = 'scram-sha-256'\n\
             wal_level = replica\n\
             max_wal_senders = 10\n\
             max_replication_slots = 10\n\
             hot_standby = on\n\
             wal_keep_size = '256MB'\n",
            port = self.port,
            socket = self.socket_dir().display()
        );
        self.provider
            .private_file(&data.join("dbgroups.conf"), settings.as_bytes())?;
        let conf = data.join("postgresql.conf");
        let current = std::fs::read_to_string(&conf).map_err(io("read", &conf))?;
        let include = "include_if_exists = 'dbgroups.conf'";
        if !current.contains(include) {
            self.provider
                .private_file(&conf, format!("{current}\n{include}\n").as_bytes())?;
        }
        let hba = "# Written by dbgroups: password authentication only, loopback only.\n\
                   local   all          all                   scram-sha-256\n\
                   host    all          all          127.0.0.1/32  scram-sha-256\n\
                   host    replication  all          127.0.0.1/32  scram-sha-256\n";
        self.provider
            .private_file(&data.join("pg_hba.conf"), hba.as_bytes())
    }

    pub async fn is_running(&self) -> bool {
        let mut status = self.tool("pg_ctl");
        status.arg("status").arg("--pgdata").arg(self.data_dir());
        run(status, "pg_ctl status").await.is_ok()
    }

    /// Starts the server (detached: it outlives dbgroups) unless it runs.
    pub async fn ensure_running(&self) -> Result<(), EngineError> {
        if self.is_running().await {
            return Ok(());
        }
        let mut start = self.tool("pg_ctl");
        start
            .arg("start")
            .arg("--pgdata")
            .arg(self.data_dir())
            .arg("--log")
            .arg(self.log_file())
            .args(["--wait", "--timeout=120"]);
        run(start, "pg_ctl start")
            .await
            .map(drop)
            .map_err(|err| self.with_log(err))
    }

    pub async fn ensure_stopped(&self) -> Result<(), EngineError> {
        if !self.is_running().await {
            return Ok(());
        }
        let mut stop = self.tool("pg_ctl");
        stop.arg("stop")
            .arg("--pgdata")
            .arg(self.data_dir())
            .args(["--mode=fast", "--wait"]);
        run(stop, "pg_ctl stop").await.map(drop)
    }

    /// Adds the server log's last lines to a start failure: that is where
    /// PostgreSQL says why.
    fn with_log(&self, err: EngineError) -> EngineError {
        match err {
            EngineError::Command {
                command,
                status,
                stderr,
            } => {
                let log = std::fs::read_to_string(self.log_file()).unwrap_or_default();
                let tail: Vec<&str> = log.lines().rev().take(5).collect();
                let tail: Vec<&str> = tail.into_iter().rev().collect();
                EngineError::Command {
                    command,
                    status,
                    stderr: format!("{stderr}\n{}", tail.join("\n")).trim().to_string(),
                }
            }
            other => other,
        }
    }

    /// A client connection over TCP, as `user`.
    pub async fn connect(
        &self,
        user: &str,
        password: &str,
        database: &str,
    ) -> Result<tokio_postgres::Client, EngineError> {
        let mut config = tokio_postgres::Config::new();
        config
            .host("127.0.0.1")
            .port(self.port)
            .user(user)
            .password(password)
            .dbname(database)
            .connect_timeout(Duration::from_secs(10));
        let (client, connection) =
            config
                .connect(tokio_postgres::NoTls)
                .await
                .map_err(|source| EngineError::Postgres {
                    port: self.port,
                    source,
                })?;
        tokio::spawn(connection);
        Ok(client)
    }

    /// The application's role and database, and the replication role:
    /// created if missing, passwords set to the recorded ones.
    pub async fn ensure_accounts(
        &self,
        superuser_password: &str,
        username: &str,
        password: &str,
        database: &str,
        replication_password: &str,
    ) -> Result<(), EngineError> {
        let client = self
            .connect(SUPERUSER, superuser_password, "postgres")
            .await?;
        let pg = |source| EngineError::Postgres {
            port: self.port,
            source,
        };
        for (role, secret, attributes) in [
            (username, password, "LOGIN"),
            (REPLICATION_USER, replication_password, "LOGIN REPLICATION"),
        ] {
            let exists = client
                .query_opt("SELECT 1 FROM pg_roles WHERE rolname = $1", &[&role])
                .await
                .map_err(pg)?;
            let verb = if exists.is_some() { "ALTER" } else { "CREATE" };
            // Identifiers and the password are quoted by the server itself
            // (format %I and %L); nothing from the user is spliced into SQL.
            let statement: String = client
                .query_one("SELECT format('%s ROLE %I WITH %s PASSWORD %L', $1::text, $2::text, $3::text, $4::text)", &[&verb, &role, &attributes, &secret])
                .await
                .map_err(pg)?
                .get(0);
            client.batch_execute(&statement).await.map_err(pg)?;
        }
        let exists = client
            .query_opt("SELECT 1 FROM pg_database WHERE datname = $1", &[&database])
            .await
            .map_err(pg)?;
        if exists.is_none() {
            let statement: String = client
                .query_one(
                    "SELECT format('CREATE DATABASE %I OWNER %I', $1::text, $2::text)",
                    &[&database, &username],
                )
                .await
                .map_err(pg)?
                .get(0);
            client.batch_execute(&statement).await.map_err(pg)?;
        }
        Ok(())
    }

    /// Stops the server immediately and synchronously (for guards and
    /// teardown paths that cannot await).
    pub fn stop_now(&self) {
        let mut stop = std::process::Command::new(self.bin.join("pg_ctl"));
        if let Some(user) = self.provider.service_user() {
            stop = std::process::Command::new("setpriv");
            stop.arg(format!("--reuid={}", user.uid))
                .arg(format!("--regid={}", user.gid))
                .arg("--clear-groups")
                .arg("--")
                .arg(self.bin.join("pg_ctl"));
        }
        let _ = stop
            .arg("stop")
            .arg("--pgdata")
            .arg(self.data_dir())
            .args(["--mode=immediate", "--wait"])
            .output();
    }
}

/// The data directory's owner, for checking who the server runs as.
pub fn owner_uid(path: &Path) -> Option<u32> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path).ok().map(|m| m.uid())
}

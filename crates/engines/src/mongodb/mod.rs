//! The MongoDB engine on the local provider, written to MongoDB's manual
//! (mongod cannot be installed on the machines this was built on; the live
//! tests run wherever `mongod` is on PATH). [`MongoServer`] is one `mongod`
//! with `--replSet`, a keyfile and authorization on from its first start;
//! a group is one replica set. The first server initiates the set and gets
//! the group's administrator and application users through the localhost
//! exception; further servers join through a reconfig (`rs.add`) and copy
//! the data by initial sync; removal is a reconfig (`rs.remove`). An import
//! is `mongodump --oplog` into `mongorestore --oplogReplay`. The documents
//! sent are built in [`commands`].

pub mod commands;

use std::path::{Path, PathBuf};
use std::time::Duration;

use mongodb::bson::{Document, doc};
use mongodb::options::{ClientOptions, Credential, ServerAddress};

use crate::error::{EngineError, io};
use crate::local::{LocalProvider, find_program, log_tail, run_stoppable, wait_until};

pub use commands::MemberStatus;

/// The group's administrator, in the `admin` database.
pub const ADMIN_USER: &str = "dbgroups-admin";

/// Where to get MongoDB when it is missing.
pub const REMEDY: &str = "MongoDB is not packaged by Debian: install mongodb-org-server and mongodb-database-tools from MongoDB's repository (repo.mongodb.org; amd64 and arm64 only)";

/// Command error codes (MongoDB's error_codes.yml) the engine acts on.
mod code {
    pub(super) const NOT_YET_INITIALIZED: i32 = 94;
    pub(super) const ALREADY_INITIALIZED: i32 = 23;
    pub(super) const CONFIGURATION_IN_PROGRESS: i32 = 109;
    pub(super) const CURRENT_CONFIG_NOT_COMMITTED_YET: i32 = 308;
    pub(super) const NEW_CONFIG_QUORUM_CHECK_FAILED: i32 = 74;
    pub(super) const USER_EXISTS: i32 = 51003;
}

#[derive(Debug, Clone)]
pub struct MongoServer {
    provider: LocalProvider,
    name: String,
    port: u16,
    version: String,
    mongod: PathBuf,
}

impl MongoServer {
    pub fn new(
        provider: &LocalProvider,
        name: &str,
        version: &str,
        port: u16,
    ) -> Result<Self, EngineError> {
        Ok(Self {
            provider: provider.clone(),
            name: name.to_string(),
            port,
            version: version.to_string(),
            mongod: Self::program("mongod", version)?,
        })
    }

    fn program(name: &str, version: &str) -> Result<PathBuf, EngineError> {
        find_program(name).ok_or_else(|| EngineError::MissingBinary {
            program: name.into(),
            engine: "mongodb".into(),
            version: version.into(),
            looked: "PATH, /usr/sbin and /usr/local/sbin".into(),
            remedy: REMEDY.into(),
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `host:port` as replica set members name each other.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn dir(&self) -> PathBuf {
        self.provider.server_dir(&self.name)
    }

    fn data_dir(&self) -> PathBuf {
        self.dir().join("data")
    }

    fn config_path(&self) -> PathBuf {
        self.dir().join("mongod.conf")
    }

    fn keyfile(&self) -> PathBuf {
        self.dir().join("keyfile")
    }

    fn log_file(&self) -> PathBuf {
        self.dir().join("mongod.log")
    }

    /// The port an earlier provision of this server chose, if any.
    pub fn earlier_port(provider: &LocalProvider, name: &str) -> Option<u16> {
        let text = std::fs::read_to_string(provider.server_dir(name).join("mongod.conf")).ok()?;
        text.lines()
            .find_map(|line| line.trim().strip_prefix("port:"))
            .and_then(|port| port.trim().parse().ok())
    }

    /// The config and the keyfile. Every member of a set shares the
    /// keyfile (the group's replication secret): members authenticate to
    /// each other with it.
    fn write_config(&self, set: &str, keyfile_secret: &str) -> Result<(), EngineError> {
        self.provider.private_dir(&self.dir())?;
        self.provider.private_dir(&self.data_dir())?;
        self.provider.private_dir(&self.dir().join("run"))?;
        self.provider
            .private_file(&self.keyfile(), keyfile_secret.as_bytes())?;
        let (data, keyfile, log, pid) = (
            self.data_dir().display().to_string(),
            self.keyfile().display().to_string(),
            self.log_file().display().to_string(),
            self.dir().join("run/mongod.pid").display().to_string(),
        );
        let config = commands::config_file(
            &commands::ConfigPaths {
                data_dir: &data,
                keyfile: &keyfile,
                log_file: &log,
                pid_file: &pid,
            },
            self.port,
            set,
        );
        self.provider
            .private_file(&self.config_path(), config.as_bytes())
    }

    /// A direct connection to this server: as the administrator, or with
    /// no credentials (the localhost exception, before the first user).
    fn client(&self, admin_password: Option<&str>) -> Result<mongodb::Client, EngineError> {
        let mut options = ClientOptions::builder()
            .hosts(vec![ServerAddress::Tcp {
                host: "127.0.0.1".into(),
                port: Some(self.port),
            }])
            .direct_connection(true)
            .server_selection_timeout(Duration::from_secs(5))
            .connect_timeout(Duration::from_secs(5))
            .build();
        options.credential = admin_password.map(|password| {
            Credential::builder()
                .username(ADMIN_USER.to_string())
                .password(password.to_string())
                .source("admin".to_string())
                .build()
        });
        mongodb::Client::with_options(options).map_err(|e| self.error(e))
    }

    fn error(&self, source: mongodb::error::Error) -> EngineError {
        EngineError::Mongodb {
            port: self.port,
            source: Box::new(source),
        }
    }

    async fn admin_command(
        &self,
        admin_password: Option<&str>,
        command: Document,
    ) -> Result<Document, EngineError> {
        let client = self.client(admin_password)?;
        let answer = client.database("admin").run_command(command).await;
        client.shutdown().await;
        answer.map_err(|e| self.error(e))
    }

    /// Whether mongod answers at all (`ping` needs no credentials).
    pub async fn is_running(&self) -> bool {
        self.admin_command(None, doc! { "ping": 1 }).await.is_ok()
    }

    /// The first server of a group: config, a running mongod, the set
    /// initiated with it as its only member, and the users.
    pub async fn ensure_primary(
        &self,
        set: &str,
        keyfile_secret: &str,
        admin_password: &str,
        app: &AppUser<'_>,
    ) -> Result<(), EngineError> {
        self.write_config(set, keyfile_secret)?;
        self.ensure_running().await?;
        match self
            .admin_command(None, commands::initiate(set, &self.host()))
            .await
        {
            Ok(_) => {}
            // Initiated by an earlier run; with users made, an
            // unauthenticated command is refused instead.
            Err(error) if is_code(&error, code::ALREADY_INITIALIZED) || is_unauthorized(&error) => {
            }
            Err(error) => return Err(error),
        }
        wait_until(&format!("{} to become PRIMARY", self.name), 120, || async {
            let hello = self.admin_command(None, doc! { "hello": 1 }).await?;
            Ok(hello.get_bool("isWritablePrimary").unwrap_or(false))
        })
        .await?;
        self.ensure_users(admin_password, app).await
    }

    /// The administrator first (the localhost exception allows exactly
    /// that), then the application's user as the administrator.
    async fn ensure_users(
        &self,
        admin_password: &str,
        app: &AppUser<'_>,
    ) -> Result<(), EngineError> {
        if self
            .admin_command(Some(admin_password), doc! { "ping": 1 })
            .await
            .is_err()
        {
            match self
                .admin_command(None, commands::create_admin(ADMIN_USER, admin_password))
                .await
            {
                Ok(_) => {}
                Err(error) if is_code(&error, code::USER_EXISTS) => {}
                Err(error) => return Err(error),
            }
        }
        let client = self.client(Some(admin_password))?;
        let database = client.database(app.database);
        let created = database
            .run_command(commands::create_app_user(
                app.username,
                app.password,
                app.database,
            ))
            .await;
        let result = match created {
            Ok(_) => Ok(()),
            Err(error) if command_code(&error) == Some(code::USER_EXISTS) => database
                .run_command(commands::update_password(app.username, app.password))
                .await
                .map(drop),
            Err(error) => Err(error),
        };
        client.shutdown().await;
        result.map_err(|e| self.error(e))
    }

    /// A further member: config and a running mongod, not yet in the set
    /// (the enslave step adds it).
    pub async fn ensure_member_started(
        &self,
        set: &str,
        keyfile_secret: &str,
    ) -> Result<(), EngineError> {
        self.write_config(set, keyfile_secret)?;
        self.ensure_running().await
    }

    /// Starts mongod detached (it outlives dbgroups) and waits for it.
    pub async fn ensure_running(&self) -> Result<(), EngineError> {
        if self.is_running().await {
            return Ok(());
        }
        let mut start = self.provider.command(&self.dir(), &self.mongod);
        start
            .arg(format!("--config={}", self.config_path().display()))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null());
        start.spawn().map_err(|source| EngineError::Io {
            action: "start",
            path: self.mongod.clone(),
            source,
        })?;
        wait_until(&format!("{} to answer", self.name), 120, || async {
            Ok(self.is_running().await)
        })
        .await
        .map_err(|_| EngineError::Command {
            command: "mongod".into(),
            status: "not answering after 120 s".into(),
            stderr: log_tail(&self.log_file()),
        })
    }

    /// Adds `member` to this primary's set (`rs.add`) and waits until it
    /// has copied the data and reached SECONDARY. A reconfig changes one
    /// voting member at a time, so one still committing is waited out.
    pub async fn add_member(
        &self,
        admin_password: &str,
        member: &MongoServer,
        seconds: u64,
    ) -> Result<(), EngineError> {
        let host = member.host();
        self.reconfigure(admin_password, |config| {
            commands::with_member(config, &host)
        })
        .await?;
        wait_until(
            &format!("{} to reach SECONDARY", member.name),
            seconds,
            || async {
                let members = self.members(admin_password).await?;
                Ok(members
                    .iter()
                    .any(|m| m.host == host && m.state == "SECONDARY"))
            },
        )
        .await
    }

    /// Stops this member, empties its data directory and starts it again:
    /// MongoDB then copies everything from the set by initial sync.
    pub async fn start_over(&self, admin_password: &str) -> Result<(), EngineError> {
        self.ensure_stopped(admin_password).await?;
        if self.data_dir().exists() {
            std::fs::remove_dir_all(self.data_dir())
                .map_err(io("empty the data directory", self.data_dir()))?;
        }
        self.provider.private_dir(&self.data_dir())?;
        self.ensure_running().await
    }

    /// Removes `host` from this primary's set (`rs.remove`).
    pub async fn remove_member(&self, admin_password: &str, host: &str) -> Result<(), EngineError> {
        self.reconfigure(admin_password, |config| {
            commands::without_member(config, host)
        })
        .await
    }

    async fn reconfigure(
        &self,
        admin_password: &str,
        change: impl Fn(&Document) -> Result<Option<Document>, String>,
    ) -> Result<(), EngineError> {
        let refused = |detail: String| EngineError::Command {
            command: "replSetReconfig".into(),
            status: "refused".into(),
            stderr: detail,
        };
        wait_until(
            &format!("a reconfig of {}'s set", self.name),
            120,
            || async {
                let answer = self
                    .admin_command(Some(admin_password), doc! { "replSetGetConfig": 1 })
                    .await?;
                let config = answer
                    .get_document("config")
                    .map_err(|_| refused("replSetGetConfig returned no config".into()))?;
                let Some(updated) = change(config).map_err(refused)? else {
                    return Ok(true);
                };
                match self
                    .admin_command(Some(admin_password), commands::reconfig(updated))
                    .await
                {
                    Ok(_) => Ok(true),
                    Err(error)
                        if [
                            code::CONFIGURATION_IN_PROGRESS,
                            code::CURRENT_CONFIG_NOT_COMMITTED_YET,
                            code::NEW_CONFIG_QUORUM_CHECK_FAILED,
                        ]
                        .iter()
                        .any(|c| is_code(&error, *c)) =>
                    {
                        Ok(false)
                    }
                    Err(error) => Err(error),
                }
            },
        )
        .await
    }

    /// `replSetGetStatus`'s members.
    pub async fn members(&self, admin_password: &str) -> Result<Vec<MemberStatus>, EngineError> {
        let status = self
            .admin_command(Some(admin_password), doc! { "replSetGetStatus": 1 })
            .await?;
        commands::member_statuses(&status).map_err(|detail| EngineError::Command {
            command: "replSetGetStatus".into(),
            status: "unreadable".into(),
            stderr: detail,
        })
    }

    /// Whether the set has not been initiated on this server yet.
    pub async fn is_uninitiated(&self, admin_password: &str) -> bool {
        matches!(
            self.admin_command(Some(admin_password), doc! { "replSetGetStatus": 1 }).await,
            Err(error) if is_code(&error, code::NOT_YET_INITIALIZED)
        )
    }

    /// The bytes a dump copies.
    pub async fn data_size(&self, admin_password: &str) -> Result<u64, EngineError> {
        let answer = self
            .admin_command(Some(admin_password), doc! { "listDatabases": 1 })
            .await?;
        Ok(answer
            .get("totalSize")
            .and_then(|v| match v {
                mongodb::bson::Bson::Int64(n) => u64::try_from(*n).ok(),
                mongodb::bson::Bson::Int32(n) => u64::try_from(*n).ok(),
                mongodb::bson::Bson::Double(n) => Some(*n as u64),
                _ => None,
            })
            .unwrap_or(0))
    }

    /// A file for the database tools' `--config`, holding the password.
    fn tools_config(&self, admin_password: &str) -> Result<PathBuf, EngineError> {
        let path = self.dir().join("tools.yaml");
        self.provider
            .private_file(&path, commands::tools_config(admin_password).as_bytes())?;
        Ok(path)
    }

    /// `mongodump --oplog` into `staging/dump`.
    pub async fn dump_to(&self, staging: &Path, admin_password: &str) -> Result<(), EngineError> {
        let target = staging.join("dump");
        if target.join(".complete").is_file() {
            return Ok(());
        }
        self.provider.private_dir(staging)?;
        if target.exists() {
            std::fs::remove_dir_all(&target).map_err(io("remove the unfinished", &target))?;
        }
        let tool = Self::program("mongodump", &self.version)?;
        let config = self.tools_config(admin_password)?;
        let mut dump = self.provider.command(&self.dir(), &tool);
        dump.args(commands::dump_args(
            &config.display().to_string(),
            ADMIN_USER,
            self.port,
            &target.display().to_string(),
        ));
        let result = run_stoppable(dump, "mongodump --oplog").await;
        let _ = std::fs::remove_file(&config);
        result?;
        self.provider.private_file(&target.join(".complete"), b"")
    }

    /// `mongorestore --oplogReplay` of `staging/dump` into this server.
    pub async fn restore_from(
        &self,
        staging: &Path,
        admin_password: &str,
    ) -> Result<(), EngineError> {
        let tool = Self::program("mongorestore", &self.version)?;
        let config = self.tools_config(admin_password)?;
        let mut restore = self.provider.command(&self.dir(), &tool);
        restore.args(commands::restore_args(
            &config.display().to_string(),
            ADMIN_USER,
            self.port,
            &staging.join("dump").display().to_string(),
        ));
        let result = run_stoppable(restore, "mongorestore --oplogReplay").await;
        let _ = std::fs::remove_file(&config);
        result.map(drop)
    }

    /// Gives the application's user (kept in its own database) read and
    /// write on a database a copy brought under another name.
    pub async fn grant_database(
        &self,
        admin_password: &str,
        username: &str,
        user_database: &str,
        database: &str,
    ) -> Result<(), EngineError> {
        let client = self.client(Some(admin_password))?;
        let answer = client
            .database(user_database)
            .run_command(commands::grant_read_write(username, database))
            .await;
        client.shutdown().await;
        answer.map(drop).map_err(|e| self.error(e))
    }

    pub async fn ensure_stopped(&self, admin_password: &str) -> Result<(), EngineError> {
        if !self.is_running().await {
            return Ok(());
        }
        // `shutdown` ends the connection instead of answering; `force`
        // lets a primary of a one-member set (or a lagging member) stop.
        let _ = self
            .admin_command(Some(admin_password), doc! { "shutdown": 1, "force": true })
            .await;
        wait_until(&format!("shutdown of {}", self.name), 120, || async {
            Ok(!self.is_running().await)
        })
        .await
    }
}

/// The application's account.
#[derive(Debug, Clone, Copy)]
pub struct AppUser<'a> {
    pub username: &'a str,
    pub password: &'a str,
    pub database: &'a str,
}

fn command_code(error: &mongodb::error::Error) -> Option<i32> {
    match error.kind.as_ref() {
        mongodb::error::ErrorKind::Command(command) => Some(command.code),
        _ => None,
    }
}

fn is_code(error: &EngineError, wanted: i32) -> bool {
    matches!(error, EngineError::Mongodb { source, .. } if command_code(source) == Some(wanted))
}

/// Unauthorized (13) or a failed authentication (18).
fn is_unauthorized(error: &EngineError) -> bool {
    is_code(error, 13) || is_code(error, 18)
}

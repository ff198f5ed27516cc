//! The MySQL family's engine, on the host it is given: MariaDB (which Debian
//! ships and the live tests run), MySQL and Percona Server 8. [`MysqlServer`]
//! does the work with the words its [`Dialect`] gives it: a config with the
//! binary log and GTIDs on from the first start and a unique `server_id`,
//! so a master never needs a restart later; an initialised data directory;
//! the anonymous accounts removed; the application's and the replication
//! accounts; a consistent dump; a restore kept out of the replica's own
//! GTID history; GTID replication; detach; and the replica's status. Queries
//! go through mysql_async; dumps and loads through the server's own tools.

pub mod access;
pub mod dialect;
mod exposed;
mod physical;

use std::path::{Path, PathBuf};

use dbgroups_manifest::Engine;
use mysql_async::prelude::Queryable;

pub use dialect::{Dialect, ReplicaStatus};
pub use exposed::AccountSecrets;

use crate::engine::Exposure;
use crate::error::EngineError;
use crate::host::{HostRef, Program};
use crate::local::wait_until;

/// The role replicas connect as.
pub const REPLICATION_USER: &str = "replicator";

/// How much of the server's log an error about its start shows.
const LOG_LINES: usize = 5;

/// How much of a dump's end is read for its GTID position.
const DUMP_TAIL_BYTES: u64 = 64 * 1024;

#[derive(Debug, Clone)]
pub struct MysqlServer {
    /// The machine the server lives on.
    host: HostRef,
    name: String,
    port: u16,
    dialect: Dialect,
    server_program: PathBuf,
    installer: Option<PathBuf>,
    dump_program: PathBuf,
    client_program: PathBuf,
    /// TLS and access, for a server on a host (see [`Exposure`]): its
    /// accounts log in only from the sources it lets in, over TLS.
    exposure: Option<std::sync::Arc<Exposure>>,
}

/// Names that reach SQL as identifiers or account names, and programs'
/// arguments: validated by the manifest, and checked again here so nothing
/// else can be spliced in. A leading `-` would read as an option.
fn checked(name: &str) -> Result<&str, EngineError> {
    let safe = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphanumeric())
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

impl MysqlServer {
    /// Finds the engine's programs, or says what to install.
    pub async fn new(
        host: &HostRef,
        engine: Engine,
        version: &str,
        name: &str,
        port: u16,
    ) -> Result<Self, EngineError> {
        let dialect = Dialect::new(engine, version).ok_or_else(|| EngineError::Command {
            command: format!("{engine} {version}"),
            status: "refused".into(),
            stderr: "not a MySQL-family engine and version".into(),
        })?;
        if let Some(reason) = dialect.unsupported() {
            return Err(EngineError::Command {
                command: format!("{engine} {version}"),
                status: "refused".into(),
                stderr: reason,
            });
        }
        let programs = dialect.programs();
        let find = |program| find_engine_program(host, &dialect, version, program);
        let server_program = find(programs.server).await?;
        let installer = match programs.installer {
            Some(installer) => Some(find(installer).await?),
            None => None,
        };
        let dump_program = find(programs.dump).await?;
        let client_program = find(programs.client).await?;
        Ok(Self {
            host: host.clone(),
            name: name.to_string(),
            port,
            dialect,
            server_program,
            installer,
            dump_program,
            client_program,
            exposure: None,
        })
    }

    /// The same server, reached beyond loopback as `exposure` says.
    pub fn exposed(mut self, exposure: Option<std::sync::Arc<Exposure>>) -> Self {
        self.exposure = exposure;
        self
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn dir(&self) -> PathBuf {
        self.host.server_dir(&self.name)
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

    /// The server's own config (see [`Dialect::config`]). A replica's
    /// read-only setting is kept: a rewrite must not make it writable.
    async fn write_config(&self) -> Result<(), EngineError> {
        self.write_config_read_only(self.configured_read_only().await)
            .await
    }

    /// Whether the config file makes the server read-only from its start
    /// (a replica's; see [`Dialect::read_only_settings`]).
    async fn configured_read_only(&self) -> bool {
        let settings = self.dialect.read_only_settings();
        self.host
            .read_text(&self.config_file())
            .await
            .is_some_and(|text| text.lines().any(|line| settings.contains(&line.trim())))
    }

    /// The config, read-only at start or not. `SET GLOBAL read_only` alone
    /// lasts until the next restart, after which a replica would accept the
    /// application's writes while replication resumes, and diverge.
    async fn write_config_read_only(&self, read_only: bool) -> Result<(), EngineError> {
        self.host.private_dir(&self.dir()).await?;
        self.host.private_dir(&self.dir().join("run")).await?;
        self.host.private_dir(&self.dir().join("tmp")).await?;
        let tmp = self.dir().join("tmp").display().to_string();
        let (data, socket, pid, log) = (
            self.data_dir().display().to_string(),
            self.socket().display().to_string(),
            self.pid_file().display().to_string(),
            self.log_file().display().to_string(),
        );
        let earlier = self.host.read_text(&self.config_file()).await;
        let server_id = earlier
            .as_deref()
            .and_then(server_id_in_config)
            .unwrap_or_else(|| server_id_for(&self.name));
        let config = self.dialect.config(
            &dialect::ConfigPaths {
                data_dir: &data,
                socket: &socket,
                pid_file: &pid,
                log_file: &log,
                tmp_dir: &tmp,
            },
            &self.host.listen_list(),
            self.port,
            server_id,
        );
        let mut config = config;
        for line in self.tls_settings().await {
            config.push_str(&line);
            config.push('\n');
        }
        if read_only {
            // The server's section is the file's only one, so lines
            // appended belong to it.
            for line in self.dialect.read_only_settings() {
                config.push_str(line);
                config.push('\n');
            }
        }
        self.host
            .write_private_file(&self.config_file(), config.as_bytes())
            .await
    }

    fn pid_file(&self) -> PathBuf {
        self.dir().join("run").join("mysqld.pid")
    }

    fn log_file(&self) -> PathBuf {
        self.dir().join("mysqld.log")
    }

    /// The server's own log says why an initialisation failed; the tool's
    /// output only says that it did.
    async fn with_log(&self, error: EngineError) -> EngineError {
        match error {
            EngineError::Command {
                command,
                status,
                stderr,
            } => EngineError::Command {
                command,
                status,
                stderr: format!(
                    "{}\nserver log: {}",
                    stderr.lines().next().unwrap_or(""),
                    self.host.tail(&self.log_file(), LOG_LINES).await
                ),
            },
            other => other,
        }
    }

    /// The port an earlier provision of this server chose, if any.
    pub async fn earlier_port(host: &HostRef, name: &str) -> Option<u16> {
        let config = host
            .read_text(&host.server_dir(name).join("my.cnf"))
            .await?;
        port_in_config(&config)
    }

    /// The error for a failed query or connection on this server.
    fn error(&self) -> impl Fn(mysql_async::Error) -> EngineError + use<> {
        let port = self.port;
        move |source| EngineError::Mysql { port, source }
    }

    /// A connection as root over the server's socket (relayed from an ssh
    /// host: root has no account over TCP).
    async fn root(&self, password: Option<&str>) -> Result<mysql_async::Conn, EngineError> {
        let socket = self.host.admin_socket(&self.socket()).await?;
        let options = mysql_async::OptsBuilder::default()
            .socket(Some(socket.display().to_string()))
            .user(Some("root"))
            .pass(password.map(str::to_string))
            .prefer_socket(true);
        mysql_async::Conn::new(options).await.map_err(self.error())
    }

    /// A connection over TCP, as `user`.
    pub async fn connect(
        &self,
        user: &str,
        password: &str,
        database: &str,
    ) -> Result<mysql_async::Conn, EngineError> {
        let (address, port) = self.host.client_endpoint(self.port).await?;
        let options = mysql_async::OptsBuilder::default()
            .ip_or_hostname(address)
            .tcp_port(port)
            .user(Some(user))
            .pass(Some(password))
            .db_name(Some(database))
            .prefer_socket(false);
        mysql_async::Conn::new(options).await.map_err(self.error())
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
        self.check_installed_series().await?;
        self.write_config().await?;
        // The system schema's directory is the installer's last word: a
        // data directory without it is an unfinished one, made again.
        if !self.host.exists(&self.data_dir().join("mysql")).await {
            self.host.remove_dir(&self.data_dir()).await?;
            self.host.private_dir(&self.data_dir()).await?;
            let installer = self.installer.as_ref().unwrap_or(&self.server_program);
            let mut install = Program::new(&self.dir(), installer);
            private_files(&mut install);
            install
                .arg(format!("--defaults-file={}", self.config_file().display()))
                .args(self.dialect.install_args());
            if let Err(error) = self.host.run(&install, &program_name(installer)).await {
                return Err(self.with_log(error).await);
            }
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

    /// Refuses to build a server of another product or release series than
    /// the one asked for, or of a release older than the statements need
    /// (see [`Dialect::check_installed`]): the server program is found on
    /// PATH, whatever it is (Debian 12 ships MariaDB 10.11 only).
    async fn check_installed_series(&self) -> Result<(), EngineError> {
        // It belongs to no server, so its `HOME` is the servers' directory.
        let mut ask = Program::new(&self.host.servers_dir(), &self.server_program);
        ask.arg("--version");
        let said = self
            .host
            .run(
                &ask,
                &format!("{} --version", program_name(&self.server_program)),
            )
            .await?;
        let missing = |looked: String, remedy: String| EngineError::MissingBinary {
            program: program_name(&self.server_program),
            engine: self.dialect.engine.to_string(),
            version: format!("{}.{}", self.dialect.series.0, self.dialect.series.1),
            looked,
            remedy,
        };
        match dialect::installed_release(&said) {
            Some(installed) => self.dialect.check_installed(&installed).map_err(|remedy| {
                let (major, minor, patch) = installed.release;
                missing(
                    format!(
                        "{}, which is {major}.{minor}.{patch}, {}",
                        self.server_program.display(),
                        installed.engine.product_name()
                    ),
                    remedy,
                )
            }),
            None => Err(missing(
                format!(
                    "{}, whose version is unreadable",
                    self.server_program.display()
                ),
                self.dialect.availability().remedy.into(),
            )),
        }
    }

    /// Starts the server detached (it outlives dbgroups) and waits for it.
    pub async fn ensure_running(&self, admin_password: &str) -> Result<(), EngineError> {
        if self.is_running(admin_password).await {
            return Ok(());
        }
        let mut start = Program::new(&self.dir(), &self.server_program);
        private_files(&mut start);
        start
            .arg(format!("--defaults-file={}", self.config_file().display()))
            .stdout_null();
        // Not waited for: the server runs in the foreground of its own group.
        self.host
            .start_server(
                &self.name,
                &start,
                crate::host::ServerStart::Foreground,
                &self.server_program.display().to_string(),
            )
            .await?;
        let answering = wait_until(&format!("{} to answer", self.name), 120, || async {
            Ok(self.is_running(admin_password).await)
        })
        .await;
        match answering {
            Ok(()) => Ok(()),
            Err(_) => Err(EngineError::Command {
                command: program_name(&self.server_program),
                status: "not answering after 120 s".into(),
                stderr: self.host.tail(&self.log_file(), LOG_LINES).await,
            }),
        }
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
        // Before the first provision finished, root has no password yet.
        let conn = match self.root(Some(admin_password)).await {
            Ok(conn) => conn,
            Err(_) => self.root(None).await?,
        };
        let sources = self.sources().await?;
        let reach = sources.reach();
        let mut statements = self.dialect.account_statements(&dialect::Accounts {
            admin_password,
            username,
            password,
            database,
            replication_user: REPLICATION_USER,
            replication_password,
            reach,
        });
        let (conn, stale) = self
            .stale_accounts(
                conn,
                &[
                    (username, reach.app_hosts()),
                    (REPLICATION_USER, reach.replication_hosts()),
                ],
            )
            .await?;
        statements.extend(stale);
        // A restarted replica is read-only from its config, and its
        // accounts are still set by root.
        let statements = self
            .dialect
            .as_root_on_replica(statements, self.configured_read_only().await);
        self.execute(conn, &statements).await
    }

    /// The bytes a dump of `database` copies (data and indexes).
    pub async fn data_size(
        &self,
        admin_password: &str,
        database: &str,
    ) -> Result<u64, EngineError> {
        let mut conn = self.root(Some(admin_password)).await?;
        for setting in self.dialect.size_session_settings() {
            conn.query_drop(*setting).await.map_err(self.error())?;
        }
        let bytes: Option<Option<u64>> = conn
            .exec_first(
                "SELECT CAST(SUM(DATA_LENGTH + INDEX_LENGTH) AS UNSIGNED) FROM information_schema.TABLES WHERE TABLE_SCHEMA = ?",
                (checked(database)?,),
            )
            .await
            .map_err(self.error())?;
        let _ = conn.disconnect().await;
        Ok(bytes.flatten().unwrap_or(0))
    }

    /// How many anonymous (nameless) accounts exist: provisioning removes
    /// them, and the reliability checks verify it.
    pub async fn anonymous_accounts(&self, admin_password: &str) -> Result<i64, EngineError> {
        let mut conn = self.root(Some(admin_password)).await?;
        let count: Option<i64> = conn
            // mysql.user is a table on MySQL and a view on MariaDB.
            .query_first("SELECT COUNT(*) FROM mysql.user WHERE User = ''")
            .await
            .map_err(self.error())?;
        let _ = conn.disconnect().await;
        Ok(count.unwrap_or(0))
    }

    pub async fn ensure_stopped(&self, admin_password: &str) -> Result<(), EngineError> {
        let Ok(mut conn) = self.root(Some(admin_password)).await else {
            return Ok(());
        };
        // SHUTDOWN ends the connection instead of answering.
        let _ = conn.query_drop("SHUTDOWN").await;
        let pid_file = self.pid_file();
        wait_until(&format!("shutdown of {}", self.name), 120, || async {
            Ok(!self.host.exists(&pid_file).await && !self.is_running(admin_password).await)
        })
        .await
    }

    /// Each base table of `database` and its rows, counted (not the
    /// statistics' estimate). Names are quoted with backticks doubled:
    /// they are the application's, never trusted as SQL.
    pub async fn table_rows(
        &self,
        admin_password: &str,
        database: &str,
    ) -> Result<std::collections::BTreeMap<String, u64>, EngineError> {
        let mut conn = self.root(Some(admin_password)).await?;
        let tables: Vec<String> = conn
            .exec(
                "SELECT table_name FROM information_schema.tables \
                 WHERE table_schema = ? AND table_type = 'BASE TABLE' ORDER BY 1",
                (database,),
            )
            .await
            .map_err(self.error())?;
        let quote = |name: &str| format!("`{}`", name.replace('`', "``"));
        let mut rows = std::collections::BTreeMap::new();
        for table in tables {
            let count: Option<u64> = conn
                .query_first(format!(
                    "SELECT COUNT(*) FROM {}.{}",
                    quote(database),
                    quote(&table)
                ))
                .await
                .map_err(self.error())?;
            rows.insert(table, count.unwrap_or(0));
        }
        let _ = conn.disconnect().await;
        Ok(rows)
    }
}

impl MysqlServer {
    /// A client defaults file holding root's password, for the command-line
    /// tools: the password never appears in an argument.
    async fn client_defaults(&self, admin_password: &str) -> Result<PathBuf, EngineError> {
        let path = self.dir().join("client.cnf");
        let text = format!(
            "[client]\nuser = root\npassword = {admin_password}\nsocket = {}\n",
            self.socket().display()
        );
        self.host.write_private_file(&path, text.as_bytes()).await?;
        Ok(path)
    }

    /// A consistent logical dump of `database` (one transaction) that
    /// records the GTID position it corresponds to.
    pub async fn dump_to(
        &self,
        staging: &Path,
        admin_password: &str,
        database: &str,
    ) -> Result<(), EngineError> {
        let target = staging.join("dump.sql");
        if self.host.is_file(&target).await {
            return Ok(());
        }
        self.host.private_dir(staging).await?;
        let defaults = self.client_defaults(admin_password).await?;
        let partial = staging.join("dump.sql.partial");
        let mut dump = Program::new(&self.dir(), &self.dump_program);
        dump.arg(format!("--defaults-extra-file={}", defaults.display()))
            .args(self.dialect.dump_args(checked(database)?))
            .arg(format!("--result-file={}", partial.display()));
        let result = self
            .host
            .run_stoppable(&dump, &program_name(&self.dump_program))
            .await;
        let _ = self.host.remove_file(&defaults).await;
        result?;
        self.host.rename(&partial, &target).await
    }

    /// [`MysqlServer::dump_to`], taken on `into` (another host, where the
    /// copy lands) by that host's dump tool against this server over TCP,
    /// as the replication account given what a dump needs: the data goes
    /// from this host to that one and never through the machine running
    /// dbgroups. Its client file, with the password, lives in the staging
    /// entry there (0600) and is removed after.
    pub async fn dump_to_host(
        &self,
        into: &HostRef,
        staging: &Path,
        admin_password: &str,
        replication_password: &str,
        database: &str,
    ) -> Result<(), EngineError> {
        let target = staging.join("dump.sql");
        if into.is_file(&target).await {
            return Ok(());
        }
        let database = checked(database)?;
        checked(replication_password)?;
        let sources = self.sources().await?;
        let grants = self.dialect.as_root_on_replica(
            self.dialect
                .copy_grants(REPLICATION_USER, database, &sources.reach()),
            self.configured_read_only().await,
        );
        self.root_query(admin_password, &grants).await?;
        let version = format!("{}.{}", self.dialect.series.0, self.dialect.series.1);
        let dump_program =
            find_engine_program(into, &self.dialect, &version, self.dialect.programs().dump)
                .await?;
        into.private_dir(staging).await?;
        let defaults = staging.join("client.cnf");
        let mut text = format!(
            "[client]\nuser = {REPLICATION_USER}\npassword = {replication_password}\nhost = {}\nport = {}\nprotocol = TCP\n",
            self.host.dial_address(),
            self.port
        );
        // Over TLS, verified against this server's authority, written
        // beside the dump.
        if let Some(exposure) = &self.exposure
            && self.files().has_certificate().await
        {
            let authority = staging.join("authority.crt");
            into.write_private_file(&authority, exposure.authority.as_bytes())
                .await?;
            text.push_str(
                &self
                    .dialect
                    .client_tls_options(&authority.display().to_string()),
            );
        }
        into.write_private_file(&defaults, text.as_bytes()).await?;
        let partial = staging.join("dump.sql.partial");
        let mut dump = Program::new(staging, &dump_program);
        dump.arg(format!("--defaults-extra-file={}", defaults.display()))
            .args(self.dialect.dump_args(database))
            .arg(format!("--result-file={}", partial.display()));
        let result = into
            .run_stoppable(
                &dump,
                &format!("{} on {}", program_name(&dump_program), into.name()),
            )
            .await;
        let _ = into.remove_file(&defaults).await;
        result?;
        into.rename(&partial, &target).await
    }

    /// The GTID position a dump was taken at, when the replica must be told
    /// it (MariaDB; MySQL auto-positions from the dump's GTID_PURGED).
    /// MariaDB writes it at the end of the dump, so only the tail is read,
    /// by coreutils' `tail` on the dump's host (found on the system `PATH`
    /// every program gets): the dump may be far larger than memory, and the
    /// host has no call that reads part of a file.
    pub async fn dump_gtid_position(&self, staging: &Path) -> Result<Option<String>, EngineError> {
        let path = staging.join("dump.sql");
        let mut read_tail = Program::new(&self.dir(), Path::new("tail"));
        read_tail
            .arg(format!("--bytes={DUMP_TAIL_BYTES}"))
            .arg(&path);
        let tail = self.host.run(&read_tail, "tail dump.sql").await?;
        self.dialect
            .gtid_position(&tail)
            .ok_or_else(|| EngineError::Command {
                command: program_name(&self.dump_program),
                status: "incomplete".into(),
                stderr: "the dump does not record a GTID position".into(),
            })
    }

    /// Loads a dump without writing it to this server's own binary log, so
    /// the replica's GTID state stays its master's.
    ///
    /// Replication is stopped and reset first, and read-only turned off:
    /// replication threads left running would go on applying (and, with
    /// `log_slave_updates`, binlogging) the old master's events during the
    /// load, so the replica's data and GTID history would no longer be the
    /// dump's, and the next `START SLAVE` fails as "out-of-order" or
    /// silently lacks rows.
    pub async fn restore_dump(
        &self,
        staging: &Path,
        admin_password: &str,
    ) -> Result<(), EngineError> {
        self.write_config_read_only(false).await?;
        self.root_query(admin_password, &self.dialect.restore_preamble())
            .await?;
        let dump = staging.join("dump.sql");
        let defaults = self.client_defaults(admin_password).await?;
        let mut load = Program::new(&self.dir(), &self.client_program);
        load.arg(format!("--defaults-extra-file={}", defaults.display()))
            .arg(format!(
                "--init-command={}",
                self.dialect.restore_init_command()
            ))
            .stdin_from(&dump);
        let result = self
            .host
            .run_stoppable(
                &load,
                &format!("{} < dump.sql", program_name(&self.client_program)),
            )
            .await;
        let _ = self.host.remove_file(&defaults).await;
        result.map(drop)
    }

    /// Gives the application's account a database that a copy brought
    /// under another name. Kept out of the binary log like the set-up.
    pub async fn grant_database(
        &self,
        admin_password: &str,
        username: &str,
        database: &str,
    ) -> Result<(), EngineError> {
        let (username, database) = (checked(username)?, checked(database)?);
        let mut statements = vec!["SET SESSION sql_log_bin = 0".to_string()];
        for from in self.sources().await?.reach().app_hosts() {
            statements.push(access::grant_all(username, database, &from));
        }
        let statements = self
            .dialect
            .as_root_on_replica(statements, self.configured_read_only().await);
        self.root_query(admin_password, &statements).await
    }

    async fn root_query(
        &self,
        admin_password: &str,
        statements: &[String],
    ) -> Result<(), EngineError> {
        let conn = self.root(Some(admin_password)).await?;
        self.execute(conn, statements).await
    }

    /// Runs `statements` in order on `conn`, then lets it go.
    async fn execute(
        &self,
        mut conn: mysql_async::Conn,
        statements: &[String],
    ) -> Result<(), EngineError> {
        for statement in statements {
            conn.query_drop(statement).await.map_err(self.error())?;
        }
        let _ = conn.disconnect().await;
        Ok(())
    }

    /// Follows `master` (from `gtid_position` where the dialect needs
    /// it), read-only (persisted in the config, so a restart keeps it), and
    /// returns once both replication threads run and the replica has
    /// applied everything the master had when it started following (which
    /// is past the dump's position). A replica that fails on the way fails
    /// the step with the server's reason.
    pub async fn enslave_to(
        &self,
        master: &MysqlServer,
        master_admin_password: &str,
        admin_password: &str,
        replication_password: &str,
        gtid_position: Option<&str>,
    ) -> Result<(), EngineError> {
        checked(replication_password)?;
        if let Some(position) = gtid_position {
            let position_is_safe = position
                .chars()
                .all(|c| c.is_ascii_digit() || c == '-' || c == ',');
            if !position_is_safe {
                return Err(EngineError::Command {
                    command: "CHANGE MASTER".into(),
                    status: "refused".into(),
                    stderr: format!("\"{position}\" is not a GTID position"),
                });
            }
        }
        let master_address = master.host.dial_address();
        // The master's certificate is verified against its own
        // application's authority (another application's, across them).
        // A master made on its host before dbgroups served TLS has no
        // certificate, and serves plain connections only.
        let authority = match &master.exposure {
            Some(exposure) if master.files().has_certificate().await => Some(
                self.files()
                    .trust_upstream(&exposure.authority)
                    .await?
                    .display()
                    .to_string(),
            ),
            _ => None,
        };
        let statements = self.dialect.enslave_statements(
            &dialect::Source {
                host: &master_address,
                port: master.port,
                user: REPLICATION_USER,
                password: replication_password,
                authority: authority.as_deref(),
            },
            gtid_position,
        );
        self.write_config_read_only(true).await?;
        self.root_query(admin_password, &statements).await?;
        self.wait_replicating(admin_password).await?;
        let target = master.gtid_executed(master_admin_password).await?;
        self.wait_applied(admin_password, &target).await?;
        // Caught up, and still both threads run: nothing failed meanwhile.
        self.wait_replicating(admin_password).await
    }

    /// Waits until both replication threads run; a thread that stopped on
    /// an error fails at once with the server's words.
    pub async fn wait_replicating(&self, admin_password: &str) -> Result<(), EngineError> {
        let waited = wait_until(
            &format!("replication threads of {}", self.name),
            120,
            || async {
                let status = self.replication(admin_password).await?;
                replicating(status.as_ref())
            },
        )
        .await;
        // A replica still retrying its master at the deadline says why.
        if let Err(EngineError::Timeout { .. }) = &waited
            && let Ok(Some(ReplicaStatus {
                last_error: Some(error),
                ..
            })) = self.replication(admin_password).await
        {
            return Err(EngineError::Command {
                command: "START REPLICA".into(),
                status: "not replicating after 120 s".into(),
                stderr: error,
            });
        }
        waited
    }

    /// The GTID set this server has executed (its binlog's position).
    async fn gtid_executed(&self, admin_password: &str) -> Result<String, EngineError> {
        let mut conn = self.root(Some(admin_password)).await?;
        let position: Option<Option<String>> = conn
            .query_first(self.dialect.executed_gtids_query())
            .await
            .map_err(self.error())?;
        let _ = conn.disconnect().await;
        Ok(position.flatten().unwrap_or_default())
    }

    /// Waits until this replica has applied `target` (a GTID set of its
    /// master), a second at a time so a replication error ends the wait.
    async fn wait_applied(&self, admin_password: &str, target: &str) -> Result<(), EngineError> {
        if target.trim().is_empty() {
            return Ok(());
        }
        const SECONDS: u64 = 600;
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(SECONDS);
        let mut conn = self.root(Some(admin_password)).await?;
        let result = loop {
            // The set goes as a parameter: never spliced into SQL.
            let waited: Result<Option<Option<i64>>, _> = conn
                .exec_first(self.dialect.wait_for_gtids_query(), (target, 1))
                .await;
            match waited.map_err(self.error()) {
                Ok(Some(Some(0))) => break Ok(()),
                Ok(_) => {}
                Err(error) => break Err(error),
            }
            let status = match self.replication(admin_password).await {
                Ok(status) => status,
                Err(error) => break Err(error),
            };
            if let Err(error) = replicating(status.as_ref()) {
                break Err(error);
            }
            if tokio::time::Instant::now() >= deadline {
                break Err(EngineError::Timeout {
                    what: format!("{} to catch up with its master", self.name),
                    seconds: SECONDS,
                });
            }
        };
        let _ = conn.disconnect().await;
        result
    }

    /// Stops following; the server keeps its data and accepts writes, also
    /// after a restart (the config no longer makes it read-only).
    pub async fn detach(&self, admin_password: &str) -> Result<(), EngineError> {
        self.write_config_read_only(false).await?;
        self.root_query(admin_password, &self.dialect.detach_statements())
            .await
    }

    /// Starts the server; a replica's start is done once it replicates
    /// again (both threads), or fails with the server's reason.
    pub async fn ensure_running_and_replicating(
        &self,
        admin_password: &str,
    ) -> Result<(), EngineError> {
        self.ensure_running(admin_password).await?;
        if self.replication(admin_password).await?.is_some() {
            self.wait_replicating(admin_password).await?;
        }
        Ok(())
    }

    /// The replica's status, or `None` when the server follows nobody.
    pub async fn replication(
        &self,
        admin_password: &str,
    ) -> Result<Option<ReplicaStatus>, EngineError> {
        let mut conn = self.root(Some(admin_password)).await?;
        let row: Option<mysql_async::Row> = conn
            .query_first(self.dialect.status_query())
            .await
            .map_err(self.error())?;
        let _ = conn.disconnect().await;
        Ok(row.map(|row| {
            ReplicaStatus::from_columns(|column| {
                row.get_opt::<Option<String>, &str>(column)
                    .and_then(Result::ok)
                    .flatten()
            })
        }))
    }
}

/// Whether a replica's status says it replicates (`Ok(true)`), not yet
/// (`Ok(false)`), or has stopped on an error (the server's words).
/// A replica retrying a connection its master refused or lost is "not
/// yet": it reconnects by itself every 2 s (a master that starts after it,
/// as in a host's reboot), and the wait's deadline bounds it.
fn replicating(status: Option<&ReplicaStatus>) -> Result<bool, EngineError> {
    if status.is_some_and(|s| s.reconnecting) {
        return Ok(false);
    }
    match status.map(ReplicaStatus::verdict) {
        Some(dialect::Replicating::Yes) => Ok(true),
        Some(dialect::Replicating::Failed(error)) => Err(EngineError::Command {
            command: "START REPLICA".into(),
            status: "replication stopped".into(),
            stderr: error,
        }),
        _ => Ok(false),
    }
}

/// The server's own files private to its user: its log, binary logs and
/// tables are made 0660 by default (the mysys library's `my_umask`), and
/// these variables are the modes it reads instead (OR-ed with 0600 and
/// 0700, so they can only add the owner's bits).
fn private_files(program: &mut Program) {
    program.env("UMASK", "0600").env("UMASK_DIR", "0700");
}

/// `program` on `host`, refused when it is MariaDB's under a MySQL name, or
/// the error saying what to install.
async fn find_engine_program(
    host: &HostRef,
    dialect: &Dialect,
    version: &str,
    program: &str,
) -> Result<PathBuf, EngineError> {
    let engine = dialect.engine;
    let found = host.find_program(&[program]).await;
    // Debian's MariaDB installs `mysqld`, `mysql` and `mysqldump` as links
    // to its own programs, which speak another dialect.
    let mariadb_in_disguise = match &found {
        Some(path) if engine != Engine::Mariadb => is_mariadb_program(host, path).await,
        _ => false,
    };
    match found {
        Some(path) if !mariadb_in_disguise => Ok(path),
        _ => Err(EngineError::MissingBinary {
            program: program.into(),
            engine: engine.to_string(),
            version: version.into(),
            looked: if mariadb_in_disguise {
                format!("PATH, /usr/sbin and /usr/local/sbin; the {program} found is MariaDB's")
            } else {
                "PATH, /usr/sbin and /usr/local/sbin".into()
            },
            remedy: dialect.availability().remedy.into(),
        }),
    }
}

/// Whether a program on `host` is MariaDB's under a MySQL name (a link to
/// `mariadbd`, `mariadb` or `mariadb-dump`). The link is resolved on the
/// host by coreutils' `readlink -f` (found on the system `PATH` every
/// program gets): the host has no call that resolves a path.
pub async fn is_mariadb_program(host: &HostRef, path: &Path) -> bool {
    // It belongs to no server, so its `HOME` is the servers' directory.
    let mut resolve = Program::new(&host.servers_dir(), Path::new("readlink"));
    resolve.arg("-f").arg(path);
    host.run(&resolve, "readlink -f")
        .await
        .ok()
        .and_then(|real| {
            Path::new(real.trim_end_matches('\n'))
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
        })
        .is_some_and(|name| name.starts_with("mariadb"))
}

/// The `server_id` of a server named `name` (its unique name): the same
/// on every run, and distinct among the servers that replicate with it
/// (a replica skips events carrying its own id). Not the port: on hosts,
/// servers share the engine's default port. FNV-1a, never 0 (a server
/// with id 0 refuses to replicate).
pub fn server_id_for(name: &str) -> u32 {
    let hash = name.bytes().fold(0x811c_9dc5_u32, |hash, byte| {
        (hash ^ u32::from(byte)).wrapping_mul(0x0100_0193)
    });
    hash.max(1)
}

/// The `server_id` a config file written by [`MysqlServer`] names: kept
/// once chosen, as GTIDs carry it.
fn server_id_in_config(text: &str) -> Option<u32> {
    text.lines().find_map(|line| {
        let rest = line.trim().strip_prefix("server_id")?;
        rest.trim_start_matches([' ', '=']).trim().parse().ok()
    })
}

/// The port a config file written by [`MysqlServer`] names (`port = 3306`).
pub use crate::local::port_in_config;

fn program_name(path: &Path) -> String {
    path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(io_running: bool, last_error: Option<&str>, reconnecting: bool) -> ReplicaStatus {
        ReplicaStatus {
            io_running,
            sql_running: true,
            seconds_behind: None,
            last_error: last_error.map(str::to_string),
            reconnecting,
        }
    }

    #[test]
    fn the_port_of_an_earlier_config_is_read_back() {
        let config = "# Written by dbgroups; changes here are overwritten.\n[mariadbd]\ndatadir = /srv/db/data\nport = 40002\nserver_id = 40002\n";
        assert_eq!(port_in_config(config), Some(40002));
        assert_eq!(port_in_config("[mariadbd]\n"), None);
        assert_eq!(server_id_in_config(config), Some(40002));
    }

    #[test]
    fn server_ids_are_stable_and_differ_between_names() {
        assert_eq!(server_id_for("shop-db-1"), server_id_for("shop-db-1"));
        let ids: std::collections::BTreeSet<u32> = (1..=50)
            .map(|n| server_id_for(&format!("shop-db-replica-{n}")))
            .collect();
        assert_eq!(ids.len(), 50, "fifty replicas, fifty ids");
        assert!(!ids.contains(&0));
    }

    #[test]
    fn a_replica_retrying_its_master_is_waited_for_and_a_stopped_one_fails() {
        let lost = "error reconnecting to master 'replicator@192.0.2.10:3306' - retry-time: 2";
        assert!(matches!(
            replicating(Some(&status(false, Some(lost), true))),
            Ok(false)
        ));
        assert!(replicating(Some(&status(false, Some("Access denied"), false))).is_err());
        assert!(matches!(
            replicating(Some(&status(true, None, false))),
            Ok(true)
        ));
        assert!(matches!(replicating(None), Ok(false)));
    }
}

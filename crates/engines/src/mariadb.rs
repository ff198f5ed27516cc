//! The MariaDB engine on the local provider (the MySQL family's member that
//! Debian ships): a config with the binary log and GTIDs on from the first
//! start and a unique `server_id`, so a master never needs a restart later;
//! `mariadb-install-db`; the anonymous accounts removed; the application's
//! and the replication accounts. Queries go through mysql_async.
//!
//! Started in issue 5: the executor applies MariaDB groups with it; MySQL
//! 8 and Percona syntax, refresh and `status` are still to come.

use std::path::{Path, PathBuf};

use mysql_async::prelude::Queryable;

use crate::error::{EngineError, io};
use crate::local::{LocalProvider, log_tail, run, wait_until};

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
        wait_until(&format!("{} to answer", self.name), 120, || async {
            Ok(self.is_running(admin_password).await)
        })
        .await
        .map_err(|_| EngineError::Command {
            command: "mariadbd".into(),
            status: "not answering after 120 s".into(),
            stderr: log_tail(&self.dir().join("mariadb.log")),
        })
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

    /// The bytes a dump of `database` copies (data and indexes).
    pub async fn data_size(
        &self,
        admin_password: &str,
        database: &str,
    ) -> Result<u64, EngineError> {
        let mut conn = self.root(Some(admin_password)).await?;
        let bytes: Option<Option<u64>> = conn
            .exec_first(
                "SELECT CAST(SUM(DATA_LENGTH + INDEX_LENGTH) AS UNSIGNED) FROM information_schema.TABLES WHERE TABLE_SCHEMA = ?",
                (checked(database)?,),
            )
            .await
            .map_err(|source| EngineError::Mariadb { port: self.port, source })?;
        let _ = conn.disconnect().await;
        Ok(bytes.flatten().unwrap_or(0))
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
        wait_until(&format!("shutdown of {}", self.name), 120, || async {
            Ok(!pid_file.exists() && !self.is_running(admin_password).await)
        })
        .await
    }
}

/// `SHOW SLAVE STATUS`, the fields dbgroups reads (MariaDB's names).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MariadbReplication {
    pub io_running: bool,
    pub sql_running: bool,
    pub seconds_behind_master: Option<u64>,
    /// The IO or SQL thread's last error, if any.
    pub last_error: Option<String>,
}

impl MariadbServer {
    /// A client defaults file holding root's password, for the command-line
    /// tools: the password never appears in an argument.
    fn client_defaults(&self, admin_password: &str) -> Result<PathBuf, EngineError> {
        let path = self.dir().join("client.cnf");
        let text = format!(
            "[client]\nuser = root\npassword = {admin_password}\nsocket = {}\n",
            self.socket().display()
        );
        self.provider.private_file(&path, text.as_bytes())?;
        Ok(path)
    }

    /// A consistent logical dump of `database` (one transaction), with the
    /// GTID position it corresponds to recorded in its header.
    pub async fn dump_to(
        &self,
        staging: &Path,
        admin_password: &str,
        database: &str,
    ) -> Result<(), EngineError> {
        let target = staging.join("dump.sql");
        if target.is_file() {
            return Ok(());
        }
        self.provider.private_dir(staging)?;
        let defaults = self.client_defaults(admin_password)?;
        let partial = staging.join("dump.sql.partial");
        let mut dump = self.provider.command(Path::new("/usr/bin/mariadb-dump"));
        dump.arg(format!("--defaults-extra-file={}", defaults.display()))
            .args([
                "--single-transaction",
                "--master-data=2",
                "--gtid",
                "--routines",
                "--triggers",
                "--databases",
            ])
            .arg(checked(database)?)
            .arg(format!("--result-file={}", partial.display()));
        let result = run(dump, "mariadb-dump").await;
        let _ = std::fs::remove_file(&defaults);
        result?;
        std::fs::rename(&partial, &target).map_err(io("finish the dump", &target))
    }

    /// The GTID position a dump was taken at. MariaDB writes it at the end
    /// of the dump ("printed later in the file"), so only the tail is read.
    pub fn dump_gtid_position(staging: &Path) -> Result<String, EngineError> {
        use std::io::{Read, Seek, SeekFrom};
        let path = staging.join("dump.sql");
        let mut file = std::fs::File::open(&path).map_err(io("read", &path))?;
        let length = file.metadata().map_err(io("read", &path))?.len();
        file.seek(SeekFrom::Start(length.saturating_sub(64 * 1024)))
            .map_err(io("read", &path))?;
        let mut tail = Vec::new();
        file.read_to_end(&mut tail).map_err(io("read", &path))?;
        let tail = String::from_utf8_lossy(&tail);
        tail.lines()
            .rev()
            .find_map(|line| {
                let rest = line.split("gtid_slave_pos='").nth(1)?;
                Some(rest.split('\'').next()?.to_string())
            })
            .ok_or_else(|| EngineError::Command {
                command: "mariadb-dump".into(),
                status: "incomplete".into(),
                stderr: "the dump does not record a GTID position".into(),
            })
    }

    /// Loads a dump without writing it to this server's own binary log, so
    /// the replica's GTID state stays its master's.
    pub async fn restore_dump(
        &self,
        staging: &Path,
        admin_password: &str,
    ) -> Result<(), EngineError> {
        let dump = staging.join("dump.sql");
        let input = std::fs::File::open(&dump).map_err(io("read", &dump))?;
        let defaults = self.client_defaults(admin_password)?;
        let mut load = self.provider.command(Path::new("/usr/bin/mariadb"));
        load.arg(format!("--defaults-extra-file={}", defaults.display()))
            .arg("--init-command=SET SESSION sql_log_bin = 0")
            .stdin(std::process::Stdio::from(input));
        let result = run(load, "mariadb < dump.sql").await;
        let _ = std::fs::remove_file(&defaults);
        result.map(drop)
    }

    async fn root_query(
        &self,
        admin_password: &str,
        statements: &[String],
    ) -> Result<(), EngineError> {
        let mut conn = self.root(Some(admin_password)).await?;
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

    /// Follows `master` from `gtid_position` (GTID, `slave_pos`), read-only,
    /// and waits until both replication threads run.
    pub async fn enslave_to(
        &self,
        master: &MariadbServer,
        admin_password: &str,
        replication_password: &str,
        gtid_position: &str,
    ) -> Result<(), EngineError> {
        checked(replication_password)?;
        let position_is_safe = gtid_position
            .chars()
            .all(|c| c.is_ascii_digit() || c == '-' || c == ',');
        if !position_is_safe {
            return Err(EngineError::Command {
                command: "CHANGE MASTER".into(),
                status: "refused".into(),
                stderr: format!("\"{gtid_position}\" is not a GTID position"),
            });
        }
        self.root_query(
            admin_password,
            &[
                "STOP SLAVE".into(),
                "RESET SLAVE ALL".into(),
                format!("SET GLOBAL gtid_slave_pos = '{gtid_position}'"),
                format!(
                    "CHANGE MASTER TO MASTER_HOST = '127.0.0.1', MASTER_PORT = {}, MASTER_USER = '{REPLICATION_USER}', \
                     MASTER_PASSWORD = '{replication_password}', MASTER_USE_GTID = slave_pos",
                    master.port
                ),
                "SET GLOBAL read_only = ON".into(),
                "START SLAVE".into(),
            ],
        )
        .await?;
        wait_until(
            &format!("replication threads of {}", self.name),
            120,
            || async {
                match self.replication(admin_password).await? {
                    Some(status) if status.io_running && status.sql_running => Ok(true),
                    Some(MariadbReplication {
                        last_error: Some(error),
                        ..
                    }) if !error.is_empty() => Err(EngineError::Command {
                        command: "START SLAVE".into(),
                        status: "replication stopped".into(),
                        stderr: error,
                    }),
                    _ => Ok(false),
                }
            },
        )
        .await
    }

    /// Stops following; the server keeps its data and accepts writes.
    pub async fn detach(&self, admin_password: &str) -> Result<(), EngineError> {
        self.root_query(
            admin_password,
            &[
                "STOP SLAVE".into(),
                "RESET SLAVE ALL".into(),
                "SET GLOBAL read_only = OFF".into(),
            ],
        )
        .await
    }

    /// `SHOW SLAVE STATUS`, or `None` when the server follows nobody.
    pub async fn replication(
        &self,
        admin_password: &str,
    ) -> Result<Option<MariadbReplication>, EngineError> {
        let mut conn = self.root(Some(admin_password)).await?;
        let row: Option<mysql_async::Row> =
            conn.query_first("SHOW SLAVE STATUS")
                .await
                .map_err(|source| EngineError::Mariadb {
                    port: self.port,
                    source,
                })?;
        let _ = conn.disconnect().await;
        Ok(row.map(|row| {
            let text = |column: &str| -> Option<String> {
                row.get_opt::<Option<String>, &str>(column)
                    .and_then(Result::ok)
                    .flatten()
            };
            let errors: Vec<String> = ["Last_IO_Error", "Last_SQL_Error"]
                .iter()
                .filter_map(|c| text(c))
                .filter(|e| !e.is_empty())
                .collect();
            MariadbReplication {
                io_running: text("Slave_IO_Running").as_deref() == Some("Yes"),
                sql_running: text("Slave_SQL_Running").as_deref() == Some("Yes"),
                seconds_behind_master: text("Seconds_Behind_Master").and_then(|s| s.parse().ok()),
                last_error: (!errors.is_empty()).then(|| errors.join("; ")),
            }
        }))
    }
}

//! What the MySQL family's members say differently: MariaDB, MySQL and
//! Percona Server share a wire protocol and most SQL, but not the words for
//! replication, GTIDs or their tools. Everything here is a pure function of
//! the [`Dialect`] and its inputs, so the statements for servers that cannot
//! run on this machine (MySQL 8, Percona) are tested against their manuals
//! as text (tests/integration/mysql_dialect.rs).
//!
//! References, per statement: MariaDB "CHANGE MASTER TO" and "GTID"
//! (mariadb.com/kb/en/gtid); MySQL 8.4 manual §19.1.3 (GTID replication),
//! "CHANGE REPLICATION SOURCE TO", "RESET BINARY LOGS AND GTIDS",
//! "SHOW REPLICA STATUS", mysqldump `--source-data`/`--set-gtid-purged`;
//! MySQL 8.0 manual for `RESET MASTER` (8.0 has no RESET BINARY LOGS AND
//! GTIDS before 8.2). Percona Server 8 follows MySQL 8's syntax.

use dbgroups_manifest::Engine;
use dbgroups_manifest::catalogue::{self, Version};

pub use super::access::{AccountHost, Reach, TlsPaths};
use super::access::{account, grant_all};

/// One member of the family at one version: which words it uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dialect {
    pub engine: Engine,
    /// `(major, minor)` of the series, for syntax that changed within 8.x.
    pub series: (u32, u32),
}

/// The server's programs, by the name each distribution gives them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Programs {
    pub server: &'static str,
    pub dump: &'static str,
    pub client: &'static str,
    /// MariaDB has its own installer; MySQL initialises with the server
    /// binary (`mysqld --initialize-insecure`).
    pub installer: Option<&'static str>,
    /// The physical backup tool: MariaDB's `mariadb-backup` (Debian's
    /// `mariadb-backup` package), Percona XtraBackup for MySQL and Percona
    /// Server (not packaged by Debian).
    pub physical_backup: &'static str,
}

/// What to tell a user whose machine lacks the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Availability {
    /// The Debian package, when Debian ships one.
    pub debian_package: Option<&'static str>,
    pub remedy: &'static str,
}

impl Dialect {
    /// `None` for an engine outside the family.
    pub fn new(engine: Engine, version: &str) -> Option<Self> {
        if engine.db_type() != dbgroups_manifest::DbType::Mysql {
            return None;
        }
        let parsed = Version::parse(version)?;
        Some(Self {
            engine,
            series: (parsed.major, parsed.minor.unwrap_or(0)),
        })
    }

    pub(super) fn mariadb(&self) -> bool {
        self.engine == Engine::Mariadb
    }

    /// MySQL/Percona 8.0.26+ say SOURCE/REPLICA (the words arrived in
    /// 8.0.22, 8.0.23 and 8.0.26; [`Dialect::minimum_release`] refuses an
    /// 8.0 older than 8.0.26); 5.7 says MASTER/SLAVE.
    pub(super) fn source_replica_words(&self) -> bool {
        !self.mariadb() && self.series >= (8, 0)
    }

    /// Why this series cannot be served at all, and what would be
    /// ([`catalogue::unserved`], which the planner asks too).
    pub fn unsupported(&self) -> Option<String> {
        catalogue::unserved(
            self.engine,
            &Version {
                major: self.series.0,
                minor: Some(self.series.1),
                patch: None,
            },
        )
    }

    /// The oldest release of the series the statements work on, as
    /// `(major, minor, patch)` ([`catalogue::mysql_family_minimum`]: 8.0
    /// needs 8.0.26, 5.7 needs 5.7.8, MariaDB 10.4 needs 10.4.6).
    pub fn minimum_release(&self) -> (u32, u32, u32) {
        catalogue::mysql_family_minimum(self.engine, self.series.0, self.series.1).unwrap_or((
            self.series.0,
            self.series.1,
            0,
        ))
    }

    /// Whether the server found on this machine is this dialect's: the same
    /// product (MariaDB, Oracle's MySQL or Percona Server, told apart by
    /// `--version`), the same series, and at least the minimum release.
    /// The error says what is needed.
    pub fn check_installed(&self, installed: &Installed) -> Result<(), String> {
        let wanted = self.engine.product_name();
        let remedy = self.availability().remedy;
        if installed.engine != self.engine {
            return Err(format!(
                "that is {}, not {wanted}: install {wanted} ({remedy}), or set the group's engine to {}",
                installed.engine.product_name(),
                installed.engine
            ));
        }
        let (major, minor, _) = installed.release;
        if (major, minor) != self.series {
            return Err(format!(
                "install that release, or set the group's version to the installed one, {major}.{minor} ({remedy})"
            ));
        }
        let minimum = self.minimum_release();
        if installed.release < minimum {
            return Err(format!(
                "dbgroups needs {wanted} {}.{}.{} or later in this series (older releases lack words it sends, \
                 such as START REPLICA, CHANGE REPLICATION SOURCE TO and log_replica_updates on MySQL 8.0): upgrade it",
                minimum.0, minimum.1, minimum.2
            ));
        }
        Ok(())
    }

    pub fn programs(&self) -> Programs {
        if self.mariadb() {
            Programs {
                server: "mariadbd",
                dump: "mariadb-dump",
                client: "mariadb",
                installer: Some("mariadb-install-db"),
                physical_backup: "mariadb-backup",
            }
        } else {
            Programs {
                server: "mysqld",
                dump: "mysqldump",
                client: "mysql",
                installer: None,
                physical_backup: "xtrabackup",
            }
        }
    }

    pub fn availability(&self) -> Availability {
        match self.engine {
            Engine::Mariadb => Availability {
                debian_package: Some("mariadb-server"),
                remedy: "install the Debian package mariadb-server",
            },
            Engine::Percona => Availability {
                debian_package: None,
                remedy: "Percona Server is not packaged by Debian: install percona-server-server from Percona's repository (percona-release), or use engine: mariadb",
            },
            _ => Availability {
                debian_package: None,
                remedy: "MySQL is not packaged by Debian: install mysql-server from the MySQL APT repository (repo.mysql.com), or use engine: mariadb",
            },
        }
    }

    /// The option-file section the server reads.
    fn server_section(&self) -> &'static str {
        if self.mariadb() { "mariadbd" } else { "mysqld" }
    }

    /// The server's config: binary log and GTIDs on from the first start,
    /// so a master never restarts to gain a replica. `server_id` must be
    /// unique among servers that replicate; the caller chooses it.
    /// `listen` is the address the server binds (its host's).
    pub fn config(
        &self,
        paths: &ConfigPaths<'_>,
        listen: &str,
        port: u16,
        server_id: u32,
    ) -> String {
        let mut lines = vec![
            "# Written by dbgroups; changes here are overwritten.".to_string(),
            format!("[{}]", self.server_section()),
            format!("datadir = {}", paths.data_dir),
            format!("socket = {}", paths.socket),
            format!("pid-file = {}", paths.pid_file),
            format!("port = {port}"),
            format!("bind-address = {listen}"),
            format!("server_id = {server_id}"),
            "log_bin = binlog".to_string(),
            "skip_name_resolve = ON".to_string(),
            format!("log_error = {}", paths.log_file),
            // Servers initialised at the same moment collide on temporary
            // table names in a shared /tmp (seen with mariadb-install-db:
            // "Unknown table 'mysql.tmp_user_sys'"), so each has its own.
            format!("tmpdir = {}", paths.tmp_dir),
            "innodb_buffer_pool_size = 64M".to_string(),
        ];
        if self.mariadb() {
            // MariaDB's GTIDs are always on; strict mode refuses a replica
            // whose history diverged instead of silently skipping.
            lines.extend(
                [
                    "binlog_format = ROW",
                    "log_slave_updates = ON",
                    "gtid_strict_mode = ON",
                ]
                .map(String::from),
            );
        } else {
            // MySQL needs GTIDs switched on, and consistency enforced
            // first. ROW is the default binlog format (setting it is
            // deprecated from 8.0.34). The X Plugin would take port 33060
            // for every server; only the classic protocol is used.
            lines.extend(
                [
                    "gtid_mode = ON",
                    "enforce_gtid_consistency = ON",
                    if self.source_replica_words() {
                        "log_replica_updates = ON"
                    } else {
                        "log_slave_updates = ON"
                    },
                ]
                .map(String::from),
            );
            if self.series >= (8, 0) {
                lines.push("mysqlx = OFF".to_string());
            }
        }
        lines.join("\n") + "\n"
    }

    /// Arguments that initialise an empty data directory, after
    /// `--defaults-file` (to the installer, or to the server for MySQL).
    pub fn install_args(&self) -> &'static [&'static str] {
        if self.mariadb() {
            &["--auth-root-authentication-method=normal", "--skip-test-db"]
        } else {
            // root@localhost with an empty password, reachable only over
            // the socket until provisioning sets one; no anonymous users.
            &["--initialize-insecure"]
        }
    }

    /// The provisioning statements, run as root over the socket. Identifiers
    /// and secrets were checked to be plain words by the caller.
    pub fn account_statements(&self, accounts: &Accounts<'_>) -> Vec<String> {
        let Accounts {
            admin_password,
            username,
            password,
            database,
            replication_user,
            replication_password,
            reach,
        } = *accounts;
        // Anonymous accounts let anyone log in without a name, and
        // mariadb-install-db's root@127.0.0.1, root@::1 and root@<host>
        // (made by --auth-root-authentication-method=normal) have no
        // password and every privilege: only root@localhost, over the
        // socket and with its password, is kept.
        // MySQL's grant tables are not edited directly (a DELETE there is
        // not how accounts go, and the in-memory grants keep them): DROP
        // USER IF EXISTS (5.7.8+) names each. mysqld --initialize-insecure
        // makes only root@localhost, so these are what an older or
        // hand-made data directory could hold.
        let open_accounts = if self.mariadb() {
            "DELETE FROM mysql.global_priv WHERE User = '' OR (User = 'root' AND Host <> 'localhost')"
        } else {
            "DROP USER IF EXISTS ''@'localhost', ''@'%', 'root'@'%', 'root'@'127.0.0.1', 'root'@'::1'"
        };
        let mut statements = vec![
            // Binary-log nothing of the set-up: a replica gets its own
            // accounts, and on MySQL an empty GTID history lets a dump's
            // GTID_PURGED apply.
            "SET SESSION sql_log_bin = 0".to_string(),
            format!("ALTER USER 'root'@'localhost' IDENTIFIED BY '{admin_password}'"),
            open_accounts.to_string(),
            format!("CREATE DATABASE IF NOT EXISTS `{database}`"),
        ];
        for from in reach.app_hosts() {
            statements.extend(account(username, password, &from));
            statements.push(grant_all(username, database, &from));
        }
        for from in reach.replication_hosts() {
            statements.extend(account(replication_user, replication_password, &from));
            statements.push(format!(
                "GRANT REPLICATION SLAVE, REPLICATION CLIENT ON *.* TO '{replication_user}'@'{}'",
                from.host
            ));
        }
        statements.push("FLUSH PRIVILEGES".to_string());
        statements
    }

    /// The dump tool's arguments (after the defaults file), for a
    /// consistent snapshot of `database` that records its GTID position.
    /// What the replication account needs to dump `database` from another
    /// host (the dump runs where the copy lands, against the master over
    /// TCP; root exists only on the master's socket). It reads nothing the
    /// binary log it already receives does not carry, but for routines'
    /// definitions: `--single-transaction --master-data` takes a moment's
    /// global read lock (RELOAD) and reads the binary log position
    /// (REPLICATION CLIENT); `--routines`, `--triggers`, `--events` and
    /// views need their own privileges (MariaDB reads routines from
    /// `mysql.proc`; MySQL 8.0.20+ has SHOW_ROUTINE). Kept out of the
    /// binary log, as the accounts' set-up is.
    pub fn copy_grants(
        &self,
        replication_user: &str,
        database: &str,
        reach: &Reach<'_>,
    ) -> Vec<String> {
        let mut statements = vec!["SET SESSION sql_log_bin = 0".to_string()];
        for from in reach.replication_hosts() {
            let account = format!("'{replication_user}'@'{}'", from.host);
            statements.extend([
                format!("GRANT RELOAD, REPLICATION CLIENT ON *.* TO {account}"),
                format!(
                    "GRANT SELECT, SHOW VIEW, TRIGGER, EVENT, LOCK TABLES ON `{database}`.* TO {account}"
                ),
                if self.mariadb() {
                    format!("GRANT SELECT ON mysql.proc TO {account}")
                } else {
                    format!("GRANT SHOW_ROUTINE ON *.* TO {account}")
                },
            ]);
        }
        statements
    }

    pub fn dump_args(&self, database: &str) -> Vec<String> {
        let mut args: Vec<String> = vec!["--single-transaction".into()];
        if self.mariadb() {
            // --gtid makes --master-data write the GTID position.
            args.extend(["--master-data=2".into(), "--gtid".into()]);
        } else {
            // --source-data from 8.0.26; the GTID set goes into the dump as
            // SET @@GLOBAL.GTID_PURGED, which seeds the replica's history.
            args.push(if self.source_replica_words() {
                "--source-data=2".into()
            } else {
                "--master-data=2".into()
            });
            args.push("--set-gtid-purged=ON".into());
        }
        // --add-drop-database: the destination's data is replaced, not
        // merged (tables only it had would otherwise survive).
        args.extend(
            [
                "--routines",
                "--triggers",
                "--events",
                "--add-drop-database",
                "--databases",
            ]
            .map(String::from),
        );
        args.push(database.to_string());
        args
    }

    /// Statements run on a server before a dump replaces its data: its own
    /// binary log and GTID history go too. MySQL applies a dump's
    /// GTID_PURGED only over an empty history
    /// (ER_CANT_SET_GTID_PURGED_WHEN_GTID_EXECUTED_IS_NOT_EMPTY). On MariaDB
    /// with gtid_strict_mode, a replica whose binlog holds its own writes
    /// (say, from before it was enslaved) refuses its master's events as
    /// "out-of-order" GTIDs. Only a server whose data is being replaced
    /// runs this, and only a single-server group or a slave can be one, so
    /// no replica of it loses the history.
    pub fn before_restore(&self) -> Vec<String> {
        if self.mariadb() {
            vec!["RESET MASTER".into()]
        } else if self.series >= (8, 2) {
            // RESET BINARY LOGS AND GTIDS from 8.2.0; RESET MASTER is
            // deprecated there and gone in 8.4.
            vec!["RESET BINARY LOGS AND GTIDS".into()]
        } else {
            vec!["RESET MASTER".into()]
        }
    }

    /// Everything a server runs before a dump replaces its data, in order:
    /// replication stopped and reset (a channel still applying would write
    /// during the load, and its transactions make the dump's GTID_PURGED
    /// fail, MySQL error 3546), read-only off (`super_read_only` refuses the
    /// dump's DROP DATABASE and CREATE TABLE even to root, error 1290), and
    /// only then the binary log and GTID history reset.
    pub fn restore_preamble(&self) -> Vec<String> {
        let mut statements = self.detach_statements();
        statements.extend(self.before_restore());
        statements
    }

    /// Root's own statements on a server that may be a read-only replica
    /// (account set-up, grants): MySQL's `super_read_only` refuses them
    /// even to root (error 1290), so it is lifted around them while
    /// `read_only` stays on, which still refuses the application's account
    /// (it holds neither SUPER nor CONNECTION_ADMIN). MariaDB's `read_only`
    /// lets root through (READ ONLY ADMIN), so its statements are unchanged.
    pub fn as_root_on_replica(&self, statements: Vec<String>, read_only: bool) -> Vec<String> {
        if self.mariadb() || !read_only {
            return statements;
        }
        let mut wrapped = vec!["SET GLOBAL super_read_only = OFF".to_string()];
        wrapped.extend(statements);
        wrapped.push("SET GLOBAL super_read_only = ON".to_string());
        wrapped
    }

    /// Session settings before reading table sizes: MySQL 8 caches
    /// information_schema.TABLES statistics for a day
    /// (`information_schema_stats_expiry`, 8.0.3+), so a fresh table reads
    /// as empty; 0 reads the storage engine's current figures.
    pub fn size_session_settings(&self) -> &'static [&'static str] {
        if !self.mariadb() && self.series >= (8, 0) {
            &["SET SESSION information_schema_stats_expiry = 0"]
        } else {
            &[]
        }
    }

    /// The client's `--init-command` for loading a dump. MariaDB's dump
    /// does not turn the binary log off; MySQL's does it itself (its
    /// GTID_PURGED line needs the global GTID state untouched by the load).
    pub fn restore_init_command(&self) -> &'static str {
        "SET SESSION sql_log_bin = 0"
    }

    /// The GTID position a dump recorded, from its text (the tail for
    /// MariaDB, which writes it last). `None` for MySQL, whose replica
    /// learns the position from the dump's GTID_PURGED and auto-positions.
    pub fn gtid_position(&self, dump_tail: &str) -> Option<Option<String>> {
        if !self.mariadb() {
            return Some(None);
        }
        dump_tail
            .lines()
            .rev()
            .find_map(|line| {
                let rest = line.split("gtid_slave_pos='").nth(1)?;
                Some(rest.split('\'').next()?.to_string())
            })
            .map(Some)
    }

    /// The GTID position a physical copy ends at, from its
    /// `xtrabackup_binlog_info`: tab-separated binary log file, offset and
    /// GTID position (MariaDB: `0-1-42`; MySQL: a GTID set, which
    /// XtraBackup may break over lines after its commas). A master that
    /// has logged no GTID yet gives the file and offset alone: the empty
    /// position, from which the replica takes everything. `None` when it
    /// is not such a line, or holds anything but GTID characters.
    pub fn physical_copy_position(&self, binlog_info: &str) -> Option<String> {
        let mut fields = binlog_info.splitn(3, '\t');
        let (_file, offset) = (fields.next()?, fields.next()?);
        if offset.trim().is_empty() || !offset.trim().chars().all(|c| c.is_ascii_digit()) {
            return None;
        }
        let position: String = fields.next().unwrap_or("").split_whitespace().collect();
        let allowed = |c: char| {
            c.is_ascii_digit()
                || c == '-'
                || c == ','
                || (!self.mariadb() && (c.is_ascii_hexdigit() || c == ':'))
        };
        position.chars().all(allowed).then_some(position)
    }

    /// Statements that make a replica restored from a physical copy start
    /// from `position` when it follows: MariaDB's `gtid_slave_pos`
    /// (`MASTER_USE_GTID = slave_pos`); MySQL's `gtid_purged`, which must be
    /// empty first (auto-positioning then asks the source for the rest).
    pub fn physical_position_statements(&self, position: &str) -> Vec<String> {
        if self.mariadb() {
            vec![format!("SET GLOBAL gtid_slave_pos = '{position}'")]
        } else {
            let reset = if self.series >= (8, 4) {
                "RESET BINARY LOGS AND GTIDS"
            } else {
                "RESET MASTER"
            };
            vec![
                reset.to_string(),
                format!("SET GLOBAL gtid_purged = '{position}'"),
            ]
        }
    }

    /// Follow `source`, read-only, from the dump's position.
    pub fn enslave_statements(
        &self,
        source: &Source<'_>,
        gtid_position: Option<&str>,
    ) -> Vec<String> {
        let Source {
            host,
            port,
            user,
            password,
            authority,
        } = *source;
        let tls = self.replication_tls(authority);
        if self.mariadb() {
            let mut statements = vec!["STOP SLAVE".to_string(), "RESET SLAVE ALL".to_string()];
            if let Some(position) = gtid_position {
                statements.push(format!("SET GLOBAL gtid_slave_pos = '{position}'"));
            }
            statements.extend([
                format!(
                    "CHANGE MASTER TO MASTER_HOST = '{host}', MASTER_PORT = {port}, MASTER_USER = '{user}', \
                     MASTER_PASSWORD = '{password}', MASTER_USE_GTID = slave_pos, \
                     MASTER_CONNECT_RETRY = {CONNECT_RETRY_SECONDS}{tls}"
                ),
                "SET GLOBAL read_only = ON".to_string(),
                "START SLAVE".to_string(),
            ]);
            statements
        } else if self.source_replica_words() {
            vec![
                "STOP REPLICA".to_string(),
                "RESET REPLICA ALL".to_string(),
                // caching_sha2_password over a connection without TLS needs
                // the source's RSA key to send the password.
                format!(
                    "CHANGE REPLICATION SOURCE TO SOURCE_HOST = '{host}', SOURCE_PORT = {port}, SOURCE_USER = '{user}', \
                     SOURCE_PASSWORD = '{password}', SOURCE_AUTO_POSITION = 1, GET_SOURCE_PUBLIC_KEY = 1, \
                     SOURCE_CONNECT_RETRY = {CONNECT_RETRY_SECONDS}{tls}"
                ),
                // super_read_only also holds off accounts with SUPER.
                "SET GLOBAL super_read_only = ON".to_string(),
                "START REPLICA".to_string(),
            ]
        } else {
            vec![
                "STOP SLAVE".to_string(),
                "RESET SLAVE ALL".to_string(),
                format!(
                    "CHANGE MASTER TO MASTER_HOST = '{host}', MASTER_PORT = {port}, MASTER_USER = '{user}', \
                     MASTER_PASSWORD = '{password}', MASTER_AUTO_POSITION = 1, \
                     MASTER_CONNECT_RETRY = {CONNECT_RETRY_SECONDS}{tls}"
                ),
                "SET GLOBAL super_read_only = ON".to_string(),
                "START SLAVE".to_string(),
            ]
        }
    }

    /// Stop following for good, keep the data, accept writes.
    pub fn detach_statements(&self) -> Vec<String> {
        let statements: &[&str] = if self.mariadb() {
            &[
                "STOP SLAVE",
                "RESET SLAVE ALL",
                "SET GLOBAL read_only = OFF",
            ]
        } else if self.source_replica_words() {
            // Turning super_read_only off leaves read_only on.
            &[
                "STOP REPLICA",
                "RESET REPLICA ALL",
                "SET GLOBAL super_read_only = OFF",
                "SET GLOBAL read_only = OFF",
            ]
        } else {
            &[
                "STOP SLAVE",
                "RESET SLAVE ALL",
                "SET GLOBAL super_read_only = OFF",
                "SET GLOBAL read_only = OFF",
            ]
        };
        statements.iter().map(|s| s.to_string()).collect()
    }

    /// The config lines (in the server's section) that make a replica
    /// read-only from its start, not only until the next restart.
    pub fn read_only_settings(&self) -> &'static [&'static str] {
        if self.mariadb() {
            &["read_only = ON"]
        } else {
            // super_read_only implies read_only, and holds off SUPER too.
            &["read_only = ON", "super_read_only = ON"]
        }
    }

    /// The GTID set a server has executed: MariaDB's binlog position
    /// (`gtid_binlog_pos`), MySQL's `gtid_executed`.
    pub fn executed_gtids_query(&self) -> &'static str {
        if self.mariadb() {
            "SELECT @@GLOBAL.gtid_binlog_pos"
        } else {
            "SELECT @@GLOBAL.gtid_executed"
        }
    }

    /// Waits up to the second parameter's seconds until a replica has
    /// applied the first parameter's GTID set; 0 means it has. MariaDB's
    /// MASTER_GTID_WAIT (0, or -1 on timeout); MySQL's
    /// WAIT_FOR_EXECUTED_GTID_SET (0, or 1 on timeout).
    pub fn wait_for_gtids_query(&self) -> &'static str {
        if self.mariadb() {
            "SELECT MASTER_GTID_WAIT(?, ?)"
        } else {
            "SELECT WAIT_FOR_EXECUTED_GTID_SET(?, ?)"
        }
    }

    /// The replication status query.
    pub fn status_query(&self) -> &'static str {
        if self.source_replica_words() {
            "SHOW REPLICA STATUS"
        } else {
            "SHOW SLAVE STATUS"
        }
    }
}

/// The release series (`major.minor`) a server program reports with
/// `--version` (`mariadbd  Ver 10.11.19-MariaDB-0+deb12u1 …`, `mysqld  Ver
/// 8.4.3 for Linux …`).
pub fn installed_series(version_output: &str) -> Option<(u32, u32)> {
    installed_release(version_output).map(|i| (i.release.0, i.release.1))
}

/// The server a program is, from its `--version`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Installed {
    /// MariaDB says `-MariaDB` after its number; Percona Server says
    /// `Percona Server` in its build comment (`Ver 8.0.36-28 for Linux on
    /// x86_64 (Percona Server (GPL), Release 28, …)`); anything else is
    /// Oracle's MySQL.
    pub engine: Engine,
    /// `(major, minor, patch)`; Percona's `-28` build number is not part
    /// of it (8.0.36-28 is built on MySQL 8.0.36).
    pub release: (u32, u32, u32),
}

/// What `mysqld --version` or `mariadbd --version` says it is.
pub fn installed_release(version_output: &str) -> Option<Installed> {
    let rest = version_output.split(" Ver ").nth(1)?.trim_start();
    let number: String = rest
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '.')
        .collect();
    let mut parts = number.split('.');
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next()?.parse().ok()?;
    let patch = parts.next().and_then(|p| p.parse().ok()).unwrap_or(0);
    let engine = if rest.contains("MariaDB") {
        Engine::Mariadb
    } else if rest.contains("Percona") {
        Engine::Percona
    } else {
        Engine::Mysql
    };
    Some(Installed {
        engine,
        release: (major, minor, patch),
    })
}

/// Where a server's files are, as its config names them.
#[derive(Debug, Clone, Copy)]
pub struct ConfigPaths<'a> {
    pub data_dir: &'a str,
    pub socket: &'a str,
    pub pid_file: &'a str,
    pub log_file: &'a str,
    pub tmp_dir: &'a str,
}

#[derive(Debug, Clone, Copy)]
pub struct Accounts<'a> {
    pub admin_password: &'a str,
    pub username: &'a str,
    pub password: &'a str,
    pub database: &'a str,
    pub replication_user: &'a str,
    pub replication_password: &'a str,
    /// Where the application's and the replication accounts log in from.
    pub reach: Reach<'a>,
}

/// The server a replica follows.
#[derive(Debug, Clone, Copy)]
pub struct Source<'a> {
    pub host: &'a str,
    pub port: u16,
    pub user: &'a str,
    pub password: &'a str,
    /// The file (on the replica's host) holding the authority the source's
    /// certificate is verified against: replication over TLS only. `None`
    /// on loopback.
    pub authority: Option<&'a str>,
}

/// A replica's status, from `SHOW REPLICA STATUS` or `SHOW SLAVE STATUS`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplicaStatus {
    pub io_running: bool,
    pub sql_running: bool,
    pub seconds_behind: Option<u64>,
    /// The IO or SQL thread's last error, if any.
    pub last_error: Option<String>,
    /// The IO thread is retrying a connection the network refused or lost
    /// (state `Connecting`, a client error such as 2003): it reconnects by
    /// itself once its source answers, every `CONNECT_RETRY` seconds.
    /// A refused password (1045) or a SQL error is not this.
    pub reconnecting: bool,
}

/// Client errors of a connection the network refused or lost, which the
/// IO thread retries: CR_CONNECTION_ERROR, CR_CONN_HOST_ERROR,
/// CR_UNKNOWN_HOST, CR_SERVER_GONE_ERROR, CR_SERVER_LOST
/// (https://dev.mysql.com/doc/mysql-errors/8.0/en/client-error-reference.html).
const RETRIED_CONNECTION_ERRORS: [&str; 5] = ["2002", "2003", "2005", "2006", "2013"];

/// How often a replica's IO thread retries its source, in seconds. The
/// servers' default is 60, so after a master restarts its replicas would
/// look broken for up to a minute; a refresh in that minute would plan a
/// needless re-sync.
pub const CONNECT_RETRY_SECONDS: u32 = 2;

/// What a replica's status says, for a step waiting on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Replicating {
    /// Both threads run.
    Yes,
    /// Not yet (starting, or connecting without an error yet).
    NotYet,
    /// A thread stopped or cannot connect, with the server's words.
    Failed(String),
}

impl ReplicaStatus {
    /// Both threads running is replicating, whatever an earlier error
    /// left in the status; otherwise an error is the server's reason.
    pub fn verdict(&self) -> Replicating {
        match self {
            ReplicaStatus {
                io_running: true,
                sql_running: true,
                ..
            } => Replicating::Yes,
            ReplicaStatus {
                last_error: Some(error),
                ..
            } if !error.is_empty() => Replicating::Failed(error.clone()),
            _ => Replicating::NotYet,
        }
    }

    /// Reads a status row by column name. MariaDB (and MySQL before
    /// 8.0.22) name the columns `Slave_*`/`*_Master`; MySQL 8 names them
    /// `Replica_*`/`*_Source`. Both are tried, so either server's row reads.
    pub fn from_columns(column: impl Fn(&str) -> Option<String>) -> Self {
        let either = |new: &str, old: &str| column(new).or_else(|| column(old));
        let errors: Vec<String> = ["Last_IO_Error", "Last_SQL_Error"]
            .iter()
            .filter_map(|c| column(c))
            .filter(|e| !e.is_empty())
            .collect();
        Self {
            io_running: either("Replica_IO_Running", "Slave_IO_Running").as_deref() == Some("Yes"),
            sql_running: either("Replica_SQL_Running", "Slave_SQL_Running").as_deref()
                == Some("Yes"),
            seconds_behind: either("Seconds_Behind_Source", "Seconds_Behind_Master")
                .and_then(|s| s.parse().ok()),
            last_error: (!errors.is_empty()).then(|| errors.join("; ")),
            reconnecting: either("Replica_IO_Running", "Slave_IO_Running").as_deref()
                == Some("Connecting")
                && column("Last_IO_Errno")
                    .is_some_and(|errno| RETRIED_CONNECTION_ERRORS.contains(&errno.as_str()))
                && column("Last_SQL_Errno").is_none_or(|errno| errno == "0"),
        }
    }
}

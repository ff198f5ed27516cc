//! The PostgreSQL engine on a host: initdb, a configuration that is
//! replication-ready from birth (so a master never needs a restart when it
//! gets its first slave), pg_ctl, and accounts through tokio-postgres.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::engine::{Certificate, Exposure};
use crate::error::{EngineError, io};
use crate::exposure::ExposureFiles;
use crate::host::{HostRef, Program, ServerStart};
use crate::local::wait_until;

/// The superuser every server is initialised with.
pub const SUPERUSER: &str = "postgres";
/// The role slaves stream with.
pub const REPLICATION_USER: &str = "replicator";

/// One PostgreSQL server on a host.
#[derive(Debug, Clone)]
pub struct PostgresServer {
    /// The machine the server lives on.
    host: HostRef,
    name: String,
    port: u16,
    bin: PathBuf,
    /// TLS and access rules, for a server on a host (see [`Exposure`]).
    exposure: Option<std::sync::Arc<Exposure>>,
}

/// Where Debian installs a major version's programs.
pub fn binaries(major: &str) -> PathBuf {
    PathBuf::from(format!("/usr/lib/postgresql/{major}/bin"))
}

impl PostgresServer {
    /// Finds the programs for `version` (its major part), or says which
    /// Debian package provides them.
    pub async fn new(
        host: &HostRef,
        name: &str,
        version: &str,
        port: u16,
    ) -> Result<Self, EngineError> {
        let major = version.split('.').next().unwrap_or(version);
        let bin = binaries(major);
        if !host.is_file(&bin.join("postgres")).await {
            return Err(EngineError::MissingBinary {
                program: "postgres".into(),
                engine: "postgresql".into(),
                version: version.into(),
                looked: bin.display().to_string(),
                remedy: format!("install the Debian package postgresql-{major}"),
            });
        }
        Ok(Self {
            host: host.clone(),
            name: name.to_string(),
            port,
            bin,
            exposure: None,
        })
    }

    /// The same server, reached beyond loopback as `exposure` says.
    pub fn exposed(mut self, exposure: Option<std::sync::Arc<Exposure>>) -> Self {
        self.exposure = exposure;
        self
    }

    /// Its TLS files, admitted peers and client networks (see
    /// [`ExposureFiles`]).
    fn files(&self) -> ExposureFiles<'_> {
        ExposureFiles::new(&self.host, self.dir())
    }

    /// Installs its certificate, key and authority; a running server
    /// reloads them (PostgreSQL reads TLS files on reload).
    pub async fn install_certificate(
        &self,
        certificate: &Certificate,
        superuser_password: &str,
    ) -> Result<(), EngineError> {
        let Some(exposure) = &self.exposure else {
            return Ok(());
        };
        let changed = self.files().install(certificate, exposure).await?;
        if changed && self.is_initialised().await && self.is_running().await {
            self.write_configuration().await?;
            self.reload(superuser_password).await?;
        }
        Ok(())
    }

    /// TLS settings for a client of this server (`PGSSLMODE`,
    /// `PGSSLROOTCERT`): verified against `authority`, a file on the
    /// client's host holding this server's authority. Nothing on loopback.
    fn verified_by(&self, client: &mut Program, authority: &Path) {
        if self.exposure.is_some() {
            client
                .env("PGSSLMODE", "verify-full")
                .env("PGSSLROOTCERT", authority);
        }
    }

    /// Writes this server's authority on `into` at `path`, for a client
    /// there (a backup taken on another host).
    async fn authority_on(&self, into: &HostRef, path: &Path) -> Result<(), EngineError> {
        match &self.exposure {
            Some(exposure) => {
                into.write_private_file(path, exposure.authority.as_bytes())
                    .await
            }
            None => Ok(()),
        }
    }

    /// Its `pg_hba.conf` as the recorded peers, networks and TLS make it.
    async fn rules(&self) -> String {
        let files = self.files();
        let tls = self.exposure.is_some() && files.has_certificate().await;
        pg_hba(
            &self.host.listen_addresses(),
            &files.admitted().await,
            &files.allowed().await,
            tls,
        )
    }

    /// Lets exactly `networks` connect (`allow_from`), and reloads.
    pub async fn allow(
        &self,
        networks: &[String],
        superuser_password: &str,
    ) -> Result<(), EngineError> {
        self.files().set_allowed(networks).await?;
        self.apply_rules(superuser_password).await
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The port an earlier provision of this server chose, if any.
    pub async fn earlier_port(host: &HostRef, name: &str) -> Option<u16> {
        let settings = host
            .read_text(&host.server_dir(name).join("data").join("dbgroups.conf"))
            .await?;
        port_in_config(&settings)
    }

    pub fn dir(&self) -> PathBuf {
        self.host.server_dir(&self.name)
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

    /// One of the version's programs, run with the server's directory as
    /// its `HOME`.
    fn tool(&self, name: &str) -> Program {
        Program::new(&self.dir(), &self.bin.join(name))
    }

    async fn is_initialised(&self) -> bool {
        self.host.is_file(&self.data_dir().join("PG_VERSION")).await
    }

    /// A text file this engine wrote and needs: its absence is an error
    /// (in the words a local read gives: "No such file or directory").
    async fn read_required(&self, path: &Path) -> Result<String, EngineError> {
        let bytes = self
            .host
            .read_file(path)
            .await?
            .ok_or_else(|| io("read", path)(std::io::Error::from(rustix::io::Errno::NOENT)))?;
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    }

    /// initdb (unless done), then the configuration dbgroups owns.
    pub async fn ensure_initialised(&self, superuser_password: &str) -> Result<(), EngineError> {
        self.host.private_dir(&self.dir()).await?;
        self.host.private_dir(&self.socket_dir()).await?;
        if !self.is_initialised().await {
            // A half-made data directory from an interrupted initdb is
            // removed: initdb refuses a non-empty one, and it holds nothing.
            if self.host.exists(&self.data_dir()).await {
                self.host
                    .remove_dir(&self.data_dir())
                    .await
                    .map_err(|err| worded(err, "remove the unfinished", &self.data_dir()))?;
            }
            let password_file = self.dir().join("initdb.password");
            self.host
                .write_private_file(&password_file, superuser_password.as_bytes())
                .await?;
            let mut initdb = self.tool("initdb");
            initdb
                .arg("--pgdata")
                .arg(self.data_dir())
                .arg(format!("--username={SUPERUSER}"))
                .arg("--pwfile")
                .arg(&password_file)
                .args(["--auth=scram-sha-256", "--encoding=UTF8", "--no-locale"]);
            let result = self.host.run(&initdb, "initdb").await;
            let _ = self.host.remove_file(&password_file).await;
            result.map(drop)?;
        }
        self.write_configuration().await
    }

    /// Settings dbgroups owns, in their own file included by
    /// postgresql.conf. Replication-ready: wal_level, senders and slots are
    /// set before the first start, so enslaving never restarts a master.
    async fn write_configuration(&self) -> Result<(), EngineError> {
        let data = self.data_dir();
        let listen = self.host.listen_list();
        let settings = format!(
            "# Written by dbgroups; changes here are overwritten.\n\
             listen_addresses = '{listen}'\n\
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
        // TLS once its certificate is installed (before the first start of
        // a server on a host): every rule off loopback is then `hostssl`.
        let settings = if self.exposure.is_some() && self.files().has_certificate().await {
            format!(
                "{settings}ssl = on\n\
                 ssl_cert_file = '{cert}'\n\
                 ssl_key_file = '{key}'\n\
                 ssl_min_protocol_version = 'TLSv1.2'\n",
                cert = self.files().certificate().display(),
                key = self.files().key().display(),
            )
        } else {
            settings
        };
        self.host
            .write_private_file(&data.join("dbgroups.conf"), settings.as_bytes())
            .await?;
        let conf = data.join("postgresql.conf");
        let current = self.read_required(&conf).await?;
        let include = "include_if_exists = 'dbgroups.conf'";
        if !current.contains(include) {
            self.host
                .write_private_file(&conf, format!("{current}\n{include}\n").as_bytes())
                .await?;
        }
        let hba = self.rules().await;
        self.host
            .write_private_file(&data.join("pg_hba.conf"), hba.as_bytes())
            .await
    }

    /// Lets `peers` (another host's addresses) connect, for replication
    /// and backups: recorded beside the data, `pg_hba.conf` rewritten, and
    /// the rules reloaded (no restart) when the server runs. An ensure:
    /// the rules are reloaded even when no peer was missing.
    pub async fn admit(
        &self,
        peers: &[IpAddr],
        superuser_password: &str,
    ) -> Result<(), EngineError> {
        self.files()
            .admit(&self.host.listen_addresses(), peers)
            .await?;
        self.apply_rules(superuser_password).await
    }

    /// Rewrites `pg_hba.conf` from the recorded peers and networks and
    /// reloads a running server.
    async fn apply_rules(&self, superuser_password: &str) -> Result<(), EngineError> {
        let hba_path = self.data_dir().join("pg_hba.conf");
        let wanted = self.rules().await;
        if self.host.read_text(&hba_path).await.as_deref() != Some(wanted.as_str()) {
            self.host
                .write_private_file(&hba_path, wanted.as_bytes())
                .await?;
        }
        // Reloaded even when the file was right already: an apply killed
        // between writing it and reloading left the running server on its
        // old rules (found by the crash matrix on hosts), and a reload is
        // no interruption.
        if self.is_running().await {
            self.reload(superuser_password).await?;
        }
        Ok(())
    }

    /// Reloads the configuration and waits until new connections see it:
    /// `pg_reload_conf()` only signals the postmaster, and a client
    /// connecting at once could still meet the old rules.
    async fn reload(&self, superuser_password: &str) -> Result<(), EngineError> {
        let pg = |source| EngineError::Postgres {
            port: self.port,
            source,
        };
        const LOADED_AT: &str = "SELECT extract(epoch FROM pg_conf_load_time())::float8";
        let client = self
            .connect(SUPERUSER, superuser_password, "postgres")
            .await?;
        // Read before the reload: this session's own time is the last
        // load's, and each new session's the postmaster's.
        let before: f64 = client.query_one(LOADED_AT, &[]).await.map_err(pg)?.get(0);
        client
            .execute("SELECT pg_reload_conf()", &[])
            .await
            .map_err(pg)?;
        wait_until(
            &format!("a reload of {}'s rules", self.name),
            30,
            || async {
                let client = self
                    .connect(SUPERUSER, superuser_password, "postgres")
                    .await?;
                let now: f64 = client.query_one(LOADED_AT, &[]).await.map_err(pg)?.get(0);
                Ok(now > before)
            },
        )
        .await
    }

    pub async fn is_running(&self) -> bool {
        let mut status = self.tool("pg_ctl");
        status.arg("status").arg("--pgdata").arg(self.data_dir());
        self.host.run(&status, "pg_ctl status").await.is_ok()
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
        // pg_ctl itself puts the server in the background and returns once
        // it accepts connections: a run to its end, not a detached start
        // (under systemd, a forking unit whose pid is the postmaster's).
        let daemon = ServerStart::Daemonizes {
            pid_file: self.data_dir().join("postmaster.pid"),
        };
        match self
            .host
            .start_server(&self.name, &start, daemon, "pg_ctl start")
            .await
        {
            Ok(_) => Ok(()),
            Err(err) => Err(self.with_log(err).await),
        }
    }

    /// Stops the server: a fast shutdown (clients disconnected, a shutdown
    /// checkpoint written), and an immediate one when the fast one does not
    /// finish in time. A fast shutdown waits for every walsender to send the
    /// WAL up to the checkpoint; one whose peer vanished mid-transfer (a cut
    /// link, a killed pg_basebackup on another host) blocks it until
    /// `wal_sender_timeout`, which can outlast pg_ctl's wait. An immediate
    /// stop loses nothing committed: the next start replays the WAL.
    pub async fn ensure_stopped(&self) -> Result<(), EngineError> {
        if !self.is_running().await {
            return Ok(());
        }
        let fast = self.stop_command("fast", 60);
        match self.host.run(&fast, "pg_ctl stop").await {
            Ok(_) => Ok(()),
            Err(slow) => {
                if !self.is_running().await {
                    return Ok(());
                }
                let immediate = self.stop_command("immediate", 60);
                match self.host.run(&immediate, "pg_ctl stop").await {
                    Ok(_) => Ok(()),
                    // The fast stop's failure says what held the server.
                    Err(_) => Err(slow),
                }
            }
        }
    }

    fn stop_command(&self, mode: &str, timeout_seconds: u32) -> Program {
        let mut stop = self.tool("pg_ctl");
        stop.arg("stop")
            .arg("--pgdata")
            .arg(self.data_dir())
            .arg(format!("--mode={mode}"))
            .arg("--wait")
            .arg(format!("--timeout={timeout_seconds}"));
        stop
    }

    /// Adds the server log's last lines to a start failure: that is where
    /// PostgreSQL says why.
    async fn with_log(&self, err: EngineError) -> EngineError {
        match err {
            EngineError::Command {
                command,
                status,
                stderr,
            } => EngineError::Command {
                command,
                status,
                stderr: format!("{stderr}\n{}", self.host.tail(&self.log_file(), 5).await)
                    .trim()
                    .to_string(),
            },
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
        let (address, port) = self.host.client_endpoint(self.port).await?;
        let mut config = tokio_postgres::Config::new();
        config
            .host(address)
            .port(port)
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
        let stop = self.stop_command("immediate", 60);
        // Best effort: a server that is not running is already stopped.
        let _ = self.host.run_blocking(&stop);
    }
}

/// The port in a `dbgroups.conf` an earlier (perhaps interrupted)
/// provision wrote (`port = 5433`), so a re-run keeps it instead of moving
/// the server.
pub use crate::local::port_in_config;

/// pg_hba.conf: password authentication only, and over TCP only from the
/// addresses the server listens on (loopback on the local host), the other
/// hosts it admitted (its group's, and those replicating with it) and the
/// client networks of `allow_from`. With `tls`, every rule off loopback is
/// `hostssl`: a plain-text connection from the network finds no rule.
fn pg_hba(listen: &[IpAddr], admitted: &[IpAddr], allowed: &[String], tls: bool) -> String {
    let only = listen
        .iter()
        .map(|a| {
            if a.is_loopback() {
                "loopback".to_string()
            } else {
                a.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join(" and ");
    let mut hba = format!(
        "# Written by dbgroups: password authentication only, {only} only{}.\n\
         local   all          all                   scram-sha-256\n",
        if tls { ", TLS off loopback" } else { "" }
    );
    let kind = |loopback: bool| {
        if tls && !loopback {
            "hostssl"
        } else {
            "host   "
        }
    };
    for address in listen.iter().chain(admitted) {
        let network = match address {
            IpAddr::V4(_) => format!("{address}/32"),
            IpAddr::V6(_) => format!("{address}/128"),
        };
        let kind = kind(address.is_loopback());
        hba.push_str(&format!(
            "{kind} all          all          {network}  scram-sha-256\n\
             {kind} replication  all          {network}  scram-sha-256\n"
        ));
    }
    // Clients, not replicas: no replication rule.
    for network in allowed {
        hba.push_str(&format!(
            "{} all          all          {network}  scram-sha-256\n",
            kind(false)
        ));
    }
    hba
}

/// A host's file error in this engine's own words (`cannot remove the
/// unfinished backup …`), the words it used before the host interface.
fn worded(err: EngineError, action: &'static str, path: &Path) -> EngineError {
    match err {
        EngineError::Io { source, .. } => EngineError::Io {
            action,
            path: path.to_path_buf(),
            source,
        },
        other => other,
    }
}

/// A replication slot's name for a replica: letters, digits and `_` only.
pub fn slot_name(replica: &str) -> String {
    let cleaned: String = replica
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect();
    format!("dbgroups_{cleaned}")
}

/// Replication as one server sees it.
#[derive(Debug, Clone, PartialEq)]
pub enum ReplicationStatus {
    /// Not in recovery: a master. Lists the replicas streaming from it.
    Master { replicas: Vec<String> },
    /// In recovery: a replica, with its receiver's state and replay lag.
    Replica {
        streaming: bool,
        receiver_status: Option<String>,
        lag_seconds: Option<f64>,
    },
}

impl PostgresServer {
    fn passfile(&self) -> PathBuf {
        self.dir().join("pgpass")
    }

    /// A libpq password file for the replication role, read by
    /// pg_basebackup and by the replica's WAL receiver: the password never
    /// appears in an argument or in postgresql.conf. `dialled` is the
    /// address the client connects to (libpq matches the line by it).
    async fn write_passfile(
        &self,
        dialled: &str,
        replication_password: &str,
    ) -> Result<(), EngineError> {
        let line = format!("{dialled}:*:*:{REPLICATION_USER}:{replication_password}\n");
        self.host
            .write_private_file(&self.passfile(), line.as_bytes())
            .await
    }

    /// A client tool of this server's version on `into` (this server's
    /// host, or the host receiving a backup), with `home` as its `HOME`.
    async fn client_tool_on(
        &self,
        into: &HostRef,
        name: &str,
        home: &Path,
    ) -> Result<Program, EngineError> {
        let program = self.bin.join(name);
        if !into.is_file(&program).await {
            let major = self.bin.parent().and_then(Path::file_name);
            let major = major.map(|m| m.to_string_lossy().into_owned());
            let major = major.unwrap_or_default();
            return Err(EngineError::MissingBinary {
                program: name.into(),
                engine: "postgresql".into(),
                version: major.clone(),
                looked: format!("{} on {}", self.bin.display(), into.name()),
                remedy: format!("install the Debian package postgresql-{major} there"),
            });
        }
        Ok(Program::new(home, &program))
    }

    /// A libpq password file on `into` beside the staging entry it serves
    /// (so the apply's staging clean-up takes it too), for a client there
    /// dialling this server as `user`.
    async fn staging_passfile(
        &self,
        into: &HostRef,
        staging: &Path,
        user: &str,
        password: &str,
    ) -> Result<PathBuf, EngineError> {
        let mut name = staging.file_name().unwrap_or_default().to_os_string();
        name.push(".pgpass");
        let path = staging.with_file_name(name);
        let line = format!("{}:*:*:{user}:{password}\n", self.host.dial_address());
        into.write_private_file(&path, line.as_bytes()).await?;
        Ok(path)
    }

    /// A full physical backup of this (master) server into `staging` on
    /// `into`, with the WAL needed to make it consistent: pg_basebackup
    /// runs on `into` and pulls the data from this server, so it moves
    /// host to host.
    pub async fn backup_to(
        &self,
        into: &HostRef,
        staging: &Path,
        replication_password: &str,
    ) -> Result<(), EngineError> {
        if into.is_file(&staging.join("backup_manifest")).await {
            return Ok(()); // done before, and complete: pg_basebackup writes it last
        }
        if into.exists(staging).await {
            // An interrupted attempt's pg_basebackup may still run there.
            into.stop_programs_naming(staging).await;
            into.remove_dir(staging)
                .await
                .map_err(|err| worded(err, "remove the unfinished backup", staging))?;
        }
        into.private_dir(staging).await?;
        let home = staging.parent().unwrap_or(staging);
        let passfile = self
            .staging_passfile(into, staging, REPLICATION_USER, replication_password)
            .await?;
        let mut basebackup = self.client_tool_on(into, "pg_basebackup", home).await?;
        let authority = passfile.with_extension("authority");
        self.authority_on(into, &authority).await?;
        self.verified_by(&mut basebackup, &authority);
        basebackup
            .env("PGPASSFILE", &passfile)
            .args([
                &format!("--host={}", self.host.dial_address()),
                &format!("--port={}", self.port),
                &format!("--username={REPLICATION_USER}"),
            ])
            .arg("--pgdata")
            .arg(staging)
            .args([
                "--checkpoint=fast",
                "--wal-method=stream",
                "--format=plain",
                "--no-password",
            ]);
        let result = into.run_stoppable(&basebackup, "pg_basebackup").await;
        let _ = into.remove_file(&passfile).await;
        let _ = into.remove_file(&authority).await;
        result.map(drop)
    }

    /// Replaces this server's data with a backup, keeping its own settings.
    /// `take`: this server is the backup's only user, so the backup becomes
    /// its data directory by rename (no second pass over the data) when
    /// both are on one filesystem; otherwise the backup is copied.
    pub async fn restore_from(&self, staging: &Path, take: bool) -> Result<(), EngineError> {
        self.ensure_stopped().await?;
        self.host.private_dir(&self.dir()).await?;
        self.host.private_dir(&self.socket_dir()).await?;
        if self.host.exists(&self.data_dir()).await {
            self.host
                .remove_dir(&self.data_dir())
                .await
                .map_err(|err| worded(err, "remove the old data in", &self.data_dir()))?;
        }
        let renamed = take && self.host.rename(staging, &self.data_dir()).await.is_ok();
        if !renamed {
            let mut copy = Program::new(&self.dir(), Path::new("/bin/cp"));
            // A clone where the filesystem can (btrfs, XFS): no data copied.
            copy.args(["-a", "--reflink=auto"])
                .arg(staging)
                .arg(self.data_dir());
            self.host.run_stoppable(&copy, "cp -a").await?;
        }
        // The copy carries the master's own settings (its port); write ours.
        for leftover in ["standby.signal", "postmaster.pid", "backup_manifest"] {
            let _ = self.host.remove_file(&self.data_dir().join(leftover)).await;
        }
        self.write_configuration().await
    }

    /// Makes this server a streaming replica of `master` through a slot,
    /// starts it, and waits until it streams.
    pub async fn enslave_to(
        &self,
        master: &PostgresServer,
        master_superuser_password: &str,
        replication_password: &str,
    ) -> Result<(), EngineError> {
        let slot = slot_name(&self.name);
        let client = master
            .connect(SUPERUSER, master_superuser_password, "postgres")
            .await?;
        let pg = |source| EngineError::Postgres {
            port: master.port,
            source,
        };
        let exists = client
            .query_opt(
                "SELECT 1 FROM pg_replication_slots WHERE slot_name = $1",
                &[&slot],
            )
            .await
            .map_err(pg)?;
        if exists.is_none() {
            client
                .execute("SELECT pg_create_physical_replication_slot($1)", &[&slot])
                .await
                .map_err(pg)?;
        }
        // The replica's WAL receiver dials the master's host.
        let master_address = master.host.dial_address();
        self.write_passfile(&master_address, replication_password)
            .await?;
        self.write_configuration().await?;
        // The master's certificate is verified against its own
        // application's authority (another application's, across them).
        // A master made on its host before dbgroups served TLS has no
        // certificate, and serves plain connections only.
        let tls = match &master.exposure {
            Some(exposure) if master.files().has_certificate().await => {
                let upstream = self.files().trust_upstream(&exposure.authority).await?;
                format!(" sslmode=verify-full sslrootcert={}", upstream.display())
            }
            _ => String::new(),
        };
        let standby = format!(
            "primary_conninfo = 'host={master_address} port={port} user={REPLICATION_USER} passfile={passfile} application_name={name}{tls}'\n\
             primary_slot_name = '{slot}'\n",
            port = master.port,
            passfile = self.passfile().display(),
            name = slot,
        );
        let settings_path = self.data_dir().join("dbgroups.conf");
        let settings = self.read_required(&settings_path).await?;
        self.host
            .write_private_file(&settings_path, format!("{settings}{standby}").as_bytes())
            .await?;
        self.host
            .write_private_file(&self.data_dir().join("standby.signal"), b"")
            .await?;
        if self.is_running().await {
            self.ensure_stopped().await?;
        }
        let log_from = self.log_length().await;
        self.ensure_running().await?;
        self.wait_streaming_since(
            master_superuser_password,
            Some((master, master_superuser_password)),
            log_from,
        )
        .await
    }

    /// Starts the server; a replica's start is done once it streams from
    /// its master again, or fails with the reason its log gives.
    /// `master` (with its superuser's password) is the server it streams
    /// from, when known: only the master can tell that it really streams.
    pub async fn ensure_running_and_streaming(
        &self,
        superuser_password: &str,
        master: Option<(&PostgresServer, &str)>,
    ) -> Result<(), EngineError> {
        let log_from = self.log_length().await;
        self.ensure_running().await?;
        if self
            .host
            .is_file(&self.data_dir().join("standby.signal"))
            .await
        {
            self.wait_streaming_since(superuser_password, master, log_from)
                .await?;
        }
        Ok(())
    }

    async fn log_length(&self) -> u64 {
        self.host.file_len(&self.log_file()).await
    }

    /// The WAL receiver's last FATAL line in the log written since
    /// `offset`: where PostgreSQL says why a replica does not stream.
    async fn receiver_failure_since(&self, offset: u64) -> Option<String> {
        // The host reads whole files only (it has no read from an offset),
        // so the part before `offset` is read and skipped.
        let log = self.host.read_file(&self.log_file()).await.ok()??;
        let since = log.get(usize::try_from(offset).ok()?..)?;
        String::from_utf8_lossy(since)
            .lines()
            .rev()
            .find(|line| line.contains("FATAL:") && line.contains("WAL"))
            .map(|line| line.trim().to_string())
    }

    /// Waits until the WAL receiver streams. A slot that does not exist on
    /// the master will not appear by waiting, so that fails at once; any
    /// other reason the log gives is reported at the timeout.
    async fn wait_streaming_since(
        &self,
        superuser_password: &str,
        master: Option<(&PostgresServer, &str)>,
        log_from: u64,
    ) -> Result<(), EngineError> {
        let slot = slot_name(&self.name);
        let waited = wait_until(
            &format!("streaming replication to {}", self.name),
            120,
            || async {
                let here = matches!(
                    self.replication_status(superuser_password).await,
                    Ok(ReplicationStatus::Replica {
                        streaming: true,
                        ..
                    })
                );
                // The replica's own view says `streaming` from the WAL
                // receiver's start, before the master accepted (or refused)
                // it; the master's pg_stat_replication lists it only once
                // it streams.
                let there = match master {
                    Some((master, password)) => matches!(
                        master.replication_status(password).await,
                        Ok(ReplicationStatus::Master { replicas }) if replicas.contains(&slot)
                    ),
                    None => true,
                };
                if here && there {
                    return Ok(true);
                }
                match self.receiver_failure_since(log_from).await {
                    Some(line)
                        if line.contains("replication slot") && line.contains("does not exist") =>
                    {
                        Err(self.not_streaming(line))
                    }
                    _ => Ok(false),
                }
            },
        )
        .await;
        match (waited, self.receiver_failure_since(log_from).await) {
            (Err(EngineError::Timeout { .. }), Some(line)) => Err(self.not_streaming(line)),
            (waited, _) => waited,
        }
    }

    fn not_streaming(&self, reason: String) -> EngineError {
        EngineError::Command {
            command: format!("streaming replication to {}", self.name),
            status: "not streaming".into(),
            stderr: reason,
        }
    }

    /// Promotes this replica to a standalone master (it keeps its data),
    /// and drops its slot on the old master if that is reachable.
    pub async fn promote(
        &self,
        superuser_password: &str,
        old_master: Option<(&PostgresServer, &str)>,
    ) -> Result<(), EngineError> {
        let client = self
            .connect(SUPERUSER, superuser_password, "postgres")
            .await?;
        let pg = |source| EngineError::Postgres {
            port: self.port,
            source,
        };
        let in_recovery: bool = client
            .query_one("SELECT pg_is_in_recovery()", &[])
            .await
            .map_err(pg)?
            .get(0);
        if in_recovery {
            let promoted: bool = client
                .query_one("SELECT pg_promote(true, 60)", &[])
                .await
                .map_err(pg)?
                .get(0);
            if !promoted {
                return Err(EngineError::Timeout {
                    what: format!("promotion of {}", self.name),
                    seconds: 60,
                });
            }
        }
        // Without standby settings a restart stays a master.
        self.write_configuration().await?;
        let _ = self.host.remove_file(&self.passfile()).await;
        if let Some((master, master_password)) = old_master
            && master.is_running().await
        {
            master.drop_slot_of(&self.name, master_password).await?;
        }
        Ok(())
    }

    /// Drops the replication slot a replica of this master used, once the
    /// replica has let go of it. A slot nobody reads keeps every WAL segment
    /// from then on, until the master's disk is full.
    pub async fn drop_slot_of(
        &self,
        replica: &str,
        admin_password: &str,
    ) -> Result<(), EngineError> {
        let client = self.connect(SUPERUSER, admin_password, "postgres").await?;
        let slot = slot_name(replica);
        let pg = |source| EngineError::Postgres {
            port: self.port,
            source,
        };
        // A replica just stopped or promoted: its WAL sender may hold the
        // slot a moment longer, and an active slot cannot be dropped (the
        // drop used to be skipped then, and the slot stayed for good).
        wait_until(&format!("the release of slot {slot}"), 60, || async {
            let row = client
                .query_opt(
                    "SELECT active FROM pg_replication_slots WHERE slot_name = $1",
                    &[&slot],
                )
                .await
                .map_err(pg)?;
            match row {
                None => Ok(true),
                Some(row) if row.get::<_, bool>(0) => Ok(false),
                Some(_) => {
                    client
                        .execute("SELECT pg_drop_replication_slot($1)", &[&slot])
                        .await
                        .map_err(pg)?;
                    Ok(true)
                }
            }
        })
        .await
    }

    /// Whether this master still has the replication slot `replica` reads
    /// from. A replica whose slot was dropped cannot resume streaming (the
    /// WAL it needs may be gone), so refresh plans a re-sync, not a start.
    pub async fn has_slot_for(
        &self,
        replica: &str,
        admin_password: &str,
    ) -> Result<bool, EngineError> {
        let client = self.connect(SUPERUSER, admin_password, "postgres").await?;
        let row = client
            .query_opt(
                "SELECT 1 FROM pg_replication_slots WHERE slot_name = $1",
                &[&slot_name(replica)],
            )
            .await
            .map_err(|source| EngineError::Postgres {
                port: self.port,
                source,
            })?;
        Ok(row.is_some())
    }

    /// What this server says about replication (pg_stat_replication on a
    /// master, pg_stat_wal_receiver and replay lag on a replica).
    pub async fn replication_status(
        &self,
        superuser_password: &str,
    ) -> Result<ReplicationStatus, EngineError> {
        let client = self
            .connect(SUPERUSER, superuser_password, "postgres")
            .await?;
        let pg = |source| EngineError::Postgres {
            port: self.port,
            source,
        };
        let in_recovery: bool = client
            .query_one("SELECT pg_is_in_recovery()", &[])
            .await
            .map_err(pg)?
            .get(0);
        if !in_recovery {
            let rows = client
                .query("SELECT application_name FROM pg_stat_replication WHERE state = 'streaming' ORDER BY 1", &[])
                .await
                .map_err(pg)?;
            return Ok(ReplicationStatus::Master {
                replicas: rows.iter().map(|r| r.get(0)).collect(),
            });
        }
        let receiver = client
            .query_opt("SELECT status FROM pg_stat_wal_receiver", &[])
            .await
            .map_err(pg)?;
        let receiver_status: Option<String> = receiver.map(|r| r.get(0));
        // Lag is zero when everything received has been replayed.
        let lag: Option<f64> = client
            .query_one(
                "SELECT CASE WHEN pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() THEN 0
                        ELSE EXTRACT(EPOCH FROM now() - pg_last_xact_replay_timestamp())::float8 END",
                &[],
            )
            .await
            .map_err(pg)?
            .get(0);
        Ok(ReplicationStatus::Replica {
            streaming: receiver_status.as_deref() == Some("streaming"),
            receiver_status,
            lag_seconds: lag,
        })
    }
}

impl PostgresServer {
    /// A passfile for the superuser, for pg_dump and pg_restore (never an
    /// argument or an environment variable holding the password itself).
    async fn write_superuser_passfile(&self, admin_password: &str) -> Result<PathBuf, EngineError> {
        let path = self.dir().join("pgpass-admin");
        let line = format!(
            "{dialled}:*:*:{SUPERUSER}:{admin_password}\n",
            dialled = self.host.dial_address()
        );
        self.host.write_private_file(&path, line.as_bytes()).await?;
        Ok(path)
    }

    /// A logical dump (pg_dump, custom format) of one database, for an
    /// import: unlike a physical backup it restores on a newer major version.
    /// pg_dump runs on `into` (the importing server's host) against this
    /// server, as pg_basebackup does for a physical backup.
    pub async fn dump_to(
        &self,
        into: &HostRef,
        staging: &Path,
        admin_password: &str,
        database: &str,
    ) -> Result<(), EngineError> {
        let target = staging.join("dump.pgdump");
        if into.is_file(&target).await {
            return Ok(());
        }
        // An interrupted attempt's pg_dump may still write its partial file.
        into.stop_programs_naming(staging).await;
        into.private_dir(staging).await?;
        let home = staging.parent().unwrap_or(staging);
        let passfile = self
            .staging_passfile(into, staging, SUPERUSER, admin_password)
            .await?;
        let partial = staging.join("dump.pgdump.partial");
        let mut dump = self.client_tool_on(into, "pg_dump", home).await?;
        let authority = passfile.with_extension("authority");
        self.authority_on(into, &authority).await?;
        self.verified_by(&mut dump, &authority);
        dump.env("PGPASSFILE", &passfile)
            .args([
                &format!("--host={}", self.host.dial_address()),
                &format!("--port={}", self.port),
                &format!("--username={SUPERUSER}"),
            ])
            .args(["--format=custom", "--no-password"])
            .arg("--file")
            .arg(&partial)
            .arg(database);
        let result = into.run_stoppable(&dump, "pg_dump").await;
        let _ = into.remove_file(&passfile).await;
        let _ = into.remove_file(&authority).await;
        result?;
        into.rename(&partial, &target)
            .await
            .map_err(|err| worded(err, "finish the dump", &target))
    }

    /// Restores a logical dump into `database`, its objects owned by
    /// `owner` (the destination's application role, not the source's).
    pub async fn restore_dump(
        &self,
        staging: &Path,
        admin_password: &str,
        owner: &str,
        database: &str,
    ) -> Result<(), EngineError> {
        let passfile = self.write_superuser_passfile(admin_password).await?;
        let mut restore = self.tool("pg_restore");
        self.verified_by(&mut restore, &self.files().authority());
        restore
            .env("PGPASSFILE", &passfile)
            .args([
                &format!("--host={}", self.host.dial_address()),
                &format!("--port={}", self.port),
                &format!("--username={SUPERUSER}"),
            ])
            .args([
                "--no-password",
                "--clean",
                "--if-exists",
                "--no-owner",
                "--no-privileges",
                "--exit-on-error",
            ])
            .arg(format!("--role={owner}"))
            .arg(format!("--dbname={database}"))
            .arg(staging.join("dump.pgdump"));
        let result = self.host.run_stoppable(&restore, "pg_restore").await;
        let _ = self.host.remove_file(&passfile).await;
        result.map(drop)
    }
}

impl PostgresServer {
    /// The bytes of data a backup of this server copies: all databases for
    /// a physical backup, one for a dump.
    pub async fn data_size(
        &self,
        admin_password: &str,
        database: Option<&str>,
    ) -> Result<u64, EngineError> {
        let client = self.connect(SUPERUSER, admin_password, "postgres").await?;
        let pg = |source| EngineError::Postgres {
            port: self.port,
            source,
        };
        let bytes: i64 = match database {
            Some(database) => client
                .query_one("SELECT pg_database_size($1)", &[&database])
                .await
                .map_err(pg)?
                .get(0),
            None => client
                .query_one(
                    "SELECT sum(pg_database_size(datname))::bigint FROM pg_database",
                    &[],
                )
                .await
                .map_err(pg)?
                .get(0),
        };
        Ok(u64::try_from(bytes).unwrap_or(0))
    }
}

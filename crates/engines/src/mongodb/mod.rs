//! The MongoDB engine on a [`crate::Host`], written to MongoDB's manual
//! (mongod cannot be installed on the machines this was built on; the live
//! tests run wherever `mongod` is on PATH). [`MongoServer`] is one `mongod`
//! with `--replSet`, a keyfile and authorization on from its first start;
//! a group is one replica set. The first server initiates the set and gets
//! the group's administrator and application users through the localhost
//! exception; further servers join through a reconfig (`rs.add`) and copy
//! the data by initial sync; removal is a reconfig (`rs.remove`). An import
//! is `mongodump --oplog` into `mongorestore --oplogReplay`. The documents
//! sent are built in [`commands`]; reconfigs go through [`reconfig`], one
//! at a time per set.

pub mod commands;
mod exposed;
pub mod reconfig;

use std::path::{Path, PathBuf};
use std::time::Duration;

use mongodb::bson::{Document, doc};
use mongodb::options::{ClientOptions, Credential, ServerAddress};

use crate::error::EngineError;
use crate::host::{HostRef, Program};
use crate::local::{wait_every, wait_until};

pub use commands::{MemberHealth, MemberStatus};

/// How often a wait asks again (one client for the whole wait).
const POLL: Duration = Duration::from_secs(3);

/// An initial sync whose progress (state, optime, bytes copied, ops
/// applied, databases cloned) stands still this long fails the step with
/// what the member last said; one that advances is waited for.
pub const SYNC_STALL_SECONDS: u64 = 600;

/// A `shutdown` that has not ended mongod by then is followed by
/// `mongod --shutdown --dbpath`.
const SHUTDOWN_SECONDS: u64 = 30;

/// The group's administrator, in the `admin` database.
pub const ADMIN_USER: &str = "dbgroups-admin";

/// Where to get MongoDB when it is missing.
pub const REMEDY: &str = "MongoDB is not packaged by Debian: install mongodb-org-server and mongodb-database-tools from MongoDB's repository (repo.mongodb.org; amd64 and arm64 only)";

/// Command error codes (MongoDB's error_codes.yml) the engine acts on.
mod code {
    pub(super) const NOT_YET_INITIALIZED: i32 = 94;
    pub(super) const ALREADY_INITIALIZED: i32 = 23;
    pub(super) const USER_EXISTS: i32 = 51003;
}

#[derive(Debug, Clone)]
pub struct MongoServer {
    /// The machine the server lives on.
    host: HostRef,
    name: String,
    port: u16,
    version: String,
    mongod: PathBuf,
    /// How it is reached beyond loopback (a server on a host): TLS and the
    /// host's firewall ([`exposed`]).
    exposure: Option<std::sync::Arc<crate::engine::Exposure>>,
}

impl MongoServer {
    pub async fn new(
        host: &HostRef,
        name: &str,
        version: &str,
        port: u16,
    ) -> Result<Self, EngineError> {
        Ok(Self {
            host: host.clone(),
            name: name.to_string(),
            port,
            version: version.to_string(),
            mongod: Self::program(host, "mongod", version).await?,
            exposure: None,
        })
    }

    async fn program(host: &HostRef, name: &str, version: &str) -> Result<PathBuf, EngineError> {
        host.find_program(&[name])
            .await
            .ok_or_else(|| EngineError::MissingBinary {
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
        format!("{}:{}", self.host.dial_address(), self.port)
    }

    pub fn dir(&self) -> PathBuf {
        self.host.server_dir(&self.name)
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
    pub async fn earlier_port(host: &HostRef, name: &str) -> Option<u16> {
        let text = host
            .read_text(&host.server_dir(name).join("mongod.conf"))
            .await?;
        commands::port_in_config(&text)
    }

    /// The config and the keyfile. Every member of a set shares the
    /// keyfile (the group's replication secret): members authenticate to
    /// each other with it.
    async fn write_config(&self, set: &str, keyfile_secret: &str) -> Result<(), EngineError> {
        self.host.private_dir(&self.dir()).await?;
        self.host.private_dir(&self.data_dir()).await?;
        self.host.private_dir(&self.dir().join("run")).await?;
        self.host
            .write_private_file(&self.keyfile(), keyfile_secret.as_bytes())
            .await?;
        let (data, keyfile, log, pid) = (
            self.data_dir().display().to_string(),
            self.keyfile().display().to_string(),
            self.log_file().display().to_string(),
            self.dir().join("run/mongod.pid").display().to_string(),
        );
        let tls = self.tls_files().await?;
        let config = commands::config_file(
            &commands::ConfigPaths {
                data_dir: &data,
                keyfile: &keyfile,
                log_file: &log,
                pid_file: &pid,
            },
            &self.host.listen_list(),
            self.port,
            set,
            commands::cache_size_gb(self.total_ram().await, self.mongods_on_host().await),
            tls.as_ref()
                .map(|(certificate_key, trusted)| commands::TlsPaths {
                    certificate_key,
                    trusted,
                })
                .as_ref(),
        );
        self.host
            .write_private_file(&self.config_path(), config.as_bytes())
            .await
    }

    /// The MongoDB servers dbgroups runs on this host, this one included
    /// (each has a `mongod.conf` in its directory). The host has no
    /// directory listing, so `find` lists the servers' configs: `-L` because
    /// a server's directory may be a symlink, one level down because each
    /// server has its own directory. It runs as dbgroups itself, as the
    /// host's other file reads do, so it sees what those see. When it
    /// cannot run, the others count as none.
    async fn mongods_on_host(&self) -> usize {
        let Some(find) = self.host.find_program(&["find"]).await else {
            return 1;
        };
        let servers = self.host.servers_dir();
        let mut list = Program::new(&servers, &find);
        list.arg("-L")
            .arg(&servers)
            .args(["-mindepth", "2", "-maxdepth", "2"])
            .args(["-name", "mongod.conf", "-type", "f"]);
        list.as_service_user = false;
        let listing = self
            .host
            .run(&list, "find mongod.conf")
            .await
            .unwrap_or_default();
        other_servers_in(&listing, &self.name) + 1
    }

    /// The host's memory (`MemTotal` of /proc/meminfo), or 4 GiB when it
    /// cannot be read.
    async fn total_ram(&self) -> u64 {
        self.host
            .read_text(Path::new("/proc/meminfo"))
            .await
            .and_then(|text| mem_total_bytes(&text))
            .unwrap_or(4 << 30)
    }

    /// A direct connection to this server: as the administrator, or with
    /// no credentials (the localhost exception, before the first user).
    async fn client(&self, admin_password: Option<&str>) -> Result<mongodb::Client, EngineError> {
        let (address, port) = self.host.client_endpoint(self.port).await?;
        let mut options = ClientOptions::builder()
            .hosts(vec![ServerAddress::Tcp {
                host: address,
                port: Some(port),
            }])
            .direct_connection(true)
            .server_selection_timeout(Duration::from_secs(5))
            .connect_timeout(Duration::from_secs(5))
            .build();
        options.tls = self.client_tls().await?;
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
        let client = self.client(admin_password).await?;
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
        self.check_installed_series().await?;
        self.write_config(set, keyfile_secret).await?;
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
        let client = self.client(Some(admin_password)).await?;
        // In its home (`admin`): the URL names it as `authSource`
        // (commands::create_app_user).
        let database = client.database(app.home);
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
        self.check_installed_series().await?;
        self.write_config(set, keyfile_secret).await?;
        self.ensure_running().await
    }

    /// Refuses to build a member of another release series than the
    /// group's: `mongod` is found on PATH whatever its version, and members
    /// of one set run one series (as does an oplog-replayed import).
    async fn check_installed_series(&self) -> Result<(), EngineError> {
        // It belongs to no server, so its `HOME` is the servers' directory.
        let mut ask = Program::new(&self.host.servers_dir(), &self.mongod);
        ask.arg("--version");
        let said = self.host.run(&ask, "mongod --version").await?;
        let wanted = commands::series_of(&self.version);
        match commands::installed_series(&said) {
            Some(found) if Some(&found) == wanted.as_ref() => Ok(()),
            found => Err(EngineError::MissingBinary {
                program: "mongod".into(),
                engine: "mongodb".into(),
                version: self.version.clone(),
                looked: match found {
                    Some(series) => format!("{}, which is {series}", self.mongod.display()),
                    None => format!("{}, whose version is unreadable", self.mongod.display()),
                },
                remedy: format!(
                    "install mongodb-org-server {} (repo.mongodb.org), or set the group's version to the installed series",
                    self.version
                ),
            }),
        }
    }

    /// Starts mongod detached (it outlives dbgroups) and waits for it.
    pub async fn ensure_running(&self) -> Result<(), EngineError> {
        if self.is_running().await {
            return Ok(());
        }
        let mut start = Program::new(&self.dir(), &self.mongod);
        start
            .arg(format!("--config={}", self.config_path().display()))
            .stdout_null();
        // Named by its path: a failed start says which mongod it was.
        self.host
            .start_server(
                &self.name,
                &start,
                crate::host::ServerStart::Foreground,
                &self.mongod.display().to_string(),
            )
            .await?;
        let answered = wait_every(
            &format!("{} to answer", self.name),
            120,
            Duration::from_millis(500),
            || async { Ok(self.is_running().await) },
        )
        .await;
        if answered.is_ok() {
            return Ok(());
        }
        Err(EngineError::Command {
            command: "mongod".into(),
            status: "not answering after 120 s".into(),
            stderr: self.host.tail(&self.log_file(), 5).await,
        })
    }

    /// The primary of `set` among `candidates` (the group's recorded
    /// members), by `hello`: after a failover it is not the recorded
    /// master, which then refuses reconfigs (NotWritablePrimary).
    pub async fn find_primary(
        candidates: &[MongoServer],
        set: &str,
    ) -> Result<MongoServer, EngineError> {
        let mut answers = Vec::new();
        for candidate in candidates {
            let hello = candidate
                .admin_command(None, doc! { "hello": 1 })
                .await
                .ok()
                .map(|answer| commands::read_hello(&answer));
            answers.push((candidate.host(), hello));
        }
        let host =
            commands::choose_primary(&answers, set).map_err(|detail| EngineError::Command {
                command: "hello".into(),
                status: "no primary".into(),
                stderr: detail,
            })?;
        candidates
            .iter()
            .find(|c| c.host() == host)
            .cloned()
            .ok_or_else(|| EngineError::Command {
                command: "hello".into(),
                status: "no primary".into(),
                stderr: format!("{host} is not a recorded member"),
            })
    }

    /// Adds `member` to this primary's set (`rs.add`) and waits until it
    /// has copied the data and reached SECONDARY, for as long as its
    /// initial sync makes progress ([`SYNC_STALL_SECONDS`]). It votes when
    /// `voting` and the set has fewer than seven voters.
    pub async fn add_member(
        &self,
        set: &str,
        admin_password: &str,
        member: &MongoServer,
        voting: bool,
    ) -> Result<(), EngineError> {
        let host = member.host();
        self.reconfigure(set, admin_password, |config| {
            commands::with_member(config, &host, voting)
        })
        .await?;
        self.wait_until_secondary(admin_password, member).await
    }

    async fn wait_until_secondary(
        &self,
        admin_password: &str,
        member: &MongoServer,
    ) -> Result<(), EngineError> {
        let host = member.host();
        let client = self.client(Some(admin_password)).await?;
        let member_client = member.client(Some(admin_password)).await?;
        let started = tokio::time::Instant::now();
        let mut clock = commands::StallClock::default();
        let mut ticker = crate::progress::Ticker::default();
        let failed = |status: String, detail: String| EngineError::Command {
            command: format!("the initial sync of {}", member.name),
            status,
            stderr: detail,
        };
        let result = loop {
            if crate::interrupt::stopping() {
                break Err(crate::interrupt::stopped(&format!(
                    "{} to reach SECONDARY",
                    member.name
                )));
            }
            let status = match client
                .database("admin")
                .run_command(doc! { "replSetGetStatus": 1 })
                .await
            {
                Ok(status) => status,
                Err(error) => break Err(self.error(error)),
            };
            let members = commands::member_statuses(&status).unwrap_or_default();
            let Some(own) = members.iter().find(|m| m.host == host) else {
                break Err(failed(
                    "not a member".into(),
                    format!("{host} is no longer in the set's config"),
                ));
            };
            if own.state == "SECONDARY" || own.state == "PRIMARY" {
                break Ok(());
            }
            let detail = match &own.message {
                Some(message) => format!("{}: {message}", own.state),
                None => own.state.clone(),
            };
            if commands::never_secondary(own) {
                break Err(failed("cannot reach SECONDARY".into(), detail));
            }
            // An initial sync of a large set takes long: say how it goes.
            ticker.tick(&format!(
                "waiting for {} to reach SECONDARY ({detail})",
                member.name
            ));
            // The member's own status has the sync's progress (and
            // `tooStale`) once its users are there to authenticate with.
            let own_status = member_client
                .database("admin")
                .run_command(doc! { "replSetGetStatus": 1 })
                .await
                .ok();
            if own_status
                .as_ref()
                .is_some_and(|s| s.get_bool("tooStale").unwrap_or(false))
            {
                break Err(failed("too stale".into(), detail));
            }
            let token = commands::sync_progress(own, own_status.as_ref());
            if clock.stalled_for(&token, started.elapsed().as_secs()) >= SYNC_STALL_SECONDS {
                break Err(failed(
                    format!("no progress for {SYNC_STALL_SECONDS} s"),
                    detail,
                ));
            }
            tokio::time::sleep(POLL).await;
        };
        client.shutdown().await;
        member_client.shutdown().await;
        result
    }

    /// This member's own view of itself (`replSetGetStatus`), judged. A
    /// member in its initial sync may not have the users yet, so a refused
    /// login says it is on its way, not broken (a wipe would restart it).
    pub async fn own_health(&self, admin_password: &str) -> Result<MemberHealth, EngineError> {
        match self
            .admin_command(Some(admin_password), doc! { "replSetGetStatus": 1 })
            .await
        {
            Ok(status) => Ok(commands::own_health(&status, &self.host())),
            Err(error) if is_unauthorized(&error) => Ok(MemberHealth::Syncing {
                detail: format!("its status is not readable yet ({error})"),
            }),
            Err(error) => Err(error),
        }
    }

    /// Whether this member says it is too stale to catch up.
    pub async fn is_too_stale(&self, admin_password: &str) -> bool {
        matches!(
            self.own_health(admin_password).await,
            Ok(MemberHealth::Broken { detail }) if detail.contains("tooStale")
        )
    }

    /// Stops this member, empties its data directory and starts it again:
    /// MongoDB then copies everything from the set by initial sync.
    pub async fn start_over(&self, admin_password: &str) -> Result<(), EngineError> {
        self.ensure_stopped(admin_password).await?;
        self.host
            .remove_dir(&self.data_dir())
            .await
            .map_err(worded("empty the data directory"))?;
        self.host.private_dir(&self.data_dir()).await?;
        self.ensure_running().await
    }

    /// Removes `host` from this primary's set (`rs.remove`).
    pub async fn remove_member(
        &self,
        set: &str,
        admin_password: &str,
        host: &str,
    ) -> Result<(), EngineError> {
        self.reconfigure(set, admin_password, |config| {
            commands::without_member(config, host)
        })
        .await
    }

    /// One reconfig of `set` at a time in this process, on a config read
    /// just before it, retried (re-read) while the server says another
    /// reconfig is in the way ([`reconfig`]).
    async fn reconfigure(
        &self,
        set: &str,
        admin_password: &str,
        change: impl Fn(&Document) -> Result<Option<Document>, String>,
    ) -> Result<(), EngineError> {
        let client = self.client(Some(admin_password)).await?;
        let (client_ref, this) = (&client, self);
        let result = reconfig::reconfigure_with(
            set,
            reconfig::Retry::default(),
            move || async move {
                let answer = client_ref
                    .database("admin")
                    .run_command(doc! { "replSetGetConfig": 1 })
                    .await
                    .map_err(|e| this.error(e))?;
                answer
                    .get_document("config")
                    .cloned()
                    .map_err(|_| EngineError::Command {
                        command: "replSetGetConfig".into(),
                        status: "refused".into(),
                        stderr: "replSetGetConfig returned no config".into(),
                    })
            },
            move |updated| async move {
                client_ref
                    .database("admin")
                    .run_command(commands::reconfig(updated))
                    .await
                    .map(drop)
                    .map_err(|e| reconfig::Refusal {
                        code: command_code(&e),
                        error: this.error(e),
                    })
            },
            change,
        )
        .await;
        client.shutdown().await;
        result.map(drop)
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

    /// The bytes a dump copies: `dbStats.dataSize` summed over the
    /// databases it copies (commands::copied_databases).
    pub async fn data_size(&self, admin_password: &str) -> Result<u64, EngineError> {
        let client = self.client(Some(admin_password)).await?;
        let result = async {
            let list = client
                .database("admin")
                .run_command(doc! { "listDatabases": 1, "nameOnly": true })
                .await?;
            let mut total = 0u64;
            for name in commands::copied_databases(&list) {
                let stats = client
                    .database(&name)
                    .run_command(doc! { "dbStats": 1 })
                    .await?;
                total = total.saturating_add(commands::data_size_of(&stats));
            }
            Ok::<u64, mongodb::error::Error>(total)
        }
        .await;
        client.shutdown().await;
        result.map_err(|e| self.error(e))
    }

    /// Each collection of `database` and its documents (counted, not
    /// estimated: a verify compares them with the backup's record).
    pub async fn collection_counts(
        &self,
        admin_password: &str,
        database: &str,
    ) -> Result<std::collections::BTreeMap<String, u64>, EngineError> {
        let client = self.client(Some(admin_password)).await?;
        let result = async {
            let db = client.database(database);
            let mut counts = std::collections::BTreeMap::new();
            for name in db.list_collection_names().await? {
                if name.starts_with("system.") {
                    continue;
                }
                let count = db
                    .collection::<Document>(&name)
                    .count_documents(doc! {})
                    .await?;
                counts.insert(name, count);
            }
            Ok::<_, mongodb::error::Error>(counts)
        }
        .await;
        client.shutdown().await;
        result.map_err(|e| self.error(e))
    }

    /// A file for the database tools' `--config`, holding the password.
    async fn tools_config(&self, admin_password: &str) -> Result<PathBuf, EngineError> {
        let path = self.dir().join("tools.yaml");
        self.host
            .write_private_file(&path, commands::tools_config(admin_password).as_bytes())
            .await?;
        Ok(path)
    }

    /// `mongodump --oplog` of this server into `staging/dump` on `into`:
    /// the host of the server that restores it. mongodump runs there and
    /// connects to this server's address (its own host's, or across
    /// hosts), so the data never passes through the machine running
    /// dbgroups. Its config file, with the password, sits in the staging
    /// entry (0600) and is removed after.
    pub async fn dump_to(
        &self,
        into: &HostRef,
        staging: &Path,
        admin_password: &str,
    ) -> Result<(), EngineError> {
        let target = staging.join("dump");
        if into.is_file(&target.join(".complete")).await {
            return Ok(());
        }
        into.private_dir(staging).await?;
        into.remove_dir(&target)
            .await
            .map_err(worded("remove the unfinished"))?;
        let tool = Self::program(into, "mongodump", &self.version).await?;
        let config = staging.join("tools.yaml");
        into.write_private_file(&config, commands::tools_config(admin_password).as_bytes())
            .await?;
        // Over TLS when it serves it, verified against its authority and
        // the address dialled (which its certificate names).
        let authority = self.tools_authority(into, staging).await?;
        let mut dump = Program::new(staging, &tool);
        dump.args(commands::dump_args(
            &config.display().to_string(),
            ADMIN_USER,
            &self.host.dial_address(),
            self.port,
            &target.display().to_string(),
            authority.as_deref(),
        ));
        let result = into.run_stoppable(&dump, "mongodump --oplog").await;
        let _ = into.remove_file(&config).await;
        result?;
        remove_system_databases(into, &target).await?;
        into.write_private_file(&target.join(".complete"), b"")
            .await
    }

    /// `mongorestore --oplogReplay` of `staging/dump` into this server.
    pub async fn restore_from(
        &self,
        staging: &Path,
        admin_password: &str,
    ) -> Result<(), EngineError> {
        let tool = Self::program(&self.host, "mongorestore", &self.version).await?;
        let config = self.tools_config(admin_password).await?;
        let authority = self.tools_authority(&self.host, staging).await?;
        let mut restore = Program::new(&self.dir(), &tool);
        restore.args(commands::restore_args(
            &config.display().to_string(),
            ADMIN_USER,
            &self.host.dial_address(),
            self.port,
            &staging.join("dump").display().to_string(),
            authority.as_deref(),
        ));
        let result = self
            .host
            .run_stoppable(&restore, "mongorestore --oplogReplay")
            .await;
        let _ = self.host.remove_file(&config).await;
        result.map(drop)
    }

    /// Gives the application's user (kept in `admin`) read and
    /// write on a database a copy brought under another name.
    pub async fn grant_database(
        &self,
        admin_password: &str,
        user: (&str, &str),
        database: &str,
    ) -> Result<(), EngineError> {
        let (username, home) = user;
        let client = self.client(Some(admin_password)).await?;
        let answer = client
            .database(home)
            .run_command(commands::grant_read_write(username, database))
            .await;
        client.shutdown().await;
        answer.map(drop).map_err(|e| self.error(e))
    }

    /// Stops mongod: `shutdown` as the administrator, and when that does
    /// not end it within [`SHUTDOWN_SECONDS`] (a member that has not joined
    /// the set has no users yet, so the administrator cannot log in),
    /// `mongod --shutdown --dbpath`, which signals the process that holds
    /// the data directory (Linux; manual, "mongod --shutdown").
    pub async fn ensure_stopped(&self, admin_password: &str) -> Result<(), EngineError> {
        if !self.is_running().await {
            return Ok(());
        }
        // `shutdown` ends the connection instead of answering; `force`
        // lets a primary of a one-member set (or a lagging member) stop.
        let said = self
            .admin_command(Some(admin_password), doc! { "shutdown": 1, "force": true })
            .await;
        let what = format!("shutdown of {}", self.name);
        // A refused login is not waited out: the fallback needs none.
        let refused = matches!(&said, Err(error) if is_unauthorized(error));
        if !refused
            && wait_every(
                &what,
                SHUTDOWN_SECONDS,
                Duration::from_millis(500),
                || async { Ok(!self.is_running().await) },
            )
            .await
            .is_ok()
        {
            return Ok(());
        }
        let mut shutdown = Program::new(&self.dir(), &self.mongod);
        shutdown.args(commands::shutdown_args(
            &self.data_dir().display().to_string(),
        ));
        self.host
            .run_stoppable(&shutdown, "mongod --shutdown")
            .await?;
        wait_every(&what, 60, Duration::from_millis(500), || async {
            Ok(!self.is_running().await)
        })
        .await
    }
}

/// Deletes `admin/` and `config/` from a mongodump directory: the source's
/// users, roles and cluster data stay behind, so the restore needs no
/// namespace filter (which `--oplogReplay` refuses). The dump's other
/// databases and its `oplog.bson` are kept.
pub async fn remove_system_databases(host: &HostRef, dump: &Path) -> Result<(), EngineError> {
    for database in commands::SYSTEM_DATABASES {
        let dir = dump.join(database);
        host.remove_dir(&dir)
            .await
            .map_err(worded("remove from the dump"))?;
    }
    Ok(())
}

/// The host's error for a removal in the words this engine used for it
/// before the host did it (`cannot empty the data directory …`, not
/// `cannot delete …`): the step says what it was doing.
fn worded(action: &'static str) -> impl FnOnce(EngineError) -> EngineError {
    move |error| match error {
        EngineError::Io { path, source, .. } => EngineError::Io {
            action,
            path,
            source,
        },
        other => other,
    }
}

/// How many servers other than `own` have a config in `find`'s listing
/// (one `<servers>/<name>/mongod.conf` a line).
fn other_servers_in(listing: &str, own: &str) -> usize {
    listing
        .lines()
        .filter_map(|line| Path::new(line).parent()?.file_name())
        .filter(|name| *name != own)
        .count()
}

/// `MemTotal` of a /proc/meminfo text, in bytes.
fn mem_total_bytes(meminfo: &str) -> Option<u64> {
    meminfo
        .lines()
        .find_map(|line| line.strip_prefix("MemTotal:"))
        .and_then(|rest| {
            rest.trim()
                .trim_end_matches("kB")
                .trim()
                .parse::<u64>()
                .ok()
        })
        .map(|kb| kb * 1024)
}

/// The application's account.
#[derive(Debug, Clone, Copy)]
pub struct AppUser<'a> {
    pub username: &'a str,
    pub password: &'a str,
    pub database: &'a str,
    /// Where the user is made: `admin` for groups made since issue 21,
    /// `database` for older ones (the URL's `authSource` says the same).
    pub home: &'a str,
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

/// Unauthorized (13), a failed authentication (18), or the driver's own
/// authentication error (a login the server refused during the handshake).
fn is_unauthorized(error: &EngineError) -> bool {
    is_code(error, 13)
        || is_code(error, 18)
        || matches!(error, EngineError::Mongodb { source, .. }
            if matches!(source.kind.as_ref(), mongodb::error::ErrorKind::Authentication { .. }))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What `find` prints for the servers' configs: this server's own
    /// does not count among the others.
    #[test]
    fn the_other_servers_are_those_with_a_config_but_this_one() {
        let listing = "/s/servers/shop-a/mongod.conf\n/s/servers/shop-b/mongod.conf\n";
        assert_eq!(other_servers_in(listing, "shop-a"), 1);
        assert_eq!(other_servers_in(listing, "shop-c"), 2);
        assert_eq!(other_servers_in("", "shop-a"), 0);
    }

    #[test]
    fn the_host_memory_is_read_from_meminfo_in_bytes() {
        let meminfo = "MemTotal:       16315412 kB\nMemFree:         1234 kB\n";
        assert_eq!(mem_total_bytes(meminfo), Some(16_315_412 * 1024));
        assert_eq!(mem_total_bytes("MemFree: 1 kB\n"), None);
    }
}

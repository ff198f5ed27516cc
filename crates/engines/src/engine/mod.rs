//! The engine interface: one implementation per database type, found by
//! [`engine_for`]. The executor and the CLI call only this; what a step
//! means for PostgreSQL, Redis, the MySQL family or MongoDB is decided in
//! that engine's module here (`tests/integration/architecture.rs` checks
//! that no database type is matched on in `crates/apply` or `crates/cli`).
//!
//! Every operation is an idempotent "ensure": run again after a crash, it
//! finishes what is missing and changes nothing that is done.

mod mongodb;
mod mysql;
mod postgresql;
mod redis;

use std::path::Path;

use dbgroups_manifest::{DbType, Engine};

use crate::error::EngineError;
use crate::host::HostRef;

/// One server as an operation addresses it: where it lives and what runs.
#[derive(Debug, Clone)]
pub struct ServerRef {
    pub host: HostRef,
    pub name: String,
    /// The member of the family (MariaDB, MySQL, Percona; the type's only
    /// engine elsewhere).
    pub engine: Engine,
    pub version: String,
    pub port: u16,
    /// How it is reached beyond loopback, for a server on a host whose
    /// application has a certificate authority; `None` on this machine,
    /// where servers listen on loopback only.
    pub exposure: Option<std::sync::Arc<Exposure>>,
}

/// What a server on a host shows the network: the authority its
/// certificate comes from (clients, replicas and backups taken on other
/// hosts verify it against this), and the client networks it lets in
/// besides loopback and its peers' hosts (`allow_from`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exposure {
    /// The authority's certificate (PEM).
    pub authority: String,
    pub allow_from: Vec<String>,
}

/// A server's certificate and key (PEM), to install on its host.
#[derive(Clone)]
pub struct Certificate {
    pub certificate: String,
    pub key: String,
}

impl std::fmt::Debug for Certificate {
    // The key never reaches a log or an error through Debug.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Certificate").finish_non_exhaustive()
    }
}

impl ServerRef {
    /// The same server on another port (a pending one whose port was
    /// taken before it first bound it).
    pub fn on_port(&self, port: u16) -> Self {
        Self {
            port,
            ..self.clone()
        }
    }
}

/// A secret of a group, as an operation asks for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecretKind {
    /// The group's superuser (PostgreSQL `postgres`, MySQL `root`, MongoDB
    /// `admin`).
    Admin,
    /// The replication account's password (MongoDB: the keyfile).
    Replication,
    /// The application account's password (Redis: `requirepass`).
    App,
}

/// The operations an engine carries out, to ask which secrets each reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    Provision,
    MeasureData,
    Backup,
    Restore,
    /// Both the replica's and its source's group are asked.
    Follow,
    Detach,
    Remove,
    Start,
    Observe,
    /// Letting another host's servers in (replication, backups).
    Admit,
    /// Installing a server's certificate, or its group's client networks.
    Secure,
}

/// A group's accounts as one operation may read them: the names, and only
/// the secrets the engine declared for that operation (the others are
/// absent, and asking for one is an error naming it).
#[derive(Clone, Default)]
pub struct GroupAccess {
    pub username: String,
    pub database: String,
    /// The database the application account lives in (MongoDB's
    /// `authSource`), when it is not `database`.
    pub account_database: Option<String>,
    /// The replica set's name (MongoDB), decided by the plan.
    pub set_name: String,
    pub admin: Option<String>,
    pub replication: Option<String>,
    pub app: Option<String>,
}

impl std::fmt::Debug for GroupAccess {
    // Secrets never reach a log or an error through Debug.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GroupAccess")
            .field("username", &self.username)
            .field("database", &self.database)
            .field("set_name", &self.set_name)
            .field("admin", &self.admin.as_ref().map(|_| "…"))
            .field("replication", &self.replication.as_ref().map(|_| "…"))
            .field("app", &self.app.as_ref().map(|_| "…"))
            .finish()
    }
}

impl GroupAccess {
    pub fn admin(&self) -> Result<&str, EngineError> {
        secret(self.admin.as_deref(), "admin password")
    }

    pub fn replication(&self) -> Result<&str, EngineError> {
        secret(self.replication.as_deref(), "replication password")
    }

    pub fn app(&self) -> Result<&str, EngineError> {
        secret(self.app.as_deref(), "password")
    }

    /// The database the application account authenticates against.
    pub fn account_home(&self) -> &str {
        self.account_database.as_deref().unwrap_or(&self.database)
    }

    /// Only the secrets `kinds` names.
    pub fn only(&self, kinds: &[SecretKind]) -> Self {
        let keep = |kind, value: &Option<String>| {
            if kinds.contains(&kind) {
                value.clone()
            } else {
                None
            }
        };
        Self {
            admin: keep(SecretKind::Admin, &self.admin),
            replication: keep(SecretKind::Replication, &self.replication),
            app: keep(SecretKind::App, &self.app),
            ..self.clone()
        }
    }
}

fn secret<'a>(value: Option<&'a str>, what: &str) -> Result<&'a str, EngineError> {
    value.ok_or_else(|| EngineError::StateMismatch(format!("no {what} recorded")))
}

/// Another server an operation involves, with its group's access.
#[derive(Debug, Clone)]
pub struct Peer {
    pub server: ServerRef,
    pub access: GroupAccess,
}

/// How a backup copies: the data files, or a dump of the data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Copy {
    Physical,
    Logical,
}

/// What a server's group looks like around it, for operations that need
/// its neighbours: the server it streams from, and the group's members.
#[derive(Debug, Clone, Default)]
pub struct Surroundings {
    /// The server it streams from (its group's master, or its source
    /// group's), when recorded.
    pub upstream: Option<Peer>,
    /// The other recorded members of its group.
    pub members: Vec<ServerRef>,
}

/// A replica starting to follow its source.
#[derive(Debug, Clone)]
pub struct FollowRequest<'a> {
    pub replica: &'a ServerRef,
    pub replica_access: &'a GroupAccess,
    pub source: &'a ServerRef,
    pub source_access: &'a GroupAccess,
    /// The source's group's other members (the replica excluded), for a
    /// set that joins through its current primary.
    pub source_members: &'a [ServerRef],
    /// The backup of the source this apply restored on the replica, when
    /// there was one: where a dump's replication position is read.
    pub restored_from: Option<&'a Path>,
    /// A re-sync the plan asked for: where the engine copies the data
    /// itself on follow, it empties the replica first.
    pub resync: bool,
    /// The replica gets a vote (MongoDB).
    pub voting: bool,
}

/// What a restore learnt.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Restored {
    /// The database the data now lives in, when the copy kept the
    /// source's database name (its replication events name it).
    pub database: Option<String>,
}

/// A server's own account of itself, read once for `status` and refresh.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observation {
    pub up: bool,
    /// For a replica: whether it follows, and how far behind.
    pub replication: Option<ReplicaHealth>,
    /// One line for `status`: what the server says about replication, or
    /// why it does not answer.
    pub summary: String,
}

/// A replica's replication, as the planner judges it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ReplicaHealth {
    pub streaming: bool,
    pub lag_seconds: Option<u64>,
    /// Why it does not stream.
    pub detail: Option<String>,
    /// The replication offset it holds (Redis), when known.
    pub held_offset: Option<u64>,
    /// It is reconnecting by itself (a retry in progress): not broken.
    pub reconnecting: bool,
}

impl ReplicaHealth {
    pub fn broken(detail: String) -> Self {
        Self {
            detail: Some(detail),
            ..Self::default()
        }
    }
}

/// What `observe` is asked.
#[derive(Debug, Clone)]
pub struct ObserveRequest<'a> {
    pub server: &'a ServerRef,
    pub access: &'a GroupAccess,
    /// It is a replica (a slave, or the master of a replicating group).
    pub replica: bool,
    /// Its upstream, when in this application (a missing slot is checked
    /// on it).
    pub upstream: Option<&'a Peer>,
    /// The names of the servers of its application, to name replicas by
    /// server rather than by slot.
    pub known_servers: &'a [String],
}

/// One database type's knowledge. Object-safe: the registry hands out
/// `&'static dyn DatabaseEngine`.
#[async_trait::async_trait]
pub trait DatabaseEngine: Send + Sync + std::fmt::Debug {
    fn db_type(&self) -> DbType;

    /// The database's own port, which a server on a host of its own
    /// listens on unless the host already uses it.
    fn default_port(&self) -> u16;

    /// The Debian/Ubuntu packages a server of `engine` at `version` needs,
    /// and the program whose presence shows them installed. On an ssh host
    /// apply installs them when missing (`Host::ensure_packages`); the
    /// plan's preflight checks that they are there or installable.
    fn packages(&self, engine: Engine, version: &str) -> crate::host::Packages;

    /// Which group secrets `operation` reads; the executor hands over only
    /// those.
    fn secrets_for(&self, operation: Operation) -> &'static [SecretKind];

    /// The port an earlier (perhaps interrupted) provision or follow wrote
    /// into the server's config, so a re-run keeps it.
    async fn earlier_port(&self, host: &HostRef, server: &str) -> Option<u16>;

    /// Makes a new server run on its port: a master initialised with the
    /// group's accounts; a slave as far as its engine readies one before
    /// its data arrives.
    async fn provision(
        &self,
        server: &ServerRef,
        access: &GroupAccess,
        master: bool,
    ) -> Result<(), EngineError>;

    /// The bytes a backup by `copy` would copy, by the engine's measure.
    async fn data_size(
        &self,
        server: &ServerRef,
        access: &GroupAccess,
        copy: Copy,
    ) -> Result<u64, EngineError>;

    /// A full backup of `server` into `at`, a directory on `into`: the
    /// host of the servers that restore it. Data moves host to host: where
    /// `into` is another host than the server's, the engine's tool runs on
    /// `into` against the server (which [`DatabaseEngine::admit`] let in),
    /// never through the machine running dbgroups.
    async fn backup(
        &self,
        server: &ServerRef,
        access: &GroupAccess,
        copy: Copy,
        into: &HostRef,
        at: &Path,
    ) -> Result<(), EngineError>;

    /// Lets the servers of `peer` reach `server` for replication and
    /// backups; callers ask only for another host than the server's own
    /// (its own is always let in), where the engine has rules of its own for
    /// who may connect (PostgreSQL's `pg_hba.conf`). An ensure: present
    /// already, nothing changes; added, the server reloads its rules
    /// without a restart.
    async fn admit(
        &self,
        _server: &ServerRef,
        _access: &GroupAccess,
        _peer: &HostRef,
    ) -> Result<(), EngineError> {
        Ok(())
    }

    /// Whether servers of this type on hosts serve TLS with the
    /// application's certificates (and need one before they start).
    fn serves_tls(&self) -> bool {
        false
    }

    /// Installs `certificate` as the server's own, before its first start
    /// (it may then start with TLS on) or to renew it (the running server
    /// reloads it without a restart). An ensure: the same files, nothing
    /// changes.
    async fn install_certificate(
        &self,
        server: &ServerRef,
        _access: &GroupAccess,
        _certificate: &Certificate,
    ) -> Result<(), EngineError> {
        Err(EngineError::Unsupported {
            what: format!("TLS certificates for {}", server.name),
            remedy: "this database type serves no TLS on hosts yet".into(),
        })
    }

    /// Lets exactly `networks` (CIDR) connect to the server, besides
    /// loopback and its peers' hosts: `allow_from`. An ensure; the server
    /// takes the rules without a restart.
    async fn allow(
        &self,
        server: &ServerRef,
        _access: &GroupAccess,
        _networks: &[String],
    ) -> Result<(), EngineError> {
        Err(EngineError::Unsupported {
            what: format!("allow_from for {}", server.name),
            remedy: "remove allow_from from the group: access rules for this database type on hosts are not built yet".into(),
        })
    }

    /// Whether `at` holds a finished backup by `copy` (an interrupted
    /// apply's is reused).
    async fn backup_is_complete(&self, host: &HostRef, at: &Path, copy: Copy) -> bool;

    /// The backup at `from` onto the server: data files replaced (and, with
    /// `take`, moved into place rather than copied), or a dump loaded.
    /// `source_database` is the database the backup's group records.
    async fn restore(
        &self,
        server: &ServerRef,
        access: &GroupAccess,
        from: &Path,
        copy: Copy,
        take: bool,
        source_database: &str,
    ) -> Result<Restored, EngineError>;

    /// Whether a copy by `copy` carries the source's accounts with its
    /// data (PostgreSQL's data files hold its roles), so the destination's
    /// recorded credentials become the source's.
    fn copy_carries_accounts(&self, _copy: Copy) -> bool {
        false
    }

    /// Whether following copies the data itself (a full or initial sync),
    /// so the room for it is checked before.
    fn follow_copies_data(&self) -> bool;

    /// The replica follows its source; done only once it does.
    async fn follow(&self, request: FollowRequest<'_>) -> Result<(), EngineError>;

    /// The server stops following and accepts writes; its old source (when
    /// still recorded) is cleaned up.
    async fn detach(
        &self,
        server: &ServerRef,
        access: &GroupAccess,
        old_source: Option<&Peer>,
    ) -> Result<(), EngineError>;

    /// The server is stopped and its traces on its upstream (or its set)
    /// dropped; the caller deletes its directory.
    async fn remove(
        &self,
        server: &ServerRef,
        access: &GroupAccess,
        around: &Surroundings,
    ) -> Result<(), EngineError>;

    /// The server runs again; a replica only once it follows again.
    async fn start(
        &self,
        server: &ServerRef,
        access: &GroupAccess,
        around: &Surroundings,
    ) -> Result<(), EngineError>;

    /// Whether the server answers, and what it says about replication;
    /// an error when it cannot even be asked (its programs are missing).
    async fn observe(&self, request: ObserveRequest<'_>) -> Result<Observation, EngineError>;

    /// How a managed backup (`dbgroups backup run`) of this engine copies,
    /// through [`DatabaseEngine::backup`]; `None` when dbgroups takes no
    /// managed backups of it (the error says what to do instead).
    fn managed_copy(&self) -> Result<Copy, EngineError> {
        Err(EngineError::Unsupported {
            what: format!("managed backups of {} groups", self.db_type()),
            remedy: "take them with the engine's own tool (docs/backups.md)".into(),
        })
    }

    /// The replication position a finished backup at `at` on `host` holds
    /// (an LSN, a GTID position, a replication offset), as the engine
    /// words it; `None` when it cannot tell.
    async fn backup_position(
        &self,
        _server: &ServerRef,
        _access: &GroupAccess,
        _host: &HostRef,
        _at: &Path,
    ) -> Option<String> {
        None
    }

    /// The data's own account (each table of the group's database and its
    /// rows, or each keyspace and its keys), read with the secrets of
    /// [`Operation::Observe`]: a managed backup records it, and a restore
    /// that verifies the backup must show it again.
    async fn data_summary(
        &self,
        _server: &ServerRef,
        _access: &GroupAccess,
    ) -> Result<DataSummary, EngineError> {
        Err(EngineError::Unsupported {
            what: format!("reading the data of a {} server", self.db_type()),
            remedy: "none yet".into(),
        })
    }
}

/// Names (tables, keyspaces) and their counts (rows, keys).
pub type DataSummary = std::collections::BTreeMap<String, u64>;

/// The engine for a database type: the one place the four are named
/// outside their own modules.
pub fn engine_for(db_type: DbType) -> &'static dyn DatabaseEngine {
    match db_type {
        DbType::Postgresql => &postgresql::Postgresql,
        DbType::Redis => &redis::Redis,
        DbType::Mysql => &mysql::MysqlFamily,
        DbType::Mongodb => &mongodb::Mongodb,
    }
}

/// A server that does not answer, with why.
fn down(detail: impl std::fmt::Display) -> Observation {
    Observation {
        up: false,
        replication: None,
        summary: detail.to_string(),
    }
}

/// The staging directories hold one of these when complete.
async fn any_file(host: &HostRef, at: &Path, files: &[&str]) -> bool {
    for file in files {
        if host.is_file(&at.join(file)).await {
            return true;
        }
    }
    false
}

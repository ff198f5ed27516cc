//! The typed manifest: what the user declared, each value with its span.

use crate::catalogue::{self, Version};
use crate::source::{Span, Spanned};

/// The four database types a manifest can declare, in the order they are
/// listed in documentation and output.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum DbType {
    Mysql,
    Postgresql,
    Redis,
    Mongodb,
}

impl DbType {
    pub const ALL: [DbType; 4] = [
        DbType::Mysql,
        DbType::Postgresql,
        DbType::Redis,
        DbType::Mongodb,
    ];

    /// The manifest key, which is also how plans and flags name the type.
    pub fn key(self) -> &'static str {
        match self {
            DbType::Mysql => "mysql",
            DbType::Postgresql => "postgresql",
            DbType::Redis => "redis",
            DbType::Mongodb => "mongodb",
        }
    }

    pub fn from_key(key: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.key() == key)
    }

    /// The engine a group of this type runs when `engine` is not given.
    pub fn default_engine(self) -> Engine {
        match self {
            DbType::Mysql => Engine::Mysql,
            DbType::Postgresql => Engine::Postgresql,
            DbType::Redis => Engine::Redis,
            DbType::Mongodb => Engine::Mongodb,
        }
    }
}

impl std::fmt::Display for DbType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.key())
    }
}

/// The server software. Only the mysql type has a choice (`engine:`).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Engine {
    Mysql,
    Percona,
    Mariadb,
    Postgresql,
    Redis,
    Mongodb,
}

impl Engine {
    /// The values the `engine:` key accepts.
    pub const MYSQL_FAMILY: [Engine; 3] = [Engine::Mysql, Engine::Percona, Engine::Mariadb];

    pub fn key(self) -> &'static str {
        match self {
            Engine::Mysql => "mysql",
            Engine::Percona => "percona",
            Engine::Mariadb => "mariadb",
            Engine::Postgresql => "postgresql",
            Engine::Redis => "redis",
            Engine::Mongodb => "mongodb",
        }
    }

    pub fn db_type(self) -> DbType {
        match self {
            Engine::Mysql | Engine::Percona | Engine::Mariadb => DbType::Mysql,
            Engine::Postgresql => DbType::Postgresql,
            Engine::Redis => DbType::Redis,
            Engine::Mongodb => DbType::Mongodb,
        }
    }

    pub fn from_mysql_family_key(key: &str) -> Option<Self> {
        Self::MYSQL_FAMILY.into_iter().find(|e| e.key() == key)
    }
}

impl Engine {
    /// The product's own name, for sentences: MariaDB is not "mysql".
    pub fn product_name(self) -> &'static str {
        match self {
            Engine::Mysql => "MySQL",
            Engine::Percona => "Percona Server",
            Engine::Mariadb => "MariaDB",
            Engine::Postgresql => "PostgreSQL",
            Engine::Redis => "Redis",
            Engine::Mongodb => "MongoDB",
        }
    }
}

impl std::fmt::Display for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.key())
    }
}

/// A manifest after parsing: the application and its groups, in the order
/// they were written.
#[derive(Debug, Clone)]
pub struct Manifest {
    /// `--app` when given, else the manifest's `application:`.
    pub application: Option<Spanned<String>>,
    /// The environment section the groups were read from, if any.
    pub environment: Option<String>,
    pub groups: Vec<Group>,
}

impl Manifest {
    pub fn groups_of(&self, db_type: DbType) -> impl Iterator<Item = &Group> {
        self.groups.iter().filter(move |g| g.db_type == db_type)
    }

    pub fn group(&self, db_type: DbType, name: &str) -> Option<&Group> {
        self.groups_of(db_type).find(|g| g.name.value == name)
    }

    pub fn servers(&self) -> impl Iterator<Item = (&Group, &Server)> {
        self.groups
            .iter()
            .flat_map(|g| g.servers.iter().map(move |s| (g, s)))
    }

    /// The group whose values the root variables (`MYSQL_ADDRESS`) carry:
    /// the one marked `primary: true`, else the first declared.
    pub fn primary_group(&self, db_type: DbType) -> Option<&Group> {
        self.groups_of(db_type)
            .find(|g| g.is_primary())
            .or_else(|| self.groups_of(db_type).next())
    }
}

#[derive(Debug, Clone)]
pub struct Group {
    pub db_type: DbType,
    /// The group's name, spanned at its key (or at the type key for the
    /// short form, whose group is always `default`).
    pub name: Spanned<String>,
    /// Written in the short form (`redis: { servers: … }`).
    pub short_form: bool,
    pub configuration: Configuration,
    pub primary: Option<Spanned<bool>>,
    pub backups: Backups,
    pub replicate_from: Option<GroupRef>,
    pub import_from: Option<GroupRef>,
    /// MongoDB only: `false` keeps dbgroups from adding a member to an even
    /// count; the last declared server then joins without a vote.
    pub add_odd_member: Option<Spanned<bool>>,
    /// The client networks that may connect to the group's servers on
    /// hosts, as CIDR text with no host bits (`10.0.1.0/24`; a bare
    /// address is its own /32 or /128), in the order written.
    pub allow_from: Vec<Spanned<String>>,
    /// The first server is the master, the rest are its slaves.
    pub servers: Vec<Server>,
    /// The span of the `servers:` key, when present.
    pub servers_key: Option<Span>,
}

impl Group {
    /// The short form only ever declares the group named `default`.
    pub const SHORT_FORM_NAME: &'static str = "default";

    pub fn engine(&self) -> Engine {
        self.configuration
            .engine
            .as_ref()
            .map_or(self.db_type.default_engine(), |e| e.value)
    }

    /// The declared version, or the catalogue's default for the engine.
    pub fn version(&self) -> Option<Version> {
        match &self.configuration.version {
            Some(v) => Version::parse(&v.value),
            None => Version::parse(catalogue::default_version(self.engine())),
        }
    }

    pub fn is_primary(&self) -> bool {
        self.primary.as_ref().is_some_and(|p| p.value)
    }

    /// Whether dbgroups adds a member to an even count (the default).
    pub fn adds_odd_member(&self) -> bool {
        self.add_odd_member.as_ref().is_none_or(|a| a.value)
    }

    pub fn managed_backups(&self) -> bool {
        self.backups.managed.as_ref().is_some_and(|m| m.value)
    }

    /// `backups.keep`, or the default.
    pub fn backups_kept(&self) -> u32 {
        self.backups
            .keep
            .as_ref()
            .map_or(Backups::DEFAULT_KEEP, |k| k.value)
    }

    /// `TYPE.NAME`, the form flags such as `--add-group` take.
    pub fn address(&self) -> String {
        format!("{}.{}", self.db_type, self.name.value)
    }
}

#[derive(Debug, Clone, Default)]
pub struct Configuration {
    pub engine: Option<Spanned<Engine>>,
    /// Kept as written (`10.10` is not `10.1`); see [`Version`].
    pub version: Option<Spanned<String>>,
    pub operating_system: Option<Spanned<String>>,
    /// In gigabytes.
    pub root_disk_size: Option<Spanned<u64>>,
    pub root_disk_type: Option<Spanned<String>>,
    pub encoding: Option<Spanned<String>>,
    pub tags: Vec<Tag>,
    /// `engine:` was written but named no engine we know (already reported).
    pub engine_unrecognised: bool,
}

/// A tag written either as a list item (`- backend`) or a map entry
/// (`team: payments`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tag {
    pub key: Spanned<String>,
    pub value: Option<Spanned<String>>,
}

#[derive(Debug, Clone, Default)]
pub struct Backups {
    pub managed: Option<Spanned<bool>>,
    /// How many verified managed backups are kept (the newest verified one
    /// is kept whatever this says).
    pub keep: Option<Spanned<u32>>,
    /// Where managed backups are written; `None` is the state directory's
    /// `backups/managed`.
    pub store: Option<BackupStore>,
}

impl Backups {
    /// A week of daily backups.
    pub const DEFAULT_KEEP: u32 = 7;
}

/// `backups.store`: a directory on this machine (`store: PATH`) or on an
/// existing host reached over ssh (`store: { address, path }`).
#[derive(Debug, Clone)]
pub struct BackupStore {
    /// The ssh host; `None` is this machine.
    pub address: Option<Spanned<String>>,
    /// An absolute path (validated).
    pub path: Spanned<String>,
    pub span: Span,
}

/// `import_from.backup`: which managed backup of the source an import
/// restores, instead of taking a new one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BackupChoice {
    Latest,
    Id(String),
}

/// A reference to another group, from `replicate_from` or `import_from`.
#[derive(Debug, Clone)]
pub struct GroupRef {
    /// `None` means this manifest's own application.
    pub application: Option<Spanned<String>>,
    pub group: Spanned<String>,
    /// The whole value, for labels.
    pub span: Span,
    /// `import_from` only: the managed backup to restore.
    pub backup: Option<Spanned<BackupChoice>>,
}

impl GroupRef {
    /// True when the reference leaves this application.
    pub fn is_cross_application(&self, own_application: Option<&str>) -> bool {
        match (&self.application, own_application) {
            (None, _) => false,
            (Some(app), Some(own)) => app.value != own,
            (Some(_), None) => true,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Server {
    pub unique_name: Spanned<String>,
    /// The existing host (ssh provider): a host name, an IPv4 address or an
    /// IPv6 address, kept without brackets (the span covers what was written).
    pub address: Option<Spanned<String>>,
    /// The address for the `_EXT` variables, in the same form as `address`.
    pub public_address: Option<Spanned<String>>,
    /// The server's own `ssh:` keys, over the application's.
    pub ssh: Option<SshSettings>,
    /// The application's `ssh:` defaults (the top level's, with the chosen
    /// environment's keys over them), the same on every server. They live
    /// here rather than on [`Manifest`] so that code building a `Manifest`
    /// by hand is unaffected; [`Server::effective_ssh`] merges the two.
    pub application_ssh: Option<SshSettings>,
    pub vendor: Option<Spanned<String>>,
    pub size: Option<Spanned<String>>,
    pub region: Option<Spanned<String>>,
    pub key_name: Option<Spanned<String>>,
    pub root_disk_size: Option<Spanned<u64>>,
    pub root_disk_type: Option<Spanned<String>>,
    pub subnet_id: Option<Spanned<String>>,
    pub availability_zone: Option<Spanned<String>>,
    /// The span of the `server:` entry, for labels about the whole server.
    pub span: Span,
}

/// Where a server lives, derived from `vendor` and `address`.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum ProviderKind {
    Local,
    Ssh,
}

impl Server {
    /// The settings this server is reached with: its own `ssh:` keys over
    /// the application's. Empty for a server that has neither.
    pub fn effective_ssh(&self) -> SshSettings {
        match (&self.ssh, &self.application_ssh) {
            (Some(own), Some(defaults)) => own.over(defaults),
            (Some(own), None) => own.clone(),
            (None, Some(defaults)) => defaults.clone(),
            (None, None) => SshSettings::default(),
        }
    }

    /// Validation guarantees a supported vendor; this reads the choice.
    pub fn provider(&self) -> ProviderKind {
        match (
            self.vendor.as_ref().map(|v| v.value.as_str()),
            &self.address,
        ) {
            (Some("ssh"), _) | (None, Some(_)) => ProviderKind::Ssh,
            _ => ProviderKind::Local,
        }
    }
}

/// `ssh:` settings, at the top level (the application's defaults), in an
/// environment, or on a server. Each key is optional: what is unset comes
/// from the OpenSSH client's own configuration and agent. Validation
/// guarantees the forms in [`crate::hosts`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SshSettings {
    pub user: Option<Spanned<String>>,
    pub port: Option<Spanned<u16>>,
    /// As written: a leading `~/` is for the ssh layer to expand.
    pub identity_file: Option<Spanned<String>>,
    /// As written, like `identity_file`.
    pub known_hosts_file: Option<Spanned<String>>,
    /// One ProxyJump host, `[user@]host[:port]`, as written (an IPv6 host in
    /// brackets); [`crate::hosts::parse_jump`] splits it.
    pub jump: Option<Spanned<String>>,
    /// The `ssh:` key (for merged settings, the one whose keys win).
    pub span: Span,
}

impl SshSettings {
    /// Every key unset.
    pub fn is_empty(&self) -> bool {
        self.user.is_none()
            && self.port.is_none()
            && self.identity_file.is_none()
            && self.known_hosts_file.is_none()
            && self.jump.is_none()
    }

    /// These settings' keys, each falling back to `defaults`'.
    pub fn over(&self, defaults: &SshSettings) -> SshSettings {
        SshSettings {
            user: self.user.clone().or_else(|| defaults.user.clone()),
            port: self.port.clone().or_else(|| defaults.port.clone()),
            identity_file: self
                .identity_file
                .clone()
                .or_else(|| defaults.identity_file.clone()),
            known_hosts_file: self
                .known_hosts_file
                .clone()
                .or_else(|| defaults.known_hosts_file.clone()),
            jump: self.jump.clone().or_else(|| defaults.jump.clone()),
            span: self.span,
        }
    }

    /// The keys that are set, as `(key, value)` text in the manifest's key
    /// order (`user`, `port`, `identity_file`, `known_hosts_file`, `jump`).
    pub fn entries(&self) -> Vec<(&'static str, String)> {
        let text = |value: &Option<Spanned<String>>| value.as_ref().map(|v| v.value.clone());
        [
            ("user", text(&self.user)),
            ("port", self.port.as_ref().map(|p| p.value.to_string())),
            ("identity_file", text(&self.identity_file)),
            ("known_hosts_file", text(&self.known_hosts_file)),
            ("jump", text(&self.jump)),
        ]
        .into_iter()
        .filter_map(|(key, value)| value.map(|v| (key, v)))
        .collect()
    }
}

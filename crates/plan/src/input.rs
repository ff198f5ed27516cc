//! What the planner is given besides the manifest and the state: the user's
//! explicit intents (flags) and the facts observed on the servers.

use std::collections::{BTreeMap, BTreeSet};

use dbgroups_manifest::{DbType, Manifest};
use dbgroups_state::AppState;
use serde::{Deserialize, Serialize};

/// Everything a plan is a function of.
#[derive(Debug, Clone, Copy)]
pub struct PlanInput<'a> {
    pub manifest: &'a Manifest,
    /// This application's recorded state; `None` for a new application.
    pub state: Option<&'a AppState>,
    /// Other applications in the same store, for replication between
    /// applications.
    pub other_applications: &'a BTreeMap<String, AppState>,
    pub observed: &'a ObservedFacts,
    pub intents: &'a Intents,
}

/// `TYPE.NAME`, as flags write a group.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct GroupAddress {
    pub db_type: DbType,
    pub name: String,
}

impl GroupAddress {
    pub fn new(db_type: DbType, name: impl Into<String>) -> Self {
        Self {
            db_type,
            name: name.into(),
        }
    }
}

impl std::fmt::Display for GroupAddress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.db_type, self.name)
    }
}

impl std::str::FromStr for GroupAddress {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let (db_type, name) = text.split_once('.').ok_or_else(|| {
            format!("\"{text}\" is not TYPE.NAME (for example postgresql.reporting)")
        })?;
        let db_type = DbType::from_key(db_type).ok_or_else(|| {
            format!("\"{db_type}\" is not a type: mysql, postgresql, redis or mongodb")
        })?;
        if name.is_empty() {
            return Err(format!("\"{text}\" names no group"));
        }
        Ok(Self::new(db_type, name))
    }
}

/// The explicit intents: the only way groups and servers are added to an
/// existing application or removed from it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Intents {
    /// `--add-group TYPE.NAME`
    pub add_groups: BTreeSet<GroupAddress>,
    /// `--remove-group TYPE.NAME`
    pub remove_groups: BTreeSet<GroupAddress>,
    /// `--remove-server NAME`
    pub remove_servers: BTreeSet<String>,
    /// `--resync NAME`
    pub resync: BTreeSet<String>,
    /// `--restart-master NAME`: start a master found down although its
    /// replicas hold data it may have lost (rules: a restart discards what
    /// only the replicas hold), accepting that they copy its data again.
    #[serde(default)]
    pub restart_masters: BTreeSet<String>,
    /// `--skip-disk-check`: backups and restores run without the free-space
    /// check (the plan says so).
    #[serde(default)]
    pub skip_disk_check: bool,
    /// `destroy --app NAME`: every recorded group is named for removal
    /// because the whole application goes, which the changes' reasons say.
    #[serde(default)]
    pub destroy: bool,
}

/// What refreshing found on the servers. Plain data, so tests feed it in.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ObservedFacts {
    /// Whether the servers were asked at all (`--refresh=false` plans offline).
    pub refreshed: bool,
    pub servers: BTreeMap<String, ServerHealth>,
    /// A slave further behind than this is re-synchronised.
    pub max_lag_seconds: u64,
    /// The preflight of each existing host (by its address) that refresh
    /// reached or tried to: empty when not refreshed, and for an
    /// application with no server on a host.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub hosts: BTreeMap<String, HostFacts>,
    /// Less free space than this under a host's servers' directory blocks
    /// the changes that build servers there.
    #[serde(default = "default_min_free_bytes")]
    pub min_free_bytes: u64,
    /// When the plan is made (seconds since the Unix epoch): certificates
    /// due by then are renewed. `None` judges no certificate (an input
    /// that pins no time).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub now: Option<u64>,
}

impl ObservedFacts {
    /// Nothing observed: an offline plan.
    pub fn offline() -> Self {
        Self {
            refreshed: false,
            servers: BTreeMap::new(),
            max_lag_seconds: DEFAULT_MAX_LAG_SECONDS,
            hosts: BTreeMap::new(),
            min_free_bytes: DEFAULT_MIN_FREE_BYTES,
            now: None,
        }
    }
}

pub const DEFAULT_MAX_LAG_SECONDS: u64 = 300;

/// 1 GiB: room for a new server's files and a little data.
pub const DEFAULT_MIN_FREE_BYTES: u64 = 1 << 30;

fn default_min_free_bytes() -> u64 {
    DEFAULT_MIN_FREE_BYTES
}

/// What one existing host said before the plan: plain data, gathered by
/// refresh (`Host::preflight`), so tests feed it in.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostFacts {
    /// Why the host could not be reached (ssh's words); `None` when it was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unreachable: Option<String>,
    /// Its `/etc/os-release`; `None` when unreadable (or unreachable).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub os: Option<HostOs>,
    /// Free bytes under `/var/lib/dbgroups`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub free_bytes: Option<u64>,
    /// The packages of each engine and version the host's groups use.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub packages: Vec<PackageFacts>,
}

/// `ID`, `VERSION_ID` and `ID_LIKE` of a host's `/etc/os-release`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostOs {
    pub id: String,
    pub version_id: String,
    #[serde(default)]
    pub id_like: Vec<String>,
}

impl HostOs {
    /// Debian, Ubuntu, or like one of them: apt installs their packages.
    pub fn is_debian_family(&self) -> bool {
        std::iter::once(&self.id)
            .chain(&self.id_like)
            .any(|id| id == "debian" || id == "ubuntu")
    }
}

/// Whether one engine's packages (for one version) are on a host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PackageFacts {
    pub engine: dbgroups_manifest::Engine,
    pub version: String,
    /// The package names its engine gives.
    pub packages: Vec<String>,
    pub installed: bool,
    /// apt on the host can install them now.
    pub installable: bool,
    /// What to do when no distribution packages them (another vendor's
    /// repository).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outside_distribution: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServerHealth {
    pub up: bool,
    /// For a slave: the state of its replication.
    pub replication: Option<ReplicationHealth>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReplicationHealth {
    /// Receiving changes from its master.
    pub streaming: bool,
    pub lag_seconds: Option<u64>,
    /// The engine's own words when replication is broken.
    pub detail: Option<String>,
    /// How far into its master's replication stream the replica holds
    /// data, where the engine reports it (Redis's `slave_repl_offset`). A
    /// master that restarts from its own files may not have all of it.
    #[serde(default)]
    pub held_offset: Option<u64>,
    /// Not streaming, but retrying a connection its master refused or lost
    /// (MySQL's IO thread in `Connecting`): it resumes by itself once the
    /// master answers, so a re-sync now would replace its data for nothing.
    #[serde(default)]
    pub reconnecting: bool,
}

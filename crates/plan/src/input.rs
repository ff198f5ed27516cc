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
}

impl ObservedFacts {
    /// Nothing observed: an offline plan.
    pub fn offline() -> Self {
        Self {
            refreshed: false,
            servers: BTreeMap::new(),
            max_lag_seconds: DEFAULT_MAX_LAG_SECONDS,
        }
    }
}

pub const DEFAULT_MAX_LAG_SECONDS: u64 = 300;

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

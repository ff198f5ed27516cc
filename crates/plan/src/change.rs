//! The typed changes a diff finds, and the report of what it would not do.

use dbgroups_manifest::{DbType, Engine};
use dbgroups_state::SourceRef;
use serde::{Deserialize, Serialize};

use crate::input::GroupAddress;

/// One change to the application, with why it is made.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Change {
    /// Stable within a plan: `change-1`, `change-2`, … in plan order.
    pub id: String,
    #[serde(flatten)]
    pub kind: ChangeKind,
    pub reason: String,
    /// Replaces or removes data.
    pub destructive: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ChangeKind {
    /// A new group: its master, its slaves, and the data it starts from.
    CreateGroup {
        group: GroupAddress,
        engine: Engine,
        version: String,
        master: String,
        slaves: Vec<String>,
        seed: Option<Seed>,
    },
    /// New slaves in an existing group, seeded from its master.
    ScaleUp {
        group: GroupAddress,
        master: String,
        new_slaves: Vec<String>,
        /// The server the new slaves' backup copies, and why: in a
        /// refreshed plan, a caught-up slave (the master does no copy
        /// work) or the master, saying why no slave would do. `None` when
        /// not refreshed (the master) or when the engine copies by its own
        /// sync.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        copy_from: Option<CopyFrom>,
    },
    /// A single-server group becomes a replica of another group (or moves to
    /// another source). Its data is replaced.
    EnableReplication {
        group: GroupAddress,
        server: String,
        source: SourceRef,
        source_master: String,
        previous: Option<SourceRef>,
        previous_master: Option<String>,
    },
    /// The replica is detached and keeps its data as a standalone master.
    DisableReplication {
        group: GroupAddress,
        server: String,
        source: SourceRef,
        /// The source's master, if it is still recorded (its replication
        /// slot or user is cleaned up there).
        source_master: Option<String>,
    },
    /// The root variables move to another group.
    MovePrimary {
        db_type: DbType,
        from: Option<String>,
        to: String,
    },
    /// A recorded setting changes in place, with no server work.
    SetManagedBackups {
        group: GroupAddress,
        managed: bool,
    },
    /// Which client networks the group's servers on hosts let in
    /// (`allow_from`) changes: reviewed as its own step.
    SetAllowFrom {
        group: GroupAddress,
        /// The group's servers on hosts, which get the rules.
        servers: Vec<String>,
        networks: Vec<String>,
        previous: Vec<String>,
    },
    /// A server's certificate is due (or past) its end: a new one from
    /// the application's authority, which the running server reloads.
    RenewCertificate {
        group: GroupAddress,
        server: String,
        /// When the current one expires (seconds since the epoch).
        expires: u64,
    },
    /// A slave is re-seeded from a fresh backup and re-attached.
    Resync {
        group: GroupAddress,
        server: String,
        master: String,
    },
    /// A recorded server that is down is started.
    StartServer {
        group: GroupAddress,
        server: String,
    },
    RemoveServer {
        group: GroupAddress,
        server: String,
    },
    RemoveGroup {
        group: GroupAddress,
        servers: Vec<String>,
    },
    /// Only the environment file is out of date.
    UpdateEnvironment,
}

/// Where a new group's data comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "from", rename_all = "snake_case")]
pub enum Seed {
    /// `replicate_from`: restored from the source's master, then its slave.
    Replicate {
        source: SourceRef,
        source_master: String,
    },
    /// `import_from`: restored once from the source's master, or from one
    /// of the source's managed backups (`import_from.backup`).
    Import {
        source: SourceRef,
        source_master: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        backup: Option<ManagedSeed>,
    },
}

/// Which server a backup copies, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CopyFrom {
    pub server: String,
    pub reason: String,
}

/// A recorded managed backup an import restores instead of taking a new
/// backup of its source: what the plan shows a reviewer, and where apply
/// finds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ManagedSeed {
    pub id: String,
    /// The application whose state records it (the import's source's).
    pub application: String,
    /// The server it was taken from.
    pub server: String,
    pub taken_at: String,
    /// Its age when planned, when the plan knows the time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub age_seconds: Option<u64>,
    pub size_bytes: u64,
    /// The host of its store (`local` or an address), where it is restored.
    pub store_host: String,
}

impl std::fmt::Display for ManagedSeed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "managed backup {} (taken {}", self.id, self.taken_at)?;
        if let Some(age) = self.age_seconds {
            write!(f, ", {} old", age_text(age))?;
        }
        write!(
            f,
            ", {:.1} MiB, from {})",
            self.size_bytes as f64 / (1024.0 * 1024.0),
            self.server
        )
    }
}

/// An age as a reviewer reads it: the largest whole unit.
pub fn age_text(seconds: u64) -> String {
    match seconds {
        s if s >= 2 * 86_400 => format!("{} days", s / 86_400),
        s if s >= 2 * 3_600 => format!("{} hours", s / 3_600),
        s if s >= 120 => format!("{} minutes", s / 60),
        s => format!("{s} seconds"),
    }
}

impl Seed {
    pub fn source(&self) -> (&SourceRef, &str) {
        match self {
            Seed::Replicate {
                source,
                source_master,
            }
            | Seed::Import {
                source,
                source_master,
                ..
            } => (source, source_master),
        }
    }

    /// The recorded managed backup an import restores, if it names one.
    pub fn managed_backup(&self) -> Option<&ManagedSeed> {
        match self {
            Seed::Import { backup, .. } => backup.as_ref(),
            Seed::Replicate { .. } => None,
        }
    }

    /// Whether the new group keeps following its source afterwards.
    pub fn follows(&self) -> bool {
        matches!(self, Seed::Replicate { .. })
    }

    /// Replication seeds like a replica; an import may cross versions.
    pub fn backup_method(&self, db_type: DbType) -> crate::rules::BackupMethod {
        let rules = crate::rules::for_type(db_type);
        match self {
            Seed::Replicate { .. } => rules.seed_backup,
            Seed::Import { .. } => rules.import_backup,
        }
    }
}

/// The marker the text renderer shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    Create,
    Update,
    Remove,
}

impl ChangeKind {
    pub fn action(&self) -> Action {
        match self {
            ChangeKind::CreateGroup { .. } | ChangeKind::ScaleUp { .. } => Action::Create,
            ChangeKind::RemoveServer { .. } | ChangeKind::RemoveGroup { .. } => Action::Remove,
            _ => Action::Update,
        }
    }

    /// One line saying what the change does.
    pub fn summary(&self) -> String {
        match self {
            ChangeKind::CreateGroup {
                group,
                engine,
                version,
                master,
                slaves,
                seed,
            } => {
                let mut text = format!("create {group} ({engine} {version}): master {master}");
                if !slaves.is_empty() {
                    text.push_str(&format!(", slaves {}", slaves.join(", ")));
                }
                match seed {
                    Some(Seed::Replicate { source, .. }) => text.push_str(&format!(
                        ", replicating from {}",
                        source.label(group.db_type)
                    )),
                    Some(Seed::Import {
                        source,
                        backup: None,
                        ..
                    }) => text.push_str(&format!(
                        ", importing data from {}",
                        source.label(group.db_type)
                    )),
                    Some(Seed::Import {
                        source,
                        backup: Some(backup),
                        ..
                    }) => text.push_str(&format!(
                        ", importing data from {}'s {backup}",
                        source.label(group.db_type)
                    )),
                    None => {}
                }
                text
            }
            ChangeKind::ScaleUp {
                group,
                new_slaves,
                copy_from,
                ..
            } => {
                let mut text = format!("scale up {group}: add {}", new_slaves.join(", "));
                if let Some(copy) = copy_from {
                    text.push_str(&format!(
                        "; the backup copies {}: {}",
                        copy.server, copy.reason
                    ));
                }
                text
            }
            ChangeKind::EnableReplication {
                group,
                source,
                previous: None,
                ..
            } => format!(
                "enable replication of {group} from {}",
                source.label(group.db_type)
            ),
            ChangeKind::EnableReplication {
                group,
                source,
                previous: Some(previous),
                ..
            } => format!(
                "move replication of {group} from {} to {}",
                previous.label(group.db_type),
                source.label(group.db_type)
            ),
            ChangeKind::DisableReplication { group, source, .. } => {
                format!(
                    "disable replication of {group} from {}",
                    source.label(group.db_type)
                )
            }
            ChangeKind::MovePrimary { db_type, from, to } => match from {
                Some(from) => format!("move the {db_type} primary from {from} to {to}"),
                None => format!("make {db_type}.{to} the {db_type} primary"),
            },
            ChangeKind::SetManagedBackups { group, managed } => format!(
                "{} managed backups on {group}",
                if *managed { "enable" } else { "disable" }
            ),
            ChangeKind::SetAllowFrom {
                group,
                networks,
                previous,
                ..
            } => format!(
                "let clients from {} connect to {group} (was: {})",
                networks_text(networks),
                networks_text(previous)
            ),
            ChangeKind::Resync { group, server, .. } => {
                format!("re-synchronise {server} in {group}")
            }
            ChangeKind::RenewCertificate {
                group,
                server,
                expires,
            } => format!(
                "renew the certificate of {server} in {group} (it expires {})",
                crate::diff::certificate_date(*expires)
            ),
            ChangeKind::StartServer { group, server } => format!("start {server} in {group}"),
            ChangeKind::RemoveServer { group, server } => format!("remove {server} from {group}"),
            ChangeKind::RemoveGroup { group, servers } => {
                format!("remove {group} and its servers {}", servers.join(", "))
            }
            ChangeKind::UpdateEnvironment => "rewrite the environment file".to_string(),
        }
    }

    /// What is lost, for destructive changes.
    pub fn data_warning(&self) -> Option<String> {
        match self {
            ChangeKind::EnableReplication {
                group,
                server,
                source,
                ..
            } => Some(format!(
                "all data on {server} is replaced by a copy of {}",
                source.label(group.db_type)
            )),
            // Its steps restore over the slave's data ("REPLACES ALL
            // DATA"), so the summary must count it among the destructive.
            ChangeKind::Resync { server, master, .. } => Some(format!(
                "all data on {server} is replaced by a fresh copy of {master}"
            )),
            ChangeKind::RemoveServer { server, .. } => Some(format!(
                "{server} is stopped and its data directory deleted"
            )),
            ChangeKind::RemoveGroup { servers, .. } => Some(format!(
                "{} stopped and {} data deleted",
                servers.join(", "),
                if servers.len() == 1 { "its" } else { "their" }
            )),
            _ => None,
        }
    }
}

/// A change the planner would not make, and what to do instead.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Blocked {
    /// What it is about: a group address or server name.
    pub subject: String,
    pub reason: String,
    pub hint: String,
}

/// What the planner wants the reader to know besides the changes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[must_use = "blocked changes and warnings must be shown to the user"]
pub struct Report {
    pub blocked: Vec<Blocked>,
    pub warnings: Vec<String>,
}

/// `allow_from` networks as a plan shows them.
pub(crate) fn networks_text(networks: &[String]) -> String {
    if networks.is_empty() {
        "no network".to_string()
    } else {
        networks.join(", ")
    }
}

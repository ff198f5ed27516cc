//! Where data moves: a backup named by a typed reference (the server it
//! copies, how, and the host and place it lands on), never by a string
//! a reader would have to parse.

use std::collections::BTreeMap;

use dbgroups_manifest::ProviderKind;
use dbgroups_state::{AppState, ServerState};
use serde::{Deserialize, Serialize};

use crate::input::GroupAddress;
use crate::rules::BackupMethod;

/// A backup the plan takes, as the steps that take, check and read it
/// name it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackupRef {
    /// The id of the step that takes it (`backup:pg-main`, `dump:pg-main`),
    /// for ordering and for the linter.
    pub step: String,
    /// The server it copies.
    pub source: BackupSource,
    pub method: BackupMethod,
    /// The host it lands on (see [`host_of`]).
    pub host: String,
    /// Its entry in the apply's staging area on that host
    /// (`backup-pg-main`): apply puts each apply's backups under a name of
    /// its own, so a backup an earlier apply left is never taken for this
    /// one's.
    pub location: String,
}

/// The server a backup copies, with its application and group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackupSource {
    pub application: String,
    pub group: GroupAddress,
    pub server: String,
}

impl BackupRef {
    /// The reference to the backup of `source` by `method`, landing on
    /// `host` (the host of the servers that restore it: data moves host to
    /// host, so a backup is taken on the host that receives it). One
    /// backup per master, method and receiving host, so its step id and
    /// its location are made from those three; a backup landing on its
    /// source's own host (every backup on one machine) is named by the
    /// first two alone (`backup:pg-main`, `backup-pg-main`), one landing
    /// elsewhere adds the host (`backup:pg-main@10.0.0.12`,
    /// `backup-pg-main-on-10-0-0-12`).
    pub fn new(
        source: BackupSource,
        method: BackupMethod,
        source_host: &str,
        host: String,
    ) -> Self {
        let prefix = method.step_prefix();
        let server = &source.server;
        let (step, location) = if host == source_host {
            (format!("{prefix}:{server}"), format!("{prefix}-{server}"))
        } else {
            (
                format!("{prefix}:{server}@{host}"),
                format!("{prefix}-{server}-on-{}", path_safe(&host)),
            )
        };
        Self {
            step,
            location,
            source,
            method,
            host,
        }
    }

    /// A restore may take this backup by moving it into place: its kind
    /// can be moved (data files, not a dump) and it is already on the
    /// host of the server that restores it.
    pub fn can_be_taken_on(&self, host: &str) -> bool {
        self.method.can_be_moved() && self.host == host
    }
}

/// A host's name as part of a file name: letters, digits, `-` and `_`
/// kept, anything else (`.` and `:` of an address) made `-`.
fn path_safe(host: &str) -> String {
    host.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '-'
            }
        })
        .collect()
}

impl std::fmt::Display for BackupRef {
    /// What a reviewer reads: the step that takes it.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.step)
    }
}

/// The host a server runs on: every server of the local provider runs on
/// this machine, `local`; a server on an existing host (the ssh provider)
/// runs on its declared address (validation requires one).
pub fn host_of(provider: ProviderKind, address: Option<&str>) -> String {
    match provider {
        ProviderKind::Local => "local".to_string(),
        ProviderKind::Ssh => address.unwrap_or_default().to_string(),
    }
}

/// The host of a recorded (or expected) server.
pub fn host_of_server(server: &ServerState) -> String {
    host_of(server.provider, server.address.as_deref())
}

/// The host of a server the manifest declares.
pub fn host_of_declared(server: &dbgroups_manifest::Server) -> String {
    host_of(
        server.provider(),
        server.address.as_ref().map(|a| a.value.as_str()),
    )
}

/// Where each server a plan names lives: its application, its group and
/// its host, from the plan's expected state, the recorded state and the
/// other applications (an import's or a replica's source).
#[derive(Debug, Clone, Default)]
pub struct Servers(BTreeMap<String, Placement>);

#[derive(Debug, Clone)]
struct Placement {
    application: String,
    group: GroupAddress,
    host: String,
}

impl Servers {
    /// The first state naming a server wins: pass the expected state first.
    pub fn of<'s>(states: impl IntoIterator<Item = &'s AppState>) -> Self {
        let mut servers = BTreeMap::new();
        for state in states {
            for group in &state.groups {
                for server in &group.servers {
                    servers
                        .entry(server.unique_name.clone())
                        .or_insert_with(|| Placement {
                            application: state.application.clone(),
                            group: GroupAddress::new(group.db_type, group.name.clone()),
                            host: host_of_server(server),
                        });
                }
            }
        }
        Self(servers)
    }

    /// A server named nowhere is on the default provider's host, as a new
    /// server is.
    pub fn host(&self, server: &str) -> String {
        self.0
            .get(server)
            .map(|p| p.host.clone())
            .unwrap_or_else(|| host_of(ProviderKind::Local, None))
    }

    /// The application a server is recorded or expected in.
    pub fn application(&self, server: &str) -> Option<&str> {
        self.0.get(server).map(|p| p.application.as_str())
    }

    /// The source of a backup of `server`: where it is recorded or
    /// expected, else what the planner assumed (`application`, `group`).
    pub fn source(&self, server: &str, application: &str, group: &GroupAddress) -> BackupSource {
        let (application, group) = self.0.get(server).map_or_else(
            || (application.to_string(), group.clone()),
            |p| (p.application.clone(), p.group.clone()),
        );
        BackupSource {
            application,
            group,
            server: server.to_string(),
        }
    }
}

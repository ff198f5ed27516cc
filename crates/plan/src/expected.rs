//! The state a plan will produce, with placeholders where apply will learn
//! the value (addresses, ports, passwords). It lets the JSON show before and
//! after, and lets tests check convergence: planning again against it
//! (placeholders filled) gives no changes.

use std::collections::BTreeMap;

use dbgroups_manifest::{DbType, Manifest};
use dbgroups_state::{AppState, Credentials, GroupState, Role, ServerState};

use crate::change::{ChangeKind, Seed};
use crate::env;

/// The lineage shown for an application that has no state yet.
pub const NEW_LINEAGE: &str = "(created at apply)";

pub(crate) fn expected_state(
    manifest: &Manifest,
    application: &str,
    current: Option<&AppState>,
    others: &BTreeMap<String, AppState>,
    changes: &[ChangeKind],
    primaries: &BTreeMap<DbType, String>,
) -> AppState {
    let mut state = current
        .cloned()
        .unwrap_or_else(|| AppState::with_lineage(application, NEW_LINEAGE));
    state.journal = None;
    for change in changes {
        apply_change(&mut state, manifest, change);
        take_source_accounts(&mut state, others, change);
    }
    for group in &mut state.groups {
        group.primary = primaries.get(&group.db_type) == Some(&group.name);
    }
    state.environment = env::variables(&state);
    state
}

/// Where the engine's seed copies the source's accounts with its data
/// (`rules::replica_takes_source_accounts`), the group's credentials become
/// the source's, as apply records them after the restore: the variables the
/// plan shows are then the ones that work after this one apply.
fn take_source_accounts(
    state: &mut AppState,
    others: &BTreeMap<String, AppState>,
    change: &ChangeKind,
) {
    let (group, source) = match change {
        ChangeKind::CreateGroup {
            group,
            seed: Some(Seed::Replicate { source, .. }),
            ..
        }
        | ChangeKind::EnableReplication { group, source, .. } => (group, source),
        _ => return,
    };
    if !crate::rules::for_type(group.db_type).replica_takes_source_accounts {
        return;
    }
    let source_address = format!("{}.{}", group.db_type, source.group);
    let source_state = if source.application == state.application {
        Some(&*state)
    } else {
        others.get(&source.application)
    };
    if let Some(credentials) = source_state
        .and_then(|s| s.credentials.get(&source_address))
        .cloned()
    {
        state.credentials.insert(group.to_string(), credentials);
    }
}

fn new_server(manifest: &Manifest, name: &str, role: Role) -> ServerState {
    let declared = manifest
        .servers()
        .find(|(_, s)| s.unique_name.value == name)
        .map(|(_, s)| s);
    ServerState {
        unique_name: name.to_string(),
        role,
        provider: declared.map_or(dbgroups_manifest::ProviderKind::Local, |s| s.provider()),
        // An ssh server's address is declared; a local one is learnt.
        address: declared
            .and_then(|s| s.address.as_ref())
            .map(|a| a.value.clone()),
        port: None,
        provider_data: BTreeMap::new(),
    }
}

fn apply_change(state: &mut AppState, manifest: &Manifest, change: &ChangeKind) {
    match change {
        ChangeKind::CreateGroup {
            group,
            engine,
            version,
            master,
            slaves,
            seed,
        } => {
            let mut servers = vec![new_server(manifest, master, Role::Master)];
            servers.extend(slaves.iter().map(|s| new_server(manifest, s, Role::Slave)));
            let declared = manifest.group(group.db_type, &group.name);
            state.groups.push(GroupState {
                db_type: group.db_type,
                name: group.name.clone(),
                engine: *engine,
                version: version.clone(),
                primary: false,
                managed_backups: declared.is_some_and(|g| g.managed_backups()),
                replicate_from: match seed {
                    Some(Seed::Replicate { source, .. }) => Some(source.clone()),
                    _ => None,
                },
                imported_from: match seed {
                    Some(Seed::Import { source, .. }) => Some(source.clone()),
                    _ => None,
                },
                servers,
            });
            let (username, database) = env::default_account(group.db_type, &state.application);
            state.credentials.insert(
                group.to_string(),
                Credentials {
                    username,
                    password: None,
                    database,
                    admin_password: None,
                    replication_password: None,
                    auth_database: env::account_home(group.db_type),
                },
            );
        }
        ChangeKind::ScaleUp {
            group, new_slaves, ..
        } => {
            let servers: Vec<ServerState> = new_slaves
                .iter()
                .map(|s| new_server(manifest, s, Role::Slave))
                .collect();
            if let Some(recorded) = state.group_mut(group.db_type, &group.name) {
                recorded.servers.extend(servers);
            }
        }
        ChangeKind::EnableReplication { group, source, .. } => {
            if let Some(recorded) = state.group_mut(group.db_type, &group.name) {
                recorded.replicate_from = Some(source.clone());
            }
        }
        ChangeKind::DisableReplication { group, .. } => {
            if let Some(recorded) = state.group_mut(group.db_type, &group.name) {
                recorded.replicate_from = None;
            }
        }
        ChangeKind::SetManagedBackups { group, managed } => {
            if let Some(recorded) = state.group_mut(group.db_type, &group.name) {
                recorded.managed_backups = *managed;
            }
        }
        ChangeKind::RemoveServer { group, server } => {
            if let Some(recorded) = state.group_mut(group.db_type, &group.name) {
                recorded.servers.retain(|s| &s.unique_name != server);
            }
        }
        ChangeKind::RemoveGroup { group, .. } => {
            state
                .groups
                .retain(|g| !(g.db_type == group.db_type && g.name == group.name));
            state.credentials.remove(&group.to_string());
        }
        // Primaries are set from the diff's decision; restarts and
        // re-syncs change no recorded fact.
        ChangeKind::MovePrimary { .. }
        | ChangeKind::Resync { .. }
        | ChangeKind::StartServer { .. }
        | ChangeKind::UpdateEnvironment => {}
    }
}

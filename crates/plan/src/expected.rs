//! The state a plan will produce, with placeholders where apply will learn
//! the value (addresses, ports, passwords). It lets the JSON show before and
//! after, and lets tests check convergence: planning again against it
//! (placeholders filled) gives no changes.

use std::collections::BTreeMap;

use dbgroups_manifest::{DbType, Manifest, ProviderKind, Server};
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

/// Every declared server as a new one would be recorded (provider,
/// address, ssh settings): how refresh reaches the hosts of servers not
/// built yet, for their preflight. Roles are not decided here.
pub fn declared_servers(manifest: &Manifest) -> Vec<ServerState> {
    manifest
        .servers()
        .map(|(_, s)| new_server(manifest, &s.unique_name.value, Role::Slave))
        .collect()
}

fn new_server(manifest: &Manifest, name: &str, role: Role) -> ServerState {
    let declared = manifest
        .servers()
        .find(|(_, s)| s.unique_name.value == name)
        .map(|(_, s)| s);
    let provider = declared.map_or(ProviderKind::Local, |s| s.provider());
    ServerState {
        unique_name: name.to_string(),
        role,
        provider,
        // An ssh server's address is declared; a local one is learnt.
        address: declared
            .and_then(|s| s.address.as_ref())
            .map(|a| a.value.clone()),
        port: None,
        certificate_expires: None,
        provider_data: match declared {
            Some(server) if provider == ProviderKind::Ssh => ssh_provider_data(server),
            _ => BTreeMap::new(),
        },
    }
}

/// What an ssh server is reached with, as recorded: its effective `ssh:`
/// settings (its own over the application's) as `ssh_<key>`, and its
/// `public_address`; only the ones that are set. None of them is a secret.
pub(crate) fn ssh_provider_data(server: &Server) -> BTreeMap<String, String> {
    let mut data: BTreeMap<String, String> = server
        .effective_ssh()
        .entries()
        .into_iter()
        .map(|(key, value)| (format!("ssh_{key}"), value))
        .collect();
    if let Some(public) = &server.public_address {
        data.insert("public_address".to_string(), public.value.clone());
    }
    data
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
                // Set by the group's own SetAllowFrom change, if any.
                allow_from: Vec::new(),
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
        ChangeKind::SetAllowFrom {
            group, networks, ..
        } => {
            if let Some(recorded) = state.group_mut(group.db_type, &group.name) {
                recorded.allow_from = networks.clone();
            }
        }
        // The new certificate's end is known after apply: it is not due.
        ChangeKind::RenewCertificate { group, server, .. } => {
            if let Some(recorded) = state.group_mut(group.db_type, &group.name)
                && let Some(renewed) = recorded
                    .servers
                    .iter_mut()
                    .find(|s| &s.unique_name == server)
            {
                renewed.certificate_expires = None;
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

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Manifest {
        let source = dbgroups_manifest::SourceFile::new("manifest.yml", text);
        let parsed = dbgroups_manifest::parse(&source, &Default::default());
        parsed.manifest.expect("a valid manifest")
    }

    #[test]
    fn an_ssh_server_records_its_address_and_effective_ssh_settings() {
        let manifest = parse(
            "application: shop\n\
             ssh: { user: deploy, identity_file: ~/.ssh/id_ed25519, port: 22 }\n\
             postgresql:\n  servers:\n\
             \x20   - server: { unique_name: pg-main, address: 10.0.0.11 }\n\
             \x20   - server: { unique_name: pg-replica-1, address: \"[fd00::12]\", public_address: db.example.com, ssh: { port: 2222, jump: ops@bastion:2200 } }\n\
             redis:\n  servers:\n    - server: { unique_name: redis-main }\n",
        );
        let main = new_server(&manifest, "pg-main", Role::Master);
        assert_eq!(main.provider, ProviderKind::Ssh);
        assert_eq!(main.address.as_deref(), Some("10.0.0.11"));
        let data = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        assert_eq!(
            main.provider_data,
            data(&[
                ("ssh_identity_file", "~/.ssh/id_ed25519"),
                ("ssh_port", "22"),
                ("ssh_user", "deploy"),
            ])
        );
        let replica = new_server(&manifest, "pg-replica-1", Role::Slave);
        assert_eq!(replica.address.as_deref(), Some("fd00::12"));
        assert_eq!(
            replica.provider_data,
            data(&[
                ("public_address", "db.example.com"),
                ("ssh_identity_file", "~/.ssh/id_ed25519"),
                ("ssh_jump", "ops@bastion:2200"),
                ("ssh_port", "2222"),
                ("ssh_user", "deploy"),
            ])
        );
        let local = new_server(&manifest, "redis-main", Role::Master);
        assert_eq!(local.provider, ProviderKind::Local);
        assert_eq!(local.address, None);
        assert!(local.provider_data.is_empty());
    }
}

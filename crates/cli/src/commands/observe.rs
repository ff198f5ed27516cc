//! Refresh: what the servers say about themselves, gathered before planning
//! so that the planner stays a pure function of its inputs.
//!
//! Each local server is asked, through its engine, whether it is up and,
//! for a replica, whether it streams from its master and how far behind it
//! is (PostgreSQL: `pg_stat_wal_receiver` and replay lag; Redis: `INFO
//! replication`; the MySQL family: `SHOW REPLICA STATUS`; MongoDB:
//! `replSetGetStatus`). Servers are asked all at once, so a refresh over
//! many servers takes about as long as the slowest answer. Every host is
//! connected at once first; the servers of a host that cannot be reached
//! are not judged.

use std::path::Path;
use std::sync::Arc;

use std::collections::BTreeMap;

use dbgroups_apply::hosts::HostSet;
use dbgroups_engines::{LocalHost, Packages, engine_for};
use dbgroups_manifest::{DbType, Engine, Manifest, catalogue};
use dbgroups_plan::{
    HostFacts, HostOs, ObservedFacts, PackageFacts, ReplicationHealth, ServerHealth,
};
use dbgroups_state::{AppState, GroupState, Role, ServerState};

pub(crate) fn observe(
    state: Option<&AppState>,
    manifest: &Manifest,
    refresh: bool,
    state_dir: &Path,
) -> ObservedFacts {
    let mut facts = ObservedFacts::offline();
    // The plan's one reading of the clock, refreshed or not: certificates
    // due by now are renewed.
    facts.now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .ok()
        .map(|since| since.as_secs());
    if !refresh {
        return facts;
    }
    // The servers declared on existing hosts: their hosts' preflight is
    // asked even before anything is built there.
    let declared: Vec<ServerState> = dbgroups_plan::declared_servers(manifest)
        .into_iter()
        .filter(|s| s.address.is_some())
        .collect();
    if state.is_none() && declared.is_empty() {
        return facts;
    }
    facts.refreshed = state.is_some();
    let Ok(local) = LocalHost::inspect(state_dir).map(LocalHost::into_ref) else {
        return facts;
    };
    let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    else {
        return facts;
    };
    let (observed, hosts_facts) = runtime.block_on(async {
        let (hosts, unreachable) =
            HostSet::connect_reachable_with(local, &super::ssh_client(), state, &declared).await;
        let preflight = preflight(&hosts, unreachable, manifest, state).await;
        let observed = match state {
            Some(state) => health_of_all(hosts, Arc::new(state.clone())).await,
            None => BTreeMap::new(),
        };
        (observed, preflight)
    });
    facts.servers.extend(observed);
    facts.hosts = hosts_facts;
    facts
}

/// Every recorded server's health, asked all at once.
async fn health_of_all(hosts: HostSet, state: Arc<AppState>) -> BTreeMap<String, ServerHealth> {
    let hosts = Arc::new(hosts);
    let mut questions = tokio::task::JoinSet::new();
    for (group_index, group) in state.groups.iter().enumerate() {
        for (server_index, server) in group.servers.iter().enumerate() {
            if !hosts.reaches(server) {
                continue;
            }
            let (hosts, state) = (Arc::clone(&hosts), Arc::clone(&state));
            questions.spawn(async move {
                let group = &state.groups[group_index];
                let server = &group.servers[server_index];
                let health = health(&hosts, &state, group, server).await;
                (server.unique_name.clone(), health)
            });
        }
    }
    let mut observed = BTreeMap::new();
    while let Some(answer) = questions.join_next().await {
        if let Ok((name, Some(health))) = answer {
            observed.insert(name, health);
        }
    }
    settle(&hosts, &state, &mut observed).await;
    observed
}

/// Each existing host's preflight (the hosts that could not be reached
/// with ssh's words): its system, free space, and the packages of every
/// engine and version of the groups with a server there, as each engine
/// names them.
async fn preflight(
    hosts: &HostSet,
    unreachable: Vec<(String, dbgroups_engines::EngineError)>,
    manifest: &Manifest,
    state: Option<&AppState>,
) -> BTreeMap<String, HostFacts> {
    let mut facts = BTreeMap::new();
    for (name, err) in unreachable {
        if !name.is_empty() {
            let unreachable = Some(err.to_string());
            facts.insert(
                name,
                HostFacts {
                    unreachable,
                    ..HostFacts::default()
                },
            );
        }
    }
    let mut groups: Vec<(DbType, Engine, String, Vec<String>)> = Vec::new();
    for group in &manifest.groups {
        let version = group.configuration.version.as_ref().map_or_else(
            || catalogue::default_version(group.engine()).to_string(),
            |v| v.value.clone(),
        );
        let servers = group.servers.iter().map(|s| s.unique_name.value.clone());
        groups.push((group.db_type, group.engine(), version, servers.collect()));
    }
    for group in state.iter().flat_map(|s| s.groups.iter()) {
        let servers = group.servers.iter().map(|s| s.unique_name.clone());
        groups.push((
            group.db_type,
            group.engine,
            group.version.clone(),
            servers.collect(),
        ));
    }
    for host in hosts.distinct() {
        if Arc::ptr_eq(&host, hosts.local_host()) {
            continue;
        }
        let mut wanted: Vec<(Engine, String, Packages)> = Vec::new();
        for (db_type, engine, version, servers) in &groups {
            let here = servers.iter().any(|s| Arc::ptr_eq(&hosts.of(s), &host));
            if here && !wanted.iter().any(|(e, v, _)| e == engine && v == version) {
                let packages = engine_for(*db_type).packages(*engine, version);
                wanted.push((*engine, version.clone(), packages));
            }
        }
        let asked: Vec<Packages> = wanted.iter().map(|(_, _, p)| p.clone()).collect();
        let found = host.preflight(&asked).await;
        let packages = wanted
            .into_iter()
            .zip(found.packages)
            .map(|((engine, version, _), check)| PackageFacts {
                engine,
                version,
                packages: check.packages.names,
                installed: check.installed,
                installable: check.installable,
                outside_distribution: check.packages.outside_distribution,
            })
            .collect();
        facts.insert(
            host.name().to_string(),
            HostFacts {
                unreachable: None,
                os: found.os.map(|os| HostOs {
                    id: os.id,
                    version_id: os.version_id,
                    id_like: os.id_like,
                }),
                free_bytes: found.free_bytes,
                packages,
            },
        );
    }
    facts
}

/// How long a replica that is up but not streaming, while its master runs,
/// is watched before it counts as broken: longer than the engines' own
/// retry intervals (PostgreSQL's `wal_retrieve_retry_interval` of 5 s,
/// dbgroups's 2 s MySQL connect retry, Redis's 1 s), so a replica caught
/// between its master's restart and its next retry is not planned for a
/// re-sync that would replace its data for nothing.
const RECONNECT_GRACE: std::time::Duration = std::time::Duration::from_secs(12);

/// Asks again, once a second until [`RECONNECT_GRACE`] is over, each
/// replica that is up and not streaming while its master is up, keeping
/// its last answer. A replica whose master is down (or not observed) is
/// left as it is: the planner does not judge it.
async fn settle(
    hosts: &Arc<HostSet>,
    state: &Arc<AppState>,
    observed: &mut BTreeMap<String, ServerHealth>,
) {
    let waiting: Vec<(usize, usize)> = state
        .groups
        .iter()
        .enumerate()
        .flat_map(|(g, group)| {
            group
                .servers
                .iter()
                .enumerate()
                .map(move |(s, server)| (g, s, group, server))
        })
        .filter(|(_, _, group, server)| {
            let stalled = observed
                .get(&server.unique_name)
                .is_some_and(|h| h.up && h.replication.as_ref().is_some_and(|r| !r.streaming));
            stalled
                && master_of(state, group, server)
                    .is_some_and(|master| observed.get(master).is_some_and(|h| h.up))
        })
        .map(|(g, s, _, _)| (g, s))
        .collect();
    if waiting.is_empty() {
        return;
    }
    let mut rechecks = tokio::task::JoinSet::new();
    for (group_index, server_index) in waiting {
        let (hosts, state) = (Arc::clone(hosts), Arc::clone(state));
        rechecks.spawn(async move {
            let group = &state.groups[group_index];
            let server = &group.servers[server_index];
            let deadline = tokio::time::Instant::now() + RECONNECT_GRACE;
            let mut last = None;
            while tokio::time::Instant::now() < deadline {
                tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                last = health(&hosts, &state, group, server).await;
                if last
                    .as_ref()
                    .and_then(|h| h.replication.as_ref())
                    .is_some_and(|r| r.streaming)
                {
                    break;
                }
            }
            (server.unique_name.clone(), last)
        });
    }
    while let Some(answer) = rechecks.join_next().await {
        if let Ok((name, Some(health))) = answer {
            observed.insert(name, health);
        }
    }
}

/// The master a replica follows, when it is in this application: its
/// group's master, or its source group's.
fn master_of<'a>(
    state: &'a AppState,
    group: &'a GroupState,
    server: &ServerState,
) -> Option<&'a str> {
    let source_group = if server.role == Role::Slave {
        group
    } else {
        let source = group.replicate_from.as_ref()?;
        if source.application != state.application {
            return None;
        }
        state.group(group.db_type, &source.group)?
    };
    source_group.master().map(|m| m.unique_name.as_str())
}

async fn health(
    hosts: &HostSet,
    state: &AppState,
    group: &GroupState,
    server: &ServerState,
) -> Option<ServerHealth> {
    // A server that cannot even be asked (no port or credentials recorded,
    // its programs missing) is not observed: the planner does not judge it.
    let observation = dbgroups_apply::servers::observe(hosts, state, group, server, &[])
        .await
        .ok()?;
    Some(ServerHealth {
        up: observation.up,
        replication: observation.replication.map(|r| ReplicationHealth {
            streaming: r.streaming,
            lag_seconds: r.lag_seconds,
            detail: r.detail,
            held_offset: r.held_offset,
            reconnecting: r.reconnecting,
        }),
    })
}

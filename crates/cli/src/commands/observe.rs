//! Refresh: what the servers say about themselves, gathered before planning
//! so that the planner stays a pure function of its inputs.
//!
//! Each local server is asked, through its engine, whether it is up and,
//! for a replica, whether it streams from its master and how far behind it
//! is (PostgreSQL: `pg_stat_wal_receiver` and replay lag; Redis: `INFO
//! replication`; the MySQL family: `SHOW REPLICA STATUS`; MongoDB:
//! `replSetGetStatus`). Servers are asked all at once, so a refresh over
//! many servers takes about as long as the slowest answer. ssh hosts may be
//! out of reach from where `plan` runs, so they are not judged.

use std::path::Path;
use std::sync::Arc;

use dbgroups_engines::mongodb::MemberHealth;
use dbgroups_engines::postgres::ReplicationStatus;
use dbgroups_engines::{LocalHost, MongoServer, MysqlServer, PostgresServer, RedisServer};
use dbgroups_manifest::{DbType, ProviderKind};
use dbgroups_plan::{ObservedFacts, ReplicationHealth, ServerHealth};
use dbgroups_state::{AppState, GroupState, Role, ServerState};

pub(crate) fn observe(state: Option<&AppState>, refresh: bool, state_dir: &Path) -> ObservedFacts {
    let mut facts = ObservedFacts::offline();
    let Some(state) = state.filter(|_| refresh) else {
        return facts;
    };
    facts.refreshed = true;
    let Ok(provider) =
        LocalHost::inspect(state_dir).map(|p| std::sync::Arc::new(p) as dbgroups_engines::HostRef)
    else {
        return facts;
    };
    let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    else {
        return facts;
    };
    let state = Arc::new(state.clone());
    let observed = runtime.block_on(async {
        let mut questions = tokio::task::JoinSet::new();
        for (group_index, group) in state.groups.iter().enumerate() {
            for (server_index, server) in group.servers.iter().enumerate() {
                if server.provider != ProviderKind::Local {
                    continue;
                }
                let (provider, state) = (provider.clone(), Arc::clone(&state));
                questions.spawn(async move {
                    let group = &state.groups[group_index];
                    let server = &group.servers[server_index];
                    let health = health(&provider, &state, group, server).await;
                    (server.unique_name.clone(), health)
                });
            }
        }
        let mut observed = std::collections::BTreeMap::new();
        while let Some(answer) = questions.join_next().await {
            if let Ok((name, Some(health))) = answer {
                observed.insert(name, health);
            }
        }
        settle(&provider, &state, &mut observed).await;
        observed
    });
    facts.servers.extend(observed);
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
    provider: &dbgroups_engines::HostRef,
    state: &Arc<AppState>,
    observed: &mut std::collections::BTreeMap<String, ServerHealth>,
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
        let (provider, state) = (provider.clone(), Arc::clone(state));
        rechecks.spawn(async move {
            let group = &state.groups[group_index];
            let server = &group.servers[server_index];
            let deadline = tokio::time::Instant::now() + RECONNECT_GRACE;
            let mut last = None;
            while tokio::time::Instant::now() < deadline {
                tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                last = health(&provider, &state, group, server).await;
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
    provider: &dbgroups_engines::HostRef,
    state: &AppState,
    group: &GroupState,
    server: &ServerState,
) -> Option<ServerHealth> {
    let port = server.port?;
    let credentials = state.credentials.get(&group.address())?;
    let is_replica = server.role == Role::Slave || group.replicate_from.is_some();
    match group.db_type {
        DbType::Postgresql => postgres_health(provider, state, group, server, port).await,
        DbType::Redis => {
            let redis = RedisServer::new(provider, &server.unique_name, port)
                .await
                .ok()?;
            let password = credentials.password.as_ref()?.expose().to_string();
            match redis.replication(&password).await {
                Err(_) => Some(ServerHealth {
                    up: false,
                    replication: None,
                }),
                Ok(info) => {
                    let replication = match (is_replica, info.role.as_str()) {
                        (false, _) => None,
                        (true, "slave") if info.master_link_status.as_deref() == Some("up") => {
                            Some(ReplicationHealth {
                                streaming: true,
                                lag_seconds: info
                                    .master_last_io_seconds_ago
                                    .and_then(|s| u64::try_from(s).ok()),
                                detail: None,
                                held_offset: info.replica_offset,
                                reconnecting: false,
                            })
                        }
                        // A full sync in progress (after its master's
                        // restart, say) ends by itself: not broken.
                        (true, "slave") => Some(ReplicationHealth {
                            held_offset: info.replica_offset,
                            reconnecting: info.master_sync_in_progress,
                            ..broken(format!(
                                "master link {}",
                                info.master_link_status.as_deref().unwrap_or("unknown")
                            ))
                        }),
                        (true, role) => Some(broken(format!("it runs as a {role}, not a replica"))),
                    };
                    Some(ServerHealth {
                        up: true,
                        replication,
                    })
                }
            }
        }
        DbType::Mysql => {
            let mysql = MysqlServer::new(
                provider,
                group.engine,
                &group.version,
                &server.unique_name,
                port,
            )
            .await
            .ok()?;
            let admin = credentials.admin_password.as_ref()?.expose().to_string();
            match mysql.replication(&admin).await {
                Err(_) => Some(ServerHealth {
                    up: false,
                    replication: None,
                }),
                Ok(status) => {
                    let replication = match (is_replica, status) {
                        (false, _) => None,
                        (true, None) => Some(broken("it follows no master".into())),
                        (true, Some(status)) => {
                            let streaming = status.io_running && status.sql_running;
                            Some(ReplicationHealth {
                                held_offset: None,
                                reconnecting: status.reconnecting,
                                streaming,
                                lag_seconds: status.seconds_behind,
                                detail: (!streaming).then(|| {
                                    status.last_error.unwrap_or_else(|| {
                                        format!(
                                            "replication threads: IO {}, SQL {}",
                                            running(status.io_running),
                                            running(status.sql_running)
                                        )
                                    })
                                }),
                            })
                        }
                    };
                    Some(ServerHealth {
                        up: true,
                        replication,
                    })
                }
            }
        }
        DbType::Mongodb => {
            mongodb_health(provider, group, server, port, credentials, is_replica).await
        }
    }
}

/// A PostgreSQL server: up, and for a replica whether it streams. A
/// replica that does not stream (running or not) is also checked against
/// its master's replication slots: without its slot it cannot resume.
async fn postgres_health(
    provider: &dbgroups_engines::HostRef,
    state: &AppState,
    group: &GroupState,
    server: &ServerState,
    port: u16,
) -> Option<ServerHealth> {
    let credentials = state.credentials.get(&group.address())?;
    let is_replica = server.role == Role::Slave || group.replicate_from.is_some();
    let pg = PostgresServer::new(provider, &server.unique_name, &group.version, port)
        .await
        .ok()?;
    let admin = credentials.admin_password.as_ref()?.expose().to_string();
    let (up, replication) = match pg.replication_status(&admin).await {
        Err(_) => (false, None),
        Ok(_) if !is_replica => (true, None),
        Ok(ReplicationStatus::Master { .. }) => (
            true,
            Some(broken("it is not in recovery: it runs as a master".into())),
        ),
        Ok(ReplicationStatus::Replica {
            streaming,
            receiver_status,
            lag_seconds,
        }) => (
            true,
            Some(ReplicationHealth {
                held_offset: None,
                reconnecting: false,
                streaming,
                // Whole seconds are enough to compare with the limit.
                lag_seconds: lag_seconds.map(|lag| lag.max(0.0).round() as u64),
                detail: (!streaming).then(|| match receiver_status {
                    Some(status) => format!("WAL receiver {status}"),
                    None => "no WAL receiver is running".to_string(),
                }),
            }),
        ),
    };
    let streaming = replication.as_ref().is_some_and(|r| r.streaming);
    let replication = if is_replica && !streaming {
        match missing_slot(provider, state, group, server).await {
            Some(master) => Some(broken(format!(
                "its replication slot {} no longer exists on its master {master}",
                dbgroups_engines::postgres::slot_name(&server.unique_name)
            ))),
            None => replication,
        }
    } else {
        replication
    };
    Some(ServerHealth { up, replication })
}

/// The master of a PostgreSQL replica (its group's, or its source group's
/// in this application), if that master runs and has no slot for it.
async fn missing_slot(
    provider: &dbgroups_engines::HostRef,
    state: &AppState,
    group: &GroupState,
    server: &ServerState,
) -> Option<String> {
    let source_group = if server.role == Role::Slave {
        group
    } else {
        let source = group.replicate_from.as_ref()?;
        if source.application != state.application {
            return None;
        }
        state.group(group.db_type, &source.group)?
    };
    let master = source_group.master()?;
    let admin = state
        .credentials
        .get(&source_group.address())?
        .admin_password
        .as_ref()?
        .expose()
        .to_string();
    let pg = PostgresServer::new(
        provider,
        &master.unique_name,
        &source_group.version,
        master.port?,
    )
    .await
    .ok()?;
    // An unreachable master says nothing about the slot.
    match pg.has_slot_for(&server.unique_name, &admin).await {
        Ok(false) => Some(master.unique_name.clone()),
        _ => None,
    }
}

fn broken(detail: String) -> ReplicationHealth {
    ReplicationHealth {
        streaming: false,
        lag_seconds: None,
        detail: Some(detail),
        held_offset: None,
        reconnecting: false,
    }
}

fn running(yes: bool) -> &'static str {
    if yes { "running" } else { "stopped" }
}

/// A MongoDB member as its own `replSetGetStatus` reports it, judged by
/// `dbgroups_engines::mongodb::commands::own_health`.
async fn mongodb_health(
    provider: &dbgroups_engines::HostRef,
    group: &GroupState,
    server: &ServerState,
    port: u16,
    credentials: &dbgroups_state::Credentials,
    is_replica: bool,
) -> Option<ServerHealth> {
    let mongo = MongoServer::new(provider, &server.unique_name, &group.version, port)
        .await
        .ok()?;
    let admin = credentials.admin_password.as_ref()?.expose().to_string();
    if !mongo.is_running().await {
        return Some(ServerHealth {
            up: false,
            replication: None,
        });
    }
    if !is_replica {
        return Some(ServerHealth {
            up: true,
            replication: None,
        });
    }
    // PRIMARY or SECONDARY serve (a failover may have swapped them); a
    // member on its way (STARTUP2, RECOVERING) is not broken, so no plan
    // wipes its sync; only one that cannot recover is.
    let replication = match mongo.own_health(&admin).await {
        Ok(MemberHealth::Healthy { lag_seconds }) => ReplicationHealth {
            streaming: true,
            lag_seconds,
            detail: None,
            held_offset: None,
            reconnecting: false,
        },
        Ok(MemberHealth::Syncing { .. }) => ReplicationHealth {
            streaming: true,
            lag_seconds: None,
            detail: None,
            held_offset: None,
            reconnecting: false,
        },
        Ok(MemberHealth::Broken { detail }) => broken(detail),
        // A member whose status cannot be read (a timeout under load) is
        // not judged: a re-sync empties a MongoDB member, so it is planned
        // only on the member's own word that it is broken.
        Err(_) => {
            return Some(ServerHealth {
                up: true,
                replication: None,
            });
        }
    };
    Some(ServerHealth {
        up: true,
        replication: Some(replication),
    })
}

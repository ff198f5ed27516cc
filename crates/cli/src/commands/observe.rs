//! Refresh: what the servers say about themselves, gathered before planning
//! so that the planner stays a pure function of its inputs.
//!
//! Each local server is asked, through its engine, whether it is up and,
//! for a replica, whether it streams from its master and how far behind it
//! is (PostgreSQL: `pg_stat_wal_receiver` and replay lag; Redis: `INFO
//! replication`). ssh hosts may be out of reach from where `plan` runs, so
//! they are not judged.

use std::path::Path;

use dbgroups_engines::postgres::ReplicationStatus;
use dbgroups_engines::{LocalProvider, PostgresServer, RedisServer};
use dbgroups_manifest::{DbType, ProviderKind};
use dbgroups_plan::{ObservedFacts, ReplicationHealth, ServerHealth};
use dbgroups_state::{AppState, GroupState, Role, ServerState};

pub(crate) fn observe(state: Option<&AppState>, refresh: bool, state_dir: &Path) -> ObservedFacts {
    let mut facts = ObservedFacts::offline();
    let Some(state) = state.filter(|_| refresh) else {
        return facts;
    };
    facts.refreshed = true;
    let Ok(provider) = LocalProvider::inspect(state_dir) else {
        return facts;
    };
    let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    else {
        return facts;
    };
    for group in &state.groups {
        for server in group
            .servers
            .iter()
            .filter(|s| s.provider == ProviderKind::Local)
        {
            if let Some(health) = runtime.block_on(health(&provider, state, group, server)) {
                facts.servers.insert(server.unique_name.clone(), health);
            }
        }
    }
    facts
}

async fn health(
    provider: &LocalProvider,
    state: &AppState,
    group: &GroupState,
    server: &ServerState,
) -> Option<ServerHealth> {
    let port = server.port?;
    let credentials = state.credentials.get(&group.address())?;
    let is_replica = server.role == Role::Slave || group.replicate_from.is_some();
    let broken = |detail: String| ReplicationHealth {
        streaming: false,
        lag_seconds: None,
        detail: Some(detail),
    };
    match group.db_type {
        DbType::Postgresql => {
            let pg =
                PostgresServer::new(provider, &server.unique_name, &group.version, port).ok()?;
            let admin = credentials.admin_password.as_ref()?.expose().to_string();
            match pg.replication_status(&admin).await {
                Err(_) => Some(ServerHealth {
                    up: false,
                    replication: None,
                }),
                Ok(status) => {
                    let replication = match (is_replica, status) {
                        (false, _) => None,
                        (true, ReplicationStatus::Master { .. }) => {
                            Some(broken("it is not in recovery: it runs as a master".into()))
                        }
                        (
                            true,
                            ReplicationStatus::Replica {
                                streaming,
                                receiver_status,
                                lag_seconds,
                            },
                        ) => Some(ReplicationHealth {
                            streaming,
                            // Whole seconds are enough to compare with the limit.
                            lag_seconds: lag_seconds.map(|lag| lag.max(0.0).round() as u64),
                            detail: (!streaming).then(|| match receiver_status {
                                Some(status) => format!("WAL receiver {status}"),
                                None => "no WAL receiver is running".to_string(),
                            }),
                        }),
                    };
                    Some(ServerHealth {
                        up: true,
                        replication,
                    })
                }
            }
        }
        DbType::Redis => {
            let redis = RedisServer::new(provider, &server.unique_name, port).ok()?;
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
                            })
                        }
                        (true, "slave") => Some(broken(format!(
                            "master link {}",
                            info.master_link_status.unwrap_or_else(|| "unknown".into())
                        ))),
                        (true, role) => Some(broken(format!("it runs as a {role}, not a replica"))),
                    };
                    Some(ServerHealth {
                        up: true,
                        replication,
                    })
                }
            }
        }
        // The MySQL family and MongoDB are observed from issue 5 on.
        _ => None,
    }
}

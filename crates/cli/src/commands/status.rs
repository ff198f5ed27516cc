use std::process::ExitCode;

use dbgroups_engines::postgres::ReplicationStatus;
use dbgroups_engines::{LocalProvider, MongoServer, MysqlServer, PostgresServer, RedisServer};
use dbgroups_manifest::DbType;
use dbgroups_state::StateStore;

use super::{CliError, context};
use crate::args::GlobalArgs;
use crate::terminal::{self, Style};

pub(crate) fn run(global: &GlobalArgs, style: Style) -> Result<ExitCode, CliError> {
    let ctx = context::load(global, style)?;
    let application = ctx.application();
    let store = context::store(global);
    let state = store
        .load(&application)?
        .ok_or_else(|| CliError::Usage(format!("no recorded state for \"{application}\"")))?;
    let provider = LocalProvider::inspect(store.root())?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|source| CliError::Io {
            action: "start",
            path: "the async runtime".into(),
            source,
        })?;
    terminal::print(&format!(
        "{:<24} {:<22} {:<7} {:<5} replication",
        "server", "group", "role", "up"
    ));
    for group in &state.groups {
        let credentials = state.credentials.get(&group.address());
        for server in &group.servers {
            let role = format!("{:?}", server.role).to_lowercase();
            let port = server.port.unwrap_or_default();
            let admin = credentials
                .and_then(|c| c.admin_password.as_ref())
                .map(|s| s.expose().to_string())
                .unwrap_or_default();
            let (up, replication) = runtime.block_on(async {
                match group.db_type {
                    DbType::Postgresql => {
                        let Ok(pg) = PostgresServer::new(
                            &provider,
                            &server.unique_name,
                            &group.version,
                            port,
                        ) else {
                            return (false, "engine not installed".to_string());
                        };
                        match pg.replication_status(&admin).await {
                            Ok(ReplicationStatus::Master { replicas }) => (
                                true,
                                format!(
                                    "master of {}",
                                    if replicas.is_empty() {
                                        "none".into()
                                    } else {
                                        replicas.join(", ")
                                    }
                                ),
                            ),
                            Ok(ReplicationStatus::Replica {
                                streaming,
                                receiver_status,
                                lag_seconds,
                            }) => (
                                true,
                                format!(
                                    "{} (receiver {}), lag {}",
                                    if streaming {
                                        "streaming"
                                    } else {
                                        "NOT STREAMING"
                                    },
                                    receiver_status.unwrap_or_else(|| "absent".into()),
                                    lag_seconds.map_or("unknown".into(), |l| format!("{l:.1}s"))
                                ),
                            ),
                            Err(err) => (false, err.to_string()),
                        }
                    }
                    DbType::Redis => {
                        let Ok(redis) = RedisServer::new(&provider, &server.unique_name, port)
                        else {
                            return (false, "engine not installed".to_string());
                        };
                        let password = credentials
                            .and_then(|c| c.password.as_ref())
                            .map(|s| s.expose().to_string())
                            .unwrap_or_default();
                        match redis.replication(&password).await {
                            Ok(info) if info.role == "slave" => (
                                true,
                                format!(
                                    "link {}, last contact {}",
                                    info.master_link_status.unwrap_or_default(),
                                    info.master_last_io_seconds_ago
                                        .map_or("unknown".into(), |s| format!("{s}s ago"))
                                ),
                            ),
                            Ok(info) => (
                                true,
                                format!("master of {} replicas", info.connected_slaves),
                            ),
                            Err(err) => (false, err.to_string()),
                        }
                    }
                    DbType::Mysql => {
                        let Ok(mysql) = MysqlServer::new(
                            &provider,
                            group.engine,
                            &group.version,
                            &server.unique_name,
                            port,
                        ) else {
                            return (false, "engine not installed".to_string());
                        };
                        match mysql.replication(&admin).await {
                            Ok(None) => (true, "not a replica".to_string()),
                            Ok(Some(status)) => (
                                true,
                                format!(
                                    "IO thread {}, SQL thread {}, {} behind{}",
                                    yes_no(status.io_running),
                                    yes_no(status.sql_running),
                                    status
                                        .seconds_behind
                                        .map_or("unknown".into(), |s| format!("{s}s")),
                                    status
                                        .last_error
                                        .map(|e| format!("; error: {e}"))
                                        .unwrap_or_default()
                                ),
                            ),
                            Err(err) => (false, err.to_string()),
                        }
                    }
                    DbType::Mongodb => {
                        let Ok(mongo) =
                            MongoServer::new(&provider, &server.unique_name, &group.version, port)
                        else {
                            return (false, "engine not installed".to_string());
                        };
                        match mongo.members(&admin).await {
                            Ok(members) => match members.iter().find(|m| m.host == mongo.host()) {
                                Some(own) => (
                                    true,
                                    format!(
                                        "{} of a set of {}{}",
                                        own.state,
                                        members.len(),
                                        own.lag_seconds
                                            .map(|l| format!(", lag {l}s"))
                                            .unwrap_or_default()
                                    ),
                                ),
                                None => (true, "not a member of its group's set".to_string()),
                            },
                            Err(err) => (mongo.is_running().await, err.to_string()),
                        }
                    }
                }
            });
            terminal::print(&format!(
                "{:<24} {:<22} {:<7} {:<5} {replication}",
                server.unique_name,
                group.address(),
                role,
                if up { "yes" } else { "NO" }
            ));
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn yes_no(running: bool) -> &'static str {
    if running { "running" } else { "STOPPED" }
}

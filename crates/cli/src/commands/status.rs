//! `dbgroups status`: every recorded server (and any that an interrupted
//! apply provisioned), asked how it is. Exits 1 when one is down, so a
//! script or a monitor can rely on it.

use std::collections::BTreeMap;
use std::process::ExitCode;

use dbgroups_engines::postgres::{ReplicationStatus, slot_name};
use dbgroups_engines::{LocalHost, MongoServer, MysqlServer, PostgresServer, RedisServer};
use dbgroups_manifest::DbType;
use dbgroups_plan::render::escape_controls;
use dbgroups_state::{AppState, GroupState, ServerState, StateStore};

use super::{CliError, context};
use crate::args::{GlobalArgs, ReportFormat, StatusArgs};
use crate::terminal::{self, Style};

/// One server as `status` shows it.
struct Row {
    server: String,
    group: String,
    db_type: DbType,
    role: String,
    /// Provisioned by an apply that did not finish: not yet a member.
    pending: bool,
    up: bool,
    replication: String,
}

pub(crate) fn run(
    global: &GlobalArgs,
    args: &StatusArgs,
    style: Style,
) -> Result<ExitCode, CliError> {
    let application = context::application(global, style)?;
    let store = context::store(global);
    let mut all = store.load_all()?;
    let state = all
        .remove(&application)
        .ok_or_else(|| CliError::Usage(format!("no recorded state for \"{application}\"")))?;
    // pg_stat_replication names a replica by its slot; a person knows it by
    // its server name, which may be in another application.
    let slot_owners: BTreeMap<String, String> = std::iter::once(&state)
        .chain(all.values())
        .flat_map(|s| s.groups.iter().flat_map(|g| &g.servers))
        .map(|s| (slot_name(&s.unique_name), s.unique_name.clone()))
        .collect();
    let provider = LocalHost::inspect(store.root())
        .map(|p| std::sync::Arc::new(p) as dbgroups_engines::HostRef)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|source| CliError::Io {
            action: "start",
            path: "the async runtime".into(),
            source,
        })?;
    let mut rows: Vec<Row> = servers_to_ask(&state)
        .into_iter()
        .map(|(group, server, pending)| {
            let (up, replication) =
                runtime.block_on(ask(&provider, &state, group, server, &slot_owners));
            Row {
                server: server.unique_name.clone(),
                group: group.address(),
                db_type: group.db_type,
                role: format!("{:?}", server.role).to_lowercase(),
                pending,
                up,
                replication: escape_controls(&replication).into_owned(),
            }
        })
        .collect();
    // By type, then group; within a group the master first, as recorded.
    rows.sort_by(|a, b| (a.db_type.to_string(), &a.group).cmp(&(b.db_type.to_string(), &b.group)));
    let down = rows.iter().filter(|r| !r.up).count();
    match args.format {
        ReportFormat::Text => print_text(&rows),
        ReportFormat::Json => print_json(&application, &rows),
    }
    if down > 0 {
        terminal::eprint(&format!(
            "{down} of {} {} down or not answering.",
            plural(rows.len(), "server", "servers"),
            if down == 1 { "is" } else { "are" },
        ));
        return Ok(ExitCode::from(1));
    }
    Ok(ExitCode::SUCCESS)
}

/// Every member of every group, then the servers an interrupted apply
/// provisioned (its journal's pending ones): their processes may run, and
/// hiding them would hide what the next apply works on.
fn servers_to_ask(state: &AppState) -> Vec<(&GroupState, &ServerState, bool)> {
    let members = state
        .groups
        .iter()
        .flat_map(|g| g.servers.iter().map(move |s| (g, s, false)));
    let pending = state
        .journal
        .iter()
        .flat_map(|j| j.pending.values())
        .filter_map(|p| {
            let group = state.groups.iter().find(|g| g.address() == p.group)?;
            let already_member = group
                .servers
                .iter()
                .any(|s| s.unique_name == p.server.unique_name);
            (!already_member).then_some((group, &p.server, true))
        });
    members.chain(pending).collect()
}

fn plural(count: usize, one: &str, many: &str) -> String {
    format!("{count} {}", if count == 1 { one } else { many })
}

fn print_text(rows: &[Row]) {
    terminal::print(&format!(
        "{:<24} {:<22} {:<7} {:<5} replication",
        "server", "group", "role", "up"
    ));
    for row in rows {
        let pending = if row.pending {
            "; pending: an interrupted apply provisioned it (`dbgroups apply` finishes it)"
        } else {
            ""
        };
        terminal::print(&format!(
            "{:<24} {:<22} {:<7} {:<5} {}{pending}",
            row.server,
            row.group,
            row.role,
            if row.up { "yes" } else { "NO" },
            row.replication,
        ));
    }
}

fn print_json(application: &str, rows: &[Row]) {
    let document = serde_json::json!({
        "format_version": 1,
        "application": application,
        "all_up": rows.iter().all(|r| r.up),
        "servers": rows.iter().map(|row| serde_json::json!({
            "server": row.server,
            "group": row.group,
            "type": row.db_type,
            "role": row.role,
            "pending": row.pending,
            "up": row.up,
            "replication": row.replication,
        })).collect::<Vec<_>>(),
    });
    terminal::print(&serde_json::to_string_pretty(&document).unwrap_or_default());
}

/// Whether the server answers, and what it says about replication.
async fn ask(
    provider: &dbgroups_engines::HostRef,
    state: &AppState,
    group: &GroupState,
    server: &ServerState,
    slot_owners: &BTreeMap<String, String>,
) -> (bool, String) {
    let credentials = state.credentials.get(&group.address());
    let port = server.port.unwrap_or_default();
    let admin = credentials
        .and_then(|c| c.admin_password.as_ref())
        .map(|s| s.expose().to_string())
        .unwrap_or_default();
    let not_installed = |err: dbgroups_engines::EngineError| (false, err.to_string());
    match group.db_type {
        DbType::Postgresql => {
            let pg = match PostgresServer::new(provider, &server.unique_name, &group.version, port)
                .await
            {
                Ok(pg) => pg,
                Err(err) => return not_installed(err),
            };
            match pg.replication_status(&admin).await {
                Ok(ReplicationStatus::Master { replicas }) => {
                    let names: Vec<String> = replicas
                        .iter()
                        .map(|slot| slot_owners.get(slot).unwrap_or(slot).clone())
                        .collect();
                    (true, master_of(&names))
                }
                Ok(ReplicationStatus::Replica {
                    streaming,
                    receiver_status,
                    lag_seconds,
                }) => (
                    true,
                    if streaming {
                        format!(
                            "streaming (receiver streaming), lag {}",
                            lag_seconds.map_or("unknown".into(), |l| format!("{l:.1}s"))
                        )
                    } else {
                        // A lag is only meaningful while WAL arrives.
                        format!(
                            "NOT STREAMING (receiver {})",
                            receiver_status.unwrap_or_else(|| "absent".into())
                        )
                    },
                ),
                Err(err) => (false, err.to_string()),
            }
        }
        DbType::Redis => {
            let redis = match RedisServer::new(provider, &server.unique_name, port).await {
                Ok(redis) => redis,
                Err(err) => return not_installed(err),
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
                    match info.connected_slaves {
                        0 => "master, no replica connected".to_string(),
                        n => format!("master of {}", plural(n, "replica", "replicas")),
                    },
                ),
                Err(err) => (false, err.to_string()),
            }
        }
        DbType::Mysql => {
            let mysql = match MysqlServer::new(
                provider,
                group.engine,
                &group.version,
                &server.unique_name,
                port,
            )
            .await
            {
                Ok(mysql) => mysql,
                Err(err) => return not_installed(err),
            };
            match mysql.replication(&admin).await {
                Ok(None) => (true, "not a replica".to_string()),
                Ok(Some(status)) => (
                    true,
                    format!(
                        "IO thread {}, SQL thread {}, {} behind{}",
                        running(status.io_running),
                        running(status.sql_running),
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
            let mongo =
                match MongoServer::new(provider, &server.unique_name, &group.version, port).await {
                    Ok(mongo) => mongo,
                    Err(err) => return not_installed(err),
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
}

fn master_of(replicas: &[String]) -> String {
    if replicas.is_empty() {
        "master, no replica streaming".to_string()
    } else {
        format!("master of {}", replicas.join(", "))
    }
}

fn running(running: bool) -> &'static str {
    if running { "running" } else { "STOPPED" }
}

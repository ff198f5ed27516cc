//! `dbgroups status`: every recorded server (and any that an interrupted
//! apply provisioned), asked how it is. Exits 1 when one is down, so a
//! script or a monitor can rely on it.

use std::process::ExitCode;

use dbgroups_engines::LocalHost;
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
    let store = context::store(global, context::Secrets::Needed)?;
    let mut all = store.load_all()?;
    let state = all
        .remove(&application)
        .ok_or_else(|| CliError::Usage(format!("no recorded state for \"{application}\"")))?;
    // A master names its replicas by server, and they may be in another
    // application.
    let known_servers: Vec<String> = std::iter::once(&state)
        .chain(all.values())
        .flat_map(|s| s.groups.iter().flat_map(|g| &g.servers))
        .map(|s| s.unique_name.clone())
        .collect();
    let local = LocalHost::inspect(&context::workspace(global)).map(LocalHost::into_ref)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|source| CliError::Io {
            action: "start",
            path: "the async runtime".into(),
            source,
        })?;
    // Every host at once; a host out of reach shows its servers down, with
    // why.
    let (hosts, unreachable) = runtime.block_on(dbgroups_apply::hosts::HostSet::connect_reachable(
        local,
        &super::ssh_client(),
        std::iter::once(&state).chain(all.values()),
    ));
    let mut rows: Vec<Row> = servers_to_ask(&state)
        .into_iter()
        .map(|(group, server, pending)| {
            let (up, replication) = if hosts.reaches(server) {
                runtime.block_on(ask(&hosts, &state, group, server, &known_servers))
            } else {
                let why = unreachable
                    .iter()
                    .find(|(host, _)| server.address.as_deref() == Some(host.as_str()))
                    .map_or_else(
                        || "its host was not reached".to_string(),
                        |(_, e)| e.to_string(),
                    );
                (false, why)
            };
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
    hosts: &dbgroups_apply::hosts::HostSet,
    state: &AppState,
    group: &GroupState,
    server: &ServerState,
    known_servers: &[String],
) -> (bool, String) {
    match dbgroups_apply::servers::observe(hosts, state, group, server, known_servers).await {
        Ok(observation) => (observation.up, observation.summary),
        Err(err) => (false, err.to_string()),
    }
}

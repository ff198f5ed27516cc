use std::process::ExitCode;

use dbgroups_state::{AppState, StateStore};

use super::{CliError, context};
use crate::args::{GlobalArgs, ReportFormat, StateCommand};
use crate::terminal;

pub(crate) fn run(global: &GlobalArgs, command: &StateCommand) -> Result<ExitCode, CliError> {
    let store = context::store(global);
    match command {
        StateCommand::List(args) => {
            let applications = store.applications()?;
            let mut listed = Vec::new();
            for application in applications {
                let state = store.load(&application)?;
                let (groups, serial) = state.map_or((0, 0), |s| (s.groups.len(), s.serial));
                listed.push((application, serial, groups));
            }
            let holder = store.lock_holder()?.map(|h| h.to_string());
            match args.format {
                ReportFormat::Text => {
                    if listed.is_empty() {
                        terminal::eprint(&format!(
                            "No recorded state in {}.",
                            store.root().display()
                        ));
                    }
                    for (application, serial, groups) in &listed {
                        terminal::print(&format!(
                            "{application}\tserial {serial}\t{groups} groups"
                        ));
                    }
                    if let Some(holder) = holder {
                        terminal::eprint(&format!("The state is locked by {holder}."));
                    }
                }
                ReportFormat::Json => {
                    let document = serde_json::json!({
                        "format_version": 1,
                        "state_dir": store.root().display().to_string(),
                        "applications": listed.iter().map(|(application, serial, groups)| {
                            serde_json::json!({
                                "application": application,
                                "serial": serial,
                                "groups": groups,
                            })
                        }).collect::<Vec<_>>(),
                        "locked_by": holder,
                    });
                    terminal::print(&serde_json::to_string_pretty(&document).unwrap_or_default());
                }
            }
        }
        StateCommand::Show(args) => {
            let application = match &global.app {
                Some(app) => app.clone(),
                None => {
                    let (_, source) = context::read_manifest_source(global)?;
                    let options = dbgroups_manifest::ParseOptions {
                        environment: global.environment.clone(),
                        application: None,
                    };
                    let parsed = dbgroups_manifest::parse(&source, &options);
                    parsed
                        .manifest
                        .and_then(|m| m.application.map(|a| a.value))
                        .ok_or_else(|| {
                            CliError::Usage("name the application with --app NAME".into())
                        })?
                }
            };
            let state = store.load(&application)?.ok_or_else(|| {
                CliError::Usage(format!(
                    "no recorded state for application \"{application}\""
                ))
            })?;
            match args.format {
                ReportFormat::Json => terminal::print(
                    &serde_json::to_string_pretty(&state.redacted()).unwrap_or_default(),
                ),
                ReportFormat::Text => terminal::print(summary(&state).trim_end()),
            }
        }
        StateCommand::Unlock { id } => {
            let info = store.force_unlock(id)?;
            terminal::eprint(&format!("Broke the lock held by {info}."));
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The state for a person: its version, and each group's servers with
/// their roles and ports. No secret is part of it.
fn summary(state: &AppState) -> String {
    use std::fmt::Write as _;
    let mut out = format!(
        "application {} (serial {}, lineage {})\n",
        state.application, state.serial, state.lineage
    );
    for group in &state.groups {
        let _ = writeln!(
            out,
            "{} ({} {}){}",
            group.address(),
            group.engine,
            group.version,
            if group.primary { ", primary" } else { "" }
        );
        for server in &group.servers {
            let _ = writeln!(
                out,
                "  {:<24} {:<7} {}",
                server.unique_name,
                format!("{:?}", server.role).to_lowercase(),
                server
                    .port
                    .map_or("no port".to_string(), |p| format!("port {p}"))
            );
        }
    }
    if state.journal.is_some() {
        out.push_str("an interrupted apply is recorded; `dbgroups apply` finishes it\n");
    }
    dbgroups_plan::render::escape_controls(&out).into_owned()
}

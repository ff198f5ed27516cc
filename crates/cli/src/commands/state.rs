use std::process::ExitCode;

use dbgroups_state::StateStore;

use super::{CliError, context};
use crate::args::{GlobalArgs, StateCommand};
use crate::terminal;

pub(crate) fn run(global: &GlobalArgs, command: &StateCommand) -> Result<ExitCode, CliError> {
    let store = context::store(global);
    match command {
        StateCommand::List => {
            let applications = store.applications()?;
            if applications.is_empty() {
                terminal::eprint(&format!("No recorded state in {}.", store.root().display()));
            }
            for application in applications {
                let state = store.load(&application)?;
                let (groups, serial) = state.map_or((0, 0), |s| (s.groups.len(), s.serial));
                terminal::print(&format!("{application}\tserial {serial}\t{groups} groups"));
            }
            if let Some(holder) = store.lock_holder()? {
                terminal::eprint(&format!("The state is locked by {holder}."));
            }
        }
        StateCommand::Show => {
            let application = match &global.app {
                Some(app) => app.clone(),
                None => {
                    let source = dbgroups_manifest::SourceFile::read(&global.manifest)?;
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
            terminal::print(&serde_json::to_string_pretty(&state.redacted()).unwrap_or_default());
        }
        StateCommand::Unlock { id } => {
            let info = store.force_unlock(id)?;
            terminal::eprint(&format!("Broke the lock held by {info}."));
        }
    }
    Ok(ExitCode::SUCCESS)
}

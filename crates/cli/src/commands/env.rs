use std::process::ExitCode;

use dbgroups_manifest::env_names;
use dbgroups_state::{MASK, StateStore};

use super::{CliError, context};
use crate::args::{EnvArgs, EnvFormat, GlobalArgs};
use crate::terminal::{self, Style};

pub(crate) fn run(global: &GlobalArgs, args: &EnvArgs, style: Style) -> Result<ExitCode, CliError> {
    let ctx = context::load(global, style)?;
    let application = ctx.application();
    let state = context::store(global).load(&application)?.ok_or_else(|| {
        CliError::Usage(format!(
            "no recorded state for \"{application}\": run `dbgroups apply` first"
        ))
    })?;
    let shown: Vec<(String, String)> = state
        .environment
        .iter()
        .map(|(name, value)| {
            let value = if env_names::is_secret(name) && !args.show_secrets {
                MASK.to_string()
            } else {
                value.clone()
            };
            (name.clone(), value)
        })
        .collect();
    match args.format {
        EnvFormat::Dotenv => {
            for (name, value) in &shown {
                terminal::print(&format!("{name}={value}"));
            }
        }
        EnvFormat::Json => {
            let map: serde_json::Map<String, serde_json::Value> = shown
                .into_iter()
                .map(|(k, v)| (k, serde_json::Value::String(v)))
                .collect();
            terminal::print(&serde_json::to_string_pretty(&map).unwrap_or_default());
        }
    }
    Ok(ExitCode::SUCCESS)
}

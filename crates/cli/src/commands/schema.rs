use std::process::ExitCode;

use super::CliError;
use crate::terminal;

pub(crate) fn run() -> Result<ExitCode, CliError> {
    let schema = dbgroups_manifest::schema::manifest_schema();
    terminal::print(&serde_json::to_string_pretty(&schema).unwrap_or_default());
    Ok(ExitCode::SUCCESS)
}

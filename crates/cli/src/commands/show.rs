use std::process::ExitCode;

use dbgroups_plan::planfile::PlanFile;

use super::CliError;
use crate::args::{ShowArgs, plan_format};
use crate::terminal::Style;

pub(crate) fn read_plan_file(path: &std::path::Path) -> Result<PlanFile, CliError> {
    let bytes = std::fs::read(path).map_err(|source| CliError::Io {
        action: "read",
        path: path.display().to_string(),
        source,
    })?;
    PlanFile::parse(&bytes).map_err(|source| CliError::PlanFile {
        path: path.display().to_string(),
        source,
    })
}

pub(crate) fn run(args: &ShowArgs, style: Style) -> Result<ExitCode, CliError> {
    let file = read_plan_file(&args.file)?;
    super::plan::print_plan(&file.plan, plan_format(args.format, args.json), style);
    Ok(ExitCode::SUCCESS)
}

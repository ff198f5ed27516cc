use std::process::ExitCode;

use dbgroups_plan::Plan;
use dbgroups_plan::planfile::PlanFile;
use dbgroups_state::StateStore as _;

use super::{CliError, context};
use crate::args::{GlobalArgs, PlanArgs, PlanFormat, plan_format};
use crate::terminal::{self, Style};

pub(crate) fn run(
    global: &GlobalArgs,
    args: &PlanArgs,
    style: Style,
) -> Result<ExitCode, CliError> {
    let intents = context::intents(&args.intents)?;
    // A plan file records the state it was made against, so making one
    // excludes writers until it is written.
    let manifest = context::read_manifest(global, style)?;
    let lock = match &args.out {
        Some(_) => Some(context::store(global).lock("plan --out", global.lock_timeout)?),
        None => None,
    };
    let ctx = context::with_state(global, manifest)?;
    let (plan, observed) = ctx.plan(global, &intents, args.intents.refresh)?;
    print_plan(&plan, plan_format(args.format, args.json), style);
    if let Some(path) = &args.out {
        let file = PlanFile::new(
            plan.clone(),
            intents,
            global.environment.clone(),
            &ctx.manifest_bytes,
            observed.refreshed,
            env!("CARGO_PKG_VERSION"),
        );
        write_private(path, file.to_json().as_bytes())?;
        // `apply FILE` arrives with issue 4; until then the file is for review.
        terminal::eprint(&format!(
            "Saved the plan to {path}; `dbgroups show {path}` renders it again.",
            path = path.display()
        ));
    }
    drop(lock);
    Ok(match (args.detailed_exitcode, plan.has_changes()) {
        (true, true) => ExitCode::from(2),
        _ => ExitCode::SUCCESS,
    })
}

pub(crate) fn print_plan(plan: &Plan, format: PlanFormat, style: Style) {
    match format {
        PlanFormat::Text => terminal::print(
            terminal::colour_plan(&dbgroups_plan::render::text::render(plan), style).trim_end(),
        ),
        PlanFormat::Json => terminal::print(dbgroups_plan::render::json::render(plan).trim_end()),
        PlanFormat::Markdown => {
            terminal::print(dbgroups_plan::render::markdown::render(plan).trim_end())
        }
    }
}

/// Plan files hold no secrets, but they describe infrastructure: 0600 like
/// every file dbgroups writes.
fn write_private(path: &std::path::Path, contents: &[u8]) -> Result<(), CliError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let io = |action| {
        move |source| CliError::Io {
            action,
            path: path.display().to_string(),
            source,
        }
    };
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(dbgroups_state::PRIVATE_MODE)
        .open(path)
        .map_err(io("create"))?;
    file.write_all(contents).map_err(io("write"))?;
    file.sync_all().map_err(io("write"))
}

use std::process::ExitCode;

use dbgroups_plan::Plan;
use dbgroups_plan::planfile::PlanFile;
use dbgroups_state::{LockScope, StateStore as _};

use super::{CliError, context};
use crate::args::{GlobalArgs, PlanArgs, PlanFormat, plan_format};
use crate::terminal::{self, Style};

/// What `--out -` names: the plan file goes to stdout.
const STDOUT: &str = "-";

pub(crate) fn run(
    global: &GlobalArgs,
    args: &PlanArgs,
    style: Style,
) -> Result<ExitCode, CliError> {
    let format = plan_format(args.format, args.json);
    let outcome = plan_and_render(global, args, format, style);
    if let Err(err) = &outcome {
        // A pull-request comment or a CI parser reads stdout only: it must
        // say that planning failed and why, not stay empty. The human
        // report still goes to stderr.
        if format != PlanFormat::Text && !writes_plan_file_to_stdout(args) {
            terminal::print(super::plan_failure::render(err, format).trim_end());
        }
    }
    outcome
}

fn writes_plan_file_to_stdout(args: &PlanArgs) -> bool {
    args.out.as_deref().is_some_and(|p| p.as_os_str() == STDOUT)
}

fn plan_and_render(
    global: &GlobalArgs,
    args: &PlanArgs,
    format: PlanFormat,
    style: Style,
) -> Result<ExitCode, CliError> {
    let intents = context::intents(&args.intents)?;
    // A plan file records the state it was made against, so making one
    // excludes writers until it is written.
    let manifest = context::read_manifest(global, style)?;
    let manifest_warnings: Vec<String> = manifest
        .warnings
        .iter()
        .map(context::ManifestDiagnostic::warning_line)
        .collect();
    // Observing the servers takes their passwords; planning offline
    // (--refresh=false) reads the state without them.
    let store = context::store(global, context::Secrets::needed_if(args.intents.refresh))?;
    let lock = match &args.out {
        Some(_) => Some(store.lock(
            LockScope::Application(&manifest.application),
            "plan --out",
            global.lock_timeout,
        )?),
        None => None,
    };
    let ctx = context::with_state(&store, manifest)?;
    let (plan, observed) = ctx.plan(global, &intents, args.intents.refresh)?;
    let to_stdout = writes_plan_file_to_stdout(args);
    let rendering = render_plan(&plan, format, style, &manifest_warnings);
    if to_stdout {
        // stdout carries the plan file; the rendering is for the person.
        terminal::eprint(&rendering);
    } else {
        terminal::print(&rendering);
    }
    if let Some(path) = &args.out {
        let file = PlanFile::new(
            plan.clone(),
            intents,
            global.environment.clone(),
            &ctx.manifest_bytes,
            observed.refreshed,
            env!("CARGO_PKG_VERSION"),
        );
        if to_stdout {
            terminal::print(file.to_json().trim_end());
        } else {
            write_private(path, file.to_json().as_bytes())?;
            terminal::eprint(&format!(
                "Saved the plan to {path}; `dbgroups show {path}` renders it again.",
                path = path.display()
            ));
        }
    }
    drop(lock);
    if everything_blocked(&plan) {
        // Reported here rather than returned: the plan was rendered, and a
        // returned error would add a failure document after it on stdout.
        terminal::eprint(&format!(
            "{:?}",
            miette::Report::new(everything_blocked_error(&plan))
        ));
        return Ok(ExitCode::from(1));
    }
    Ok(match (args.detailed_exitcode, plan.has_changes()) {
        (true, true) => ExitCode::from(2),
        _ => ExitCode::SUCCESS,
    })
}

/// Nothing to do, yet the manifest asks for something the planner refused:
/// the state will not match the manifest, which a CI job must not read as
/// success.
pub(crate) fn everything_blocked(plan: &Plan) -> bool {
    !plan.has_changes() && !plan.report.blocked.is_empty()
}

pub(crate) fn everything_blocked_error(plan: &Plan) -> CliError {
    let blocked = plan.report.blocked.len();
    CliError::AllBlocked(format!(
        "nothing can be planned: {blocked} change{} blocked (listed in the plan); resolve {} first",
        if blocked == 1 { " is" } else { "s are" },
        if blocked == 1 { "it" } else { "them" },
    ))
}

/// The plan in `format`. Only the text format goes without the manifest's
/// warnings: on a terminal they are shown on stderr with their source line,
/// while JSON and Markdown readers see stdout alone.
pub(crate) fn render_plan(
    plan: &Plan,
    format: PlanFormat,
    style: Style,
    manifest_warnings: &[String],
) -> String {
    let with_warnings = |plan: &Plan| {
        let mut plan = plan.clone();
        let planner_warnings = std::mem::take(&mut plan.report.warnings);
        plan.report.warnings = manifest_warnings
            .iter()
            .cloned()
            .chain(planner_warnings)
            .collect();
        plan
    };
    let text = match format {
        PlanFormat::Text => {
            terminal::colour_plan(&dbgroups_plan::render::text::render(plan), style)
        }
        PlanFormat::Json => dbgroups_plan::render::json::render(&with_warnings(plan)),
        PlanFormat::Markdown => dbgroups_plan::render::markdown::render(&with_warnings(plan)),
    };
    text.trim_end().to_string()
}

pub(crate) fn print_plan(plan: &Plan, format: PlanFormat, style: Style) {
    terminal::print(&render_plan(plan, format, style, &[]));
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

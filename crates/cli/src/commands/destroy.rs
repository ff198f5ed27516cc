use std::process::ExitCode;

use dbgroups_manifest::{Manifest, Span, Spanned};
use dbgroups_plan::{GroupAddress, Intents, ObservedFacts, PlanInput};
use dbgroups_state::StateStore;

use super::{CliError, context};
use crate::args::{DestroyArgs, GlobalArgs, PlanFormat, ReportFormat};
use crate::terminal::{self, Style};

pub(crate) fn run(
    global: &GlobalArgs,
    args: &DestroyArgs,
    style: Style,
) -> Result<ExitCode, CliError> {
    let application = global
        .app
        .clone()
        .ok_or_else(|| CliError::Usage("name the application to destroy with --app NAME".into()))?;
    context::refuse_plaintext_writes(global)?;
    let store = context::store(global, context::Secrets::Needed)?;
    let lock = store.lock(
        dbgroups_state::LockScope::Application(&application),
        "destroy",
        global.lock_timeout,
    )?;
    let mut others = store.load_all()?;
    let Some(state) = others.remove(&application) else {
        return Err(CliError::Usage(format!(
            "no recorded state for \"{application}\""
        )));
    };
    // The plan of an application that declares nothing, with every
    // recorded group named for removal: the planner's own checks apply
    // (a group another one replicates from is not removed).
    let manifest = Manifest {
        application: Some(Spanned::new(application.clone(), Span::default())),
        environment: None,
        groups: Vec::new(),
    };
    let intents = Intents {
        remove_groups: state
            .groups
            .iter()
            .map(|g| GroupAddress::new(g.db_type, g.name.clone()))
            .collect(),
        destroy: true,
        ..Intents::default()
    };
    let plan = dbgroups_plan::plan(&PlanInput {
        manifest: &manifest,
        state: Some(&state),
        other_applications: &others,
        observed: &ObservedFacts::offline(),
        intents: &intents,
    })?;
    // Refused before anything is shown as going: a plan that removes every
    // variable, printed and then not made, would tell the reader the
    // opposite of what happens.
    if !plan.report.blocked.is_empty() {
        return Err(CliError::Usage(format!(
            "not destroying \"{application}\": {}",
            plan.report
                .blocked
                .iter()
                .map(|b| format!("{}; {}", b.reason, b.hint))
                .collect::<Vec<_>>()
                .join("; ")
        )));
    }
    if !plan.has_changes() {
        store.retire(&lock, &state)?;
        terminal::eprint(&format!(
            "\"{application}\" had no servers left; its record is closed."
        ));
        return Ok(ExitCode::SUCCESS);
    }
    let json = args.json || args.format == ReportFormat::Json;
    if !json {
        super::plan::print_plan(&plan, PlanFormat::Text, style);
    }
    if !args.auto_approve {
        let answer = terminal::ask(
            &format!(
                "This deletes every server and all data of \"{application}\". Type its name to confirm:"
            ),
            "destroy",
        )?;
        if answer != application {
            terminal::eprint("Destroy cancelled.");
            return Ok(ExitCode::from(1));
        }
    }
    let code = super::apply::execute(
        (&store, &context::workspace(global)),
        &lock,
        plan,
        (Some(state), others),
        &application,
        args.parallelism,
        json,
    )?;
    // Once nothing of it is left, the application's record is closed, so
    // the same manifest applied again builds a new application rather than
    // needing --add-group for every group. An interrupted destroy keeps its
    // record (and journal) for the next run to finish.
    if let Some(after) = store.load(&application)?
        && after.groups.is_empty()
        && after.journal.is_none()
    {
        store.retire(&lock, &after)?;
    }
    Ok(code)
}

use std::process::ExitCode;

use dbgroups_plan::render::graph;

use super::{CliError, context};
use crate::args::{GlobalArgs, GraphArgs, GraphFormat};
use crate::terminal::{self, Style};

pub(crate) fn run(
    global: &GlobalArgs,
    args: &GraphArgs,
    style: Style,
) -> Result<ExitCode, CliError> {
    let plan = match &args.plan {
        Some(path) => super::show::read_plan_file(path)?.plan,
        None => {
            let ctx = context::load(
                global,
                style,
                context::Secrets::needed_if(args.intents.refresh),
            )?;
            let intents = context::intents(&args.intents)?;
            ctx.plan(global, &intents, args.intents.refresh)?.0
        }
    };
    let text = match args.format {
        GraphFormat::Dot => graph::dot(&plan),
        GraphFormat::Mermaid => graph::mermaid(&plan),
    };
    terminal::print(text.trim_end());
    Ok(ExitCode::SUCCESS)
}

use std::process::ExitCode;
use std::time::Instant;

use dbgroups_apply::{Apply, Event, Reporter};
use dbgroups_engines::LocalHost;
use dbgroups_engines::with_causes;
use dbgroups_plan::planfile::sha256_hex;
use dbgroups_state::{LockScope, StateStore};

use super::apply_events::JsonReporter;
use super::{CliError, context};
use crate::args::{ApplyArgs, GlobalArgs, PlanFormat};
use crate::terminal::{self, Style};

/// Plain, timestamped lines on stderr (terminals and CI logs alike).
struct LineReporter {
    started: Instant,
}

impl Reporter for LineReporter {
    fn report(&self, event: Event) {
        let at = format!("[{:>6.1}s]", self.started.elapsed().as_secs_f64());
        let line = match event {
            Event::Note(note) => format!("{at} note: {note}"),
            Event::StepStarted { step, description } => {
                format!("{at} start  {step}: {description}")
            }
            Event::StepFinished { step, seconds } => format!("{at} done   {step} ({seconds:.1}s)"),
            Event::StepProgress { step, message } => format!("{at} ...    {step}: {message}"),
            Event::StepFailed { step, error } => {
                format!("{at} FAILED {step}: {}", with_causes(error.as_ref()))
            }
            Event::Interrupted => {
                format!("{at} interrupted: no new steps start; waiting for the running ones")
            }
        };
        terminal::eprint(&line);
    }
}

/// A spinner per running step on a terminal; finished steps stay as lines.
struct BarReporter {
    bars: indicatif::MultiProgress,
    running: std::sync::Mutex<std::collections::BTreeMap<String, indicatif::ProgressBar>>,
}

impl BarReporter {
    fn new() -> Self {
        Self {
            bars: indicatif::MultiProgress::new(),
            running: std::sync::Mutex::new(std::collections::BTreeMap::new()),
        }
    }

    fn take(&self, step: &str) -> Option<indicatif::ProgressBar> {
        self.running
            .lock()
            .ok()
            .and_then(|mut running| running.remove(step))
    }
}

impl Reporter for BarReporter {
    fn report(&self, event: Event) {
        match event {
            Event::Note(note) => {
                let _ = self.bars.println(format!("note: {note}"));
            }
            Event::StepStarted { step, description } => {
                let bar = self.bars.add(indicatif::ProgressBar::new_spinner());
                bar.set_style(
                    indicatif::ProgressStyle::with_template("{spinner} {elapsed:>4} {msg}")
                        .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
                );
                bar.set_message(format!("{step}: {description}"));
                bar.enable_steady_tick(std::time::Duration::from_millis(120));
                if let Ok(mut running) = self.running.lock() {
                    running.insert(step, bar);
                }
            }
            Event::StepFinished { step, seconds } => {
                if let Some(bar) = self.take(&step) {
                    bar.finish_and_clear();
                }
                let _ = self.bars.println(format!("done   {step} ({seconds:.1}s)"));
            }
            Event::StepProgress { step, message } => {
                if let Ok(running) = self.running.lock()
                    && let Some(bar) = running.get(&step)
                {
                    bar.set_message(format!("{step}: {message}"));
                }
            }
            Event::StepFailed { step, error } => {
                if let Some(bar) = self.take(&step) {
                    bar.finish_and_clear();
                }
                let _ = self
                    .bars
                    .println(format!("FAILED {step}: {}", with_causes(error.as_ref())));
            }
            Event::Interrupted => {
                let _ = self
                    .bars
                    .println("interrupted: no new steps start; waiting for the running ones");
            }
        }
    }
}

fn confirm(application: &str) -> Result<bool, CliError> {
    let answer = terminal::ask(
        &format!("Apply this plan to \"{application}\"? Only 'yes' is accepted:"),
        "apply",
    )?;
    Ok(answer == "yes")
}

pub(crate) fn run(
    global: &GlobalArgs,
    args: &ApplyArgs,
    style: Style,
) -> Result<ExitCode, CliError> {
    let manifest = context::read_manifest(global, style)?;
    context::refuse_plaintext_writes(global)?;
    let store = context::store(global, context::Secrets::Needed)?;
    let lock = store.lock(
        LockScope::Application(&manifest.application),
        "apply",
        global.lock_timeout,
    )?;
    let ctx = context::with_state(&store, manifest)?;
    let application = ctx.application();
    let plan = match &args.plan {
        Some(path) => {
            let file = super::show::read_plan_file(path)?;
            file.check_current(&application, ctx.state.as_ref(), &ctx.manifest_bytes)?;
            file.plan
        }
        None => {
            let intents = context::intents(&args.intents)?;
            let (plan, _) = ctx.plan(global, &intents, args.intents.refresh)?;
            if !args.json {
                super::plan::print_plan(&plan, PlanFormat::Text, style);
            }
            if super::plan::everything_blocked(&plan) {
                let err = super::plan::everything_blocked_error(&plan);
                if args.json {
                    let events = JsonReporter::new();
                    events.apply_started(&application, &plan);
                    events.all_blocked(&err.to_string());
                }
                return Err(err);
            }
            if !plan.has_changes() {
                if args.json {
                    let events = JsonReporter::new();
                    events.apply_started(&application, &plan);
                    events.nothing_to_apply();
                }
                return Ok(ExitCode::SUCCESS);
            }
            if !args.auto_approve && !confirm(&application)? {
                terminal::eprint("Apply cancelled.");
                return Ok(ExitCode::from(1));
            }
            plan
        }
    };
    if !plan.has_changes() {
        if args.json {
            let events = JsonReporter::new();
            events.apply_started(&application, &plan);
            events.nothing_to_apply();
        } else {
            terminal::eprint("No changes to apply.");
        }
        return Ok(ExitCode::SUCCESS);
    }
    execute(
        (&store, &context::workspace(global)),
        &lock,
        plan,
        (ctx.state, ctx.others),
        &application,
        args.parallelism,
        args.json,
    )
}

/// Runs a plan with the executor and sums up; shared by `apply` and `destroy`.
pub(crate) fn execute(
    (store, workspace): (&dbgroups_state::Backend, &std::path::Path),
    lock: &dbgroups_state::LockGuard,
    plan: dbgroups_plan::Plan,
    (state, others): (
        Option<dbgroups_state::AppState>,
        std::collections::BTreeMap<String, dbgroups_state::AppState>,
    ),
    application: &str,
    parallelism: usize,
    json: bool,
) -> Result<ExitCode, CliError> {
    let events = json.then(JsonReporter::new);
    if let Some(events) = &events {
        events.apply_started(application, &plan);
    }
    let outcome = run_executor(
        (store, workspace),
        lock,
        &plan,
        (state, others),
        application,
        parallelism,
        events.as_ref(),
    );
    let (outcome, env_file) = match outcome {
        Ok(done) => done,
        Err(err) => {
            if let Some(events) = &events {
                events.apply_error(&super::error_chain(&err));
            }
            return Err(err);
        }
    };
    if let Some(events) = &events {
        // The result event is the summary: stdout only, nothing on stderr
        // but a pointer to it when the apply did not succeed.
        events.apply_finished(
            &outcome,
            outcome
                .environment_written
                .then(|| env_file.display().to_string())
                .as_deref(),
        );
        if outcome.succeeded() {
            return Ok(ExitCode::SUCCESS);
        }
        return Err(CliError::ApplyFailed(
            "see the apply_finished event on stdout for what failed and why".into(),
        ));
    }
    summarise(&outcome, &env_file)
}

/// Runs the executor with the reporter that suits the output: the JSON
/// events, spinners on a terminal, or plain lines.
fn run_executor(
    (store, workspace): (&dbgroups_state::Backend, &std::path::Path),
    lock: &dbgroups_state::LockGuard,
    plan: &dbgroups_plan::Plan,
    (state, others): (
        Option<dbgroups_state::AppState>,
        std::collections::BTreeMap<String, dbgroups_state::AppState>,
    ),
    application: &str,
    parallelism: usize,
    events: Option<&JsonReporter>,
) -> Result<(dbgroups_apply::Outcome, std::path::PathBuf), CliError> {
    let boxed: Box<dyn Reporter>;
    let reporter: &dyn Reporter = if let Some(events) = events {
        events
    } else if std::io::IsTerminal::is_terminal(&std::io::stderr()) {
        boxed = Box::new(BarReporter::new());
        boxed.as_ref()
    } else {
        boxed = Box::new(LineReporter {
            started: Instant::now(),
        });
        boxed.as_ref()
    };
    let (local, notes) = LocalHost::prepare(workspace)?;
    for note in notes {
        reporter.report(Event::Note(note));
    }
    let env_file = workspace.join("env").join(format!("{application}.env"));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|source| CliError::Io {
            action: "start",
            path: "the async runtime".into(),
            source,
        })?;
    let hosts = runtime.block_on(dbgroups_apply::hosts::HostSet::connect(
        local.into_ref(),
        &super::ssh_client(),
        std::iter::once(&plan.expected_state)
            .chain(state.as_ref())
            .chain(others.values()),
    ))?;
    let outcome = runtime.block_on(dbgroups_apply::run(Apply {
        plan,
        plan_id: sha256_hex(dbgroups_plan::render::json::render(plan).as_bytes()),
        store,
        lock,
        state,
        others,
        hosts,
        parallelism,
        reporter,
        env_file: env_file.clone(),
    }))?;
    Ok((outcome, env_file))
}

fn steps(count: usize) -> String {
    format!("{count} step{}", if count == 1 { "" } else { "s" })
}

/// The last lines of a run for a person, on stderr.
fn summarise(
    outcome: &dbgroups_apply::Outcome,
    env_file: &std::path::Path,
) -> Result<ExitCode, CliError> {
    if outcome.succeeded() {
        let mut message = format!("Apply complete: {}.", steps(outcome.completed.len()));
        if outcome.interrupted {
            message
                .push_str(" Ctrl-C came after the last step had started, and every step finished.");
        }
        if outcome.environment_written {
            message.push_str(&format!(
                " The environment file is {} (mode 0600); applications pick the new values up when they are next deployed.",
                env_file.display()
            ));
        }
        terminal::eprint(&message);
        return Ok(ExitCode::SUCCESS);
    }
    // Each error was reported once, where it happened; this only sums up.
    let failed: Vec<&str> = outcome
        .failed
        .iter()
        .map(|(step, _)| step.as_str())
        .collect();
    let counts = format!(
        "{} finished, {} did not start",
        steps(outcome.completed.len()),
        outcome.not_started.len()
    );
    let reason = if !failed.is_empty() {
        format!(
            "{} failed (the engine's error is above); {counts}",
            failed.join(", ")
        )
    } else if outcome.interrupted {
        format!("interrupted by Ctrl-C; {counts}")
    } else {
        format!("some steps did not run; {counts}")
    };
    Err(CliError::ApplyFailed(
        reason + &interrupt_summary(outcome, &failed),
    ))
}

/// What a Ctrl-C did, and the exact command that finishes an intent the
/// next apply would otherwise not know of (a re-sync or removal is not
/// remembered, so a plain apply would find nothing to do).
fn interrupt_summary(outcome: &dbgroups_apply::Outcome, failed: &[&str]) -> String {
    let mut summary = String::new();
    if outcome.interrupted && !failed.is_empty() {
        summary.push_str(" after Ctrl-C");
    }
    if outcome.tools_stopped {
        summary.push_str("; a second Ctrl-C stopped the running tools (the servers run on)");
    }
    if !outcome.unfinished_intents.is_empty() {
        summary.push_str(&format!(
            "; not finished: {}; to finish, run: {}",
            outcome.unfinished_intents.join(", "),
            repeat_command(&outcome.unfinished_intents)
        ));
    }
    summary
}

/// This very command line when it already carries every flag to repeat
/// (it re-plans from the manifest); otherwise `dbgroups apply` and them.
fn repeat_command(flags: &[String]) -> String {
    let given: Vec<String> = std::env::args().skip(1).collect();
    let carries = |flag: &String| {
        let (name, value) = flag.split_once(' ').unwrap_or((flag, ""));
        given.windows(2).any(|w| w[0] == name && w[1] == value)
            || given.contains(&format!("{name}={value}"))
    };
    let quote = |arg: &str| {
        let plain = !arg.is_empty()
            && arg
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "_./=:@%+-,".contains(c));
        if plain {
            arg.to_string()
        } else {
            format!("'{}'", arg.replace('\'', "'\\''"))
        }
    };
    if flags.iter().all(carries) {
        std::iter::once("dbgroups".to_string())
            .chain(given.iter().map(|a| quote(a)))
            .collect::<Vec<_>>()
            .join(" ")
    } else {
        format!("dbgroups apply {}", flags.join(" "))
    }
}

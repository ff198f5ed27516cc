//! The executor loop, modelled on cargo's job queue: a ready set with
//! bounded concurrency; after a failure (or Ctrl-C) nothing new starts, the
//! steps in flight finish (a second Ctrl-C stops their tools), the state is
//! saved, and each error is reported once. State is saved after every step, and secrets are recorded before
//! they are used, so a crash at any point leaves state the next apply can
//! finish from.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use dbgroups_engines::generate_password;
use dbgroups_plan::{ChangeKind, Plan, StepKind};
use dbgroups_state::{
    AppState, Authority, Credentials, GroupState, Journal, LockGuard, PendingServer, Role, Secret,
    ServerState, SourceRef, StateStore, StepStatus,
};
use tokio::task::JoinSet;

use crate::crash::{self, Moment};
use crate::error::ApplyError;
use crate::hosts::HostSet;
use crate::reporter::{Event, Reporter};
use crate::runner::{Effect, StepContext, run_step};

/// Everything an apply needs.
pub struct Apply<'a, S: StateStore> {
    pub plan: &'a Plan,
    /// Identifies the plan in the journal (a hash of its JSON).
    pub plan_id: String,
    pub store: &'a S,
    pub lock: &'a LockGuard,
    /// This application's state, `None` if new.
    pub state: Option<AppState>,
    pub others: BTreeMap<String, AppState>,
    /// Every server's host, connected.
    pub hosts: HostSet,
    pub parallelism: usize,
    pub reporter: &'a dyn Reporter,
    /// Where the environment file is written (mode 0600).
    pub env_file: PathBuf,
}

impl<S: StateStore> std::fmt::Debug for Apply<'_, S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Apply")
            .field("application", &self.plan.application)
            .field("plan_id", &self.plan_id)
            .field("steps", &self.plan.steps.len())
            .field("parallelism", &self.parallelism)
            .finish_non_exhaustive()
    }
}

/// How it went.
#[derive(Debug)]
pub struct Outcome {
    pub completed: Vec<String>,
    /// Step id and the engine's error.
    pub failed: Vec<(String, String)>,
    pub not_started: Vec<String>,
    /// Ctrl-C came during the apply (every step may still have finished:
    /// then the apply succeeded all the same).
    pub interrupted: bool,
    /// A second Ctrl-C stopped the running tools.
    pub tools_stopped: bool,
    /// The intents of unfinished changes that only their flag brings back
    /// (`--resync NAME`, `--remove-server NAME`, `--remove-group TYPE.NAME`):
    /// the next apply needs them again. (A group being created is kept in
    /// the journal and needs nothing.)
    pub unfinished_intents: Vec<String>,
    pub environment_written: bool,
    pub state: AppState,
}

impl Outcome {
    /// Every step ran and finished, whether or not Ctrl-C came after the
    /// last one had started.
    pub fn succeeded(&self) -> bool {
        self.failed.is_empty() && self.not_started.is_empty()
    }
}

fn now() -> String {
    humantime::format_rfc3339_seconds(SystemTime::now()).to_string()
}

pub async fn run<S: StateStore>(apply: Apply<'_, S>) -> Result<Outcome, ApplyError> {
    let plan = apply.plan;
    let new_application = apply.state.is_none();
    let mut state = apply
        .state
        .clone()
        .unwrap_or_else(|| AppState::new(&plan.application));
    let others = Arc::new(apply.others.clone());
    let staging_prefix: String = apply.plan_id.chars().take(12).collect();
    // Disk checks that wait for nothing run before the journal is written:
    // a refusal leaves no server, no journal entry and no state change.
    let checked = match disk_checks_first(&apply, &state, &others, &staging_prefix).await {
        Ok(checked) => checked,
        Err(refused) => return Ok(*refused),
    };
    prepare_secrets(&mut state, plan, &apply.hosts)?;
    begin_journal(&mut state, plan, &apply.plan_id, new_application);
    apply.store.save(apply.lock, &mut state)?;

    // Backups an interrupted apply left are an older plan's: remove them.
    remove_staging(&apply.hosts, "").await;
    let mut done: BTreeSet<String> = checked.clone();
    let mut started: BTreeSet<String> = checked;
    let mut failed: Vec<(String, String)> = Vec::new();
    let mut interrupted = false;
    let mut environment_written = false;
    let mut running: Running = JoinSet::new();
    // One listener for every Ctrl-C: the first stops the scheduling, the
    // second the running tools.
    let mut interrupts = listen_for_interrupts()?;
    let mut progress = tokio::sync::mpsc::unbounded_channel();
    let mut tools_stopped = false;

    loop {
        let scheduling = failed.is_empty() && !interrupted;
        let mut progressed = true;
        while scheduling && progressed {
            progressed = false;
            for step in &plan.steps {
                if started.contains(&step.id) || running.len() >= apply.parallelism.max(1) {
                    continue;
                }
                if !step.depends_on.iter().all(|d| done.contains(d)) {
                    continue;
                }
                started.insert(step.id.clone());
                apply.reporter.report(Event::StepStarted {
                    step: step.id.clone(),
                    description: step.kind.describe(),
                });
                set_journal(&mut state, &step.id, StepStatus::Started);
                apply.store.save(apply.lock, &mut state)?;
                crash::point(Moment::Before, &step.id);
                if matches!(step.kind, StepKind::UpdateEnvironment) {
                    update_environment(&apply, &mut state, &step.id)?;
                    environment_written = true;
                    done.insert(step.id.clone());
                    progressed = true;
                    continue;
                }
                let ctx = step_context(&apply, &staging_prefix, &state, &others);
                spawn_step(&mut running, step.clone(), ctx, progress.0.clone());
                progressed = true;
            }
        }
        if running.is_empty() {
            break;
        }
        tokio::select! {
            joined = running.join_next() => {
                let Some(joined) = joined else { continue };
                let (id, began, result) = match joined {
                    Ok(finished) => finished,
                    Err(panic) => {
                        failed.push(("(a step)".into(), format!("a step panicked: {panic}")));
                        continue;
                    }
                };
                match result {
                    Ok(effect) => {
                        finish_step(&apply, &mut state, &others, (&id, began), effect)?;
                        done.insert(id);
                    }
                    Err(error) => {
                        failed.push((id.clone(), error.to_string()));
                        apply.reporter.report(Event::StepFailed { step: id, error: Arc::new(error) });
                        apply.store.save(apply.lock, &mut state)?;
                    }
                }
            }
            Some((step, message)) = progress.1.recv() => {
                apply.reporter.report(Event::StepProgress { step, message });
            }
            _ = interrupts.recv(), if !tools_stopped => {
                if interrupted {
                    tools_stopped = true;
                    stop_running_tools(apply.reporter);
                } else {
                    interrupted = true;
                    apply.reporter.report(Event::Interrupted);
                }
            }
        }
    }

    conclude(
        &apply,
        state,
        &staging_prefix,
        Progress {
            done,
            started,
            failed,
            interrupted,
            tools_stopped,
            environment_written,
        },
    )
    .await
}

/// Where the scheduling loop ended.
struct Progress {
    done: BTreeSet<String>,
    started: BTreeSet<String>,
    failed: Vec<(String, String)>,
    interrupted: bool,
    tools_stopped: bool,
    environment_written: bool,
}

/// The apply's end: the state finished or left for the next apply, the
/// staging area removed, the outcome.
async fn conclude<S: StateStore>(
    apply: &Apply<'_, S>,
    mut state: AppState,
    staging_prefix: &str,
    progress: Progress,
) -> Result<Outcome, ApplyError> {
    let plan = apply.plan;
    let Progress {
        done,
        started,
        failed,
        interrupted,
        tools_stopped,
        environment_written,
    } = progress;
    let not_started: Vec<String> = plan
        .steps
        .iter()
        .filter(|s| !started.contains(&s.id))
        .map(|s| s.id.clone())
        .collect();
    // A Ctrl-C that came after the last step had started stopped nothing:
    // every step finished, so the apply is complete.
    if failed.is_empty() && not_started.is_empty() {
        finalize(&mut state, plan);
        state.journal = None;
    }
    // Staged backups are full copies of the data, and no later apply uses
    // them (each plan takes its own): gone once this one ends, however.
    remove_staging(&apply.hosts, staging_prefix).await;
    apply.store.save(apply.lock, &mut state)?;
    let unfinished_intents = unfinished_intents(plan, &done);
    Ok(Outcome {
        completed: done.into_iter().collect(),
        failed,
        not_started,
        interrupted,
        tools_stopped,
        unfinished_intents,
        environment_written,
        state,
    })
}

/// What a step may read: this moment's state, copied.
fn step_context<S: StateStore>(
    apply: &Apply<'_, S>,
    staging_prefix: &str,
    state: &AppState,
    others: &Arc<BTreeMap<String, AppState>>,
) -> StepContext {
    StepContext {
        disk_check: apply.plan.disk_check,
        staging_prefix: staging_prefix.to_string(),
        hosts: Arc::new(apply.hosts.clone()),
        state: state.clone(),
        expected: Arc::new(apply.plan.expected_state.clone()),
        others: Arc::clone(others),
    }
}

/// Ctrl-C, heard once for the whole apply.
fn listen_for_interrupts() -> Result<tokio::signal::unix::Signal, ApplyError> {
    tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt()).map_err(|source| {
        ApplyError::from(dbgroups_engines::EngineError::Io {
            action: "listen for",
            path: "Ctrl-C (SIGINT)".into(),
            source,
        })
    })
}

/// What a running step hands back: its id, when it began, and its result.
type Running = JoinSet<(
    String,
    Instant,
    Result<Effect, dbgroups_engines::EngineError>,
)>;

/// Starts a step; what it says of its long waits goes to `progress`.
fn spawn_step(
    running: &mut Running,
    step: dbgroups_plan::Step,
    ctx: StepContext,
    progress: tokio::sync::mpsc::UnboundedSender<(String, String)>,
) {
    let id = step.id.clone();
    let sink: dbgroups_engines::progress::Sink = {
        let id = id.clone();
        Arc::new(move |message| {
            let _ = progress.send((id.clone(), message));
        })
    };
    running.spawn(async move {
        let began = Instant::now();
        let result = dbgroups_engines::progress::scoped(sink, run_step(step, ctx)).await;
        (id, began, result)
    });
}

/// The journal of this apply, carrying over an interrupted one's intent
/// (this one finishes it).
fn begin_journal(state: &mut AppState, plan: &Plan, plan_id: &str, new_application: bool) {
    let previous = state.journal.take();
    let mut creating = previous
        .as_ref()
        .map(|j| j.creating.clone())
        .unwrap_or_default();
    creating.extend(plan.changes.iter().filter_map(|c| match &c.kind {
        ChangeKind::CreateGroup { group, .. } => Some(group.to_string()),
        _ => None,
    }));
    state.journal = Some(Journal {
        plan_id: plan_id.to_string(),
        started_at: now(),
        steps: BTreeMap::new(),
        new_application: new_application || previous.as_ref().is_some_and(|j| j.new_application),
        creating,
        pending: previous.map(|j| j.pending).unwrap_or_default(),
    });
}

/// The env update: written by the executor, which owns the state it is
/// made from, once every other step is done.
fn update_environment<S: StateStore>(
    apply: &Apply<'_, S>,
    state: &mut AppState,
    id: &str,
) -> Result<(), ApplyError> {
    let began = Instant::now();
    finalize(state, apply.plan);
    write_environment(&apply.env_file, state)?;
    crash::point(Moment::After, id);
    set_journal(state, id, StepStatus::Done);
    apply.store.save(apply.lock, state)?;
    apply.reporter.report(Event::StepFinished {
        step: id.to_string(),
        seconds: began.elapsed().as_secs_f64(),
    });
    Ok(())
}

/// A step that finished: what it learnt is recorded and saved before it
/// counts as done.
fn finish_step<S: StateStore>(
    apply: &Apply<'_, S>,
    state: &mut AppState,
    others: &BTreeMap<String, AppState>,
    (id, began): (&str, Instant),
    effect: Effect,
) -> Result<(), ApplyError> {
    crash::point(Moment::After, id);
    record(state, apply.plan, others, effect);
    set_journal(state, id, StepStatus::Done);
    apply.store.save(apply.lock, state)?;
    apply.reporter.report(Event::StepFinished {
        step: id.to_string(),
        seconds: began.elapsed().as_secs_f64(),
    });
    Ok(())
}

/// A second Ctrl-C: the running data tools stop; the servers run on.
fn stop_running_tools(reporter: &dyn Reporter) {
    let stopped = dbgroups_engines::interrupt::stop_running_tools();
    reporter.report(Event::Note(format!(
        "second Ctrl-C: stopped {stopped} running tool{} (backups, dumps, restores, copies) by {} process group; the database servers keep running, and the steps in flight fail",
        if stopped == 1 { "" } else { "s" },
        if stopped == 1 { "its" } else { "their" },
    )));
}

/// Runs the plan's disk checks that depend on no other step, in order,
/// before anything is written. Returns their ids, or on a refusal the
/// outcome to return: the state untouched, every other step not started.
async fn disk_checks_first<S: StateStore>(
    apply: &Apply<'_, S>,
    state: &AppState,
    others: &Arc<BTreeMap<String, AppState>>,
    staging_prefix: &str,
) -> Result<BTreeSet<String>, Box<Outcome>> {
    let mut checked = BTreeSet::new();
    let first = apply
        .plan
        .steps
        .iter()
        .filter(|s| matches!(s.kind, StepKind::DiskCheck { .. }) && s.depends_on.is_empty());
    for step in first {
        apply.reporter.report(Event::StepStarted {
            step: step.id.clone(),
            description: step.kind.describe(),
        });
        let ctx = step_context(apply, staging_prefix, state, others);
        let began = Instant::now();
        // The crash matrix kills at every step's boundaries, these included.
        crash::point(Moment::Before, &step.id);
        let result = run_step(step.clone(), ctx).await;
        if result.is_ok() {
            crash::point(Moment::After, &step.id);
        }
        match result {
            Ok(_) => {
                apply.reporter.report(Event::StepFinished {
                    step: step.id.clone(),
                    seconds: began.elapsed().as_secs_f64(),
                });
                checked.insert(step.id.clone());
            }
            Err(error) => {
                let text = error.to_string();
                apply.reporter.report(Event::StepFailed {
                    step: step.id.clone(),
                    error: Arc::new(error),
                });
                let not_started = apply
                    .plan
                    .steps
                    .iter()
                    .filter(|s| s.id != step.id && !checked.contains(&s.id))
                    .map(|s| s.id.clone())
                    .collect();
                return Err(Box::new(Outcome {
                    completed: checked.into_iter().collect(),
                    failed: vec![(step.id.clone(), text)],
                    not_started,
                    interrupted: false,
                    tools_stopped: false,
                    // A refused disk check built nothing: the intents stand
                    // and the same command does them once there is room.
                    unfinished_intents: Vec::new(),
                    environment_written: false,
                    state: state.clone(),
                }));
            }
        }
    }
    Ok(checked)
}

/// The flags of the changes that came from an intent and did not finish.
fn unfinished_intents(plan: &Plan, done: &BTreeSet<String>) -> Vec<String> {
    plan.changes
        .iter()
        .filter(|change| {
            plan.steps
                .iter()
                .any(|step| step.change == change.id && !done.contains(&step.id))
        })
        .filter_map(|change| match &change.kind {
            ChangeKind::Resync { server, .. } => Some(format!("--resync {server}")),
            ChangeKind::RemoveServer { server, .. } => Some(format!("--remove-server {server}")),
            ChangeKind::RemoveGroup { group, .. } => Some(format!("--remove-group {group}")),
            _ => None,
        })
        .collect()
}

fn set_journal(state: &mut AppState, step: &str, status: StepStatus) {
    if let Some(journal) = &mut state.journal {
        journal.steps.insert(step.to_string(), status);
    }
}

/// Every secret the plan's steps need, made and recorded before the first
/// of them runs.
fn prepare_secrets(state: &mut AppState, plan: &Plan, hosts: &HostSet) -> Result<(), ApplyError> {
    prepare_credentials(state, plan);
    prepare_authority(state, plan, hosts)
}

/// The application's certificate authority, made before the first server
/// on a host that others reach over the network is provisioned (its
/// certificate is signed by it), and saved with the journal: a crash after
/// it never makes a second one.
fn prepare_authority(state: &mut AppState, plan: &Plan, hosts: &HostSet) -> Result<(), ApplyError> {
    if state.authority.is_some() {
        return Ok(());
    }
    let on_network = plan.steps.iter().any(|step| match &step.kind {
        StepKind::Provision { server, .. } => hosts.of(server).reached_over_network(),
        _ => false,
    });
    if !on_network {
        return Ok(());
    }
    let made = dbgroups_tls::create_authority(&state.application, SystemTime::now())
        .map_err(|error| ApplyError::Authority(error.to_string()))?;
    state.authority = Some(Authority {
        certificate: made.certificate_pem,
        key: Secret::new(made.key_pem),
        expires: made.expires,
    });
    Ok(())
}

/// New groups get their passwords before anything uses them, so a crash
/// between initdb and the next save cannot lose the superuser's password.
fn prepare_credentials(state: &mut AppState, plan: &Plan) {
    for change in &plan.changes {
        let ChangeKind::CreateGroup { group, .. } = &change.kind else {
            continue;
        };
        let key = group.to_string();
        if state.credentials.contains_key(&key) {
            continue;
        }
        let (username, database) = plan
            .expected_state
            .credentials
            .get(&key)
            .map(|c| (c.username.clone(), c.database.clone()))
            .unwrap_or_else(|| {
                dbgroups_plan::env::default_account(group.db_type, &state.application)
            });
        let auth_database = dbgroups_plan::env::account_home(group.db_type);
        state.credentials.insert(
            key,
            Credentials {
                username,
                password: Some(Secret::new(generate_password())),
                database,
                admin_password: Some(Secret::new(generate_password())),
                replication_password: Some(Secret::new(generate_password())),
                auth_database,
            },
        );
    }
}

fn group_of_server<'s>(state: &'s mut AppState, server: &str) -> Option<&'s mut GroupState> {
    state
        .groups
        .iter_mut()
        .find(|g| g.servers.iter().any(|s| s.unique_name == server))
}

/// Records what a step learnt: a dispatcher, each effect in its own
/// function. It reads the effect as the step reported it and never
/// interprets it again with an engine's rules.
fn record(state: &mut AppState, plan: &Plan, others: &BTreeMap<String, AppState>, effect: Effect) {
    match effect {
        Effect::Provisioned {
            group,
            server,
            master,
            port,
            certificate_expires,
            provider,
            address,
        } => record_provisioned(
            state,
            plan,
            group,
            server,
            master,
            (port, provider, address, certificate_expires),
        ),
        Effect::Allowed { group, networks } => {
            if let Some(recorded) = state.group_mut(group.db_type, &group.name) {
                recorded.allow_from = networks;
            }
        }
        Effect::Certified { server, expires } => {
            let renewed = state
                .groups
                .iter_mut()
                .flat_map(|g| g.servers.iter_mut())
                .find(|s| s.unique_name == server);
            if let Some(renewed) = renewed {
                renewed.certificate_expires = Some(expires);
            }
        }
        Effect::Restored {
            server,
            source,
            accounts_copied,
            database,
        } => record_restored(state, others, server, source, accounts_copied, database),
        Effect::Enslaved {
            server,
            application,
            master,
            moved_to,
        } => record_enslaved(state, plan, server, (application, master), moved_to),
        Effect::Detached { server } => record_detached(state, &server),
        Effect::Removed { server } => record_removed(state, &server),
        Effect::Nothing => {}
    }
}

/// A new server: a member once provisioned if it is a master, pending
/// until it follows if it is a slave.
fn record_provisioned(
    state: &mut AppState,
    plan: &Plan,
    group: dbgroups_plan::GroupAddress,
    server: String,
    master: bool,
    (port, provider, address, certificate_expires): (
        u16,
        dbgroups_manifest::ProviderKind,
        String,
        Option<u64>,
    ),
) {
    // What the plan expects of the server's place (the ssh settings that
    // reach its host) is kept, for every later apply to reach it again.
    let provider_data = plan
        .expected_state
        .server(&server)
        .map(|(_, expected)| expected.provider_data.clone())
        .unwrap_or_default();
    let entry = ServerState {
        unique_name: server.clone(),
        role: if master { Role::Master } else { Role::Slave },
        provider,
        address: Some(address),
        port: Some(port),
        provider_data,
        certificate_expires,
    };
    if !master {
        // A slave is a member once it follows its master; until then
        // a re-plan must still see it as missing.
        if let Some(journal) = &mut state.journal {
            journal.pending.insert(
                server,
                PendingServer {
                    group: group.to_string(),
                    server: entry,
                },
            );
        }
        return;
    }
    if state.group(group.db_type, &group.name).is_none() {
        let template = plan.expected_state.group(group.db_type, &group.name);
        state.groups.push(GroupState {
            db_type: group.db_type,
            name: group.name.clone(),
            engine: template.map_or(group.db_type.default_engine(), |g| g.engine),
            version: template.map(|g| g.version.clone()).unwrap_or_default(),
            primary: false,
            managed_backups: template.is_some_and(|g| g.managed_backups),
            replicate_from: None,
            imported_from: None,
            servers: Vec::new(),
            allow_from: template.map(|g| g.allow_from.clone()).unwrap_or_default(),
        });
    }
    let Some(recorded) = state.group_mut(group.db_type, &group.name) else {
        return;
    };
    recorded.servers.retain(|s| s.unique_name != server);
    recorded.servers.insert(0, entry);
}

/// A copy of another group's data: the group takes the source's accounts
/// or database name when the copy carried them.
fn record_restored(
    state: &mut AppState,
    others: &BTreeMap<String, AppState>,
    server: String,
    (application, source_group): (String, dbgroups_plan::GroupAddress),
    accounts_copied: bool,
    database: Option<String>,
) {
    // A copy that carries the source's accounts (PostgreSQL's data
    // files hold its roles and passwords) makes a group seeded from
    // another group take its credentials.
    let own_application = state.application.clone();
    let Some(group) = group_of_server(state, &server) else {
        return;
    };
    let own = group.address();
    let is_master = group.master().is_some_and(|m| m.unique_name == server);
    let from_elsewhere = application != own_application || source_group.to_string() != own;
    // A copy that keeps the source's database name (the MySQL
    // family's, MongoDB's) keeps the destination's accounts; the
    // group's variables then name that database.
    if let Some(database) = database.filter(|_| is_master && from_elsewhere)
        && let Some(credentials) = state.credentials.get_mut(&own)
    {
        credentials.database = database;
        return;
    }
    // Otherwise (a logical import) the destination keeps its own.
    if accounts_copied && is_master && from_elsewhere {
        let source_state = if application == own_application {
            Some(&*state)
        } else {
            others.get(&application)
        };
        if let Some(credentials) = source_state
            .and_then(|s| s.credentials.get(&source_group.to_string()))
            .cloned()
        {
            state.credentials.insert(own, credentials);
        }
    }
}

/// A replica follows: a pending slave becomes a member; a group's master
/// following another group records where its group replicates from.
fn record_enslaved(
    state: &mut AppState,
    plan: &Plan,
    server: String,
    (application, master): (String, String),
    moved_to: Option<u16>,
) {
    let pending = state
        .journal
        .as_mut()
        .and_then(|j| j.pending.remove(&server));
    if let Some(mut pending) = pending {
        if let Some(port) = moved_to {
            pending.server.port = Some(port);
        }
        if let Some(group) = state
            .groups
            .iter_mut()
            .find(|g| g.address() == pending.group)
        {
            group.servers.retain(|s| s.unique_name != server);
            group.servers.push(pending.server);
        }
        return;
    }
    let own_application = state.application.clone();
    let Some(group) = group_of_server(state, &server) else {
        return;
    };
    let is_master = group.master().is_some_and(|m| m.unique_name == server);
    let same_group =
        application == own_application && group.servers.iter().any(|s| s.unique_name == master);
    if is_master && !same_group {
        let source_group = plan
            .expected_state
            .groups
            .iter()
            .find(|g| g.name == group.name && g.db_type == group.db_type)
            .and_then(|g| g.replicate_from.clone());
        group.replicate_from = source_group.or(Some(SourceRef {
            application,
            group: master,
        }));
    }
}

fn record_detached(state: &mut AppState, server: &str) {
    if let Some(group) = group_of_server(state, server)
        && group.master().is_some_and(|m| m.unique_name == server)
    {
        group.replicate_from = None;
    }
}

/// A removed server leaves its group; a group left empty goes, with its
/// credentials.
fn record_removed(state: &mut AppState, server: &str) {
    if let Some(group) = group_of_server(state, server) {
        group.servers.retain(|s| s.unique_name != server);
    }
    if let Some(journal) = &mut state.journal {
        journal.pending.remove(server);
    }
    let emptied: Vec<String> = state
        .groups
        .iter()
        .filter(|g| g.servers.is_empty())
        .map(GroupState::address)
        .collect();
    state.groups.retain(|g| !g.servers.is_empty());
    for address in emptied {
        state.credentials.remove(&address);
    }
}

/// Once the work is done, the recorded groups take the attributes the plan
/// decided (primary, managed backups, replication, import).
fn finalize(state: &mut AppState, plan: &Plan) {
    for group in &mut state.groups {
        if let Some(expected) = plan.expected_state.group(group.db_type, &group.name) {
            group.primary = expected.primary;
            group.managed_backups = expected.managed_backups;
            group.replicate_from = expected.replicate_from.clone();
            group.imported_from = expected.imported_from.clone();
        }
    }
}

/// The environment file holds every password: written the way the state
/// file is (temporary file, fsync, rename, directory fsync; mode 0600), so a
/// crash leaves the old file or the new one.
fn write_environment(path: &std::path::Path, state: &mut AppState) -> Result<(), ApplyError> {
    let variables = dbgroups_plan::env::variables(state);
    dbgroups_state::write_private_file(path, dbgroups_plan::env::dotenv(&variables).as_bytes())
        .map_err(|source| ApplyError::EnvironmentFile {
            path: path.display().to_string(),
            source: Box::new(source),
        })?;
    state.environment = variables;
    Ok(())
}

/// Removes the staging entries starting with `prefix` (all of them for an
/// empty one) on every host: backups are staged on the hosts that receive
/// them.
async fn remove_staging(hosts: &HostSet, prefix: &str) {
    for host in hosts.distinct() {
        host.remove_staged(prefix).await;
    }
}

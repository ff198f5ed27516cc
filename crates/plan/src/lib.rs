//! The planner: from a manifest, the recorded state, observed facts and the
//! user's intents, a plan a reviewer can trust.
//!
//! [`plan`] takes a [`PlanInput`] and returns a [`Plan`]: the typed
//! [`Change`]s (each with its reason and whether it is destructive), the
//! ordered DAG of [`Step`]s that carries them out, the environment
//! variables before and after (secrets masked), the expected state, and a
//! must-use [`Report`] of blocked changes and warnings. Every plan passes
//! [`lint`] (its warnings join the report's). [`render`] turns a plan into
//! text, JSON, Markdown, DOT or Mermaid.
//!
//! Invariant: this crate does no I/O, has no async runtime and reads no
//! clock or randomness. The same inputs give the same plan, byte for byte.

pub mod backup;
pub mod backup_source;
mod change;
mod dag;
mod diff;
pub mod env;
mod error;
mod expected;
mod input;
pub mod lint;
pub mod planfile;
pub mod render;
pub mod rules;

use std::collections::BTreeMap;

pub use backup::{BackupRef, BackupSource, host_of};
pub use change::{
    Action, Blocked, Change, ChangeKind, CopyFrom, ManagedSeed, Report, Seed, age_text,
};
pub use dag::{Step, StepKind};
pub use error::PlanError;
pub use expected::{NEW_LINEAGE, declared_servers};
pub use input::{
    DEFAULT_MAX_LAG_SECONDS, DEFAULT_MIN_FREE_BYTES, GroupAddress, HostFacts, HostOs, Intents,
    ObservedFacts, PackageFacts, PlanInput, ReplicationHealth, ServerHealth,
};

use dbgroups_state::AppState;
use serde::Serialize;

/// The state a plan was made against, so apply can refuse a plan whose
/// state moved.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct BaseState {
    pub lineage: String,
    pub serial: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct Plan {
    pub application: String,
    /// `None` for an application with no recorded state.
    pub base: Option<BaseState>,
    pub changes: Vec<Change>,
    /// In execution order; each lists the steps it depends on.
    pub steps: Vec<Step>,
    pub report: Report,
    /// Masked variables, before and after.
    pub environment_before: BTreeMap<String, String>,
    pub environment_after: BTreeMap<String, String>,
    /// The state after apply, secrets masked, placeholders where apply
    /// learns the value.
    pub expected_state: AppState,
    /// Whether backups and restores check free space first (on unless
    /// `--skip-disk-check`).
    #[serde(default = "default_true")]
    pub disk_check: bool,
}

fn default_true() -> bool {
    true
}

impl Plan {
    pub fn has_changes(&self) -> bool {
        !self.changes.is_empty()
    }

    pub fn destructive_changes(&self) -> impl Iterator<Item = &Change> {
        self.changes.iter().filter(|c| c.destructive)
    }

    /// `-`/`+` lines of the environment that changes.
    pub fn environment_diff(&self) -> Vec<String> {
        env::diff_lines(&self.environment_before, &self.environment_after)
    }
}

/// Plans. Pure: the same input gives the same plan.
pub fn plan(input: &PlanInput<'_>) -> Result<Plan, PlanError> {
    let (plan, _) = plan_with_expected_state(input)?;
    Ok(plan)
}

/// Like [`plan`], also returning the expected state with its secrets (for
/// apply and for convergence tests; never for display).
pub fn plan_with_expected_state(input: &PlanInput<'_>) -> Result<(Plan, AppState), PlanError> {
    // The engines' rules may add servers (an odd MongoDB member count); from
    // here on the plan is made against the completed manifest.
    let (completed, implied) = rules::complete_manifest(input.manifest);
    let input = &PlanInput {
        manifest: &completed,
        ..*input
    };
    let diff = diff::diff(input, &implied)?;
    let application = input.state.map_or_else(
        || {
            input
                .manifest
                .application
                .as_ref()
                .map(|a| a.value.clone())
                .unwrap_or_default()
        },
        |s| s.application.clone(),
    );
    let mut kinds: Vec<(ChangeKind, String)> = diff.changes;
    let expected = expected::expected_state(
        input.manifest,
        &application,
        input.state,
        input.other_applications,
        &kinds.iter().map(|(k, _)| k.clone()).collect::<Vec<_>>(),
        &diff.primaries,
    );
    let recorded_env = input
        .state
        .map(|s| unopened_as_expected(&s.environment, &expected.environment))
        .unwrap_or_default();
    let env_differs = expected.environment != recorded_env;
    if env_differs && kinds.is_empty() {
        kinds.push((
            ChangeKind::UpdateEnvironment,
            "the recorded environment file differs from the servers' variables".to_string(),
        ));
    }
    let changes: Vec<Change> = kinds
        .into_iter()
        .enumerate()
        .map(|(index, (kind, reason))| Change {
            id: format!("change-{}", index + 1),
            destructive: kind.data_warning().is_some(),
            kind,
            reason,
        })
        .collect();
    let recorded_versions = input
        .state
        .map(|s| {
            s.groups
                .iter()
                .map(|g| {
                    (
                        GroupAddress::new(g.db_type, g.name.clone()),
                        (g.engine, g.version.clone()),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    let env_change = env_differs.then(|| env_change_for(&changes)).flatten();
    let upstreams = input.state.map(recorded_upstreams).unwrap_or_default();
    let servers = backup::Servers::of(
        std::iter::once(&expected)
            .chain(input.state)
            .chain(input.other_applications.values()),
    );
    let mut steps = dag::build(
        &application,
        &changes,
        &recorded_versions,
        &upstreams,
        env_change,
        !input.intents.skip_disk_check,
        &servers,
    );
    let non_voting = rules::non_voting_members(input.manifest);
    for step in &mut steps {
        if let StepKind::Enslave {
            server,
            non_voting: quiet,
            ..
        } = &mut step.kind
        {
            *quiet = non_voting.contains(server.as_str());
        }
    }
    let environment_before = env::masked(&recorded_env, None);
    let environment_after = env::masked(&expected.environment, Some(&recorded_env));
    let mut plan = Plan {
        application,
        base: input.state.map(|s| BaseState {
            lineage: s.lineage.clone(),
            serial: s.serial,
        }),
        changes,
        steps,
        report: diff.report,
        environment_before,
        environment_after,
        expected_state: expected.redacted(),
        disk_check: !input.intents.skip_disk_check,
    };
    // A plan that breaks its own rules is a planner bug: no plan.
    let notes = lint::lint(&plan);
    lint::errors(&notes).map_err(PlanError::Lint)?;
    plan.report
        .warnings
        .extend(notes.iter().map(|n| format!("plan check: {n}")));
    Ok((plan, expected))
}

/// The change the environment update is credited to: the first one that
/// moves addresses or the primary, else the first change.
fn env_change_for(changes: &[Change]) -> Option<&Change> {
    changes
        .iter()
        .find(|c| {
            !matches!(
                c.kind,
                ChangeKind::StartServer { .. }
                    | ChangeKind::SetManagedBackups { .. }
                    | ChangeKind::SetAllowFrom { .. }
                    | ChangeKind::RenewCertificate { .. }
            )
        })
        .or_else(|| changes.first())
}

/// Each recorded group master that follows another group of its own
/// application, and the master it follows. A plan removing both must stop
/// the follower first: its removal drops its replication (a PostgreSQL
/// slot on the upstream), which fails once the upstream is shutting down.
fn recorded_upstreams(state: &AppState) -> BTreeMap<String, String> {
    state
        .groups
        .iter()
        .filter_map(|group| {
            let source = group.replicate_from.as_ref()?;
            if source.application != state.application {
                return None;
            }
            let upstream = state.group(group.db_type, &source.group)?.master()?;
            Some((
                group.master()?.unique_name.clone(),
                upstream.unique_name.clone(),
            ))
        })
        .collect()
}

/// The recorded variables, with each secret value that was read without
/// the passphrase (still sealed, so unknown) taken as the one expected: a
/// plan made offline without the passphrase (`plan --refresh=false`)
/// compares what it can read and does not invent a change of the rest.
fn unopened_as_expected(
    recorded: &std::collections::BTreeMap<String, String>,
    expected: &std::collections::BTreeMap<String, String>,
) -> std::collections::BTreeMap<String, String> {
    recorded
        .iter()
        .map(|(name, value)| {
            let value = match expected.get(name) {
                Some(known) if value.starts_with(dbgroups_state::SEALED_VARIABLE_PREFIX) => {
                    known.clone()
                }
                _ => value.clone(),
            };
            (name.clone(), value)
        })
        .collect()
}

//! The plan linter (after omicron's blippy): a pure function that checks a
//! plan's invariants and returns notes, each with a severity, a stable code,
//! the steps it concerns and a message.
//!
//! It runs after planning (a plan with an error note is a planner bug, and
//! no plan is returned) and after a plan file is loaded (a plan file with an
//! error note is refused). The planner's property tests call it too, so the
//! invariants have one implementation.

use std::collections::{BTreeMap, BTreeSet};

use crate::backup::{BackupRef, Servers};
use crate::{Plan, Step, StepKind};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    /// The plan must not run.
    Error,
    /// The plan may run, but something in it is suspicious.
    Warning,
}

/// What a note is about; the code is stable (tests and users match on it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum LintCode {
    /// Two steps have the same id.
    DuplicateStep,
    /// A step depends on a step the plan does not have.
    UnknownDependency,
    /// The dependencies form a cycle.
    Cycle,
    /// A step depends on a step listed after it (steps are in execution
    /// order).
    DependencyOrder,
    /// A restore (or the enslave after it) whose backup is not a backup
    /// step among its ancestors.
    RestoreWithoutBackup,
    /// A reference to a backup (a restore's, an enslave's, a disk check's)
    /// that names another source, method, host or location than the step
    /// that takes it, or a backup the plan does not take.
    BackupMismatch,
    /// More than one environment update.
    EnvTwice,
    /// The environment update does not follow every other step.
    EnvNotLast,
    /// Two steps writing one server with no order between them.
    ConcurrentWrite,
    /// A step reading a server (a backup, a disk check) with no order to a
    /// step writing it: the read may see the data mid-change.
    ReadDuringWrite,
    /// A step on a server that is provisioned in the plan comes before its
    /// provision.
    BeforeProvision,
    /// A step on a server that is removed in the plan comes after its
    /// removal.
    AfterRemove,
    /// A disk check does not come before a step that builds what it guards.
    DiskCheckAfter,
    /// A logical dump is taken over (moved) by a restore.
    DumpTaken,
    /// A backup of data files is taken over by more than one restore.
    SeveralTakers,
    /// A backup is taken over before another of its readers has copied it.
    TakenTooEarly,
    /// A backup is taken over (renamed into place) by a restore on another
    /// host than the one it lands on.
    TakenFromAnotherHost,
    /// A restore reads a backup that lands on another host than its
    /// server's: the data would have to cross through somebody (backups
    /// are taken on the host that receives them).
    RestoredFromAnotherHost,
    /// A backup of data files read by several restores is taken over by
    /// none: safe, but each restore copies it.
    BackupNotTaken,
}

impl LintCode {
    pub fn as_str(self) -> &'static str {
        match self {
            LintCode::DuplicateStep => "duplicate-step",
            LintCode::UnknownDependency => "unknown-dependency",
            LintCode::Cycle => "cycle",
            LintCode::DependencyOrder => "dependency-order",
            LintCode::RestoreWithoutBackup => "restore-without-backup",
            LintCode::BackupMismatch => "backup-mismatch",
            LintCode::EnvTwice => "env-twice",
            LintCode::EnvNotLast => "env-not-last",
            LintCode::ConcurrentWrite => "concurrent-write",
            LintCode::ReadDuringWrite => "read-during-write",
            LintCode::BeforeProvision => "before-provision",
            LintCode::AfterRemove => "after-remove",
            LintCode::DiskCheckAfter => "disk-check-after",
            LintCode::DumpTaken => "dump-taken",
            LintCode::SeveralTakers => "several-takers",
            LintCode::TakenTooEarly => "taken-too-early",
            LintCode::TakenFromAnotherHost => "taken-from-another-host",
            LintCode::RestoredFromAnotherHost => "restored-from-another-host",
            LintCode::BackupNotTaken => "backup-not-taken",
        }
    }

    pub fn severity(self) -> Severity {
        match self {
            LintCode::BackupNotTaken | LintCode::ReadDuringWrite => Severity::Warning,
            _ => Severity::Error,
        }
    }
}

impl std::fmt::Display for LintCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LintNote {
    pub severity: Severity,
    pub code: LintCode,
    /// The ids of the steps it concerns.
    pub steps: Vec<String>,
    pub message: String,
}

impl std::fmt::Display for LintNote {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "[{}] {}", self.code, self.message)
    }
}

impl LintNote {
    fn new(code: LintCode, steps: &[&str], message: String) -> Self {
        Self {
            severity: code.severity(),
            code,
            steps: steps.iter().map(|s| s.to_string()).collect(),
            message,
        }
    }
}

/// The notes with error severity, as one error (the first named, and how
/// many there are).
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
#[error("{first}{}", if *more > 0 { format!(" (and {more} more)") } else { String::new() })]
pub struct LintError {
    pub first: LintNote,
    pub more: usize,
    pub notes: Vec<LintNote>,
}

/// `Err` when any note is an error.
pub fn errors(notes: &[LintNote]) -> Result<(), LintError> {
    let errors: Vec<LintNote> = notes
        .iter()
        .filter(|n| n.severity == Severity::Error)
        .cloned()
        .collect();
    match errors.first() {
        None => Ok(()),
        Some(first) => Err(LintError {
            first: first.clone(),
            more: errors.len() - 1,
            notes: errors,
        }),
    }
}

/// Checks a plan's invariants. Pure; the notes come in the order of the
/// checks, then of the steps.
pub fn lint(plan: &Plan) -> Vec<LintNote> {
    let mut notes = Vec::new();
    let graph = Graph::new(&plan.steps, &mut notes);
    if graph.cyclic {
        // Ancestors mean nothing in a cycle; the cycle is the note.
        return notes;
    }
    check_order(&plan.steps, &graph, &mut notes);
    check_restores(&plan.steps, &graph, &mut notes);
    check_backup_refs(&plan.steps, &graph, &mut notes);
    check_env(&plan.steps, &graph, &mut notes);
    check_servers(&plan.steps, &graph, &mut notes);
    check_disk_checks(&plan.steps, &graph, &mut notes);
    let servers = Servers::of([&plan.expected_state]);
    check_hand_over(&plan.steps, &graph, &servers, &mut notes);
    notes
}

/// The steps by id (the first of a duplicated id) and each step's
/// ancestors.
struct Graph<'p> {
    index: BTreeMap<&'p str, usize>,
    /// Per step (by position), the positions of its known dependencies.
    deps: Vec<Vec<usize>>,
    /// Per step, the positions of all its ancestors (not meaningful in a
    /// cycle, where no other check runs).
    ancestors: Vec<BTreeSet<usize>>,
    cyclic: bool,
}

impl<'p> Graph<'p> {
    fn new(steps: &'p [Step], notes: &mut Vec<LintNote>) -> Self {
        let mut index = BTreeMap::new();
        for (position, step) in steps.iter().enumerate() {
            if index.insert(step.id.as_str(), position).is_some() {
                notes.push(LintNote::new(
                    LintCode::DuplicateStep,
                    &[&step.id],
                    format!("two steps have the id {}", step.id),
                ));
                index.insert(step.id.as_str(), index[step.id.as_str()].min(position));
            }
        }
        let mut deps = Vec::with_capacity(steps.len());
        for step in steps {
            let mut known = Vec::new();
            for dep in &step.depends_on {
                match index.get(dep.as_str()) {
                    Some(&d) => known.push(d),
                    None => notes.push(LintNote::new(
                        LintCode::UnknownDependency,
                        &[&step.id, dep],
                        format!("{} depends on {dep}, which is not in the plan", step.id),
                    )),
                }
            }
            deps.push(known);
        }
        // Kahn's algorithm: what is left over is on or behind a cycle.
        let mut waiting: Vec<usize> = deps.iter().map(Vec::len).collect();
        let mut dependents: Vec<Vec<usize>> = vec![Vec::new(); steps.len()];
        for (position, ds) in deps.iter().enumerate() {
            for &d in ds {
                dependents[d].push(position);
            }
        }
        let mut ready: Vec<usize> = (0..steps.len()).filter(|&p| waiting[p] == 0).collect();
        let mut topological = Vec::with_capacity(steps.len());
        while let Some(next) = ready.pop() {
            topological.push(next);
            for &dependent in &dependents[next] {
                waiting[dependent] -= 1;
                if waiting[dependent] == 0 {
                    ready.push(dependent);
                }
            }
        }
        let cyclic = topological.len() < steps.len();
        if cyclic {
            let left: Vec<&str> = (0..steps.len())
                .filter(|&p| waiting[p] > 0)
                .map(|p| steps[p].id.as_str())
                .collect();
            notes.push(LintNote::new(
                LintCode::Cycle,
                &left,
                format!("the dependencies form a cycle through {}", left.join(", ")),
            ));
        }
        let mut ancestors = vec![BTreeSet::new(); steps.len()];
        for &position in &topological {
            let mut all = BTreeSet::new();
            for &d in &deps[position] {
                all.insert(d);
                all.extend(ancestors[d].iter().copied());
            }
            ancestors[position] = all;
        }
        Self {
            index,
            deps,
            ancestors,
            cyclic,
        }
    }

    fn before(&self, earlier: usize, later: usize) -> bool {
        self.ancestors[later].contains(&earlier)
    }

    fn ordered(&self, a: usize, b: usize) -> bool {
        self.before(a, b) || self.before(b, a)
    }
}

/// Steps come in execution order: every dependency is listed earlier.
fn check_order(steps: &[Step], graph: &Graph<'_>, notes: &mut Vec<LintNote>) {
    for (position, step) in steps.iter().enumerate() {
        for &d in &graph.deps[position] {
            if d >= position {
                notes.push(LintNote::new(
                    LintCode::DependencyOrder,
                    &[&step.id, &steps[d].id],
                    format!(
                        "{} depends on {}, which is listed after it",
                        step.id, steps[d].id
                    ),
                ));
            }
        }
    }
}

/// Restores, and the enslaves that read the dump restored before them,
/// depend on the backup step they name.
fn check_restores(steps: &[Step], graph: &Graph<'_>, notes: &mut Vec<LintNote>) {
    for (position, step) in steps.iter().enumerate() {
        let (backup, verb) = match &step.kind {
            StepKind::Restore { backup, .. } => (backup, "restores"),
            StepKind::Enslave {
                from_backup: Some(backup),
                ..
            } => (backup, "reads"),
            _ => continue,
        };
        let found = graph.index.get(backup.step.as_str()).copied().filter(|&b| {
            matches!(steps[b].kind, StepKind::Backup { .. }) && graph.before(b, position)
        });
        if found.is_none() {
            notes.push(LintNote::new(
                LintCode::RestoreWithoutBackup,
                &[&step.id, &backup.step],
                format!(
                    "{} {verb} {}, which is not a backup it depends on",
                    step.id, backup.step
                ),
            ));
        }
    }
}

/// Every reference to a backup names what its backup step takes: the same
/// source, method, host and location; a staged disk check names its
/// backup, and only a staged one does.
fn check_backup_refs(steps: &[Step], graph: &Graph<'_>, notes: &mut Vec<LintNote>) {
    for step in steps {
        let backup = match &step.kind {
            StepKind::Restore { backup, .. }
            | StepKind::Enslave {
                from_backup: Some(backup),
                ..
            } => backup,
            StepKind::DiskCheck {
                staged,
                backup,
                server,
                method,
                ..
            } => match backup {
                Some(backup) if *staged => {
                    if backup.source.server != *server || backup.method != *method {
                        notes.push(LintNote::new(
                            LintCode::BackupMismatch,
                            &[&step.id, &backup.step],
                            format!(
                                "{} checks room for {}, a backup of another server or kind than it measures",
                                step.id, backup.step
                            ),
                        ));
                    }
                    backup
                }
                None if !*staged => continue,
                _ => {
                    notes.push(LintNote::new(
                        LintCode::BackupMismatch,
                        &[&step.id],
                        format!(
                            "{} {}",
                            step.id,
                            if *staged {
                                "stages a backup but names none"
                            } else {
                                "names a backup but stages none"
                            }
                        ),
                    ));
                    continue;
                }
            },
            _ => continue,
        };
        let taken = graph
            .index
            .get(backup.step.as_str())
            .map(|&b| &steps[b].kind);
        let Some(StepKind::Backup {
            group,
            server,
            method,
            host,
            location,
            ..
        }) = taken
        else {
            // A restore's missing backup is `RestoreWithoutBackup`'s.
            if matches!(step.kind, StepKind::DiskCheck { .. }) {
                notes.push(LintNote::new(
                    LintCode::BackupMismatch,
                    &[&step.id, &backup.step],
                    format!(
                        "{} checks room for {}, which the plan does not take",
                        step.id, backup.step
                    ),
                ));
            }
            continue;
        };
        let agrees = |backup: &BackupRef| {
            backup.source.group == *group
                && backup.source.server == *server
                && backup.method == *method
                && backup.host == *host
                && backup.location == *location
        };
        if !agrees(backup) {
            notes.push(LintNote::new(
                LintCode::BackupMismatch,
                &[&step.id, &backup.step],
                format!(
                    "{} names {} as a backup of {} ({}) by {:?} at {} on {}, but that step takes a backup of {server} ({group}) by {method:?} at {location} on {host}",
                    step.id,
                    backup.step,
                    backup.source.server,
                    backup.source.group,
                    backup.method,
                    backup.location,
                    backup.host
                ),
            ));
        }
    }
}

/// The environment update is one step, and it follows every other step.
fn check_env(steps: &[Step], graph: &Graph<'_>, notes: &mut Vec<LintNote>) {
    let envs: Vec<usize> = (0..steps.len())
        .filter(|&p| matches!(steps[p].kind, StepKind::UpdateEnvironment))
        .collect();
    if envs.len() > 1 {
        let ids: Vec<&str> = envs.iter().map(|&p| steps[p].id.as_str()).collect();
        notes.push(LintNote::new(
            LintCode::EnvTwice,
            &ids,
            format!("the environment is updated by {}", ids.join(" and ")),
        ));
    }
    for &env in &envs {
        // The steps it does not follow, of which only the last of each
        // chain is named (what follows it is not followed either).
        let missed: BTreeSet<usize> = (0..steps.len())
            .filter(|&p| {
                !matches!(steps[p].kind, StepKind::UpdateEnvironment) && !graph.before(p, env)
            })
            .collect();
        let last: Vec<&str> = missed
            .iter()
            .filter(|&&p| !missed.iter().any(|&o| graph.before(p, o)))
            .map(|&p| steps[p].id.as_str())
            .collect();
        if last.is_empty() {
            continue;
        }
        let mut concerned = vec![steps[env].id.as_str()];
        concerned.extend(&last);
        notes.push(LintNote::new(
            LintCode::EnvNotLast,
            &concerned,
            format!(
                "{} does not follow {}: the variables would be written before they are done",
                steps[env].id,
                last.join(", ")
            ),
        ));
    }
}

/// Whether the step writes its server (a backup and a disk check only read
/// it).
fn writes(kind: &StepKind) -> bool {
    !matches!(
        kind,
        StepKind::Backup { .. } | StepKind::DiskCheck { .. } | StepKind::UpdateEnvironment
    )
}

/// Per server: no write runs beside another step on it; the provision comes
/// first and the removal last.
fn check_servers(steps: &[Step], graph: &Graph<'_>, notes: &mut Vec<LintNote>) {
    let mut by_server: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (position, step) in steps.iter().enumerate() {
        if let Some(server) = step.kind.server() {
            by_server.entry(server).or_default().push(position);
        }
    }
    for (server, on) in &by_server {
        for (i, &a) in on.iter().enumerate() {
            for &b in &on[i + 1..] {
                let (write_a, write_b) = (writes(&steps[a].kind), writes(&steps[b].kind));
                if !(write_a || write_b) || graph.ordered(a, b) {
                    continue;
                }
                let (code, what) = if write_a && write_b {
                    (LintCode::ConcurrentWrite, "both write")
                } else {
                    (LintCode::ReadDuringWrite, "read and write")
                };
                notes.push(LintNote::new(
                    code,
                    &[&steps[a].id, &steps[b].id],
                    format!(
                        "{} and {} {what} {server} with no order between them",
                        steps[a].id, steps[b].id
                    ),
                ));
            }
        }
        // Unordered pairs are reported above; here, the wrong way round.
        for &edge in on {
            for &other in on.iter().filter(|&&o| o != edge) {
                let note = match steps[edge].kind {
                    StepKind::Provision { .. } if graph.before(other, edge) => LintNote::new(
                        LintCode::BeforeProvision,
                        &[&steps[edge].id, &steps[other].id],
                        format!(
                            "{} acts on {server} before {} has made it",
                            steps[other].id, steps[edge].id
                        ),
                    ),
                    StepKind::Remove { .. } if graph.before(edge, other) => LintNote::new(
                        LintCode::AfterRemove,
                        &[&steps[edge].id, &steps[other].id],
                        format!(
                            "{} acts on {server} after {} has deleted it",
                            steps[other].id, steps[edge].id
                        ),
                    ),
                    _ => continue,
                };
                notes.push(note);
            }
        }
    }
}

/// A disk check comes before the staged backup it guards and before every
/// step that builds a destination's data (provision, restore, enslave).
fn check_disk_checks(steps: &[Step], graph: &Graph<'_>, notes: &mut Vec<LintNote>) {
    for (check, step) in steps.iter().enumerate() {
        let StepKind::DiskCheck {
            backup,
            destinations,
            ..
        } = &step.kind
        else {
            continue;
        };
        let guarded = steps.iter().enumerate().filter(|(_, s)| match &s.kind {
            StepKind::Backup { .. } => backup.as_ref().is_some_and(|b| b.step == s.id),
            StepKind::Provision { server: to, .. }
            | StepKind::Restore { server: to, .. }
            | StepKind::Enslave { server: to, .. } => destinations.contains(to),
            _ => false,
        });
        for (position, guarded) in guarded {
            if !graph.before(check, position) {
                notes.push(LintNote::new(
                    LintCode::DiskCheckAfter,
                    &[&step.id, &guarded.id],
                    format!(
                        "{} does not come before {}, which it guards",
                        step.id, guarded.id
                    ),
                ));
            }
        }
    }
}

/// A backup of data files is taken over by exactly one of its restores on
/// the host it lands on, which runs after every other restore of it (they
/// copy what it moves away); a dump is taken by none.
fn check_hand_over(
    steps: &[Step],
    graph: &Graph<'_>,
    servers: &Servers,
    notes: &mut Vec<LintNote>,
) {
    for backup in steps {
        let StepKind::Backup {
            method,
            host: landed_on,
            ..
        } = &backup.kind
        else {
            continue;
        };
        // The first step of a duplicated id stands for it. Per reader: its
        // position, whether it takes the backup, whether it is on its host.
        let readers: Vec<(usize, bool, bool)> = steps
            .iter()
            .enumerate()
            .filter_map(|(p, s)| match &s.kind {
                StepKind::Restore {
                    server,
                    backup: read,
                    takes_backup,
                    ..
                } if read.step == backup.id => {
                    Some((p, *takes_backup, servers.host(server) == *landed_on))
                }
                _ => None,
            })
            .collect();
        let takers: Vec<usize> = readers.iter().filter(|r| r.1).map(|r| r.0).collect();
        for &(taker, ..) in readers.iter().filter(|r| r.1 && !r.2) {
            let server = steps[taker].kind.server().unwrap_or_default();
            notes.push(LintNote::new(
                LintCode::TakenFromAnotherHost,
                &[&backup.id, &steps[taker].id],
                format!(
                    "{} moves {} into place, but it lands on {landed_on} and {server} runs on {}: only a copy reaches another host",
                    steps[taker].id,
                    backup.id,
                    servers.host(server)
                ),
            ));
        }
        for &(reader, ..) in readers.iter().filter(|r| !r.1 && !r.2) {
            let server = steps[reader].kind.server().unwrap_or_default();
            notes.push(LintNote::new(
                LintCode::RestoredFromAnotherHost,
                &[&backup.id, &steps[reader].id],
                format!(
                    "{} reads {}, which lands on {landed_on}, but {server} runs on {}: a backup is taken on the host that restores it",
                    steps[reader].id,
                    backup.id,
                    servers.host(server)
                ),
            ));
        }
        let ids =
            |ps: &[usize]| -> Vec<&str> { ps.iter().map(|&p| steps[p].id.as_str()).collect() };
        if !method.can_be_moved() {
            if !takers.is_empty() {
                let mut concerned = vec![backup.id.as_str()];
                concerned.extend(ids(&takers));
                notes.push(LintNote::new(
                    LintCode::DumpTaken,
                    &concerned,
                    format!(
                        "{} is a dump, read and never moved, yet {} takes it over",
                        backup.id,
                        ids(&takers).join(" and ")
                    ),
                ));
            }
            continue;
        }
        match takers.as_slice() {
            [] if readers.len() > 1 && readers.iter().any(|r| r.2) => {
                let readers: Vec<usize> = readers.iter().map(|r| r.0).collect();
                let mut concerned = vec![backup.id.as_str()];
                concerned.extend(ids(&readers));
                notes.push(LintNote::new(
                    LintCode::BackupNotTaken,
                    &concerned,
                    format!(
                        "{} is read by {} and moved into place by none: each copies it",
                        backup.id,
                        ids(&readers).join(", ")
                    ),
                ));
            }
            [] => {}
            [taker] => {
                for &(reader, ..) in readers.iter().filter(|r| !r.1) {
                    if !graph.before(reader, *taker) {
                        notes.push(LintNote::new(
                            LintCode::TakenTooEarly,
                            &[&backup.id, &steps[*taker].id, &steps[reader].id],
                            format!(
                                "{} moves {} away before {} has copied it",
                                steps[*taker].id, backup.id, steps[reader].id
                            ),
                        ));
                    }
                }
            }
            several => {
                let mut concerned = vec![backup.id.as_str()];
                concerned.extend(ids(several));
                notes.push(LintNote::new(
                    LintCode::SeveralTakers,
                    &concerned,
                    format!(
                        "{} is taken over by {}: only its last reader may move it",
                        backup.id,
                        ids(several).join(" and ")
                    ),
                ));
            }
        }
    }
}

//! Property tests of the planner against a simple model: random manifests
//! and recorded states, random intents and observations.
//!
//! - the plan linter (`dbgroups_plan::lint`) finds nothing: step ids are
//!   unique, steps come in an order that respects every dependency, restores
//!   follow their backups, the environment update comes last, no two steps
//!   write one server at once, disk checks come first, and a backup is moved
//!   only by its last reader;
//! - every scale up runs backup → provision → restore → enslave → env
//!   update along its dependencies;
//! - no group is added or removed, and no server removed, without its intent;
//! - applying the expected state and planning again gives no changes;
//! - the same inputs give the same plan.

use std::collections::{BTreeMap, BTreeSet};

use dbgroups_plan::{
    ChangeKind, GroupAddress, Intents, ObservedFacts, Plan, ReplicationHealth, ServerHealth,
    StepKind,
};
use dbgroups_state::{AppState, Role};
use proptest::prelude::*;

use crate::common::{fake_apply, manifest, plan_with};

#[derive(Debug, Clone)]
struct GroupSpec {
    servers: usize,
    managed_backups: bool,
    replicate_from: Option<usize>,
    primary: bool,
}

const TYPES: [(&str, &str, &str); 2] = [("postgresql", "pg", "15"), ("redis", "rd", "7.0")];
const GROUPS: [&str; 3] = ["default", "reporting", "cache"];

/// Per type, an optional spec for each of the three group names.
type ManifestSpec = Vec<Vec<Option<GroupSpec>>>;

fn group_spec() -> impl Strategy<Value = GroupSpec> {
    (
        0..4usize,
        any::<bool>(),
        prop::option::weighted(0.3, 0..3usize),
        prop::bool::weighted(0.2),
    )
        .prop_map(
            |(servers, managed_backups, replicate_from, primary)| GroupSpec {
                servers,
                managed_backups,
                replicate_from,
                primary,
            },
        )
}

fn manifest_spec() -> impl Strategy<Value = ManifestSpec> {
    prop::collection::vec(prop::collection::vec(prop::option::of(group_spec()), 3), 2)
        .prop_map(made_valid)
}

/// Bends a random spec into a valid manifest, so that cases are not wasted:
/// a replica has one server and a source that exists and is no replica;
/// at most one primary per type.
fn made_valid(mut spec: ManifestSpec) -> ManifestSpec {
    for groups in &mut spec {
        let mut has_primary = false;
        for index in 0..groups.len() {
            let Some(group) = groups[index].clone() else {
                continue;
            };
            let mut group = group;
            if let Some(source) = group.replicate_from {
                let source_ok = source != index
                    && groups[source]
                        .as_ref()
                        .is_some_and(|s| s.replicate_from.is_none())
                    && !groups
                        .iter()
                        .flatten()
                        .any(|g| g.replicate_from == Some(index));
                if source_ok {
                    group.servers = 1;
                } else {
                    group.replicate_from = None;
                }
            }
            group.primary &= !has_primary;
            has_primary |= group.primary;
            groups[index] = Some(group);
        }
    }
    spec
}

fn render(spec: &ManifestSpec) -> String {
    let mut text = String::from("application: shop\n");
    for ((db_type, short, version), groups) in TYPES.iter().zip(spec) {
        if groups.iter().all(Option::is_none) {
            continue;
        }
        text.push_str(&format!("{db_type}:\n  groups:\n"));
        for (name, group) in GROUPS.iter().zip(groups) {
            let Some(group) = group else { continue };
            text.push_str(&format!(
                "    {name}:\n      configuration: {{ version: \"{version}\" }}\n"
            ));
            text.push_str(&format!(
                "      backups: {{ managed: {} }}\n",
                group.managed_backups
            ));
            if let Some(source) = group.replicate_from {
                text.push_str(&format!("      replicate_from: {}\n", GROUPS[source]));
            }
            if group.primary {
                text.push_str("      primary: true\n");
            }
            text.push_str("      servers:\n");
            for index in 0..group.servers {
                text.push_str(&format!(
                    "        - server: {{ unique_name: {short}-{name}-{index} }}\n"
                ));
            }
        }
    }
    text
}

fn is_valid(text: &str) -> bool {
    let source = dbgroups_manifest::SourceFile::new("manifest.yml", text);
    dbgroups_manifest::parse(&source, &Default::default())
        .manifest
        .is_some()
}

/// The recorded state after applying `text` to a new application.
fn recorded(text: &str) -> AppState {
    let (_, expected) = plan_with(
        text,
        None,
        &BTreeMap::new(),
        &ObservedFacts::offline(),
        &Intents::default(),
    );
    fake_apply(&expected, "lineage-prop")
}

/// Valid intents for this manifest and state, chosen by the selectors.
fn intents_for(text: &str, state: &AppState, selectors: &[bool]) -> Intents {
    let manifest = manifest(text);
    let mut pick = selectors.iter().cycle().copied();
    let mut intents = Intents::default();
    for group in &manifest.groups {
        if state.group(group.db_type, &group.name.value).is_none() && pick.next().unwrap_or(false) {
            intents
                .add_groups
                .insert(GroupAddress::new(group.db_type, group.name.value.clone()));
        }
    }
    let declared: BTreeSet<String> = manifest
        .servers()
        .map(|(_, s)| s.unique_name.value.clone())
        .collect();
    for group in &state.groups {
        if manifest.group(group.db_type, &group.name).is_none() && pick.next().unwrap_or(false) {
            intents
                .remove_groups
                .insert(GroupAddress::new(group.db_type, group.name.clone()));
        }
        for server in &group.servers {
            if !declared.contains(&server.unique_name) && pick.next().unwrap_or(false) {
                intents.remove_servers.insert(server.unique_name.clone());
            }
            let replica = server.role == Role::Slave || group.replicate_from.is_some();
            if replica && pick.next().unwrap_or(false) {
                intents.resync.insert(server.unique_name.clone());
            }
        }
    }
    intents
}

fn ancestors(plan: &Plan, id: &str) -> BTreeSet<String> {
    let by_id: BTreeMap<&str, &Vec<String>> = plan
        .steps
        .iter()
        .map(|s| (s.id.as_str(), &s.depends_on))
        .collect();
    let mut seen = BTreeSet::new();
    let mut stack = vec![id.to_string()];
    while let Some(next) = stack.pop() {
        for dep in by_id.get(next.as_str()).into_iter().flat_map(|d| d.iter()) {
            if seen.insert(dep.clone()) {
                stack.push(dep.clone());
            }
        }
    }
    seen
}

fn check_plan(
    plan: &Plan,
    state: Option<&AppState>,
    intents: &Intents,
) -> Result<(), TestCaseError> {
    // The plan's own invariants (ids, order, cycles, restores after their
    // backups, env last, one writer per server, disk checks first, the
    // backup hand-over) are the linter's. A planned plan has no note but
    // `read-during-write` (a warning; see docs/decisions.md: a backup or
    // disk check of a server that an earlier change's step writes is not
    // always ordered after it).
    let notes = dbgroups_plan::lint::lint(plan);
    prop_assert!(
        notes
            .iter()
            .all(|n| n.code == dbgroups_plan::lint::LintCode::ReadDuringWrite),
        "lint notes: {notes:#?}"
    );
    let env_step = plan
        .steps
        .iter()
        .find(|s| matches!(s.kind, StepKind::UpdateEnvironment));
    let fresh = state.is_none();
    for change in &plan.changes {
        match &change.kind {
            ChangeKind::ScaleUp {
                group,
                master,
                new_slaves,
                copy_from,
            } => {
                // The backup copies the master, or the caught-up slave the
                // refreshed plan chose.
                let copied = copy_from.as_ref().map_or(master, |c| &c.server);
                let env_step =
                    env_step.ok_or_else(|| TestCaseError::fail("a scale up without env update"))?;
                for slave in new_slaves {
                    let enslave = format!("enslave:{slave}");
                    let chain = ancestors(plan, &enslave);
                    // Where the engine copies the data itself, the new
                    // slave follows right after it is provisioned, and no
                    // backup is taken for it.
                    if dbgroups_plan::rules::for_type(group.db_type).replicas_copy_by_sync {
                        prop_assert!(
                            chain.contains(&format!("provision:{slave}")),
                            "{enslave} not after provision"
                        );
                        prop_assert!(
                            !plan
                                .steps
                                .iter()
                                .any(|s| s.id == format!("restore:{slave}")),
                            "{slave} restored although its engine copies by sync"
                        );
                        prop_assert!(
                            ancestors(plan, &env_step.id).contains(&enslave),
                            "env update not after {enslave}"
                        );
                        continue;
                    }
                    prop_assert!(
                        chain.contains(&format!("restore:{slave}")),
                        "{enslave} not after restore"
                    );
                    prop_assert!(
                        chain.contains(&format!("provision:{slave}")),
                        "{enslave} not after provision"
                    );
                    prop_assert!(
                        chain.iter().any(|id| id == &format!("backup:{copied}")
                            || id == &format!("dump:{copied}")
                            || id.starts_with(&format!("backup:{copied}@"))
                            || id.starts_with(&format!("dump:{copied}@"))),
                        "{enslave} not after the backup of {copied}"
                    );
                    let provision = format!("provision:{slave}");
                    let restore_deps = ancestors(plan, &format!("restore:{slave}"));
                    prop_assert!(
                        restore_deps.contains(&provision),
                        "restore not after {}",
                        provision
                    );
                    prop_assert!(
                        ancestors(plan, &env_step.id).contains(&enslave),
                        "env update not after {enslave}"
                    );
                }
            }
            ChangeKind::CreateGroup { group, .. } if !fresh => {
                prop_assert!(
                    intents.add_groups.contains(group),
                    "{group} created without --add-group"
                );
            }
            ChangeKind::RemoveGroup { group, .. } => {
                prop_assert!(
                    intents.remove_groups.contains(group),
                    "{group} removed without --remove-group"
                );
            }
            ChangeKind::RemoveServer { server, .. } => {
                prop_assert!(
                    intents.remove_servers.contains(server),
                    "{server} removed without --remove-server"
                );
            }
            _ => {}
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(crate::common::proptest_cases(500))]

    #[test]
    fn plans_keep_their_invariants_and_converge(
        before in manifest_spec(),
        after in manifest_spec(),
        selectors in prop::collection::vec(any::<bool>(), 1..16),
        broken in prop::collection::vec(any::<bool>(), 0..6),
    ) {
        let (before, after) = (render(&before), render(&after));
        prop_assume!(is_valid(&before) && is_valid(&after));
        let state = recorded(&before);
        let intents = intents_for(&after, &state, &selectors);
        let mut observed = ObservedFacts::offline();
        let replicas: Vec<String> = state
            .groups
            .iter()
            .flat_map(|g| g.servers.iter().filter(move |s| s.role == Role::Slave || g.replicate_from.is_some()))
            .map(|s| s.unique_name.clone())
            .collect();
        for (server, broken) in replicas.iter().zip(&broken) {
            if *broken {
                observed.servers.insert(server.clone(), ServerHealth {
                    up: true,
                    replication: Some(ReplicationHealth { streaming: false, lag_seconds: None, detail: None, held_offset: None, reconnecting: false }),
                });
            }
        }
        let (plan, expected) = plan_with(&after, Some(&state), &BTreeMap::new(), &observed, &intents);
        check_plan(&plan, Some(&state), &intents)?;

        // Determinism.
        let (again, _) = plan_with(&after, Some(&state), &BTreeMap::new(), &observed, &intents);
        prop_assert_eq!(dbgroups_plan::render::json::render(&plan), dbgroups_plan::render::json::render(&again));

        // Convergence: apply what was planned, plan again with no flags.
        let applied = fake_apply(&expected, "lineage-prop");
        let (replan, _) = plan_with(&after, Some(&applied), &BTreeMap::new(), &ObservedFacts::offline(), &Intents::default());
        prop_assert!(
            !replan.has_changes(),
            "not converged:\nmanifest:\n{after}\nfirst plan:\n{}\nsecond plan:\n{}",
            dbgroups_plan::render::text::render(&plan),
            dbgroups_plan::render::text::render(&replan)
        );
    }

    #[test]
    fn fresh_plans_keep_their_invariants_and_converge(spec in manifest_spec()) {
        let text = render(&spec);
        prop_assume!(is_valid(&text));
        let (plan, expected) = plan_with(&text, None, &BTreeMap::new(), &ObservedFacts::offline(), &Intents::default());
        check_plan(&plan, None, &Intents::default())?;
        let declared = manifest(&text);
        for change in &plan.changes {
            if let ChangeKind::CreateGroup { group, .. } = &change.kind {
                prop_assert!(declared.group(group.db_type, &group.name).is_some());
            }
        }
        let applied = fake_apply(&expected, "lineage-prop");
        let (replan, _) = plan_with(&text, Some(&applied), &BTreeMap::new(), &ObservedFacts::offline(), &Intents::default());
        prop_assert!(!replan.has_changes(), "not converged:\n{}", dbgroups_plan::render::text::render(&replan));
    }
}

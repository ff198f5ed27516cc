//! The plan linter (`dbgroups_plan::lint`): each check on a real plan broken
//! by hand reports exactly its code; the planner's plans (the snapshot
//! scenarios, the examples) give no note; a tampered plan file whose
//! checksum was recomputed is refused with the lint message.

use std::collections::BTreeMap;

use dbgroups_plan::lint::{LintCode, Severity, lint};
use dbgroups_plan::planfile::{PlanFile, PlanFileError};
use dbgroups_plan::{GroupAddress, Intents, ObservedFacts, Plan, Step, StepKind};

use crate::common::{applied, plan_with};
use crate::plans::BASE;

fn plan(text: &str, state: Option<&dbgroups_state::AppState>, intents: &Intents) -> Plan {
    plan_with(
        text,
        state,
        &BTreeMap::new(),
        &ObservedFacts::offline(),
        intents,
    )
    .0
}

/// BASE grown by two PostgreSQL slaves: a disk check, one backup read by two
/// restores (the last takes it), provisions, enslaves and the env update.
fn scale_up() -> Plan {
    let state = applied(BASE);
    let manifest = BASE.replace(
        "        - server: { unique_name: pg-replica-1 }\n",
        "        - server: { unique_name: pg-replica-1 }\n        - server: { unique_name: pg-replica-2 }\n        - server: { unique_name: pg-replica-3 }\n",
    );
    let plan = plan(&manifest, Some(&state), &Intents::default());
    assert!(lint(&plan).is_empty(), "{:#?}", lint(&plan));
    plan
}

fn step<'p>(plan: &'p mut Plan, id: &str) -> &'p mut Step {
    plan.steps
        .iter_mut()
        .find(|s| s.id == id)
        .unwrap_or_else(|| panic!("no step {id}"))
}

fn position(plan: &Plan, id: &str) -> usize {
    plan.steps
        .iter()
        .position(|s| s.id == id)
        .unwrap_or_else(|| panic!("no step {id}"))
}

fn drop_dependency(plan: &mut Plan, id: &str, dep: &str) {
    let step = step(plan, id);
    let before = step.depends_on.len();
    step.depends_on.retain(|d| d != dep);
    assert_eq!(step.depends_on.len() + 1, before, "{id} depended on {dep}");
}

/// The codes the linter reports, deduplicated.
fn codes(plan: &Plan) -> Vec<LintCode> {
    let mut codes: Vec<LintCode> = lint(plan).iter().map(|n| n.code).collect();
    codes.sort();
    codes.dedup();
    codes
}

/// The restores of `backup:pg-main`, the one that takes it last.
fn readers(plan: &Plan) -> (String, String) {
    let mut taker = None;
    let mut copier = None;
    for s in &plan.steps {
        if let StepKind::Restore {
            backup,
            takes_backup,
            ..
        } = &s.kind
            && backup.step == "backup:pg-main"
        {
            if *takes_backup {
                taker = Some(s.id.clone());
            } else {
                copier = Some(s.id.clone());
            }
        }
    }
    (
        copier.expect("a restore copies"),
        taker.expect("a restore takes"),
    )
}

#[test]
fn a_duplicated_step_is_reported() {
    let mut plan = scale_up();
    let copy = plan.steps[position(&plan, "enslave:pg-replica-2")].clone();
    plan.steps.insert(plan.steps.len() - 1, copy);
    let env = plan.steps.len() - 1;
    plan.steps[env]
        .depends_on
        .push("enslave:pg-replica-2".into());
    // The copy also runs beside the original and before the env update;
    // the duplicate is named first.
    let notes = lint(&plan);
    assert_eq!(notes[0].code, LintCode::DuplicateStep, "{notes:#?}");
    assert_eq!(notes[0].steps, ["enslave:pg-replica-2"]);
    assert!(codes(&plan).contains(&LintCode::DuplicateStep));
}

#[test]
fn an_unknown_dependency_is_reported() {
    let mut plan = scale_up();
    step(&mut plan, "restore:pg-replica-2")
        .depends_on
        .push("provision:pg-nowhere".into());
    assert_eq!(codes(&plan), [LintCode::UnknownDependency]);
}

#[test]
fn a_cycle_is_reported() {
    let mut plan = scale_up();
    step(&mut plan, "backup:pg-main")
        .depends_on
        .push("enslave:pg-replica-2".into());
    assert_eq!(codes(&plan), [LintCode::Cycle]);
    let note = &lint(&plan)[0];
    assert!(
        note.steps.contains(&"backup:pg-main".to_string()),
        "{note:?}"
    );
}

#[test]
fn a_step_listed_before_its_dependency_is_reported() {
    let mut plan = scale_up();
    let env = plan.steps.pop().expect("env");
    plan.steps.insert(0, env);
    assert_eq!(codes(&plan), [LintCode::DependencyOrder]);
}

#[test]
fn a_restore_without_its_backup_before_it_is_reported() {
    let mut plan = scale_up();
    let (copier, _) = readers(&plan);
    drop_dependency(&mut plan, &copier, "backup:pg-main");
    assert_eq!(codes(&plan), [LintCode::RestoreWithoutBackup]);
    // A restore of a backup the plan does not have.
    let mut plan = scale_up();
    let (copier, _) = readers(&plan);
    if let StepKind::Restore { backup, .. } = &mut step(&mut plan, &copier).kind {
        backup.step = "backup:pg-elsewhere".into();
    }
    assert_eq!(codes(&plan), [LintCode::RestoreWithoutBackup]);
}

#[test]
fn a_reference_that_names_another_location_than_its_backup_is_reported() {
    let mut plan = scale_up();
    let (copier, _) = readers(&plan);
    if let StepKind::Restore { backup, .. } = &mut step(&mut plan, &copier).kind {
        backup.location = "backup-pg-elsewhere".into();
    }
    assert_eq!(codes(&plan), [LintCode::BackupMismatch]);
    // A staged disk check names the backup it makes room for.
    let mut plan = scale_up();
    if let StepKind::DiskCheck { backup, .. } =
        &mut step(&mut plan, "disk-check:backup:pg-main").kind
    {
        *backup = None;
    }
    assert_eq!(codes(&plan), [LintCode::BackupMismatch]);
}

/// Every reference to `backup:pg-main`, and the step itself, say it lands
/// on `host`.
fn land_backup_on(plan: &mut Plan, host: &str) {
    for s in &mut plan.steps {
        match &mut s.kind {
            StepKind::Backup { host: landed, .. } if s.id == "backup:pg-main" => {
                *landed = host.to_string()
            }
            StepKind::Restore { backup, .. }
            | StepKind::DiskCheck {
                backup: Some(backup),
                ..
            } if backup.step == "backup:pg-main" => backup.host = host.to_string(),
            _ => {}
        }
    }
}

#[test]
fn a_backup_read_or_taken_over_on_another_host_is_reported() {
    let mut plan = scale_up();
    land_backup_on(&mut plan, "db-1.example");
    // The taker would rename across hosts; the copier would copy across.
    assert_eq!(
        codes(&plan),
        [
            LintCode::TakenFromAnotherHost,
            LintCode::RestoredFromAnotherHost
        ]
    );
    let (copier, taker) = readers(&plan);
    if let StepKind::Restore { takes_backup, .. } = &mut step(&mut plan, &taker).kind {
        *takes_backup = false;
    }
    // Copied by both: each reads a backup that is not on its host.
    let notes = lint(&plan);
    let mut readers_named: Vec<&str> = notes
        .iter()
        .filter(|n| n.code == LintCode::RestoredFromAnotherHost)
        .map(|n| n.steps[1].as_str())
        .collect();
    readers_named.sort();
    let mut expected = vec![copier.as_str(), taker.as_str()];
    expected.sort();
    assert_eq!(readers_named, expected, "{notes:#?}");
    assert_eq!(codes(&plan), [LintCode::RestoredFromAnotherHost]);
}

#[test]
fn an_env_update_that_does_not_come_last_is_reported() {
    let mut plan = scale_up();
    drop_dependency(&mut plan, "env:shop", "enslave:pg-replica-3");
    assert_eq!(codes(&plan), [LintCode::EnvNotLast]);
    let notes = lint(&plan);
    assert_eq!(notes.len(), 1, "{notes:#?}");
    assert_eq!(notes[0].steps, ["env:shop", "enslave:pg-replica-3"]);
}

#[test]
fn a_second_env_update_is_reported() {
    let mut plan = scale_up();
    let mut second = plan.steps.last().expect("env").clone();
    second.id = "env:again".into();
    second.depends_on = vec!["env:shop".into()];
    plan.steps.push(second);
    assert_eq!(codes(&plan), [LintCode::EnvTwice]);
}

#[test]
fn two_unordered_writes_to_one_server_are_reported() {
    let mut plan = scale_up();
    // A start of pg-replica-2 beside its seeding, the env update after it.
    plan.steps.insert(
        0,
        Step {
            id: "start:pg-replica-2".into(),
            kind: StepKind::Start {
                server: "pg-replica-2".into(),
            },
            change: "change-1".into(),
            reason: "by hand".into(),
            depends_on: Vec::new(),
        },
    );
    let env = plan.steps.len() - 1;
    plan.steps[env].depends_on.push("start:pg-replica-2".into());
    let notes = lint(&plan);
    assert!(
        notes.iter().any(|n| n.code == LintCode::ConcurrentWrite
            && n.steps.contains(&"restore:pg-replica-2".to_string())),
        "{notes:#?}"
    );
    assert_eq!(codes(&plan), [LintCode::ConcurrentWrite]);
    // Ordered, but before the server is made.
    step(&mut plan, "provision:pg-replica-2")
        .depends_on
        .push("start:pg-replica-2".into());
    assert_eq!(codes(&plan), [LintCode::BeforeProvision]);
}

#[test]
fn a_write_unordered_with_a_backup_of_its_server_is_a_warning() {
    // A start of the master being backed up and measured, with no order.
    let mut plan = scale_up();
    let at = position(&plan, "backup:pg-main");
    plan.steps.insert(
        at,
        Step {
            id: "start:pg-main".into(),
            kind: StepKind::Start {
                server: "pg-main".into(),
            },
            change: "change-1".into(),
            reason: "by hand".into(),
            depends_on: Vec::new(),
        },
    );
    let env = plan.steps.len() - 1;
    plan.steps[env].depends_on.push("start:pg-main".into());
    assert_eq!(codes(&plan), [LintCode::ReadDuringWrite]);
    let notes = lint(&plan);
    assert_eq!(notes.len(), 2, "the backup and the disk check: {notes:#?}");
    assert!(notes.iter().all(|n| n.severity == Severity::Warning));
}

#[test]
fn a_step_after_its_servers_removal_is_reported() {
    let state = applied(BASE);
    let manifest = BASE.replace("        - server: { unique_name: pg-replica-1 }\n", "");
    let mut plan = plan(
        &manifest,
        Some(&state),
        &Intents {
            remove_servers: ["pg-replica-1".to_string()].into(),
            ..Intents::default()
        },
    );
    assert!(lint(&plan).is_empty(), "{:#?}", lint(&plan));
    let remove = position(&plan, "remove:pg-replica-1");
    plan.steps.insert(
        remove + 1,
        Step {
            id: "start:pg-replica-1".into(),
            kind: StepKind::Start {
                server: "pg-replica-1".into(),
            },
            change: plan.steps[remove].change.clone(),
            reason: "by hand".into(),
            depends_on: vec!["remove:pg-replica-1".into()],
        },
    );
    let env = plan.steps.len() - 1;
    plan.steps[env].depends_on = vec!["start:pg-replica-1".into()];
    assert_eq!(codes(&plan), [LintCode::AfterRemove]);
}

#[test]
fn a_disk_check_after_what_it_guards_is_reported() {
    let mut plan = scale_up();
    drop_dependency(&mut plan, "backup:pg-main", "disk-check:backup:pg-main");
    assert_eq!(codes(&plan), [LintCode::DiskCheckAfter]);
    let mut plan = scale_up();
    drop_dependency(
        &mut plan,
        "provision:pg-replica-3",
        "disk-check:backup:pg-main",
    );
    assert_eq!(codes(&plan), [LintCode::DiskCheckAfter]);
}

#[test]
fn a_second_taker_of_a_backup_is_reported() {
    let mut plan = scale_up();
    let (copier, _) = readers(&plan);
    if let StepKind::Restore { takes_backup, .. } = &mut step(&mut plan, &copier).kind {
        *takes_backup = true;
    }
    assert_eq!(codes(&plan), [LintCode::SeveralTakers]);
}

#[test]
fn a_taker_before_another_reader_is_reported() {
    let mut plan = scale_up();
    let (copier, taker) = readers(&plan);
    drop_dependency(&mut plan, &taker, &copier);
    assert_eq!(codes(&plan), [LintCode::TakenTooEarly]);
}

#[test]
fn a_backup_taken_by_none_is_a_warning() {
    let mut plan = scale_up();
    let (_, taker) = readers(&plan);
    if let StepKind::Restore { takes_backup, .. } = &mut step(&mut plan, &taker).kind {
        *takes_backup = false;
    }
    let notes = lint(&plan);
    assert_eq!(codes(&plan), [LintCode::BackupNotTaken]);
    assert!(notes.iter().all(|n| n.severity == Severity::Warning));
    assert!(dbgroups_plan::lint::errors(&notes).is_ok());
}

#[test]
fn a_dump_taken_over_is_reported() {
    let state = applied(BASE);
    let manifest = BASE.replace(
        "redis:",
        "    archive:\n      configuration: { version: \"16\" }\n      import_from: default\n      servers:\n        - server: { unique_name: pg-archive }\nredis:",
    );
    let mut plan = plan(
        &manifest,
        Some(&state),
        &Intents {
            add_groups: ["postgresql.archive"
                .parse::<GroupAddress>()
                .expect("address")]
            .into(),
            ..Intents::default()
        },
    );
    assert!(lint(&plan).is_empty(), "{:#?}", lint(&plan));
    let restore = plan
        .steps
        .iter_mut()
        .find(|s| matches!(s.kind, StepKind::Restore { .. }))
        .expect("the import restores a dump");
    if let StepKind::Restore { takes_backup, .. } = &mut restore.kind {
        *takes_backup = true;
    }
    assert_eq!(codes(&plan), [LintCode::DumpTaken]);
}

/// Every scenario of plans.rs and every example plans lint-clean (the
/// planner refuses its own plan otherwise, so this is also checked on
/// every snapshot; here it is said).
#[test]
fn the_planners_plans_have_no_note() {
    let mut plans = vec![scale_up()];
    plans.push(plan(BASE, None, &Intents::default()));
    let state = applied(BASE);
    plans.push(plan(BASE, Some(&state), &Intents::default()));
    let reporting = BASE.replace(
        "redis:",
        "    reporting:\n      configuration: { version: \"15\" }\n      replicate_from: default\n      servers:\n        - server: { unique_name: pg-report }\nredis:",
    );
    let plain = reporting.replace("      replicate_from: default\n", "");
    let plain_state = applied(&plain);
    plans.push(plan(&reporting, Some(&plain_state), &Intents::default()));
    let replica_state = applied(&reporting);
    plans.push(plan(&plain, Some(&replica_state), &Intents::default()));
    plans.push(plan(
        BASE,
        Some(&state),
        &Intents {
            resync: ["pg-replica-1".to_string()].into(),
            ..Intents::default()
        },
    ));
    for dir in std::fs::read_dir(crate::common::repo_path("examples")).expect("examples/") {
        let dir = dir.expect("entry").path();
        let Ok(files) = std::fs::read_dir(&dir) else {
            continue;
        };
        for file in files {
            let path = file.expect("entry").path();
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            // The examples that name their application and parse (not the
            // tabbed copy).
            if path.extension().is_some_and(|e| e == "yml")
                && text.lines().any(|l| l.starts_with("application:"))
                && !text.contains('\t')
            {
                plans.push(plan(&text, None, &Intents::default()));
            }
        }
    }
    for plan in &plans {
        assert!(plan.has_changes() || plan.steps.is_empty());
        assert_eq!(
            lint(plan),
            [],
            "{}",
            dbgroups_plan::render::text::render(plan)
        );
    }
}

#[test]
fn a_tampered_plan_file_with_a_recomputed_checksum_is_refused_with_the_note() {
    let mut plan = scale_up();
    let (copier, _) = readers(&plan);
    if let StepKind::Restore { takes_backup, .. } = &mut step(&mut plan, &copier).kind {
        *takes_backup = true;
    }
    // PlanFile::new computes the checksum of what it is given: the file is
    // consistent, only its plan breaks a rule.
    let file = PlanFile::new(
        plan,
        Intents::default(),
        None,
        BASE.as_bytes(),
        false,
        "test",
    );
    let error = PlanFile::parse(file.to_json().as_bytes()).expect_err("refused");
    let PlanFileError::Lint(lint_error) = &error else {
        panic!("not a lint refusal: {error:?}");
    };
    assert_eq!(lint_error.first.code, LintCode::SeveralTakers);
    let message = error.to_string();
    assert!(
        message.contains("several-takers") && message.contains("backup:pg-main"),
        "{message}"
    );
}

/// Through the binary: a plan file whose plan was broken and whose checksum
/// was recomputed is refused by `show` and by `apply`, naming the note.
#[test]
fn apply_refuses_a_plan_file_that_breaks_a_rule() {
    let dir = crate::cli_plan::quickstart();
    let run = crate::cli::dbgroups_in(
        dir.path(),
        &["plan", "--refresh=false", "--out", "plan.json"],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let path = dir.path().join("plan.json");
    let written: PlanFile =
        serde_json::from_slice(&std::fs::read(&path).expect("read")).expect("a plan file");
    let mut broken = written.plan.clone();
    let env = broken.steps.last_mut().expect("steps");
    assert!(matches!(env.kind, StepKind::UpdateEnvironment));
    let dropped = env.depends_on.remove(0);
    let manifest = std::fs::read(dir.path().join("manifest.yml")).expect("manifest");
    let file = PlanFile::new(
        broken,
        written.intents.clone(),
        written.environment.clone(),
        &manifest,
        written.refreshed,
        &written.dbgroups_version,
    );
    std::fs::write(&path, file.to_json()).expect("write");
    for args in [
        &["show", "plan.json"][..],
        &["apply", "--refresh=false", "--auto-approve", "plan.json"][..],
    ] {
        let run = crate::cli::dbgroups_in(dir.path(), args);
        assert_eq!(run.code, 1, "{args:?}: {}", run.stderr);
        // miette wraps the message; compare without the whitespace.
        let said: String = run.stderr.split_whitespace().collect();
        assert!(
            said.contains("breaksaplan'srules")
                && said.contains("[env-not-last]")
                && said.contains(&dropped),
            "{args:?}: {}",
            run.stderr
        );
    }
    assert!(
        !dir.path().join(".dbgroups/servers").exists(),
        "nothing was built"
    );
}

/// A planner plan with a warning note carries it in its report: a new group
/// replicating from a server whose own replication the same plan ends (the
/// shape the property tests found; docs/decisions.md).
#[test]
fn a_warning_note_goes_into_the_plans_report() {
    let before = r#"
application: shop
redis:
  groups:
    reporting:
      configuration: { version: "7.0" }
      replicate_from: cache
      servers:
        - server: { unique_name: rd-reporting-0 }
    cache:
      configuration: { version: "7.0" }
      servers:
        - server: { unique_name: rd-cache-0 }
"#;
    let after = r#"
application: shop
redis:
  groups:
    default:
      configuration: { version: "7.0" }
      replicate_from: reporting
      servers:
        - server: { unique_name: rd-default-0 }
    reporting:
      configuration: { version: "7.0" }
      servers:
        - server: { unique_name: rd-reporting-0 }
"#;
    let state = applied(before);
    let plan = plan(
        after,
        Some(&state),
        &Intents {
            add_groups: ["redis.default".parse::<GroupAddress>().expect("address")].into(),
            remove_groups: ["redis.cache".parse::<GroupAddress>().expect("address")].into(),
            ..Intents::default()
        },
    );
    let notes = lint(&plan);
    assert!(!notes.is_empty());
    assert!(notes.iter().all(|n| n.severity == Severity::Warning));
    for note in &notes {
        assert!(
            plan.report
                .warnings
                .contains(&format!("plan check: {note}")),
            "{:?}",
            plan.report.warnings
        );
    }
}

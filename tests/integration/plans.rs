//! Plan scenarios, each snapshotted in its text, Markdown and JSON
//! renderings (`snapshots/integration__plans__*.snap`). Recorded states are
//! made the way apply would leave them (`fake_apply`), with fake passwords
//! that no rendering may contain.

use std::collections::BTreeMap;

use dbgroups_plan::render::{graph, json, markdown, text};
use dbgroups_plan::{GroupAddress, Intents, ObservedFacts, Plan, ReplicationHealth, ServerHealth};
use dbgroups_state::AppState;
use insta::assert_snapshot;

use crate::common::{FAKE_PASSWORD_PREFIX, applied, plan_with};

/// A PostgreSQL group of a master and a slave, and a Redis master.
pub(crate) const BASE: &str = r#"
application: shop
postgresql:
  groups:
    default:
      configuration: { version: "15" }
      backups: { managed: true }
      servers:
        - server: { unique_name: pg-main }
        - server: { unique_name: pg-replica-1 }
redis:
  configuration: { version: "7.0" }
  servers:
    - server: { unique_name: redis-main }
"#;

/// BASE with a second PostgreSQL group, `reporting`, with `extra` in it.
fn with_reporting(extra: &str) -> String {
    BASE.replace(
        "redis:",
        &format!(
            "    reporting:\n      configuration: {{ version: \"15\" }}\n{extra}      servers:\n        - server: {{ unique_name: pg-report }}\nredis:"
        ),
    )
}

fn snapshot_all(name: &str, plan: &Plan) {
    let renderings = [
        ("text", text::render(plan)),
        ("markdown", markdown::render(plan)),
        ("json", json::render(plan)),
        ("dot", graph::dot(plan)),
        ("mermaid", graph::mermaid(plan)),
    ];
    for (format, rendering) in &renderings {
        assert!(
            !rendering.contains(FAKE_PASSWORD_PREFIX),
            "{name}: the {format} rendering shows a password"
        );
    }
    for (format, rendering) in renderings.iter().take(3) {
        assert_snapshot!(format!("{name}.{format}"), rendering);
    }
}

fn plan(text: &str, state: Option<&AppState>, intents: &Intents) -> Plan {
    plan_with(
        text,
        state,
        &BTreeMap::new(),
        &ObservedFacts::offline(),
        intents,
    )
    .0
}

fn add_group(address: &str) -> Intents {
    Intents {
        add_groups: [address.parse::<GroupAddress>().expect("address")].into(),
        ..Intents::default()
    }
}

#[test]
fn fresh_application() {
    let plan = plan(BASE, None, &Intents::default());
    assert_eq!(plan.changes.len(), 2);
    snapshot_all("fresh_application", &plan);
}

#[test]
fn scale_up_with_two_new_slaves_sharing_one_backup() {
    let state = applied(BASE);
    let manifest = BASE.replace(
        "        - server: { unique_name: pg-replica-1 }\n",
        "        - server: { unique_name: pg-replica-1 }\n        - server: { unique_name: pg-replica-2 }\n        - server: { unique_name: pg-replica-3 }\n",
    );
    let plan = plan(&manifest, Some(&state), &Intents::default());
    let backups = plan
        .steps
        .iter()
        .filter(|s| s.id.starts_with("backup:"))
        .count();
    assert_eq!(backups, 1, "one backup serves both new slaves");
    snapshot_all("scale_up", &plan);
}

#[test]
fn scale_up_without_managed_backups_is_blocked() {
    let manifest = BASE.replace("      backups: { managed: true }\n", "");
    let state = applied(&manifest);
    let grown = manifest.replace(
        "        - server: { unique_name: pg-replica-1 }\n",
        "        - server: { unique_name: pg-replica-1 }\n        - server: { unique_name: pg-replica-2 }\n",
    );
    let plan = plan(&grown, Some(&state), &Intents::default());
    assert!(!plan.has_changes());
    assert_eq!(plan.report.blocked.len(), 1);
    assert_snapshot!("scale_up_without_backups.text", text::render(&plan));
}

#[test]
fn new_group_without_and_with_add_group() {
    let state = applied(BASE);
    let manifest = with_reporting("");
    let without = plan(&manifest, Some(&state), &Intents::default());
    assert!(!without.has_changes());
    snapshot_all("new_group_without_flag", &without);
    let with = plan(&manifest, Some(&state), &add_group("postgresql.reporting"));
    assert_eq!(with.changes.len(), 1);
    snapshot_all("new_group_with_flag", &with);
}

#[test]
fn replication_between_groups() {
    let state = applied(&with_reporting(""));
    let plan = plan(
        &with_reporting("      replicate_from: default\n"),
        Some(&state),
        &Intents::default(),
    );
    assert_eq!(
        plan.destructive_changes().count(),
        1,
        "the replica's data is replaced"
    );
    snapshot_all("replication_between_groups", &plan);
}

#[test]
fn replication_between_applications() {
    let mut others = BTreeMap::new();
    others.insert("shop".to_string(), applied(BASE));
    let analytics = r#"
application: analytics
postgresql:
  groups:
    shop-copy:
      configuration: { version: "15" }
      replicate_from: { application: shop, group: default }
      servers:
        - server: { unique_name: analytics-pg }
"#;
    let (plan, _) = plan_with(
        analytics,
        None,
        &others,
        &ObservedFacts::offline(),
        &Intents::default(),
    );
    snapshot_all("replication_between_applications", &plan);
    // Without the source application's state, the group is not built.
    let (alone, _) = plan_with(
        analytics,
        None,
        &BTreeMap::new(),
        &ObservedFacts::offline(),
        &Intents::default(),
    );
    assert!(!alone.has_changes());
    assert_snapshot!(
        "replication_between_applications_missing_source.text",
        text::render(&alone)
    );
}

#[test]
fn disabling_replication() {
    let state = applied(&with_reporting("      replicate_from: default\n"));
    let plan = plan(&with_reporting(""), Some(&state), &Intents::default());
    snapshot_all("disable_replication", &plan);
}

#[test]
fn moving_the_primary_repoints_the_root_variables() {
    let state = applied(&with_reporting(""));
    let plan = plan(
        &with_reporting("      primary: true\n"),
        Some(&state),
        &Intents::default(),
    );
    let diff = plan.environment_diff().join("\n");
    assert!(
        diff.contains("- POSTGRESQL_PORT=21000") && diff.contains("+ POSTGRESQL_PORT=21002"),
        "{diff}"
    );
    snapshot_all("move_primary", &plan);
}

#[test]
fn an_import_into_a_new_group() {
    let state = applied(BASE);
    let manifest = BASE.replace(
        "redis:",
        "    archive:\n      configuration: { version: \"16\" }\n      import_from: default\n      servers:\n        - server: { unique_name: pg-archive }\nredis:",
    );
    let plan = plan(&manifest, Some(&state), &add_group("postgresql.archive"));
    snapshot_all("import", &plan);
}

#[test]
fn removing_a_server_without_and_with_its_flag() {
    let three = BASE.replace(
        "        - server: { unique_name: pg-replica-1 }\n",
        "        - server: { unique_name: pg-replica-1 }\n        - server: { unique_name: pg-replica-2 }\n",
    );
    let state = applied(&three);
    let without = plan(BASE, Some(&state), &Intents::default());
    assert!(!without.has_changes());
    snapshot_all("remove_server_without_flag", &without);
    let intents = Intents {
        remove_servers: ["pg-replica-2".to_string()].into(),
        ..Intents::default()
    };
    let with = plan(BASE, Some(&state), &intents);
    snapshot_all("remove_server_with_flag", &with);
}

#[test]
fn a_version_change_is_refused_with_how_to_do_it() {
    let state = applied(BASE);
    let plan = plan(
        &BASE.replace("version: \"15\"", "version: \"16\""),
        Some(&state),
        &Intents::default(),
    );
    assert!(!plan.has_changes());
    snapshot_all("refused_version_change", &plan);
}

#[test]
fn a_resync_from_an_observed_broken_slave() {
    let state = applied(BASE);
    let mut observed = ObservedFacts::offline();
    observed.refreshed = true;
    observed.servers.insert(
        "pg-replica-1".into(),
        ServerHealth {
            up: true,
            replication: Some(ReplicationHealth {
                streaming: false,
                lag_seconds: None,
                detail: Some("could not connect to the primary server".into()),
            }),
        },
    );
    observed.servers.insert(
        "redis-main".into(),
        ServerHealth {
            up: false,
            replication: None,
        },
    );
    let (plan, _) = plan_with(
        BASE,
        Some(&state),
        &BTreeMap::new(),
        &observed,
        &Intents::default(),
    );
    snapshot_all("resync_broken_slave", &plan);
}

#[test]
fn no_changes() {
    let state = applied(BASE);
    let plan = plan(BASE, Some(&state), &Intents::default());
    assert!(!plan.has_changes(), "{:?}", plan.changes);
    assert!(plan.steps.is_empty());
    snapshot_all("no_changes", &plan);
}

#[test]
fn an_unmanaged_group_is_kept_unless_removed_by_flag() {
    let state = applied(&with_reporting(""));
    let kept = plan(BASE, Some(&state), &Intents::default());
    assert!(!kept.has_changes());
    assert!(
        kept.report
            .warnings
            .iter()
            .any(|w| w.contains("postgresql.reporting is recorded but not in the manifest"))
    );
    let intents = Intents {
        remove_groups: ["postgresql.reporting".parse().expect("address")].into(),
        ..Intents::default()
    };
    let removed = plan(BASE, Some(&state), &intents);
    assert_snapshot!("remove_group_with_flag.text", text::render(&removed));
}

#[test]
fn intents_that_name_nothing_are_errors() {
    let state = applied(BASE);
    let manifest = crate::common::manifest(BASE);
    let intents = Intents {
        remove_servers: ["pg-main".to_string()].into(),
        ..Intents::default()
    };
    let err = dbgroups_plan::plan(&dbgroups_plan::PlanInput {
        manifest: &manifest,
        state: Some(&state),
        other_applications: &BTreeMap::new(),
        observed: &ObservedFacts::offline(),
        intents: &intents,
    })
    .expect_err("pg-main is still declared");
    assert_eq!(
        err.to_string(),
        "--remove-server pg-main: the manifest still declares it; delete it from the manifest first"
    );
}

#[test]
fn markdown_is_cut_to_the_comment_limit_with_a_note() {
    let plan = plan(BASE, None, &Intents::default());
    let full = markdown::render(&plan);
    let cut = markdown::render_within(&plan, full.chars().count() / 2);
    assert!(cut.chars().count() <= full.chars().count() / 2);
    assert!(cut.contains("Cut to fit a comment"), "{cut}");
    assert!(
        cut.starts_with("### dbgroups plan: `shop`"),
        "the summary stays"
    );
}

#[test]
fn the_same_inputs_give_the_same_plan_byte_for_byte() {
    let state = applied(&with_reporting(""));
    let manifest = with_reporting("      replicate_from: default\n      primary: true\n");
    let first = json::render(&plan(&manifest, Some(&state), &Intents::default()));
    for _ in 0..5 {
        assert_eq!(
            json::render(&plan(&manifest, Some(&state), &Intents::default())),
            first
        );
    }
}

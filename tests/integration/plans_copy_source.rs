//! Which server a scale up's backup copies (issue 19): in a refreshed plan,
//! a caught-up slave, so the master does no copy work; the master when no
//! slave is streaming and caught up, saying why; and, offline, the master
//! as ever.

use std::collections::BTreeMap;

use dbgroups_plan::render::text;
use dbgroups_plan::{
    ChangeKind, Intents, ObservedFacts, Plan, ReplicationHealth, ServerHealth, StepKind,
};
use insta::assert_snapshot;

use crate::common::{applied, plan_with};

const GROUP: &str = "application: shop\npostgresql:\n  configuration: { version: \"15\" }\n  backups: { managed: true }\n  servers:\n    - server: { unique_name: pg-main }\n    - server: { unique_name: pg-replica-1 }\n";

fn scaled() -> String {
    format!("{GROUP}    - server: {{ unique_name: pg-replica-2 }}\n")
}

fn replica(streaming: bool, lag: u64) -> ServerHealth {
    ServerHealth {
        up: true,
        replication: Some(ReplicationHealth {
            streaming,
            lag_seconds: Some(lag),
            detail: (!streaming).then(|| "could not connect to the primary server".into()),
            held_offset: None,
            reconnecting: false,
        }),
    }
}

fn master() -> ServerHealth {
    ServerHealth {
        up: true,
        replication: None,
    }
}

fn planned(observed: &ObservedFacts) -> Plan {
    planned_with(observed, &Intents::default())
}

fn planned_with(observed: &ObservedFacts, intents: &Intents) -> Plan {
    let state = applied(GROUP);
    plan_with(&scaled(), Some(&state), &BTreeMap::new(), observed, intents).0
}

fn refreshed(replica_health: ServerHealth) -> ObservedFacts {
    let mut observed = ObservedFacts::offline();
    observed.refreshed = true;
    observed.servers.insert("pg-main".into(), master());
    observed
        .servers
        .insert("pg-replica-1".into(), replica_health);
    observed
}

/// The backup step of the plan: its id, the server it copies, and why.
fn backup_of(plan: &Plan) -> (String, String, Option<String>) {
    plan.steps
        .iter()
        .find_map(|s| match &s.kind {
            StepKind::Backup { server, why, .. } => {
                Some((s.id.clone(), server.clone(), why.clone()))
            }
            _ => None,
        })
        .unwrap_or_else(|| panic!("no backup step in\n{}", text::render(plan)))
}

#[test]
fn a_refreshed_scale_up_copies_a_caught_up_slave() {
    let plan = planned(&refreshed(replica(true, 2)));
    let (id, server, why) = backup_of(&plan);
    assert_eq!(
        (id.as_str(), server.as_str()),
        ("backup:pg-replica-1", "pg-replica-1")
    );
    assert!(
        why.as_deref()
            .is_some_and(|w| w.contains("the master does no copy work")),
        "{why:?}"
    );
    // The new slave follows the master, not the slave it was copied from.
    assert!(plan.steps.iter().any(|s| matches!(
        &s.kind,
        StepKind::Enslave { server, master, .. } if server == "pg-replica-2" && master == "pg-main"
    )));
    assert!(matches!(
        &plan.changes[0].kind,
        ChangeKind::ScaleUp { copy_from: Some(c), .. } if c.server == "pg-replica-1"
    ));
    assert!(dbgroups_plan::lint::lint(&plan).is_empty());
    assert_snapshot!("scale_up_from_a_caught_up_slave.text", text::render(&plan));
}

#[test]
fn a_lagging_or_broken_slave_leaves_the_backup_to_the_master_saying_why() {
    let behind = planned(&refreshed(replica(true, 600)));
    let (id, _, why) = backup_of(&behind);
    assert_eq!(id, "backup:pg-main");
    assert!(
        why.as_deref()
            .is_some_and(|w| w.contains("no slave is caught up (pg-replica-1 is 600 s behind)")),
        "{why:?}"
    );
    let broken = planned(&refreshed(replica(false, 0)));
    let (id, _, why) = backup_of(&broken);
    assert_eq!(id, "backup:pg-main");
    assert!(
        why.as_deref()
            .is_some_and(|w| w.contains("pg-replica-1 is not streaming")),
        "{why:?}"
    );
}

#[test]
fn an_offline_scale_up_copies_the_master_as_before() {
    let (id, server, why) = backup_of(&planned(&ObservedFacts::offline()));
    assert_eq!(
        (id.as_str(), server.as_str(), why),
        ("backup:pg-main", "pg-main", None)
    );
}

/// A slave the user asked to re-synchronise holds data they want replaced:
/// it is no source, even when it answers as caught up.
#[test]
fn a_slave_being_resynchronised_is_not_copied() {
    let intents = Intents {
        resync: ["pg-replica-1".to_string()].into(),
        ..Intents::default()
    };
    let plan = planned_with(&refreshed(replica(true, 1)), &intents);
    let copied: Vec<&str> = plan
        .steps
        .iter()
        .filter_map(|s| match &s.kind {
            StepKind::Backup { server, .. } => Some(server.as_str()),
            _ => None,
        })
        .collect();
    assert!(!copied.contains(&"pg-replica-1"), "{copied:?}");
    assert!(copied.contains(&"pg-main"), "{copied:?}");
}

/// The MySQL family copies its master even when a slave is caught up: a
/// copy of a slave would record the slave's own binary log position, not
/// the master's it applied (`EngineRules::backup_from_slave`).
#[test]
fn a_mariadb_scale_up_copies_the_master() {
    let group = "application: shop\nmysql:\n  configuration: { engine: mariadb, version: \"10.11\" }\n  backups: { managed: true }\n  servers:\n    - server: { unique_name: db-main }\n    - server: { unique_name: db-replica-1 }\n";
    let state = applied(group);
    let mut observed = ObservedFacts::offline();
    observed.refreshed = true;
    observed.servers.insert("db-main".into(), master());
    observed
        .servers
        .insert("db-replica-1".into(), replica(true, 1));
    let plan = plan_with(
        &format!("{group}    - server: {{ unique_name: db-replica-2 }}\n"),
        Some(&state),
        &BTreeMap::new(),
        &observed,
        &Intents::default(),
    )
    .0;
    let (id, _, why) = backup_of(&plan);
    assert_eq!((id.as_str(), why), ("backup:db-main", None));
}

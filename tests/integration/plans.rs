//! Plan scenarios, each snapshotted in its text, Markdown and JSON
//! renderings (`snapshots/integration__plans__*.snap`). Recorded states are
//! made the way apply would leave them (`fake_apply`), with fake passwords
//! that no rendering may contain.

use std::collections::BTreeMap;

use dbgroups_manifest::DbType;
use dbgroups_plan::render::{graph, json, markdown, text};
use dbgroups_plan::{
    GroupAddress, Intents, ObservedFacts, Plan, ReplicationHealth, ServerHealth, StepKind,
};
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
    for (format, rendering) in &renderings {
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

/// A PostgreSQL group whose master is on an existing host.
const ON_HOSTS: &str = r#"
application: shop
postgresql:
  groups:
    default:
      configuration: { version: "15" }
      backups: { managed: true }
      servers:
        - server: { unique_name: pg-main, address: db-1.example }
"#;

/// Data moves host to host: a backup is taken on the host that restores
/// it, one per receiving host (the slaves on one host share it, and the
/// last of them takes it by rename), and one landing on the master's own
/// host keeps the plain name.
#[test]
fn a_backup_is_taken_on_each_host_that_restores_it() {
    let state = applied(ON_HOSTS);
    let manifest = format!(
        "{ON_HOSTS}        - server: {{ unique_name: pg-replica-2, address: db-2.example }}
        - server: {{ unique_name: pg-replica-3, address: db-2.example }}
        - server: {{ unique_name: pg-replica-4, address: db-3.example }}
        - server: {{ unique_name: pg-replica-5, address: db-1.example }}
"
    );
    let plan = plan(&manifest, Some(&state), &Intents::default());
    let restores: Vec<(String, String, String, bool)> = plan
        .steps
        .iter()
        .filter_map(|s| match &s.kind {
            StepKind::Restore {
                server,
                backup,
                takes_backup,
                ..
            } => Some((
                server.clone(),
                backup.step.clone(),
                backup.host.clone(),
                *takes_backup,
            )),
            _ => None,
        })
        .collect();
    let row = |server: &str, step: &str, host: &str, takes: bool| {
        (
            server.to_string(),
            step.to_string(),
            host.to_string(),
            takes,
        )
    };
    let mut sorted = restores.clone();
    sorted.sort();
    assert_eq!(
        sorted,
        [
            row(
                "pg-replica-2",
                "backup:pg-main@db-2.example",
                "db-2.example",
                false
            ),
            row(
                "pg-replica-3",
                "backup:pg-main@db-2.example",
                "db-2.example",
                true
            ),
            row(
                "pg-replica-4",
                "backup:pg-main@db-3.example",
                "db-3.example",
                true
            ),
            row("pg-replica-5", "backup:pg-main", "db-1.example", true),
        ]
    );
    let backups: Vec<(String, String, String)> = plan
        .steps
        .iter()
        .filter_map(|s| match &s.kind {
            StepKind::Backup { host, location, .. } => {
                Some((s.id.clone(), host.clone(), location.clone()))
            }
            _ => None,
        })
        .collect();
    assert_eq!(
        backups.len(),
        3,
        "one backup per receiving host: {backups:?}"
    );
    assert!(backups.contains(&(
        "backup:pg-main@db-3.example".into(),
        "db-3.example".into(),
        "backup-pg-main-on-db-3-example".into()
    )));
    // Each staged backup has its own disk check, on the host it lands on.
    let checks: Vec<&str> = plan
        .steps
        .iter()
        .filter(|s| matches!(s.kind, StepKind::DiskCheck { .. }))
        .map(|s| s.id.as_str())
        .collect();
    assert_eq!(checks.len(), 3, "{checks:?}");
    assert!(
        dbgroups_plan::lint::lint(&plan).is_empty(),
        "{:#?}",
        dbgroups_plan::lint::lint(&plan)
    );
    snapshot_all("scale_up_on_hosts", &plan);
}

/// Servers of the local provider listen on loopback only: a group on
/// existing hosts can neither replicate from nor import a group on this
/// machine, nor the other way round, whether the group is new or
/// recorded.
#[test]
fn replication_between_this_machine_and_existing_hosts_is_refused_at_plan_time() {
    let on_hosts = |extra: &str| {
        with_reporting(extra).replace(
            "unique_name: pg-report }",
            "unique_name: pg-report, address: db-9.example }",
        )
    };
    let state = applied(BASE);
    for extra in [
        "      replicate_from: default\n",
        "      import_from: default\n",
    ] {
        let manifest = on_hosts(extra);
        let plan = plan(&manifest, Some(&state), &add_group("postgresql.reporting"));
        assert!(!plan.has_changes(), "{extra}: {}", text::render(&plan));
        assert_eq!(plan.report.blocked.len(), 1, "{extra}");
        let blocked = &plan.report.blocked[0];
        assert_eq!(blocked.subject, "postgresql.reporting");
        assert!(
            blocked.reason.contains("pg-main is on this machine (the local provider, listening on loopback only), and this group is on an existing host"),
            "{}",
            blocked.reason
        );
    }
    // A recorded group on a host given replicate_from later.
    let recorded = applied(&on_hosts(""));
    let later = plan(
        &on_hosts("      replicate_from: default\n"),
        Some(&recorded),
        &Intents::default(),
    );
    assert!(!later.has_changes(), "{}", text::render(&later));
    assert!(
        later.report.blocked[0]
            .reason
            .contains("no data or replication can cross"),
        "{:?}",
        later.report.blocked
    );
    // Both on existing hosts: no refusal.
    let both = on_hosts("      replicate_from: default\n")
        .replace(
            "unique_name: pg-main }",
            "unique_name: pg-main, address: db-1.example }",
        )
        .replace(
            "unique_name: pg-replica-1 }",
            "unique_name: pg-replica-1, address: db-2.example }",
        );
    let state = applied(&both.replace("      replicate_from: default\n", ""));
    let hosted = plan(&both, Some(&state), &Intents::default());
    assert!(
        hosted.report.blocked.is_empty(),
        "{:?}",
        hosted.report.blocked
    );
    assert!(hosted.has_changes());
}

/// The MySQL family on existing hosts: a group there is planned, and a
/// scale up onto another host takes its dump on the new slave's host (the
/// dump tool runs there against the master), so the backup is keyed by
/// that host and its disk check is measured there.
#[test]
fn a_mysql_family_scale_up_across_hosts_dumps_on_the_receiving_host() {
    let base = "application: shop\nmysql:\n  configuration: { engine: mariadb, version: \"10.11\" }\n  backups: { managed: true }\n  servers:\n    - server: { unique_name: db-main, address: db-1.example }\n";
    let created = plan(base, None, &Intents::default());
    assert!(created.has_changes(), "{}", text::render(&created));
    assert!(
        created.report.blocked.is_empty(),
        "{:?}",
        created.report.blocked
    );

    let state = applied(base);
    let scaled =
        format!("{base}    - server: {{ unique_name: db-replica-1, address: db-2.example }}\n");
    let planned = plan(&scaled, Some(&state), &Intents::default());
    assert!(
        planned.report.blocked.is_empty(),
        "{:?}",
        planned.report.blocked
    );
    let rendered = text::render(&planned);
    assert!(
        rendered.contains("taken on db-2.example"),
        "the dump lands on the new slave's host:\n{rendered}"
    );
    let backups: Vec<(&str, &str)> = planned
        .steps
        .iter()
        .filter_map(|s| match &s.kind {
            StepKind::Backup { host, .. } => Some((s.id.as_str(), host.as_str())),
            _ => None,
        })
        .collect();
    assert_eq!(backups, [("dump:db-main@db-2.example", "db-2.example")]);
}

/// A MariaDB slave on its master's host is seeded from a physical copy
/// (`backup:`, mariadb-backup), moved into place by its restore, and the
/// enslave reads no dump; one on another host from a dump (a physical copy
/// between hosts is not built); a MySQL 8 group's slave from a dump
/// (Percona XtraBackup is not packaged by Debian).
#[test]
fn a_mariadb_slave_on_its_masters_host_is_seeded_physically_and_elsewhere_by_a_dump() {
    let base = "application: shop\nmysql:\n  configuration: { engine: mariadb, version: \"10.11\" }\n  backups: { managed: true }\n  servers:\n    - server: { unique_name: db-main, address: db-1.example }\n";
    let state = applied(base);
    let scaled = format!(
        "{base}    - server: {{ unique_name: db-replica-1, address: db-1.example }}\n    - server: {{ unique_name: db-replica-2, address: db-2.example }}\n"
    );
    let planned = plan(&scaled, Some(&state), &Intents::default());
    assert!(
        planned.report.blocked.is_empty(),
        "{:?}",
        planned.report.blocked
    );
    let step = |id: &str| {
        planned
            .steps
            .iter()
            .find(|s| s.id == id)
            .unwrap_or_else(|| panic!("no {id} in {}", text::render(&planned)))
    };
    assert!(matches!(
        &step("restore:db-replica-1").kind,
        StepKind::Restore { backup, takes_backup: true, .. } if backup.step == "backup:db-main"
    ));
    assert!(matches!(
        &step("enslave:db-replica-1").kind,
        StepKind::Enslave {
            from_backup: None,
            ..
        }
    ));
    assert!(matches!(
        &step("restore:db-replica-2").kind,
        StepKind::Restore { backup, .. } if backup.step == "dump:db-main@db-2.example"
    ));
    assert!(dbgroups_plan::lint::lint(&planned).is_empty());

    let mysql = base.replace(
        "engine: mariadb, version: \"10.11\"",
        "engine: mysql, version: \"8.4\"",
    );
    let state = applied(&mysql);
    let scaled =
        format!("{mysql}    - server: {{ unique_name: db-replica-1, address: db-1.example }}\n");
    let planned = plan(&scaled, Some(&state), &Intents::default());
    assert!(
        planned.steps.iter().any(|s| s.id == "dump:db-main"),
        "{}",
        text::render(&planned)
    );
}

/// An import between hosts is planned for every type: its backup is taken
/// on the importing host against the source's master (pg_dump,
/// mariadb-dump, `redis-cli --rdb`, mongodump), and named after that host.
#[test]
fn an_import_between_hosts_takes_its_backup_on_the_importing_host() {
    let base = |db: &str, version: &str| {
        format!(
            "application: shop\n{db}:\n  groups:\n    default:\n      configuration: {{ version: \"{version}\" }}\n      servers:\n        - server: {{ unique_name: {db}-main, address: db-1.example }}\n"
        )
    };
    let with_copy = |db: &str, version: &str| {
        format!(
            "{}    copy:\n      configuration: {{ version: \"{version}\" }}\n      import_from: default\n      servers:\n        - server: {{ unique_name: {db}-copy, address: db-2.example }}\n",
            base(db, version)
        )
    };
    for (db, version) in [("postgresql", "15"), ("redis", "7.0"), ("mongodb", "7.0")] {
        let state = applied(&base(db, version));
        let planned = plan(
            &with_copy(db, version),
            Some(&state),
            &add_group(&format!("{db}.copy")),
        );
        assert!(
            planned.report.blocked.is_empty(),
            "{db}: {:?}",
            planned.report.blocked
        );
        let backups: Vec<&str> = planned
            .steps
            .iter()
            .filter_map(|s| match &s.kind {
                StepKind::Backup { host, .. } => Some(host.as_str()),
                _ => None,
            })
            .collect();
        assert_eq!(
            backups,
            ["db-2.example"],
            "{db}: taken on the importing host"
        );
    }
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
                held_offset: None,
                reconnecting: false,
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

/// Observed facts for `plan_with`: each named server with its health.
fn observed(servers: &[(&str, ServerHealth)]) -> ObservedFacts {
    let mut facts = ObservedFacts::offline();
    facts.refreshed = true;
    facts.servers = servers
        .iter()
        .map(|(name, health)| (name.to_string(), health.clone()))
        .collect();
    facts
}

fn down() -> ServerHealth {
    ServerHealth {
        up: false,
        replication: None,
    }
}

fn broken_replication(up: bool, detail: &str) -> ServerHealth {
    ServerHealth {
        up,
        replication: Some(ReplicationHealth {
            streaming: false,
            lag_seconds: None,
            detail: Some(detail.into()),
            held_offset: None,
            reconnecting: false,
        }),
    }
}

fn kinds(plan: &Plan) -> Vec<String> {
    plan.changes.iter().map(|c| c.kind.summary()).collect()
}

#[test]
fn the_disk_check_runs_before_anything_of_a_seeding_is_built() {
    let state = applied(BASE);
    let manifest = BASE.replace(
        "        - server: { unique_name: pg-replica-1 }\n",
        "        - server: { unique_name: pg-replica-1 }\n        - server: { unique_name: pg-replica-2 }\n",
    );
    let checked = plan(&manifest, Some(&state), &Intents::default());
    let step = |id: &str| {
        checked
            .steps
            .iter()
            .find(|s| s.id == id)
            .unwrap_or_else(|| panic!("no step {id}"))
    };
    assert!(step("disk-check:backup:pg-main").depends_on.is_empty());
    for waits in ["provision:pg-replica-2", "backup:pg-main"] {
        assert_eq!(
            step(waits).depends_on,
            vec!["disk-check:backup:pg-main".to_string()],
            "{waits} waits for the disk check"
        );
    }
    let unchecked = plan(
        &manifest,
        Some(&state),
        &Intents {
            skip_disk_check: true,
            ..Intents::default()
        },
    );
    assert!(
        unchecked
            .steps
            .iter()
            .all(|s| !s.id.starts_with("disk-check")),
        "--skip-disk-check plans no check"
    );
    // Redis seeds by its own full sync: the check guards the new replica.
    let redis = BASE.replace(
        "    - server: { unique_name: redis-main }\n",
        "    - server: { unique_name: redis-main }\n    - server: { unique_name: redis-replica-1 }\n",
    );
    let redis_state = applied(&BASE.replace("redis:\n", "redis:\n  backups: { managed: true }\n"));
    let synced = plan(
        &redis.replace("redis:\n", "redis:\n  backups: { managed: true }\n"),
        Some(&redis_state),
        &Intents::default(),
    );
    let provision = synced
        .steps
        .iter()
        .find(|s| s.id == "provision:redis-replica-1")
        .expect("provisions");
    assert_eq!(provision.depends_on, vec!["disk-check:sync:redis-main"]);
    assert_snapshot!("disk_check_redis_sync.text", text::render(&synced));
}

#[test]
fn replication_between_groups_shows_the_variables_the_copy_brings() {
    let state = applied(&with_reporting(""));
    let plan = plan(
        &with_reporting("      replicate_from: default\n"),
        Some(&state),
        &Intents::default(),
    );
    let diff = plan.environment_diff();
    assert!(
        diff.contains(&"+ POSTGRESQL_REPORTING_PASSWORD=(sensitive) changed".to_string()),
        "the copied roles change the replica's password: {diff:?}"
    );
    assert!(
        plan.steps.iter().any(|s| s.id == "env:shop"),
        "the same apply rewrites the environment file"
    );
}

#[test]
fn a_slave_of_a_master_that_is_down_is_not_resynchronised() {
    let state = applied(BASE);
    let facts = observed(&[
        ("pg-main", down()),
        (
            "pg-replica-1",
            broken_replication(true, "could not connect to the primary server"),
        ),
    ]);
    let (plan, _) = plan_with(
        BASE,
        Some(&state),
        &BTreeMap::new(),
        &facts,
        &Intents::default(),
    );
    assert_eq!(kinds(&plan), vec!["start pg-main in postgresql.default"]);
    assert!(
        plan.report
            .warnings
            .iter()
            .any(|w| w.contains("pg-replica-1 is not judged while its master pg-main is down")),
        "{:?}",
        plan.report.warnings
    );
    assert_snapshot!("master_down.text", text::render(&plan));
    // Once the master runs, a slave still broken is re-synchronised.
    let facts = observed(&[(
        "pg-replica-1",
        broken_replication(true, "could not connect to the primary server"),
    )]);
    let (again, _) = plan_with(
        BASE,
        Some(&state),
        &BTreeMap::new(),
        &facts,
        &Intents::default(),
    );
    assert_eq!(
        kinds(&again),
        vec!["re-synchronise pg-replica-1 in postgresql.default"]
    );
}

#[test]
fn a_redis_master_down_while_its_replica_holds_data_is_not_just_started() {
    let manifest = BASE.replace(
        "    - server: { unique_name: redis-main }\n",
        "    - server: { unique_name: redis-main }\n    - server: { unique_name: redis-replica-1 }\n",
    );
    let state = applied(&manifest);
    let replica_holding = |offset| ServerHealth {
        up: true,
        replication: Some(ReplicationHealth {
            streaming: false,
            lag_seconds: None,
            detail: Some("master link down".into()),
            held_offset: Some(offset),
            reconnecting: false,
        }),
    };
    let facts = observed(&[
        ("redis-main", down()),
        ("redis-replica-1", replica_holding(918_204)),
    ]);
    let (held, _) = plan_with(
        &manifest,
        Some(&state),
        &BTreeMap::new(),
        &facts,
        &Intents::default(),
    );
    assert!(kinds(&held).is_empty(), "{:?}", kinds(&held));
    let blocked = &held.report.blocked[0];
    assert_eq!(blocked.subject, "redis-main");
    assert!(
        blocked.reason.contains("redis-replica-1 (offset 918204)")
            && blocked.reason.contains("drop what they hold"),
        "{}",
        blocked.reason
    );
    assert!(
        blocked.hint.contains("--restart-master redis-main"),
        "{}",
        blocked.hint
    );
    assert_snapshot!("redis_master_down.text", text::render(&held));
    // Accepted, the master alone is started, and the plan says what the
    // replica does.
    let accepted = Intents {
        restart_masters: ["redis-main".to_string()].into(),
        ..Intents::default()
    };
    let (started, _) = plan_with(&manifest, Some(&state), &BTreeMap::new(), &facts, &accepted);
    assert_eq!(kinds(&started), vec!["start redis-main in redis.default"]);
    assert!(
        started
            .report
            .warnings
            .iter()
            .any(|w| w.contains("--restart-master redis-main") && w.contains("redis-replica-1")),
        "{:?}",
        started.report.warnings
    );
    // A replica that is down holds nothing observed, and PostgreSQL's
    // replicas resume from their position: both start the master as before.
    let facts = observed(&[("redis-main", down()), ("redis-replica-1", down())]);
    let (both_down, _) = plan_with(
        &manifest,
        Some(&state),
        &BTreeMap::new(),
        &facts,
        &Intents::default(),
    );
    assert!(both_down.report.blocked.is_empty());
    assert!(
        kinds(&both_down).contains(&"start redis-main in redis.default".to_string()),
        "{:?}",
        kinds(&both_down)
    );
}

#[test]
fn a_replica_reconnecting_to_a_running_master_is_not_resynchronised() {
    let state = applied(BASE);
    let reconnecting = ServerHealth {
        up: true,
        replication: Some(ReplicationHealth {
            streaming: false,
            lag_seconds: None,
            detail: Some("error reconnecting to master".into()),
            held_offset: None,
            reconnecting: true,
        }),
    };
    let facts = observed(&[("pg-replica-1", reconnecting)]);
    let (plan, _) = plan_with(
        BASE,
        Some(&state),
        &BTreeMap::new(),
        &facts,
        &Intents::default(),
    );
    assert!(kinds(&plan).is_empty(), "{:?}", kinds(&plan));
    assert!(
        plan.report
            .warnings
            .iter()
            .any(|w| w.contains("pg-replica-1 is not re-synchronised: it is reconnecting")),
        "{:?}",
        plan.report.warnings
    );
    // Asked for, it is re-synchronised all the same.
    let asked = Intents {
        resync: ["pg-replica-1".to_string()].into(),
        ..Intents::default()
    };
    let (forced, _) = plan_with(BASE, Some(&state), &BTreeMap::new(), &facts, &asked);
    assert_eq!(
        kinds(&forced),
        vec!["re-synchronise pg-replica-1 in postgresql.default"]
    );
}

#[test]
fn a_stopped_replica_without_its_slot_is_resynchronised_not_started() {
    let state = applied(BASE);
    let facts = observed(&[(
        "pg-replica-1",
        broken_replication(
            false,
            "its replication slot pg_replica_1 no longer exists on its master pg-main",
        ),
    )]);
    let (plan, _) = plan_with(
        BASE,
        Some(&state),
        &BTreeMap::new(),
        &facts,
        &Intents::default(),
    );
    assert_eq!(
        kinds(&plan),
        vec!["re-synchronise pg-replica-1 in postgresql.default"],
        "a start would wait for streaming that cannot resume"
    );
    assert!(plan.steps.iter().all(|s| s.id != "start:pg-replica-1"));
}

#[test]
fn a_recorded_slave_listed_first_is_not_a_silent_master_change() {
    let state = applied(BASE);
    let swapped = BASE.replace(
        "        - server: { unique_name: pg-main }\n        - server: { unique_name: pg-replica-1 }\n",
        "        - server: { unique_name: pg-replica-1 }\n        - server: { unique_name: pg-main }\n",
    );
    let plan = plan(&swapped, Some(&state), &Intents::default());
    assert!(!plan.has_changes());
    assert_eq!(plan.report.blocked.len(), 1, "{:?}", plan.report);
    assert_snapshot!("slave_listed_first.text", text::render(&plan));
}

#[test]
fn an_engine_change_is_refused_without_recommending_a_cross_engine_import() {
    let mariadb = "application: shop\nmysql:\n  groups:\n    legacy:\n      configuration: { engine: mariadb, version: \"10.11\" }\n      servers:\n        - server: { unique_name: maria-main }\n";
    let state = applied(mariadb);
    let plan = plan(
        &mariadb.replace(
            "engine: mariadb, version: \"10.11\"",
            "engine: mysql, version: \"8.4\"",
        ),
        Some(&state),
        &Intents::default(),
    );
    let blocked = &plan.report.blocked[0];
    assert!(!blocked.hint.contains("import_from"), "{}", blocked.hint);
    assert!(
        blocked.reason.contains("from mariadb to mysql"),
        "{}",
        blocked.reason
    );
    // Across applications the manifest cannot see the source's engine, so
    // the plan refuses the import, naming each side by its own engine.
    let mut others = BTreeMap::new();
    others.insert("shop".to_string(), state);
    let importer = "application: next\nmysql:\n  groups:\n    fresh:\n      configuration: { engine: mysql, version: \"8.4\" }\n      import_from: { application: shop, group: legacy }\n      servers:\n        - server: { unique_name: mysql-main }\n";
    let (refused, _) = plan_with(
        importer,
        None,
        &others,
        &ObservedFacts::offline(),
        &Intents::default(),
    );
    assert!(!refused.has_changes());
    let reason = &refused.report.blocked[0].reason;
    assert!(
        reason.contains("the source runs mariadb while this group runs mysql")
            && !reason.contains("older release"),
        "{reason}"
    );
}

#[test]
fn replicating_from_a_replica_in_another_application_names_its_source() {
    let mut others = BTreeMap::new();
    let shop = with_reporting("      replicate_from: default\n");
    others.insert("shop".to_string(), applied(&shop));
    let analytics = "application: analytics\npostgresql:\n  groups:\n    copy:\n      configuration: { version: \"15\" }\n      replicate_from: { application: shop, group: reporting }\n      servers:\n        - server: { unique_name: analytics-pg }\n";
    let (plan, _) = plan_with(
        analytics,
        None,
        &others,
        &ObservedFacts::offline(),
        &Intents::default(),
    );
    let blocked = &plan.report.blocked[0];
    assert!(
        blocked
            .reason
            .contains("shop/postgresql.reporting is itself a replica of shop/postgresql.default"),
        "{}",
        blocked.reason
    );
    assert!(!blocked.hint.contains("first"), "{}", blocked.hint);
    assert!(
        blocked.hint.contains("group: default"),
        "the hint names the source: {}",
        blocked.hint
    );
}

#[test]
fn an_unknown_group_in_another_application_gets_that_applications_groups() {
    let mut others = BTreeMap::new();
    let shop = with_reporting("      replicate_from: default\n");
    others.insert("shop".to_string(), applied(&shop));
    let analytics = "application: analytics\npostgresql:\n  groups:\n    copy:\n      configuration: { version: \"15\" }\n      replicate_from: { application: shop, group: defualt }\n      servers:\n        - server: { unique_name: analytics-pg }\n";
    let (plan, _) = plan_with(
        analytics,
        None,
        &others,
        &ObservedFacts::offline(),
        &Intents::default(),
    );
    assert!(!plan.has_changes());
    let blocked = &plan.report.blocked[0];
    assert!(
        blocked
            .reason
            .contains("application \"shop\" has no postgresql group \"defualt\""),
        "{}",
        blocked.reason
    );
    assert!(
        blocked.hint.contains("did you mean \"default\"?")
            && blocked
                .hint
                .contains("its postgresql groups are: default, reporting"),
        "{}",
        blocked.hint
    );
    assert!(!blocked.hint.contains("first"), "{}", blocked.hint);
}

#[test]
fn destroy_says_why_each_group_goes() {
    let state = applied(BASE);
    let empty = "application: shop\n";
    let intents = Intents {
        remove_groups: state
            .groups
            .iter()
            .map(|g| GroupAddress::new(g.db_type, g.name.clone()))
            .collect(),
        destroy: true,
        ..Intents::default()
    };
    let (plan, _) = plan_with(
        empty,
        Some(&state),
        &BTreeMap::new(),
        &ObservedFacts::offline(),
        &intents,
    );
    assert!(plan.has_changes());
    for change in &plan.changes {
        assert!(
            !change.reason.contains("--remove-group"),
            "{}",
            change.reason
        );
    }
    assert!(
        plan.changes
            .iter()
            .any(|c| c.reason == "`destroy --app shop` removes every group of the application")
    );
}

#[test]
fn destroy_removes_a_group_following_another_before_the_group_it_follows() {
    let manifest = with_reporting("      replicate_from: default\n");
    let state = applied(&manifest);
    let intents = Intents {
        remove_groups: state
            .groups
            .iter()
            .map(|g| GroupAddress::new(g.db_type, g.name.clone()))
            .collect(),
        destroy: true,
        ..Intents::default()
    };
    let plan = plan("application: shop\n", Some(&state), &intents);
    // Every step that must come before `id`, following depends_on.
    let before = |id: &str| {
        let mut seen = std::collections::BTreeSet::new();
        let mut queue = vec![id.to_string()];
        while let Some(next) = queue.pop() {
            let step = plan.steps.iter().find(|s| s.id == next).expect("step");
            for dep in &step.depends_on {
                if seen.insert(dep.clone()) {
                    queue.push(dep.clone());
                }
            }
        }
        seen
    };
    assert!(
        before("remove:pg-main").contains("remove:pg-report"),
        "pg-report replicates from pg-main, so it goes first: {:?}",
        before("remove:pg-main")
    );
    assert!(!before("remove:pg-report").contains("remove:pg-main"));
}

#[test]
fn a_resync_of_a_group_following_another_application_follows_that_application() {
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
    let (_, expected) = plan_with(
        analytics,
        None,
        &others,
        &ObservedFacts::offline(),
        &Intents::default(),
    );
    let state = crate::common::fake_apply(&expected, "lineage-analytics");
    let intents = Intents {
        resync: ["analytics-pg".to_string()].into(),
        ..Intents::default()
    };
    let (plan, _) = plan_with(
        analytics,
        Some(&state),
        &others,
        &ObservedFacts::offline(),
        &intents,
    );
    let enslave = plan
        .steps
        .iter()
        .find(|s| s.id == "enslave:analytics-pg")
        .expect("the re-sync enslaves analytics-pg again");
    assert!(
        matches!(
            &enslave.kind,
            StepKind::Enslave { master, master_application, .. }
                if master == "pg-main" && master_application == "shop"
        ),
        "{:?}",
        enslave.kind
    );
    let restore = plan
        .steps
        .iter()
        .find(|s| s.id == "restore:analytics-pg")
        .expect("restore");
    assert!(
        matches!(&restore.kind, StepKind::Restore { backup, .. } if backup.source.application == "shop"),
        "{:?}",
        restore.kind
    );
}

/// `allow_from` on a group with servers on hosts is a change of its own,
/// reviewed as an `allow` step after the servers it reaches are built; a
/// change of the networks shows both lists; a group on this machine has
/// none (its servers listen on loopback). (A type without access rules on
/// hosts would be refused rather than left open; every type has them now.)
#[test]
fn allow_from_is_planned_as_its_own_step_and_refused_where_not_built() {
    let manifest = |networks: &str| {
        format!(
            "application: shop\npostgresql:\n  allow_from: [{networks}]\n  backups: {{ managed: true }}\n  servers:\n    - server: {{ unique_name: pg-main, address: db-1.example }}\n    - server: {{ unique_name: pg-replica-1, address: db-2.example }}\n"
        )
    };
    let created = plan(&manifest("10.0.1.0/24"), None, &Intents::default());
    let allow = created
        .steps
        .iter()
        .find(|s| s.id == "allow:postgresql.default")
        .unwrap_or_else(|| panic!("an allow step: {}", text::render(&created)));
    assert_eq!(
        allow.kind,
        StepKind::Allow {
            group: GroupAddress::new(DbType::Postgresql, "default"),
            servers: vec!["pg-main".into(), "pg-replica-1".into()],
            networks: vec!["10.0.1.0/24".into()],
            previous: vec![],
        }
    );
    for server in ["pg-main", "pg-replica-1"] {
        assert!(
            created
                .steps
                .iter()
                .any(|s| allow.depends_on.contains(&s.id) && s.kind.server() == Some(server)),
            "the allow step waits for {server}: {:?}",
            allow.depends_on
        );
    }
    let state = applied(&manifest("10.0.1.0/24"));
    assert_eq!(state.groups[0].allow_from, ["10.0.1.0/24"]);
    let unchanged = plan(&manifest("10.0.1.0/24"), Some(&state), &Intents::default());
    assert!(!unchanged.has_changes(), "{}", text::render(&unchanged));
    let moved = plan(
        &manifest("10.0.2.0/24, 192.0.2.7"),
        Some(&state),
        &Intents::default(),
    );
    let rendered = text::render(&moved);
    assert!(
        rendered.contains(
            "let clients from 10.0.2.0/24, 192.0.2.7/32 connect to postgresql.default (was: 10.0.1.0/24)"
        ),
        "{rendered}"
    );
    assert_eq!(
        moved
            .steps
            .iter()
            .map(|s| s.id.as_str())
            .collect::<Vec<_>>(),
        ["allow:postgresql.default"],
        "only the rules change"
    );

    let here = "application: shop\npostgresql:\n  allow_from: [10.0.1.0/24]\n  servers:\n    - server: { unique_name: pg-main }\n";
    let local = plan(here, None, &Intents::default());
    assert!(
        local.steps.iter().all(|s| !s.id.starts_with("allow:")),
        "{}",
        text::render(&local)
    );

    // The MySQL family restricts its accounts by host: planned the same.
    let mariadb = |networks: &str| {
        format!(
            "application: shop\nmysql:\n  configuration: {{ engine: mariadb, version: \"10.11\" }}\n  allow_from: [{networks}]\n  servers:\n    - server: {{ unique_name: db-main, address: db-1.example }}\n"
        )
    };
    let allowed = plan(&mariadb("10.0.1.0/24"), None, &Intents::default());
    assert!(
        allowed.steps.iter().any(|s| s.id == "allow:mysql.default"),
        "{}",
        text::render(&allowed)
    );
    // Its accounts take IPv6 clients one address at a time.
    let whole_v6 = plan(&mariadb("\"2001:db8::/64\""), None, &Intents::default());
    assert!(
        whole_v6.report.blocked.iter().any(|b| b.reason
            == "mysql.default allows 2001:db8::/64: mysql accounts take IPv6 clients one address at a time"),
        "{:?}",
        whole_v6.report.blocked
    );
    let one_v6 = plan(&mariadb("\"2001:db8::7/128\""), None, &Intents::default());
    assert!(
        one_v6.report.blocked.is_empty(),
        "{:?}",
        one_v6.report.blocked
    );
    // MongoDB has no rules of its own: the host's firewall, as Redis's,
    // which takes whole IPv6 networks.
    let mongodb = |networks: &str| {
        format!(
            "application: shop\nmongodb:\n  allow_from: [{networks}]\n  servers:\n    - server: {{ unique_name: docs-main, address: db-1.example }}\n"
        )
    };
    for networks in ["10.0.1.0/24", "\"2001:db8::/64\""] {
        let allowed = plan(&mongodb(networks), None, &Intents::default());
        assert!(
            allowed.report.blocked.is_empty()
                && allowed
                    .steps
                    .iter()
                    .any(|s| s.id == "allow:mongodb.default"),
            "{networks}: {:?}\n{}",
            allowed.report.blocked,
            text::render(&allowed)
        );
    }
}

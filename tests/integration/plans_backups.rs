//! `import_from: { group, backup: latest | ID }` at plan time (issue 20):
//! the backup is judged from the source's records in the state, and one
//! that is missing, never verified or failed is refused with what to run;
//! a verified one is fetched from its store instead of a new backup.

use std::collections::BTreeMap;

use dbgroups_manifest::Engine;
use dbgroups_plan::render::text;
use dbgroups_plan::{GroupAddress, Intents, ObservedFacts, Plan};
use dbgroups_state::{AppState, BackupRecord, ManagedBackup, Verification};
use insta::assert_snapshot;

use crate::common::{applied, plan_with};
use crate::plans::BASE;

fn importing(backup: &str) -> String {
    BASE.replace(
        "redis:",
        &format!(
            "    archive:\n      configuration: {{ version: \"15\" }}\n      import_from: {{ group: default, backup: {backup} }}\n      servers:\n        - server: {{ unique_name: pg-archive }}\nredis:"
        ),
    )
}

fn record(id: &str, taken_at: &str, verification: Verification) -> BackupRecord {
    BackupRecord {
        id: id.into(),
        group: "postgresql.default".into(),
        server: "pg-replica-1".into(),
        path: format!("/var/backups/dbgroups/shop/postgresql.default/{id}.tar"),
        size_bytes: 42 * 1024 * 1024,
        taken_at: taken_at.into(),
        managed: Some(ManagedBackup {
            engine: Engine::Postgresql,
            version: "15".into(),
            from_master: false,
            source_reason: "a caught-up slave".into(),
            started_at: taken_at.into(),
            finished_at: taken_at.into(),
            sha256: "0".repeat(64),
            position: Some("LSN 0/3000028".into()),
            store_address: None,
            store_ssh: BTreeMap::new(),
            summary: BTreeMap::new(),
            summary_exact: true,
            verification,
        }),
    }
}

fn plan(manifest: &str, state: &AppState) -> Plan {
    plan_at(manifest, state, None)
}

fn plan_at(manifest: &str, state: &AppState, now: Option<u64>) -> Plan {
    let observed = ObservedFacts {
        now,
        ..ObservedFacts::offline()
    };
    let intents = Intents {
        add_groups: ["postgresql.archive"
            .parse::<GroupAddress>()
            .expect("address")]
        .into(),
        ..Intents::default()
    };
    plan_with(manifest, Some(state), &BTreeMap::new(), &observed, &intents).0
}

fn blocked_reason(plan: &Plan) -> (String, String) {
    let blocked = plan
        .report
        .blocked
        .iter()
        .find(|b| b.subject == "postgresql.archive")
        .expect("the import is blocked");
    (blocked.reason.clone(), blocked.hint.clone())
}

#[test]
fn an_import_from_a_missing_backup_is_refused_with_what_to_run() {
    let state = applied(BASE);
    let (reason, hint) = blocked_reason(&plan(&importing("latest"), &state));
    assert!(
        reason.contains("has no recorded managed backup"),
        "{reason}"
    );
    assert!(
        hint.contains("dbgroups backup run --group postgresql.default --verify"),
        "{hint}"
    );
    let (reason, _) = blocked_reason(&plan(&importing("20261201t000000z-0000"), &state));
    assert!(
        reason.contains("no recorded managed backup 20261201t000000z-0000"),
        "{reason}"
    );
}

#[test]
fn an_import_from_an_unverified_or_failed_backup_is_refused() {
    let mut state = applied(BASE);
    state.backups.push(record(
        "20261206t020000z-aaaa",
        "2026-12-06T02:00:41.000Z",
        Verification::Unverified,
    ));
    let unverified = plan(&importing("latest"), &state);
    let (reason, hint) = blocked_reason(&unverified);
    assert!(reason.contains("was never verified"), "{reason}");
    assert_eq!(
        hint,
        "run `dbgroups backup verify 20261206t020000z-aaaa` first"
    );
    assert_snapshot!(
        "import_from_an_unverified_backup.text",
        text::render(&unverified)
    );

    state.backups[0]
        .managed
        .as_mut()
        .expect("managed")
        .verification = Verification::Failed {
        at: "2026-12-06T03:00:00.000Z".into(),
        reason: "its SHA-256 differs".into(),
    };
    let (reason, _) = blocked_reason(&plan(&importing("20261206t020000z-aaaa"), &state));
    assert!(
        reason.contains("failed verification: its SHA-256 differs"),
        "{reason}"
    );
}

fn verified(id: &str, taken_at: &str) -> BackupRecord {
    record(
        id,
        taken_at,
        Verification::Passed {
            at: taken_at.into(),
        },
    )
}

/// 2026-12-06T14:00:41Z: twelve hours after the newest backup below.
const NOON_AFTER: u64 = 1_796_565_641;

#[test]
fn latest_is_the_newest_verified_backup_fetched_instead_of_a_new_backup() {
    let mut state = applied(BASE);
    state.backups.push(verified(
        "20261205t020000z-bbbb",
        "2026-12-05T02:00:41.000Z",
    ));
    state.backups.push(verified(
        "20261206t020000z-cccc",
        "2026-12-06T02:00:41.000Z",
    ));
    state.backups.push(record(
        "20261206t030000z-aaaa",
        "2026-12-06T03:00:41.000Z",
        Verification::Unverified,
    ));
    let planned = plan_at(&importing("latest"), &state, Some(NOON_AFTER));
    assert!(
        planned.report.blocked.is_empty(),
        "{:?}",
        planned.report.blocked
    );
    let kinds: Vec<(&str, &str)> = planned
        .steps
        .iter()
        .map(|s| (s.id.as_str(), s.kind.verb()))
        .collect();
    assert!(
        kinds.contains(&("fetch:20261206t020000z-cccc", "fetch")),
        "{kinds:?}"
    );
    // No new backup of the source: its servers do no work.
    assert!(
        !kinds
            .iter()
            .any(|(_, verb)| *verb == "backup" || *verb == "dump"),
        "{kinds:?}"
    );
    let restore = planned
        .steps
        .iter()
        .find(|s| s.id == "restore:pg-archive")
        .expect("the import restores");
    assert!(
        restore
            .depends_on
            .contains(&"fetch:20261206t020000z-cccc".to_string()),
        "{:?}",
        restore.depends_on
    );
    let shown = text::render(&planned);
    assert!(
        shown.contains("managed backup 20261206t020000z-cccc (taken 2026-12-06T02:00:41.000Z, 12 hours old, 42.0 MiB, from pg-replica-1)"),
        "{shown}"
    );
    assert_snapshot!("import_from_a_managed_backup.text", shown);
    assert!(dbgroups_plan::lint::lint(&planned).is_empty());
}

#[test]
fn a_managed_backup_of_another_version_or_in_another_hosts_store_is_refused() {
    let mut state = applied(BASE);
    let mut older = verified("20261206t020000z-cccc", "2026-12-06T02:00:41.000Z");
    older.managed.as_mut().expect("managed").version = "14".into();
    state.backups.push(older);
    let (reason, hint) = blocked_reason(&plan(&importing("latest"), &state));
    assert!(
        reason.contains("is postgresql 14, and the group is postgresql 15"),
        "{reason}"
    );
    assert!(hint.contains("remove `backup:`"), "{hint}");

    state.backups[0].managed.as_mut().expect("managed").version = "15".into();
    state.backups[0]
        .managed
        .as_mut()
        .expect("managed")
        .store_address = Some("198.18.0.9".into());
    let (reason, hint) = blocked_reason(&plan(&importing("latest"), &state));
    assert!(
        reason.contains("is in a store on 198.18.0.9, and the group's master is on local"),
        "{reason}"
    );
    assert!(
        hint.contains("put the group's master on 198.18.0.9"),
        "{hint}"
    );
}

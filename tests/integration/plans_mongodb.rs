//! MongoDB's plan shape, from its engine rules: members join by initial
//! sync (no backup step), and a replica set always has an odd number of
//! members, dbgroups adding one when the manifest declares an even count.

use std::collections::BTreeMap;

use dbgroups_plan::render::text;
use dbgroups_plan::{Intents, ObservedFacts, Plan, StepKind};
use dbgroups_state::AppState;
use insta::assert_snapshot;

use crate::common::{FAKE_PASSWORD_PREFIX, applied, fake_apply, plan_with};

/// A MongoDB group declaring `servers`, plus the managed backups a scale
/// up needs.
fn manifest(servers: &[&str]) -> String {
    let mut text = String::from(
        "application: shop\nmongodb:\n  configuration: { version: \"7.0\" }\n  backups: { managed: true }\n  servers:\n",
    );
    for server in servers {
        text.push_str(&format!("    - server: {{ unique_name: {server} }}\n"));
    }
    text
}

fn plan(text: &str, state: Option<&AppState>) -> (Plan, AppState) {
    plan_with(
        text,
        state,
        &BTreeMap::new(),
        &ObservedFacts::offline(),
        &Intents::default(),
    )
}

fn members(state: &AppState) -> Vec<String> {
    state
        .groups
        .iter()
        .flat_map(|g| g.servers.iter().map(|s| s.unique_name.clone()))
        .collect()
}

fn rendered(plan: &Plan) -> String {
    let text = text::render(plan);
    assert!(!text.contains(FAKE_PASSWORD_PREFIX), "a password is shown");
    text
}

#[test]
fn a_new_group_of_two_gets_a_third_member_and_says_so() {
    let (plan, expected) = plan(&manifest(&["mongo-a", "mongo-b"]), None);
    assert_eq!(
        members(&expected),
        ["mongo-a", "mongo-b", "default-odd-member"]
    );
    assert!(
        plan.changes[0]
            .reason
            .contains("default-odd-member is added by dbgroups (not declared) so the replica set has an odd number of members"),
        "{}",
        plan.changes[0].reason
    );
    assert!(
        plan.steps
            .iter()
            .all(|s| !matches!(s.kind, StepKind::Backup { .. } | StepKind::Restore { .. })),
        "members copy their data by initial sync, not from a backup"
    );
    let joins = plan
        .steps
        .iter()
        .filter(|s| matches!(&s.kind, StepKind::Enslave { master, .. } if master == "mongo-a"))
        .count();
    assert_eq!(joins, 2, "both other members join the first one's set");
    assert!(
        expected.environment.contains_key("MONGODB_ADDRESSES"),
        "the replica set's members are in the environment"
    );
    assert_snapshot!("mongodb_new_even_group.text", rendered(&plan));
}

#[test]
fn scaling_one_member_to_two_adds_two() {
    let state = applied(&manifest(&["mongo-a"]));
    let (plan, expected) = plan(&manifest(&["mongo-a", "mongo-b"]), Some(&state));
    assert_eq!(
        members(&expected),
        ["mongo-a", "mongo-b", "default-odd-member"]
    );
    assert_snapshot!("mongodb_scale_up_to_even.text", rendered(&plan));
    // Applied, the next plan has nothing to do.
    let after = fake_apply(&expected, "lineage-test");
    let (again, _) = plan_with(
        &manifest(&["mongo-a", "mongo-b"]),
        Some(&after),
        &BTreeMap::new(),
        &ObservedFacts::offline(),
        &Intents::default(),
    );
    assert!(!again.has_changes(), "{}", text::render(&again));
}

#[test]
fn declaring_a_third_server_retires_the_added_member() {
    let state = applied(&manifest(&["mongo-a", "mongo-b"]));
    assert_eq!(members(&state).len(), 3);
    let (plan, expected) = plan(&manifest(&["mongo-a", "mongo-b", "mongo-c"]), Some(&state));
    assert_eq!(members(&expected), ["mongo-a", "mongo-b", "mongo-c"]);
    let removed: Vec<_> = plan
        .steps
        .iter()
        .filter_map(|s| match &s.kind {
            StepKind::Remove { server } => Some(server.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(removed, ["default-odd-member"]);
    assert_snapshot!("mongodb_odd_again.text", rendered(&plan));
}

#[test]
fn the_added_member_never_takes_a_declared_name() {
    let text = manifest(&["mongo-a", "default-odd-member"]);
    let (_, expected) = plan(&text, None);
    assert_eq!(
        members(&expected),
        ["mongo-a", "default-odd-member", "default-odd-member-2"]
    );
}

/// Declared names are unique without regard to case, so the added member
/// must not differ from one only by case either.
#[test]
fn the_added_member_never_takes_a_declared_name_in_another_case() {
    let text = manifest(&["mongo-a", "Default-Odd-Member"]);
    let (_, expected) = plan(&text, None);
    assert_eq!(
        members(&expected),
        ["mongo-a", "Default-Odd-Member", "default-odd-member-2"]
    );
}

#[test]
fn an_odd_group_is_left_as_declared() {
    let (_, expected) = plan(&manifest(&["mongo-a", "mongo-b", "mongo-c"]), None);
    assert_eq!(members(&expected), ["mongo-a", "mongo-b", "mongo-c"]);
    let (_, single) = plan(&manifest(&["mongo-a"]), None);
    assert_eq!(members(&single), ["mongo-a"]);
}

/// Only voters count for the odd rule, and only seven members vote: eight
/// declared servers have seven voters, so nothing is added; six get a
/// seventh.
#[test]
fn the_odd_rule_counts_only_the_seven_voters() {
    let eight: Vec<String> = (1..=8).map(|i| format!("mongo-{i}")).collect();
    let names: Vec<&str> = eight.iter().map(String::as_str).collect();
    let (_, expected) = plan(&manifest(&names), None);
    assert_eq!(members(&expected), eight, "eight servers have 7 voters");
    let (_, expected) = plan(&manifest(&names[..6]), None);
    assert_eq!(members(&expected).len(), 7);
    assert_eq!(members(&expected)[6], "default-odd-member");
}

/// A replica set has at most 50 members: the 51st server is refused when
/// the manifest is validated, at its line.
#[test]
fn more_than_fifty_servers_are_refused_at_validation() {
    let many: Vec<String> = (1..=51).map(|i| format!("mongo-{i}")).collect();
    let names: Vec<&str> = many.iter().map(String::as_str).collect();
    let diagnostics = crate::common::diagnose(&manifest(&names));
    assert!(
        diagnostics.contains("manifest.yml:56:") && diagnostics.contains("error[too-many-members]: group mongodb.default declares 51 servers, but a MongoDB replica set has at most 50 members"),
        "{diagnostics}"
    );
    let fifty = crate::common::diagnose(&manifest(&names[..50]));
    assert!(!fifty.contains("too-many-members"), "{fifty}");
}

/// `--resync` of a member: its enslave says it is a re-sync, so the engine
/// empties the member's data before the initial sync; a scale up's
/// enslave does not (a member in STARTUP2 is never wiped for joining).
#[test]
fn only_a_resync_enslave_empties_the_member() {
    let text = manifest(&["mongo-a", "mongo-b", "mongo-c"]);
    let state = applied(&text);
    let intents = Intents {
        resync: ["mongo-b".to_string()].into(),
        ..Intents::default()
    };
    let (resync, _) = plan_with(
        &text,
        Some(&state),
        &BTreeMap::new(),
        &ObservedFacts::offline(),
        &intents,
    );
    let enslaves: Vec<(&str, bool)> = resync
        .steps
        .iter()
        .filter_map(|s| match &s.kind {
            StepKind::Enslave { server, resync, .. } => Some((server.as_str(), *resync)),
            _ => None,
        })
        .collect();
    assert_eq!(enslaves, [("mongo-b", true)]);
    let json = serde_json::to_string(&resync.steps).expect("serialises");
    assert!(json.contains("\"resync\":true"), "{json}");

    let (create, _) = plan(&text, None);
    assert!(
        create
            .steps
            .iter()
            .all(|s| !matches!(s.kind, StepKind::Enslave { resync: true, .. })),
        "a new member is not a re-sync"
    );
    let json = serde_json::to_string(&create.steps).expect("serialises");
    assert!(!json.contains("resync"), "written only when true: {json}");
}

/// The application's user lives in `admin`, so the URL names it as
/// `authSource`: after an import from another application the URL's
/// database is the source's, where the user is not.
#[test]
fn the_url_names_the_users_database() {
    let state = applied(&manifest(&["mongo-a"]));
    let url = state
        .environment
        .get("MONGODB_URL")
        .cloned()
        .unwrap_or_default();
    assert!(
        url.contains("?replicaSet=shop-default&authSource=admin"),
        "{url}"
    );
    // A group made before its user moved to `admin` keeps it in its own
    // database: its URL, unchanged, names no authSource, and a refreshed
    // plan changes no variable.
    let mut older = state.clone();
    for credentials in older.credentials.values_mut() {
        credentials.auth_database = None;
    }
    older.environment = dbgroups_plan::env::variables(&older);
    let url = &older.environment["MONGODB_URL"];
    assert!(
        url.ends_with("?replicaSet=shop-default") && !url.contains("authSource"),
        "{url}"
    );
    let (plan, _) = crate::common::plan_with(
        &manifest(&["mongo-a"]),
        Some(&older),
        &std::collections::BTreeMap::new(),
        &dbgroups_plan::ObservedFacts::offline(),
        &dbgroups_plan::Intents::default(),
    );
    assert!(
        !plan.has_changes(),
        "{}",
        dbgroups_plan::render::text::render(&plan)
    );
}

/// mongorestore guarantees nothing across major versions, least of all
/// the oplog it replays: an import from 7.0 into 8.0 is refused.
#[test]
fn an_import_across_release_series_is_refused() {
    let text = "application: shop\nmongodb:\n  groups:\n    old:\n      configuration: { version: \"7.0\" }\n      servers:\n        - server: { unique_name: mongo-old }\n    new:\n      configuration: { version: \"8.0\" }\n      import_from: old\n      servers:\n        - server: { unique_name: mongo-new }\n";
    let diagnostics = crate::common::diagnose(text);
    assert!(
        diagnostics.contains("error[incompatible-versions]")
            && diagnostics.contains("same release series"),
        "{diagnostics}"
    );
    let same = text.replace("\"8.0\"", "\"7.0\"");
    assert!(
        !crate::common::diagnose(&same).contains("incompatible-versions"),
        "same series is fine"
    );
}

fn opted_out(servers: &[&str]) -> String {
    manifest(servers).replace(
        "  backups: { managed: true }\n",
        "  backups: { managed: true }\n  add_odd_member: false\n",
    )
}

/// `add_odd_member: false`: no undeclared member; the last declared server
/// joins with `votes: 0, priority: 0` (the manual's alternative), and the
/// plan says so.
#[test]
fn opting_out_makes_the_last_declared_server_non_voting() {
    let (plan, expected) = plan(&opted_out(&["mongo-a", "mongo-b"]), None);
    assert_eq!(members(&expected), ["mongo-a", "mongo-b"]);
    let joins: Vec<(&str, bool)> = plan
        .steps
        .iter()
        .filter_map(|s| match &s.kind {
            StepKind::Enslave {
                server, non_voting, ..
            } => Some((server.as_str(), *non_voting)),
            _ => None,
        })
        .collect();
    assert_eq!(joins, [("mongo-b", true)]);
    assert!(
        plan.changes[0]
            .reason
            .contains("mongo-b joins without a vote (votes: 0, priority: 0)"),
        "{}",
        plan.changes[0].reason
    );
    assert_snapshot!("mongodb_new_even_group_opted_out.text", rendered(&plan));
    // An odd count needs nothing: every member votes.
    let (odd, _) = self::plan(&opted_out(&["mongo-a", "mongo-b", "mongo-c"]), None);
    assert!(odd.steps.iter().all(|s| !matches!(
        s.kind,
        StepKind::Enslave {
            non_voting: true,
            ..
        }
    )));
}

/// Opting out on a group that has the added member removes it.
#[test]
fn opting_out_later_retires_the_added_member() {
    let state = applied(&manifest(&["mongo-a", "mongo-b"]));
    assert_eq!(members(&state).len(), 3);
    let (plan, expected) = plan(&opted_out(&["mongo-a", "mongo-b"]), Some(&state));
    assert_eq!(members(&expected), ["mongo-a", "mongo-b"]);
    assert!(
        plan.changes
            .iter()
            .any(|c| c.reason.contains("now says `add_odd_member: false`")),
        "{}",
        text::render(&plan)
    );
}

/// The key belongs to MongoDB groups only.
#[test]
fn add_odd_member_is_refused_on_other_types() {
    let text = "application: shop\nredis:\n  configuration: { version: \"7.0\" }\n  add_odd_member: false\n  servers:\n    - server: { unique_name: redis-a }\n";
    let diagnostics = crate::common::diagnose(text);
    assert!(
        diagnostics.contains(
            "manifest.yml:4:19: error[invalid-value]: add_odd_member applies to MongoDB groups only"
        ),
        "{diagnostics}"
    );
}

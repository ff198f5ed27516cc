//! Plans for the MySQL family that the manifest alone cannot decide
//! (issue 21, items 3 and 4): a group of a catalogued series the engines
//! cannot serve is blocked before anything is built, and replication or
//! imports across MariaDB and MySQL/Percona are decided by the source's own
//! engine, also across applications, where only state knows it.

use std::collections::BTreeMap;

use dbgroups_plan::{Intents, ObservedFacts, Plan};

use crate::common::{applied, plan_with};

fn plan(text: &str, others: &BTreeMap<String, dbgroups_state::AppState>) -> Plan {
    plan_with(
        text,
        None,
        others,
        &ObservedFacts::offline(),
        &Intents::default(),
    )
    .0
}

fn one_group(engine: &str, version: &str) -> String {
    format!(
        "application: shop\nmysql:\n  configuration: {{ engine: {engine}, version: \"{version}\" }}\n  servers:\n    - server: {{ unique_name: db-main }}\n"
    )
}

#[test]
fn a_series_the_engines_cannot_serve_is_blocked_with_what_is_needed() {
    for (engine, version, needed) in [
        ("mysql", "5.6", "use 5.7.8 or later"),
        ("percona", "5.6", "use 5.7.8 or later"),
        ("mariadb", "10.3", "use MariaDB 10.4.6 or later"),
        ("mysql", "8.0.25", "needs 8.0.26 or later"),
        ("mariadb", "10.4.5", "needs 10.4.6 or later"),
    ] {
        let plan = plan(&one_group(engine, version), &BTreeMap::new());
        assert!(!plan.has_changes(), "{engine} {version} would be built");
        let blocked = &plan.report.blocked;
        assert_eq!(blocked.len(), 1, "{engine} {version}: {blocked:?}");
        assert!(
            blocked[0].reason.contains("dbgroups cannot serve")
                && blocked[0].reason.contains(needed),
            "{engine} {version}: {}",
            blocked[0].reason
        );
    }
    for (engine, version) in [
        ("mysql", "5.7"),
        ("mysql", "8.0"),
        ("mysql", "8.0.26"),
        ("percona", "8.4"),
        ("mysql", "9.7"),
        ("mariadb", "10.4"),
        ("mariadb", "10.11"),
    ] {
        let plan = plan(&one_group(engine, version), &BTreeMap::new());
        assert!(
            plan.has_changes() && plan.report.blocked.is_empty(),
            "{engine} {version}: {:?}",
            plan.report.blocked
        );
    }
}

fn follower(engine: &str, version: &str, key: &str) -> String {
    format!(
        "application: next\nmysql:\n  groups:\n    copy:\n      configuration: {{ engine: {engine}, version: \"{version}\" }}\n      {key}: {{ application: shop, group: default }}\n      servers:\n        - server: {{ unique_name: copy-main }}\n"
    )
}

fn shop(engine: &str, version: &str) -> BTreeMap<String, dbgroups_state::AppState> {
    let text = format!(
        "application: shop\nmysql:\n  groups:\n    default:\n      configuration: {{ engine: {engine}, version: \"{version}\" }}\n      servers:\n        - server: {{ unique_name: db-main }}\n"
    );
    BTreeMap::from([("shop".to_string(), applied(&text))])
}

#[test]
fn replication_across_mariadb_and_mysql_is_refused_by_the_sources_engine() {
    for (source, replica) in [
        ("mysql", "mariadb"),
        ("percona", "mariadb"),
        ("mariadb", "mysql"),
    ] {
        // A newer replica, so that no version rule could be what refuses.
        let (source_version, replica_version) = if source == "mariadb" {
            ("10.11", "8.4")
        } else {
            ("8.0", "11.4")
        };
        let plan = plan(
            &follower(replica, replica_version, "replicate_from"),
            &shop(source, source_version),
        );
        assert!(!plan.has_changes(), "{source} -> {replica} is built");
        let blocked = &plan.report.blocked[0];
        assert!(
            blocked.reason.contains("incompatible")
                && blocked.reason.contains(&format!(
                    "the source runs {source} while this group runs {replica}"
                )),
            "{source} -> {replica}: {}",
            blocked.reason
        );
        assert!(
            blocked
                .hint
                .contains(&format!("declare `engine: {source}`")),
            "{}",
            blocked.hint
        );
    }
    // MySQL and Percona Server count as one engine.
    let plan = plan(
        &follower("percona", "8.4", "replicate_from"),
        &shop("mysql", "8.4"),
    );
    assert!(plan.report.blocked.is_empty(), "{:?}", plan.report.blocked);
}

#[test]
fn imports_across_mariadb_and_mysql_are_refused_and_mysql_to_percona_is_not() {
    let into_mariadb = plan(
        &follower("mariadb", "11.4", "import_from"),
        &shop("mysql", "8.0"),
    );
    let reason = &into_mariadb.report.blocked[0].reason;
    assert!(reason.contains("GTID_PURGED"), "{reason}");
    assert!(
        into_mariadb.report.blocked[0]
            .hint
            .contains("--set-gtid-purged=OFF"),
        "{}",
        into_mariadb.report.blocked[0].hint
    );
    let into_mysql = plan(
        &follower("mysql", "8.4", "import_from"),
        &shop("mariadb", "10.11"),
    );
    let reason = &into_mysql.report.blocked[0].reason;
    assert!(reason.contains("sandbox line"), "{reason}");
    let percona = plan(
        &follower("percona", "8.4", "import_from"),
        &shop("mysql", "8.4"),
    );
    assert!(
        percona.has_changes() && percona.report.blocked.is_empty(),
        "{:?}",
        percona.report.blocked
    );
}

//! The hosts' preflight in the planner (issue 16): facts fed in as data,
//! as refresh gathers them, turned into blocked items naming the host.

use std::collections::BTreeMap;

use dbgroups_manifest::Engine;
use dbgroups_plan::{HostFacts, HostOs, Intents, ObservedFacts, PackageFacts, Plan};
use dbgroups_state::AppState;

use crate::common::{applied, plan_with};

const HOSTS: &str = r#"
application: shop
postgresql:
  groups:
    default:
      configuration: { version: "15", operating_system: debian12 }
      backups: { managed: true }
      servers:
        - server: { unique_name: pg-main, address: 198.18.0.11 }
        - server: { unique_name: pg-replica-1, address: 198.18.0.12 }
redis:
  configuration: { version: "7.0" }
  servers:
    - server: { unique_name: redis-main }
"#;

fn debian12() -> HostOs {
    HostOs {
        id: "debian".into(),
        version_id: "12".into(),
        id_like: Vec::new(),
    }
}

fn postgres15(installed: bool, installable: bool) -> PackageFacts {
    PackageFacts {
        engine: Engine::Postgresql,
        version: "15".into(),
        packages: vec!["postgresql-15".into()],
        installed,
        installable,
        outside_distribution: None,
    }
}

fn healthy() -> HostFacts {
    HostFacts {
        unreachable: None,
        os: Some(debian12()),
        free_bytes: Some(20 << 30),
        packages: vec![postgres15(true, false)],
    }
}

/// Both hosts healthy, then `change` applied to the one at `address`.
fn facts(address: &str, change: impl FnOnce(&mut HostFacts)) -> ObservedFacts {
    let mut facts = ObservedFacts::offline();
    facts.refreshed = true;
    for host in ["198.18.0.11", "198.18.0.12"] {
        facts.hosts.insert(host.to_string(), healthy());
    }
    change(facts.hosts.get_mut(address).expect("a host"));
    facts
}

fn plan(text: &str, state: Option<&AppState>, observed: &ObservedFacts, intents: &Intents) -> Plan {
    plan_with(text, state, &BTreeMap::new(), observed, intents).0
}

fn summaries(plan: &Plan) -> Vec<String> {
    plan.changes.iter().map(|c| c.kind.summary()).collect()
}

const CREATE_PG: &str =
    "create postgresql.default (postgresql 15): master pg-main, slaves pg-replica-1";

#[test]
fn healthy_hosts_block_nothing() {
    let made = plan(
        HOSTS,
        None,
        &facts("198.18.0.11", |_| {}),
        &Intents::default(),
    );
    assert_eq!(made.report.blocked, vec![]);
    assert!(summaries(&made).contains(&CREATE_PG.to_string()));
    // Missing but installable: apply installs it, nothing is blocked.
    let made = plan(
        HOSTS,
        None,
        &facts("198.18.0.12", |h| {
            h.packages = vec![postgres15(false, true)]
        }),
        &Intents::default(),
    );
    assert_eq!(made.report.blocked, vec![]);
    assert!(summaries(&made).contains(&CREATE_PG.to_string()));
}

/// The one blocked item, after checking that the group is not created
/// and the Redis group on this machine still is.
fn only_block(made: &Plan, host: &str) -> (String, String) {
    assert!(
        !summaries(made).contains(&CREATE_PG.to_string()),
        "{:?}",
        summaries(made)
    );
    assert!(
        summaries(made)
            .iter()
            .any(|s| s.starts_with("create redis.default")),
        "the group on this machine is still created: {:?}",
        summaries(made)
    );
    assert_eq!(made.report.blocked.len(), 1, "{:?}", made.report.blocked);
    let blocked = &made.report.blocked[0];
    assert_eq!(blocked.subject, host);
    (blocked.reason.clone(), blocked.hint.clone())
}

#[test]
fn an_unreachable_host_blocks_its_groups_changes_with_the_ssh_error() {
    let error = "host 198.18.0.12: ssh: connect to host 198.18.0.12 port 22: Connection timed out";
    let made = plan(
        HOSTS,
        None,
        &facts("198.18.0.12", |h| {
            *h = HostFacts {
                unreachable: Some(error.into()),
                ..HostFacts::default()
            }
        }),
        &Intents::default(),
    );
    let (reason, hint) = only_block(&made, "198.18.0.12");
    assert!(reason.contains("198.18.0.12 cannot be reached"), "{reason}");
    assert!(reason.contains("Connection timed out"), "{reason}");
    assert!(reason.contains("postgresql.default"), "{reason}");
    assert!(reason.contains("pg-replica-1"), "{reason}");
    assert!(hint.contains("ssh 198.18.0.12 true"), "{hint}");
}

#[test]
fn a_host_running_another_system_than_declared_blocks_naming_both() {
    let made = plan(
        HOSTS,
        None,
        &facts("198.18.0.11", |h| {
            h.os = Some(HostOs {
                id: "ubuntu".into(),
                version_id: "22.04".into(),
                id_like: vec!["debian".into()],
            })
        }),
        &Intents::default(),
    );
    let (reason, _) = only_block(&made, "198.18.0.11");
    assert!(
        reason.contains("operating_system debian12 (debian 12)"),
        "{reason}"
    );
    assert!(reason.contains("runs ubuntu 22.04"), "{reason}");
    assert!(reason.contains("pg-main"), "{reason}");
}

#[test]
fn a_missing_package_that_cannot_be_installed_blocks_naming_it() {
    // No operating_system declared: only the packages block.
    let text = HOSTS.replace(", operating_system: debian12", "");
    let fedora = facts("198.18.0.12", |h| {
        h.os = Some(HostOs {
            id: "fedora".into(),
            version_id: "40".into(),
            id_like: Vec::new(),
        });
        h.packages = vec![postgres15(false, false)];
    });
    let made = plan(&text, None, &fedora, &Intents::default());
    let (reason, hint) = only_block(&made, "198.18.0.12");
    assert!(reason.contains("postgresql-15"), "{reason}");
    assert!(reason.contains("neither Debian nor Ubuntu"), "{reason}");
    assert!(
        hint.contains("install postgresql-15 on 198.18.0.12 by hand"),
        "{hint}"
    );
    // On Debian with no apt source for it, the hint says where it comes from.
    let made = plan(
        HOSTS,
        None,
        &facts("198.18.0.12", |h| {
            h.packages = vec![postgres15(false, false)]
        }),
        &Intents::default(),
    );
    let (reason, hint) = only_block(&made, "198.18.0.12");
    assert!(
        reason.contains("no apt source there provides them"),
        "{reason}"
    );
    assert!(
        hint.contains("apt repository that provides postgresql-15"),
        "{hint}"
    );
}

#[test]
fn a_host_short_of_disk_blocks_the_servers_it_would_build() {
    let made = plan(
        HOSTS,
        None,
        &facts("198.18.0.11", |h| h.free_bytes = Some(100 << 20)),
        &Intents::default(),
    );
    let (reason, _) = only_block(&made, "198.18.0.11");
    assert!(
        reason.contains("100 MiB free under /var/lib/dbgroups"),
        "{reason}"
    );
}

#[test]
fn a_recorded_group_on_an_unreachable_host_blocks_its_changes_or_warns() {
    let state = applied(HOSTS);
    let unreachable = facts("198.18.0.12", |h| {
        *h = HostFacts {
            unreachable: Some("Connection refused".into()),
            ..HostFacts::default()
        }
    });
    // Nothing to do there: a warning names the host, nothing is blocked.
    let made = plan(HOSTS, Some(&state), &unreachable, &Intents::default());
    assert_eq!(made.report.blocked, vec![]);
    assert!(
        made.report
            .warnings
            .iter()
            .any(|w| w.contains("198.18.0.12 cannot be reached: Connection refused")),
        "{:?}",
        made.report.warnings
    );
    // Removing the slave there is blocked.
    let text = HOSTS.replace(
        "        - server: { unique_name: pg-replica-1, address: 198.18.0.12 }\n",
        "",
    );
    let intents = Intents {
        remove_servers: ["pg-replica-1".to_string()].into(),
        ..Intents::default()
    };
    let made = plan(&text, Some(&state), &unreachable, &intents);
    assert!(made.changes.is_empty(), "{:?}", summaries(&made));
    assert_eq!(made.report.blocked.len(), 1);
    assert_eq!(made.report.blocked[0].subject, "198.18.0.12");
    assert!(
        made.report.blocked[0]
            .reason
            .contains("remove pg-replica-1")
    );
    // A plan without the hosts' facts (--refresh=false) removes it.
    let made = plan(&text, Some(&state), &ObservedFacts::offline(), &intents);
    assert_eq!(
        summaries(&made),
        vec!["remove pg-replica-1 from postgresql.default"]
    );
}

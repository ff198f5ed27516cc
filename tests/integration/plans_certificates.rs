//! Certificate renewal in the planner (issue 17): a server on a host whose
//! certificate ends within 30 days of the plan's time is renewed by a
//! `certify` step, which says when the current one expires; one further
//! off is left alone, and a plan that pins no time judges nothing.

use dbgroups_plan::{Intents, ObservedFacts, Plan, StepKind, render::text};
use dbgroups_state::{AppState, Authority, Secret};

use crate::common::{applied, plan_with};

const ON_HOSTS: &str = r#"
application: shop
postgresql:
  backups: { managed: true }
  servers:
    - server: { unique_name: pg-main, address: 198.18.0.11 }
    - server: { unique_name: pg-replica-1, address: 198.18.0.12 }
redis:
  servers:
    - server: { unique_name: redis-main }
"#;

const DAY: u64 = 86_400;
/// 2027-01-01T00:00:00Z.
const NOW: u64 = 1_798_761_600;

/// The applied state, with an authority and pg-main's certificate ending
/// at `expires` (pg-replica-1's a year off).
fn recorded(expires: u64) -> AppState {
    let mut state = applied(ON_HOSTS);
    state.authority = Some(Authority {
        certificate: "-----BEGIN CERTIFICATE-----\n…\n-----END CERTIFICATE-----\n".into(),
        key: Secret::new("not a key"),
        expires: NOW + 3000 * DAY,
    });
    for server in state.groups.iter_mut().flat_map(|g| g.servers.iter_mut()) {
        server.certificate_expires = match server.unique_name.as_str() {
            "pg-main" => Some(expires),
            "pg-replica-1" => Some(NOW + 365 * DAY),
            _ => None,
        };
    }
    // The environment gains the authority, as an apply would record it.
    state.environment = dbgroups_plan::env::variables(&state);
    state
}

fn plan_at(state: &AppState, now: Option<u64>, intents: &Intents) -> Plan {
    let mut observed = ObservedFacts::offline();
    observed.now = now;
    plan_with(
        ON_HOSTS,
        Some(state),
        &Default::default(),
        &observed,
        intents,
    )
    .0
}

#[test]
fn a_certificate_due_within_thirty_days_is_renewed_by_its_own_step() {
    let state = recorded(NOW + 12 * DAY);
    let plan = plan_at(&state, Some(NOW), &Intents::default());
    let rendered = text::render(&plan);
    let ids: Vec<&str> = plan.steps.iter().map(|s| s.id.as_str()).collect();
    assert_eq!(ids, ["certify:pg-main"], "{rendered}");
    assert_eq!(
        plan.steps[0].kind,
        StepKind::Certify {
            server: "pg-main".into(),
            expires: NOW + 12 * DAY
        }
    );
    assert!(
        rendered.contains(
            "renew the certificate of pg-main in postgresql.default (it expires 2027-01-13)"
        ),
        "{rendered}"
    );
    assert!(
        rendered.contains("its certificate expires on 2027-01-13, within 30 days"),
        "{rendered}"
    );
    // An expired one says so.
    let expired = text::render(&plan_at(
        &recorded(NOW - DAY),
        Some(NOW),
        &Intents::default(),
    ));
    assert!(
        expired.contains("its certificate expired on 2026-12-31"),
        "{expired}"
    );
}

#[test]
fn a_certificate_further_off_a_server_going_away_or_no_time_plans_nothing() {
    let far = recorded(NOW + 31 * DAY);
    let plan = plan_at(&far, Some(NOW), &Intents::default());
    assert!(!plan.has_changes(), "{}", text::render(&plan));
    let due = recorded(NOW + DAY);
    let untimed = plan_at(&due, None, &Intents::default());
    assert!(!untimed.has_changes(), "{}", text::render(&untimed));
    // A server re-seeded by this plan gets no renewal: it is provisioned
    // again, with a new certificate.
    let mut both_due = recorded(NOW + DAY);
    for server in both_due
        .groups
        .iter_mut()
        .flat_map(|g| g.servers.iter_mut())
    {
        if server.unique_name == "pg-replica-1" {
            server.certificate_expires = Some(NOW + DAY);
        }
    }
    let resync = Intents {
        resync: ["pg-replica-1".to_string()].into(),
        ..Intents::default()
    };
    let plan = plan_at(&both_due, Some(NOW), &resync);
    let certified: Vec<&str> = plan
        .steps
        .iter()
        .filter(|s| s.id.starts_with("certify:"))
        .map(|s| s.id.as_str())
        .collect();
    assert_eq!(certified, ["certify:pg-main"], "{}", text::render(&plan));
}

#[test]
fn a_server_on_a_host_without_a_certificate_is_named_in_a_warning() {
    let mut state = recorded(NOW + 200 * DAY);
    for server in state.groups.iter_mut().flat_map(|g| g.servers.iter_mut()) {
        if server.unique_name == "pg-replica-1" {
            server.certificate_expires = None;
        }
    }
    let plan = plan_at(&state, Some(NOW), &Intents::default());
    assert!(!plan.has_changes(), "{}", text::render(&plan));
    assert!(
        plan.report.warnings.iter().any(|w| w
            .starts_with("pg-replica-1 (postgresql.default) on 198.18.0.12 has no certificate")),
        "{:?}",
        plan.report.warnings
    );
    // Redis on this machine serves no TLS: nothing is said of it.
    assert!(
        plan.report
            .warnings
            .iter()
            .all(|w| !w.contains("redis-main")),
        "{:?}",
        plan.report.warnings
    );
}

/// `public_address` is what clients outside dial (DESIGN §2): the `_EXT`
/// variables carry it, the others the `address` the hosts reach each
/// other at.
#[test]
fn the_ext_variables_carry_each_servers_public_address() {
    let manifest = r#"
application: shop
postgresql:
  backups: { managed: true }
  servers:
    - server: { unique_name: pg-main, address: 198.18.0.11, public_address: db.shop.example }
    - server: { unique_name: pg-replica-1, address: 198.18.0.12 }
"#;
    let state = applied(manifest);
    let env = &state.environment;
    assert_eq!(env["POSTGRESQL_ADDRESS"], "198.18.0.11");
    assert_eq!(env["POSTGRESQL_ADDRESS_INT"], "198.18.0.11");
    assert_eq!(env["POSTGRESQL_ADDRESS_EXT"], "db.shop.example");
    assert!(
        env["POSTGRESQL_URL_EXT"].contains("@db.shop.example:")
            && env["POSTGRESQL_URL"].contains("@198.18.0.11:"),
        "{env:?}"
    );
    // A server without one is reached outside at its address.
    assert!(
        env["POSTGRESQL_SLAVE_ADDRESSES_EXT"].starts_with("198.18.0.12"),
        "{env:?}"
    );
}

/// A MongoDB group on hosts: its URLs (`_EXT` ones too) ask for TLS
/// (`tls=true`, which drivers and mongosh verify against the CA file they
/// are given, docs/tls.md), and its environment carries the authority. On
/// this machine neither.
#[test]
fn a_mongodb_group_on_hosts_has_tls_in_its_urls_and_its_authority() {
    let manifest = r#"
application: shop
mongodb:
  configuration: { version: "7.0" }
  backups: { managed: true }
  servers:
    - server: { unique_name: mongo-1, address: 198.18.0.21, public_address: db.shop.example }
    - server: { unique_name: mongo-2, address: 198.18.0.22 }
    - server: { unique_name: mongo-3, address: 198.18.0.23 }
"#;
    let mut state = applied(manifest);
    state.authority = recorded(NOW + 365 * DAY).authority;
    let env = dbgroups_plan::env::variables(&state);
    for name in ["MONGODB_URL", "MONGODB_URL_INT", "MONGODB_URL_EXT"] {
        let url = &env[name];
        assert!(
            url.starts_with("mongodb://") && url.ends_with("&tls=true"),
            "{name}: {url}"
        );
        assert!(url.contains("?replicaSet=shop-default&"), "{name}: {url}");
    }
    assert!(
        env["MONGODB_URL_EXT"].contains("@db.shop.example:"),
        "{}",
        env["MONGODB_URL_EXT"]
    );
    assert!(
        env["MONGODB_URL"].contains("@198.18.0.21:"),
        "{}",
        env["MONGODB_URL"]
    );
    assert!(
        env["MONGODB_CA_CERT"].starts_with("-----BEGIN CERTIFICATE-----"),
        "{env:?}"
    );
    assert_eq!(env["MONGODB_DEFAULT_CA_CERT"], env["MONGODB_CA_CERT"]);

    let local = applied(
        "application: shop\nmongodb:\n  configuration: { version: \"7.0\" }\n  backups: { managed: true }\n  servers:\n    - server: { unique_name: m1 }\n    - server: { unique_name: m2 }\n    - server: { unique_name: m3 }\n",
    );
    let env = dbgroups_plan::env::variables(&local);
    assert!(!env["MONGODB_URL"].contains("tls"), "{env:?}");
    assert!(!env.contains_key("MONGODB_CA_CERT"), "{env:?}");
}

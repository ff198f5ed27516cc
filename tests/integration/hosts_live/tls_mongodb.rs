//! TLS and access on hosts (MongoDB), as `tls_redis` for Redis:
//! `requireTLS` on every member, the members' own traffic over TLS, the
//! tools and dbgroups verifying against the authority, and the host's
//! firewall (nftables, dbgroups' own table) letting in only loopback, the
//! set's hosts and its `allow_from` networks.
//!
//! MongoDB is not packaged by Debian, so this runs only where `mongod`,
//! `mongodump` and `mongorestore` are installed (build.rs looks); elsewhere
//! it is reported as ignored, with the reason, never as passed. It was
//! written to MongoDB's manual and has not run on the machine it was
//! written on.
//!
//! Hosts: 1 and 2 the set's members (the second without a vote), 3 and 4
//! clients. Host 3 is allowed first, then host 4 instead.

use super::{
    TestHosts, hosts_or_skip, manifest_head, nothing_left_on, on_host, port, quoted, run_ok,
};

fn manifest(hosts: &TestHosts, allowed: usize) -> String {
    format!(
        "{}mongodb:\n  groups:\n    default:\n      configuration: {{ version: \"7.0\" }}\n      backups: {{ managed: true }}\n      add_odd_member: false\n      allow_from: [{}/32]\n      servers:\n        - server: {{ unique_name: mongo-1, address: {} }}\n        - server: {{ unique_name: mongo-2, address: {} }}\n",
        manifest_head(hosts),
        hosts.address(allowed),
        hosts.address(1),
        hosts.address(2)
    )
}

/// The application's login, for the tools' `--config` file.
struct Login {
    user: String,
    password: String,
    auth: String,
    database: String,
}

/// mongodump of the group's database, run on host K against `address`:
/// `port`, over TLS verified against /tmp/ca.crt there when `tls`; the
/// password in a 0600 `--config` file, never on its command line. Bounded:
/// a dropped connection does not hang.
fn dump_from(
    hosts: &TestHosts,
    k: usize,
    (address, port): (&str, u16),
    login: &Login,
    tls: bool,
) -> Result<(), String> {
    let tls = if tls {
        "--tls --tlsCAFile=/tmp/ca.crt"
    } else {
        ""
    };
    let output = hosts.run_on(
        k,
        &format!(
            "umask 077; printf '%s' {} > /tmp/tools.yaml; rm -rf /tmp/probe; \
             timeout 30 mongodump --config=/tmp/tools.yaml --username={} --authenticationDatabase={} \
             --host={address}:{port} {tls} --db={} --out=/tmp/probe",
            quoted(&dbgroups_engines::mongodb::commands::tools_config(
                &login.password
            )),
            quoted(&login.user),
            quoted(&login.auth),
            quoted(&login.database),
        ),
    );
    if output.status.success() {
        Ok(())
    } else {
        Err(format!(
            "exit {:?}: {}",
            output.status.code(),
            String::from_utf8_lossy(&output.stderr).trim()
        ))
    }
}

#[test]
#[cfg_attr(
    not(mongod_available),
    ignore = "mongod, mongodump and mongorestore are not installed (MongoDB is not packaged by Debian; install mongodb-org and rebuild)"
)]
fn mongodb_on_hosts_requires_tls_and_its_hosts_let_in_only_its_networks() {
    let Some(hosts) = hosts_or_skip(4) else {
        return;
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path();
    let deployed = super::tls::deploy(&hosts, path, &manifest(&hosts, 3), "MONGODB");
    assert!(deployed.url.ends_with("&tls=true"), "the URL asks for TLS");
    let recorded = &deployed.recorded;
    let credentials = &recorded.credentials["mongodb.default"];
    let login = Login {
        user: credentials.username.clone(),
        password: credentials
            .password
            .as_ref()
            .expect("generated")
            .expose()
            .to_string(),
        auth: credentials
            .auth_database
            .clone()
            .unwrap_or_else(|| credentials.database.clone()),
        database: credentials.database.clone(),
    };
    let main_port = port(recorded, "mongo-1");
    let main = hosts.address(1).to_string();
    let main = (main.as_str(), main_port);

    let config = on_host(
        &hosts,
        1,
        "cat /var/lib/dbgroups/servers/mongo-1/mongod.conf",
    );
    assert!(config.contains("mode: \"requireTLS\""), "{config}");
    // The members reach each other over TLS: the second is a secondary.
    let status = run_ok(path, &["status"]);
    assert!(status.stdout.contains("SECONDARY"), "{}", status.stdout);

    // From the allowed host: plain text is refused, verified TLS works.
    let plain = dump_from(&hosts, 3, main, &login, false);
    assert!(
        plain.is_err(),
        "plain text from an allowed network: {plain:?}"
    );
    dump_from(&hosts, 3, main, &login, true).expect("verified TLS from the allowed host");
    // From a host neither in the set nor allowed: the firewall drops it.
    let refused = dump_from(&hosts, 4, main, &login, true);
    assert!(refused.is_err(), "TLS from host 4: {refused:?}");
    let rules = on_host(&hosts, 1, "nft list table inet dbgroups");
    assert!(
        rules.contains(&format!("chain port_{main_port}")),
        "dbgroups' own chain for the port: {rules}"
    );

    // allow_from moves to host 4: it gets in, host 3 no longer does.
    std::fs::write(path.join("manifest.yml"), manifest(&hosts, 4)).expect("manifest");
    let moved = run_ok(path, &["apply", "--auto-approve", "--refresh=false"]);
    assert!(
        moved.stdout.contains("allow:mongodb.default"),
        "{}",
        moved.stdout
    );
    dump_from(&hosts, 4, main, &login, true).expect("host 4 after the change");
    let refused = dump_from(&hosts, 3, main, &login, true);
    assert!(refused.is_err(), "host 3 after the change: {refused:?}");

    run_ok(path, &["destroy", "--app", "shop", "--auto-approve"]);
    for k in 1..=2 {
        nothing_left_on(&hosts, k);
    }
    hosts.down();
}

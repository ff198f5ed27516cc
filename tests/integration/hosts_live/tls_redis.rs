//! TLS and access on hosts (Redis): TLS only (`port 0`, `tls-port`),
//! replication over TLS verified against the authority, and the host's
//! firewall (nftables, dbgroups' own table) letting in only loopback, the
//! group's hosts and its `allow_from` networks.
//!
//! Hosts: 1 the master, 2 its slave, 3 and 4 clients. Host 3 is allowed
//! first, then host 4 instead.

use super::{
    TestHosts, WAIT, hosts_or_skip, manifest_head, on_host, port, quoted, run_ok, wait_for,
};

fn manifest(hosts: &TestHosts, allowed: usize) -> String {
    format!(
        "{}redis:\n  groups:\n    default:\n      configuration: {{ version: \"7.0\" }}\n      backups: {{ managed: true }}\n      allow_from: [{}/32]\n      servers:\n        - server: {{ unique_name: cache-main, address: {} }}\n        - server: {{ unique_name: cache-replica-1, address: {} }}\n",
        manifest_head(hosts),
        hosts.address(allowed),
        hosts.address(1),
        hosts.address(2)
    )
}

const PLAIN: &str = "";
const VERIFIED: &str = "--tls --cacert /tmp/ca.crt";

/// redis-cli on host K to `address`:`port` with `tls` options (the
/// password in `REDISCLI_AUTH`, never on its command line): `command`'s
/// answer, or why it failed. Bounded: a dropped connection does not hang.
fn cli(
    hosts: &TestHosts,
    k: usize,
    (address, port): (&str, u16),
    password: &str,
    tls: &str,
    command: &str,
) -> Result<String, String> {
    let output = hosts.run_on(
        k,
        &format!(
            "REDISCLI_AUTH={} timeout 5 redis-cli {tls} -h {address} -p {port} {command}",
            quoted(password)
        ),
    );
    let said = String::from_utf8_lossy(&output.stdout).trim().to_string();
    if output.status.success() && !said.is_empty() && !said.contains("Error") {
        Ok(said)
    } else {
        Err(format!(
            "exit {:?}: {said} {}",
            output.status.code(),
            String::from_utf8_lossy(&output.stderr).trim()
        ))
    }
}

/// One field of `INFO replication` on host K's own server, over TLS on its
/// loopback.
fn replication_field(
    hosts: &TestHosts,
    k: usize,
    port: u16,
    password: &str,
    field: &str,
) -> String {
    cli(
        hosts,
        k,
        ("127.0.0.1", port),
        password,
        VERIFIED,
        "INFO replication",
    )
    .unwrap_or_default()
    .lines()
    .find_map(|line| line.trim().strip_prefix(&format!("{field}:")))
    .unwrap_or_default()
    .to_string()
}

#[test]
fn redis_on_hosts_is_tls_only_and_its_host_lets_in_only_its_networks() {
    let Some(hosts) = hosts_or_skip(4) else {
        return;
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path();
    let deployed = super::tls::deploy(&hosts, path, &manifest(&hosts, 3), "REDIS");
    assert!(
        deployed.url.starts_with("rediss://"),
        "the URL asks for TLS"
    );
    let recorded = &deployed.recorded;
    let password = recorded.credentials["redis.default"]
        .password
        .as_ref()
        .expect("generated")
        .expose()
        .to_string();
    let main_port = port(recorded, "cache-main");
    let replica_port = port(recorded, "cache-replica-1");
    let main = (hosts.address(1).to_string(), main_port);
    let main = (main.0.as_str(), main.1);

    // From the allowed host: plain text gets no answer, verified TLS does.
    let plain = cli(&hosts, 3, main, &password, PLAIN, "PING");
    assert!(
        plain.is_err(),
        "plain text from an allowed network: {plain:?}"
    );
    assert_eq!(
        cli(&hosts, 3, main, &password, VERIFIED, "PING").as_deref(),
        Ok("PONG")
    );
    // From a host neither in the group nor allowed: the firewall drops it.
    for tls in [PLAIN, VERIFIED] {
        let refused = cli(&hosts, 4, main, &password, tls, "PING");
        assert!(refused.is_err(), "{tls:?} from host 4: {refused:?}");
    }
    let rules = on_host(&hosts, 1, "nft list table inet dbgroups");
    assert!(
        rules.contains(&format!("chain port_{main_port}")),
        "dbgroups' own chain for the port: {rules}"
    );
    // The replication link is TLS: the master has no plain port, and the
    // replica replicates over TLS and is linked.
    assert_eq!(
        cli(
            &hosts,
            1,
            ("127.0.0.1", main_port),
            &password,
            VERIFIED,
            "CONFIG GET port"
        )
        .as_deref(),
        Ok("port\n0")
    );
    assert_eq!(
        replication_field(&hosts, 2, replica_port, &password, "master_link_status"),
        "up"
    );

    // A replica handed another authority refuses its master.
    let trusted = "/var/lib/dbgroups/servers/cache-replica-1/tls/trusted.crt";
    let good = super::tls::swap_authority(&hosts, 2, trusted);
    let reload = format!("CONFIG SET tls-ca-cert-file {trusted}");
    // Its own clients are verified by the file too: the check goes on over
    // the replica's own connection, made before the swap is reloaded.
    cli(
        &hosts,
        2,
        ("127.0.0.1", replica_port),
        &password,
        "--tls --insecure",
        &reload,
    )
    .expect("reload the replica's authorities");
    cli(
        &hosts,
        1,
        ("127.0.0.1", main_port),
        &password,
        VERIFIED,
        "CLIENT KILL TYPE replica",
    )
    .expect("drop the replica's link");
    let insecure_field = |field: &str| {
        cli(
            &hosts,
            2,
            ("127.0.0.1", replica_port),
            &password,
            "--tls --insecure",
            "INFO replication",
        )
        .unwrap_or_default()
        .lines()
        .find_map(|line| {
            line.trim()
                .strip_prefix(&format!("{field}:"))
                .map(str::to_string)
        })
        .unwrap_or_default()
    };
    assert!(
        wait_for(WAIT, || insecure_field("master_link_status") == "down"),
        "the replica's link goes down"
    );
    std::thread::sleep(std::time::Duration::from_secs(3));
    assert_eq!(
        insecure_field("master_link_status"),
        "down",
        "it cannot link to a master it cannot verify"
    );
    on_host(&hosts, 2, &format!("cp {good} {trusted}"));
    cli(
        &hosts,
        2,
        ("127.0.0.1", replica_port),
        &password,
        "--tls --insecure",
        &reload,
    )
    .expect("reload the replica's authorities");
    assert!(
        wait_for(WAIT, || replication_field(
            &hosts,
            2,
            replica_port,
            &password,
            "master_link_status"
        ) == "up"),
        "the replica links again with the right authority"
    );

    // allow_from moves to host 4: it gets in, host 3 no longer does.
    std::fs::write(path.join("manifest.yml"), manifest(&hosts, 4)).expect("manifest");
    let moved = run_ok(path, &["apply", "--auto-approve", "--refresh=false"]);
    assert!(
        moved.stdout.contains("allow:redis.default"),
        "{}",
        moved.stdout
    );
    assert_eq!(
        cli(&hosts, 4, main, &password, VERIFIED, "PING").as_deref(),
        Ok("PONG")
    );
    let refused = cli(&hosts, 3, main, &password, VERIFIED, "PING");
    assert!(refused.is_err(), "host 3 after the change: {refused:?}");

    // Renewal: CONFIG SET of the certificate's files, no restart.
    let client = format!(
        "REDISCLI_AUTH={} timeout 5 redis-cli {VERIFIED} -h {} -p {main_port} PING | grep -qx PONG",
        quoted(&password),
        hosts.address(1)
    );
    super::tls::renewal_interrupts_no_client(&hosts, path, ("cache-main", main_port, ""), &client);
    run_ok(path, &["plan", "--detailed-exitcode"]);
    run_ok(path, &["destroy", "--app", "shop", "--auto-approve"]);
    for k in [1, 2] {
        let left = on_host(
            &hosts,
            k,
            "nft list table inet dbgroups 2>/dev/null || true",
        );
        assert!(!left.contains("port_"), "rules left on host {k}: {left}");
    }
    hosts.down();
}

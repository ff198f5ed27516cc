//! Redis on test hosts: a replica on another host copies its data by
//! REPLICAOF's own sync (no backup step), a scale up adds one on a third,
//! and an import on another host is seeded by `redis-cli --rdb` run there
//! against the master.

use super::{TestHosts, hosts_or_skip, manifest_head, nothing_left_on, quoted, run_ok, state};
use crate::test_hosts::{WAIT, wait_for};

/// redis-cli on host K over its loopback, as the application: over TLS,
/// which is all the server speaks on a host (tls_redis.rs verifies the
/// certificate; here only the data matters).
fn redis_cli(hosts: &TestHosts, k: usize, password: &str, command: &str) -> Result<String, String> {
    redis_cli_at(hosts, k, 6379, password, command)
}

/// [`redis_cli`] to the server on `port`.
fn redis_cli_at(
    hosts: &TestHosts,
    k: usize,
    port: u16,
    password: &str,
    command: &str,
) -> Result<String, String> {
    let output = hosts.run_on(
        k,
        &format!(
            "REDISCLI_AUTH={} redis-cli --tls --insecure --no-auth-warning -h 127.0.0.1 -p {port} {command}",
            quoted(password)
        ),
    );
    let stdout = String::from_utf8_lossy(&output.stdout).trim().to_string();
    // redis-cli exits 0 on an error reply, which it prints.
    if output.status.success() && !stdout.starts_with("ERR") && !stdout.starts_with("NOAUTH") {
        Ok(stdout)
    } else {
        Err(String::from_utf8_lossy(&output.stderr).into_owned())
    }
}

fn manifest(hosts: &TestHosts, servers: &[(&str, usize)]) -> String {
    let mut text = format!(
        "{}redis:\n  configuration: {{ version: \"7.0\" }}\n  backups: {{ managed: true }}\n  servers:\n",
        manifest_head(hosts)
    );
    for (name, k) in servers {
        text.push_str(&format!(
            "    - server: {{ unique_name: {name}, address: {} }}\n",
            hosts.address(*k)
        ));
    }
    text
}

#[test]
fn a_redis_group_across_three_hosts_replicates_scales_up_imports_and_is_destroyed() {
    let Some(hosts) = hosts_or_skip(3) else {
        return;
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path();
    let two = [("redis-main", 1), ("redis-replica-1", 2)];
    std::fs::write(path.join("manifest.yml"), manifest(&hosts, &two)).expect("manifest");
    run_ok(path, &["apply", "--auto-approve", "--refresh=false"]);
    let recorded = state(path);
    let password = recorded.credentials["redis.default"]
        .password
        .as_ref()
        .expect("generated")
        .expose()
        .to_string();
    let _scanned = crate::transcripts::ScannedDeployment::new(path, &[&password]);
    redis_cli(
        &hosts,
        1,
        &password,
        "EVAL \"for i = 1, 1000 do redis.call('SET', 'key:' .. i, i) end\" 0",
    )
    .expect("keys on the master");
    assert_eq!(
        redis_cli(&hosts, 1, &password, "DBSIZE").as_deref(),
        Ok("1000")
    );
    let synced = |k: usize, keys: &str| {
        wait_for(WAIT, || {
            redis_cli(&hosts, k, &password, "DBSIZE").as_deref() == Ok(keys)
        })
    };
    assert!(
        synced(2, "1000"),
        "the replica on host 2 has the master's keys"
    );
    let role = redis_cli(&hosts, 2, &password, "INFO replication").expect("info");
    assert!(
        role.contains(&format!("master_host:{}", hosts.address(1)))
            && role.contains("master_link_status:up"),
        "{role}"
    );

    let three = [
        ("redis-main", 1),
        ("redis-replica-1", 2),
        ("redis-replica-2", 3),
    ];
    std::fs::write(path.join("manifest.yml"), manifest(&hosts, &three)).expect("manifest");
    let applied = run_ok(path, &["apply", "--auto-approve", "--refresh=false"]);
    assert!(
        !applied.stdout.contains("backup:"),
        "no backup step: {}",
        applied.stdout
    );
    redis_cli(&hosts, 1, &password, "SET later 1").expect("a later write");
    assert!(synced(3, "1001"), "the new replica on host 3 has every key");
    let status = run_ok(path, &["status"]);
    assert!(
        status.stdout.contains("redis-replica-2"),
        "{}",
        status.stdout
    );
    // An import on host 2 from the master on host 1: the snapshot is
    // fetched there, host to host.
    let with_copy = format!(
        "{}redis:\n  groups:\n    default:\n      configuration: {{ version: \"7.0\" }}\n      backups: {{ managed: true }}\n      servers:\n{}    copy:\n      configuration: {{ version: \"7.0\" }}\n      import_from: default\n      servers:\n        - server: {{ unique_name: redis-copy, address: {} }}\n",
        manifest_head(&hosts),
        three
            .iter()
            .map(|(name, k)| format!(
                "        - server: {{ unique_name: {name}, address: {} }}\n",
                hosts.address(*k)
            ))
            .collect::<String>(),
        hosts.address(2)
    );
    std::fs::write(path.join("manifest.yml"), with_copy).expect("manifest");
    let plan = run_ok(
        path,
        &["plan", "--refresh=false", "--add-group", "redis.copy"],
    );
    assert!(
        plan.stdout
            .contains(&format!("taken on {}", hosts.address(2))),
        "the snapshot is taken on the importing host:\n{}",
        plan.stdout
    );
    run_ok(
        path,
        &[
            "apply",
            "--auto-approve",
            "--refresh=false",
            "--add-group",
            "redis.copy",
        ],
    );
    let recorded = state(path);
    let copy_password = recorded.credentials["redis.copy"]
        .password
        .as_ref()
        .expect("generated")
        .expose()
        .to_string();
    let _scanned_copy = crate::transcripts::ScannedDeployment::new(path, &[&copy_password]);
    let copy_port = recorded
        .server("redis-copy")
        .and_then(|(_, s)| s.port)
        .expect("a port");
    assert_eq!(
        redis_cli_at(&hosts, 2, copy_port, &copy_password, "DBSIZE").as_deref(),
        Ok("1001"),
        "the import holds every key of the master"
    );
    let role = redis_cli_at(&hosts, 2, copy_port, &copy_password, "ROLE").expect("role");
    assert!(
        role.starts_with("master"),
        "an import follows nothing: {role}"
    );

    let env = run_ok(path, &["env"]);
    assert!(
        env.stdout
            .contains(&format!("REDIS_ADDRESS={}\n", hosts.address(1))),
        "{}",
        env.stdout
    );
    run_ok(path, &["plan", "--detailed-exitcode"]);
    run_ok(path, &["destroy", "--app", "shop", "--auto-approve"]);
    for k in 1..=3 {
        nothing_left_on(&hosts, k);
    }
    hosts.down();
}

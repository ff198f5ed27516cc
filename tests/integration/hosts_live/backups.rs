//! A managed backup whose store is on another test host (issue 20): a
//! Redis group on hosts 1 and 2, its store on host 3. The snapshot is
//! fetched on host 3 from the replica on host 2 (`redis-cli --rdb` there:
//! host to host, never through this machine), checksummed on host 3, and
//! verified by a scratch server on host 3.

use super::{TestHosts, hosts_or_skip, manifest_head, on_host, quoted, run_ok, state};
use crate::test_hosts::{WAIT, wait_for};

const STORE: &str = "/var/backups/dbgroups-store";

fn redis_cli(hosts: &TestHosts, k: usize, password: &str, command: &str) -> String {
    on_host(
        hosts,
        k,
        &format!(
            "REDISCLI_AUTH={} redis-cli --no-auth-warning -h 127.0.0.1 -p 6379 {command}",
            quoted(password)
        ),
    )
}

fn rdb_saves(hosts: &TestHosts, k: usize, password: &str) -> String {
    redis_cli(hosts, k, password, "INFO persistence")
        .lines()
        .find_map(|l| l.trim().strip_prefix("rdb_saves:").map(str::to_string))
        .expect("rdb_saves")
}

#[test]
fn a_backup_into_a_store_on_another_host_is_taken_there_from_the_replica_and_verified_there() {
    let Some(hosts) = hosts_or_skip(3) else {
        return;
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path();
    let manifest = format!(
        "{}redis:\n  configuration: {{ version: \"7.0\" }}\n  backups: {{ managed: true, store: {{ address: {}, path: {STORE} }} }}\n  servers:\n    - server: {{ unique_name: redis-main, address: {} }}\n    - server: {{ unique_name: redis-replica-1, address: {} }}\n",
        manifest_head(&hosts),
        hosts.address(3),
        hosts.address(1),
        hosts.address(2),
    );
    std::fs::write(path.join("manifest.yml"), manifest).expect("manifest");
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
        "EVAL \"for i = 1, 500 do redis.call('SET', 'key:' .. i, i) end\" 0",
    );
    assert!(
        wait_for(WAIT, || redis_cli(&hosts, 2, &password, "DBSIZE") == "500"),
        "the replica has the keys"
    );
    let saves_before = rdb_saves(&hosts, 1, &password);

    let run = run_ok(path, &["backup", "run", "--verify"]);
    assert!(
        run.stdout.contains("from redis-replica-1"),
        "{}",
        run.stdout
    );
    assert_eq!(
        rdb_saves(&hosts, 1, &password),
        saves_before,
        "no BGSAVE on the master"
    );
    let after = state(path);
    let record = after
        .backups
        .iter()
        .find(|r| r.managed.is_some())
        .expect("recorded");
    let facts = record.managed.as_ref().expect("managed");
    assert_eq!(
        facts.store_address.as_deref(),
        Some(hosts.address(3).to_string().as_str())
    );
    assert_eq!(facts.summary.get("db0"), Some(&500));
    assert!(
        matches!(
            facts.verification,
            dbgroups_state::Verification::Passed { .. }
        ),
        "{facts:?}"
    );
    assert!(record.path.starts_with(STORE), "{}", record.path);
    on_host(&hosts, 3, &format!("test -f {}", quoted(&record.path)));
    assert_eq!(
        on_host(
            &hosts,
            3,
            &format!(
                "cd {} && sha256sum -c {}.sha256 >/dev/null && echo ok",
                quoted(&format!("{STORE}/shop/redis.default")),
                quoted(&format!("{}.tar", record.id))
            )
        ),
        "ok"
    );
    assert_eq!(
        on_host(
            &hosts,
            3,
            &format!(
                "stat -c %a {}",
                quoted(&format!("{STORE}/shop/redis.default"))
            )
        ),
        "700"
    );
    assert_eq!(
        on_host(&hosts, 3, "pgrep -f [v]erify- || true"),
        "",
        "the scratch server on host 3 is gone"
    );
}

//! A managed backup whose store is on another test host (issue 20): a
//! Redis group on hosts 1 and 2, its store on host 3. The snapshot is
//! fetched on host 3 from the replica on host 2 (`redis-cli --rdb` there:
//! host to host, never through this machine), checksummed on host 3, and
//! verified by a scratch server on host 3.

use super::{
    TestHosts, app_login, hosts_or_skip, manifest_head, on_host, port, psql, quoted, run_ok, state,
    superuser_login, wait_psql,
};
use crate::test_hosts::{WAIT, wait_for};

const STORE: &str = "/var/backups/dbgroups-store";

/// redis-cli on host K over its loopback, over TLS (the server speaks
/// nothing else on a host; tls_redis.rs verifies the certificate).
fn redis_cli(hosts: &TestHosts, k: usize, password: &str, command: &str) -> String {
    on_host(
        hosts,
        k,
        &format!(
            "REDISCLI_AUTH={} redis-cli --tls --insecure --no-auth-warning -h 127.0.0.1 -p 6379 {command}",
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

/// PostgreSQL: the group on hosts 1 and 2, the store on host 3;
/// pg_basebackup runs on host 3 against the standby on host 2 (admitted
/// there), and the master asks for no checkpoint.
#[test]
fn a_postgresql_backup_into_a_store_on_another_host_comes_from_the_standby_and_verifies_there() {
    let Some(hosts) = hosts_or_skip(3) else {
        return;
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path();
    let manifest = format!(
        "{}postgresql:\n  configuration: {{ version: \"15\" }}\n  backups: {{ managed: true, store: {{ address: {}, path: {STORE} }} }}\n  servers:\n    - server: {{ unique_name: pg-main, address: {} }}\n    - server: {{ unique_name: pg-replica-1, address: {} }}\n",
        manifest_head(&hosts),
        hosts.address(3),
        hosts.address(1),
        hosts.address(2),
    );
    std::fs::write(path.join("manifest.yml"), manifest).expect("manifest");
    run_ok(path, &["apply", "--auto-approve", "--refresh=false"]);
    let recorded = state(path);
    let app = app_login(&recorded, "postgresql.default");
    let superuser = superuser_login(&recorded, "postgresql.default");
    let _scanned =
        crate::transcripts::ScannedDeployment::new(path, &[&app.password, &superuser.password]);
    let (main, replica) = (port(&recorded, "pg-main"), port(&recorded, "pg-replica-1"));
    psql(
        &hosts,
        1,
        main,
        &app,
        "CREATE TABLE orders (id int); INSERT INTO orders SELECT generate_series(1, 120)",
    );
    wait_psql(
        &hosts,
        2,
        replica,
        &app,
        "SELECT count(*) FROM orders",
        "120",
    );
    let checkpoints = "SELECT checkpoints_req FROM pg_stat_bgwriter";
    let before = psql(&hosts, 1, main, &superuser, checkpoints);

    let run = run_ok(path, &["backup", "run", "--verify"]);
    assert!(run.stdout.contains("from pg-replica-1"), "{}", run.stdout);
    assert_eq!(
        psql(&hosts, 1, main, &superuser, checkpoints),
        before,
        "no checkpoint asked of the master"
    );
    let after = state(path);
    let record = after
        .backups
        .iter()
        .find(|r| r.managed.is_some())
        .expect("recorded");
    let facts = record.managed.as_ref().expect("managed");
    assert_eq!(facts.summary.get("public.orders"), Some(&120));
    assert!(
        facts
            .position
            .as_deref()
            .is_some_and(|p| p.starts_with("LSN ")),
        "{facts:?}"
    );
    assert!(
        matches!(
            facts.verification,
            dbgroups_state::Verification::Passed { .. }
        ),
        "{facts:?}"
    );
    on_host(&hosts, 3, &format!("test -f {}", quoted(&record.path)));
    assert_eq!(
        on_host(&hosts, 3, "pgrep -f [v]erify- || true"),
        "",
        "the scratch server on host 3 is gone"
    );
}

/// `mariadb` on host K over its loopback, as the application.
fn mariadb(hosts: &TestHosts, k: usize, port: u16, login: &super::Login, sql: &str) -> String {
    on_host(
        hosts,
        k,
        &format!(
            "MYSQL_PWD={} mariadb --no-defaults --ssl --protocol=TCP -h 127.0.0.1 -P {port} -u {} -N -B -D {} -e {}",
            quoted(&login.password),
            quoted(&login.user),
            quoted(&login.database),
            quoted(sql),
        ),
    )
}

/// MariaDB: the group on hosts 1 and 2, the store on host 3; the dump
/// tool runs on host 3 against the replica on host 2, and the master is
/// not flushed.
#[test]
fn a_mariadb_backup_into_a_store_on_another_host_is_dumped_there_from_the_replica() {
    let Some(hosts) = hosts_or_skip(3) else {
        return;
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path();
    let manifest = format!(
        "{}mysql:\n  configuration: {{ engine: mariadb, version: \"10.11\" }}\n  backups: {{ managed: true, store: {{ address: {}, path: {STORE} }} }}\n  servers:\n    - server: {{ unique_name: db-main, address: {} }}\n    - server: {{ unique_name: db-replica-1, address: {} }}\n",
        manifest_head(&hosts),
        hosts.address(3),
        hosts.address(1),
        hosts.address(2),
    );
    std::fs::write(path.join("manifest.yml"), manifest).expect("manifest");
    run_ok(path, &["apply", "--auto-approve", "--refresh=false"]);
    let recorded = state(path);
    let app = app_login(&recorded, "mysql.default");
    let _scanned = crate::transcripts::ScannedDeployment::new(path, &[&app.password]);
    let (main, replica) = (port(&recorded, "db-main"), port(&recorded, "db-replica-1"));
    mariadb(
        &hosts,
        1,
        main,
        &app,
        "CREATE TABLE orders (id INT PRIMARY KEY); INSERT INTO orders SELECT seq FROM seq_1_to_150",
    );
    assert!(
        wait_for(WAIT, || {
            hosts
                .run_on(
                    2,
                    &format!(
                        "MYSQL_PWD={} mariadb --no-defaults --ssl --protocol=TCP -h 127.0.0.1 -P {replica} -u {} -N -B -D {} -e 'SELECT COUNT(*) FROM orders'",
                        quoted(&app.password),
                        quoted(&app.user),
                        quoted(&app.database)
                    ),
                )
                .stdout
                .starts_with(b"150")
        }),
        "the replica has the rows"
    );
    let flushes = "SHOW GLOBAL STATUS LIKE 'Com_flush'";
    let before = mariadb(&hosts, 1, main, &app, flushes);

    let run = run_ok(path, &["backup", "run", "--verify"]);
    assert!(run.stdout.contains("from db-replica-1"), "{}", run.stdout);
    assert_eq!(
        mariadb(&hosts, 1, main, &app, flushes),
        before,
        "the master was not flushed"
    );
    let after = state(path);
    let record = after
        .backups
        .iter()
        .find(|r| r.managed.is_some())
        .expect("recorded");
    let facts = record.managed.as_ref().expect("managed");
    assert_eq!(facts.summary.get("orders"), Some(&150));
    assert!(
        matches!(
            facts.verification,
            dbgroups_state::Verification::Passed { .. }
        ),
        "{facts:?}"
    );
    on_host(&hosts, 3, &format!("test -f {}", quoted(&record.path)));
}

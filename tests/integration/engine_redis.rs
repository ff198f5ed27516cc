//! The Redis engine on real servers started by the test.

use dbgroups_engines::{LocalHost, RedisServer, free_port, generate_password};
use redis::AsyncCommands;

/// Shuts the server down when the test ends, pass or fail.
struct Running(RedisServer, String);

impl Drop for Running {
    fn drop(&mut self) {
        let (server, password) = (self.0.clone(), self.1.clone());
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            runtime.block_on(async { server.ensure_stopped(&password).await })
        })
        .join();
    }
}

#[test]
fn rdb_backup_restore_replicaof_and_detach_on_real_servers() {
    let dir = tempfile::tempdir().expect("temp dir");
    let provider = LocalHost::prepare(&dir.path().join(".dbgroups"))
        .expect("provider")
        .0
        .into_ref();
    let password = generate_password();
    let master = crate::common::block_on(RedisServer::new(
        &provider,
        "redis-main",
        free_port().expect("port"),
    ))
    .expect("redis-server is installed");
    let slave = crate::common::block_on(RedisServer::new(
        &provider,
        "redis-replica-1",
        free_port().expect("port"),
    ))
    .expect("installed");
    let _scanned = crate::transcripts::ScannedDeployment::new(dir.path(), &[&password]);
    let _guards = (
        Running(master.clone(), password.clone()),
        Running(slave.clone(), password.clone()),
    );
    let runtime = crate::common::runtime();

    runtime.block_on(async {
        master
            .ensure_provisioned(&password)
            .await
            .expect("provision");
        let run_id = || async {
            let info: String = redis::cmd("INFO")
                .arg("server")
                .query_async(&mut master.client(&password).await.expect("connects"))
                .await
                .expect("INFO server");
            info.lines()
                .find_map(|line| line.strip_prefix("run_id:"))
                .expect("a run id")
                .trim()
                .to_string()
        };
        let first_run = run_id().await;
        master
            .ensure_provisioned(&password)
            .await
            .expect("provisioning again is a no-op");
        assert_eq!(
            run_id().await,
            first_run,
            "provisioning again did not restart the server (a restart has a new run id)"
        );
        let mut on_master = master
            .client(&password)
            .await
            .expect("connects with the password");
        for key in 0..1000 {
            let _: () = on_master
                .set(format!("order:{key}"), key)
                .await
                .expect("writes");
        }
        assert!(
            master.client("wrong-password").await.is_err(),
            "requirepass is enforced"
        );

        let staging = provider.staging_dir("backup-redis-main");
        master.backup_to(&staging, &password).await.expect("BGSAVE");
        assert!(staging.join("dump.rdb").is_file());
        slave
            .restore_from(&staging, &password, false)
            .await
            .expect("restore");
        let mut on_slave = slave.client(&password).await.expect("connects");
        let restored: i64 = redis::cmd("DBSIZE")
            .query_async(&mut on_slave)
            .await
            .expect("dbsize");
        assert_eq!(restored, 1000, "the snapshot was loaded");

        slave
            .enslave_to(&master, &password, &password)
            .await
            .expect("REPLICAOF, waited for");
        let status = slave
            .replication(&password)
            .await
            .expect("INFO replication");
        assert_eq!(
            (status.role.as_str(), status.master_link_status.as_deref()),
            ("slave", Some("up"))
        );
        assert_eq!(
            master
                .replication(&password)
                .await
                .expect("INFO")
                .connected_slaves,
            1
        );

        let _: () = on_master
            .set("order:late", "1")
            .await
            .expect("a later write");
        let mut seen: Option<String> = None;
        for _ in 0..600 {
            // a generous budget: a loaded CI machine is slow
            seen = on_slave.get("order:late").await.expect("reads");
            if seen.is_some() {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        assert_eq!(seen.as_deref(), Some("1"), "later writes replicate");
        let read_only: redis::RedisResult<()> = on_slave.set("x", 1).await;
        assert!(read_only.is_err(), "a replica refuses writes");

        slave.detach(&password).await.expect("REPLICAOF NO ONE");
        let _: () = on_slave
            .set("x", 1)
            .await
            .expect("the detached server is writable");
        let _: () = on_master
            .set("order:after", "1")
            .await
            .expect("the master still writes");
        // The master's only replica was the detached server.
        let _ = crate::common::eventually(
            "the master no longer serves a replica",
            async || {
                master
                    .replication(&password)
                    .await
                    .map(|r| r.connected_slaves)
                    .map_err(|e| e.to_string())
            },
            |connected| *connected == Ok(0),
        )
        .await;
        let after: Option<String> = on_slave.get("order:after").await.expect("reads");
        assert_eq!(after, None, "it no longer follows");
        let kept: i64 = redis::cmd("DBSIZE")
            .query_async(&mut on_slave)
            .await
            .expect("dbsize");
        assert_eq!(kept, 1002, "it kept its data (1000 + order:late + x)");
        slave.ensure_stopped(&password).await.expect("stops");
        slave.ensure_running(&password).await.expect("restarts");
        assert_eq!(
            slave.replication(&password).await.expect("INFO").role,
            "master",
            "still a master after a restart"
        );
    });
}

/// Managed Redis runs with the append-only file, fsynced every second: a
/// crash loses about a second of acknowledged writes, not the minutes since
/// the last snapshot. A server whose data is only an RDB (restored, or from
/// before AOF was on) keeps it when the AOF is switched on.
#[test]
fn redis_runs_with_the_append_only_file_and_keeps_rdb_data_when_it_is_switched_on() {
    let dir = tempfile::tempdir().expect("temp dir");
    let provider = LocalHost::prepare(&dir.path().join(".dbgroups"))
        .expect("provider")
        .0
        .into_ref();
    let password = generate_password();
    let server = crate::common::block_on(RedisServer::new(
        &provider,
        "redis-main",
        free_port().expect("port"),
    ))
    .expect("installed");
    let _guard = Running(server.clone(), password.clone());
    crate::common::runtime().block_on(async {
        server
            .ensure_provisioned(&password)
            .await
            .expect("provision");
        let mut conn = server.client(&password).await.expect("connects");
        let config: Vec<String> = redis::cmd("CONFIG")
            .arg("GET")
            .arg("append*")
            .query_async(&mut conn)
            .await
            .expect("CONFIG GET");
        let pairs: std::collections::BTreeMap<_, _> = config
            .chunks(2)
            .map(|pair| (pair[0].clone(), pair[1].clone()))
            .collect();
        assert_eq!(pairs.get("appendonly").map(String::as_str), Some("yes"));
        assert_eq!(
            pairs.get("appendfsync").map(String::as_str),
            Some("everysec")
        );
        let _: () = conn.set("order:1", 1).await.expect("writes");

        // Only an RDB is left, as after a restore or on a server from
        // before AOF: Redis with `appendonly yes` would start empty.
        let _: () = redis::cmd("SAVE")
            .query_async(&mut conn)
            .await
            .expect("SAVE");
        server.ensure_stopped(&password).await.expect("stops");
        let aof = server.dir().join("data/appendonlydir");
        std::fs::remove_dir_all(&aof).expect("the AOF was written");
        server.ensure_running(&password).await.expect("starts");
        let mut conn = server.client(&password).await.expect("connects");
        let kept: Option<i64> = conn.get("order:1").await.expect("reads");
        assert_eq!(kept, Some(1), "the RDB's data was loaded");
        assert!(aof.is_dir(), "and the AOF is on again");
        server.ensure_stopped(&password).await.expect("stops");
        server
            .ensure_running(&password)
            .await
            .expect("starts from the AOF");
        let mut conn = server.client(&password).await.expect("connects");
        let kept: Option<i64> = conn.get("order:1").await.expect("reads");
        assert_eq!(kept, Some(1), "the data survives a restart from the AOF");
    });
}

//! The PostgreSQL engine on real servers started by the test.

use dbgroups_engines::{LocalProvider, PostgresServer, free_port, generate_password};

/// Stops the server when the test ends, pass or fail.
struct Running(PostgresServer);

impl Drop for Running {
    fn drop(&mut self) {
        self.0.stop_now();
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

#[test]
fn provision_is_replication_ready_runs_unprivileged_and_is_idempotent() {
    let dir = tempfile::tempdir().expect("temp dir");
    let state_dir = dir.path().join(".dbgroups");
    let (provider, _notes) = LocalProvider::prepare(&state_dir).expect("provider");
    let server = PostgresServer::new(&provider, "pg-main", "15", free_port().expect("port"))
        .expect("postgresql 15 is installed");
    let _guard = Running(server.clone());
    let (superuser, app, replication) = (
        generate_password(),
        generate_password(),
        generate_password(),
    );

    runtime().block_on(async {
        server.ensure_initialised(&superuser).await.expect("initdb");
        server.ensure_running().await.expect("start");
        server
            .ensure_accounts(&superuser, "shop", &app, "shop", &replication)
            .await
            .expect("accounts");

        let client = server
            .connect("shop", &app, "shop")
            .await
            .expect("the application can log in");
        client
            .batch_execute(
                "CREATE TABLE orders (id int PRIMARY KEY); INSERT INTO orders VALUES (1), (2);",
            )
            .await
            .expect("writes");
        let count: i64 = client
            .query_one("SELECT count(*) FROM orders", &[])
            .await
            .expect("reads")
            .get(0);
        assert_eq!(count, 2);
        let wal_level: String = client
            .query_one("SHOW wal_level", &[])
            .await
            .expect("show")
            .get(0);
        assert_eq!(wal_level, "replica", "replication-ready from birth");
        let senders: String = client
            .query_one("SHOW max_wal_senders", &[])
            .await
            .expect("show")
            .get(0);
        assert_eq!(senders, "10");
        let wrong = server.connect("shop", "not-the-password", "shop").await;
        assert!(wrong.is_err(), "password authentication is enforced");

        // Everything again: nothing is re-initialised and the data stays.
        server.ensure_stopped().await.expect("stop");
        assert!(!server.is_running().await);
        server
            .ensure_initialised(&superuser)
            .await
            .expect("initdb again is a no-op");
        server.ensure_running().await.expect("start again");
        server
            .ensure_accounts(&superuser, "shop", &app, "shop", &replication)
            .await
            .expect("accounts again");
        let client = server.connect("shop", &app, "shop").await.expect("logs in");
        let count: i64 = client
            .query_one("SELECT count(*) FROM orders", &[])
            .await
            .expect("reads")
            .get(0);
        assert_eq!(
            count, 2,
            "the data survived a restart and a second provision"
        );
    });

    if let Some(user) = provider.service_user() {
        // Running as root: the server runs as the unprivileged user.
        assert_eq!(
            dbgroups_engines::postgres::owner_uid(&server.data_dir()),
            Some(user.uid)
        );
    }
    let log = std::fs::read_to_string(server.dir().join("postgresql.log")).unwrap_or_default();
    for secret in [&superuser, &app, &replication] {
        assert!(
            !log.contains(secret.as_str()),
            "a password reached the server log"
        );
    }
}

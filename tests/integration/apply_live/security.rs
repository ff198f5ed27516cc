//! The security of what dbgroups runs, on one live deployment of
//! PostgreSQL, MariaDB and Redis, each a master and a slave: servers listen
//! on loopback only; every account has its own generated password and no
//! door opens without it; data directories are 0700; every file that holds
//! a secret is 0600.

use std::os::unix::fs::PermissionsExt;

use mysql_async::prelude::Queryable;

use super::*;

const EVERY_ENGINE: &str = r#"
application: shop
postgresql:
  configuration: { version: "15" }
  backups: { managed: true }
  servers:
    - server: { unique_name: pg-main }
    - server: { unique_name: pg-replica-1 }
mysql:
  configuration: { engine: mariadb, version: "10.11" }
  backups: { managed: true }
  servers:
    - server: { unique_name: db-main }
    - server: { unique_name: db-replica-1 }
redis:
  configuration: { version: "7.0" }
  servers:
    - server: { unique_name: redis-main }
    - server: { unique_name: redis-replica-1 }
"#;

/// The local addresses listening on `port`, from /proc/net/tcp and tcp6
/// (state 0A is LISTEN), as the kernel's hex.
fn listeners(port: u16) -> Vec<String> {
    let mut found = Vec::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let text = std::fs::read_to_string(table).unwrap_or_default();
        for line in text.lines().skip(1) {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let (Some(local), Some(state)) = (fields.get(1), fields.get(3)) else {
                continue;
            };
            let Some((address, hex_port)) = local.rsplit_once(':') else {
                continue;
            };
            if *state == "0A" && u16::from_str_radix(hex_port, 16) == Ok(port) {
                found.push(address.to_string());
            }
        }
    }
    found
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path)
        .expect("metadata")
        .permissions()
        .mode()
        & 0o777
}

#[test]
fn servers_listen_on_loopback_need_their_passwords_and_keep_secrets_private() {
    let (dir, _servers) = quickstart();
    set_manifest(dir.path(), EVERY_ENGINE);
    apply_ok(dir.path(), &[]);
    let state = state(dir.path());
    let servers: Vec<(String, u16)> = state
        .groups
        .iter()
        .flat_map(|g| &g.servers)
        .map(|s| (s.unique_name.to_string(), s.port.expect("port")))
        .collect();
    assert_eq!(servers.len(), 6);

    // Loopback only: 0100007F is 127.0.0.1 in /proc's byte order.
    for (server, port) in &servers {
        let addresses = listeners(*port);
        assert!(!addresses.is_empty(), "{server} listens on {port}");
        assert!(
            addresses.iter().all(|a| a == "0100007F"),
            "{server} listens beyond loopback: {addresses:?}"
        );
    }

    // A generated password for every account, each one different.
    let secrets = all_secrets(&state);
    assert!(secrets.len() >= 8, "{} secrets", secrets.len());
    let distinct: std::collections::BTreeSet<&String> = secrets.iter().collect();
    assert_eq!(distinct.len(), secrets.len(), "no password is reused");
    assert!(
        secrets
            .iter()
            .all(|s| s.len() == 32 && s.chars().all(|c| c.is_ascii_alphanumeric())),
        "generated: 32 letters and digits"
    );

    let runtime = crate::common::runtime();
    runtime.block_on(async {
        // PostgreSQL: password methods only, over TCP too; replication too.
        for server in ["pg-main", "pg-replica-1"] {
            let hba = std::fs::read_to_string(
                dir.path()
                    .join(format!(".dbgroups/servers/{server}/data/pg_hba.conf")),
            )
            .expect("pg_hba.conf");
            let rules: Vec<&str> = hba
                .lines()
                .filter(|l| !l.trim_start().starts_with('#') && !l.trim().is_empty())
                .collect();
            assert!(
                rules
                    .iter()
                    .all(|l| l.trim_end().ends_with("scram-sha-256")),
                "{server}: {rules:?}"
            );
            assert!(
                rules.iter().any(|l| l.contains("replication")),
                "{server}: {rules:?}"
            );
        }
        let pg_port = port(&state, "pg-main");
        for (user, database) in [
            ("shop", "shop"),
            ("postgres", "postgres"),
            ("replicator", "postgres"),
        ] {
            let refused = tokio_postgres::Config::new()
                .host("127.0.0.1")
                .port(pg_port)
                .user(user)
                .password("not-the-password")
                .dbname(database)
                .connect(tokio_postgres::NoTls)
                .await;
            assert!(
                refused.is_err(),
                "PostgreSQL let {user} in with a wrong password"
            );
        }

        // Redis: requirepass on every server, masterauth on the slave.
        for server in ["redis-main", "redis-replica-1"] {
            let client =
                redis::Client::open(format!("redis://127.0.0.1:{}/0", port(&state, server)))
                    .expect("url");
            let mut conn = client
                .get_multiplexed_async_connection()
                .await
                .expect("connects");
            let refused: redis::RedisResult<String> =
                redis::cmd("PING").query_async(&mut conn).await;
            let error = refused.expect_err("no command without the password");
            assert!(error.to_string().contains("NOAUTH"), "{server}: {error}");
        }
        let replica = redis::Client::open(format!(
            "redis://:{}@127.0.0.1:{}/0",
            password(&state, "redis.default"),
            port(&state, "redis-replica-1")
        ))
        .expect("url");
        let mut conn = replica
            .get_multiplexed_async_connection()
            .await
            .expect("connects");
        let masterauth: Vec<String> = redis::cmd("CONFIG")
            .arg("GET")
            .arg("masterauth")
            .query_async(&mut conn)
            .await
            .expect("reads");
        assert!(
            masterauth.get(1).is_some_and(|m| !m.is_empty()),
            "the slave authenticates to its master"
        );

        // MariaDB: no anonymous account and no account without a
        // password; root only through its socket, and only with its
        // password.
        let credentials = &state.credentials["mysql.default"];
        let admin = credentials.admin_password.as_ref().expect("admin").expose().to_string();
        for server in ["db-main", "db-replica-1"] {
            let socket = dir.path().join(format!(".dbgroups/servers/{server}/run/mysqld.sock"));
            let root = |password: Option<String>| {
                mysql_async::OptsBuilder::default()
                    .socket(Some(socket.display().to_string()))
                    .user(Some("root"))
                    .pass(password)
            };
            let mut conn = mysql_async::Conn::new(root(Some(admin.clone())))
                .await
                .expect("root with its password");
            let open: Option<i64> = conn
                .query_first(
                    // Locked accounts (mariadb.sys) cannot log in at all.
                    "SELECT COUNT(*) FROM mysql.global_priv WHERE User = '' \
                     OR (IFNULL(JSON_VALUE(Priv, '$.authentication_string'), '') = '' \
                         AND IFNULL(JSON_VALUE(Priv, '$.plugin'), 'mysql_native_password') = 'mysql_native_password' \
                         AND IFNULL(JSON_VALUE(Priv, '$.account_locked'), 0) NOT IN ('1', 'true'))",
                )
                .await
                .expect("reads");
            assert_eq!(open, Some(0), "{server}: an anonymous or password-less account");
            for password in [None, Some("not-the-password".to_string())] {
                assert!(
                    mysql_async::Conn::new(root(password)).await.is_err(),
                    "{server}: root without its password"
                );
            }
            // mariadb-install-db makes root@127.0.0.1 without a password;
            // it must be gone.
            for password in [None, Some(admin.clone())] {
                let over_tcp = mysql_async::Conn::new(
                    mysql_async::OptsBuilder::default()
                        .ip_or_hostname("127.0.0.1")
                        .tcp_port(port(&state, server))
                        .user(Some("root"))
                        .pass(password),
                )
                .await;
                assert!(over_tcp.is_err(), "{server}: root over TCP");
            }
        }
    });

    // Data directories 0700; every file that holds a secret 0600.
    for (server, _) in &servers {
        let data = dir.path().join(format!(".dbgroups/servers/{server}/data"));
        assert_eq!(mode(&data), 0o700, "{}", data.display());
    }
    let mut holders = Vec::new();
    // Data directories are the databases' own files.
    for path in crate::common::files_under(dir.path(), &["data"]) {
        let text = String::from_utf8_lossy(&std::fs::read(&path).unwrap_or_default()).into_owned();
        if secrets.iter().any(|s| text.contains(s.as_str())) {
            assert_eq!(mode(&path) & 0o077, 0, "{} holds a secret", path.display());
            holders.push(
                path.strip_prefix(dir.path())
                    .unwrap_or(&path)
                    .display()
                    .to_string(),
            );
        }
    }
    // The scan found the files it must: the state and the environment file.
    for expected in [".dbgroups/apps/shop.json", ".dbgroups/env/shop.env"] {
        assert!(
            holders.iter().any(|h| h == expected),
            "{expected} not among {holders:?}"
        );
    }
    #[allow(clippy::print_stdout)] // the list is this test's figure
    {
        println!("secret-holding files, all 0600: {}", holders.join(", "));
    }
}

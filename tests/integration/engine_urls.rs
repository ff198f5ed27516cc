//! Every engine's connection string, as the environment file gives it,
//! opens a connection with the standard clients: the command-line tools
//! (run with a cleared environment, so nothing of the developer's setup
//! helps) and a driver per engine. MongoDB cannot be installed here.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use mysql_async::prelude::Queryable;

use crate::apply_live::{Servers, apply_ok, set_manifest};
use crate::common::runtime;

const THREE_ENGINES: &str = r#"
application: shop
postgresql:
  configuration: { version: "15" }
  servers:
    - server: { unique_name: pg-main }
mysql:
  configuration: { engine: mariadb, version: "10.11" }
  servers:
    - server: { unique_name: db-main }
redis:
  configuration: { version: "7.0" }
  servers:
    - server: { unique_name: redis-main }
"#;

/// The environment file's variables.
fn environment(dir: &Path) -> BTreeMap<String, String> {
    let text = std::fs::read_to_string(dir.join(".dbgroups/env/shop.env")).expect("env file");
    text.lines()
        .filter_map(|line| line.split_once('='))
        .map(|(name, value)| (name.to_string(), value.to_string()))
        .collect()
}

/// A client tool with nothing but PATH from the environment.
fn client(program: &str) -> Command {
    let mut command = Command::new(program);
    command
        .env_clear()
        .env("PATH", "/usr/bin:/bin:/usr/sbin:/sbin");
    command
}

/// Runs a client and returns its trimmed stdout, failing with what it said.
fn answer(mut command: Command, what: &str) -> String {
    let output = command
        .output()
        .unwrap_or_else(|e| panic!("{what} runs: {e}"));
    let stdout = String::from_utf8_lossy(&output.stdout).trim().to_string();
    assert!(
        output.status.success(),
        "{what} failed: {stdout} {}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

#[test]
fn every_url_connects_with_the_standard_clients_and_drivers() {
    let dir = tempfile::tempdir().expect("temp dir");
    let _servers = Servers {
        state_dir: dir.path().join(".dbgroups"),
    };
    set_manifest(dir.path(), THREE_ENGINES);
    apply_ok(dir.path(), &[]);
    let env = environment(dir.path());
    let var = |name: &str| {
        env.get(name)
            .unwrap_or_else(|| panic!("{name} is in the environment file"))
            .clone()
    };

    // psql takes the URL as its connection string.
    let mut psql = client("/usr/bin/psql");
    psql.arg(var("POSTGRESQL_URL"))
        .args(["--no-psqlrc", "-tAc", "SELECT current_user"]);
    assert_eq!(answer(psql, "psql"), var("POSTGRESQL_USERNAME"));

    // redis-cli -u: Redis 7 refuses `redis://:PASSWORD@` (no user name).
    let mut redis_cli = client("/usr/bin/redis-cli");
    redis_cli
        .args(["--no-auth-warning", "-u"])
        .arg(var("REDIS_URL"))
        .arg("PING");
    assert_eq!(answer(redis_cli, "redis-cli -u"), "PONG");

    // The mariadb client takes no URL: it gets the discrete variables, with
    // the password in an option file rather than an argument.
    let options = dir.path().join("client.cnf");
    std::fs::write(
        &options,
        format!(
            "[client]\nhost = {}\nport = {}\nuser = {}\npassword = {}\ndatabase = {}\n",
            var("MYSQL_ADDRESS"),
            var("MYSQL_PORT"),
            var("MYSQL_USERNAME"),
            var("MYSQL_PASSWORD"),
            var("MYSQL_DATABASE"),
        ),
    )
    .expect("option file");
    let mut mariadb = client("/usr/bin/mariadb");
    mariadb
        .arg(format!("--defaults-file={}", options.display()))
        .args(["-N", "-e", "SELECT DATABASE()"]);
    assert_eq!(answer(mariadb, "mariadb"), var("MYSQL_DATABASE"));

    runtime().block_on(async {
        let (postgres, connection) =
            tokio_postgres::connect(&var("POSTGRESQL_URL"), tokio_postgres::NoTls)
                .await
                .expect("tokio-postgres connects with POSTGRESQL_URL");
        tokio::spawn(connection);
        let user: String = postgres
            .query_one("SELECT current_user::text", &[])
            .await
            .expect("reads")
            .get(0);
        assert_eq!(user, var("POSTGRESQL_USERNAME"));

        let redis =
            redis::Client::open(var("REDIS_URL")).expect("the redis crate parses REDIS_URL");
        let mut connection = redis
            .get_multiplexed_async_connection()
            .await
            .expect("the redis crate connects with REDIS_URL");
        let pong: String = redis::cmd("PING")
            .query_async(&mut connection)
            .await
            .expect("PING");
        assert_eq!(pong, "PONG");

        let opts =
            mysql_async::Opts::from_url(&var("MYSQL_URL")).expect("mysql_async parses MYSQL_URL");
        let mut mysql = mysql_async::Conn::new(opts)
            .await
            .expect("mysql_async connects with MYSQL_URL");
        let database: Option<String> = mysql.query_first("SELECT DATABASE()").await.expect("reads");
        assert_eq!(database, Some(var("MYSQL_DATABASE")));
        let _ = mysql.disconnect().await;
    });
}

//! Hostile names and values. Both paths are tested: names with shell
//! metacharacters, quotes, `../`, SQL and newlines are rejected by
//! validation, with the line they came from, before anything runs; and the
//! engines quote or refuse what reaches SQL themselves, so a value that got
//! past validation could still not be spliced in. That no command is ever
//! built as a shell string is checked over the sources in architecture.rs.

use crate::cli::dbgroups_in;

/// Names an attacker or a typo might put in a manifest.
const HOSTILE: [&str; 10] = [
    "a;rm -rf x",
    "$(touch pwned)",
    "`touch pwned`",
    "a\"b",
    "a'b",
    "../../etc",
    "x/../y",
    "Robert'); DROP TABLE students;--",
    "line\\nbreak",
    "-rf",
];

/// Puts `hostile` in one place of an otherwise valid manifest.
fn manifests(hostile: &str) -> [(&'static str, String); 6] {
    // Double-quoted YAML scalars: quotes and backslashes escaped, so the
    // value parsed is exactly `hostile` (with "\n" a real newline).
    let quoted = format!("\"{}\"", hostile.replace('"', "\\\""));
    [
        (
            "application name",
            format!(
                "application: {quoted}\nredis:\n  configuration: {{ version: \"7.0\" }}\n  servers:\n    - server: {{ unique_name: redis-main }}\n"
            ),
        ),
        (
            "group name",
            format!(
                "application: shop\nredis:\n  groups:\n    {quoted}:\n      configuration: {{ version: \"7.0\" }}\n      servers:\n        - server: {{ unique_name: redis-main }}\n"
            ),
        ),
        (
            "unique_name",
            format!(
                "application: shop\nredis:\n  configuration: {{ version: \"7.0\" }}\n  servers:\n    - server: {{ unique_name: {quoted} }}\n"
            ),
        ),
        // The ssh provider's values reach the ssh command line.
        (
            "address",
            format!(
                "application: shop\nredis:\n  servers:\n    - server:\n        unique_name: redis-main\n        address: {quoted}\n"
            ),
        ),
        (
            "ssh.user",
            format!(
                "application: shop\nssh:\n  user: {quoted}\nredis:\n  servers:\n    - server: {{ unique_name: redis-main, address: db1.internal }}\n"
            ),
        ),
        (
            "ssh.jump",
            format!(
                "application: shop\nredis:\n  servers:\n    - server:\n        unique_name: redis-main\n        address: db1.internal\n        ssh: {{ jump: {quoted} }}\n"
            ),
        ),
    ]
}

#[test]
fn hostile_names_are_rejected_by_validation_at_their_line_and_nothing_runs() {
    let mut cases = 0;
    for hostile in HOSTILE {
        for (place, manifest) in manifests(hostile) {
            let dir = tempfile::tempdir().expect("dir");
            std::fs::write(dir.path().join("manifest.yml"), &manifest).expect("write");
            for command in [
                &["validate"][..],
                &["plan", "--refresh=false"],
                &["apply", "--auto-approve", "--refresh=false"],
            ] {
                let run = dbgroups_in(dir.path(), command);
                assert_eq!(
                    run.code, 1,
                    "{place} {hostile:?} with {command:?}:\n{}\n{}",
                    run.stdout, run.stderr
                );
                assert!(
                    run.stderr.contains(&format!("invalid {place}")),
                    "{place} {hostile:?}: {}",
                    run.stderr
                );
                let line = manifest
                    .lines()
                    .position(|l| l.contains(&hostile.replace('"', "\\\"")))
                    .expect("the hostile line")
                    + 1;
                assert!(
                    run.stderr.contains(&format!("manifest.yml:{line}:")),
                    "{place} {hostile:?}: points at line {line}: {}",
                    run.stderr
                );
                cases += 1;
            }
            let left: Vec<_> = std::fs::read_dir(dir.path())
                .expect("dir")
                .flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect();
            assert_eq!(
                left,
                ["manifest.yml"],
                "{place} {hostile:?}: nothing was created"
            );
        }
    }
    assert_eq!(cases, HOSTILE.len() * manifests("x").len() * 3);
}

#[test]
fn hostile_names_given_as_flags_are_refused_too() {
    let dir = tempfile::tempdir().expect("dir");
    std::fs::copy(
        crate::common::repo_path("examples/quickstart/manifest.yml"),
        dir.path().join("manifest.yml"),
    )
    .expect("copy");
    for hostile in HOSTILE {
        let app = format!("--app={hostile}");
        let run = dbgroups_in(dir.path(), &["plan", "--refresh=false", &app]);
        assert_ne!(run.code, 0, "--app {hostile:?}: {}", run.stdout);
        assert!(
            run.stderr.contains("invalid --app value"),
            "--app {hostile:?}: {}",
            run.stderr
        );
        let remove = format!("--remove-server={hostile}");
        let run = dbgroups_in(dir.path(), &["plan", "--refresh=false", &remove]);
        assert_ne!(run.code, 0, "--remove-server {hostile:?}: {}", run.stdout);
    }
    assert!(!dir.path().join("pwned").exists());
    assert!(
        !dir.path().join(".dbgroups/apps").exists(),
        "no state was written"
    );
}

/// The quoting path: PostgreSQL roles and databases are created through the
/// server's own `format('%I', …)` and `%L`, so hostile names and passwords
/// arrive as exactly themselves and nothing else runs.
#[test]
fn postgresql_accounts_with_hostile_names_and_passwords_are_quoted_by_the_server() {
    use dbgroups_engines::{LocalHost, PostgresServer, free_port, generate_password};
    let dir = tempfile::tempdir().expect("dir");
    let provider = LocalHost::prepare(&dir.path().join(".dbgroups"))
        .expect("provider")
        .0
        .into_ref();
    let server = crate::common::block_on(PostgresServer::new(
        &provider,
        "pg-hostile",
        "15",
        free_port().expect("port"),
    ))
    .expect("postgresql 15");
    struct Stop(PostgresServer);
    impl Drop for Stop {
        fn drop(&mut self) {
            self.0.stop_now();
        }
    }
    let (superuser, replication) = (generate_password(), generate_password());
    let _scanned =
        crate::transcripts::ScannedDeployment::new(dir.path(), &[&superuser, &replication]);
    let _stop = Stop(server.clone());
    let (user, database, password) = (
        "shop\"; DROP TABLE canary; --",
        "db'; DROP TABLE canary; --",
        "pa'ss\"word; DROP TABLE canary; --",
    );
    let runtime = crate::common::runtime();
    runtime.block_on(async {
        server.ensure_initialised(&superuser).await.expect("initdb");
        server.ensure_running().await.expect("starts");
        let admin = server
            .connect("postgres", &superuser, "postgres")
            .await
            .expect("connects");
        admin
            .batch_execute("CREATE TABLE canary (id int); INSERT INTO canary VALUES (1);")
            .await
            .expect("canary");
        server
            .ensure_accounts(&superuser, user, password, database, &replication)
            .await
            .expect("accounts with hostile names are made, quoted");
        let login = server
            .connect(user, password, database)
            .await
            .expect("the role logs in to the database, both named exactly so");
        let who: String = login
            .query_one("SELECT current_user::text", &[])
            .await
            .expect("reads")
            .get(0);
        assert_eq!(who, user);
        let canary: i64 = admin
            .query_one("SELECT count(*) FROM canary", &[])
            .await
            .expect("the canary table is still there")
            .get(0);
        assert_eq!(canary, 1);
    });
}

/// The refusing path: the MySQL family's engine splices names into SQL
/// (MySQL has no server-side quoting function), so it refuses any name that
/// is not plain letters, digits, `_` and `-` before connecting.
#[test]
fn the_mysql_engine_refuses_unsafe_identifiers_before_any_sql() {
    use dbgroups_engines::{LocalHost, MysqlServer};
    let dir = tempfile::tempdir().expect("dir");
    let provider = LocalHost::prepare(&dir.path().join(".dbgroups"))
        .expect("provider")
        .0
        .into_ref();
    let server = crate::common::block_on(MysqlServer::new(
        &provider,
        dbgroups_manifest::Engine::Mariadb,
        "10.11",
        "db-hostile",
        1,
    ))
    .expect("mariadb is installed");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    for hostile in HOSTILE {
        for (user, database) in [(hostile, "shop"), ("shop", hostile)] {
            let refused = runtime
                .block_on(server.grant_database("unused", user, database))
                .expect_err("refused");
            assert!(
                refused.to_string().contains("is not a safe identifier"),
                "{hostile:?}: {refused}"
            );
        }
    }
}

//! The PostgreSQL state backend and secrets encrypted at rest, against a
//! real PostgreSQL server each test starts (the product's own engine,
//! which runs it as an unprivileged user when the suite runs as root).
//! `store` drives the backend directly; `runners` runs the CLI the way CI
//! does, with two working directories sharing one state.

mod encryption;
mod runners;
mod tls;

mod store;

use std::path::Path;
use std::time::Duration;

use dbgroups_engines::{LocalHost, PostgresServer, free_port, generate_password};
use dbgroups_state::{Keyring, PostgresStore, SecretPolicy};

use crate::cli::{Run, dbgroups_with_env};
use crate::common::{block_on, runtime};

/// A PostgreSQL server holding the state, stopped when the test ends.
pub(super) struct StateServer {
    server: PostgresServer,
    password: String,
    _dir: tempfile::TempDir,
}

impl StateServer {
    pub(super) fn start() -> Self {
        Self::start_with(None)
    }

    /// A server that also serves TLS with `certificate` (the product's own
    /// engine installs it, as on a host), trusting `authority` (PEM).
    pub(super) fn start_with_tls(
        authority: &str,
        certificate: &dbgroups_engines::engine::Certificate,
    ) -> Self {
        Self::start_with(Some((authority, certificate)))
    }

    fn start_with(tls: Option<(&str, &dbgroups_engines::engine::Certificate)>) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let provider = LocalHost::prepare(&dir.path().join(".dbgroups"))
            .expect("provider")
            .0
            .into_ref();
        let server = block_on(PostgresServer::new(
            &provider,
            "state-db",
            "15",
            free_port().expect("port"),
        ))
        .expect("postgresql 15 is installed")
        .exposed(tls.map(|(authority, _)| {
            std::sync::Arc::new(dbgroups_engines::engine::Exposure {
                authority: authority.to_string(),
                allow_from: Vec::new(),
            })
        }));
        let password = generate_password();
        runtime().block_on(async {
            if let Some((_, certificate)) = tls {
                server
                    .install_certificate(certificate, &password)
                    .await
                    .expect("certificate");
            }
            server.ensure_initialised(&password).await.expect("initdb");
            server.ensure_running().await.expect("start");
        });
        Self {
            server,
            password,
            _dir: dir,
        }
    }

    pub(super) fn url(&self) -> String {
        self.url_with("sslmode=disable")
    }

    /// Its URL with `options` as the query string.
    pub(super) fn url_with(&self, options: &str) -> String {
        format!(
            "postgres://postgres:{}@127.0.0.1:{}/postgres?{options}",
            self.password,
            self.server.port()
        )
    }

    /// Stops the server and starts it again: every session ends.
    pub(super) fn restart(&self) {
        runtime().block_on(async {
            self.server.ensure_stopped().await.expect("stop");
            self.server.ensure_running().await.expect("start again");
        });
    }

    /// The whole state database as `pg_dump` writes it.
    pub(super) fn dump(&self) -> String {
        let output =
            crate::common::client_tool(dbgroups_engines::postgres::binaries("15").join("pg_dump"))
                .arg(format!("--dbname={}", self.url()))
                .output()
                .expect("pg_dump runs");
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    pub(super) fn store(&self, schema: &str, policy: SecretPolicy) -> PostgresStore {
        PostgresStore::open(&self.url(), schema, policy).expect("the state database opens")
    }
}

impl Drop for StateServer {
    fn drop(&mut self) {
        self.server.stop_now();
    }
}

pub(super) const PASSPHRASE: &str = "a passphrase long enough for CI";
pub(super) const OTHER_PASSPHRASE: &str = "another passphrase, also long";

pub(super) fn keyring(passphrase: &str) -> std::sync::Arc<Keyring> {
    std::sync::Arc::new(Keyring::new(passphrase).expect("long enough"))
}

pub(super) fn encrypted() -> SecretPolicy {
    SecretPolicy {
        keyring: Some(keyring(PASSPHRASE)),
        secrets_needed: true,
        allow_plaintext: false,
    }
}

/// `dbgroups` in `dir` with these variables (and nothing of ours else).
pub(super) fn run(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Run {
    let env: Vec<(String, String)> = env
        .iter()
        .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
        .collect();
    dbgroups_with_env(dir, args, &env)
}

/// Waits for `done` to hold, up to a minute (a bound, not a measurement).
pub(super) fn eventually(what: &str, mut done: impl FnMut() -> bool) {
    let started = std::time::Instant::now();
    while !done() {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "gave up waiting: {what}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

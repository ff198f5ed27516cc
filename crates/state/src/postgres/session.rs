//! The bridge between the sync [`crate::StateStore`] and tokio-postgres:
//! the store owns a one-worker tokio runtime that drives its connection;
//! each call is spawned onto it and the caller waits for the answer on a
//! channel. Spawning is allowed from any thread, so the store works from
//! plain code and from inside the executor's own runtime alike (a
//! `block_on` there would panic).

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Mutex;
use tokio_postgres::Client;

use crate::error::StateError;

#[derive(Debug)]
pub(crate) struct Session {
    runtime: Option<tokio::runtime::Runtime>,
    /// One connection per command: its session holds the advisory locks,
    /// and the writes go through it.
    pub(crate) client: Arc<Mutex<Client>>,
    /// The URL without its password, for messages.
    pub(crate) target: String,
}

impl Session {
    pub(crate) fn connect(url: &str, target: String) -> Result<Self, StateError> {
        let setup = |detail: String| StateError::DatabaseSetup {
            target: target.clone(),
            detail,
        };
        let config: tokio_postgres::Config = url
            .parse()
            .map_err(|e: tokio_postgres::Error| setup(format!("the URL is not valid: {e}")))?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("dbgroups-state")
            .enable_all()
            .build()
            .map_err(|e| setup(format!("cannot start its runtime: {e}")))?;
        let tls = tls_connector().map_err(setup)?;
        let (tx, rx) = std::sync::mpsc::channel();
        runtime.spawn(async move {
            let connected = config.connect(tls).await.map(|(client, connection)| {
                // The connection's task ends when the server closes it;
                // the next call then fails with "connection closed".
                tokio::spawn(connection);
                client
            });
            let _ = tx.send(connected);
        });
        let client = rx
            .recv()
            .map_err(|_| setup("the connection attempt died".into()))?
            .map_err(|source| StateError::Database {
                action: "connect".into(),
                target: target.clone(),
                source,
            })?;
        Ok(Self {
            runtime: Some(runtime),
            client: Arc::new(Mutex::new(client)),
            target,
        })
    }

    /// Runs `work` with the connection on the store's runtime and waits
    /// for its result.
    pub(crate) fn run<T, F, Fut>(&self, action: &str, work: F) -> Result<T, StateError>
    where
        T: Send + 'static,
        F: FnOnce(Arc<Mutex<Client>>) -> Fut + Send + 'static,
        Fut: Future<Output = Result<T, Failure>> + Send + 'static,
    {
        let Some(runtime) = &self.runtime else {
            return Err(self.setup("the store was shut down".into()));
        };
        let (tx, rx) = std::sync::mpsc::channel();
        let client = Arc::clone(&self.client);
        runtime.spawn(async move {
            let _ = tx.send(work(client).await);
        });
        match rx.recv() {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(Failure::State(err))) => Err(err),
            Ok(Err(Failure::Database(source))) => Err(StateError::Database {
                action: if source.is_closed() {
                    format!(
                        "{action}: the connection to the state database was lost, and the lock it held went with it; nothing more was written; run the command again"
                    )
                } else {
                    action.to_string()
                },
                target: self.target.clone(),
                source,
            }),
            Err(_) => Err(self.setup(format!("the task that would {action} died"))),
        }
    }

    /// `run` with a deadline, for releasing locks on the way out: a lost
    /// connection must not hold the command up.
    pub(crate) fn run_briefly<F, Fut>(&self, work: F)
    where
        F: FnOnce(Arc<Mutex<Client>>) -> Fut + Send + 'static,
        Fut: Future<Output = Result<(), Failure>> + Send + 'static,
    {
        let _ = self.run("release the lock", move |client| async move {
            tokio::time::timeout(Duration::from_secs(5), work(client))
                .await
                .unwrap_or(Ok(()))
        });
    }

    fn setup(&self, detail: String) -> StateError {
        StateError::DatabaseSetup {
            target: self.target.clone(),
            detail,
        }
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        // Never blocks, so a store dropped inside another runtime is fine.
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

/// Why a database call failed: the database said so, or our own check.
#[derive(Debug)]
pub(crate) enum Failure {
    Database(tokio_postgres::Error),
    State(StateError),
}

impl From<tokio_postgres::Error> for Failure {
    fn from(err: tokio_postgres::Error) -> Self {
        Self::Database(err)
    }
}

impl From<StateError> for Failure {
    fn from(err: StateError) -> Self {
        Self::State(err)
    }
}

/// TLS as the URL's `sslmode` asks (tokio-postgres decides when to use
/// it: `disable` never, `prefer` when the server offers it, `require`
/// always), with rustls and the Mozilla roots (webpki-roots).
fn tls_connector() -> Result<tokio_postgres_rustls::MakeRustlsConnect, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS setup: {e}"))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(tokio_postgres_rustls::MakeRustlsConnect::new(config))
}

/// The URL as messages show it: without its password, in either form.
pub fn redact_url(url: &str) -> String {
    let mut shown = url.to_string();
    if let Some((scheme, rest)) = url.split_once("://") {
        let (authority, tail) = rest.split_at(rest.find(['/', '?']).unwrap_or(rest.len()));
        if let Some((userinfo, host)) = authority.rsplit_once('@') {
            let user = userinfo.split(':').next().unwrap_or_default();
            shown = format!("{scheme}://{user}@{host}{tail}");
        }
    }
    // `password=` in a query string or a key=value connection string.
    let mut out = String::with_capacity(shown.len());
    let mut rest = shown.as_str();
    while let Some(at) = rest.find("password=") {
        let boundary = at == 0 || matches!(rest.as_bytes()[at - 1], b'?' | b'&' | b' ');
        out.push_str(&rest[..at + "password=".len()]);
        rest = &rest[at + "password=".len()..];
        if boundary {
            out.push_str("***");
            let end = rest.find(['&', ' ']).unwrap_or(rest.len());
            rest = &rest[end..];
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::redact_url;

    #[test]
    fn the_password_never_shows() {
        for (url, shown) in [
            (
                "postgres://ci:s3cret@db.example:5432/state?sslmode=require",
                "postgres://ci@db.example:5432/state?sslmode=require",
            ),
            ("postgresql://ci@db/state", "postgresql://ci@db/state"),
            (
                "postgres://ci@db/state?password=s3cret&sslmode=disable",
                "postgres://ci@db/state?password=***&sslmode=disable",
            ),
            (
                "host=db user=ci password=s3cret dbname=state",
                "host=db user=ci password=*** dbname=state",
            ),
        ] {
            assert_eq!(redact_url(url), shown);
        }
    }
}

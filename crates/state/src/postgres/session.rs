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
        let (url, root_file) = take_tls_options(url).map_err(setup)?;
        let config: tokio_postgres::Config = url
            .parse()
            .map_err(|e: tokio_postgres::Error| setup(format!("the URL is not valid: {e}")))?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("dbgroups-state")
            .enable_all()
            .build()
            .map_err(|e| setup(format!("cannot start its runtime: {e}")))?;
        let tls = tls_connector(root_file.as_deref()).map_err(setup)?;
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

/// Takes out of the URL what libpq reads and tokio-postgres does not:
/// `sslrootcert` (a PEM file of the authorities to trust, instead of the
/// Mozilla roots: a state server with a private CA) and `sslmode=verify-full`
/// (read as `require`, which here already checks the chain and the host
/// name). `verify-ca` (the chain without the name) is refused: dbgroups
/// always checks both. Both the URL form (`?a=b&c=d`) and the key=value
/// form (`a=b c=d`) are read.
fn take_tls_options(url: &str) -> Result<(String, Option<std::path::PathBuf>), String> {
    let (head, params, separator) = match url.split_once('?') {
        Some((head, query)) if url.contains("://") => (format!("{head}?"), query, '&'),
        _ if url.contains("://") => return Ok((url.to_string(), None)),
        _ => (String::new(), url, ' '),
    };
    let mut root_file = None;
    let mut kept = Vec::new();
    for param in params.split(separator).filter(|p| !p.is_empty()) {
        match param.split_once('=') {
            Some(("sslrootcert", file)) => {
                root_file = Some(std::path::PathBuf::from(percent_decoded(file)));
            }
            Some(("sslmode", "verify-full")) => kept.push("sslmode=require".to_string()),
            Some(("sslmode", "verify-ca")) => {
                return Err(
                    "sslmode=verify-ca checks the certificate's chain but not its host name; dbgroups always checks both: use sslmode=verify-full (with sslrootcert= for a private authority)"
                        .into(),
                );
            }
            _ => kept.push(param.to_string()),
        }
    }
    let rest = kept.join(&separator.to_string());
    let url = if head.is_empty() {
        rest
    } else if rest.is_empty() {
        head.trim_end_matches('?').to_string()
    } else {
        format!("{head}{rest}")
    };
    Ok((url, root_file))
}

/// `%2F` and the like in a URL's value, as written by a URL encoder.
fn percent_decoded(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The authorities a state server's certificate is checked against: the
/// URL's `sslrootcert` file, or the Mozilla roots (webpki-roots).
fn roots(root_file: Option<&std::path::Path>) -> Result<rustls::RootCertStore, String> {
    let Some(file) = root_file else {
        return Ok(rustls::RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        });
    };
    use rustls::pki_types::{CertificateDer, pem::PemObject};
    let unreadable = |why: String| format!("sslrootcert {}: {why}", file.display());
    let pem = std::fs::read(file).map_err(|e| unreadable(e.to_string()))?;
    let mut store = rustls::RootCertStore::empty();
    for certificate in CertificateDer::pem_slice_iter(&pem) {
        let certificate = certificate.map_err(|e| unreadable(format!("not PEM: {e}")))?;
        store
            .add(certificate)
            .map_err(|e| unreadable(format!("not a usable certificate: {e}")))?;
    }
    if store.is_empty() {
        return Err(unreadable("holds no certificate".into()));
    }
    Ok(store)
}

/// TLS as the URL's `sslmode` asks (tokio-postgres decides when to use
/// it: `disable` never, `prefer` when the server offers it, `require`
/// always), with rustls; the server's certificate is checked against
/// [`roots`] and must name the host dialled.
fn tls_connector(
    root_file: Option<&std::path::Path>,
) -> Result<tokio_postgres_rustls::MakeRustlsConnect, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let roots = roots(root_file)?;
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
    use super::{redact_url, take_tls_options};

    #[test]
    fn libpq_tls_options_are_taken_out_of_the_url() {
        let (url, root) = take_tls_options(
            "postgres://ci@db.example/state?sslmode=verify-full&sslrootcert=%2Fetc%2Fdb%2Fca.crt&connect_timeout=5",
        )
        .expect("read");
        assert_eq!(
            url,
            "postgres://ci@db.example/state?sslmode=require&connect_timeout=5"
        );
        assert_eq!(
            root.as_deref(),
            Some(std::path::Path::new("/etc/db/ca.crt"))
        );
        let (url, root) =
            take_tls_options("host=db sslrootcert=/ca.pem sslmode=verify-full dbname=state")
                .expect("read");
        assert_eq!(url, "host=db sslmode=require dbname=state");
        assert_eq!(root.as_deref(), Some(std::path::Path::new("/ca.pem")));
        let (url, root) =
            take_tls_options("postgres://ci@db/state?sslrootcert=/ca.pem").expect("read");
        assert_eq!(url, "postgres://ci@db/state");
        assert!(root.is_some());
        assert_eq!(
            take_tls_options("postgres://ci@db/state").expect("read").0,
            "postgres://ci@db/state"
        );
        assert!(
            take_tls_options("postgres://ci@db/state?sslmode=verify-ca")
                .is_err_and(|e| e.contains("use sslmode=verify-full"))
        );
    }

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

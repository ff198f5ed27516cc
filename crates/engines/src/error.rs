use std::path::PathBuf;

/// What went wrong on a server, with the engine's own words where it has
/// some. Never carries a secret: secrets reach commands through files and
/// environment variables, never arguments, so a command line is safe to show.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("cannot {action} {}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("`{command}` failed ({status}): {stderr}")]
    Command {
        command: String,
        status: String,
        stderr: String,
    },
    #[error("{program} for {engine} {version} is not installed (looked in {looked}); {remedy}")]
    MissingBinary {
        program: String,
        engine: String,
        version: String,
        /// Where it was looked for, as a user would read it.
        looked: String,
        /// What to install, or that this platform has no package.
        remedy: String,
    },
    #[error("cannot prepare the unprivileged user `{user}` the servers run as: {detail}")]
    ServiceUser { user: String, detail: String },
    #[error("no free loopback port: {0}")]
    NoPort(std::io::Error),
    #[error("PostgreSQL on port {port}: {source}")]
    Postgres {
        port: u16,
        #[source]
        source: tokio_postgres::Error,
    },
    #[error("MySQL-family server on port {port}: {source}")]
    Mysql {
        port: u16,
        #[source]
        source: mysql_async::Error,
    },
    #[error("MongoDB on port {port}: {source}")]
    Mongodb {
        port: u16,
        #[source]
        source: Box<mongodb::error::Error>,
    },
    #[error("Redis on port {port}: {source}")]
    Redis {
        port: u16,
        #[source]
        source: redis::RedisError,
    },
    #[error(
        "not enough free space for {what}: {} free in {}, and it needs {} (twice the {} to copy); nothing was changed (--skip-disk-check turns this check off)",
        crate::disk::human(*free), place.display(), crate::disk::human(*needed), crate::disk::human(*size)
    )]
    DiskSpace {
        what: String,
        place: PathBuf,
        free: u64,
        needed: u64,
        size: u64,
    },
    #[error("{what} did not happen within {seconds} s")]
    Timeout { what: String, seconds: u64 },
}

pub(crate) fn io(
    action: &'static str,
    path: impl Into<PathBuf>,
) -> impl FnOnce(std::io::Error) -> EngineError {
    let path = path.into();
    move |source| EngineError::Io {
        action,
        path,
        source,
    }
}

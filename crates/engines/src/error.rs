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
    // tokio-postgres says only "error connecting to server" and keeps the
    // reason (connection refused …) in its source: show the whole chain.
    #[error("PostgreSQL on port {port}: {}", with_causes(source))]
    Postgres {
        port: u16,
        #[source]
        source: tokio_postgres::Error,
    },
    #[error("MySQL-family server on port {port}: {}", mysql_reason(source))]
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
    /// The engine's packages are missing on a host and dbgroups did not
    /// (or could not) install them.
    #[error("host {host}: {} not installed: {detail}", packages.join(" "))]
    Packages {
        host: String,
        packages: Vec<String>,
        detail: String,
    },
    /// A host of the ssh provider could not be reached or used.
    #[error("host {host}: {detail}")]
    Ssh { host: String, detail: String },
    /// A host's key is not the one trusted: dbgroups does not connect.
    #[error("host {host}: its ssh host key {problem}; {remedy}")]
    HostKey {
        host: String,
        problem: String,
        remedy: String,
    },
    /// An operation this engine cannot do yet where the plan asks it
    /// (named, with what to do instead).
    #[error("{what} is not supported yet: {remedy}")]
    Unsupported { what: String, remedy: String },
    /// A recorded managed backup that cannot be used as the plan says
    /// (missing, damaged, or its group no longer recorded).
    #[error("managed backup {id}: {reason}")]
    ManagedBackup { id: String, reason: String },
    #[error("{what} did not happen within {seconds} s")]
    Timeout { what: String, seconds: u64 },
    /// The step needs something the recorded state does not hold: the
    /// state and the plan disagree, which is no command's failure.
    #[error(
        "the recorded state does not match the plan: {0}; run `dbgroups plan` again (and `dbgroups state show` to inspect it)"
    )]
    StateMismatch(String),
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

/// An error's message followed by each cause that adds something, as
/// `a: b: c`; a wrapper that repeats its cause's text adds nothing.
pub fn with_causes(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut cause = err.source();
    while let Some(next) = cause {
        let more = next.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        cause = next.source();
    }
    text
}

/// mysql_async wraps an I/O error twice ("Input/output error: Input/output
/// error: No such file or directory"); on the local socket that means the
/// server is not running, which is what a person needs to read.
fn mysql_reason(err: &mysql_async::Error) -> String {
    if let mysql_async::Error::Io(mysql_async::IoError::Io(io)) = err {
        return match io.kind() {
            std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused => {
                format!("not running (nothing answers on its socket or port: {io})")
            }
            _ => format!("cannot reach it: {io}"),
        };
    }
    with_causes(err)
}

impl EngineError {
    /// A server that could not listen because its port was taken between
    /// the check that it was free and the server's bind: each engine's
    /// start failure carries its log's last lines, where PostgreSQL
    /// ("could not bind … Address already in use"), MariaDB ("Bind on
    /// TCP/IP port … Address already in use"), Redis ("bind: Address
    /// already in use") and MongoDB ("Address already in use") say so.
    pub fn is_address_in_use(&self) -> bool {
        self.to_string().contains("Address already in use")
    }
}

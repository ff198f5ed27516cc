use std::path::PathBuf;

use crate::lock::LockInfo;

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("cannot {action} {}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("state file {} is corrupt: {detail}; it was left untouched ({})", path.display(), PreviousVersion(previous.as_deref()))]
    Corrupt {
        path: PathBuf,
        detail: String,
        /// The version kept before the last write, when there is one: the
        /// first state ever written has none, and naming a file that does
        /// not exist sends the user looking for it.
        previous: Option<PathBuf>,
    },
    #[error("state file {} has format version {found}, newer than this dbgroups understands ({supported}); upgrade dbgroups", path.display())]
    NewerFormat {
        path: PathBuf,
        found: u32,
        supported: u32,
    },
    #[error("state file {} records application \"{found}\", not \"{expected}\"", path.display())]
    WrongApplication {
        path: PathBuf,
        expected: String,
        found: String,
    },
    #[error("the state is locked by {holder}")]
    Locked { holder: Box<LockHolder> },
    #[error(
        "the state of \"{application}\" changed since it was read (serial {expected} expected, {found} on disk); nothing was written"
    )]
    Conflict {
        application: String,
        expected: u64,
        found: u64,
    },
    #[error("no lock with id {id} is held{}", current.as_ref().map(|c| format!(" (the current lock is {c})")).unwrap_or_default())]
    NoSuchLock { id: String, current: Option<String> },
    #[error("invalid application name \"{0}\"")]
    InvalidApplication(String),
    #[error(
        "the state of \"{application}\" is recorded in {location} and cannot be read: {detail}; it was left untouched"
    )]
    CorruptRecord {
        application: String,
        location: String,
        detail: String,
    },
    #[error(
        "the secrets in the state of \"{application}\" are encrypted and this command needs them: set DBGROUPS_STATE_PASSPHRASE (or DBGROUPS_STATE_PASSPHRASE_FILE)"
    )]
    PassphraseRequired { application: String },
    #[error(
        "the passphrase does not open the secrets of \"{application}\" (the key check fails): it is not the one they were encrypted with; nothing was read or written"
    )]
    WrongPassphrase { application: String },
    #[error("the state passphrase has {chars} characters; it needs at least {minimum}")]
    PassphraseTooShort { chars: usize, minimum: usize },
    #[error(
        "refusing to store the secrets of \"{application}\" in plain text in {backend}: set DBGROUPS_STATE_PASSPHRASE to encrypt them, or pass --allow-plaintext-secrets"
    )]
    PlaintextRefused {
        application: String,
        backend: String,
    },
    #[error("state encryption: {0}")]
    Crypto(String),
    #[error("the state database {target}: cannot {action}")]
    Database {
        action: String,
        target: String,
        #[source]
        source: tokio_postgres::Error,
    },
    #[error(
        "the state database {target} has schema version {found}, newer than this dbgroups understands ({supported}); upgrade dbgroups"
    )]
    NewerSchema {
        target: String,
        found: i32,
        supported: i32,
    },
    #[error("the state database {target} is not usable: {detail}")]
    DatabaseSetup { target: String, detail: String },
    #[error("no version {serial} of \"{application}\" is kept{}", if kept.is_empty() { String::new() } else { format!(" (kept: {})", kept.iter().map(u64::to_string).collect::<Vec<_>>().join(", ")) })]
    NoSuchVersion {
        application: String,
        serial: u64,
        kept: Vec<u64>,
    },
    #[error(
        "\"{application}\" has lineage {target_lineage} in {target}, not {source_lineage}: it is another state, and migrate does not overwrite it"
    )]
    LineageMismatch {
        application: String,
        target: String,
        source_lineage: String,
        target_lineage: String,
    },
    #[error(
        "\"{application}\" is at serial {target_serial} in {target}, ahead of the {source_serial} being copied; nothing was written"
    )]
    TargetAhead {
        application: String,
        target: String,
        source_serial: u64,
        target_serial: u64,
    },
}

/// Where to look for the last good version of a corrupt state file.
struct PreviousVersion<'a>(Option<&'a std::path::Path>);

impl std::fmt::Display for PreviousVersion<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            Some(path) => write!(f, "the previous version is {}", path.display()),
            None => f.write_str("no previous version was kept: it was the first one written"),
        }
    }
}

/// Who holds a lock, as far as their note says.
#[derive(Debug)]
pub struct LockHolder(pub Option<LockInfo>);

impl std::fmt::Display for LockHolder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.0 {
            Some(info) => write!(f, "{info}"),
            None => f.write_str("a process that left no note (it is still running)"),
        }
    }
}

pub(crate) fn io(
    action: &'static str,
    path: impl Into<PathBuf>,
) -> impl FnOnce(std::io::Error) -> StateError {
    let path = path.into();
    move |source| StateError::Io {
        action,
        path,
        source,
    }
}

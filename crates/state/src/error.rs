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
    Locked { holder: LockHolder },
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

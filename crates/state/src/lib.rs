//! dbgroups' recorded state: what exists, as far as dbgroups knows.
//!
//! [`AppState`] is one application's record — its [`GroupState`]s and
//! [`ServerState`]s, [`Credentials`], backups, the environment last written
//! and the [`Journal`] of an interrupted apply — with the `format_version`,
//! `lineage` and `serial` that let a plan detect a state that moved.
//! [`StateStore`] is the backend interface and [`DirectoryStore`] the
//! embedded default: one JSON file per application, written atomically with
//! the previous version kept, under a [`LockGuard`] that the OS releases if
//! its process dies.

mod error;
mod fsutil;
mod lock;
mod model;
mod store;

pub use error::{LockHolder, StateError};
pub use fsutil::{PRIVATE_MODE, write_private_file};
pub use lock::{LockGuard, LockInfo};
pub use model::{
    AppState, BackupRecord, Credentials, FORMAT_VERSION, GroupState, Journal, MASK, PendingServer,
    Role, Secret, ServerState, SourceRef, StepStatus,
};
pub use model::{ManagedBackup, Verification};
pub use store::{DirectoryStore, StateStore};

//! dbgroups' recorded state: what exists, as far as dbgroups knows.
//!
//! [`AppState`] is one application's record — its [`GroupState`]s and
//! [`ServerState`]s, [`Credentials`], backups, the environment last written
//! and the [`Journal`] of an interrupted apply — with the `format_version`,
//! `lineage` and `serial` that let a plan detect a state that moved.
//! [`StateStore`] is the backend interface; [`DirectoryStore`] is the
//! embedded default (one JSON file per application, written atomically
//! with the previous version kept, under a flock) and [`PostgresStore`]
//! the shared one (every version kept, advisory locks). Every [`Secret`]
//! is sealed with AES-256-GCM when a passphrase is given ([`Keyring`]).

mod backend;
mod directory;
mod error;
mod fsutil;
mod lock;
mod model;
mod postgres;
mod secrets;
mod store;

pub use backend::Backend;
pub use directory::DirectoryStore;
pub use error::{LockHolder, StateError};
pub use fsutil::{PRIVATE_MODE, write_private_file};
pub use lock::{LockGuard, LockInfo};
pub use model::{
    AppState, Authority, BackupRecord, Credentials, FORMAT_VERSION, GroupState, Journal, MASK,
    PendingServer, Role, Secret, ServerState, SourceRef, StepStatus,
};
pub use model::{ManagedBackup, Verification};
pub use postgres::{DEFAULT_SCHEMA, PostgresStore, redact_url};
pub use secrets::{
    EncryptionHeader, Keyring, MIN_PASSPHRASE_CHARS, PBKDF2_ITERATIONS, SEALED_VARIABLE_PREFIX,
    SecretPolicy,
};
pub use store::{LockScope, StateStore, StoredVersion};

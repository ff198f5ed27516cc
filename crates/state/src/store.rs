//! The backend interface every command goes through: [`StateStore`].
//! Two backends implement it: [`crate::DirectoryStore`] (embedded) and
//! [`crate::PostgresStore`] (shared); [`crate::Backend`] is either.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use crate::error::StateError;
use crate::lock::{LockGuard, LockInfo};
use crate::model::AppState;
use crate::secrets::Keyring;

/// What a writing command locks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockScope<'a> {
    /// One application: what `plan --out`, `apply` and `destroy` change.
    /// The directory backend has one lock for all its applications.
    Application(&'a str),
    /// Every application: `state rekey` and `state migrate`.
    Everything,
}

/// One written version of an application's state, as stored: for
/// `state history` and for `state migrate`, which copies it byte for byte.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredVersion {
    pub serial: u64,
    pub lineage: String,
    /// RFC 3339, UTC.
    pub written_at: String,
    /// The command that wrote it (`apply`, `destroy` …), when known.
    pub command: String,
    /// `user@host` of the writer, when known.
    pub written_by: String,
    /// The state document exactly as stored (secrets sealed or not).
    pub document: Vec<u8>,
}

/// A backend for recorded state. Several applications share one store,
/// which is how replication between applications finds its source.
pub trait StateStore {
    /// Where the state is, for messages: a directory, or a database URL
    /// without its password.
    fn describe(&self) -> String;
    /// The applications with recorded state, sorted.
    fn applications(&self) -> Result<Vec<String>, StateError>;
    /// One application's state, or `None` if it has never been written.
    fn load(&self, application: &str) -> Result<Option<AppState>, StateError>;
    /// Writes `state` as the next serial. Refuses if the stored serial or
    /// lineage is not the one `state` was read at.
    fn save(&self, lock: &LockGuard, state: &mut AppState) -> Result<(), StateError>;
    /// Takes the lock for a writing command, waiting up to `timeout`.
    fn lock(
        &self,
        scope: LockScope<'_>,
        operation: &str,
        timeout: Duration,
    ) -> Result<LockGuard, StateError>;
    /// Who holds locks right now.
    fn lock_holders(&self) -> Result<Vec<LockInfo>, StateError>;
    /// Breaks the lock with this id (`state unlock`).
    fn force_unlock(&self, id: &str) -> Result<LockInfo, StateError>;
    /// Ends an application's record after `destroy`: it is no longer
    /// listed or loaded, so the same manifest applied again makes a new
    /// application. Refuses, like `save`, if `state` is not what is stored.
    fn retire(&self, lock: &LockGuard, state: &AppState) -> Result<(), StateError>;
    /// The versions kept of the application's current lineage, oldest
    /// first: every one in PostgreSQL, the last two in a directory.
    fn versions(&self, application: &str) -> Result<Vec<StoredVersion>, StateError>;
    /// One kept version, read like `load` reads the current one.
    fn load_version(&self, application: &str, serial: u64) -> Result<AppState, StateError>;
    /// Copies `versions` (one lineage, oldest first) in, after the ones
    /// already here: `state migrate`. Returns how many were written; none
    /// when the target already has them. Refuses another lineage.
    fn import(
        &self,
        lock: &LockGuard,
        application: &str,
        versions: &[StoredVersion],
    ) -> Result<usize, StateError>;
    /// Re-encrypts the secrets of every version of every application,
    /// opened with `from` (`None`: they are plain text), under `to`:
    /// `state rekey`. Returns how many documents were rewritten.
    fn rekey(
        &self,
        lock: &LockGuard,
        from: Option<&Arc<Keyring>>,
        to: &Keyring,
    ) -> Result<usize, StateError>;

    /// Every application's state, for plans that reach across applications.
    fn load_all(&self) -> Result<BTreeMap<String, AppState>, StateError> {
        let mut all = BTreeMap::new();
        for application in self.applications()? {
            if let Some(state) = self.load(&application)? {
                all.insert(application, state);
            }
        }
        Ok(all)
    }
}

/// The current time, as versions record it.
pub(crate) fn now_rfc3339() -> String {
    humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string()
}

/// `user@host`, as versions record their writer.
pub(crate) fn writer() -> String {
    let user = std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .unwrap_or_else(|_| format!("uid {}", rustix_uid()));
    format!("{user}@{}", crate::lock::hostname())
}

fn rustix_uid() -> String {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Uid:"))
                .and_then(|l| l.split_whitespace().next().map(str::to_string))
        })
        .unwrap_or_else(|| "?".into())
}

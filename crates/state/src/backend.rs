//! Either backend, chosen at run time (`--state-dir` or `--state-url`).

use std::sync::Arc;
use std::time::Duration;

use crate::directory::DirectoryStore;
use crate::error::StateError;
use crate::lock::{LockGuard, LockInfo};
use crate::model::AppState;
use crate::postgres::PostgresStore;
use crate::secrets::Keyring;
use crate::store::{LockScope, StateStore, StoredVersion};

#[derive(Debug, Clone)]
pub enum Backend {
    Directory(DirectoryStore),
    Postgres(PostgresStore),
}

macro_rules! each {
    ($self:ident, $store:ident => $call:expr) => {
        match $self {
            Backend::Directory($store) => $call,
            Backend::Postgres($store) => $call,
        }
    };
}

impl StateStore for Backend {
    fn describe(&self) -> String {
        each!(self, store => store.describe())
    }
    fn applications(&self) -> Result<Vec<String>, StateError> {
        each!(self, store => store.applications())
    }
    fn load(&self, application: &str) -> Result<Option<AppState>, StateError> {
        each!(self, store => store.load(application))
    }
    fn save(&self, lock: &LockGuard, state: &mut AppState) -> Result<(), StateError> {
        each!(self, store => store.save(lock, state))
    }
    fn lock(
        &self,
        scope: LockScope<'_>,
        operation: &str,
        timeout: Duration,
    ) -> Result<LockGuard, StateError> {
        each!(self, store => store.lock(scope, operation, timeout))
    }
    fn lock_holders(&self) -> Result<Vec<LockInfo>, StateError> {
        each!(self, store => store.lock_holders())
    }
    fn force_unlock(&self, id: &str) -> Result<LockInfo, StateError> {
        each!(self, store => store.force_unlock(id))
    }
    fn retire(&self, lock: &LockGuard, state: &AppState) -> Result<(), StateError> {
        each!(self, store => store.retire(lock, state))
    }
    fn versions(&self, application: &str) -> Result<Vec<StoredVersion>, StateError> {
        each!(self, store => store.versions(application))
    }
    fn load_version(&self, application: &str, serial: u64) -> Result<AppState, StateError> {
        each!(self, store => store.load_version(application, serial))
    }
    fn import(
        &self,
        lock: &LockGuard,
        application: &str,
        versions: &[StoredVersion],
    ) -> Result<usize, StateError> {
        each!(self, store => store.import(lock, application, versions))
    }
    fn rekey(
        &self,
        lock: &LockGuard,
        from: Option<&Arc<Keyring>>,
        to: &Keyring,
    ) -> Result<usize, StateError> {
        each!(self, store => store.rekey(lock, from, to))
    }
}

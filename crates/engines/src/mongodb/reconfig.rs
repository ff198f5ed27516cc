//! Reconfigs of a replica set, one at a time. A reconfig is a
//! read-modify-write of the set's config: `replSetGetConfig`, a member
//! added or removed, `version` + 1, `replSetReconfig`. Two of them on one
//! set at once (two members' enslave steps in one wave) would both read
//! version v and both send v + 1, and the second would be refused (103
//! NewReplicaSetConfigurationIncompatible, or 109 ConfigurationInProgress
//! while the first is still being installed, or 308
//! CurrentConfigNotCommittedYet until a majority has it). So every reconfig
//! of a set in this process holds the set's lock from the read to the
//! answer, and a refusal that a later attempt can overcome re-reads the
//! config and tries again, a bounded number of times (manual,
//! "replSetReconfig": "the new version must be greater than the current
//! one"; only one reconfig at a time, and it waits for the previous config
//! to be committed).
//!
//! The read and the send are parameters, so a test drives this with a
//! simulated set (tests/integration/mongodb_reconfig.rs).

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, LazyLock, Mutex};
use std::time::Duration;

use mongodb::bson::Document;

use super::commands;
use crate::error::EngineError;

/// A refused `replSetReconfig`: the server's error code, when it gave one.
#[derive(Debug)]
pub struct Refusal {
    pub code: Option<i32>,
    pub error: EngineError,
}

/// How often, and how far apart, a refused reconfig is tried again.
#[derive(Debug, Clone, Copy)]
pub struct Retry {
    pub attempts: u32,
    pub pause: Duration,
}

impl Default for Retry {
    /// About two minutes: a reconfig commits once a majority has it, which
    /// takes seconds on a healthy set.
    fn default() -> Self {
        Self {
            attempts: 60,
            pause: Duration::from_secs(2),
        }
    }
}

static SET_LOCKS: LazyLock<Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>> =
    LazyLock::new(|| Mutex::new(HashMap::new()));

/// The lock of `set` in this process.
pub async fn lock_set(set: &str) -> tokio::sync::OwnedMutexGuard<()> {
    let lock = {
        let mut locks = SET_LOCKS.lock().unwrap_or_else(|e| e.into_inner());
        Arc::clone(locks.entry(set.to_string()).or_default())
    };
    lock.lock_owned().await
}

/// Applies `change` to `set`'s config: under the set's lock, reading the
/// config with `read`, sending the changed one with `send`, and on a
/// retryable refusal ([`commands::reconfig_retryable`]) reading it again.
/// Returns whether a reconfig was sent (`change` returns `None` when the
/// config already has what it wants).
pub async fn reconfigure_with<R, RF, S, SF, C>(
    set: &str,
    retry: Retry,
    mut read: R,
    mut send: S,
    change: C,
) -> Result<bool, EngineError>
where
    R: FnMut() -> RF,
    RF: Future<Output = Result<Document, EngineError>>,
    S: FnMut(Document) -> SF,
    SF: Future<Output = Result<(), Refusal>>,
    C: Fn(&Document) -> Result<Option<Document>, String>,
{
    let _held = lock_set(set).await;
    let mut last = None;
    for _ in 0..retry.attempts.max(1) {
        if crate::interrupt::stopping() {
            return Err(crate::interrupt::stopped(&format!("a reconfig of {set}")));
        }
        let config = read().await?;
        let Some(updated) = change(&config).map_err(|detail| EngineError::Command {
            command: "replSetReconfig".into(),
            status: "refused".into(),
            stderr: detail,
        })?
        else {
            return Ok(false);
        };
        match send(updated).await {
            Ok(()) => return Ok(true),
            Err(refusal) if refusal.code.is_some_and(commands::reconfig_retryable) => {
                last = Some(refusal.error);
                tokio::time::sleep(retry.pause).await;
            }
            Err(refusal) => return Err(refusal.error),
        }
    }
    Err(last.unwrap_or(EngineError::Timeout {
        what: format!("a reconfig of {set}"),
        seconds: 0,
    }))
}

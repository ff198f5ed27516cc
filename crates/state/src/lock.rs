//! The state lock: an OS file lock (flock), so it is released when the
//! holding process dies, plus a note saying who holds it.

use std::fs::{File, OpenOptions, TryLockError};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use serde::{Deserialize, Serialize};

use crate::error::{LockHolder, StateError, io};
use crate::fsutil;

/// The note a lock holder leaves beside the lock.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockInfo {
    pub id: String,
    /// The application it locks; `None` for the directory backend, whose
    /// lock covers every application in the directory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub application: Option<String>,
    pub operation: String,
    pub pid: u32,
    pub host: String,
    pub created: String,
}

impl std::fmt::Display for LockInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let of = self
            .application
            .as_ref()
            .map(|a| format!(" of \"{a}\""))
            .unwrap_or_default();
        write!(
            f,
            "`{}`{of} (pid {} on {}, since {}, lock id {})",
            self.operation, self.pid, self.host, self.created, self.id
        )
    }
}

/// Held while a command may write state; released on drop or process death.
/// What holds it depends on the backend: an open lock file for the
/// directory, a database session for PostgreSQL.
#[derive(Debug)]
pub struct LockGuard {
    info: LockInfo,
    /// The store that issued it, so a guard is never used with another.
    pub(crate) owner: String,
    // Dropped with the guard: that is what releases the lock.
    _held: Box<dyn Held>,
}

/// Whatever keeps a lock held until it is dropped.
pub(crate) trait Held: std::fmt::Debug + Send + Sync {}

impl LockGuard {
    pub(crate) fn new(info: LockInfo, owner: String, held: Box<dyn Held>) -> Self {
        Self {
            info,
            owner,
            _held: held,
        }
    }

    pub fn info(&self) -> &LockInfo {
        &self.info
    }
}

/// The directory backend's hold: the flock'ed file and the note beside it.
#[derive(Debug)]
struct FileHeld {
    // Kept open: closing the file releases the lock.
    _file: File,
    id: String,
    note_path: PathBuf,
}

impl Held for FileHeld {}

impl Drop for FileHeld {
    fn drop(&mut self) {
        // Only remove the note if it is still ours (`state unlock` may
        // have handed the lock on).
        if read_note(&self.note_path).is_some_and(|n| n.id == self.id) {
            let _ = std::fs::remove_file(&self.note_path);
        }
    }
}

pub(crate) fn lock_path(dir: &Path) -> PathBuf {
    dir.join("lock")
}

pub(crate) fn note_path(dir: &Path) -> PathBuf {
    dir.join("lock.json")
}

fn read_note(path: &Path) -> Option<LockInfo> {
    let text = std::fs::read_to_string(path).ok()?;
    serde_json::from_str(&text).ok()
}

/// The note of the process holding the lock right now. A holder writes its
/// note just after it takes the lock, so a reader can come in between and
/// find no note, or the note of an earlier holder that was killed: a note
/// naming a process of this host that no longer runs is not the holder's.
/// Waits briefly for the holder's own note rather than name the wrong one.
fn holders_note(dir: &Path) -> Option<LockInfo> {
    let host = hostname();
    let started = Instant::now();
    loop {
        let note = read_note(&note_path(dir));
        let current = note.filter(|info| {
            info.host != host || Path::new("/proc").join(info.pid.to_string()).exists()
        });
        if current.is_some() || started.elapsed() >= NOTE_GRACE {
            return current;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// How long a reader waits for a new holder's note.
const NOTE_GRACE: Duration = Duration::from_secs(2);

fn open_lock_file(dir: &Path) -> Result<File, StateError> {
    let path = lock_path(dir);
    OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(io("open the lock file", &path))
}

/// Takes the lock, waiting up to `timeout` for another holder to finish.
pub(crate) fn acquire(
    dir: &Path,
    operation: &str,
    timeout: Duration,
) -> Result<LockGuard, StateError> {
    let file = open_lock_file(dir)?;
    let started = Instant::now();
    loop {
        match file.try_lock() {
            Ok(()) => break,
            Err(TryLockError::WouldBlock) => {
                if started.elapsed() >= timeout {
                    return Err(StateError::Locked {
                        holder: Box::new(LockHolder(holders_note(dir))),
                    });
                }
                std::thread::sleep(
                    Duration::from_millis(50)
                        .min(timeout.saturating_sub(started.elapsed()))
                        .max(Duration::from_millis(1)),
                );
            }
            Err(TryLockError::Error(err)) => return Err(io("lock", lock_path(dir))(err)),
        }
    }
    let info = LockInfo {
        id: uuid::Uuid::new_v4().to_string(),
        application: None,
        operation: operation.to_string(),
        pid: std::process::id(),
        host: hostname(),
        created: humantime::format_rfc3339_seconds(SystemTime::now()).to_string(),
    };
    let note = note_path(dir);
    let text = serde_json::to_vec_pretty(&info).unwrap_or_default();
    fsutil::write_atomically(&note, &text, None)?;
    let held = FileHeld {
        _file: file,
        id: info.id.clone(),
        note_path: note,
    };
    Ok(LockGuard::new(
        info,
        dir.display().to_string(),
        Box::new(held),
    ))
}

/// The current holder, if the lock is held. A note left by a process that
/// died does not count: the OS released its lock.
pub(crate) fn holder(dir: &Path) -> Result<Option<LockInfo>, StateError> {
    if !lock_path(dir).exists() {
        return Ok(None);
    }
    let file = open_lock_file(dir)?;
    match file.try_lock() {
        Ok(()) => Ok(None),
        Err(TryLockError::WouldBlock) => Ok(Some(holders_note(dir).unwrap_or(LockInfo {
            id: "unknown".into(),
            application: None,
            operation: "unknown".into(),
            pid: 0,
            host: "unknown".into(),
            created: "unknown".into(),
        }))),
        Err(TryLockError::Error(err)) => Err(io("lock", lock_path(dir))(err)),
    }
}

/// `state unlock ID`: for a holder that is alive but will not finish (hung,
/// or on another host sharing the directory). The lock file is moved aside,
/// so new commands lock a fresh one; the old holder keeps a lock on nothing.
pub(crate) fn force_unlock(dir: &Path, id: &str) -> Result<LockInfo, StateError> {
    let current = holder(dir)?;
    match current {
        Some(info) if info.id == id => {
            let aside = dir.join(format!("lock.broken-{id}"));
            std::fs::rename(lock_path(dir), &aside).map_err(io("move aside", &aside))?;
            let _ = std::fs::remove_file(note_path(dir));
            Ok(info)
        }
        other => Err(StateError::NoSuchLock {
            id: id.to_string(),
            current: other.map(|info| info.to_string()),
        }),
    }
}

pub(crate) fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "unknown-host".to_string())
}

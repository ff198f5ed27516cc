//! Where state lives: the [`StateStore`] trait and its embedded default,
//! [`DirectoryStore`] (`.dbgroups/` next to the manifest, or `--state-dir`).
//!
//! Layout of the directory:
//!
//! ```text
//! .dbgroups/
//!   lock                  the OS lock every writing command takes
//!   lock.json             who holds it (operation, pid, host, time, id)
//!   apps/<app>.json       one application's state (mode 0600)
//!   apps/<app>.json.backup  the version before the last write
//!   apps/<app>.json.destroyed  the last state of a destroyed application
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::error::{StateError, io};
use crate::fsutil;
use crate::lock::{self, LockGuard, LockInfo};
use crate::model::{AppState, FORMAT_VERSION};

/// A backend for recorded state. Several applications share one store,
/// which is how replication between applications finds its source.
pub trait StateStore {
    /// The applications with recorded state, sorted.
    fn applications(&self) -> Result<Vec<String>, StateError>;
    /// One application's state, or `None` if it has never been written.
    fn load(&self, application: &str) -> Result<Option<AppState>, StateError>;
    /// Writes `state` as the next serial. Refuses if the stored serial or
    /// lineage is not the one `state` was read at.
    fn save(&self, lock: &LockGuard, state: &mut AppState) -> Result<(), StateError>;
    /// Takes the store's lock for a writing command, waiting up to `timeout`.
    fn lock(&self, operation: &str, timeout: Duration) -> Result<LockGuard, StateError>;
    /// The current holder of the lock, if any.
    fn lock_holder(&self) -> Result<Option<LockInfo>, StateError>;
    /// Breaks the lock with this id (`state unlock`).
    fn force_unlock(&self, id: &str) -> Result<LockInfo, StateError>;
    /// Ends an application's record after `destroy`: it is no longer
    /// listed or loaded, so the same manifest applied again makes a new
    /// application. Refuses, like `save`, if `state` is not what is stored.
    fn retire(&self, lock: &LockGuard, state: &AppState) -> Result<(), StateError>;

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

#[derive(Debug, Clone)]
pub struct DirectoryStore {
    root: PathBuf,
}

impl DirectoryStore {
    /// The default directory for a manifest: `.dbgroups/` beside it.
    pub fn beside(manifest: &Path) -> Self {
        let dir = manifest
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        Self::new(dir.join(".dbgroups"))
    }

    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    fn apps_dir(&self) -> PathBuf {
        self.root.join("apps")
    }

    fn state_path(&self, application: &str) -> Result<PathBuf, StateError> {
        // Names are validated by the manifest; this guards the path itself.
        let valid = !application.is_empty()
            && application
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
            && application.len() <= 63;
        if !valid {
            return Err(StateError::InvalidApplication(application.to_string()));
        }
        Ok(self.apps_dir().join(format!("{application}.json")))
    }

    fn read(&self, path: &Path, application: &str) -> Result<Option<AppState>, StateError> {
        let text = match std::fs::read(path) {
            Ok(text) => text,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(err) => return Err(io("read", path)(err)),
        };
        let corrupt = |detail: String| {
            let previous = backup_path(path);
            StateError::Corrupt {
                path: path.to_path_buf(),
                detail,
                previous: previous.is_file().then_some(previous),
            }
        };
        // Check the version before the shape, so a newer file says "upgrade"
        // rather than "corrupt".
        let value: serde_json::Value =
            serde_json::from_slice(&text).map_err(|e| corrupt(e.to_string()))?;
        let found = value
            .get("format_version")
            .and_then(serde_json::Value::as_u64)
            .ok_or_else(|| corrupt("no format_version".into()))?;
        if found > u64::from(FORMAT_VERSION) {
            return Err(StateError::NewerFormat {
                path: path.to_path_buf(),
                found: u32::try_from(found).unwrap_or(u32::MAX),
                supported: FORMAT_VERSION,
            });
        }
        let state: AppState = serde_json::from_value(value).map_err(|e| corrupt(e.to_string()))?;
        if state.application != application {
            return Err(StateError::WrongApplication {
                path: path.to_path_buf(),
                expected: application.to_string(),
                found: state.application,
            });
        }
        Ok(Some(state))
    }
}

impl StateStore for DirectoryStore {
    fn applications(&self) -> Result<Vec<String>, StateError> {
        let dir = self.apps_dir();
        let entries = match std::fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(err) => return Err(io("list", &dir)(err)),
        };
        let mut names = Vec::new();
        for entry in entries {
            let name = entry.map_err(io("list", &dir))?.file_name();
            let name = name.to_string_lossy();
            if let Some(app) = name.strip_suffix(".json")
                && !app.starts_with('.')
            {
                names.push(app.to_string());
            }
        }
        names.sort();
        Ok(names)
    }

    fn load(&self, application: &str) -> Result<Option<AppState>, StateError> {
        let path = self.state_path(application)?;
        self.read(&path, application)
    }

    fn save(&self, lock: &LockGuard, state: &mut AppState) -> Result<(), StateError> {
        debug_assert_eq!(lock.dir, self.root, "the lock belongs to another store");
        let path = self.state_path(&state.application)?;
        fsutil::create_private_dir(&self.apps_dir())?;
        // Never overwrite what we did not read: a corrupt or newer file
        // fails here, and a write by someone else shows as a serial change.
        let on_disk = self.read(&path, &state.application)?;
        let (stored_serial, stored_lineage) = on_disk
            .as_ref()
            .map_or((0, None), |s| (s.serial, Some(s.lineage.as_str())));
        if stored_serial != state.serial || stored_lineage.is_some_and(|l| l != state.lineage) {
            return Err(StateError::Conflict {
                application: state.application.clone(),
                expected: state.serial,
                found: stored_serial,
            });
        }
        let mut next = state.clone();
        next.serial += 1;
        let text = serde_json::to_vec_pretty(&next).unwrap_or_default();
        let backup = backup_path(&path);
        fsutil::write_atomically(&path, &text, Some(&backup))?;
        *state = next;
        Ok(())
    }

    fn retire(&self, lock: &LockGuard, state: &AppState) -> Result<(), StateError> {
        debug_assert_eq!(lock.dir, self.root, "the lock belongs to another store");
        let path = self.state_path(&state.application)?;
        let on_disk = self.read(&path, &state.application)?;
        if on_disk.as_ref().map(|s| (s.serial, s.lineage.as_str()))
            != Some((state.serial, state.lineage.as_str()))
        {
            return Err(StateError::Conflict {
                application: state.application.clone(),
                expected: state.serial,
                found: on_disk.map_or(0, |s| s.serial),
            });
        }
        // Kept beside the others for whoever wants to know what was there;
        // the name no longer ends in `.json`, so it is not an application.
        let retired = path.with_extension("json.destroyed");
        std::fs::rename(&path, &retired).map_err(io("retire", &path))?;
        fsutil::sync_dir(&self.apps_dir())
    }

    fn lock(&self, operation: &str, timeout: Duration) -> Result<LockGuard, StateError> {
        fsutil::create_private_dir(&self.root)?;
        lock::acquire(&self.root, operation, timeout)
    }

    fn lock_holder(&self) -> Result<Option<LockInfo>, StateError> {
        lock::holder(&self.root)
    }

    fn force_unlock(&self, id: &str) -> Result<LockInfo, StateError> {
        lock::force_unlock(&self.root, id)
    }
}

/// The previous version of a state file, kept by every write after the first.
fn backup_path(state_path: &Path) -> PathBuf {
    state_path.with_extension("json.backup")
}

//! The embedded backend, [`DirectoryStore`]: `.dbgroups/` next to the
//! manifest, or `--state-dir`.
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

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::error::{StateError, io};
use crate::fsutil;
use crate::lock::{self, LockGuard, LockInfo};
use crate::model::{AppState, FORMAT_VERSION};
use crate::secrets::{self, Keyring, SecretPolicy};
use crate::store::{LockScope, StateStore, StoredVersion};

#[derive(Debug, Clone)]
pub struct DirectoryStore {
    root: PathBuf,
    policy: SecretPolicy,
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
        Self {
            root: root.into(),
            policy: SecretPolicy::default(),
        }
    }

    /// Encryption is opt-in here: secrets are sealed when the policy has a
    /// passphrase, and written in plain text (mode 0600) otherwise.
    pub fn with_policy(mut self, policy: SecretPolicy) -> Self {
        self.policy = policy;
        self
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
        self.read_with(path, application, &self.policy)
    }

    /// Reads without opening secrets: for what only looks at the rest.
    fn read_sealed(&self, path: &Path, application: &str) -> Result<Option<AppState>, StateError> {
        self.read_with(path, application, &SecretPolicy::default())
    }

    fn read_with(
        &self,
        path: &Path,
        application: &str,
        policy: &SecretPolicy,
    ) -> Result<Option<AppState>, StateError> {
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
        let state: AppState =
            secrets::decode(value, policy)?.map_err(|e| corrupt(e.to_string()))?;
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
    fn describe(&self) -> String {
        self.root.display().to_string()
    }

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
        debug_assert_eq!(
            lock.owner,
            self.describe(),
            "the lock belongs to another store"
        );
        let path = self.state_path(&state.application)?;
        fsutil::create_private_dir(&self.apps_dir())?;
        // Never overwrite what we did not read: a corrupt or newer file
        // fails here, and a write by someone else shows as a serial change.
        let on_disk = self.read_sealed(&path, &state.application)?;
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
        let (text, _) = secrets::encode(&mut next, self.policy.keyring.as_deref())?;
        let backup = backup_path(&path);
        fsutil::write_atomically(&path, &text, Some(&backup))?;
        *state = next;
        Ok(())
    }

    fn retire(&self, lock: &LockGuard, state: &AppState) -> Result<(), StateError> {
        debug_assert_eq!(
            lock.owner,
            self.describe(),
            "the lock belongs to another store"
        );
        let path = self.state_path(&state.application)?;
        let on_disk = self.read_sealed(&path, &state.application)?;
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

    fn lock(
        &self,
        _scope: LockScope<'_>,
        operation: &str,
        timeout: Duration,
    ) -> Result<LockGuard, StateError> {
        // One lock for the directory: every scope takes it.
        fsutil::create_private_dir(&self.root)?;
        lock::acquire(&self.root, operation, timeout)
    }

    fn lock_holders(&self) -> Result<Vec<LockInfo>, StateError> {
        Ok(lock::holder(&self.root)?.into_iter().collect())
    }

    fn force_unlock(&self, id: &str) -> Result<LockInfo, StateError> {
        lock::force_unlock(&self.root, id)
    }

    fn versions(&self, application: &str) -> Result<Vec<StoredVersion>, StateError> {
        let path = self.state_path(application)?;
        let Some(current) = self.read_sealed(&path, application)? else {
            return Ok(Vec::new());
        };
        let mut versions = Vec::new();
        let backup = backup_path(&path);
        if let Ok(Some(previous)) = self.read_sealed(&backup, application)
            && previous.lineage == current.lineage
            && previous.serial < current.serial
        {
            versions.push(stored(&backup, &previous)?);
        }
        versions.push(stored(&path, &current)?);
        Ok(versions)
    }

    fn load_version(&self, application: &str, serial: u64) -> Result<AppState, StateError> {
        let path = self.state_path(application)?;
        let mut kept = Vec::new();
        for candidate in [backup_path(&path), path.clone()] {
            if let Some(state) = self.read_sealed(&candidate, application)? {
                if state.serial == serial {
                    return Ok(state);
                }
                kept.push(state.serial);
            }
        }
        Err(StateError::NoSuchVersion {
            application: application.to_string(),
            serial,
            kept,
        })
    }

    fn import(
        &self,
        lock: &LockGuard,
        application: &str,
        versions: &[StoredVersion],
    ) -> Result<usize, StateError> {
        debug_assert_eq!(
            lock.owner,
            self.describe(),
            "the lock belongs to another store"
        );
        let Some(last) = versions.last() else {
            return Ok(0);
        };
        let path = self.state_path(application)?;
        if let Some(here) = self.read_sealed(&path, application)? {
            check_import(
                application,
                &here.lineage,
                here.serial,
                last,
                &self.describe(),
            )?;
            if here.serial == last.serial {
                return Ok(0);
            }
        }
        fsutil::create_private_dir(&self.apps_dir())?;
        // A directory keeps two versions: the last one and the one before.
        let previous = versions.len().checked_sub(2).map(|i| &versions[i]);
        if let Some(previous) = previous {
            fsutil::write_atomically(&backup_path(&path), &previous.document, None)?;
        }
        fsutil::write_atomically(&path, &last.document, None)?;
        Ok(versions.len().min(2))
    }

    fn rekey(
        &self,
        lock: &LockGuard,
        from: Option<&Arc<Keyring>>,
        to: &Keyring,
    ) -> Result<usize, StateError> {
        debug_assert_eq!(
            lock.owner,
            self.describe(),
            "the lock belongs to another store"
        );
        // Every document is resealed in memory first, so a wrong old
        // passphrase or a damaged file stops the rekey before anything is
        // written.
        let mut resealed = Vec::new();
        for application in self.applications()? {
            let path = self.state_path(&application)?;
            for file in [path.clone(), backup_path(&path)] {
                let text = match std::fs::read(&file) {
                    Ok(text) => text,
                    Err(err) if err.kind() == std::io::ErrorKind::NotFound => continue,
                    Err(err) => return Err(io("read", &file)(err)),
                };
                let value: serde_json::Value =
                    serde_json::from_slice(&text).map_err(|e| StateError::Corrupt {
                        path: file.clone(),
                        detail: e.to_string(),
                        previous: None,
                    })?;
                resealed.push((file, secrets::reseal(value, from, Some(to))?));
            }
        }
        for (file, text) in &resealed {
            fsutil::write_atomically(file, text, None)?;
        }
        Ok(resealed.len())
    }
}

/// A file's version, for `versions`: the file's time stands for when it
/// was written; a directory does not record by whom.
fn stored(path: &Path, state: &AppState) -> Result<StoredVersion, StateError> {
    let document = std::fs::read(path).map_err(io("read", path))?;
    let written_at = std::fs::metadata(path)
        .and_then(|m| m.modified())
        .map(|t| humantime::format_rfc3339_seconds(t).to_string())
        .unwrap_or_default();
    Ok(StoredVersion {
        serial: state.serial,
        lineage: state.lineage.clone(),
        written_at,
        command: String::new(),
        written_by: String::new(),
        document,
    })
}

/// Whether versions ending at `last` may be copied over `here`: the same
/// lineage, and not behind it.
pub(crate) fn check_import(
    application: &str,
    lineage: &str,
    serial: u64,
    last: &StoredVersion,
    target: &str,
) -> Result<(), StateError> {
    if lineage != last.lineage {
        return Err(StateError::LineageMismatch {
            application: application.to_string(),
            target: target.to_string(),
            source_lineage: last.lineage.clone(),
            target_lineage: lineage.to_string(),
        });
    }
    if serial > last.serial {
        return Err(StateError::TargetAhead {
            application: application.to_string(),
            target: target.to_string(),
            source_serial: last.serial,
            target_serial: serial,
        });
    }
    Ok(())
}

/// The previous version of a state file, kept by every write after the first.
fn backup_path(state_path: &Path) -> PathBuf {
    state_path.with_extension("json.backup")
}

//! Plan files (`plan --out FILE`): everything apply needs to carry out
//! exactly the plan that was reviewed, and to refuse it when the state or
//! the manifest moved since. They hold no secrets (the plan holds none).

use dbgroups_state::AppState;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::{BaseState, Intents, Plan};

/// 2: a backup is named by a typed reference (`BackupRef`: its source,
/// method, host and location), where version 1 named it by its step id.
pub const PLAN_FILE_FORMAT_VERSION: u32 = 2;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlanFile {
    pub format_version: u32,
    /// The dbgroups that wrote it.
    pub dbgroups_version: String,
    pub application: String,
    pub environment: Option<String>,
    /// SHA-256 of the manifest's bytes when the plan was made.
    pub manifest_sha256: String,
    /// The state it was made against; `None` for a new application.
    pub base: Option<BaseState>,
    pub intents: Intents,
    /// Whether the servers were observed (`--refresh`).
    pub refreshed: bool,
    pub plan: Plan,
    /// SHA-256 of this document with this field empty: catches edits and
    /// damage (it is a checksum, not a signature).
    pub checksum: String,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PlanFileError {
    #[error("the plan file is not a dbgroups plan (or is truncated): {0}")]
    Unreadable(String),
    #[error(
        "the plan file has format version {found}, newer than this dbgroups understands ({supported})"
    )]
    NewerFormat { found: u64, supported: u32 },
    #[error(
        "the plan file has format version {found}, written by an older dbgroups, which this one no longer reads ({supported}); run `dbgroups plan --out FILE` again to make a new one"
    )]
    OlderFormat { found: u64, supported: u32 },
    #[error(
        "the plan file was modified after it was written (its checksum does not match); make a new plan"
    )]
    Tampered,
    /// The plan in the file breaks one of a plan's invariants (`lint`).
    #[error(
        "the plan in the file breaks a plan's rules and will not be applied; make a new plan: {0}"
    )]
    Lint(crate::lint::LintError),
}

/// Why a plan file no longer applies. Each says what moved.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Stale {
    #[error("the plan is for application \"{planned}\", not \"{current}\"")]
    OtherApplication { planned: String, current: String },
    #[error(
        "the state's lineage changed (planned against {planned}, now {current}): it is another state"
    )]
    Lineage { planned: String, current: String },
    #[error("the state moved on since the plan was made (serial {planned} then, {current} now)")]
    Serial { planned: u64, current: u64 },
    #[error(
        "the plan was made for a new application, but state has been recorded since (serial {current})"
    )]
    StateCreated { current: u64 },
    #[error("the plan was made against recorded state (serial {planned}), which is now gone")]
    StateRemoved { planned: u64 },
    #[error("the manifest changed since the plan was made (SHA-256 {planned} then, {current} now)")]
    Manifest { planned: String, current: String },
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

impl PlanFile {
    pub fn new(
        plan: Plan,
        intents: Intents,
        environment: Option<String>,
        manifest_bytes: &[u8],
        refreshed: bool,
        dbgroups_version: &str,
    ) -> Self {
        let mut file = Self {
            format_version: PLAN_FILE_FORMAT_VERSION,
            dbgroups_version: dbgroups_version.to_string(),
            application: plan.application.clone(),
            environment,
            manifest_sha256: sha256_hex(manifest_bytes),
            base: plan.base.clone(),
            intents,
            refreshed,
            plan,
            checksum: String::new(),
        };
        file.checksum = file.compute_checksum();
        file
    }

    fn compute_checksum(&self) -> String {
        let mut unsigned = self.clone();
        unsigned.checksum = String::new();
        sha256_hex(&serde_json::to_vec(&unsigned).unwrap_or_default())
    }

    pub fn to_json(&self) -> String {
        let mut text = serde_json::to_string_pretty(self).unwrap_or_default();
        text.push('\n');
        text
    }

    pub fn parse(bytes: &[u8]) -> Result<Self, PlanFileError> {
        let value: serde_json::Value =
            serde_json::from_slice(bytes).map_err(|e| PlanFileError::Unreadable(e.to_string()))?;
        let version = value
            .get("format_version")
            .and_then(serde_json::Value::as_u64)
            .ok_or_else(|| PlanFileError::Unreadable("no format_version".into()))?;
        if version > u64::from(PLAN_FILE_FORMAT_VERSION) {
            return Err(PlanFileError::NewerFormat {
                found: version,
                supported: PLAN_FILE_FORMAT_VERSION,
            });
        }
        if version < u64::from(PLAN_FILE_FORMAT_VERSION) {
            return Err(PlanFileError::OlderFormat {
                found: version,
                supported: PLAN_FILE_FORMAT_VERSION,
            });
        }
        let file: PlanFile =
            serde_json::from_value(value).map_err(|e| PlanFileError::Unreadable(e.to_string()))?;
        if file.checksum != file.compute_checksum() {
            return Err(PlanFileError::Tampered);
        }
        crate::lint::errors(&crate::lint::lint(&file.plan)).map_err(PlanFileError::Lint)?;
        Ok(file)
    }

    /// Refuses the plan if the state or manifest moved since it was made.
    pub fn check_current(
        &self,
        application: &str,
        state: Option<&AppState>,
        manifest_bytes: &[u8],
    ) -> Result<(), Stale> {
        if self.application != application {
            return Err(Stale::OtherApplication {
                planned: self.application.clone(),
                current: application.to_string(),
            });
        }
        match (&self.base, state) {
            (None, Some(current)) => {
                return Err(Stale::StateCreated {
                    current: current.serial,
                });
            }
            (Some(base), None) => {
                return Err(Stale::StateRemoved {
                    planned: base.serial,
                });
            }
            (Some(base), Some(current)) if base.lineage != current.lineage => {
                return Err(Stale::Lineage {
                    planned: base.lineage.clone(),
                    current: current.lineage.clone(),
                });
            }
            (Some(base), Some(current)) if base.serial != current.serial => {
                return Err(Stale::Serial {
                    planned: base.serial,
                    current: current.serial,
                });
            }
            _ => {}
        }
        let current = sha256_hex(manifest_bytes);
        if current != self.manifest_sha256 {
            return Err(Stale::Manifest {
                planned: self.manifest_sha256.clone(),
                current,
            });
        }
        Ok(())
    }
}

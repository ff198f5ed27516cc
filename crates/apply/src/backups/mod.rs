//! Managed backups (`dbgroups backup run | verify`, docs/backups.md): a
//! full backup of a group taken by its engine from a caught-up slave (the
//! master otherwise), packed into one file in the group's store under a
//! temporary name, checksummed there, renamed when complete, and recorded;
//! verified by restoring it into a scratch server; kept by `keep`.
//!
//! Everything here goes through the engine and host interfaces: nothing
//! branches on a database type. The command line records what comes back
//! in the state, under its lock.

mod import;
mod retention;
mod scratch;
mod take;
mod verify;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use dbgroups_engines::hosts::{Placement, connect};
use dbgroups_engines::{EngineError, HostRef, SshClient};
use dbgroups_manifest::ProviderKind;
use dbgroups_state::{AppState, BackupRecord, Credentials, GroupState};

pub use dbgroups_plan::backup_source::{Candidate, MAX_LAG_SECONDS, SourceChoice, choose_source};
pub use import::unpack_for_import;
pub use retention::{RetentionVerdict, retention};
pub use take::{Taken, delete, settle, summary_line, take};
pub use verify::verify;

/// A failure of a managed backup's run or verify, with the group or
/// backup it concerns.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error("{group}: {reason}")]
    Refused { group: String, reason: String },
    #[error("{context}: {}", dbgroups_engines::with_causes(source.as_ref()))]
    Engine {
        context: String,
        #[source]
        source: Box<EngineError>,
    },
}

impl BackupError {
    fn engine(context: impl Into<String>) -> impl FnOnce(EngineError) -> Self {
        let context = context.into();
        move |source| Self::Engine {
            context,
            source: Box::new(source),
        }
    }
}

/// Where a group's managed backups live: a directory on this machine or on
/// an ssh host. `root` is the store's own directory; each application and
/// group has one below it.
#[derive(Debug, Clone)]
pub struct StoreSpec {
    /// `None` is this machine.
    pub address: Option<String>,
    /// How to reach the ssh host (`provider_data` keys of
    /// [`dbgroups_engines::hosts`]).
    pub ssh: BTreeMap<String, String>,
    pub root: PathBuf,
}

impl StoreSpec {
    /// The store a record names.
    pub fn of_record(record: &BackupRecord) -> Option<Self> {
        let managed = record.managed.as_ref()?;
        let file = Path::new(&record.path);
        Some(Self {
            address: managed.store_address.clone(),
            ssh: managed.store_ssh.clone(),
            root: file.parent()?.to_path_buf(),
        })
    }

    /// Its host, connected.
    pub async fn connect(
        &self,
        local: &HostRef,
        client: &SshClient,
    ) -> Result<HostRef, EngineError> {
        let placement = Placement {
            provider: if self.address.is_some() {
                ProviderKind::Ssh
            } else {
                ProviderKind::Local
            },
            address: self.address.clone(),
            provider_data: self.ssh.clone(),
        };
        connect(&placement, local, client).await
    }

    /// A group's directory in this store.
    pub fn group_dir(&self, application: &str, group: &GroupState) -> PathBuf {
        self.root.join(application).join(group.address())
    }

    /// The store as messages name it.
    pub fn label(&self) -> String {
        match &self.address {
            Some(address) => format!("{address}:{}", self.root.display()),
            None => self.root.display().to_string(),
        }
    }
}

/// A group's accounts with every secret (each operation is handed only
/// the ones its engine declares).
fn access_of(
    state: &AppState,
    group: &GroupState,
) -> Result<dbgroups_engines::engine::GroupAccess, BackupError> {
    let credentials: &Credentials =
        state
            .credentials
            .get(&group.address())
            .ok_or_else(|| BackupError::Refused {
                group: group.address(),
                reason: "no credentials are recorded for it".into(),
            })?;
    Ok(crate::servers::group_access(
        &state.application,
        &group.name,
        credentials,
    ))
}

/// The newest recorded managed backup of `group` whose verification passed,
/// and the newest of any kind.
pub fn managed_of<'a>(state: &'a AppState, group: &str) -> Vec<&'a BackupRecord> {
    let mut records: Vec<&BackupRecord> = state
        .backups
        .iter()
        .filter(|r| r.group == group && r.managed.is_some())
        .collect();
    records.sort_by(|a, b| b.taken_at.cmp(&a.taken_at).then(b.id.cmp(&a.id)));
    records
}

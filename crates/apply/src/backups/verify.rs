//! `backup verify`: a managed backup restored into a scratch server of its
//! engine and version on the store's host, started, and its data compared
//! with what was recorded when it was taken; the scratch server is removed
//! whatever happens.

use std::path::Path;

use dbgroups_engines::engine::{DatabaseEngine, GroupAccess, Operation};
use dbgroups_engines::{HostRef, engine_for};
use dbgroups_state::{AppState, BackupRecord, ManagedBackup, Verification};

use super::scratch::Scratch;
use super::take::{now, summary_line};
use super::{BackupError, access_of};

/// Restores `record` on `store_host` and judges it. An error only when it
/// cannot be tried at all (its group is no longer recorded); a backup that
/// does not restore, start or match is a [`Verification::Failed`].
pub async fn verify(
    store_host: &HostRef,
    state: &AppState,
    record: &BackupRecord,
) -> Result<Verification, BackupError> {
    let refused = |reason: &str| BackupError::Refused {
        group: record.group.clone(),
        reason: reason.to_string(),
    };
    let managed = record
        .managed
        .as_ref()
        .ok_or_else(|| refused("it is not a managed backup"))?;
    let group = state
        .groups
        .iter()
        .find(|g| g.address() == record.group)
        .ok_or_else(|| refused("the group is no longer recorded, so its accounts are unknown"))?;
    let engine = engine_for(group.db_type);
    let access = access_of(state, group)?;
    let outcome = match check_file(store_host, record, managed).await {
        Err(reason) => Err(reason),
        Ok(()) => restore_and_compare(engine, store_host, record, managed, &access).await,
    };
    Ok(match outcome {
        Ok(()) => Verification::Passed { at: now() },
        Err(reason) => Verification::Failed { at: now(), reason },
    })
}

/// The file is there and its checksum is the recorded one.
pub(super) async fn check_file(
    host: &HostRef,
    record: &BackupRecord,
    managed: &ManagedBackup,
) -> Result<(), String> {
    let file = Path::new(&record.path);
    if !host.is_file(file).await {
        return Err(format!("{} is missing from the store", record.path));
    }
    let sum = host
        .sha256(file)
        .await
        .map_err(|e| format!("cannot checksum it: {e}"))?;
    if sum != managed.sha256 {
        return Err(format!(
            "its SHA-256 is {sum}, not the recorded {}: the file was changed or damaged",
            managed.sha256
        ));
    }
    Ok(())
}

async fn restore_and_compare(
    engine: &dyn DatabaseEngine,
    host: &HostRef,
    record: &BackupRecord,
    managed: &ManagedBackup,
    access: &GroupAccess,
) -> Result<(), String> {
    let scratch = Scratch::new(
        engine,
        host,
        format!("verify-{}", record.id),
        managed,
        access,
        Path::new(&record.path).with_extension("verify"),
    )
    .await?;
    let result = restored_and_compared(&scratch, record, managed).await;
    // The scratch server and the unpacked copy go, whatever happened.
    scratch.remove().await;
    result
}

async fn restored_and_compared(
    scratch: &Scratch<'_>,
    record: &BackupRecord,
    managed: &ManagedBackup,
) -> Result<(), String> {
    scratch.restore(record).await?;
    let found = scratch
        .engine()
        .data_summary(&scratch.server, &scratch.access(Operation::Observe))
        .await
        .map_err(|e| format!("the restored data cannot be read: {e}"))?;
    compare(managed, &found)
}

/// The restored data against the record: the same tables or keyspaces,
/// and, when the source did not change while the backup was taken, the
/// same counts.
fn compare(
    managed: &ManagedBackup,
    found: &dbgroups_engines::engine::DataSummary,
) -> Result<(), String> {
    let names = |s: &dbgroups_engines::engine::DataSummary| s.keys().cloned().collect::<Vec<_>>();
    let matches = if managed.summary_exact {
        &managed.summary == found
    } else {
        names(&managed.summary) == names(found)
    };
    if matches {
        return Ok(());
    }
    Err(format!(
        "the restored data ({}) is not what was recorded ({})",
        summary_line(found),
        summary_line(&managed.summary)
    ))
}

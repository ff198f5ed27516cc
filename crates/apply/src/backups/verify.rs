//! `backup verify`: a managed backup restored into a scratch server of its
//! engine and version on the store's host, started, and its data compared
//! with what was recorded when it was taken; the scratch server is removed
//! whatever happens.

use std::path::Path;

use dbgroups_engines::engine::{DatabaseEngine, GroupAccess, Operation, ServerRef, Surroundings};
use dbgroups_engines::{HostRef, engine_for};
use dbgroups_state::{AppState, BackupRecord, ManagedBackup, Verification};

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
async fn check_file(
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
    let name = format!("verify-{}", record.id);
    let unpacked = Path::new(&record.path).with_extension("verify");
    let port = host
        .choose_port(engine.default_port())
        .await
        .map_err(|e| format!("no port for the scratch server: {e}"))?;
    let scratch = ServerRef {
        host: host.clone(),
        name: name.clone(),
        engine: managed.engine,
        version: managed.version.clone(),
        port,
        // Reached by dbgroups over loopback only, and gone after.
        exposure: None,
    };
    let result = restore_into(engine, &scratch, record, managed, access, &unpacked).await;
    // The scratch server and the unpacked copy go, whatever happened.
    let _ = engine
        .remove(
            &scratch,
            &access.only(engine.secrets_for(Operation::Remove)),
            &Surroundings::default(),
        )
        .await;
    host.stop_programs_naming(&host.server_dir(&name)).await;
    let _ = host.remove_dir(&host.server_dir(&name)).await;
    let _ = host.forget_server(&name).await;
    let _ = host.remove_dir(&unpacked).await;
    result
}

async fn restore_into(
    engine: &dyn DatabaseEngine,
    scratch: &ServerRef,
    record: &BackupRecord,
    managed: &ManagedBackup,
    access: &GroupAccess,
    unpacked: &Path,
) -> Result<(), String> {
    let host = &scratch.host;
    let copy = engine.managed_copy().map_err(|e| e.to_string())?;
    let _ = host.remove_dir(unpacked).await;
    host.unpack(Path::new(&record.path), unpacked)
        .await
        .map_err(|e| format!("it does not unpack: {e}"))?;
    let only = |op| access.only(engine.secrets_for(op));
    engine
        .provision(scratch, &only(Operation::Provision), true)
        .await
        .map_err(|e| format!("the scratch server did not start: {e}"))?;
    engine
        .restore(
            scratch,
            &only(Operation::Restore),
            unpacked,
            copy,
            true,
            &access.database,
        )
        .await
        .map_err(|e| format!("it does not restore: {e}"))?;
    engine
        .start(scratch, &only(Operation::Start), &Surroundings::default())
        .await
        .map_err(|e| format!("the restored server does not start: {e}"))?;
    let found = engine
        .data_summary(scratch, &only(Operation::Observe))
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

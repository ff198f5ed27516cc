//! An import from a recorded managed backup (`import_from.backup`): the
//! backup, in its store on the host of the group that imports it (the
//! planner requires that), is checked against its recorded checksum and
//! put into this apply's staging area as the kind of copy the import
//! restores. When the engine's managed backups are that kind, it is
//! unpacked; otherwise a scratch server is built from it and the copy is
//! taken from the scratch server (a PostgreSQL import restores a dump, and
//! its managed backups are data files). The source's servers do no work.

use std::path::Path;

use dbgroups_engines::engine::{Copy, Operation};
use dbgroups_engines::{EngineError, HostRef, engine_for};
use dbgroups_state::AppState;

use super::scratch::Scratch;
use super::verify::check_file;

/// Puts managed backup `id` of `source` (the source application's state)
/// at `staging` on `host` as a `copy`, for application `importer`. Done
/// again after a crash, it keeps a copy that is already complete, and a
/// scratch server the crash left is removed before a new one is built.
pub async fn unpack_for_import(
    host: &HostRef,
    source: &AppState,
    id: &str,
    copy: Copy,
    staging: &Path,
    importer: &str,
) -> Result<(), EngineError> {
    let refused = |reason: String| EngineError::ManagedBackup {
        id: id.to_string(),
        reason,
    };
    let record = source.backups.iter().find(|r| r.id == id).ok_or_else(|| {
        refused(format!(
            "it is no longer recorded in application {} (see `dbgroups backup list`)",
            source.application
        ))
    })?;
    let managed = record
        .managed
        .as_ref()
        .ok_or_else(|| refused("it is not a managed backup".into()))?;
    let group = source
        .groups
        .iter()
        .find(|g| g.address() == record.group)
        .ok_or_else(|| refused(format!("its group {} is no longer recorded", record.group)))?;
    let engine = engine_for(group.db_type);
    if engine.backup_is_complete(host, staging, copy).await {
        return Ok(());
    }
    check_file(host, record, managed).await.map_err(refused)?;
    if engine.managed_copy()? == copy {
        // Unpacked beside its place and renamed: a crash mid-unpack
        // leaves no partial copy under the name the restore reads.
        let partial = staging.with_extension("partial");
        let _ = host.remove_dir(&partial).await;
        let _ = host.remove_dir(staging).await;
        host.unpack(Path::new(&record.path), &partial).await?;
        return host.rename(&partial, staging).await;
    }
    let access = super::access_of(source, group).map_err(|e| refused(e.to_string()))?;
    let scratch = Scratch::new(
        engine,
        host,
        // Named after the importing application too: two applications
        // importing one backup at once each build their own.
        format!("import-{importer}-{id}"),
        managed,
        &access,
        Path::new(&record.path).with_extension(format!("import-{importer}")),
    )
    .await
    .map_err(refused)?;
    let result = match scratch.restore(record).await {
        Ok(()) => engine
            .backup(
                &scratch.server,
                &scratch.access(Operation::Backup),
                copy,
                host,
                staging,
            )
            .await
            .map_err(|e| refused(format!("the copy from its scratch server failed: {e}"))),
        Err(reason) => Err(refused(reason)),
    };
    scratch.remove().await;
    result
}

//! `backup run` for one group: source chosen, backup taken by the engine
//! straight into the store's host, packed, checksummed there, and renamed
//! into place only when complete.
//!
//! A group's directory in the store holds finished backups (`ID.tar` and
//! `ID.tar.sha256`) and, while one is taken, `.partial/`. The rename is the
//! last thing done to the store before the state records the backup; the
//! id of the file being renamed is written in `.partial/id` first, so a
//! run that finds `.partial/` left by a crash deletes the unrecorded file
//! it may name: nothing a crash leaves is ever counted as a backup.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Instant, SystemTime};

use dbgroups_engines::engine::{Copy, DataSummary, DatabaseEngine, Operation, ServerRef};
use dbgroups_engines::{HostRef, engine_for};
use dbgroups_state::{AppState, BackupRecord, GroupState, ManagedBackup, Verification};

use super::{BackupError, StoreSpec, access_of};
use crate::hosts::HostSet;
use dbgroups_plan::backup_source::{Candidate, SourceChoice, choose_source};

/// A backup taken, to record; its store's `.partial/` is removed by
/// [`settle`] once it is.
#[derive(Debug, Clone)]
pub struct Taken {
    pub record: BackupRecord,
    pub choice: SourceChoice,
    pub seconds: f64,
    /// The group's directory in the store.
    pub group_dir: PathBuf,
}

const PARTIAL: &str = ".partial";

pub(crate) fn now() -> String {
    humantime::format_rfc3339_millis(SystemTime::now()).to_string()
}

/// A new backup's id: when it started, and four hex digits for two runs
/// within one second. Plain characters, so a manifest can name it.
fn new_id() -> String {
    let when = humantime::format_rfc3339_seconds(SystemTime::now()).to_string();
    let compact: String = when
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .collect::<String>()
        .to_lowercase();
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("{compact}-{:04x}", nanos % 0x10000)
}

/// Takes one full backup of `group` into `store` (on `store_host`).
pub async fn take(
    hosts: &HostSet,
    store_host: &HostRef,
    store: &StoreSpec,
    state: &AppState,
    group: &GroupState,
) -> Result<Taken, BackupError> {
    let engine = engine_for(group.db_type);
    let refused = |reason: String| BackupError::Refused {
        group: group.address(),
        reason,
    };
    let copy = engine.managed_copy().map_err(|e| refused(e.to_string()))?;
    let access = access_of(state, group)?;
    let choice = choose_source(&candidates(hosts, state, group).await)
        .ok_or_else(|| refused("no server of the group answers; see `dbgroups status`".into()))?;
    let source_state = group
        .servers
        .iter()
        .find(|s| s.unique_name == choice.server)
        .ok_or_else(|| refused(format!("{} is not recorded", choice.server)))?;
    let source = crate::servers::server_ref(
        &hosts.of(&choice.server),
        group,
        source_state,
        state.authority.as_ref(),
    )
    .ok_or_else(|| refused(format!("{} has no recorded port", choice.server)))?;
    let group_dir = store.group_dir(&state.application, group);
    // Backups are data, and data holds secrets: the store, down to each
    // group's directory, is 0700 and the service user's (mkdir's parents
    // would be 0755 and root's).
    for dir in [
        store.root.clone(),
        store.root.join(&state.application),
        group_dir.clone(),
    ] {
        store_host
            .private_dir(&dir)
            .await
            .map_err(BackupError::engine(format!(
                "{}: the store",
                group.address()
            )))?;
    }
    forget_interrupted(store_host, &group_dir, state).await;
    let started = Instant::now();
    let started_at = now();
    let partial = group_dir.join(PARTIAL);
    let result = take_into(engine, copy, &source, &access, store_host, &partial).await;
    let (file, pieces) = match result {
        Ok(done) => done,
        Err(err) => {
            store_host.stop_programs_naming(&partial).await;
            let _ = store_host.remove_dir(&partial).await;
            return Err(err);
        }
    };
    let id = new_id();
    let final_file = group_dir.join(format!("{id}.tar"));
    let moved = async {
        store_host
            .write_private_file(&partial.join("id"), id.as_bytes())
            .await?;
        store_host.rename(&file, &final_file).await?;
        store_host
            .write_private_file(
                &group_dir.join(format!("{id}.tar.sha256")),
                format!("{}  {id}.tar\n", pieces.sha256).as_bytes(),
            )
            .await
    };
    moved.await.map_err(BackupError::engine(format!(
        "{}: finish the backup",
        group.address()
    )))?;
    let finished_at = now();
    let record = BackupRecord {
        id,
        group: group.address(),
        server: choice.server.clone(),
        path: final_file.display().to_string(),
        size_bytes: pieces.size,
        taken_at: finished_at.clone(),
        managed: Some(ManagedBackup {
            engine: group.engine,
            version: group.version.clone(),
            from_master: choice.from_master,
            source_reason: choice.reason.clone(),
            started_at,
            finished_at,
            sha256: pieces.sha256,
            position: pieces.position,
            store_address: store.address.clone(),
            store_ssh: store.ssh.clone(),
            summary_exact: pieces.summary_exact,
            summary: pieces.summary,
            verification: Verification::Unverified,
        }),
    };
    Ok(Taken {
        record,
        choice,
        seconds: started.elapsed().as_secs_f64(),
        group_dir,
    })
}

/// What a finished backup file is, besides its bytes.
struct Pieces {
    sha256: String,
    size: u64,
    position: Option<String>,
    summary: DataSummary,
    summary_exact: bool,
}

/// The engine's backup into `partial/data` on the store's host, packed
/// into `partial/backup.tar`: returns the file and what it is.
async fn take_into(
    engine: &dyn DatabaseEngine,
    copy: Copy,
    source: &ServerRef,
    access: &dbgroups_engines::engine::GroupAccess,
    store_host: &HostRef,
    partial: &Path,
) -> Result<(PathBuf, Pieces), BackupError> {
    let what = format!("the backup of {}", source.name);
    let failed = |step: &str| BackupError::engine(format!("{what}: {step}"));
    store_host
        .private_dir(partial)
        .await
        .map_err(failed("create its directory in the store"))?;
    let size = engine
        .data_size(
            source,
            &access.only(engine.secrets_for(Operation::MeasureData)),
            copy,
        )
        .await
        .map_err(failed("measure the data"))?;
    // The engine's copy and its tar file sit side by side for a moment.
    dbgroups_engines::disk::ensure_room_on(store_host, &what, partial, size)
        .await
        .map_err(failed("room in the store"))?;
    if !dbgroups_engines::host::same_host(&source.host, store_host) {
        engine
            .admit(
                source,
                &access.only(engine.secrets_for(Operation::Admit)),
                store_host,
            )
            .await
            .map_err(failed("let the store's host in"))?;
    }
    let observe = access.only(engine.secrets_for(Operation::Observe));
    let before = engine
        .data_summary(source, &observe)
        .await
        .map_err(failed("read the data's tables or keys"))?;
    let data = partial.join("data");
    engine
        .backup(
            source,
            &access.only(engine.secrets_for(Operation::Backup)),
            copy,
            store_host,
            &data,
        )
        .await
        .map_err(failed("copy"))?;
    let position = engine
        .backup_position(source, &observe, store_host, &data)
        .await;
    let after = engine
        .data_summary(source, &observe)
        .await
        .map_err(failed("read the data's tables or keys"))?;
    let file = partial.join("backup.tar");
    store_host
        .pack(&data, &file)
        .await
        .map_err(failed("pack into one file"))?;
    store_host
        .remove_dir(&data)
        .await
        .map_err(failed("remove the unpacked copy"))?;
    let sha256 = store_host.sha256(&file).await.map_err(failed("checksum"))?;
    let summary_exact = before == after;
    Ok((
        file.clone(),
        Pieces {
            sha256,
            size: store_host.file_len(&file).await,
            position,
            summary: if summary_exact { after } else { before },
            summary_exact,
        },
    ))
}

/// How each server of the group answers, for [`choose_source`].
async fn candidates(hosts: &HostSet, state: &AppState, group: &GroupState) -> Vec<Candidate> {
    let known: Vec<String> = state
        .groups
        .iter()
        .flat_map(|g| g.servers.iter().map(|s| s.unique_name.clone()))
        .collect();
    let mut all = Vec::new();
    for server in &group.servers {
        let master = server.role == dbgroups_state::Role::Master;
        let answer = if hosts.reaches(server) {
            crate::servers::observe(hosts, state, group, server, &known).await
        } else {
            Err(dbgroups_engines::EngineError::StateMismatch(
                "its host was not reached".into(),
            ))
        };
        all.push(match answer {
            Ok(seen) => Candidate {
                name: server.unique_name.clone(),
                master,
                up: seen.up,
                streaming: seen.replication.as_ref().is_some_and(|r| r.streaming),
                lag_seconds: seen.replication.as_ref().and_then(|r| r.lag_seconds),
                summary: seen.summary,
            },
            Err(err) => Candidate {
                name: server.unique_name.clone(),
                master,
                up: false,
                streaming: false,
                lag_seconds: None,
                summary: err.to_string(),
            },
        });
    }
    all
}

/// Removes what an interrupted run left in a group's directory: its
/// `.partial/`, and the finished file it names when the state does not
/// record it (the run died between the rename and the record).
async fn forget_interrupted(store_host: &HostRef, group_dir: &Path, state: &AppState) {
    let partial = group_dir.join(PARTIAL);
    if !store_host.exists(&partial).await {
        return;
    }
    store_host.stop_programs_naming(&partial).await;
    if let Some(id) = store_host.read_text(&partial.join("id")).await {
        let id = id.trim();
        let plain = !id.is_empty() && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
        if plain && !state.backups.iter().any(|r| r.id == id) {
            let _ = store_host
                .remove_file(&group_dir.join(format!("{id}.tar")))
                .await;
            let _ = store_host
                .remove_file(&group_dir.join(format!("{id}.tar.sha256")))
                .await;
        }
    }
    let _ = store_host.remove_dir(&partial).await;
}

/// After the state records a taken backup: its `.partial/` goes.
pub async fn settle(store_host: &HostRef, taken: &Taken) {
    let _ = store_host.remove_dir(&taken.group_dir.join(PARTIAL)).await;
}

/// Deletes a backup's files from its store (absent is not an error).
pub async fn delete(store_host: &HostRef, record: &BackupRecord) -> Result<(), BackupError> {
    let file = Path::new(&record.path);
    let sum = PathBuf::from(format!("{}.sha256", record.path));
    for path in [file, sum.as_path()] {
        store_host
            .remove_file(path)
            .await
            .map_err(BackupError::engine(format!("delete backup {}", record.id)))?;
    }
    Ok(())
}

/// A record's summary as one line, for messages.
pub fn summary_line(summary: &BTreeMap<String, u64>) -> String {
    if summary.is_empty() {
        return "no tables or keys".into();
    }
    summary
        .iter()
        .map(|(name, count)| format!("{name}={count}"))
        .collect::<Vec<_>>()
        .join(", ")
}

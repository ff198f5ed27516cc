//! `dbgroups backup run | list | verify`: managed backups (docs/backups.md).
//! The work is `dbgroups_apply::backups`'; this reads the manifest's
//! `backups:` settings, holds the state lock, records what comes back and
//! says what happened.

use std::process::ExitCode;
use std::time::{Duration, SystemTime};

use dbgroups_apply::backups::{self, BackupError, StoreSpec};
use dbgroups_apply::hosts::HostSet;
use dbgroups_engines::{HostRef, LocalHost};
use dbgroups_manifest::{Group, Manifest};
use dbgroups_plan::render::escape_controls;
use dbgroups_state::{
    AppState, Backend, BackupRecord, LockGuard, LockScope, StateStore, Verification,
};

use super::{CliError, context};
use crate::args::{
    BackupCommand, BackupListArgs, BackupRunArgs, BackupVerifyArgs, GlobalArgs, ReportFormat,
};
use crate::terminal::{self, Style};

pub(crate) fn run(
    global: &GlobalArgs,
    command: &BackupCommand,
    style: Style,
) -> Result<ExitCode, CliError> {
    match command {
        BackupCommand::Run(args) => run_backups(global, args, style),
        BackupCommand::List(args) => list(global, args, style),
        BackupCommand::Verify(args) => verify(global, args, style),
    }
}

fn runtime() -> Result<tokio::runtime::Runtime, CliError> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|source| CliError::Io {
            action: "start",
            path: "the async runtime".into(),
            source,
        })
}

/// Whether `wanted` (`TYPE.NAME` or `NAME`) names the group `address`.
fn names_group(wanted: Option<&str>, address: &str) -> bool {
    wanted.is_none_or(|w| w == address || address.split_once('.').is_some_and(|(_, n)| n == w))
}

/// The store a manifest group declares (the working directory's
/// `backups/managed` by default: the state directory, or with the state in
/// PostgreSQL the directory it would be).
fn store_of(group: &Group, workspace: &std::path::Path) -> StoreSpec {
    // Absolute: the record is read from other working directories (a
    // timer's, a CI job's) and by hand.
    let state_dir = std::path::absolute(workspace).unwrap_or_else(|_| workspace.into());
    let default_root = state_dir
        .join("backups")
        .join(dbgroups_engines::host::MANAGED_STORE_ENTRY);
    match &group.backups.store {
        None => StoreSpec {
            address: None,
            ssh: Default::default(),
            root: default_root,
        },
        Some(declared) => StoreSpec {
            address: declared.address.as_ref().map(|a| a.value.clone()),
            ssh: match &declared.address {
                None => Default::default(),
                Some(_) => group
                    .servers
                    .first()
                    .and_then(|s| s.application_ssh.as_ref())
                    .map(|ssh| {
                        ssh.entries()
                            .into_iter()
                            .map(|(k, v)| (format!("ssh_{k}"), v))
                            .collect()
                    })
                    .unwrap_or_default(),
            },
            root: declared.path.value.clone().into(),
        },
    }
}

fn managed_groups<'m>(manifest: &'m Manifest, wanted: Option<&str>) -> Vec<&'m Group> {
    manifest
        .groups
        .iter()
        .filter(|g| g.managed_backups() && names_group(wanted, &g.address()))
        .collect()
}

/// What a run works with: the hosts, under the state lock.
struct Session {
    store: Backend,
    /// Where this machine's servers and the default store live.
    workspace: std::path::PathBuf,
    lock: LockGuard,
    state: AppState,
    local: HostRef,
    hosts: HostSet,
    runtime: tokio::runtime::Runtime,
}

impl Session {
    fn open(global: &GlobalArgs, application: &str, what: &str) -> Result<Self, CliError> {
        let store = context::store(global, context::Secrets::Needed)?;
        let lock = store.lock(
            LockScope::Application(application),
            what,
            global.lock_timeout,
        )?;
        let workspace = context::workspace(global);
        let state = store.load(application)?.ok_or_else(|| {
            CliError::Usage(format!(
                "no recorded state for \"{application}\"; run `dbgroups apply` first"
            ))
        })?;
        let local = LocalHost::inspect(&workspace).map(LocalHost::into_ref)?;
        let runtime = runtime()?;
        let hosts = runtime.block_on(HostSet::connect(
            local.clone(),
            &super::ssh_client(),
            std::iter::once(&state),
        ))?;
        Ok(Self {
            store,
            workspace,
            lock,
            state,
            local,
            hosts,
            runtime,
        })
    }

    fn save(&mut self) -> Result<(), CliError> {
        Ok(self.store.save(&self.lock, &mut self.state)?)
    }

    fn store_host(&self, spec: &StoreSpec) -> Result<HostRef, CliError> {
        Ok(self
            .runtime
            .block_on(spec.connect(&self.local, &super::ssh_client()))?)
    }
}

fn run_backups(
    global: &GlobalArgs,
    args: &BackupRunArgs,
    style: Style,
) -> Result<ExitCode, CliError> {
    let manifest = context::read_manifest(global, style)?;
    let ctx_application = context::with_state(
        &context::store(global, context::Secrets::NotNeeded)?,
        manifest,
    )?;
    let application = ctx_application.application();
    let groups = managed_groups(&ctx_application.manifest, args.group.as_deref());
    if groups.is_empty() {
        return Err(CliError::Usage(match &args.group {
            Some(g) => format!("no group {g} with `backups: {{ managed: true }}` in the manifest"),
            None => "no group has `backups: { managed: true }` in the manifest".into(),
        }));
    }
    let mut session = Session::open(global, &application, "backup run")?;
    let mut failures = 0;
    for group in groups {
        let address = group.address();
        if session
            .state
            .group(group.db_type, &group.name.value)
            .is_none()
        {
            terminal::eprint(&format!(
                "{address}: not created yet; run `dbgroups apply` first"
            ));
            failures += 1;
            continue;
        }
        let spec = store_of(group, &session.workspace);
        if let Err(err) = run_one(&mut session, group, &spec, args.verify) {
            terminal::eprint(&format!("{address}: backup failed: {err}"));
            failures += 1;
        }
    }
    Ok(if failures == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// One group's backup, its verify (when asked) and its retention.
fn run_one(
    session: &mut Session,
    group: &Group,
    spec: &StoreSpec,
    verify_it: bool,
) -> Result<(), CliError> {
    let store_host = session.store_host(spec)?;
    let recorded = session
        .state
        .group(group.db_type, &group.name.value)
        .cloned()
        .ok_or_else(|| CliError::Usage(format!("{} is not recorded", group.address())))?;
    let address = recorded.address();
    terminal::print(&format!(
        "{address}: backing up into {}",
        escape_controls(&spec.label())
    ));
    let taken = session
        .runtime
        .block_on(backups::take(
            &session.hosts,
            &store_host,
            spec,
            &session.state,
            &recorded,
        ))
        .map_err(backup_error)?;
    terminal::print(&format!(
        "{address}: from {} — {}",
        taken.choice.server,
        escape_controls(&taken.choice.reason)
    ));
    session.state.backups.push(taken.record.clone());
    session.save()?;
    session
        .runtime
        .block_on(backups::settle(&store_host, &taken));
    terminal::print(&format!(
        "{address}: backup {} taken in {:.1} s: {}, SHA-256 {}, {}",
        taken.record.id,
        taken.seconds,
        dbgroups_engines::disk::human(taken.record.size_bytes),
        short_sum(&taken.record),
        position_of(&taken.record),
    ));
    if !verify_it {
        terminal::print(&format!(
            "{address}: backup {} is NOT VERIFIED yet: `dbgroups backup verify {}` restores it to check it",
            taken.record.id, taken.record.id
        ));
    } else {
        let passed = verify_record(session, &store_host, &taken.record.id)?;
        if !passed {
            return Err(CliError::Usage(format!(
                "backup {} did not verify",
                taken.record.id
            )));
        }
    }
    apply_retention(session, &address, group.backups_kept())
}

fn backup_error(err: BackupError) -> CliError {
    CliError::Usage(err.to_string())
}

fn short_sum(record: &BackupRecord) -> String {
    record
        .managed
        .as_ref()
        .map(|m| m.sha256.chars().take(12).collect::<String>() + "…")
        .unwrap_or_default()
}

fn position_of(record: &BackupRecord) -> String {
    record
        .managed
        .as_ref()
        .and_then(|m| m.position.clone())
        .unwrap_or_else(|| "position unknown".into())
}

/// Verifies the recorded backup `id` and records the result; whether it
/// passed.
fn verify_record(session: &mut Session, store_host: &HostRef, id: &str) -> Result<bool, CliError> {
    let record = session
        .state
        .backups
        .iter()
        .find(|r| r.id == id)
        .cloned()
        .ok_or_else(|| CliError::Usage(format!("no recorded backup {id}")))?;
    terminal::print(&format!(
        "{}: verifying backup {id} (restoring it into a scratch server)",
        record.group
    ));
    let verdict = session
        .runtime
        .block_on(backups::verify(store_host, &session.state, &record))
        .map_err(backup_error)?;
    let passed = matches!(verdict, Verification::Passed { .. });
    match &verdict {
        Verification::Passed { .. } => terminal::print(&format!(
            "{}: backup {id} verified: it restores and its data matches",
            record.group
        )),
        Verification::Failed { reason, .. } => terminal::eprint(&format!(
            "{}: backup {id} FAILED verification: {}",
            record.group,
            escape_controls(reason)
        )),
        Verification::Unverified => {}
    }
    if let Some(managed) = session
        .state
        .backups
        .iter_mut()
        .find(|r| r.id == id)
        .and_then(|r| r.managed.as_mut())
    {
        managed.verification = verdict;
    }
    session.save()?;
    Ok(passed)
}

/// `keep`: deletes what is beyond it, files first, then records.
fn apply_retention(session: &mut Session, address: &str, keep: u32) -> Result<(), CliError> {
    let verdict = {
        let records = backups::managed_of(&session.state, address);
        backups::retention(&records, keep)
    };
    for id in &verdict.delete {
        let Some(record) = session.state.backups.iter().find(|r| &r.id == id).cloned() else {
            continue;
        };
        let Some(spec) = StoreSpec::of_record(&record) else {
            continue;
        };
        let host = session.store_host(&spec)?;
        session
            .runtime
            .block_on(backups::delete(&host, &record))
            .map_err(backup_error)?;
        session.state.backups.retain(|r| &r.id != id);
        session.save()?;
        terminal::print(&format!(
            "{address}: deleted backup {id} (older than the {} newest verified kept)",
            verdict.kept_verified.len()
        ));
    }
    Ok(())
}

fn verify(
    global: &GlobalArgs,
    args: &BackupVerifyArgs,
    style: Style,
) -> Result<ExitCode, CliError> {
    let application = context::application(global, style)?;
    let mut session = Session::open(global, &application, "backup verify")?;
    let ids: Vec<String> = match &args.id {
        Some(id) => vec![id.clone()],
        None => latest_ids(&session.state, args.group.as_deref()),
    };
    if ids.is_empty() {
        return Err(CliError::Usage(
            "no managed backup is recorded; run `dbgroups backup run` first".into(),
        ));
    }
    let mut failed = 0;
    for id in ids {
        let record = session
            .state
            .backups
            .iter()
            .find(|r| r.id == id)
            .cloned()
            .ok_or_else(|| {
                CliError::Usage(format!(
                    "no recorded backup {id}; see `dbgroups backup list`"
                ))
            })?;
        let spec = StoreSpec::of_record(&record)
            .ok_or_else(|| CliError::Usage(format!("{id} is not a managed backup")))?;
        let host = session.store_host(&spec)?;
        if !verify_record(&mut session, &host, &id)? {
            failed += 1;
        }
    }
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// The newest backup of each group (or of `group`).
fn latest_ids(state: &AppState, group: Option<&str>) -> Vec<String> {
    let mut groups: Vec<&str> = state
        .backups
        .iter()
        .filter(|r| r.managed.is_some() && names_group(group, &r.group))
        .map(|r| r.group.as_str())
        .collect();
    groups.sort_unstable();
    groups.dedup();
    groups
        .into_iter()
        .filter_map(|g| backups::managed_of(state, g).first().map(|r| r.id.clone()))
        .collect()
}

fn list(global: &GlobalArgs, args: &BackupListArgs, style: Style) -> Result<ExitCode, CliError> {
    let application = context::application(global, style)?;
    let store = context::store(global, context::Secrets::NotNeeded)?;
    let state = store
        .load(&application)?
        .ok_or_else(|| CliError::Usage(format!("no recorded state for \"{application}\"")))?;
    let mut records: Vec<&BackupRecord> = state
        .backups
        .iter()
        .filter(|r| r.managed.is_some() && names_group(args.group.as_deref(), &r.group))
        .collect();
    records.sort_by(|a, b| (&a.group, &b.taken_at).cmp(&(&b.group, &a.taken_at)));
    match args.format {
        ReportFormat::Json => print_json(&application, &records),
        ReportFormat::Text => print_text(&records),
    }
    Ok(ExitCode::SUCCESS)
}

/// How long ago an RFC 3339 time was, in whole units.
fn age(taken_at: &str) -> String {
    let Ok(when) = humantime::parse_rfc3339_weak(taken_at) else {
        return "unknown".into();
    };
    let seconds = SystemTime::now()
        .duration_since(when)
        .unwrap_or(Duration::ZERO)
        .as_secs();
    match seconds {
        s if s < 120 => format!("{s}s"),
        s if s < 7200 => format!("{}m", s / 60),
        s if s < 172_800 => format!("{}h", s / 3600),
        s => format!("{}d", s / 86_400),
    }
}

/// A verification as lists show it: never blank, so an unverified backup
/// says so.
fn verification_text(record: &BackupRecord) -> String {
    match record.managed.as_ref().map(|m| &m.verification) {
        Some(Verification::Passed { at }) => format!("verified {at}"),
        Some(Verification::Failed { reason, .. }) => format!("FAILED: {reason}"),
        _ => "NOT VERIFIED".into(),
    }
}

fn print_text(records: &[&BackupRecord]) {
    if records.is_empty() {
        terminal::print("No managed backups are recorded. `dbgroups backup run` takes one.");
        return;
    }
    terminal::print(&format!(
        "{:<22} {:<24} {:>6} {:>11} {:<22} VERIFICATION",
        "ID", "GROUP", "AGE", "SIZE", "SOURCE"
    ));
    for record in records {
        let from = match record.managed.as_ref() {
            Some(m) if m.from_master => format!("{} (master)", record.server),
            _ => format!("{} (slave)", record.server),
        };
        terminal::print(&format!(
            "{:<22} {:<24} {:>6} {:>11} {:<22} {}",
            record.id,
            record.group,
            age(&record.taken_at),
            dbgroups_engines::disk::human(record.size_bytes),
            escape_controls(&from),
            escape_controls(&verification_text(record)),
        ));
    }
}

fn print_json(application: &str, records: &[&BackupRecord]) {
    let items: Vec<serde_json::Value> = records
        .iter()
        .map(|record| {
            let managed = record.managed.as_ref();
            serde_json::json!({
                "id": record.id,
                "group": record.group,
                "server": record.server,
                "from_master": managed.map(|m| m.from_master),
                "source_reason": managed.map(|m| m.source_reason.clone()),
                "path": record.path,
                "store_address": managed.and_then(|m| m.store_address.clone()),
                "size_bytes": record.size_bytes,
                "taken_at": record.taken_at,
                "age": age(&record.taken_at),
                "engine": managed.map(|m| m.engine),
                "version": managed.map(|m| m.version.clone()),
                "sha256": managed.map(|m| m.sha256.clone()),
                "position": managed.and_then(|m| m.position.clone()),
                "verification": managed.map(|m| &m.verification),
                "verified": managed.is_some_and(|m| matches!(m.verification, Verification::Passed { .. })),
            })
        })
        .collect();
    let document = serde_json::json!({ "application": application, "backups": items });
    terminal::print(&serde_json::to_string_pretty(&document).unwrap_or_default());
}

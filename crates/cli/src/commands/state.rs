use std::process::ExitCode;
use std::sync::Arc;

use dbgroups_state::{AppState, Backend, LockScope, StateStore};

use super::context::{self, Secrets};
use super::{CliError, passphrase};
use crate::args::{GlobalArgs, ReportFormat, StateCommand, StateListArgs, StateShowArgs};
use crate::terminal;

pub(crate) fn run(global: &GlobalArgs, command: &StateCommand) -> Result<ExitCode, CliError> {
    // Nothing here needs the secrets themselves: show masks them, migrate
    // copies them as stored, rekey opens them with the passphrases itself.
    let store = context::store(global, Secrets::NotNeeded)?;
    match command {
        StateCommand::List(args) => list(&store, args)?,
        StateCommand::Show(args) => show(global, &store, args)?,
        StateCommand::History(args) => history(global, &store, args)?,
        StateCommand::Unlock { id } => {
            let info = store.force_unlock(id)?;
            terminal::eprint(&format!("Broke the lock held by {info}."));
        }
        StateCommand::Migrate { to } => migrate(global, &store, to)?,
        StateCommand::Rekey => rekey(global, &store)?,
    }
    Ok(ExitCode::SUCCESS)
}

fn list(store: &Backend, args: &StateListArgs) -> Result<(), CliError> {
    let applications = store.applications()?;
    let mut listed = Vec::new();
    for application in applications {
        let state = store.load(&application)?;
        let (groups, serial) = state.map_or((0, 0), |s| (s.groups.len(), s.serial));
        listed.push((application, serial, groups));
    }
    let holders: Vec<String> = store
        .lock_holders()?
        .iter()
        .map(ToString::to_string)
        .collect();
    match args.format {
        ReportFormat::Text => {
            if listed.is_empty() {
                terminal::eprint(&format!("No recorded state in {}.", store.describe()));
            }
            for (application, serial, groups) in &listed {
                terminal::print(&format!("{application}\tserial {serial}\t{groups} groups"));
            }
            for holder in &holders {
                terminal::eprint(&format!("The state is locked by {holder}."));
            }
        }
        ReportFormat::Json => {
            let document = serde_json::json!({
                "format_version": 1,
                "state": store.describe(),
                "state_dir": match store {
                    Backend::Directory(_) => Some(store.describe()),
                    Backend::Postgres(_) => None,
                },
                "applications": listed.iter().map(|(application, serial, groups)| {
                    serde_json::json!({
                        "application": application,
                        "serial": serial,
                        "groups": groups,
                    })
                }).collect::<Vec<_>>(),
                "locked_by": holders.first(),
                "locks": holders,
            });
            terminal::print(&serde_json::to_string_pretty(&document).unwrap_or_default());
        }
    }
    Ok(())
}

/// --app, or the manifest's `application:` (which need not be valid).
fn application(global: &GlobalArgs) -> Result<String, CliError> {
    if let Some(app) = &global.app {
        return Ok(app.clone());
    }
    let (_, source) = context::read_manifest_source(global)?;
    let options = dbgroups_manifest::ParseOptions {
        environment: global.environment.clone(),
        application: None,
    };
    dbgroups_manifest::parse(&source, &options)
        .manifest
        .and_then(|m| m.application.map(|a| a.value))
        .ok_or_else(|| CliError::Usage("name the application with --app NAME".into()))
}

fn show(global: &GlobalArgs, store: &Backend, args: &StateShowArgs) -> Result<(), CliError> {
    let application = application(global)?;
    let state = match args.serial {
        Some(serial) => store.load_version(&application, serial)?,
        None => store.load(&application)?.ok_or_else(|| {
            CliError::Usage(format!(
                "no recorded state for application \"{application}\""
            ))
        })?,
    };
    match args.format {
        ReportFormat::Json => {
            terminal::print(&serde_json::to_string_pretty(&state.redacted()).unwrap_or_default())
        }
        ReportFormat::Text => terminal::print(summary(&state).trim_end()),
    }
    Ok(())
}

fn history(global: &GlobalArgs, store: &Backend, args: &StateListArgs) -> Result<(), CliError> {
    let application = application(global)?;
    let versions = store.versions(&application)?;
    if versions.is_empty() {
        return Err(CliError::Usage(format!(
            "no recorded state for application \"{application}\""
        )));
    }
    let or_unknown = |text: &str| {
        if text.is_empty() {
            "-".to_string()
        } else {
            dbgroups_plan::render::escape_controls(text).into_owned()
        }
    };
    match args.format {
        ReportFormat::Text => {
            terminal::print("serial\twritten at\tcommand\twho");
            for version in &versions {
                terminal::print(&format!(
                    "{}\t{}\t{}\t{}",
                    version.serial,
                    or_unknown(&version.written_at),
                    or_unknown(&version.command),
                    or_unknown(&version.written_by)
                ));
            }
        }
        ReportFormat::Json => {
            let document = serde_json::json!({
                "format_version": 1,
                "application": application,
                "lineage": versions.last().map(|v| v.lineage.clone()),
                "versions": versions.iter().map(|v| serde_json::json!({
                    "serial": v.serial,
                    "written_at": v.written_at,
                    "command": v.command,
                    "written_by": v.written_by,
                })).collect::<Vec<_>>(),
            });
            terminal::print(&serde_json::to_string_pretty(&document).unwrap_or_default());
        }
    }
    Ok(())
}

/// `state migrate --to URL|DIR`: every application's kept versions, as
/// stored, into the target, both backends locked throughout.
fn migrate(global: &GlobalArgs, store: &Backend, to: &str) -> Result<(), CliError> {
    let policy = dbgroups_state::SecretPolicy {
        keyring: None,
        secrets_needed: false,
        allow_plaintext: global.allow_plaintext_secrets,
    };
    let target = if to.starts_with("postgres://") || to.starts_with("postgresql://") {
        Backend::Postgres(dbgroups_state::PostgresStore::open(
            to,
            &global.state_schema,
            policy,
        )?)
    } else {
        Backend::Directory(dbgroups_state::DirectoryStore::new(to).with_policy(policy))
    };
    if target.describe() == store.describe() {
        return Err(CliError::Usage(format!(
            "the state is already in {}",
            target.describe()
        )));
    }
    let _source_lock = store.lock(LockScope::Everything, "state migrate", global.lock_timeout)?;
    let target_lock = target.lock(LockScope::Everything, "state migrate", global.lock_timeout)?;
    for application in store.applications()? {
        let versions = store.versions(&application)?;
        let copied = target.import(&target_lock, &application, &versions)?;
        let serial = versions.last().map_or(0, |v| v.serial);
        terminal::eprint(&if copied == 0 {
            format!("{application}: already in the target at serial {serial}")
        } else {
            format!(
                "{application}: copied {copied} version{} (serial {serial})",
                if copied == 1 { "" } else { "s" }
            )
        });
    }
    terminal::eprint(&format!("The state is in {} too.", target.describe()));
    Ok(())
}

fn rekey(global: &GlobalArgs, store: &Backend) -> Result<(), CliError> {
    let Some(new) = passphrase::current()? else {
        return Err(CliError::Usage(
            "set the new passphrase in DBGROUPS_STATE_PASSPHRASE (and the old one, if the secrets are encrypted, in DBGROUPS_STATE_OLD_PASSPHRASE)".into(),
        ));
    };
    let old = passphrase::old()?;
    let lock = store.lock(LockScope::Everything, "state rekey", global.lock_timeout)?;
    let count = store.rekey(&lock, old.as_ref(), &Arc::clone(&new))?;
    terminal::eprint(&format!(
        "Re-encrypted the secrets of {count} stored version{} under the new passphrase.",
        if count == 1 { "" } else { "s" }
    ));
    Ok(())
}

/// The state for a person: its version, and each group's servers with
/// their roles and ports. No secret is part of it.
fn summary(state: &AppState) -> String {
    use std::fmt::Write as _;
    let mut out = format!(
        "application {} (serial {}, lineage {})\n",
        state.application, state.serial, state.lineage
    );
    for group in &state.groups {
        let _ = writeln!(
            out,
            "{} ({} {}){}",
            group.address(),
            group.engine,
            group.version,
            if group.primary { ", primary" } else { "" }
        );
        for server in &group.servers {
            let _ = writeln!(
                out,
                "  {:<24} {:<7} {}",
                server.unique_name,
                format!("{:?}", server.role).to_lowercase(),
                server
                    .port
                    .map_or("no port".to_string(), |p| format!("port {p}"))
            );
        }
    }
    if state.encryption.is_some() {
        out.push_str("secrets encrypted (AES-256-GCM)\n");
    }
    if state.journal.is_some() {
        out.push_str("an interrupted apply is recorded; `dbgroups apply` finishes it\n");
    }
    dbgroups_plan::render::escape_controls(&out).into_owned()
}

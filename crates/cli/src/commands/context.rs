//! What most commands start from: the parsed manifest, the state store and
//! the recorded state of every application in it.

use std::collections::{BTreeMap, BTreeSet};

use dbgroups_manifest::{Manifest, ParseOptions, SourceFile};
use dbgroups_plan::{GroupAddress, Intents, ObservedFacts, Plan, PlanInput};
use dbgroups_state::{AppState, Backend, DirectoryStore, StateStore};

use super::CliError;
use crate::args::{GlobalArgs, IntentArgs};
use crate::render;
use crate::terminal::{self, Style};

pub(crate) struct Context {
    pub(crate) manifest_bytes: Vec<u8>,
    pub(crate) manifest: Manifest,
    pub(crate) state: Option<AppState>,
    pub(crate) others: BTreeMap<String, AppState>,
}

impl Context {
    /// The application (`--app` or the manifest's); `load` refuses a
    /// manifest without one, so this is never empty.
    pub(crate) fn application(&self) -> String {
        self.manifest
            .application
            .as_ref()
            .map(|a| a.value.clone())
            .unwrap_or_default()
    }

    /// Observes the servers (unless `refresh` is false) and plans: what
    /// `plan`, `apply` and `graph` all do. The observed facts come back too,
    /// for plan files, which record whether the servers were asked.
    pub(crate) fn plan(
        &self,
        global: &GlobalArgs,
        intents: &Intents,
        refresh: bool,
    ) -> Result<(Plan, ObservedFacts), CliError> {
        let observed = super::observe::observe(
            self.state.as_ref(),
            &self.manifest,
            refresh,
            &workspace(global),
        );
        let plan = dbgroups_plan::plan(&PlanInput {
            manifest: &self.manifest,
            state: self.state.as_ref(),
            other_applications: &self.others,
            observed: &observed,
            intents,
        })?;
        Ok((plan, observed))
    }
}

/// The application a command that reads only the state works on: --app,
/// or else the manifest's (which must then be valid).
pub(crate) fn application(global: &GlobalArgs, style: Style) -> Result<String, CliError> {
    match &global.app {
        Some(app) => Ok(app.clone()),
        None => Ok(read_manifest(global, style)?.application),
    }
}

/// Whether the running command uses the secrets themselves (talks to
/// servers, prints them) or only the rest of the state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Secrets {
    Needed,
    NotNeeded,
}

impl Secrets {
    pub(crate) fn needed_if(condition: bool) -> Self {
        if condition {
            Self::Needed
        } else {
            Self::NotNeeded
        }
    }
}

/// This machine's own directory, whatever the backend: the local
/// provider's servers and the environment file live there.
pub(crate) fn workspace(global: &GlobalArgs) -> std::path::PathBuf {
    match &global.state_dir {
        Some(dir) => dir.clone(),
        None => DirectoryStore::beside(&global.manifest)
            .root()
            .to_path_buf(),
    }
}

/// A command that writes secrets to the PostgreSQL backend refuses to
/// start without a passphrase (or --allow-plaintext-secrets): found at the
/// first write, the refusal would come after servers were made.
pub(crate) fn refuse_plaintext_writes(global: &GlobalArgs) -> Result<(), CliError> {
    if global.state_url.is_some()
        && !global.allow_plaintext_secrets
        && super::passphrase::current()?.is_none()
    {
        return Err(CliError::Usage(
            "the PostgreSQL state would hold this application's passwords in plain text: set DBGROUPS_STATE_PASSPHRASE (or DBGROUPS_STATE_PASSPHRASE_FILE) to encrypt them, or pass --allow-plaintext-secrets".into(),
        ));
    }
    Ok(())
}

/// The state backend the flags choose: --state-url, else the directory.
pub(crate) fn store(global: &GlobalArgs, secrets: Secrets) -> Result<Backend, CliError> {
    let policy = dbgroups_state::SecretPolicy {
        keyring: super::passphrase::current()?,
        secrets_needed: secrets == Secrets::Needed,
        allow_plaintext: global.allow_plaintext_secrets,
    };
    match (&global.state_url, &global.state_dir) {
        (Some(_), Some(_)) => Err(CliError::Usage(
            "--state-url (DBGROUPS_STATE_URL) and --state-dir (DBGROUPS_STATE_DIR) name two different states; give one".into(),
        )),
        (Some(url), None) => Ok(Backend::Postgres(dbgroups_state::PostgresStore::open(
            url,
            &global.state_schema,
            policy,
        )?)),
        (None, _) => Ok(Backend::Directory(
            DirectoryStore::new(workspace(global)).with_policy(policy),
        )),
    }
}

/// A manifest read and validated, before any state is touched.
pub(crate) struct ValidManifest {
    manifest_bytes: Vec<u8>,
    manifest: Manifest,
    pub(crate) application: String,
    /// Its warnings (end of life …), for the renderings that carry them.
    pub(crate) warnings: Vec<ManifestDiagnostic>,
}

/// One diagnostic about the manifest, kept for machine-readable output
/// after the human rendering went to stderr.
#[derive(Debug, Clone)]
pub(crate) struct ManifestDiagnostic {
    /// The object `validate --format json` prints.
    pub(crate) json: serde_json::Value,
    /// `file:line:column: severity[code]: message`, and its help.
    pub(crate) compact: String,
}

impl ManifestDiagnostic {
    fn new(diagnostic: &dbgroups_manifest::Diagnostic, source: &SourceFile) -> Self {
        Self {
            json: diagnostic.to_json(source),
            compact: diagnostic.to_compact_string(source),
        }
    }

    /// One line for a plan's `warnings` list: where, what, and its code.
    pub(crate) fn warning_line(&self) -> String {
        let field = |name: &str| {
            self.json[name]
                .as_str()
                .map(str::to_string)
                .or_else(|| self.json[name].as_u64().map(|n| n.to_string()))
                .unwrap_or_default()
        };
        format!(
            "{}:{}:{}: {} [{}]",
            field("file"),
            field("line"),
            field("column"),
            field("message"),
            field("code")
        )
    }
}

/// What `-f -` names: the manifest arrives on stdin.
const STDIN: &str = "-";

/// The manifest's bytes and the name its diagnostics give it.
pub(crate) fn read_manifest_source(
    global: &GlobalArgs,
) -> Result<(Vec<u8>, SourceFile), dbgroups_manifest::ManifestError> {
    let path = &global.manifest;
    let read_error = |source| dbgroups_manifest::ManifestError::Read {
        path: path.clone(),
        source,
    };
    let (bytes, name) = if path.as_os_str() == STDIN {
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(&mut std::io::stdin().lock(), &mut bytes).map_err(read_error)?;
        (bytes, "<stdin>".to_string())
    } else {
        (
            std::fs::read(path).map_err(read_error)?,
            path.display().to_string(),
        )
    };
    let source = SourceFile::from_bytes(name, &bytes);
    Ok((bytes, source))
}

/// Reads and validates the manifest (printing its diagnostics when it has
/// errors, and its warnings otherwise) and loads the state.
pub(crate) fn load(
    global: &GlobalArgs,
    style: Style,
    secrets: Secrets,
) -> Result<Context, CliError> {
    let read = read_manifest(global, style)?;
    with_state(&store(global, secrets)?, read)
}

/// Reads and validates the manifest, printing its diagnostics. Writing
/// commands call this before they take the state lock, so a manifest that
/// is refused leaves nothing behind, not even the lock file.
pub(crate) fn read_manifest(global: &GlobalArgs, style: Style) -> Result<ValidManifest, CliError> {
    let (manifest_bytes, source) = read_manifest_source(global)?;
    let options = ParseOptions {
        environment: global.environment.clone(),
        application: global.app.clone(),
    };
    let parsed = dbgroups_manifest::parse(&source, &options);
    let Some(manifest) = parsed.manifest else {
        let shown: Vec<_> = parsed.diagnostics.iter().collect();
        terminal::eprint(render::graphical(&shown, &source, style).trim_end());
        return Err(CliError::InvalidManifest {
            file: source.name().to_string(),
            diagnostics: shown
                .iter()
                .map(|d| ManifestDiagnostic::new(d, &source))
                .collect(),
        });
    };
    let warnings: Vec<_> = parsed
        .diagnostics
        .iter()
        .filter(|d| d.severity == dbgroups_manifest::Severity::Warning)
        .collect();
    if !warnings.is_empty() {
        terminal::eprint(render::graphical(&warnings, &source, style).trim_end());
    }
    let application = manifest
        .application
        .as_ref()
        .map(|a| a.value.clone())
        .ok_or_else(|| {
            CliError::Usage(
                "the manifest names no application: add `application: NAME` or pass --app NAME"
                    .into(),
            )
        })?;
    Ok(ValidManifest {
        manifest_bytes,
        manifest,
        application,
        warnings: warnings
            .iter()
            .map(|d| ManifestDiagnostic::new(d, &source))
            .collect(),
    })
}

/// The recorded state beside a validated manifest (under the lock, for a
/// writing command).
pub(crate) fn with_state(store: &Backend, read: ValidManifest) -> Result<Context, CliError> {
    let mut others = store.load_all()?;
    let state = others.remove(&read.application);
    Ok(Context {
        manifest_bytes: read.manifest_bytes,
        manifest: read.manifest,
        state,
        others,
    })
}

pub(crate) fn intents(args: &IntentArgs) -> Result<Intents, CliError> {
    let groups = |flag: &str, values: &[String]| -> Result<BTreeSet<GroupAddress>, CliError> {
        values
            .iter()
            .map(|v| {
                v.parse()
                    .map_err(|e| CliError::Usage(format!("{flag} {v}: {e}")))
            })
            .collect()
    };
    Ok(Intents {
        add_groups: groups("--add-group", &args.add_group)?,
        remove_groups: groups("--remove-group", &args.remove_group)?,
        remove_servers: args.remove_server.iter().cloned().collect(),
        resync: args.resync.iter().cloned().collect(),
        restart_masters: args.restart_master.iter().cloned().collect(),
        skip_disk_check: args.skip_disk_check,
        ..Intents::default()
    })
}

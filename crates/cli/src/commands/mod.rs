pub(crate) mod apply;
pub(crate) mod apply_events;
pub(crate) mod backup;
pub(crate) mod context;
pub(crate) mod destroy;
pub(crate) mod env;
pub(crate) mod graph;
pub(crate) mod observe;
pub(crate) mod passphrase;
pub(crate) mod plan;
pub(crate) mod plan_failure;
pub(crate) mod schema;
pub(crate) mod show;
pub(crate) mod state;
pub(crate) mod status;
pub(crate) mod validate;

/// An error and each cause that adds something, on one line (`a: b: c`),
/// for output read without miette's report: JSON documents and events.
/// The engines' own chain, so their errors read the same everywhere.
pub(crate) use dbgroups_engines::with_causes as error_chain;

/// Failures of a command that are not diagnostics about the manifest.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub(crate) enum CliError {
    #[error(transparent)]
    #[diagnostic(code(dbgroups::manifest))]
    Manifest(#[from] dbgroups_manifest::ManifestError),
    /// The diagnostics were printed already.
    #[error("{file} is invalid; fix the errors above (`dbgroups validate` shows them too)")]
    #[diagnostic(code(dbgroups::invalid_manifest))]
    InvalidManifest {
        file: String,
        /// Printed on stderr already; kept for the machine-readable
        /// renderings of `plan`, so a pull-request comment shows them.
        diagnostics: Vec<context::ManifestDiagnostic>,
    },
    #[error(transparent)]
    #[diagnostic(code(dbgroups::state))]
    State(#[from] dbgroups_state::StateError),
    #[error(transparent)]
    #[diagnostic(code(dbgroups::plan))]
    Plan(#[from] dbgroups_plan::PlanError),
    #[error("cannot use plan file {path}")]
    #[diagnostic(code(dbgroups::plan_file))]
    PlanFile {
        path: String,
        #[source]
        source: dbgroups_plan::planfile::PlanFileError,
    },
    #[error("cannot {action} {path}")]
    #[diagnostic(code(dbgroups::io))]
    Io {
        action: &'static str,
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}")]
    #[diagnostic(code(dbgroups::usage))]
    Usage(String),
    #[error("the plan file is stale; make a new plan")]
    #[diagnostic(code(dbgroups::stale_plan))]
    Stale(#[from] dbgroups_plan::planfile::Stale),
    #[error(transparent)]
    #[diagnostic(code(dbgroups::engine))]
    Engine(#[from] dbgroups_engines::EngineError),
    #[error(transparent)]
    #[diagnostic(code(dbgroups::apply))]
    Apply(#[from] dbgroups_apply::ApplyError),
    #[error("{0}")]
    #[diagnostic(
        code(dbgroups::all_blocked),
        help("the plan's \"Blocked\" list says why each was refused and what to do instead")
    )]
    AllBlocked(String),
    #[error("apply stopped: {0}")]
    #[diagnostic(
        code(dbgroups::apply_failed),
        help("completed steps are recorded; run `dbgroups apply` again to finish")
    )]
    ApplyFailed(String),
}

/// How this run reaches hosts over ssh: set once from the command line,
/// read where hosts are connected (apply, destroy, refresh, status).
static SSH_CLIENT: std::sync::OnceLock<dbgroups_engines::SshClient> = std::sync::OnceLock::new();

pub(crate) fn use_ssh_client(client: dbgroups_engines::SshClient) {
    let _ = SSH_CLIENT.set(client);
}

pub(crate) fn ssh_client() -> dbgroups_engines::SshClient {
    SSH_CLIENT.get().cloned().unwrap_or_default()
}

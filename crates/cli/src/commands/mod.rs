pub(crate) mod context;
pub(crate) mod graph;
pub(crate) mod observe;
pub(crate) mod plan;
pub(crate) mod schema;
pub(crate) mod show;
pub(crate) mod state;
pub(crate) mod validate;

/// Failures of a command that are not diagnostics about the manifest.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub(crate) enum CliError {
    #[error(transparent)]
    #[diagnostic(code(dbgroups::manifest))]
    Manifest(#[from] dbgroups_manifest::ManifestError),
    /// The diagnostics were printed already.
    #[error("{0} is invalid; fix the errors above (`dbgroups validate` shows them too)")]
    #[diagnostic(code(dbgroups::invalid_manifest))]
    InvalidManifest(String),
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
}

pub(crate) mod schema;
pub(crate) mod validate;

/// Failures of a command that are not diagnostics about the manifest.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub(crate) enum CliError {
    #[error(transparent)]
    #[diagnostic(code(dbgroups::manifest))]
    Manifest(#[from] dbgroups_manifest::ManifestError),
}

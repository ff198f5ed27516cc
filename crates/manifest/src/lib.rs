//! Parses and validates dbgroups' `manifest.yml`.
//!
//! [`parse`] takes a [`SourceFile`] and returns [`Parsed`]: the typed
//! [`Manifest`] (its [`Group`]s, each with a [`Configuration`] and
//! [`Server`]s, every value [`Spanned`] with where it was written) and the
//! [`Diagnostics`] found on the way. All problems are reported in one run,
//! each [`Diagnostic`] labelled at its line and column; the manifest is
//! returned only when none of them is an error.
//!
//! The [`catalogue`] lists the versions each [`Engine`] supports and which can
//! replicate from which; [`env_names`] the environment variables a group
//! gives the application; [`schema`] the JSON Schema editors validate with.
//!
//! This crate does no I/O beyond [`SourceFile::read`] and knows nothing of
//! terminals: rendering diagnostics is the CLI's job.

pub mod catalogue;
mod diagnostic;
pub mod env_names;
mod error;
pub mod escape;
pub mod hosts;
pub mod keys;
mod loader;
mod model;
mod reader;
pub mod schema;
mod source;
pub mod suggest;
mod validate;
mod yaml;

pub use diagnostic::{Code, Diagnostic, Diagnostics, Label, Severity};
pub use error::ManifestError;
pub use model::{
    BackupChoice, BackupStore, Backups, Configuration, DbType, Engine, Group, GroupRef, Manifest,
    ProviderKind, Server, SshSettings, Tag,
};
pub use source::{Location, SourceFile, Span, Spanned};

/// Choices made on the command line that change how a manifest reads.
#[derive(Debug, Clone, Default)]
pub struct ParseOptions {
    /// `--environment`: read the groups from this environment section.
    pub environment: Option<String>,
    /// `--app`: overrides the manifest's `application:`.
    pub application: Option<String>,
}

/// The outcome of [`parse`].
#[derive(Debug)]
#[must_use]
pub struct Parsed {
    /// Present only when no diagnostic is an error.
    pub manifest: Option<Manifest>,
    /// Errors, warnings and advice, in source order.
    pub diagnostics: Diagnostics,
}

/// Parses and validates a manifest, collecting every diagnostic.
pub fn parse(source: &SourceFile, options: &ParseOptions) -> Parsed {
    let mut diagnostics = Diagnostics::default();
    let (root, yaml_diagnostics) = yaml::load(source);
    diagnostics.extend(yaml_diagnostics);
    let manifest = root.map(|root| {
        let manifest = reader::Reader::new(source, &mut diagnostics).read_document(&root, options);
        validate::validate(&manifest, &mut diagnostics);
        let environment_unresolved = diagnostics
            .iter()
            .any(|d| matches!(d.code, Code::EnvironmentRequired | Code::UnknownEnvironment));
        if manifest.application.is_none() && !environment_unresolved {
            diagnostics.push(
                Diagnostic::warning(
                    Code::MissingApplication,
                    "the manifest names no application",
                    Span::new(0, 0),
                )
                .with_help("add `application: NAME` at the top, or pass --app NAME; plan and apply need one"),
            );
        }
        manifest
    });
    diagnostics.sort();
    Parsed {
        manifest: manifest.filter(|_| !diagnostics.has_errors()),
        diagnostics,
    }
}

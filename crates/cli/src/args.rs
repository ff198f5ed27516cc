use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(
    name = "dbgroups",
    version,
    about = "Plan and apply database groups and their replication from manifest.yml",
    long_about = "dbgroups reads the MySQL, PostgreSQL, Redis and MongoDB groups declared in \
                  manifest.yml, compares them with the recorded state, and plans and applies \
                  the changes on real servers.",
    propagate_version = true
)]
pub(crate) struct Cli {
    #[command(flatten)]
    pub(crate) global: GlobalArgs,
    #[command(subcommand)]
    pub(crate) command: Command,
}

/// Flags every command accepts (DESIGN.md §7).
#[derive(Debug, Args)]
pub(crate) struct GlobalArgs {
    /// The manifest to read.
    #[arg(
        short = 'f',
        long,
        global = true,
        default_value = "manifest.yml",
        value_name = "FILE"
    )]
    pub(crate) manifest: PathBuf,
    /// The application, overriding the manifest's `application:`.
    #[arg(long, global = true, value_name = "NAME")]
    pub(crate) app: Option<String>,
    /// Read the groups from this environment section of the manifest (`production:` …).
    #[arg(long, global = true, value_name = "NAME")]
    pub(crate) environment: Option<String>,
    /// Never colour the output (the NO_COLOR variable does the same).
    #[arg(long, global = true)]
    pub(crate) no_color: bool,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Check a manifest and report every problem with its line and column.
    #[command(after_help = "Examples:\n  \
        dbgroups validate\n  \
        dbgroups validate -f examples/quickstart/manifest.yml\n  \
        dbgroups validate --environment production --format json\n\n\
        Exit status: 0 when the manifest is valid (warnings allowed), 1 when it has errors.")]
    Validate(ValidateArgs),
    /// Print the manifest's JSON Schema, for editors (yaml-language-server).
    #[command(after_help = "Examples:\n  \
        dbgroups schema > dbgroups.schema.json\n\n\
        Then put `# yaml-language-server: $schema=./dbgroups.schema.json` at the top of \
        manifest.yml; docs/editor-setup.md has the details.")]
    Schema,
}

#[derive(Debug, Args)]
pub(crate) struct ValidateArgs {
    /// How to print the diagnostics.
    #[arg(long, value_enum, default_value_t = DiagnosticFormat::Text)]
    pub(crate) format: DiagnosticFormat,
    /// Same as --format json.
    #[arg(long, conflicts_with = "format")]
    pub(crate) json: bool,
}

impl ValidateArgs {
    pub(crate) fn format(&self) -> DiagnosticFormat {
        if self.json {
            DiagnosticFormat::Json
        } else {
            self.format
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum DiagnosticFormat {
    /// rustc-style reports with the offending line quoted.
    Text,
    /// One `file:line:column: severity[code]: message` line each.
    Short,
    /// A JSON document, for tools.
    Json,
}

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
    /// Where state is kept [default: .dbgroups/ next to the manifest].
    #[arg(long, global = true, value_name = "DIR", env = "DBGROUPS_STATE_DIR")]
    pub(crate) state_dir: Option<PathBuf>,
    /// How long a writing command waits for another to release the state lock.
    #[arg(long, global = true, value_name = "DURATION", default_value = "0s", value_parser = parse_duration)]
    pub(crate) lock_timeout: std::time::Duration,
}

fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    humantime::parse_duration(text).map_err(|e| format!("{e} (write it like 30s, 2m or 1h)"))
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
    /// Compare the manifest with the recorded state and show the plan.
    #[command(after_help = "Examples:\n  \
        dbgroups plan\n  \
        dbgroups plan --refresh=false --format markdown      # CI, for a pull-request comment\n  \
        dbgroups plan --add-group postgresql.reporting --out plan.json\n  \
        dbgroups plan --remove-server pg-replica-2 --detailed-exitcode\n\n\
        Exit status: 0 on success; with --detailed-exitcode 0 for no changes, 2 for changes, 1 for errors.")]
    Plan(PlanArgs),
    /// Render a plan file written by `plan --out`.
    #[command(after_help = "Examples:\n  \
        dbgroups show plan.json\n  \
        dbgroups show plan.json --format markdown")]
    Show(ShowArgs),
    /// Draw the plan's step graph as DOT or Mermaid.
    #[command(after_help = "Examples:\n  \
        dbgroups graph | dot -Tsvg > plan.svg\n  \
        dbgroups graph --format mermaid --plan plan.json")]
    Graph(GraphArgs),
    /// Inspect the recorded state.
    #[command(subcommand)]
    State(StateCommand),
    /// Carry out a plan on the servers (plans first and asks, unless given a plan file).
    #[command(after_help = "Examples:\n  \
        dbgroups apply                         # plan, show it, ask, apply\n  \
        dbgroups apply --auto-approve          # CI\n  \
        dbgroups plan --out plan.json && dbgroups apply plan.json\n\n\
        Safe to interrupt and run again: completed steps are recorded and every step is idempotent.")]
    Apply(ApplyArgs),
    /// Show every recorded server: role, whether it is up, replication and lag.
    Status,
    /// Print the application's environment variables (secrets masked).
    #[command(after_help = "Examples:\n  dbgroups env\n  dbgroups env --show-secrets > app.env")]
    Env(EnvArgs),
    /// Stop and delete every server and all data of an application.
    #[command(after_help = "Examples:\n  \
        dbgroups destroy --app shop                  # asks you to type the name\n  \
        dbgroups destroy --app shop --auto-approve\n\n\
        The one command that removes a whole application's groups. It is refused while \
        another group replicates from one of them.")]
    Destroy(DestroyArgs),
}

#[derive(Debug, Args)]
pub(crate) struct DestroyArgs {
    /// Destroy without asking for the application's name.
    #[arg(long)]
    pub(crate) auto_approve: bool,
    #[arg(long, default_value_t = 4, value_name = "N")]
    pub(crate) parallelism: usize,
}

#[derive(Debug, Args)]
pub(crate) struct ApplyArgs {
    /// A plan file from `plan --out`: applied exactly, refused if stale.
    pub(crate) plan: Option<PathBuf>,
    #[command(flatten)]
    pub(crate) intents: IntentArgs,
    /// Apply without asking (for CI).
    #[arg(long)]
    pub(crate) auto_approve: bool,
    /// How many steps may run at once.
    #[arg(long, default_value_t = 4, value_name = "N")]
    pub(crate) parallelism: usize,
    /// Progress as NDJSON events on stdout.
    #[arg(long)]
    pub(crate) json: bool,
}

#[derive(Debug, Args)]
pub(crate) struct EnvArgs {
    /// Show passwords and URLs instead of masking them.
    #[arg(long)]
    pub(crate) show_secrets: bool,
    #[arg(long, value_enum, default_value_t = EnvFormat::Dotenv)]
    pub(crate) format: EnvFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum EnvFormat {
    Dotenv,
    Json,
}

/// The explicit intents: the only way to add or remove groups and servers
/// of an existing application.
#[derive(Debug, Args, Default)]
pub(crate) struct IntentArgs {
    /// Create a group the manifest declares but the state does not record (TYPE.NAME).
    #[arg(long = "add-group", value_name = "TYPE.NAME")]
    pub(crate) add_group: Vec<String>,
    /// Remove a recorded group the manifest no longer declares (TYPE.NAME).
    #[arg(long = "remove-group", value_name = "TYPE.NAME")]
    pub(crate) remove_group: Vec<String>,
    /// Remove a recorded server the manifest no longer declares.
    #[arg(long = "remove-server", value_name = "NAME")]
    pub(crate) remove_server: Vec<String>,
    /// Re-synchronise a slave from a fresh backup of its master.
    #[arg(long, value_name = "NAME")]
    pub(crate) resync: Vec<String>,
    /// Run backups and restores without checking free space first (the plan says so).
    #[arg(long)]
    pub(crate) skip_disk_check: bool,
    /// Ask the servers how they are (`--refresh=false` plans offline from state).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set, value_name = "BOOL")]
    pub(crate) refresh: bool,
}

#[derive(Debug, Args)]
pub(crate) struct PlanArgs {
    #[command(flatten)]
    pub(crate) intents: IntentArgs,
    /// Write the plan to FILE for `apply FILE` (takes the state lock while writing).
    #[arg(long, value_name = "FILE")]
    pub(crate) out: Option<PathBuf>,
    /// Exit 0 for no changes, 2 for changes, 1 for errors.
    #[arg(long)]
    pub(crate) detailed_exitcode: bool,
    #[arg(long, value_enum, default_value_t = PlanFormat::Text)]
    pub(crate) format: PlanFormat,
    /// Same as --format json.
    #[arg(long, conflicts_with = "format")]
    pub(crate) json: bool,
}

#[derive(Debug, Args)]
pub(crate) struct ShowArgs {
    /// A plan file from `plan --out`.
    pub(crate) file: PathBuf,
    #[arg(long, value_enum, default_value_t = PlanFormat::Text)]
    pub(crate) format: PlanFormat,
    /// Same as --format json.
    #[arg(long, conflicts_with = "format")]
    pub(crate) json: bool,
}

#[derive(Debug, Args)]
pub(crate) struct GraphArgs {
    #[command(flatten)]
    pub(crate) intents: IntentArgs,
    /// Draw this plan file instead of planning now.
    #[arg(long, value_name = "FILE")]
    pub(crate) plan: Option<PathBuf>,
    #[arg(long, value_enum, default_value_t = GraphFormat::Dot)]
    pub(crate) format: GraphFormat,
}

#[derive(Debug, Subcommand)]
pub(crate) enum StateCommand {
    /// List the applications with recorded state.
    List,
    /// Show an application's recorded state, secrets masked.
    #[command(after_help = "Examples:\n  dbgroups state show --app shop")]
    Show,
    /// Break the state lock with this id, when its holder will not finish.
    #[command(
        after_help = "The id is in the message of the command that found the lock held. \
        The lock is released by the OS when its process dies, so this is only for a holder \
        that is alive but stuck, or on another host sharing the directory."
    )]
    Unlock {
        /// The lock's id.
        id: String,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum PlanFormat {
    /// For terminals: `+ ~ - !` markers, destructive changes first.
    Text,
    /// Versioned JSON (docs/plan-json.md).
    Json,
    /// For pull-request comments.
    Markdown,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum GraphFormat {
    Dot,
    Mermaid,
}

pub(crate) fn plan_format(format: PlanFormat, json: bool) -> PlanFormat {
    if json { PlanFormat::Json } else { format }
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

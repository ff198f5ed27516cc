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

/// Flags every command accepts (docs/reference.md); a command that has no
/// use for one refuses it ([`refuse_idle_flags`]).
#[derive(Debug, Args)]
pub(crate) struct GlobalArgs {
    /// The manifest to read (`-` reads it from stdin).
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
    /// Keep the state in this PostgreSQL database (postgres://…; TLS as its sslmode says),
    /// shared by every machine that names it; its password is never printed.
    #[arg(
        long,
        global = true,
        value_name = "URL",
        env = "DBGROUPS_STATE_URL",
        hide_env_values = true
    )]
    pub(crate) state_url: Option<String>,
    /// The schema of the state's tables in --state-url's database.
    #[arg(long, global = true, value_name = "NAME", env = "DBGROUPS_STATE_SCHEMA", default_value = dbgroups_state::DEFAULT_SCHEMA)]
    pub(crate) state_schema: String,
    /// Let the PostgreSQL backend store secrets in plain text (without DBGROUPS_STATE_PASSPHRASE).
    #[arg(long, global = true)]
    pub(crate) allow_plaintext_secrets: bool,
    /// How long a writing command waits for another to release the state lock.
    #[arg(long, global = true, value_name = "DURATION", default_value = "0s", value_parser = parse_duration)]
    pub(crate) lock_timeout: std::time::Duration,
    /// The OpenSSH client configuration for servers on hosts [default: ssh's own, ~/.ssh/config].
    #[arg(long, global = true, value_name = "FILE", env = "DBGROUPS_SSH_CONFIG")]
    pub(crate) ssh_config: Option<PathBuf>,
    /// Trust a host key seen for the first time (ssh's accept-new); a changed key is refused anyway.
    #[arg(long, global = true)]
    pub(crate) accept_new_host_keys: bool,
}

impl GlobalArgs {
    /// How every ssh connection of this run is made.
    pub(crate) fn ssh_client(&self) -> dbgroups_engines::SshClient {
        dbgroups_engines::SshClient {
            config_file: self.ssh_config.clone(),
            accept_new_host_keys: self.accept_new_host_keys,
        }
    }
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
        manifest.yml; docs/editor-setup.md has the details.\n\n\
        Exit status: 0, or 1 when the schema cannot be written.")]
    Schema,
    /// Compare the manifest with the recorded state and show the plan.
    #[command(after_help = "Examples:\n  \
        dbgroups plan\n  \
        dbgroups plan --refresh=false --format markdown      # CI, for a pull-request comment\n  \
        dbgroups plan --add-group postgresql.reporting --out plan.json\n  \
        dbgroups plan --remove-server pg-replica-2 --detailed-exitcode\n  \
        dbgroups plan --refresh=false --out plan.bin --state-url \"$DBGROUPS_STATE_URL\"   # CI, no passphrase needed\n\n\
        Exit status: 0 on success; with --detailed-exitcode 0 for no changes, 2 for changes. \
        1 for any error, usage errors included, and for a plan whose every change is blocked \
        (nothing can be done until the blocks are resolved).")]
    Plan(PlanArgs),
    /// Render a plan file written by `plan --out`.
    #[command(after_help = "Examples:\n  \
        dbgroups show plan.json\n  \
        dbgroups show plan.json --format markdown\n\n\
        Exit status: 0 when the plan file was rendered, 1 when it cannot be read or is not a plan file.")]
    Show(ShowArgs),
    /// Draw the plan's step graph as DOT or Mermaid.
    #[command(after_help = "Examples:\n  \
        dbgroups graph | dot -Tsvg > plan.svg\n  \
        dbgroups graph --format mermaid --plan plan.json\n\n\
        Exit status: 0 when the graph was drawn, 1 for any error.")]
    Graph(GraphArgs),
    /// Inspect the recorded state.
    #[command(subcommand)]
    State(StateCommand),
    /// Carry out a plan on the servers (plans first and asks, unless given a plan file).
    #[command(after_help = "Examples:\n  \
        dbgroups apply                         # plan, show it, ask, apply\n  \
        dbgroups apply --auto-approve          # CI\n  \
        dbgroups plan --out plan.json && dbgroups apply plan.json\n  \
        dbgroups apply plan.bin --state-url \"$DBGROUPS_STATE_URL\" --lock-timeout 10m   # CI, shared state\n\n\
        With --state-url, DBGROUPS_STATE_PASSPHRASE (or _FILE) encrypts the state's secrets; \
        without it the apply is refused unless --allow-plaintext-secrets (docs/state.md).\n\n\
        Safe to interrupt and run again: completed steps are recorded and every step is idempotent.\n\n\
        Exit status: 0 when every step finished (or there was nothing to do), 1 when a step failed, \
        the apply was interrupted or cancelled, every change is blocked, or for any other error.")]
    Apply(ApplyArgs),
    /// Show every recorded server: role, whether it is up, replication and lag.
    #[command(after_help = "Examples:\n  \
        dbgroups status\n  \
        dbgroups status --format json | jq '.servers[] | select(.up | not)'\n\n\
        Exit status: 0 when every recorded server is up, 1 when one is down or cannot be asked, \
        and for any other error.")]
    Status(StatusArgs),
    /// Take, list and verify managed backups (docs/backups.md).
    #[command(subcommand)]
    Backup(BackupCommand),
    /// Print the application's environment variables (secrets masked).
    #[command(after_help = "Examples:\n  \
        dbgroups env\n  \
        dbgroups env --show-secrets > app.env\n  \
        dbgroups env --app shop --format json     # from the state alone, no manifest needed\n\n\
        Values that are not plain words are quoted as dotenv files quote them.\n\n\
        Exit status: 0 when the variables were printed, 1 when there is no recorded state or for \
        any other error.")]
    Env(EnvArgs),
    /// Stop and delete every server and all data of an application.
    #[command(after_help = "Examples:\n  \
        dbgroups destroy --app shop                  # asks you to type the name\n  \
        dbgroups destroy --app shop --auto-approve\n\n\
        The one command that removes a whole application's groups. It is refused while \
        another group replicates from one of them.\n\n\
        Exit status: 0 when everything was removed, 1 when it was refused, cancelled, or a step \
        failed.")]
    Destroy(DestroyArgs),
}

#[derive(Debug, Args)]
pub(crate) struct DestroyArgs {
    /// Destroy without asking for the application's name.
    #[arg(long)]
    pub(crate) auto_approve: bool,
    /// How many servers may be removed at once.
    #[arg(long, default_value_t = 4, value_name = "N")]
    pub(crate) parallelism: usize,
    /// text: the plan, then progress lines; json: no text plan, progress as
    /// NDJSON events on stdout, as `apply --json` (docs/json-events.md).
    #[arg(long, value_enum, default_value_t = ReportFormat::Text)]
    pub(crate) format: ReportFormat,
    /// Same as --format json.
    #[arg(long, conflicts_with = "format")]
    pub(crate) json: bool,
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
    /// Progress as NDJSON events on stdout (docs/json-events.md).
    #[arg(long)]
    pub(crate) json: bool,
}

#[derive(Debug, Args)]
pub(crate) struct EnvArgs {
    /// Show passwords and URLs instead of masking them.
    #[arg(long)]
    pub(crate) show_secrets: bool,
    /// How to print the variables.
    #[arg(long, value_enum, default_value_t = EnvFormat::Dotenv)]
    pub(crate) format: EnvFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum EnvFormat {
    /// `NAME=value` lines, quoted as dotenv files quote them.
    Dotenv,
    /// One JSON object of names and values.
    Json,
}

#[derive(Debug, Args)]
pub(crate) struct StatusArgs {
    /// How to print the servers.
    #[arg(long, value_enum, default_value_t = ReportFormat::Text)]
    pub(crate) format: ReportFormat,
}

/// Output for people or for scripts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum ReportFormat {
    /// Aligned columns for a terminal.
    Text,
    /// A JSON document, for scripts.
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
    /// Start a master found down although replicas that hold data it may have lost are up;
    /// they then copy its data again (Redis).
    #[arg(long = "restart-master", value_name = "NAME")]
    pub(crate) restart_master: Vec<String>,
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
    /// Write the plan to FILE for `apply FILE` (takes the state lock while writing);
    /// `-` writes it to stdout, and the rendered plan to stderr.
    #[arg(long, value_name = "FILE")]
    pub(crate) out: Option<PathBuf>,
    /// Exit 0 for no changes, 2 for changes, 1 for errors (usage errors included).
    #[arg(long)]
    pub(crate) detailed_exitcode: bool,
    /// How to render the plan.
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
    /// How to render the plan.
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
    /// The graph language.
    #[arg(long, value_enum, default_value_t = GraphFormat::Dot)]
    pub(crate) format: GraphFormat,
}

#[derive(Debug, Subcommand)]
pub(crate) enum StateCommand {
    /// List the applications with recorded state.
    #[command(
        after_help = "Examples:\n  dbgroups state list\n  dbgroups state list --format json\n\n\
        Exit status: 0, or 1 when the state cannot be read."
    )]
    List(StateListArgs),
    /// Show an application's recorded state, secrets masked (no passphrase needed).
    #[command(after_help = "Examples:\n  dbgroups state show --app shop\n  \
        dbgroups state show --app shop --format text\n  \
        dbgroups state show --app shop --serial 3 --state-url \"$DBGROUPS_STATE_URL\"\n\n\
        Exit status: 0, or 1 when the application has no recorded state or it cannot be read.")]
    Show(StateShowArgs),
    /// List the kept versions of an application's state: serial, time, command and who.
    #[command(after_help = "Examples:\n  dbgroups state history --app shop\n  \
        dbgroups state history --app shop --format json\n\n\
        PostgreSQL keeps every version; a state directory keeps the last two.\n\n\
        Exit status: 0, or 1 when the state cannot be read.")]
    History(StateListArgs),
    /// Copy every application, with lineage, serial and history, to another backend.
    #[command(after_help = "Examples:\n  \
        dbgroups state migrate --to postgres://ci@db.example/infra?sslmode=require\n  \
        dbgroups state migrate --state-url \"$URL\" --to ./state-copy\n\n\
        Secrets are copied as stored (still encrypted; no passphrase is needed). A target \
        holding another lineage of an application is refused; running it again copies nothing.\n\n\
        Exit status: 0 when every application is in the target, 1 otherwise.")]
    Migrate {
        /// The target: a postgres:// URL, or a directory.
        #[arg(long, value_name = "URL|DIR")]
        to: String,
    },
    /// Re-encrypt every version's secrets under a new passphrase.
    #[command(after_help = "Examples:\n  \
        DBGROUPS_STATE_OLD_PASSPHRASE=… DBGROUPS_STATE_PASSPHRASE=… dbgroups state rekey\n  \
        DBGROUPS_STATE_PASSPHRASE=… dbgroups state rekey    # encrypt secrets stored in plain text\n\n\
        The new passphrase comes from DBGROUPS_STATE_PASSPHRASE (or _FILE), the old one from \
        DBGROUPS_STATE_OLD_PASSPHRASE (or _FILE). Every document is re-encrypted in memory \
        first: a wrong old passphrase changes nothing. In PostgreSQL the rewrite is one \
        transaction.\n\n\
        Exit status: 0 when every version was re-encrypted, 1 otherwise.")]
    Rekey,
    /// Break the state lock with this id, when its holder will not finish.
    #[command(
        after_help = "The id is in the message of the command that found the lock held. \
        The lock is released by the OS when its process dies, so this is only for a holder \
        that is alive but stuck, or on another host sharing the directory.\n\n\
        Exit status: 0 when the lock was broken, 1 when no lock with that id is held."
    )]
    Unlock {
        /// The lock's id.
        id: String,
    },
}

#[derive(Debug, Args)]
pub(crate) struct StateListArgs {
    /// How to print the list.
    #[arg(long, value_enum, default_value_t = ReportFormat::Text)]
    pub(crate) format: ReportFormat,
}

#[derive(Debug, Args)]
pub(crate) struct StateShowArgs {
    /// How to print the state: the JSON document (secrets masked), or a summary.
    #[arg(long, value_enum, default_value_t = ReportFormat::Json)]
    pub(crate) format: ReportFormat,
    /// Show this kept version instead of the current one (`state history` lists them).
    #[arg(long, value_name = "N")]
    pub(crate) serial: Option<u64>,
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
    /// Graphviz, for `dot -Tsvg`.
    Dot,
    /// Mermaid, which GitHub renders in Markdown.
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
    /// One `file:line:column: severity[code]: message` line per diagnostic, on stdout; the summary goes to stderr.
    Short,
    /// A JSON document, for tools.
    Json,
}

/// Parses the command line. Beyond clap's own checks, a global flag given
/// to a command that has no use for it is refused: silently ignoring
/// `dbgroups schema --app shop` would let the user believe it did something.
pub(crate) fn parse() -> Result<Cli, clap::Error> {
    use clap::{CommandFactory, FromArgMatches};
    let matches = Cli::command().try_get_matches()?;
    refuse_idle_flags(&matches)?;
    Cli::from_arg_matches(&matches)
}

/// The global flags that each command ignores, by the id clap gives them.
fn idle_flags(path: &[&str]) -> &'static [&'static str] {
    const ALL_BUT_COLOR: &[&str] = &[
        "manifest",
        "app",
        "environment",
        "state_dir",
        "state_url",
        "state_schema",
        "allow_plaintext_secrets",
        "lock_timeout",
        "ssh_config",
        "accept_new_host_keys",
    ];
    match path {
        ["schema"] | ["show"] => ALL_BUT_COLOR,
        // The lock lives in the state directory, found by --state-dir or
        // beside the manifest; nothing else matters to it.
        ["state", "unlock"] => &[
            "app",
            "environment",
            "lock_timeout",
            "ssh_config",
            "accept_new_host_keys",
            "allow_plaintext_secrets",
        ],
        ["state", "migrate" | "rekey"] => {
            &["app", "environment", "ssh_config", "accept_new_host_keys"]
        }
        _ => &[],
    }
}

fn refuse_idle_flags(matches: &clap::ArgMatches) -> Result<(), clap::Error> {
    use clap::CommandFactory;
    let mut path = Vec::new();
    let mut current = matches;
    while let Some((name, sub)) = current.subcommand() {
        path.push(name);
        current = sub;
    }
    for id in idle_flags(&path) {
        if current.value_source(id) == Some(clap::parser::ValueSource::CommandLine) {
            let mut command = Cli::command();
            let flag = command
                .get_arguments()
                .find(|arg| arg.get_id() == *id)
                .and_then(|arg| arg.get_long())
                .unwrap_or(id)
                .to_string();
            return Err(command.error(
                clap::error::ErrorKind::ArgumentConflict,
                format!(
                    "--{flag} does nothing for `dbgroups {}`; leave it out",
                    path.join(" ")
                ),
            ));
        }
    }
    Ok(())
}

/// `dbgroups backup …`: managed backups, run by the user's scheduler.
#[derive(Debug, Subcommand)]
pub(crate) enum BackupCommand {
    /// Take a full backup of every group with managed backups (or of one).
    #[command(after_help = "Examples:\n  \
        dbgroups backup run\n  \
        dbgroups backup run --group postgresql.default --verify\n\n\
        Each backup is taken from a caught-up slave when the group has one (the master \
        otherwise; the output says which and why), written to the group's store under a \
        temporary name, checksummed, renamed when complete and recorded. Older backups beyond \
        `keep` verified ones are then deleted. Run it from cron, CI or a systemd timer \
        (docs/backups.md).\n\n\
        Exit status: 0 when every backup was taken (and verified, with --verify), 1 when one \
        failed or for any other error.")]
    Run(BackupRunArgs),
    /// List the recorded managed backups: age, size, source server and verification.
    #[command(after_help = "Examples:\n  \
        dbgroups backup list\n  \
        dbgroups backup list --group postgresql.default --format json\n\n\
        Exit status: 0, or 1 when the state cannot be read.")]
    List(BackupListArgs),
    /// Restore a backup into a scratch server, check its data, and record the result.
    #[command(after_help = "Examples:\n  \
        dbgroups backup verify --latest\n  \
        dbgroups backup verify 20261207t020000z-1a2b\n\n\
        The scratch server runs the backup's engine and version on the store's host and is \
        removed afterwards.\n\n\
        Exit status: 0 when every backup verified passed, 1 when one failed or for any other error.")]
    Verify(BackupVerifyArgs),
}

#[derive(Debug, Args)]
pub(crate) struct BackupRunArgs {
    /// Only this group (TYPE.NAME, or NAME when it is unambiguous).
    #[arg(long, value_name = "GROUP")]
    pub(crate) group: Option<String>,
    /// Verify each new backup right after it is taken.
    #[arg(long)]
    pub(crate) verify: bool,
}

#[derive(Debug, Args)]
pub(crate) struct BackupListArgs {
    /// Only this group (TYPE.NAME, or NAME).
    #[arg(long, value_name = "GROUP")]
    pub(crate) group: Option<String>,
    /// How to print the list.
    #[arg(long, value_enum, default_value_t = ReportFormat::Text)]
    pub(crate) format: ReportFormat,
}

#[derive(Debug, Args)]
pub(crate) struct BackupVerifyArgs {
    /// The backup's id (`dbgroups backup list` shows it).
    #[arg(
        value_name = "ID",
        required_unless_present = "latest",
        conflicts_with = "latest"
    )]
    pub(crate) id: Option<String>,
    /// The newest backup of each group (or of --group).
    #[arg(long)]
    pub(crate) latest: bool,
    /// With --latest: only this group (TYPE.NAME, or NAME).
    #[arg(long, value_name = "GROUP")]
    pub(crate) group: Option<String>,
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::Cli;

    fn all_commands() -> Vec<clap::Command> {
        fn walk(command: &clap::Command, into: &mut Vec<clap::Command>) {
            into.push(command.clone());
            for sub in command.get_subcommands() {
                walk(sub, into);
            }
        }
        let mut all = Vec::new();
        walk(&Cli::command(), &mut all);
        all
    }

    #[test]
    fn every_flag_and_value_has_a_description() {
        let mut missing = Vec::new();
        for command in all_commands() {
            for arg in command.get_arguments() {
                if arg.get_help().is_none() && !matches!(arg.get_id().as_str(), "help" | "version")
                {
                    missing.push(format!("{} --{}", command.get_name(), arg.get_id()));
                }
                for value in arg.get_possible_values() {
                    if value.get_help().is_none() && !matches!(value.get_name(), "true" | "false") {
                        missing.push(format!(
                            "{} --{} {}",
                            command.get_name(),
                            arg.get_id(),
                            value.get_name()
                        ));
                    }
                }
            }
        }
        assert!(missing.is_empty(), "without a description: {missing:?}");
    }

    #[test]
    fn every_command_says_its_exit_status() {
        let silent: Vec<String> = all_commands()
            .iter()
            .filter(|c| c.get_subcommands().next().is_none() && c.get_name() != "help")
            .filter(|c| {
                !c.get_after_help()
                    .is_some_and(|h| h.to_string().contains("Exit status:"))
            })
            .map(|c| c.get_name().to_string())
            .collect();
        assert!(
            silent.is_empty(),
            "no exit status in the help of {silent:?}"
        );
    }
}

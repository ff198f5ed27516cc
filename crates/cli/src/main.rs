//! The `dbgroups` command line: argument parsing (clap), rendering of
//! diagnostics and errors (miette), and the terminal. Library crates return
//! typed data and errors; everything a person sees is shaped here.

mod args;
mod commands;
mod render;
mod terminal;

use std::process::ExitCode;

use crate::args::Command;

fn main() -> ExitCode {
    let cli = match args::parse() {
        Ok(cli) => cli,
        Err(err) => {
            let _ = err.print();
            // clap exits 2 on a usage error, which `plan --detailed-exitcode`
            // means as "changes": a typo in CI would read as a plan to apply.
            // Every error is 1; --help and --version are not errors.
            return if err.use_stderr() {
                ExitCode::from(1)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    let style = terminal::Style::detect(cli.global.no_color);
    commands::use_ssh_client(cli.global.ssh_client());
    terminal::install_miette_hook(style);
    let outcome = match &cli.command {
        Command::Validate(args) => commands::validate::run(&cli.global, args, style),
        Command::Schema => commands::schema::run(),
        Command::Plan(args) => commands::plan::run(&cli.global, args, style),
        Command::Show(args) => commands::show::run(args, style),
        Command::Graph(args) => commands::graph::run(&cli.global, args, style),
        Command::State(command) => commands::state::run(&cli.global, command),
        Command::Apply(args) => commands::apply::run(&cli.global, args, style),
        Command::Status(args) => commands::status::run(&cli.global, args, style),
        Command::Backup(command) => commands::backup::run(&cli.global, command, style),
        Command::Env(args) => commands::env::run(&cli.global, args, style),
        Command::Destroy(args) => commands::destroy::run(&cli.global, args, style),
    };
    match outcome {
        Ok(code) => code,
        Err(err) => {
            let report = miette::Report::new(err);
            terminal::eprint(&format!("{report:?}"));
            ExitCode::from(1)
        }
    }
}

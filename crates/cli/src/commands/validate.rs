use std::process::ExitCode;

use dbgroups_manifest::{Diagnostic, ParseOptions, SourceFile};

use super::CliError;
use crate::args::{DiagnosticFormat, GlobalArgs, ValidateArgs};
use crate::render;
use crate::terminal::{self, Style};

pub(crate) fn run(
    global: &GlobalArgs,
    args: &ValidateArgs,
    style: Style,
) -> Result<ExitCode, CliError> {
    let source = SourceFile::read(&global.manifest)?;
    let options = ParseOptions {
        environment: global.environment.clone(),
        application: global.app.clone(),
    };
    let parsed = dbgroups_manifest::parse(&source, &options);
    let diagnostics: Vec<&Diagnostic> = parsed.diagnostics.iter().collect();
    let (errors, warnings) = (
        parsed.diagnostics.error_count(),
        parsed.diagnostics.warning_count(),
    );

    match args.format() {
        DiagnosticFormat::Json => {
            let document = serde_json::json!({
                "format_version": 1,
                "file": source.name(),
                "valid": errors == 0,
                "errors": errors,
                "warnings": warnings,
                "diagnostics": diagnostics.iter().map(|d| d.to_json(&source)).collect::<Vec<_>>(),
            });
            terminal::print(&serde_json::to_string_pretty(&document).unwrap_or_default());
        }
        DiagnosticFormat::Short => {
            for diagnostic in &diagnostics {
                terminal::eprint(&diagnostic.to_compact_string(&source));
            }
            terminal::eprint(&summary(&source, &parsed, errors, warnings));
        }
        DiagnosticFormat::Text => {
            if !diagnostics.is_empty() {
                terminal::eprint(render::graphical(&diagnostics, &source, style).trim_end());
                terminal::eprint("");
            }
            terminal::eprint(&summary(&source, &parsed, errors, warnings));
        }
    }
    Ok(if errors == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn summary(
    source: &SourceFile,
    parsed: &dbgroups_manifest::Parsed,
    errors: usize,
    warnings: usize,
) -> String {
    let plural = |n: usize, word: &str| format!("{n} {word}{}", if n == 1 { "" } else { "s" });
    match &parsed.manifest {
        Some(manifest) => {
            let servers = manifest.servers().count();
            format!(
                "{} is valid: {}, {} ({})",
                source.name(),
                plural(manifest.groups.len(), "group"),
                plural(servers, "server"),
                plural(warnings, "warning")
            )
        }
        None => format!(
            "{} is invalid: {}, {}",
            source.name(),
            plural(errors, "error"),
            plural(warnings, "warning")
        ),
    }
}

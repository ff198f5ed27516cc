use std::process::ExitCode;

use dbgroups_manifest::escape::escape_controls;
use dbgroups_manifest::{Diagnostic, ParseOptions, Severity, SourceFile};

use super::CliError;
use crate::args::{DiagnosticFormat, GlobalArgs, ValidateArgs};
use crate::render;
use crate::terminal::{self, Style};

/// Text output renders at most this many diagnostics, then says how many
/// more there are: past a screenful nobody reads on, and `short` and `json`
/// list them all. (docs/manifest.md, "Output formats".)
pub(crate) const TEXT_DIAGNOSTIC_CAP: usize = 50;

pub(crate) fn run(
    global: &GlobalArgs,
    args: &ValidateArgs,
    style: Style,
) -> Result<ExitCode, CliError> {
    // `-f -` reads stdin, as every other command does.
    let source = match super::context::read_manifest_source(global) {
        Ok((_, source)) => source,
        Err(err) => return unreadable(args.format(), &global.manifest, err),
    };
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
            // The diagnostics are the output (an editor's problem matcher
            // reads them); the summary is for the person watching.
            if !diagnostics.is_empty() {
                let lines: Vec<String> = diagnostics
                    .iter()
                    .map(|d| d.to_short_line(&source))
                    .collect();
                terminal::print(&lines.join("\n"));
            }
            terminal::eprint(&summary(&source, &parsed, errors, warnings));
        }
        DiagnosticFormat::Text => {
            let shown = &diagnostics[..diagnostics.len().min(TEXT_DIAGNOSTIC_CAP)];
            if !shown.is_empty() {
                terminal::eprint(render::graphical(shown, &source, style).trim_end());
                terminal::eprint("");
            }
            if let Some(more) = not_shown(&diagnostics[shown.len()..]) {
                terminal::eprint(&more);
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

/// "… and 12 more (10 errors, 2 warnings)", for the diagnostics past the cap.
fn not_shown(rest: &[&Diagnostic]) -> Option<String> {
    if rest.is_empty() {
        return None;
    }
    let count = |severity| rest.iter().filter(|d| d.severity == severity).count();
    let parts: Vec<String> = [
        (Severity::Error, "error"),
        (Severity::Warning, "warning"),
        (Severity::Advice, "advice"),
    ]
    .into_iter()
    .filter_map(|(severity, word)| {
        let n = count(severity);
        (n > 0).then(|| plural(n, word))
    })
    .collect();
    Some(format!(
        "… and {} more ({}) not shown: `--format short` or `--format json` lists every one\n",
        rest.len(),
        parts.join(", ")
    ))
}

/// A manifest that cannot be read is still reported in the chosen format:
/// a CI job parsing `--format json` gets a document, not an empty stdout.
fn unreadable(
    format: DiagnosticFormat,
    path: &std::path::Path,
    err: dbgroups_manifest::ManifestError,
) -> Result<ExitCode, CliError> {
    let file = path.display().to_string();
    let message = error_chain(&err);
    match format {
        DiagnosticFormat::Text => return Err(err.into()),
        DiagnosticFormat::Json => {
            let document = serde_json::json!({
                "format_version": 1,
                "file": file,
                "valid": false,
                "errors": 1,
                "warnings": 0,
                "diagnostics": [{
                    "severity": "error",
                    "code": "unreadable-manifest",
                    "message": message,
                    "file": file,
                    "line": null,
                    "column": null,
                    "labels": [],
                    "help": "pass the manifest's path with -f PATH",
                }],
            });
            terminal::print(&serde_json::to_string_pretty(&document).unwrap_or_default());
        }
        DiagnosticFormat::Short => terminal::print(&format!(
            "{}: error[unreadable-manifest]: {}",
            escape_controls(&file),
            escape_controls(&message)
        )),
    }
    Ok(ExitCode::from(1))
}

/// The error and its causes, `cannot read manifest x: No such file…`.
fn error_chain(err: &dyn std::error::Error) -> String {
    let mut message = err.to_string();
    let mut cause = err.source();
    while let Some(inner) = cause {
        message.push_str(": ");
        message.push_str(&inner.to_string());
        cause = inner.source();
    }
    message
}

fn plural(n: usize, word: &str) -> String {
    let suffix = if n == 1 || word == "advice" { "" } else { "s" };
    format!("{n} {word}{suffix}")
}

fn summary(
    source: &SourceFile,
    parsed: &dbgroups_manifest::Parsed,
    errors: usize,
    warnings: usize,
) -> String {
    let name = escape_controls(source.name());
    match &parsed.manifest {
        Some(manifest) => {
            let servers = manifest.servers().count();
            format!(
                "{name} is valid: {}, {} ({})",
                plural(manifest.groups.len(), "group"),
                plural(servers, "server"),
                plural(warnings, "warning")
            )
        }
        None => format!(
            "{name} is invalid: {}, {}",
            plural(errors, "error"),
            plural(warnings, "warning")
        ),
    }
}

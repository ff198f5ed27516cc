//! What `plan --format json|markdown` prints on stdout when no plan could be
//! made (the manifest is missing, unreadable or invalid, the state cannot be
//! read …): a pull-request comment then shows the failure and its
//! diagnostics instead of nothing. docs/plan-json.md documents the JSON.

use std::fmt::Write as _;

use dbgroups_plan::render::escape_controls;
use dbgroups_plan::render::json::JSON_FORMAT_VERSION;

use super::CliError;
use crate::args::PlanFormat;

pub(crate) fn render(err: &CliError, format: PlanFormat) -> String {
    let (diagnostics, message) = match err {
        // Its own message points at stderr ("the errors above"); this
        // document holds the errors itself.
        CliError::InvalidManifest { file, diagnostics } => {
            let errors = diagnostics
                .iter()
                .filter(|d| d.json["severity"] == "error")
                .count();
            (
                diagnostics.as_slice(),
                format!(
                    "{file} is invalid: {errors} error{}",
                    if errors == 1 { "" } else { "s" }
                ),
            )
        }
        _ => (&[][..], super::error_chain(err)),
    };
    let code = miette::Diagnostic::code(err)
        .map(|c| c.to_string())
        .unwrap_or_default();
    match format {
        PlanFormat::Json => {
            let document = serde_json::json!({
                "format_version": JSON_FORMAT_VERSION,
                "error": { "code": code, "message": message },
                "diagnostics": diagnostics.iter().map(|d| &d.json).collect::<Vec<_>>(),
            });
            serde_json::to_string_pretty(&document).unwrap_or_default()
        }
        PlanFormat::Markdown | PlanFormat::Text => {
            let mut out = String::from("### dbgroups plan failed\n\n");
            let _ = writeln!(out, "> [!CAUTION]\n> **No plan was made:** {message}\n");
            if !diagnostics.is_empty() {
                let lines: Vec<&str> = diagnostics.iter().map(|d| d.compact.as_str()).collect();
                // A fence longer than any run of backticks inside it.
                let longest = lines
                    .iter()
                    .flat_map(|l| l.split(|c| c != '`'))
                    .map(str::len)
                    .max()
                    .unwrap_or(0);
                let fence = "`".repeat(longest.max(2) + 1);
                let _ = writeln!(out, "{fence}text");
                for line in lines {
                    let _ = writeln!(out, "{line}");
                }
                let _ = writeln!(out, "{fence}");
            }
            escape_controls(&out).into_owned()
        }
    }
}

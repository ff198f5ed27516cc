//! Markdown for pull-request comments: the summary and anything destructive
//! first, details collapsed, and never over GitHub's comment limit.

use std::fmt::Write;

use super::text::{marker, summary, waves};
use crate::Plan;

/// GitHub refuses comments longer than this many characters.
pub const COMMENT_LIMIT: usize = 65_535;

pub fn render(plan: &Plan) -> String {
    render_within(plan, COMMENT_LIMIT)
}

/// Renders, then drops detail sections from the end until the text fits
/// `limit`, saying what was cut.
pub fn render_within(plan: &Plan, limit: usize) -> String {
    let head = head(plan);
    let mut sections = details(plan);
    loop {
        let mut text = head.clone();
        for section in &sections {
            text.push_str(section);
        }
        let cut = details(plan).len() - sections.len();
        if cut > 0 {
            let _ = writeln!(
                text,
                "\n> **Cut to fit a comment:** {cut} detail section{} left out. Run `dbgroups show` on the plan file for all of it.",
                if cut == 1 { " was" } else { "s were" }
            );
        }
        if text.chars().count() <= limit {
            return text;
        }
        if sections.pop().is_none() {
            // Even the head is too long: cut it hard, on a char boundary.
            let note = "\n\n> **Cut to fit a comment.** Run `dbgroups show` on the plan file for all of it.\n";
            let keep = limit.saturating_sub(note.chars().count());
            let mut text: String = text.chars().take(keep).collect();
            text.push_str(note);
            return text;
        }
    }
}

fn escape(text: &str) -> String {
    text.replace('|', "\\|")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn head(plan: &Plan) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "### dbgroups plan: `{}`\n", plan.application);
    let _ = writeln!(out, "**{}**\n", summary(plan));
    if !plan.disk_check && plan.has_changes() {
        let _ = writeln!(
            out,
            "> [!WARNING]\n> **Disk-space check off** (`--skip-disk-check`): backups and restores run without checking free space.\n"
        );
    }
    let destructive: Vec<_> = plan.destructive_changes().collect();
    if !destructive.is_empty() {
        let _ = writeln!(out, "> [!CAUTION]");
        let _ = writeln!(
            out,
            "> **Destructive changes: data is replaced or deleted.**"
        );
        for change in destructive {
            let _ = writeln!(
                out,
                "> - `{}` {} — {}",
                marker(change.kind.action()),
                escape(&change.kind.summary()),
                escape(&change.kind.data_warning().unwrap_or_default())
            );
        }
        let _ = writeln!(out);
    }
    if plan.has_changes() {
        let _ = writeln!(out, "| | change | reason |");
        let _ = writeln!(out, "|---|---|---|");
        for change in &plan.changes {
            let _ = writeln!(
                out,
                "| `{}` | {} | {} |",
                marker(change.kind.action()),
                escape(&change.kind.summary()),
                escape(&change.reason)
            );
        }
        let _ = writeln!(out);
    }
    if !plan.report.blocked.is_empty() {
        let _ = writeln!(out, "> [!WARNING]");
        let _ = writeln!(out, "> **Blocked, not in this plan:**");
        for blocked in &plan.report.blocked {
            let _ = writeln!(
                out,
                "> - **{}**: {} _Hint:_ {}",
                escape(&blocked.subject),
                escape(&blocked.reason),
                escape(&blocked.hint)
            );
        }
        let _ = writeln!(out);
    }
    out
}

fn details(plan: &Plan) -> Vec<String> {
    let mut sections = Vec::new();
    if !plan.steps.is_empty() {
        let waves = waves(&plan.steps);
        let mut section = format!(
            "<details><summary>Steps ({})</summary>\n\n",
            plan.steps.len()
        );
        let _ = writeln!(section, "| wave | step | does | after |");
        let _ = writeln!(section, "|---|---|---|---|");
        for step in &plan.steps {
            let _ = writeln!(
                section,
                "| {} | `{}` | {} | {} |",
                waves[step.id.as_str()],
                step.id,
                escape(&step.kind.describe()),
                step.depends_on
                    .iter()
                    .map(|d| format!("`{d}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
        section.push_str("\n</details>\n\n");
        sections.push(section);
    }
    let env_diff = plan.environment_diff();
    if !env_diff.is_empty() {
        let mut section = format!(
            "<details><summary>Environment variables ({} lines change; secrets masked)</summary>\n\n```diff\n",
            env_diff.len()
        );
        for line in env_diff {
            let _ = writeln!(section, "{}", line.replacen(' ', "", 1));
        }
        section.push_str("```\n\n</details>\n\n");
        sections.push(section);
    }
    if !plan.report.warnings.is_empty() {
        let mut section = format!(
            "<details><summary>Warnings ({})</summary>\n\n",
            plan.report.warnings.len()
        );
        for warning in &plan.report.warnings {
            let _ = writeln!(section, "- {}", escape(warning));
        }
        section.push_str("\n</details>\n\n");
        sections.push(section);
    }
    sections
}

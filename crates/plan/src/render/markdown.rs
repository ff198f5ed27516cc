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

/// Where the whole plan can be read when a comment holds only part of it.
/// The Markdown does not know whether a plan file was written, so it names
/// both ways rather than a file that may not exist.
const WHOLE_PLAN: &str = "`dbgroups plan` prints all of it (and `dbgroups show FILE` does, for a plan saved with `plan --out FILE`).";

/// Renders, then drops detail sections from the end until the text fits
/// `limit` characters, saying what was cut. If even the summary and the
/// changes table do not fit, they are cut at a line boundary, so no table
/// row is left half written.
pub fn render_within(plan: &Plan, limit: usize) -> String {
    // Escaped before measuring: an escape is longer than what it replaces.
    let head = super::escape_controls(&head(plan)).into_owned();
    let all_sections: Vec<String> = details(plan)
        .iter()
        .map(|section| super::escape_controls(section).into_owned())
        .collect();
    let mut kept = all_sections.len();
    loop {
        let mut text = head.clone();
        for section in &all_sections[..kept] {
            text.push_str(section);
        }
        let cut = all_sections.len() - kept;
        if cut > 0 {
            let _ = writeln!(
                text,
                "\n> **Cut to fit a comment:** {cut} detail section{} left out. {WHOLE_PLAN}",
                if cut == 1 { " was" } else { "s were" }
            );
        }
        if text.chars().count() <= limit {
            return text;
        }
        if kept == 0 {
            return cut_at_line(&head, all_sections.len(), limit);
        }
        kept -= 1;
    }
}

/// The longest run of whole lines of `text` that fits `limit` characters
/// together with a note on what was left out: lines of `text`, and the
/// `sections` detail sections that came after it.
fn cut_at_line(text: &str, sections: usize, limit: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let note = |left_out: usize| {
        let sections = match sections {
            0 => String::new(),
            1 => " and the detail section after them".to_string(),
            n => format!(" and the {n} detail sections after them"),
        };
        let verb = if left_out == 1 && sections.is_empty() {
            "was"
        } else {
            "were"
        };
        format!(
            "\n> **Cut to fit a comment:** {left_out} more line{} of this plan{sections} {verb} left out. {WHOLE_PLAN}\n",
            if left_out == 1 { "" } else { "s" },
        )
    };
    // The longest note: its count has at most the digits of the line count.
    let note_room = note(lines.len()).chars().count();
    let mut used = 0;
    let mut kept = 0;
    for line in &lines {
        let next = used + line.chars().count() + 1;
        if next + note_room > limit {
            break;
        }
        used = next;
        kept += 1;
    }
    let mut out = String::with_capacity(used + note_room);
    for line in &lines[..kept] {
        out.push_str(line);
        out.push('\n');
    }
    out.push_str(&note(lines.len() - kept));
    out
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

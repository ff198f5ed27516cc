//! The terminal rendering: terraform-like `+ ~ - !` markers, destructive
//! changes first and loud, a one-line summary last. Plain text: colour is
//! the CLI's business (it colours by the marker at the start of a line).

use std::collections::BTreeMap;
use std::fmt::Write;

use crate::{Action, Change, Plan, Step};

pub fn marker(action: Action) -> char {
    match action {
        Action::Create => '+',
        Action::Update => '~',
        Action::Remove => '-',
    }
}

/// The summary line shared by every rendering.
pub fn summary(plan: &Plan) -> String {
    let blocked = plan.report.blocked.len();
    if !plan.has_changes() {
        return match blocked {
            0 => "No changes: the recorded state matches the manifest.".to_string(),
            _ => format!(
                "No changes to make, but {blocked} blocked (listed under \"Blocked\"): the state will not match the manifest until {} resolved.",
                if blocked == 1 { "it is" } else { "they are" }
            ),
        };
    }
    let count = |action| {
        plan.changes
            .iter()
            .filter(|c| c.kind.action() == action)
            .count()
    };
    let mut line = format!(
        "Plan: {} to create, {} to change, {} to remove",
        count(Action::Create),
        count(Action::Update),
        count(Action::Remove)
    );
    let destructive = plan.destructive_changes().count();
    if destructive > 0 {
        let _ = write!(line, " ({destructive} destructive)");
    }
    let steps = plan.steps.len();
    let _ = write!(line, "; {steps} step{}.", if steps == 1 { "" } else { "s" });
    if blocked > 0 {
        let _ = write!(line, " {blocked} blocked.");
    }
    line
}

/// Each step's wave: steps of one wave depend only on earlier waves, so they
/// can run in parallel.
pub fn waves(steps: &[Step]) -> BTreeMap<&str, usize> {
    let mut wave: BTreeMap<&str, usize> = BTreeMap::new();
    for step in steps {
        let level = step
            .depends_on
            .iter()
            .filter_map(|d| wave.get(d.as_str()))
            .max()
            .map_or(1, |w| w + 1);
        wave.insert(&step.id, level);
    }
    wave
}

fn write_change(out: &mut String, change: &Change, prefix: &str) {
    let _ = writeln!(
        out,
        "{prefix}{} {}",
        marker(change.kind.action()),
        change.kind.summary()
    );
    if let Some(warning) = change.kind.data_warning() {
        let _ = writeln!(out, "{prefix}    DATA: {warning}");
    }
    let _ = writeln!(
        out,
        "{prefix}    reason: {}  [{}]",
        change.reason, change.id
    );
}

pub fn render(plan: &Plan) -> String {
    let mut out = String::new();
    let base = match &plan.base {
        Some(base) => format!("state serial {}, lineage {}", base.serial, base.lineage),
        None => "no recorded state yet".to_string(),
    };
    let _ = writeln!(
        out,
        "dbgroups plan for application \"{}\" ({base})",
        plan.application
    );
    if !plan.disk_check && plan.has_changes() {
        let _ = writeln!(
            out,
            "! DISK-SPACE CHECK OFF (--skip-disk-check): backups and restores run without checking free space"
        );
    }

    let destructive: Vec<&Change> = plan.destructive_changes().collect();
    if !destructive.is_empty() {
        let _ = writeln!(out);
        let _ = writeln!(
            out,
            "! DESTRUCTIVE: {} change{} below replace{} or delete{} data",
            destructive.len(),
            if destructive.len() == 1 { "" } else { "s" },
            if destructive.len() == 1 { "s" } else { "" },
            if destructive.len() == 1 { "s" } else { "" },
        );
        for change in &destructive {
            write_change(&mut out, change, "! ");
        }
    }
    let others: Vec<&Change> = plan.changes.iter().filter(|c| !c.destructive).collect();
    if !others.is_empty() {
        let _ = writeln!(out);
        let _ = writeln!(out, "Changes:");
        for change in others {
            write_change(&mut out, change, "  ");
        }
    }

    if !plan.steps.is_empty() {
        let waves = waves(&plan.steps);
        let _ = writeln!(out);
        let _ = writeln!(
            out,
            "Steps, in order (steps in one wave may run in parallel):"
        );
        let width = plan.steps.iter().map(|s| s.id.len()).max().unwrap_or(0);
        for step in &plan.steps {
            let after = if step.depends_on.is_empty() {
                String::new()
            } else {
                format!("  after {}", step.depends_on.join(", "))
            };
            let _ = writeln!(
                out,
                "  wave {}  {:<width$}  {}  [{}]{after}",
                waves[step.id.as_str()],
                step.id,
                step.kind.describe(),
                step.change,
            );
        }
    }

    let env_diff = plan.environment_diff();
    if !env_diff.is_empty() {
        let _ = writeln!(out);
        let _ = writeln!(
            out,
            "Environment variables (secrets masked; applications see them when next redeployed):"
        );
        for line in env_diff {
            let _ = writeln!(out, "  {line}");
        }
    }

    if !plan.report.blocked.is_empty() {
        let _ = writeln!(out);
        let _ = writeln!(out, "Blocked (not in this plan):");
        for blocked in &plan.report.blocked {
            let _ = writeln!(out, "! {}: {}", blocked.subject, blocked.reason);
            let _ = writeln!(out, "!     hint: {}", blocked.hint);
        }
    }
    if !plan.report.warnings.is_empty() {
        let _ = writeln!(out);
        let _ = writeln!(out, "Warnings:");
        for warning in &plan.report.warnings {
            let _ = writeln!(out, "  warning: {warning}");
        }
    }
    let _ = writeln!(out);
    let _ = writeln!(out, "{}", summary(plan));
    // Reasons, hints and warnings quote the manifest and the servers.
    super::escape_controls(&out).into_owned()
}

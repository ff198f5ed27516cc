//! The JSON rendering, versioned; `docs/plan-json.md` documents it.

use serde_json::{Value, json};

use crate::{Action, Plan};

/// Bumped on any incompatible change to the document's shape. 2: a
/// restore's `backup` is a typed reference (an object), no longer a step id.
pub const JSON_FORMAT_VERSION: u32 = 2;

pub fn to_value(plan: &Plan) -> Value {
    let count = |action| {
        plan.changes
            .iter()
            .filter(|c| c.kind.action() == action)
            .count()
    };
    json!({
        "format_version": JSON_FORMAT_VERSION,
        "application": plan.application,
        "base": plan.base,
        "summary": {
            "has_changes": plan.has_changes(),
            "create": count(Action::Create),
            "update": count(Action::Update),
            "remove": count(Action::Remove),
            "destructive": plan.destructive_changes().count(),
            "steps": plan.steps.len(),
            "blocked": plan.report.blocked.len(),
            "warnings": plan.report.warnings.len(),
            "text": super::text::summary(plan),
            "disk_check": plan.disk_check,
        },
        "changes": plan.changes.iter().map(|c| {
            let mut value = serde_json::to_value(c).unwrap_or(Value::Null);
            value["action"] = json!(c.kind.action());
            value["summary"] = json!(c.kind.summary());
            value["data_warning"] = json!(c.kind.data_warning());
            value
        }).collect::<Vec<_>>(),
        "steps": plan.steps,
        "environment": {
            "before": plan.environment_before,
            "after": plan.environment_after,
            "diff": plan.environment_diff(),
        },
        "blocked": plan.report.blocked,
        "warnings": plan.report.warnings,
        "expected_state": plan.expected_state,
    })
}

pub fn render(plan: &Plan) -> String {
    let mut text = serde_json::to_string_pretty(&to_value(plan)).unwrap_or_default();
    text.push('\n');
    text
}

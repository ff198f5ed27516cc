//! `apply --json`: one JSON object per line on stdout, documented in
//! docs/json-events.md. The first event says what the stream is and its
//! format version; the last one carries the result, so a reader needs
//! neither stderr nor the exit status to know how the apply ended.

use std::time::Instant;

use dbgroups_apply::{Event, Outcome, Reporter};
use serde_json::{Value, json};

/// Bumped on any incompatible change to an event's shape.
pub(crate) const EVENTS_FORMAT_VERSION: u32 = 1;

pub(crate) struct JsonReporter {
    started: Instant,
}

impl JsonReporter {
    pub(crate) fn new() -> Self {
        Self {
            started: Instant::now(),
        }
    }

    fn emit(&self, event: &str, fields: Value) {
        let mut value = json!({ "event": event, "at": self.started.elapsed().as_secs_f64() });
        if let (Some(object), Value::Object(fields)) = (value.as_object_mut(), fields) {
            object.extend(fields);
        }
        crate::terminal::print(&value.to_string());
    }

    /// The opening event, before any step.
    pub(crate) fn apply_started(&self, application: &str, plan: &dbgroups_plan::Plan) {
        self.emit(
            "apply_started",
            json!({
                "format_version": EVENTS_FORMAT_VERSION,
                "application": application,
                "steps": plan.steps.len(),
                "changes": plan.changes.len(),
            }),
        );
    }

    /// The closing event when there was nothing to apply.
    pub(crate) fn nothing_to_apply(&self) {
        self.emit(
            "apply_finished",
            result_fields("no_changes", &[], &[], &[], None),
        );
    }

    /// The closing event when every change of the plan is blocked.
    pub(crate) fn all_blocked(&self, message: &str) {
        let mut fields = result_fields("blocked", &[], &[], &[], None);
        fields["error"] = json!(message);
        self.emit("apply_finished", fields);
    }

    /// The closing event after the executor ran.
    pub(crate) fn apply_finished(&self, outcome: &Outcome, environment_file: Option<&str>) {
        let result = if outcome.succeeded() {
            "succeeded"
        } else if !outcome.failed.is_empty() {
            "failed"
        } else if outcome.interrupted {
            "interrupted"
        } else {
            "incomplete"
        };
        self.emit(
            "apply_finished",
            result_fields(
                result,
                &outcome.completed,
                &outcome.failed,
                &outcome.not_started,
                environment_file,
            ),
        );
    }

    /// The closing event when the apply could not run at all.
    pub(crate) fn apply_error(&self, error: &str) {
        let mut fields = result_fields("error", &[], &[], &[], None);
        fields["error"] = json!(error);
        self.emit("apply_finished", fields);
    }
}

fn result_fields(
    result: &str,
    completed: &[String],
    failed: &[(String, String)],
    not_started: &[String],
    environment_file: Option<&str>,
) -> Value {
    json!({
        "result": result,
        "completed": completed,
        "failed": failed.iter().map(|(step, error)| json!({ "step": step, "error": error })).collect::<Vec<_>>(),
        "not_started": not_started,
        "environment_file": environment_file,
    })
}

impl Reporter for JsonReporter {
    fn report(&self, event: Event) {
        match event {
            Event::Note(note) => self.emit("note", json!({ "text": note })),
            Event::StepStarted { step, description } => self.emit(
                "step_started",
                json!({ "step": step, "description": description }),
            ),
            Event::StepFinished { step, seconds } => {
                self.emit("step_finished", json!({ "step": step, "seconds": seconds }))
            }
            Event::StepProgress { step, message } => {
                self.emit("step_progress", json!({ "step": step, "message": message }))
            }
            Event::StepFailed { step, error } => {
                let error = dbgroups_engines::with_causes(error.as_ref());
                self.emit("step_failed", json!({ "step": step, "error": error }));
            }
            Event::Interrupted => self.emit("interrupted", json!({})),
        }
    }
}

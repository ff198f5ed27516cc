//! Progress without terminals: the executor tells a [`Reporter`] what
//! happens, and the CLI decides how it looks (lines, NDJSON, bars).

/// What the executor reports, each once.
#[derive(Debug, Clone)]
pub enum Event {
    /// Something the user should know (a change made to the machine).
    Note(String),
    StepStarted {
        step: String,
        description: String,
    },
    StepFinished {
        step: String,
        seconds: f64,
    },
    /// A long wait in a running step is still going (a member's initial
    /// sync, a BGSAVE, a large restore), said every 15 seconds.
    StepProgress {
        step: String,
        message: String,
    },
    /// The engine's own error, reported once, where it happened; typed, so
    /// a reporter can show its whole chain of causes.
    StepFailed {
        step: String,
        error: std::sync::Arc<dbgroups_engines::EngineError>,
    },
    /// Ctrl-C: no new steps start; running ones finish.
    Interrupted,
}

pub trait Reporter: Send + Sync {
    fn report(&self, event: Event);
}

/// Discards everything (for callers that only want the outcome).
#[derive(Debug, Default)]
pub struct Silent;

impl Reporter for Silent {
    fn report(&self, _: Event) {}
}

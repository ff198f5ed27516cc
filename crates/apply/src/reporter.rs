//! Progress without terminals: the executor tells a [`Reporter`] what
//! happens, and the CLI decides how it looks (lines, NDJSON, bars).

/// What the executor reports, each once.
#[derive(Debug, Clone, PartialEq)]
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
    /// The engine's own error text, reported once, where it happened.
    StepFailed {
        step: String,
        error: String,
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

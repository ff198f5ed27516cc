/// Why no plan could be made at all (as opposed to a blocked change, which
/// is reported beside a plan).
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error("the manifest names no application: add `application: NAME` or pass --app NAME")]
    NoApplication,
    #[error("the recorded state is for application \"{found}\", not \"{expected}\"")]
    StateOfAnotherApplication { expected: String, found: String },
    /// The plan made breaks one of its invariants (`lint`): a planner bug.
    #[error(
        "the planner made a plan that breaks its own rules (a bug in dbgroups; please report it): {0}"
    )]
    Lint(crate::lint::LintError),
    #[error("{flag} {subject}: {reason}")]
    Intent {
        flag: &'static str,
        subject: String,
        reason: String,
    },
}

impl PlanError {
    pub(crate) fn intent(
        flag: &'static str,
        subject: impl std::fmt::Display,
        reason: &str,
    ) -> Self {
        Self::Intent {
            flag,
            subject: subject.to_string(),
            reason: reason.to_string(),
        }
    }
}

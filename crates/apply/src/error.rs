/// Why an apply could not run at all. A failing step is not an error here:
/// it is reported and recorded in the [`crate::Outcome`].
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    #[error(transparent)]
    State(#[from] dbgroups_state::StateError),
    #[error(transparent)]
    Engine(#[from] dbgroups_engines::EngineError),
    #[error("cannot make the application's certificate authority: {0}")]
    Authority(String),
    #[error("cannot write the environment file {path}")]
    EnvironmentFile {
        path: String,
        #[source]
        source: Box<dbgroups_state::StateError>,
    },
}

//! A second Ctrl-C: the tools copying data (backups, dumps, restores,
//! copies) are stopped, and no new one starts. Each such tool runs in its own
//! process group (see [`crate::LocalHost::command`]), so it is stopped
//! with its children by signalling that group. Servers are never in this
//! list: they are started by other means and keep running.

use std::collections::BTreeSet;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::error::EngineError;

/// The process groups of the stoppable tools running now.
static RUNNING: Mutex<BTreeSet<i32>> = Mutex::new(BTreeSet::new());
static STOPPING: AtomicBool = AtomicBool::new(false);

/// Whether a second Ctrl-C asked for the tools to stop.
pub fn stopping() -> bool {
    STOPPING.load(Ordering::SeqCst)
}

/// Stops every stoppable tool running now (SIGTERM to its process group)
/// and refuses new ones from then on. Returns how many were stopped.
pub fn stop_running_tools() -> usize {
    STOPPING.store(true, Ordering::SeqCst);
    let groups = RUNNING.lock().map(|g| g.clone()).unwrap_or_default();
    groups
        .into_iter()
        .filter_map(rustix::process::Pid::from_raw)
        .filter(|group| {
            rustix::process::kill_process_group(*group, rustix::process::Signal::TERM).is_ok()
        })
        .count()
}

/// The error of a step whose tool was refused or stopped.
pub(crate) fn stopped(what: &str) -> EngineError {
    EngineError::Command {
        command: what.to_string(),
        status: "stopped".into(),
        stderr: "a second Ctrl-C stopped the running tools".into(),
    }
}

/// Keeps a tool's process group in the list while it runs.
pub(crate) struct Registered(Option<i32>);

impl Registered {
    pub(crate) fn new(pid: Option<u32>) -> Self {
        let group = pid.and_then(|p| i32::try_from(p).ok());
        if let (Some(group), Ok(mut running)) = (group, RUNNING.lock()) {
            running.insert(group);
        }
        Self(group)
    }
}

impl Drop for Registered {
    fn drop(&mut self) {
        if let (Some(group), Ok(mut running)) = (self.0, RUNNING.lock()) {
            running.remove(&group);
        }
    }
}

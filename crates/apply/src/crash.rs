//! Test-only fault injection for the crash tests of docs/reliability.md:
//! with `DBGROUPS_CRASH_AT=before:<step id>` (the state records the step as
//! started, its work has not begun) or `after:<step id>` (its work is done,
//! the state does not record it yet), a debug build kills itself with
//! SIGKILL at that moment: a real kill, with no handler, flush or unwinding,
//! at an exact boundary rather than wherever a timer lands. Release builds
//! never read the variable.

/// The two crash windows around a step.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Moment {
    Before,
    After,
}

pub(crate) fn point(moment: Moment, step: &str) {
    if !cfg!(debug_assertions) {
        return;
    }
    let Ok(wanted) = std::env::var("DBGROUPS_CRASH_AT") else {
        return;
    };
    let here = match moment {
        Moment::Before => format!("before:{step}"),
        Moment::After => format!("after:{step}"),
    };
    if wanted == here {
        let _ = nix::sys::signal::kill(nix::unistd::Pid::this(), nix::sys::signal::Signal::SIGKILL);
    }
}

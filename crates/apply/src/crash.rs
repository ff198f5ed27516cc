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

/// The port race of a new server, made to happen: with
/// `DBGROUPS_TAKE_PORT_OF=<server>`, a debug build binds the first port it
/// chooses for that server's provision itself, as another process could
/// between the check that the port is free and the server's bind, and
/// holds it until the provision is over. Release builds never read it.
pub(crate) fn take_first_port(
    server: &str,
    attempt: u32,
    port: u16,
) -> Option<std::net::TcpListener> {
    if !cfg!(debug_assertions) || attempt != 1 {
        return None;
    }
    let wanted = std::env::var("DBGROUPS_TAKE_PORT_OF").ok()?;
    (wanted == server)
        .then(|| std::net::TcpListener::bind(("127.0.0.1", port)).ok())
        .flatten()
}

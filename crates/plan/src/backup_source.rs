//! Which server of a group a backup is taken from: a caught-up slave when
//! there is one, so the master does no copy work, as the seeds promise.
//! A pure choice over what the group's servers said, so it is tested
//! without servers; managed backups (`backup run`) make it at run time,
//! the planner for a scale up from its refreshed observations.

/// One server of the group as it answered.
#[derive(Debug, Clone)]
pub struct Candidate {
    pub name: String,
    pub master: bool,
    pub up: bool,
    /// For a slave: streaming, and how far behind.
    pub streaming: bool,
    pub lag_seconds: Option<u64>,
    /// What it said, for the reason when it is passed over.
    pub summary: String,
}

/// The server to back up, and why it was chosen (shown, and recorded).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceChoice {
    pub server: String,
    pub from_master: bool,
    pub reason: String,
}

/// A slave this far behind is not caught up.
pub const MAX_LAG_SECONDS: u64 = 60;

/// A streaming slave at most [`MAX_LAG_SECONDS`] behind (the least behind
/// first, then the first declared); otherwise the master, saying why no
/// slave would do. `None` when the master does not answer either.
pub fn choose_source(candidates: &[Candidate]) -> Option<SourceChoice> {
    let caught_up = |c: &&Candidate| {
        !c.master && c.up && c.streaming && c.lag_seconds.unwrap_or(0) <= MAX_LAG_SECONDS
    };
    if let Some(slave) = candidates
        .iter()
        .filter(caught_up)
        .min_by_key(|c| c.lag_seconds.unwrap_or(0))
    {
        return Some(SourceChoice {
            server: slave.name.clone(),
            from_master: false,
            reason: format!(
                "a caught-up slave (streaming, {} s behind): the master does no copy work",
                slave.lag_seconds.unwrap_or(0)
            ),
        });
    }
    let master = candidates.iter().find(|c| c.master && c.up)?;
    let slaves: Vec<&Candidate> = candidates.iter().filter(|c| !c.master).collect();
    let reason = if slaves.is_empty() {
        "the master: the group has no slave".to_string()
    } else {
        let why: Vec<String> = slaves
            .iter()
            .map(|s| {
                let state = if !s.up {
                    format!("down ({})", s.summary)
                } else if !s.streaming {
                    format!("not streaming ({})", s.summary)
                } else {
                    format!("{} s behind", s.lag_seconds.unwrap_or(0))
                };
                format!("{} is {state}", s.name)
            })
            .collect();
        format!("the master: no slave is caught up ({})", why.join("; "))
    };
    Some(SourceChoice {
        server: master.name.clone(),
        from_master: true,
        reason,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server(name: &str, master: bool, up: bool, streaming: bool, lag: u64) -> Candidate {
        Candidate {
            name: name.into(),
            master,
            up,
            streaming,
            lag_seconds: Some(lag),
            summary: "said so".into(),
        }
    }

    #[test]
    fn a_caught_up_slave_is_chosen_over_the_master() {
        let choice = choose_source(&[
            server("m", true, true, false, 0),
            server("s1", false, true, true, 30),
            server("s2", false, true, true, 2),
        ])
        .expect("a source");
        assert_eq!(choice.server, "s2");
        assert!(!choice.from_master);
    }

    #[test]
    fn the_master_when_no_slave_is_caught_up_with_why() {
        let choice = choose_source(&[
            server("m", true, true, false, 0),
            server("s1", false, false, false, 0),
            server("s2", false, true, true, MAX_LAG_SECONDS + 1),
        ])
        .expect("a source");
        assert_eq!(choice.server, "m");
        assert!(choice.from_master);
        assert!(choice.reason.contains("s1 is down"), "{}", choice.reason);
        assert!(
            choice.reason.contains("s2 is 61 s behind"),
            "{}",
            choice.reason
        );
    }

    #[test]
    fn nothing_when_the_master_is_down_and_no_slave_will_do() {
        assert_eq!(choose_source(&[server("m", true, false, false, 0)]), None);
    }
}

//! Which server a scale up's backup copies: a caught-up slave of the group
//! when the plan is refreshed and has one (the seeds: "backups are taken
//! from the slave rather than the master"), else the master, saying why.
//! The same choice as a managed backup's ([`crate::backup_source`]), made
//! from the refresh's observations, so execution has nothing to decide.

use dbgroups_manifest::Group;
use dbgroups_state::GroupState;

use super::Differ;
use crate::backup_source::{Candidate, choose_source};
use crate::change::CopyFrom;

impl Differ<'_> {
    /// `None` for an offline plan (the master, as ever), for an engine
    /// whose replicas copy by their own sync (no backup step), and for one
    /// whose copy of a slave is not built (the MySQL family: see
    /// [`crate::rules::EngineRules::backup_from_slave`]).
    pub(super) fn scale_up_copy_source(
        &self,
        group: &Group,
        recorded: &GroupState,
        master: &str,
    ) -> Option<CopyFrom> {
        let rules = crate::rules::for_type(group.db_type);
        if !self.input.observed.refreshed || rules.replicas_copy_by_sync || !rules.backup_from_slave
        {
            return None;
        }
        // A slave this plan removes, or re-synchronises on request (its
        // data is what the user wants replaced), is no source; one found
        // broken, down or behind is passed over by the choice itself.
        let declared = |name: &str| group.servers.iter().any(|s| s.unique_name.as_str() == name);
        let resynced = |name: &str| self.input.intents.resync.contains(name);
        let candidates: Vec<Candidate> = recorded
            .servers
            .iter()
            .filter(|s| {
                s.unique_name == master || (declared(&s.unique_name) && !resynced(&s.unique_name))
            })
            .map(|s| {
                let seen = self.input.observed.servers.get(&s.unique_name);
                let replication = seen.and_then(|h| h.replication.as_ref());
                Candidate {
                    name: s.unique_name.clone(),
                    master: s.unique_name == master,
                    up: seen.is_some_and(|h| h.up),
                    streaming: replication.is_some_and(|r| r.streaming),
                    lag_seconds: replication.and_then(|r| r.lag_seconds),
                    summary: match (seen, replication) {
                        (None, _) => "not observed".to_string(),
                        (Some(_), Some(r)) => r
                            .detail
                            .clone()
                            .unwrap_or_else(|| "not streaming".to_string()),
                        (Some(_), None) => "not replicating".to_string(),
                    },
                }
            })
            .collect();
        choose_source(&candidates).map(|choice| CopyFrom {
            server: choice.server,
            reason: choice.reason,
        })
    }
}

//! Observed facts into changes: servers found down are started; replicas
//! found broken or lagging, or named by --resync, are re-synchronised. A
//! replica is judged only against a master that runs: a replica of a master
//! that is down reports broken replication whatever its own health, and
//! once the master is back it reconnects by itself, so re-syncing it then
//! would replace all its data for nothing. Nor is a replica that says it
//! is retrying the connection to a master that runs (MariaDB's IO thread
//! in `Connecting` for up to its retry interval after the master restarts).

use std::collections::BTreeSet;

use dbgroups_state::{GroupState, Role, ServerState};

use super::{Differ, state_address};
use crate::change::ChangeKind;
use crate::input::ServerHealth;
use crate::rules;

/// What the observations say about one replica.
enum Verdict {
    Healthy,
    Resync { master: String, reason: String },
}

impl Differ<'_> {
    pub(super) fn diff_observations(&mut self) {
        let removed_servers: BTreeSet<String> = self
            .changes
            .iter()
            .flat_map(|(kind, _)| match kind {
                ChangeKind::RemoveServer { server, .. } => vec![server.clone()],
                ChangeKind::RemoveGroup { servers, .. } => servers.clone(),
                _ => Vec::new(),
            })
            .collect();
        let reseeded: BTreeSet<String> = self
            .changes
            .iter()
            .filter_map(|(kind, _)| match kind {
                ChangeKind::EnableReplication { server, .. }
                | ChangeKind::DisableReplication { server, .. } => Some(server.clone()),
                _ => None,
            })
            .collect();
        let groups: Vec<&GroupState> = self.recorded_groups().collect();
        for group in groups {
            let address = state_address(group);
            for server in &group.servers {
                let name = &server.unique_name;
                if removed_servers.contains(name) {
                    continue;
                }
                let health = self.input.observed.servers.get(name);
                let is_replica = server.role == Role::Slave || group.replicate_from.is_some();
                let verdict = if is_replica && !reseeded.contains(name) {
                    self.judge_replica(group, server, health)
                } else {
                    Verdict::Healthy
                };
                let down = health.is_some_and(|h| !h.up);
                // The re-sync of an engine that replaces a stopped server's
                // data files starts the server itself; a plain start first
                // would wait for streaming that cannot resume (a lost slot).
                let resync_starts_it = matches!(verdict, Verdict::Resync { .. })
                    && rules::for_type(group.db_type).resync_replaces_stopped_server;
                if down && !resync_starts_it && !self.holds_back_master_start(group, server) {
                    self.change(
                        ChangeKind::StartServer {
                            group: address.clone(),
                            server: name.clone(),
                        },
                        format!("observed: {name} is not running"),
                    );
                }
                if let Verdict::Resync { master, reason } = verdict {
                    self.change(
                        ChangeKind::Resync {
                            group: address.clone(),
                            server: name.clone(),
                            master,
                        },
                        reason,
                    );
                }
            }
        }
    }

    /// Whether the start of `server`, a master found down, is refused
    /// because replicas that followed it are up holding data a restart
    /// would make them drop (the engine's rule). `--restart-master`
    /// accepts it; the plan then says what the replicas do.
    fn holds_back_master_start(&mut self, group: &GroupState, server: &ServerState) -> bool {
        let name = &server.unique_name;
        if server.role != Role::Master
            || !rules::for_type(group.db_type).restart_discards_replica_data
        {
            return false;
        }
        let holders = self.replicas_holding_data(group);
        if holders.is_empty() {
            return false;
        }
        let listed = holders
            .iter()
            // Redis reports 1 when the replica has no master to count
            // from (it restarted from its own files): it holds data, but
            // its offset says nothing.
            .map(|(replica, offset)| match offset {
                1 => format!("{replica} (offset unknown)"),
                _ => format!("{replica} (offset {offset})"),
            })
            .collect::<Vec<_>>()
            .join(", ");
        let consequence = format!(
            "a restarted {} master comes back with a new replication history, so its replicas copy its whole data set again and drop what they hold beyond what it kept on disk (with appendfsync everysec, up to the last second of writes before a crash)",
            group.db_type
        );
        if self.input.intents.restart_masters.contains(name) {
            self.report.warnings.push(format!(
                "--restart-master {name}: {name} starts from the data it kept, and {listed} copy it again; {consequence}"
            ));
            return false;
        }
        self.block(
            name.as_str(),
            format!(
                "the master of {} is down while replicas that followed it are up holding its data: {listed}; {consequence}",
                group.address()
            ),
            format!(
                "to keep what the replicas hold, copy a replica's data to {name} first (docs/reliability.md, \"A Redis master found down\"); to accept what {name} kept, run `dbgroups apply --restart-master {name}`"
            ),
        );
        true
    }

    /// The replicas of `group`'s master that are observed up and report
    /// holding replicated data: its slaves, and the masters of groups in
    /// this application that replicate from it.
    fn replicas_holding_data(&self, group: &GroupState) -> Vec<(String, u64)> {
        let observed = &self.input.observed.servers;
        let followers = group.slaves().map(|s| s.unique_name.clone()).chain(
            self.recorded_groups()
                .filter(|g| {
                    g.replicate_from.as_ref().is_some_and(|source| {
                        source.application == self.application && source.group == group.name
                    }) && g.db_type == group.db_type
                })
                .filter_map(|g| g.master().map(|m| m.unique_name.clone())),
        );
        followers
            .filter_map(|follower| {
                let health = observed.get(&follower).filter(|h| h.up)?;
                let offset = health
                    .replication
                    .as_ref()?
                    .held_offset
                    .filter(|&o| o > 0)?;
                Some((follower, offset))
            })
            .collect()
    }

    /// Whether `server`, a replica, needs a re-sync, and from which master.
    /// Blocks (and says so) when its master cannot be found; defers (and
    /// says so) while its master is down.
    fn judge_replica(
        &mut self,
        group: &GroupState,
        server: &ServerState,
        health: Option<&ServerHealth>,
    ) -> Verdict {
        let observed = self.input.observed;
        let name = &server.unique_name;
        let observed_reason = health.and_then(|h| h.replication.as_ref()).and_then(|r| {
            if !r.streaming {
                Some(format!(
                    "observed: replication on {name} is broken{}",
                    r.detail
                        .as_ref()
                        .map(|d| format!(" ({d})"))
                        .unwrap_or_default()
                ))
            } else {
                r.lag_seconds
                    .filter(|&lag| lag > observed.max_lag_seconds)
                    .map(|lag| {
                        format!(
                            "observed: {name} is {lag} s behind its master (limit {} s)",
                            observed.max_lag_seconds
                        )
                    })
            }
        });
        let asked = self.input.intents.resync.contains(name);
        let master = if server.role == Role::Slave {
            group.master().map(|m| m.unique_name.clone())
        } else {
            group
                .replicate_from
                .as_ref()
                .and_then(|s| self.source_master(group.db_type, s).ok())
                .map(|found| found.master)
        };
        let reason = match (observed_reason, asked) {
            (_, true) => format!("--resync {name} was given"),
            (Some(reason), false) => reason,
            (None, false) => return Verdict::Healthy,
        };
        let Some(master) = master else {
            self.block(
                name.as_str(),
                format!("{reason}, but its master cannot be found"),
                "inspect `dbgroups state show`",
            );
            return Verdict::Healthy;
        };
        let master_down = observed.servers.get(&master).is_some_and(|h| !h.up);
        if master_down && !asked {
            self.report.warnings.push(format!(
                "{name} is not judged while its master {master} is down ({reason}): it reconnects by itself once {master} runs again, so it is not re-synchronised now; run `dbgroups plan` again after this apply, which judges it against the running master"
            ));
            return Verdict::Healthy;
        }
        let reconnecting = health
            .and_then(|h| h.replication.as_ref())
            .is_some_and(|r| r.reconnecting);
        if reconnecting && !asked {
            self.report.warnings.push(format!(
                "{name} is not re-synchronised: it is reconnecting to its master {master} or copying from it ({reason}) and resumes by itself; if a later plan still finds it so, `--resync {name}` replaces its data"
            ));
            return Verdict::Healthy;
        }
        Verdict::Resync { master, reason }
    }
}

//! The diff: manifest against recorded state, observed facts and intents,
//! as typed changes (docs/reference.md, "What a plan may do"). Pure: it reads its inputs and nothing else.

use std::collections::{BTreeMap, BTreeSet};

use dbgroups_manifest::catalogue::{self, Version};
use dbgroups_manifest::{DbType, Engine, Group, GroupRef, ProviderKind};
use dbgroups_state::{AppState, GroupState, Role, SourceRef};

use crate::change::{Blocked, ChangeKind, Report, Seed};
use crate::error::PlanError;
use crate::input::{GroupAddress, PlanInput};

mod certificates;
mod copy_source;
mod managed_import;

pub(crate) use certificates::date as certificate_date;
mod observations;
mod preflight;

/// The diff's result, before steps are built.
#[derive(Debug, Clone)]
pub(crate) struct Diff {
    /// Each change with its reason, in the order steps are built.
    pub(crate) changes: Vec<(ChangeKind, String)>,
    pub(crate) report: Report,
    /// The primary group of each type after the plan.
    pub(crate) primaries: BTreeMap<DbType, String>,
}

/// `input.manifest` is already completed by the engines' rules; `implied`
/// names the servers that completion added.
pub(crate) fn diff(
    input: &PlanInput<'_>,
    implied: &BTreeMap<String, GroupAddress>,
) -> Result<Diff, PlanError> {
    let application = input
        .manifest
        .application
        .as_ref()
        .map(|a| a.value.clone())
        .ok_or(PlanError::NoApplication)?;
    if let Some(state) = input.state
        && state.application != application
    {
        return Err(PlanError::StateOfAnotherApplication {
            expected: application,
            found: state.application.clone(),
        });
    }
    let mut differ = Differ {
        input,
        application,
        // "No recorded state" (docs/reference.md): an application whose groups
        // were all removed still has state, and gets nothing implicitly. An
        // interrupted first apply is still creating the application.
        fresh: input
            .state
            .is_none_or(|s| s.journal.as_ref().is_some_and(|j| j.new_application)),
        changes: Vec::new(),
        report: Report::default(),
        created: BTreeSet::new(),
        implied,
        held: BTreeMap::new(),
    };
    differ.check_intents()?;
    differ.decide_creations();
    for group in &input.manifest.groups {
        differ.diff_group(group);
    }
    differ.diff_unmanaged_groups();
    differ.hold_for_preflight();
    let primaries = differ.diff_primaries();
    differ.diff_observations();
    differ.hold_for_preflight();
    differ.report_preflight();
    let Differ {
        mut changes,
        report,
        ..
    } = differ;
    order_changes(&mut changes);
    Ok(Diff {
        changes,
        report,
        primaries,
    })
}

/// A replication or import source's master, as recorded or as this plan
/// creates it.
struct SourceMaster {
    master: String,
    engine: Engine,
    version: Option<String>,
    /// Who manages the master's host: the local provider's servers listen
    /// on loopback only, so no existing host reaches them (nor they it).
    provider: ProviderKind,
}

/// Why a source cannot be used, and what to do about it.
struct SourceUnavailable {
    reason: String,
    hint: String,
}

struct Differ<'a> {
    input: &'a PlanInput<'a>,
    application: String,
    fresh: bool,
    changes: Vec<(ChangeKind, String)>,
    report: Report,
    /// Groups this plan creates.
    created: BTreeSet<GroupAddress>,
    /// Servers the engines' rules add to the declared ones.
    implied: &'a BTreeMap<String, GroupAddress>,
    /// Changes a host's preflight took out of the plan.
    held: BTreeMap<(preflight::HostProblem, GroupAddress), preflight::Held>,
}

fn address_of(group: &Group) -> GroupAddress {
    GroupAddress::new(group.db_type, group.name.value.clone())
}

fn state_address(group: &GroupState) -> GroupAddress {
    GroupAddress::new(group.db_type, group.name.clone())
}

/// Another application is recorded but has no such group: name the groups it
/// has of that type, since a typo or the wrong type is the likely cause and
/// "apply it first" would not help.
fn missing_group_of(state: &AppState, db_type: DbType, source: &SourceRef) -> SourceUnavailable {
    let names: Vec<&str> = state
        .groups
        .iter()
        .filter(|g| g.db_type == db_type)
        .map(|g| g.name.as_str())
        .collect();
    let reason = format!(
        "application \"{}\" has no {db_type} group \"{}\"",
        source.application, source.group
    );
    let hint = if names.is_empty() {
        format!(
            "application \"{}\" has no {db_type} groups recorded; apply {} first",
            source.application,
            source.label(db_type)
        )
    } else {
        let suggestion = dbgroups_manifest::suggest::hint(&source.group, names.iter().copied())
            .map(|s| format!("{s} "))
            .unwrap_or_default();
        format!("{suggestion}its {db_type} groups are: {}", names.join(", "))
    };
    SourceUnavailable { reason, hint }
}

impl<'a> Differ<'a> {
    fn recorded(&self, db_type: DbType, name: &str) -> Option<&'a GroupState> {
        self.input.state.and_then(|s| s.group(db_type, name))
    }

    fn recorded_groups(&self) -> impl Iterator<Item = &'a GroupState> {
        self.input.state.into_iter().flat_map(|s| s.groups.iter())
    }

    fn block(
        &mut self,
        subject: impl Into<String>,
        reason: impl Into<String>,
        hint: impl Into<String>,
    ) {
        self.report.blocked.push(Blocked {
            subject: subject.into(),
            reason: reason.into(),
            hint: hint.into(),
        });
    }

    /// A group whose servers are both on this machine and on existing
    /// hosts cannot replicate: servers of the local provider listen on
    /// loopback only, where no other host reaches them. The plan blocks
    /// the group's change, naming both sides.
    fn blocked_on_mixed_providers<'s>(
        &mut self,
        address: &GroupAddress,
        servers: impl Iterator<Item = &'s dbgroups_manifest::Server>,
    ) -> bool {
        let (here, hosts): (Vec<_>, Vec<_>) =
            servers.partition(|s| s.provider() == dbgroups_manifest::ProviderKind::Local);
        if here.is_empty() || hosts.is_empty() {
            return false;
        }
        let names = |servers: &[&dbgroups_manifest::Server]| {
            servers
                .iter()
                .map(|s| s.unique_name.value.clone())
                .collect::<Vec<_>>()
                .join(", ")
        };
        self.block(
            address.to_string(),
            format!(
                "{address} mixes servers on this machine ({}) with servers on existing hosts ({}): servers of the local provider listen on loopback only, so no host can replicate with them",
                names(&here),
                names(&hosts)
            ),
            "give every server of the group an `address` (the ssh provider), or none",
        );
        true
    }

    fn change(&mut self, kind: ChangeKind, reason: impl Into<String>) {
        self.changes.push((kind, reason.into()));
    }

    /// Flags that name nothing, or contradict the manifest, are errors: a
    /// plan that silently ignored them would not be what the user asked.
    fn check_intents(&self) -> Result<(), PlanError> {
        let intents = self.input.intents;
        let manifest = self.input.manifest;
        for address in &intents.add_groups {
            if manifest.group(address.db_type, &address.name).is_none() {
                return Err(PlanError::intent(
                    "--add-group",
                    address,
                    "the manifest declares no such group",
                ));
            }
        }
        for address in &intents.remove_groups {
            if self.recorded(address.db_type, &address.name).is_none() {
                return Err(PlanError::intent(
                    "--remove-group",
                    address,
                    "no such group is recorded",
                ));
            }
            if manifest.group(address.db_type, &address.name).is_some() {
                return Err(PlanError::intent(
                    "--remove-group",
                    address,
                    "the manifest still declares it; delete it from the manifest first",
                ));
            }
        }
        let declared: BTreeSet<&str> = manifest
            .servers()
            .map(|(_, s)| s.unique_name.as_str())
            .collect();
        for name in &intents.remove_servers {
            if self.input.state.and_then(|s| s.server(name)).is_none() {
                return Err(PlanError::intent(
                    "--remove-server",
                    name,
                    "no such server is recorded",
                ));
            }
            if declared.contains(name.as_str()) {
                return Err(PlanError::intent(
                    "--remove-server",
                    name,
                    "the manifest still declares it; delete it from the manifest first",
                ));
            }
        }
        for name in &intents.resync {
            match self.input.state.and_then(|s| s.server(name)) {
                None => {
                    return Err(PlanError::intent(
                        "--resync",
                        name,
                        "no such server is recorded",
                    ));
                }
                Some((group, server))
                    if server.role == Role::Master && group.replicate_from.is_none() =>
                {
                    return Err(PlanError::intent(
                        "--resync",
                        name,
                        "it is a master, which has nothing to re-synchronise from",
                    ));
                }
                Some(_) => {}
            }
        }
        for name in &intents.restart_masters {
            match self.input.state.and_then(|s| s.server(name)) {
                Some((_, server)) if server.role == Role::Master => {}
                Some(_) => {
                    return Err(PlanError::intent(
                        "--restart-master",
                        name,
                        "it is a slave; the flag names a master",
                    ));
                }
                None => {
                    return Err(PlanError::intent(
                        "--restart-master",
                        name,
                        "no such server is recorded",
                    ));
                }
            }
        }
        Ok(())
    }

    /// Which declared groups this plan builds: all of them for a new
    /// application, otherwise only those named by --add-group.
    fn decide_creations(&mut self) {
        for group in &self.input.manifest.groups {
            let address = address_of(group);
            if self.recorded(group.db_type, &group.name.value).is_some() || group.servers.is_empty()
            {
                continue;
            }
            if self.fresh
                || self.input.intents.add_groups.contains(&address)
                || self.resuming_creation(&address)
            {
                self.created.insert(address);
            }
        }
    }

    /// Whether an interrupted apply was creating this group (its journal
    /// keeps the intent, so finishing needs no flag).
    fn resuming_creation(&self, address: &GroupAddress) -> bool {
        self.input
            .state
            .and_then(|s| s.journal.as_ref())
            .is_some_and(|j| j.creating.contains(&address.to_string()))
    }

    fn source_ref(&self, reference: &GroupRef) -> SourceRef {
        SourceRef {
            application: reference
                .application
                .as_ref()
                .map_or_else(|| self.application.clone(), |a| a.value.clone()),
            group: reference.group.value.clone(),
        }
    }

    /// The master of a source group, whether recorded (here or in another
    /// application) or created by this plan, with the source's engine and
    /// version; `Err` says why there is none and what to do.
    fn source_master(
        &self,
        db_type: DbType,
        source: &SourceRef,
    ) -> Result<SourceMaster, SourceUnavailable> {
        let recorded = if source.application == self.application {
            self.recorded(db_type, &source.group)
        } else {
            match self.input.other_applications.get(&source.application) {
                Some(state) => match state.group(db_type, &source.group) {
                    Some(group) => Some(group),
                    None => return Err(missing_group_of(state, db_type, source)),
                },
                None => {
                    return Err(SourceUnavailable {
                        reason: format!(
                            "application \"{}\" has no recorded state in this state directory",
                            source.application
                        ),
                        hint: format!("apply {} first", source.label(db_type)),
                    });
                }
            }
        };
        if let Some(group) = recorded {
            // A source whose own replication this plan disables is fine: its
            // detach step runs before the backup taken of it.
            let disabled_here = source.application == self.application
                && self
                    .input
                    .manifest
                    .group(db_type, &source.group)
                    .is_some_and(|declared| declared.replicate_from.is_none());
            if let Some(upstream) = group.replicate_from.as_ref().filter(|_| !disabled_here) {
                // It is applied already: "apply it first" would send the user
                // round in circles. Its own source is what can be followed.
                return Err(SourceUnavailable {
                    reason: format!(
                        "{} is itself a replica of {}, and a replica cannot be a replication source",
                        source.label(db_type),
                        upstream.label(db_type)
                    ),
                    hint: format!(
                        "name its source instead: `{{ application: {}, group: {} }}`",
                        upstream.application, upstream.group
                    ),
                });
            }
            return group
                .master()
                .map(|m| SourceMaster {
                    master: m.unique_name.clone(),
                    engine: group.engine,
                    version: Some(group.version.clone()),
                    provider: m.provider,
                })
                .ok_or_else(|| SourceUnavailable {
                    reason: format!("{} has no master", source.label(db_type)),
                    hint: "inspect `dbgroups state show`".to_string(),
                });
        }
        if source.application == self.application
            && self
                .created
                .contains(&GroupAddress::new(db_type, source.group.clone()))
            && let Some(group) = self.input.manifest.group(db_type, &source.group)
        {
            return Ok(SourceMaster {
                master: group.servers[0].unique_name.value.clone(),
                provider: group.servers[0].provider(),
                engine: group.engine(),
                version: group
                    .configuration
                    .version
                    .as_ref()
                    .map(|v| v.value.clone()),
            });
        }
        Err(SourceUnavailable {
            reason: format!(
                "{db_type}.{} is neither recorded nor created by this plan",
                source.group
            ),
            hint: format!("apply {} first", source.label(db_type)),
        })
    }

    /// The recorded master of a source, wherever it is recorded, whatever
    /// its own replication (for cleaning up after it).
    fn recorded_master(&self, db_type: DbType, source: &SourceRef) -> Option<String> {
        let state = if source.application == self.application {
            self.input.state
        } else {
            self.input.other_applications.get(&source.application)
        };
        state
            .and_then(|s| s.group(db_type, &source.group))
            .and_then(GroupState::master)
            .map(|m| m.unique_name.clone())
    }

    /// The groups (here or in other applications) that will replicate from
    /// `source` once this plan is applied: the manifest decides for groups
    /// it declares, the record for the rest, and removed groups are gone.
    fn replicas_after_plan(&self, source: &GroupState) -> Vec<String> {
        let own = self.application.as_str();
        let follows = |reference: Option<SourceRef>| {
            reference.is_some_and(|r| r.application == own && r.group == source.name)
        };
        let here = self
            .recorded_groups()
            .filter(|g| g.db_type == source.db_type)
            .filter(|g| {
                let address = state_address(g);
                if self.input.intents.remove_groups.contains(&address) {
                    return false;
                }
                match self.input.manifest.group(g.db_type, &g.name) {
                    Some(declared) => {
                        follows(declared.replicate_from.as_ref().map(|r| self.source_ref(r)))
                    }
                    None => follows(g.replicate_from.clone()),
                }
            });
        let elsewhere = self
            .input
            .other_applications
            .values()
            .flat_map(|s| s.groups.iter().map(move |g| (s, g)))
            .filter(|(_, g)| g.db_type == source.db_type && follows(g.replicate_from.clone()))
            .map(|(s, g)| format!("{}/{}", s.application, g.address()));
        here.map(GroupState::address).chain(elsewhere).collect()
    }

    fn diff_group(&mut self, group: &Group) {
        let address = address_of(group);
        match self.recorded(group.db_type, &group.name.value) {
            None => self.diff_new_group(group, address),
            Some(recorded) => self.diff_recorded_group(group, recorded, address),
        }
    }

    fn diff_new_group(&mut self, group: &Group, address: GroupAddress) {
        if group.servers.is_empty() {
            self.report.warnings.push(format!(
                "{address} declares no servers, so nothing is built for it"
            ));
            return;
        }
        if !self.created.contains(&address) {
            self.block(
                address.to_string(),
                "declared in the manifest but not created: groups are never added implicitly to an existing application",
                format!("pass --add-group {address} to create it"),
            );
            return;
        }
        let version = group.configuration.version.as_ref().map_or_else(
            || catalogue::default_version(group.engine()).to_string(),
            |v| v.value.clone(),
        );
        let seed = match (&group.replicate_from, &group.import_from) {
            (Some(reference), _) => Some((true, self.source_ref(reference))),
            (None, Some(reference)) => Some((false, self.source_ref(reference))),
            (None, None) => None,
        };
        let seed = match seed {
            None => None,
            Some((replicate, source)) => match self.source_master(group.db_type, &source) {
                Ok(found) => {
                    let provider = group.servers.first().map(|s| s.provider());
                    let managed_backup = group.import_from.as_ref().and_then(|r| r.backup.as_ref());
                    let target = managed_import::ImportTarget {
                        engine: group.engine(),
                        version: &version,
                        master_host: group
                            .servers
                            .first()
                            .map(crate::backup::host_of_declared)
                            .unwrap_or_default(),
                    };
                    let managed = managed_backup.filter(|_| !replicate).map(|choice| {
                        self.managed_import(group.db_type, &source, &choice.value, &target)
                    });
                    let problem = seed_problem(group.engine(), &version, &found, replicate)
                        .or_else(|| managed.clone().and_then(Result::err))
                        .or_else(|| provider.and_then(|p| provider_problem(p, &found)));
                    if let Some((problem, hint)) = problem {
                        self.created.remove(&address);
                        self.block(address.to_string(), problem, hint);
                        return;
                    }
                    let backup = managed.and_then(Result::ok);
                    let source_master = found.master;
                    Some(if replicate {
                        Seed::Replicate {
                            source,
                            source_master,
                        }
                    } else {
                        Seed::Import {
                            source,
                            source_master,
                            backup,
                        }
                    })
                }
                Err(unavailable) => {
                    self.created.remove(&address);
                    self.block(
                        address.to_string(),
                        format!(
                            "cannot create it: its data source is unavailable: {}",
                            unavailable.reason
                        ),
                        unavailable.hint,
                    );
                    return;
                }
            },
        };
        let reason = if self.fresh {
            format!(
                "{address} is declared and application \"{}\" has no recorded state",
                self.application
            )
        } else {
            format!("{address} is declared and --add-group {address} was given")
        };
        let names: Vec<String> = group
            .servers
            .iter()
            .map(|s| s.unique_name.value.clone())
            .collect();
        let reason = reason + &self.implied_note(&names);
        if self.blocked_on_mixed_providers(&address, group.servers.iter()) {
            self.created.remove(&address);
            return;
        }
        if let Some(reason) = crate::rules::unserved_version(group) {
            self.block(
                address.to_string(),
                reason,
                "set the group's version to a release dbgroups serves",
            );
            self.created.remove(&address);
            return;
        }
        self.change(
            ChangeKind::CreateGroup {
                group: address.clone(),
                engine: group.engine(),
                version,
                master: names[0].clone(),
                slaves: names[1..].to_vec(),
                seed,
            },
            reason,
        );
        self.diff_allow_from(group, &[], &address);
    }

    /// `allow_from` of a group with servers on hosts differs from what its
    /// servers were last given: a change of its own, for review. On this
    /// machine servers listen on loopback only, where it means nothing.
    fn diff_allow_from(&mut self, group: &Group, recorded: &[String], address: &GroupAddress) {
        let on_hosts: Vec<String> = group
            .servers
            .iter()
            .filter(|s| s.provider() != dbgroups_manifest::ProviderKind::Local)
            .map(|s| s.unique_name.value.clone())
            .collect();
        if on_hosts.is_empty() {
            return;
        }
        let mut networks: Vec<String> = group.allow_from.iter().map(|n| n.value.clone()).collect();
        networks.sort();
        if networks == recorded {
            return;
        }
        if !networks.is_empty() && !crate::rules::for_type(group.db_type).access_rules {
            self.block(
                address.to_string(),
                format!("{address} has allow_from, but access rules for {} servers on hosts are not built yet", group.db_type),
                "remove allow_from from the group for now; its servers then let in loopback and the hosts of their groups only",
            );
            return;
        }
        let whole_v6 = |n: &&String| n.contains(':') && !n.ends_with("/128");
        if let Some(network) = networks.iter().find(whole_v6)
            && !crate::rules::for_type(group.db_type).ipv6_networks
        {
            self.block(
                address.to_string(),
                format!("{address} allows {network}: {} accounts take IPv6 clients one address at a time", group.db_type),
                "list each IPv6 client's address as /128, or use an IPv4 network",
            );
            return;
        }
        let reason = format!(
            "the manifest's allow_from is {} (recorded: {})",
            crate::change::networks_text(&networks),
            crate::change::networks_text(recorded)
        );
        self.change(
            ChangeKind::SetAllowFrom {
                group: address.clone(),
                servers: on_hosts,
                networks,
                previous: recorded.to_vec(),
            },
            reason,
        );
    }

    fn diff_recorded_group(&mut self, group: &Group, recorded: &GroupState, address: GroupAddress) {
        if let Some(refusal) = refuse_in_place_change(group, recorded) {
            self.report.blocked.push(refusal);
            return;
        }
        // The group's other changes would be made around a master the
        // manifest no longer names: none are made until the order is right.
        if self.master_moved_silently(group, recorded, &address) {
            return;
        }
        if group.managed_backups() != recorded.managed_backups {
            self.change(
                ChangeKind::SetManagedBackups {
                    group: address.clone(),
                    managed: group.managed_backups(),
                },
                format!(
                    "the manifest sets backups.managed to {} (recorded: {})",
                    group.managed_backups(),
                    recorded.managed_backups
                ),
            );
        }
        self.diff_servers(group, recorded, &address);
        self.diff_replication(group, recorded, &address);
        self.diff_allow_from(group, &recorded.allow_from, &address);
        self.diff_certificates(group, recorded, &address);
        if let Some(reference) = &group.import_from {
            let wanted = self.source_ref(reference);
            if recorded.imported_from.as_ref() != Some(&wanted) {
                self.block(
                    address.to_string(),
                    format!(
                        "import_from {} is not done: an import runs only when a group is created, and {address} exists",
                        wanted.label(group.db_type)
                    ),
                    "remove import_from, or create a new group that imports and move the primary to it",
                );
            }
        }
    }

    fn diff_servers(&mut self, group: &Group, recorded: &GroupState, address: &GroupAddress) {
        let recorded_names: BTreeSet<&str> = recorded
            .servers
            .iter()
            .map(|s| s.unique_name.as_str())
            .collect();
        let mut new_slaves = Vec::new();
        for server in &group.servers {
            let name = server.unique_name.as_str();
            if recorded_names.contains(name) {
                continue;
            }
            if let Some((other, _)) = self.input.state.and_then(|s| s.server(name)) {
                self.block(
                    name,
                    format!(
                        "{name} is declared in {address} but recorded in {}",
                        other.address()
                    ),
                    "servers do not move between groups: give the new server another unique_name",
                );
                continue;
            }
            new_slaves.push(name.to_string());
        }
        if !new_slaves.is_empty() {
            let master = recorded.master().map(|m| m.unique_name.clone());
            match master {
                // Slaves of a group still being created are part of its
                // creation, not a scale up.
                _ if !group.managed_backups() && !self.resuming_creation(address) => self.block(
                    address.to_string(),
                    format!("scaling up {address} (adding {}) needs managed backups", new_slaves.join(", ")),
                    format!("set `backups: {{ managed: true }}` on {address}"),
                ),
                // Only while the manifest keeps it a replica: a scale up in the
                // plan that disables its replication runs after the detach.
                _ if recorded.replicate_from.is_some() && group.replicate_from.is_some() => self.block(
                    address.to_string(),
                    format!("{address} replicates from another group, so it cannot have slaves of its own"),
                    "disable its replication first",
                ),
                None => self.block(address.to_string(), "the recorded group has no master", "inspect `dbgroups state show`"),
                Some(_) if self.blocked_on_mixed_providers(address, group.servers.iter()) => {}
                Some(master) => {
                    let reason = format!(
                        "{} declared in {address} but not recorded",
                        if new_slaves.len() == 1 { "a server is" } else { "servers are" }
                    ) + &self.implied_note(&new_slaves);
                    let copy_from = self.scale_up_copy_source(group, recorded, &master);
                    self.change(
                        ChangeKind::ScaleUp {
                            group: address.clone(),
                            master,
                            new_slaves,
                            copy_from,
                        },
                        reason,
                    );
                }
            }
        }
        let declared: BTreeSet<&str> = group
            .servers
            .iter()
            .map(|s| s.unique_name.as_str())
            .collect();
        for server in recorded
            .servers
            .iter()
            .filter(|s| !declared.contains(s.unique_name.as_str()))
        {
            let name = &server.unique_name;
            if self.is_stale_implied_member(group, name) {
                self.change(
                    ChangeKind::RemoveServer {
                        group: address.clone(),
                        server: name.clone(),
                    },
                    if group.adds_odd_member() {
                        format!(
                            "dbgroups added {name} to keep {address}'s member count odd, and the {} declared servers are an odd number",
                            group.servers.len()
                        )
                    } else {
                        format!(
                            "dbgroups added {name} to keep {address}'s member count odd, and the group now says `add_odd_member: false`"
                        )
                    },
                );
                continue;
            }
            if !self.input.intents.remove_servers.contains(name) {
                self.report.warnings.push(format!(
                    "{name} is recorded in {address} but no longer declared; it is kept (pass --remove-server {name} to remove it)"
                ));
                continue;
            }
            if server.role == Role::Master {
                self.block(
                    name.as_str(),
                    format!("{name} is the master of {address}"),
                    format!("a master is removed with its group: --remove-group {address}"),
                );
                continue;
            }
            self.change(
                ChangeKind::RemoveServer {
                    group: address.clone(),
                    server: name.clone(),
                },
                format!("--remove-server {name} was given and the manifest no longer declares it"),
            );
        }
    }

    /// The first declared server is the master. A recorded slave listed
    /// first would silently move the master (the plan would say "No
    /// changes" while the manifest says otherwise); dbgroups does not switch
    /// a group's master over, so the order is refused with the way back.
    fn master_moved_silently(
        &mut self,
        group: &Group,
        recorded: &GroupState,
        address: &GroupAddress,
    ) -> bool {
        let (Some(first), Some(master)) = (group.servers.first(), recorded.master()) else {
            return false;
        };
        let first = first.unique_name.as_str();
        if !recorded.slaves().any(|s| s.unique_name == first) {
            return false;
        }
        let master = master.unique_name.as_str();
        self.block(
            address.to_string(),
            format!(
                "{first} is listed first in {address}, which makes it the master, but it is recorded as a slave of {master}: dbgroups does not switch a group's master over"
            ),
            format!(
                "list {master} first again: the first server of a group is its master, and a slave is not promoted in place"
            ),
        );
        true
    }

    /// Says which of `servers` the engine's rules added, and why.
    fn implied_note(&self, servers: &[String]) -> String {
        servers
            .iter()
            .filter(|s| self.implied.contains_key(*s))
            .map(|s| {
                format!(
                    "; {s} is added by dbgroups (not declared) so the replica set has an odd number of members: a data-bearing, voting server the manifest does not list, which costs like any other (and on the local provider runs on this same host, so it adds a vote but no protection against losing the host); `add_odd_member: false` on the group adds none and makes its last declared server non-voting instead"
                )
            })
            .chain(
                servers
                    .iter()
                    .filter(|s| crate::rules::non_voting_members(self.input.manifest).contains(*s))
                    .map(|s| {
                        format!(
                            "; {s} joins without a vote (votes: 0, priority: 0): the group says `add_odd_member: false`, so the replica set keeps an odd number of voters without a member nobody declared; {s} can never become primary"
                        )
                    }),
            )
            .collect()
    }

    /// A recorded server that dbgroups added for an odd member count, in a
    /// group whose declared servers are now odd in number by themselves.
    fn is_stale_implied_member(&self, group: &Group, name: &str) -> bool {
        if !crate::rules::for_type(group.db_type).odd_member_count
            || self.implied.contains_key(name)
        {
            return false;
        }
        let declared: BTreeSet<&str> = self
            .input
            .manifest
            .servers()
            .map(|(_, s)| s.unique_name.value.as_str())
            .collect();
        crate::rules::implied_member_name(&group.name.value, &declared) == name
    }

    fn diff_replication(&mut self, group: &Group, recorded: &GroupState, address: &GroupAddress) {
        let wanted = group.replicate_from.as_ref().map(|r| self.source_ref(r));
        if wanted == recorded.replicate_from {
            return;
        }
        let Some(server) = recorded.master().map(|m| m.unique_name.clone()) else {
            return;
        };
        match (wanted, &recorded.replicate_from) {
            (None, Some(previous)) => self.change(
                ChangeKind::DisableReplication {
                    group: address.clone(),
                    server,
                    source: previous.clone(),
                    source_master: self.recorded_master(group.db_type, previous),
                },
                format!(
                    "replicate_from was removed from {address} (recorded: replicating from {})",
                    previous.label(group.db_type)
                ),
            ),
            (Some(source), previous) => {
                // Slaves removed by this plan do not count: the removals run first.
                let remaining = recorded
                    .servers
                    .iter()
                    .filter(|s| !self.input.intents.remove_servers.contains(&s.unique_name))
                    .count();
                if remaining > 1 {
                    self.block(
                        address.to_string(),
                        format!("{address} has {remaining} servers; only a single-server group can replicate from another group"),
                        "remove its slaves (--remove-server) first",
                    );
                    return;
                }
                if !self.replicas_after_plan(recorded).is_empty() {
                    self.block(
                        address.to_string(),
                        format!("{address} is the replication source of another group, and a source cannot be a replica"),
                        "disable replication from it first",
                    );
                    return;
                }
                match self.source_master(group.db_type, &source) {
                    Err(unavailable) => self.block(
                        address.to_string(),
                        format!(
                            "cannot replicate from {}: {}",
                            source.label(group.db_type),
                            unavailable.reason
                        ),
                        unavailable.hint,
                    ),
                    Ok(found) => {
                        if let Some((problem, _)) =
                            seed_problem(recorded.engine, &recorded.version, &found, true)
                        {
                            self.block(
                                address.to_string(),
                                problem,
                                "replicate from a group with a compatible version",
                            );
                            return;
                        }
                        let provider = recorded.master().map(|m| m.provider);
                        if let Some((problem, hint)) =
                            provider.and_then(|p| provider_problem(p, &found))
                        {
                            self.block(address.to_string(), problem, hint);
                            return;
                        }
                        let source_master = found.master;
                        let label = |s: &SourceRef| s.label(group.db_type);
                        let reason = match previous {
                            None => {
                                format!("replicate_from {} was added to {address}", label(&source))
                            }
                            Some(previous) => format!(
                                "replicate_from of {address} changed from {} to {}",
                                label(previous),
                                label(&source)
                            ),
                        };
                        let previous_master = previous
                            .as_ref()
                            .and_then(|p| self.recorded_master(group.db_type, p));
                        self.change(
                            ChangeKind::EnableReplication {
                                group: address.clone(),
                                server,
                                source,
                                source_master,
                                previous: previous.clone(),
                                previous_master,
                            },
                            reason,
                        );
                    }
                }
            }
            (None, None) => {}
        }
    }

    /// Recorded groups the manifest no longer declares: kept, unless
    /// --remove-group names them.
    fn diff_unmanaged_groups(&mut self) {
        let manifest = self.input.manifest;
        let unmanaged: Vec<&GroupState> = self
            .recorded_groups()
            .filter(|g| manifest.group(g.db_type, &g.name).is_none())
            .collect();
        for recorded in unmanaged {
            let address = state_address(recorded);
            if !self.input.intents.remove_groups.contains(&address) {
                self.report.warnings.push(format!(
                    "{address} is recorded but not in the manifest: unmanaged, kept (pass --remove-group {address} to remove it)"
                ));
                continue;
            }
            let replicas = self.replicas_after_plan(recorded);
            if !replicas.is_empty() {
                self.block(
                    address.to_string(),
                    format!(
                        "{address} is the replication source of {}",
                        replicas.join(", ")
                    ),
                    "disable their replication first",
                );
                continue;
            }
            // Servers an interrupted apply left pending (built, not yet
            // members), then the slaves, then the master.
            let group_address = recorded.address();
            let mut servers: Vec<String> = self
                .input
                .state
                .and_then(|s| s.journal.as_ref())
                .into_iter()
                .flat_map(|j| j.pending.iter())
                .filter(|(_, pending)| pending.group == group_address)
                .map(|(name, _)| name.clone())
                .collect();
            servers.extend(recorded.slaves().map(|s| s.unique_name.clone()));
            servers.extend(recorded.master().map(|m| m.unique_name.clone()));
            self.change(
                ChangeKind::RemoveGroup {
                    group: address.clone(),
                    servers,
                },
                if self.input.intents.destroy {
                    format!(
                        "`destroy --app {}` removes every group of the application",
                        self.application
                    )
                } else {
                    format!(
                        "--remove-group {address} was given and the manifest no longer declares it"
                    )
                },
            );
        }
    }

    /// The primary of each type after the plan: the manifest's explicit
    /// choice, else the recorded one, else the first created.
    fn diff_primaries(&mut self) -> BTreeMap<DbType, String> {
        let mut primaries = BTreeMap::new();
        for db_type in DbType::ALL {
            let removed = |name: &str| {
                self.input
                    .intents
                    .remove_groups
                    .contains(&GroupAddress::new(db_type, name))
            };
            let mut after: Vec<String> = self
                .recorded_groups()
                .filter(|g| g.db_type == db_type && !removed(&g.name))
                .map(|g| g.name.clone())
                .collect();
            after.extend(
                self.input
                    .manifest
                    .groups_of(db_type)
                    .filter(|g| self.created.contains(&address_of(g)))
                    .map(|g| g.name.value.clone()),
            );
            let explicit = self
                .input
                .manifest
                .groups_of(db_type)
                .find(|g| g.is_primary() && after.contains(&g.name.value))
                .map(|g| g.name.value.clone());
            let recorded_primary = self
                .recorded_groups()
                .find(|g| g.db_type == db_type && g.primary)
                .map(|g| g.name.clone());
            let kept_primary = recorded_primary.clone().filter(|p| after.contains(p));
            let Some(desired) = explicit
                .clone()
                .or(kept_primary)
                .or_else(|| after.first().cloned())
            else {
                continue;
            };
            let has_recorded_groups = self.recorded_groups().any(|g| g.db_type == db_type);
            if has_recorded_groups && recorded_primary.as_ref() != Some(&desired) {
                let reason = match (&explicit, &recorded_primary) {
                    (Some(_), _) => {
                        format!("the manifest marks {db_type}.{desired} `primary: true`")
                    }
                    (None, Some(old)) => format!("the primary group {db_type}.{old} is removed"),
                    (None, None) => format!("no {db_type} group is recorded as primary"),
                };
                self.change(
                    ChangeKind::MovePrimary {
                        db_type,
                        from: recorded_primary,
                        to: desired.clone(),
                    },
                    reason,
                );
            }
            primaries.insert(db_type, desired);
        }
        primaries
    }
}

/// Why data cannot move between a source on one provider and a group on
/// another: servers of the local provider listen on this machine's
/// loopback only, where no existing host reaches them, and they reach no
/// host's database either.
fn provider_problem(ours: ProviderKind, source: &SourceMaster) -> Option<(String, String)> {
    if ours == source.provider
        || (ours != ProviderKind::Local && source.provider != ProviderKind::Local)
    {
        return None;
    }
    let place = |provider| {
        if provider == ProviderKind::Local {
            "on this machine (the local provider, listening on loopback only)"
        } else {
            "on an existing host (the ssh provider)"
        }
    };
    Some((
        format!(
            "its source's master {} is {}, and this group is {}: no data or replication can cross between them",
            source.master,
            place(source.provider),
            place(ours)
        ),
        "put both groups on existing hosts (`address:` on every server), or both on this machine"
            .to_string(),
    ))
}

/// Whether `engine` at `version` can be seeded from `source`, and if not,
/// why and what to do. Versions across applications are only known from
/// state, so they are checked here (the manifest checks its own groups);
/// each side is named by its own engine.
fn seed_problem(
    engine: Engine,
    version: &str,
    source: &SourceMaster,
    replicate: bool,
) -> Option<(String, String)> {
    // Decided by the source's own engine, whether or not its version is
    // known.
    if let Some(problem) = crate::rules::mysql_family_crossing(source.engine, engine, replicate) {
        return Some(problem);
    }
    let mysql_and_percona = matches!(
        (source.engine, engine),
        (Engine::Mysql, Engine::Percona) | (Engine::Percona, Engine::Mysql)
    );
    if !replicate && source.engine != engine && !mysql_and_percona {
        // A logical dump of one engine is not a supported input of
        // another (their SQL dialects and system tables differ), so an
        // import never crosses engines.
        return Some((
            format!(
                "an import copies data between groups of one engine, and the source runs {} while this group runs {engine}",
                source.engine
            ),
            format!(
                "declare `engine: {}` on this group, or move the data to {engine} with the engines' own tools",
                source.engine
            ),
        ));
    }
    let (Some(ours), Some(theirs)) = (
        Version::parse(version),
        source.version.as_deref().and_then(Version::parse),
    ) else {
        return None;
    };
    let verdict = if replicate {
        catalogue::check_replication((source.engine, &theirs), (engine, &ours))
    } else {
        catalogue::check_import((source.engine, &theirs), (engine, &ours))
    };
    verdict
        .err()
        .map(|problem| (problem, "align the versions in the manifest".to_string()))
}

/// A version or engine change is never done in place: the answer says how.
fn refuse_in_place_change(group: &Group, recorded: &GroupState) -> Option<Blocked> {
    let address = group.address();
    if let Some(engine) = &group.configuration.engine
        && engine.value != recorded.engine
    {
        return Some(Blocked {
            subject: address.clone(),
            reason: format!(
                "the engine of {address} would change from {} to {}, which is not done in place",
                recorded.engine, engine.value
            ),
            // No import crosses engines (see `seed_problem`), so the way
            // is a new group filled with the engines' own tools.
            hint: format!(
                "keep `engine: {}` here; to move to {}, declare a new group with `engine: {}`, add it with --add-group, copy the data with the engines' own tools (a logical dump loaded by the new engine's client), move `primary: true` to it, then remove this group with --remove-group",
                recorded.engine, engine.value, engine.value
            ),
        });
    }
    let written = group.configuration.version.as_ref()?;
    let engine = recorded.engine;
    let (Some(wanted), Some(current)) = (
        Version::parse(&written.value),
        Version::parse(&recorded.version),
    ) else {
        return None;
    };
    if wanted.series(engine) == current.series(engine) {
        return None;
    }
    let newer = catalogue::check_replication((engine, &current), (engine, &wanted)).is_ok();
    let hint = if newer {
        format!(
            "keep version \"{}\" here; declare a new group with version \"{}\" and `replicate_from: {}`, add it with --add-group, move `primary: true` to it once it has caught up, then remove its replicate_from to disable replication",
            recorded.version, written.value, group.name.value
        )
    } else if catalogue::check_import((engine, &current), (engine, &wanted)).is_ok() {
        format!(
            "keep version \"{}\" here; declare a new group with version \"{}\" and `import_from: {}`, add it with --add-group, move `primary: true` to it, then remove this group with --remove-group",
            recorded.version, written.value, group.name.value
        )
    } else if wanted.compare(&current, engine).is_gt() {
        // MongoDB: neither replication nor an oplog-replayed import
        // crosses a release series.
        format!(
            "keep version \"{}\": dbgroups cannot move a MongoDB group to another release series, neither by replication nor by import; an upgrade in place outside dbgroups leaves the recorded version behind, and later provisions of this group are then refused",
            recorded.version
        )
    } else {
        format!(
            "keep version \"{}\": moving a group to an older release is not supported",
            recorded.version
        )
    };
    Some(Blocked {
        subject: address.clone(),
        reason: format!(
            "the version of {address} would change from {} to {}, which is not done in place",
            recorded.version, written.value
        ),
        hint,
    })
}

/// Steps are built in this order so that a group exists before anything
/// uses it as a source, and removals come after the work that needs them.
fn order_changes(changes: &mut Vec<(ChangeKind, String)>) {
    fn phase(kind: &ChangeKind) -> u8 {
        match kind {
            ChangeKind::StartServer { .. } => 0,
            ChangeKind::CreateGroup { .. } => 1,
            ChangeKind::SetManagedBackups { .. } => 2,
            // A group leaving replication becomes a master before it gets
            // slaves; a group entering it loses its slaves first.
            ChangeKind::DisableReplication { .. } => 3,
            ChangeKind::ScaleUp { .. } => 4,
            ChangeKind::RemoveServer { .. } => 5,
            ChangeKind::EnableReplication { .. } => 6,
            ChangeKind::Resync { .. } => 7,
            ChangeKind::RemoveGroup { .. } => 8,
            // After the group's new servers exist, so they get the rules.
            ChangeKind::SetAllowFrom { .. } => 9,
            ChangeKind::RenewCertificate { .. } => 10,
            ChangeKind::MovePrimary { .. } => 11,
            ChangeKind::UpdateEnvironment => 12,
        }
    }
    changes.sort_by_key(|(kind, _)| phase(kind));
    // Creations seeded from another creation go after it (imports can chain).
    let creates: Vec<usize> = changes
        .iter()
        .enumerate()
        .filter(|(_, (k, _))| matches!(k, ChangeKind::CreateGroup { .. }))
        .map(|(i, _)| i)
        .collect();
    if creates.is_empty() {
        return;
    }
    let (first, last) = (creates[0], creates[creates.len() - 1]);
    let mut pending: Vec<(ChangeKind, String)> = changes.drain(first..=last).collect();
    let mut ordered = Vec::new();
    while !pending.is_empty() {
        let waits_on_pending = |kind: &ChangeKind, pending: &[(ChangeKind, String)]| match kind {
            ChangeKind::CreateGroup {
                seed: Some(Seed::Replicate { source, .. } | Seed::Import { source, .. }),
                group,
                ..
            } => pending.iter().any(|(other, _)| match other {
                ChangeKind::CreateGroup { group: g, .. } => {
                    g.db_type == group.db_type && g.name == source.group && g != group
                }
                _ => false,
            }),
            _ => false,
        };
        let next = (0..pending.len())
            .find(|&i| !waits_on_pending(&pending[i].0, &pending))
            .unwrap_or(0); // cycles are refused by validation
        ordered.push(pending.remove(next));
    }
    for (offset, change) in ordered.into_iter().enumerate() {
        changes.insert(first + offset, change);
    }
}

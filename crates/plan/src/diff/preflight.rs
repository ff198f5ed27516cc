//! The hosts' preflight into blocked items: a change on an existing host
//! that cannot be reached, runs another operating system than its group
//! declares, lacks the engine's packages with no way to install them, or
//! has too little free space, is not planned; the report names the host,
//! the group and its servers there, and what to do.
//!
//! A host that cannot be reached holds every change of the groups with a
//! server there (apply could not reach them); the other problems hold the
//! changes that build or re-seed a server there (a new group, a scale up,
//! enabling replication, a re-sync). The facts come from refresh
//! (`ObservedFacts::hosts`); a plan without them (`--refresh=false`) checks
//! nothing here. Servers on this machine have no host address and are
//! never held.

use std::collections::{BTreeMap, BTreeSet};

use dbgroups_manifest::{DbType, Engine, ProviderKind, catalogue};

use super::{Differ, address_of, state_address};
use crate::change::{ChangeKind, Seed};
use crate::input::{GroupAddress, HostFacts, HostOs};

/// One problem of one host for one group.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(super) struct HostProblem {
    pub(super) host: String,
    pub(super) reason: String,
    pub(super) hint: String,
    /// Unreachable: every change of the group is held, not only builds.
    pub(super) holds_everything: bool,
}

/// What the held changes of one (host, problem, group) were.
#[derive(Debug, Default)]
pub(super) struct Held {
    servers: BTreeSet<String>,
    changes: Vec<String>,
}

/// The group a change belongs to, and the servers it builds or re-seeds.
fn group_and_builds(kind: &ChangeKind) -> Option<(&GroupAddress, Vec<&str>)> {
    match kind {
        ChangeKind::CreateGroup {
            group,
            master,
            slaves,
            ..
        } => Some((
            group,
            std::iter::once(master.as_str())
                .chain(slaves.iter().map(String::as_str))
                .collect(),
        )),
        ChangeKind::ScaleUp {
            group, new_slaves, ..
        } => Some((group, new_slaves.iter().map(String::as_str).collect())),
        ChangeKind::EnableReplication { group, server, .. }
        | ChangeKind::Resync { group, server, .. } => Some((group, vec![server.as_str()])),
        ChangeKind::DisableReplication { group, .. }
        | ChangeKind::StartServer { group, .. }
        | ChangeKind::RemoveServer { group, .. }
        | ChangeKind::RemoveGroup { group, .. }
        | ChangeKind::SetManagedBackups { group, .. }
        | ChangeKind::SetAllowFrom { group, .. }
        | ChangeKind::RenewCertificate { group, .. } => Some((group, Vec::new())),
        ChangeKind::MovePrimary { .. } | ChangeKind::UpdateEnvironment => None,
    }
}

/// The source master a change copies data from, if any.
fn source_master(kind: &ChangeKind) -> Option<&str> {
    match kind {
        ChangeKind::CreateGroup {
            seed: Some(seed), ..
        } => Some(seed.source().1),
        ChangeKind::EnableReplication { source_master, .. } => Some(source_master),
        _ => None,
    }
}

/// `ubuntu2204` as `/etc/os-release` says it: `ID` and `VERSION_ID`
/// (`ubuntu`, `22.04`); `debian12` is (`debian`, `12`). `None` for text
/// of another shape, which is not checked.
fn declared_os(text: &str) -> Option<(String, String)> {
    let text = text.trim().to_ascii_lowercase();
    let split = text.find(|c: char| c.is_ascii_digit())?;
    let (id, digits) = text.split_at(split);
    if id.is_empty() || !digits.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let version = if id == "ubuntu" && digits.len() == 4 {
        format!("{}.{}", &digits[..2], &digits[2..])
    } else {
        digits.to_string()
    };
    Some((id.to_string(), version))
}

/// Whether a host runs the declared system: the same `ID`, and the same
/// `VERSION_ID` (Ubuntu's `22.04` whole; elsewhere its major part, as
/// `debian12` or `rhel8` name it).
fn os_matches(declared: &(String, String), os: &HostOs) -> bool {
    if declared.0 != os.id {
        return false;
    }
    if declared.1.contains('.') {
        declared.1 == os.version_id
    } else {
        os.version_id.split('.').next() == Some(declared.1.as_str())
    }
}

fn describe_os(os: &HostOs) -> String {
    if os.version_id.is_empty() {
        os.id.clone()
    } else {
        format!("{} {}", os.id, os.version_id)
    }
}

fn human(bytes: u64) -> String {
    const GIB: f64 = (1u64 << 30) as f64;
    const MIB: f64 = (1u64 << 20) as f64;
    #[allow(clippy::cast_precision_loss)]
    let bytes = bytes as f64;
    if bytes >= GIB {
        format!("{:.1} GiB", bytes / GIB)
    } else {
        format!("{:.0} MiB", bytes / MIB)
    }
}

impl Differ<'_> {
    /// Every server's host address (servers on existing hosts only):
    /// declared, recorded (here and in other applications) and pending.
    fn server_hosts(&self) -> BTreeMap<String, String> {
        let mut hosts = BTreeMap::new();
        let states = self
            .input
            .state
            .into_iter()
            .chain(self.input.other_applications.values());
        for state in states {
            let pending = state
                .journal
                .iter()
                .flat_map(|j| j.pending.values().map(|p| &p.server));
            let recorded = state.groups.iter().flat_map(|g| g.servers.iter());
            for server in recorded.chain(pending) {
                if let (ProviderKind::Ssh, Some(address)) = (server.provider, &server.address) {
                    hosts
                        .entry(server.unique_name.clone())
                        .or_insert_with(|| address.clone());
                }
            }
        }
        for group in &self.input.manifest.groups {
            for server in &group.servers {
                if let (ProviderKind::Ssh, Some(address)) = (server.provider(), &server.address) {
                    hosts
                        .entry(server.unique_name.value.clone())
                        .or_insert_with(|| address.value.clone());
                }
            }
        }
        hosts
    }

    /// A group's servers, declared, recorded and pending.
    fn group_servers(&self, address: &GroupAddress) -> BTreeSet<String> {
        let mut names = BTreeSet::new();
        if let Some(group) = self.input.manifest.group(address.db_type, &address.name) {
            names.extend(group.servers.iter().map(|s| s.unique_name.value.clone()));
        }
        if let Some(recorded) = self.recorded(address.db_type, &address.name) {
            names.extend(recorded.servers.iter().map(|s| s.unique_name.clone()));
        }
        let pending = self
            .input
            .state
            .and_then(|s| s.journal.as_ref())
            .into_iter()
            .flat_map(|j| j.pending.iter());
        let label = address.to_string();
        names.extend(
            pending
                .filter(|(_, p)| p.group == label)
                .map(|(name, _)| name.clone()),
        );
        names
    }

    /// The engine, version and declared operating system of a group.
    fn group_software(&self, address: &GroupAddress) -> (Engine, String, Option<String>) {
        if let Some(group) = self.input.manifest.group(address.db_type, &address.name) {
            let version = group.configuration.version.as_ref().map_or_else(
                || catalogue::default_version(group.engine()).to_string(),
                |v| v.value.clone(),
            );
            let os = group
                .configuration
                .operating_system
                .as_ref()
                .map(|o| o.value.clone());
            return (group.engine(), version, os);
        }
        match self.recorded(address.db_type, &address.name) {
            Some(recorded) => (recorded.engine, recorded.version.clone(), None),
            None => (address.db_type.default_engine(), String::new(), None),
        }
    }

    /// What is wrong with `host` for `group`, by its preflight.
    fn problems(&self, address: &GroupAddress, host: &str, facts: &HostFacts) -> Vec<HostProblem> {
        let problem = |reason: String, hint: String, holds_everything: bool| HostProblem {
            host: host.to_string(),
            reason,
            hint,
            holds_everything,
        };
        if let Some(error) = &facts.unreachable {
            return vec![problem(
                format!("host {host} cannot be reached: {error}"),
                format!(
                    "make {host} reachable over ssh (try `ssh {host} true` with the manifest's ssh settings), then plan again"
                ),
                true,
            )];
        }
        let mut found = Vec::new();
        let (engine, version, declared) = self.group_software(address);
        if let (Some(text), Some(os)) = (&declared, &facts.os)
            && let Some(wanted) = declared_os(text)
            && !os_matches(&wanted, os)
        {
            found.push(problem(
                format!(
                    "{address} declares operating_system {text} ({} {}), and host {host} runs {} (its /etc/os-release)",
                    wanted.0,
                    wanted.1,
                    describe_os(os)
                ),
                format!(
                    "put {address}'s servers on {} {} hosts, or set its operating_system to what {host} runs",
                    wanted.0, wanted.1
                ),
                false,
            ));
        }
        let wanted = facts
            .packages
            .iter()
            .find(|p| p.engine == engine && p.version == version);
        if let Some(packages) = wanted.filter(|p| !p.installed && !p.installable) {
            let names = packages.packages.join(" ");
            let (why, hint) = match &facts.os {
                Some(os) if !os.is_debian_family() => (
                    format!(
                        "it runs {}, neither Debian nor Ubuntu, so dbgroups does not install packages there",
                        describe_os(os)
                    ),
                    format!("install {names} on {host} by hand (or their equivalent for {})", os.id),
                ),
                None => (
                    "its /etc/os-release cannot be read, so dbgroups does not install packages there".to_string(),
                    format!("install {names} on {host} by hand"),
                ),
                Some(_) => match &packages.outside_distribution {
                    Some(elsewhere) => (
                        "no apt source there provides them".to_string(),
                        format!("{elsewhere} on {host}"),
                    ),
                    None => (
                        "no apt source there provides them".to_string(),
                        format!(
                            "add the apt repository that provides {names} on {host} (or run `apt-get update` there), or install them by hand"
                        ),
                    ),
                },
            };
            found.push(problem(
                format!(
                    "{engine} {version} needs {names}, which {} not installed on host {host}, and {why}",
                    if packages.packages.len() == 1 { "is" } else { "are" }
                ),
                hint,
                false,
            ));
        }
        if let Some(free) = facts.free_bytes
            && free < self.input.observed.min_free_bytes
        {
            found.push(problem(
                format!(
                    "host {host} has {} free under /var/lib/dbgroups, less than the {} a new server needs",
                    human(free),
                    human(self.input.observed.min_free_bytes)
                ),
                format!("free space on {host} (or grow its disk), then plan again"),
                false,
            ));
        }
        found
    }

    /// The problems of every host `group`'s servers are on, each with the
    /// servers it concerns.
    fn group_problems(
        &self,
        address: &GroupAddress,
        hosts: &BTreeMap<String, String>,
    ) -> Vec<(HostProblem, BTreeSet<String>)> {
        let mut by_host: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
        for server in self.group_servers(address) {
            if let Some(host) = hosts.get(&server) {
                by_host.entry(host).or_default().insert(server);
            }
        }
        let mut found = Vec::new();
        for (host, servers) in by_host {
            if let Some(facts) = self.input.observed.hosts.get(host) {
                for problem in self.problems(address, host, facts) {
                    found.push((problem, servers.clone()));
                }
            }
        }
        found
    }

    /// Takes out of the plan every change a host's preflight holds, and
    /// remembers why for [`Differ::report_preflight`]. Run before the
    /// primaries are chosen (a group not created is no primary) and again
    /// after the observations.
    pub(super) fn hold_for_preflight(&mut self) {
        if self.input.observed.hosts.is_empty() {
            return;
        }
        let hosts = self.server_hosts();
        let unreachable = |server: &str| {
            hosts.get(server).and_then(|host| {
                self.input
                    .observed
                    .hosts
                    .get(host)
                    .and_then(|f| f.unreachable.as_ref())
                    .map(|_| host.clone())
            })
        };
        let mut kept = Vec::new();
        let mut not_created: BTreeSet<GroupAddress> = BTreeSet::new();
        let changes = std::mem::take(&mut self.changes);
        for (kind, reason) in changes {
            let mut holds: Vec<(HostProblem, BTreeSet<String>)> = Vec::new();
            if let Some((group, builds)) = group_and_builds(&kind) {
                for (problem, servers) in self.group_problems(group, &hosts) {
                    if problem.holds_everything || builds.iter().any(|b| servers.contains(*b)) {
                        holds.push((problem, servers));
                    }
                }
                if let Some(source) = source_master(&kind)
                    && let Some(host) = unreachable(source)
                    && let Some(facts) = self.input.observed.hosts.get(&host)
                {
                    let error = facts.unreachable.clone().unwrap_or_default();
                    holds.push((
                        HostProblem {
                            host: host.clone(),
                            reason: format!(
                                "host {host} of {source}, the source {group} copies from, cannot be reached: {error}"
                            ),
                            hint: format!(
                                "make {host} reachable over ssh (try `ssh {host} true` with the manifest's ssh settings), then plan again"
                            ),
                            holds_everything: true,
                        },
                        BTreeSet::new(),
                    ));
                }
            }
            if holds.is_empty() {
                kept.push((kind, reason));
                continue;
            }
            if let ChangeKind::CreateGroup { group, .. } = &kind {
                not_created.insert(group.clone());
            }
            let (group, _) = group_and_builds(&kind).expect("held changes belong to a group");
            let group = group.clone();
            for (problem, servers) in holds {
                let held = self.held.entry((problem, group.clone())).or_default();
                held.servers.extend(servers);
                held.changes.push(kind.summary());
            }
        }
        // A new group seeded from a group this plan no longer creates
        // waits for it.
        let mut changes = Vec::new();
        for (kind, reason) in kept {
            let waits = match &kind {
                ChangeKind::CreateGroup {
                    group,
                    seed: Some(seed),
                    ..
                } => {
                    let source = seed_group(group.db_type, seed, &self.application);
                    source.filter(|s| not_created.contains(s))
                }
                _ => None,
            };
            match waits {
                Some(source) => {
                    let ChangeKind::CreateGroup { group, .. } = &kind else {
                        unreachable!("only creations wait");
                    };
                    self.block(
                        group.to_string(),
                        format!("its source {source} is not created by this plan (see its host's problem)"),
                        format!("resolve {source}'s host problem first"),
                    );
                    not_created.insert(group.clone());
                }
                None => changes.push((kind, reason)),
            }
        }
        self.changes = changes;
        for group in not_created {
            self.created.remove(&group);
        }
    }

    /// The held changes as blocked items, one per host problem and group,
    /// and the host problems that held nothing as warnings.
    pub(super) fn report_preflight(&mut self) {
        if self.input.observed.hosts.is_empty() {
            return;
        }
        let held = std::mem::take(&mut self.held);
        let hosts = self.server_hosts();
        let mut groups: BTreeSet<GroupAddress> =
            self.input.manifest.groups.iter().map(address_of).collect();
        groups.extend(self.recorded_groups().map(state_address));
        let mut reported: BTreeSet<(String, String)> = BTreeSet::new();
        for ((problem, group), held) in held {
            let servers = held.servers.iter().cloned().collect::<Vec<_>>().join(", ");
            let on = if servers.is_empty() {
                String::new()
            } else {
                format!(" (its servers there: {servers})")
            };
            reported.insert((problem.host.clone(), problem.reason.clone()));
            self.block(
                problem.host.clone(),
                format!(
                    "{}; not planned for {group}{on}: {}",
                    problem.reason,
                    held.changes.join("; ")
                ),
                problem.hint,
            );
        }
        for group in groups {
            for (problem, servers) in self.group_problems(&group, &hosts) {
                if reported.contains(&(problem.host.clone(), problem.reason.clone())) {
                    continue;
                }
                let servers = servers.into_iter().collect::<Vec<_>>().join(", ");
                let warning = format!(
                    "{} ({group}: {servers}); nothing planned there needs it now, but {}",
                    problem.reason, problem.hint
                );
                if !self.report.warnings.contains(&warning) {
                    self.report.warnings.push(warning);
                }
            }
        }
    }
}

/// The group a seed copies from, when it is in this application.
fn seed_group(db_type: DbType, seed: &Seed, application: &str) -> Option<GroupAddress> {
    let (source, _) = seed.source();
    (source.application == application).then(|| GroupAddress::new(db_type, source.group.clone()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn declared_systems_read_as_os_release_says_them() {
        assert_eq!(
            declared_os("ubuntu2204"),
            Some(("ubuntu".into(), "22.04".into()))
        );
        assert_eq!(
            declared_os("ubuntu1604"),
            Some(("ubuntu".into(), "16.04".into()))
        );
        assert_eq!(
            declared_os("debian12"),
            Some(("debian".into(), "12".into()))
        );
        assert_eq!(
            declared_os("Debian11"),
            Some(("debian".into(), "11".into()))
        );
        assert_eq!(declared_os("linux"), None);
        assert_eq!(declared_os("2204"), None);
        assert_eq!(declared_os("ubuntu22.04"), None);
    }

    #[test]
    fn a_host_runs_the_declared_system_only_at_that_release() {
        let os = |id: &str, v: &str| HostOs {
            id: id.into(),
            version_id: v.into(),
            id_like: Vec::new(),
        };
        let debian12 = declared_os("debian12").expect("read");
        assert!(os_matches(&debian12, &os("debian", "12")));
        assert!(!os_matches(&debian12, &os("debian", "11")));
        assert!(!os_matches(&debian12, &os("ubuntu", "12")));
        let jammy = declared_os("ubuntu2204").expect("read");
        assert!(os_matches(&jammy, &os("ubuntu", "22.04")));
        assert!(!os_matches(&jammy, &os("ubuntu", "24.04")));
        assert!(!os_matches(&jammy, &os("debian", "12")));
        let rhel = declared_os("rhel8").expect("read");
        assert!(os_matches(&rhel, &os("rhel", "8.9")));
    }
}

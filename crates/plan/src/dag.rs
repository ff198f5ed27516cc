//! Turns changes into a DAG of steps (petgraph) with the shapes of
//! docs/plan-json.md (`steps[]`), and orders it deterministically.

use std::collections::BTreeMap;

use dbgroups_manifest::Engine;
use petgraph::graph::{DiGraph, NodeIndex};
use serde::{Deserialize, Serialize};

use crate::backup::{BackupRef, Servers};
use crate::change::{Change, ChangeKind, CopyFrom, ManagedSeed};
use crate::input::GroupAddress;
use crate::rules::{self, BackupMethod};

/// One idempotent "ensure" operation of apply.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Step {
    /// Unique in the plan: `provision:pg-main`, `backup:pg-main`, …
    pub id: String,
    #[serde(flatten)]
    pub kind: StepKind,
    /// The change it serves (the first one, for a shared backup).
    pub change: String,
    pub reason: String,
    /// Steps that must finish first, by id.
    pub depends_on: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum StepKind {
    /// The free-space guard (twice the data, the seeds' rule), run before
    /// anything of the seeding it guards is built: `server`'s data is
    /// measured, and the staging area (when `staged`, for the backup) and
    /// each destination's directory (for its restore or full sync) must
    /// have room for twice that. Provisions, backups and syncs wait for it.
    DiskCheck {
        group: GroupAddress,
        server: String,
        master_application: String,
        method: BackupMethod,
        staged: bool,
        destinations: Vec<String>,
        /// The backup whose landing place is checked, when `staged`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        backup: Option<BackupRef>,
    },
    /// A full backup of a master, into the staging area of `host` (the
    /// master's host, where it lands), at `location` in it: what its
    /// readers' `BackupRef` names.
    ///
    /// With `managed`, no new backup is taken: that recorded managed
    /// backup of `server` (an import's `import_from.backup`), in the store
    /// on `host`, is checked against its checksum and unpacked into the
    /// staging area as `method` (the engine turns it into that kind of
    /// copy when its managed backups are another kind).
    Backup {
        group: GroupAddress,
        server: String,
        method: BackupMethod,
        host: String,
        location: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        managed: Option<ManagedSeed>,
        /// Why `server` is the one copied, when the plan chose among the
        /// group's servers (a refreshed scale up).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        why: Option<String>,
    },
    /// A new server, replication-ready, with the application's account.
    Provision {
        group: GroupAddress,
        server: String,
        engine: Engine,
        version: String,
        master: bool,
    },
    /// A backup restored onto a server; `replaces_data` when it had data.
    /// `takes_backup`: the last reader of a backup of data files that is on
    /// the server's host, run after the others, so the engine moves the
    /// backup into place instead of copying it.
    Restore {
        server: String,
        backup: BackupRef,
        replaces_data: bool,
        #[serde(default)]
        takes_backup: bool,
    },
    /// The server follows `master` (in `master_application`).
    Enslave {
        server: String,
        master: String,
        master_application: String,
        /// The enslave of a re-sync (`--resync`, or a replica observed
        /// broken): where the engine copies the data itself on follow
        /// (MongoDB's initial sync), it first empties the server's data.
        /// Written only when true.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        resync: bool,
        /// The server joins without a vote (`votes: 0, priority: 0`): a
        /// MongoDB group with an even count and `add_odd_member: false`.
        /// Written only when true.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        non_voting: bool,
        /// The dump restored on the server just before, which an engine
        /// may read to know where in the master's history to start
        /// (MariaDB's GTID position). Written only for a restore of a
        /// logical backup.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        from_backup: Option<BackupRef>,
    },
    /// The server stops following `master` and becomes a standalone
    /// master; `master`, if still recorded, is cleaned up (slot, user).
    Detach {
        server: String,
        master: Option<String>,
        master_application: String,
    },
    /// The server is stopped and its data deleted.
    Remove {
        server: String,
    },
    Start {
        server: String,
    },
    /// The group's servers on hosts let in exactly these client networks
    /// (`allow_from`), besides loopback and their peers' hosts.
    Allow {
        group: GroupAddress,
        servers: Vec<String>,
        networks: Vec<String>,
        previous: Vec<String>,
    },
    /// The server gets a new certificate from its application's authority
    /// and reloads it.
    Certify {
        server: String,
        /// When the current one expires (seconds since the epoch).
        expires: u64,
    },
    /// The environment file is rewritten with the new variables.
    UpdateEnvironment,
}

impl StepKind {
    pub fn verb(&self) -> &'static str {
        match self {
            StepKind::DiskCheck { .. } => "disk check",
            StepKind::Backup {
                managed: Some(_), ..
            } => "fetch",
            StepKind::Backup {
                method: BackupMethod::Physical,
                ..
            } => "backup",
            StepKind::Backup {
                method: BackupMethod::Logical,
                ..
            } => "dump",
            StepKind::Provision { .. } => "provision",
            StepKind::Restore { .. } => "restore",
            StepKind::Enslave { .. } => "enslave",
            StepKind::Detach { .. } => "detach",
            StepKind::Remove { .. } => "remove",
            StepKind::Start { .. } => "start",
            StepKind::Allow { .. } => "allow",
            StepKind::Certify { .. } => "certify",
            StepKind::UpdateEnvironment => "env update",
        }
    }

    /// The server it acts on, if any.
    pub fn server(&self) -> Option<&str> {
        match self {
            StepKind::DiskCheck { server, .. }
            | StepKind::Backup { server, .. }
            | StepKind::Provision { server, .. }
            | StepKind::Restore { server, .. }
            | StepKind::Enslave { server, .. }
            | StepKind::Detach { server, .. }
            | StepKind::Remove { server }
            | StepKind::Certify { server, .. }
            | StepKind::Start { server } => Some(server),
            StepKind::Allow { .. } | StepKind::UpdateEnvironment => None,
        }
    }

    /// A short description for renderings.
    pub fn describe(&self) -> String {
        match self {
            StepKind::DiskCheck {
                server,
                master_application,
                staged,
                destinations,
                ..
            } => format!(
                "room for twice the data of {master_application}/{server} {}on {}, before anything is built",
                if *staged {
                    "in the backup area and "
                } else {
                    ""
                },
                destinations.join(", ")
            ),
            StepKind::Backup {
                group,
                managed: Some(managed),
                host,
                ..
            } => format!(
                "{group}'s {managed}, checked and unpacked from its store on {}",
                if *host == crate::backup::host_of(dbgroups_manifest::ProviderKind::Local, None) {
                    "this machine"
                } else {
                    host.as_str()
                }
            ),
            StepKind::Backup {
                group,
                server,
                method,
                host,
                why,
                ..
            } => {
                let what = match method {
                    BackupMethod::Physical => "full backup",
                    BackupMethod::Logical => "full dump",
                };
                // On this machine everything lands here; on hosts, the
                // reviewer sees which host receives the data.
                let onto = if *host
                    == crate::backup::host_of(dbgroups_manifest::ProviderKind::Local, None)
                {
                    String::new()
                } else {
                    format!(", taken on {host}")
                };
                match why {
                    Some(why) => format!("{what} of {server} ({group}; {why}){onto}"),
                    None => format!("{what} of {server} ({group} master){onto}"),
                }
            }
            StepKind::Provision {
                group,
                server,
                engine,
                version,
                master,
            } => format!(
                "{server}: new {engine} {version} {} in {group}",
                if *master { "master" } else { "slave" }
            ),
            StepKind::Restore {
                server,
                backup,
                replaces_data,
                takes_backup,
            } => format!(
                "{server} from {backup}{}{}",
                if *takes_backup {
                    " (moved into place, after any copies)"
                } else {
                    ""
                },
                if *replaces_data {
                    " (REPLACES ALL DATA)"
                } else {
                    ""
                }
            ),
            StepKind::Enslave {
                server,
                master,
                master_application,
                non_voting,
                ..
            } => {
                let vote = if *non_voting {
                    " (without a vote: votes 0, priority 0)"
                } else {
                    ""
                };
                format!("{server} follows {master_application}/{master}{vote}")
            }
            StepKind::Detach {
                server,
                master,
                master_application,
            } => match master {
                Some(master) => format!(
                    "{server} stops following {master_application}/{master}, keeps its data"
                ),
                None => format!(
                    "{server} stops following its former source in {master_application}, keeps its data"
                ),
            },
            StepKind::Remove { server } => format!("{server}: stop and delete its data"),
            StepKind::Start { server } => format!("{server}: start"),
            StepKind::Allow {
                group,
                servers,
                networks,
                previous,
            } => format!(
                "{}: clients from {} may connect ({group}; was: {})",
                servers.join(", "),
                crate::change::networks_text(networks),
                crate::change::networks_text(previous)
            ),
            StepKind::Certify { server, expires } => format!(
                "{server}: a new certificate, reloaded without a restart (the current one expires {})",
                crate::diff::certificate_date(*expires)
            ),
            StepKind::UpdateEnvironment => "write the environment file".to_string(),
        }
    }

    /// Whether its outcome changes an address, port or slave list, so the
    /// environment update must follow it.
    pub fn changes_addresses(&self) -> bool {
        matches!(
            self,
            StepKind::Provision { .. }
                | StepKind::Enslave { .. }
                | StepKind::Detach { .. }
                | StepKind::Remove { .. }
        )
    }
}

/// The master a server is seeded from, and how.
struct SeedSource<'s> {
    group: &'s GroupAddress,
    master: &'s str,
    application: &'s str,
    method: BackupMethod,
    /// The recorded managed backup restored instead of a new backup.
    managed: Option<&'s ManagedSeed>,
    /// The server the backup copies when not the master (a caught-up
    /// slave of the master's group), and why.
    copy_from: Option<&'s CopyFrom>,
}

impl SeedSource<'_> {
    /// The server the backup copies.
    fn copied(&self) -> &str {
        self.copy_from.map_or(self.master, |c| c.server.as_str())
    }
}

/// New slaves of a group's master, and where their backup comes from.
struct NewSlaves<'n> {
    group: &'n GroupAddress,
    master: &'n str,
    slaves: &'n [String],
    engine: Engine,
    version: &'n str,
    copy_from: Option<&'n CopyFrom>,
}

struct Builder<'a> {
    graph: DiGraph<Step, ()>,
    by_id: BTreeMap<String, NodeIndex>,
    /// The last step after which a server holds its data and is up.
    ready: BTreeMap<String, NodeIndex>,
    /// Removal steps per group, which a group entering replication waits for.
    removals: BTreeMap<GroupAddress, Vec<NodeIndex>>,
    /// The steps after which a group's new servers serve, which removals
    /// from that group wait for: a group never shrinks before it grows.
    joined: BTreeMap<GroupAddress, Vec<NodeIndex>>,
    application: &'a str,
    /// Whether seedings get their disk check (off with --skip-disk-check).
    disk_check: bool,
    /// Where each server lives, so a backup names its source and the host
    /// it lands on.
    servers: &'a Servers,
}

impl Builder<'_> {
    fn add(
        &mut self,
        id: String,
        kind: StepKind,
        change: &Change,
        deps: &[Option<NodeIndex>],
    ) -> NodeIndex {
        let node = self.graph.add_node(Step {
            id: id.clone(),
            kind,
            change: change.id.clone(),
            reason: change.reason.clone(),
            depends_on: Vec::new(),
        });
        for dep in deps.iter().flatten() {
            self.graph.add_edge(*dep, node, ());
        }
        self.by_id.insert(id, node);
        node
    }

    /// The disk check of seeding `destination` from `master`, shared by every
    /// destination seeded from that master the same way. A master this plan
    /// builds holds no data yet, so its seedings need none. `before` is the
    /// step of the destination's that must wait for the check: its
    /// provision, or for a server that exists its sync (its restore waits
    /// for the backup, which waits for the check).
    fn guard(
        &mut self,
        change: &Change,
        from: &SeedSource<'_>,
        staged: bool,
        destination: &str,
        before: Option<NodeIndex>,
    ) -> Option<NodeIndex> {
        if !self.disk_check
            || self
                .by_id
                .contains_key(&format!("provision:{}", from.master))
        {
            return None;
        }
        // A staged check guards one backup, which lands on the
        // destination's host: one check per backup. A sync's check is
        // shared by every destination (each is measured on its own host).
        let backup = staged.then(|| self.backup_ref(from, destination));
        let id = match &backup {
            Some(backup) => format!("disk-check:{}", backup.step),
            None => format!("disk-check:sync:{}", from.master),
        };
        let node = match self.by_id.get(&id) {
            Some(&existing) => existing,
            None => {
                let deps = [self.ready.get(from.master).copied()];
                let kind = StepKind::DiskCheck {
                    group: from.group.clone(),
                    server: from.copied().to_string(),
                    master_application: from.application.to_string(),
                    method: self.method_for(from, destination),
                    staged,
                    destinations: Vec::new(),
                    backup,
                };
                self.add(id, kind, change, &deps)
            }
        };
        if let StepKind::DiskCheck { destinations, .. } = &mut self.graph[node].kind
            && !destinations.iter().any(|d| d == destination)
        {
            destinations.push(destination.to_string());
        }
        if let Some(before) = before {
            self.graph.update_edge(node, before, ());
        }
        Some(node)
    }

    /// The backup `destination` is seeded with: of its master (in the
    /// group and application the master is recorded in: a re-sync of a
    /// group's master names its own group, not its source's), by its
    /// method, landing on the destination's host (data moves host to
    /// host: the receiving host takes the backup from the master).
    fn backup_ref(&self, from: &SeedSource<'_>, destination: &str) -> BackupRef {
        BackupRef::new(
            self.servers
                .source(from.copied(), from.application, from.group),
            self.method_for(from, destination),
            &self.servers.host(from.copied()),
            self.servers.host(destination),
        )
    }

    /// The seed's method for `destination`: a physical copy that cannot
    /// cross hosts becomes a dump between hosts.
    fn method_for(&self, from: &SeedSource<'_>, destination: &str) -> BackupMethod {
        let crosses = self.servers.host(from.copied()) != self.servers.host(destination);
        if from.method == BackupMethod::Physical
            && crosses
            && !rules::for_type(from.group.db_type).physical_between_hosts
        {
            BackupMethod::Logical
        } else {
            from.method
        }
    }

    /// Where a recorded managed backup is unpacked for `destination`: on
    /// the destination's host (its store's, which the planner checked), in
    /// a staging entry named by the backup.
    fn managed_ref(
        &self,
        from: &SeedSource<'_>,
        managed: &ManagedSeed,
        destination: &str,
    ) -> BackupRef {
        BackupRef {
            step: format!("fetch:{}", managed.id),
            source: crate::backup::BackupSource {
                application: from.application.to_string(),
                group: from.group.clone(),
                server: managed.server.clone(),
            },
            method: from.method,
            host: self.servers.host(destination),
            location: format!("fetch-{}", managed.id),
        }
    }

    /// The step that unpacks a managed backup, once per backup. No disk
    /// check guards it: the source's data is not measured (the source may
    /// be busy or gone); the step itself checks room for the unpacked copy.
    fn fetch(&mut self, backup: &BackupRef, managed: &ManagedSeed, change: &Change) -> NodeIndex {
        if let Some(&existing) = self.by_id.get(&backup.step) {
            return existing;
        }
        let kind = StepKind::Backup {
            group: backup.source.group.clone(),
            server: backup.source.server.clone(),
            method: backup.method,
            host: backup.host.clone(),
            location: backup.location.clone(),
            managed: Some(managed.clone()),
            why: None,
        };
        self.add(backup.step.clone(), kind, change, &[])
    }

    /// One backup per master and method serves every server seeded from it.
    fn backup(&mut self, backup: &BackupRef, why: Option<&str>, change: &Change) -> NodeIndex {
        if let Some(&existing) = self.by_id.get(&backup.step) {
            return existing;
        }
        let deps = [self.ready.get(&backup.source.server).copied()];
        let kind = StepKind::Backup {
            group: backup.source.group.clone(),
            server: backup.source.server.clone(),
            method: backup.method,
            host: backup.host.clone(),
            location: backup.location.clone(),
            managed: None,
            why: why.map(str::to_string),
        };
        self.add(backup.step.clone(), kind, change, &deps)
    }

    /// backup(master) → [provision] → restore → enslave, the seeding shape.
    /// Gives `server` a copy of `from`'s data and, when `follow`, makes it
    /// follow `from`'s master. Returns the step that replaces its data.
    fn seed_from(
        &mut self,
        change: &Change,
        from: SeedSource<'_>,
        server: &str,
        provisioned: Option<NodeIndex>,
        replaces_data: bool,
        follow: bool,
    ) -> NodeIndex {
        let copies_by_sync = rules::for_type(from.group.db_type).replicas_copy_by_sync;
        let enslave_kind = |from_backup| StepKind::Enslave {
            server: server.to_string(),
            master: from.master.to_string(),
            master_application: from.application.to_string(),
            resync: copies_by_sync && matches!(change.kind, ChangeKind::Resync { .. }),
            non_voting: false,
            from_backup,
        };
        if follow && copies_by_sync {
            // The engine copies the data itself when the server follows.
            let deps = [
                provisioned.or_else(|| self.ready.get(server).copied()),
                self.ready.get(from.master).copied(),
            ];
            let enslave = self.add(
                format!("enslave:{server}"),
                enslave_kind(None),
                change,
                &deps,
            );
            self.guard(
                change,
                &from,
                false,
                server,
                Some(provisioned.unwrap_or(enslave)),
            );
            self.ready.insert(server.to_string(), enslave);
            return enslave;
        }
        if let Some(managed) = from.managed {
            let backup_ref = self.managed_ref(&from, managed, server);
            let backup = self.fetch(&backup_ref, managed, change);
            let restore = self.add(
                format!("restore:{server}"),
                StepKind::Restore {
                    server: server.to_string(),
                    backup: backup_ref,
                    replaces_data,
                    takes_backup: false,
                },
                change,
                &[Some(backup), provisioned],
            );
            self.ready.insert(server.to_string(), restore);
            return restore;
        }
        let backup_ref = self.backup_ref(&from, server);
        let backup = self.backup(
            &backup_ref,
            from.copy_from.map(|c| c.reason.as_str()),
            change,
        );
        let restore = self.add(
            format!("restore:{server}"),
            StepKind::Restore {
                server: server.to_string(),
                backup: backup_ref.clone(),
                replaces_data,
                takes_backup: false,
            },
            change,
            &[
                Some(backup),
                provisioned.or_else(|| self.ready.get(server).copied()),
            ],
        );
        if let Some(guard) = self.guard(change, &from, true, server, provisioned) {
            self.graph.update_edge(guard, backup, ());
        }
        self.ready.insert(server.to_string(), restore);
        if follow {
            // A dump is read again by the enslave (where in the master's
            // history the copy ends); data files carry their own position.
            let from_backup = (!backup_ref.method.can_be_moved()).then_some(backup_ref);
            let enslave = self.add(
                format!("enslave:{server}"),
                enslave_kind(from_backup),
                change,
                &[Some(restore)],
            );
            self.ready.insert(server.to_string(), enslave);
        }
        restore
    }

    fn provision(
        &mut self,
        change: &Change,
        group: &GroupAddress,
        server: &str,
        engine: Engine,
        version: &str,
        master: bool,
    ) -> NodeIndex {
        let node = self.add(
            format!("provision:{server}"),
            StepKind::Provision {
                group: group.clone(),
                server: server.to_string(),
                engine,
                version: version.to_string(),
                master,
            },
            change,
            &[],
        );
        self.ready.insert(server.to_string(), node);
        node
    }

    /// New slaves of `master`: seeded from one backup of it, or, where the
    /// engine copies data itself (Redis, MongoDB), simply made to follow it.
    fn add_slaves(&mut self, change: &Change, new: NewSlaves<'_>) {
        let NewSlaves {
            group,
            master,
            slaves,
            engine,
            version,
            copy_from,
        } = new;
        for slave in slaves {
            let provisioned = self.provision(change, group, slave, engine, version, false);
            let application = self.application.to_string();
            self.seed_from(
                change,
                SeedSource {
                    group,
                    master,
                    application: &application,
                    method: rules::scale_up_backup(engine),
                    managed: None,
                    copy_from,
                },
                slave,
                Some(provisioned),
                false,
                true,
            );
        }
    }

    fn build_change(
        &mut self,
        change: &Change,
        recorded_versions: &BTreeMap<GroupAddress, (Engine, String)>,
    ) {
        match &change.kind {
            ChangeKind::StartServer { server, .. } => {
                let node = self.add(
                    format!("start:{server}"),
                    StepKind::Start {
                        server: server.clone(),
                    },
                    change,
                    &[],
                );
                self.ready.insert(server.clone(), node);
            }
            ChangeKind::CreateGroup {
                group,
                engine,
                version,
                master,
                slaves,
                seed,
            } => {
                let provisioned = self.provision(change, group, master, *engine, version, true);
                if let Some(seed) = seed {
                    let (source, source_master) = seed.source();
                    let source_group = GroupAddress::new(group.db_type, source.group.clone());
                    self.seed_from(
                        change,
                        SeedSource {
                            group: &source_group,
                            master: source_master,
                            application: &source.application,
                            method: seed.backup_method(group.db_type),
                            managed: seed.managed_backup(),
                            copy_from: None,
                        },
                        master,
                        Some(provisioned),
                        false,
                        seed.follows(),
                    );
                }
                self.add_slaves(
                    change,
                    NewSlaves {
                        group,
                        master,
                        slaves,
                        engine: *engine,
                        version,
                        copy_from: None,
                    },
                );
            }
            ChangeKind::ScaleUp {
                group,
                master,
                new_slaves,
                copy_from,
            } => {
                let (engine, version) = recorded_versions
                    .get(group)
                    .cloned()
                    .unwrap_or((group.db_type.default_engine(), String::new()));
                self.add_slaves(
                    change,
                    NewSlaves {
                        group,
                        master,
                        slaves: new_slaves,
                        engine,
                        version: &version,
                        copy_from: copy_from.as_ref(),
                    },
                );
                let joined: Vec<NodeIndex> = new_slaves
                    .iter()
                    .filter_map(|s| self.ready.get(s).copied())
                    .collect();
                self.joined.entry(group.clone()).or_default().extend(joined);
            }
            ChangeKind::EnableReplication {
                group,
                server,
                source,
                source_master,
                previous,
                previous_master,
            } => {
                if let Some(previous) = previous {
                    let node = self.add(
                        format!("detach:{server}"),
                        StepKind::Detach {
                            server: server.clone(),
                            master: previous_master.clone(),
                            master_application: previous.application.clone(),
                        },
                        change,
                        &[self.ready.get(server).copied()],
                    );
                    self.ready.insert(server.clone(), node);
                }
                let source_group = GroupAddress::new(group.db_type, source.group.clone());
                let replaced = self.seed_from(
                    change,
                    SeedSource {
                        group: &source_group,
                        master: source_master,
                        application: &source.application,
                        method: rules::for_type(group.db_type).seed_backup,
                        managed: None,
                        copy_from: None,
                    },
                    server,
                    None,
                    true,
                    true,
                );
                // The group's slaves removed by this plan go before its
                // master's data is replaced.
                for &removal in self.removals.get(group).into_iter().flatten() {
                    self.graph.add_edge(removal, replaced, ());
                }
            }
            ChangeKind::DisableReplication {
                server,
                source,
                source_master,
                ..
            } => {
                let node = self.add(
                    format!("detach:{server}"),
                    StepKind::Detach {
                        server: server.clone(),
                        master: source_master.clone(),
                        master_application: source.application.clone(),
                    },
                    change,
                    &[self.ready.get(server).copied()],
                );
                self.ready.insert(server.clone(), node);
            }
            ChangeKind::Resync {
                group,
                server,
                master,
            } => {
                // A group's master re-synchronised from the group it follows
                // follows a master that may be in another application.
                let application = self
                    .servers
                    .application(master)
                    .unwrap_or(self.application)
                    .to_string();
                // From its own group's master, as a scale up; from the
                // group it follows, as a replica of another group.
                let within_group = self.servers.source(master, &application, group).group == *group
                    && application == self.application;
                let method = match recorded_versions.get(group) {
                    Some((engine, _)) if within_group => rules::scale_up_backup(*engine),
                    _ => rules::for_type(group.db_type).seed_backup,
                };
                self.seed_from(
                    change,
                    SeedSource {
                        group,
                        master,
                        application: &application,
                        method,
                        managed: None,
                        copy_from: None,
                    },
                    server,
                    None,
                    true,
                    true,
                );
            }
            ChangeKind::RemoveServer { group, server } => {
                let deps: Vec<Option<NodeIndex>> = std::iter::once(self.ready.get(server).copied())
                    .chain(
                        self.joined
                            .get(group)
                            .into_iter()
                            .flatten()
                            .map(|&n| Some(n)),
                    )
                    .collect();
                let node = self.add(
                    format!("remove:{server}"),
                    StepKind::Remove {
                        server: server.clone(),
                    },
                    change,
                    &deps,
                );
                self.removals.entry(group.clone()).or_default().push(node);
            }
            ChangeKind::RemoveGroup { servers, .. } => {
                // Slaves first, the master last (servers come in that order).
                let mut previous: Vec<Option<NodeIndex>> = Vec::new();
                for server in servers {
                    let mut deps = previous.clone();
                    deps.push(self.ready.get(server).copied());
                    let node = self.add(
                        format!("remove:{server}"),
                        StepKind::Remove {
                            server: server.clone(),
                        },
                        change,
                        &deps,
                    );
                    previous.push(Some(node));
                }
            }
            ChangeKind::SetAllowFrom {
                group,
                servers,
                networks,
                previous,
            } => {
                // After every step that builds or re-seeds its servers.
                let deps: Vec<Option<NodeIndex>> =
                    servers.iter().map(|s| self.ready.get(s).copied()).collect();
                self.add(
                    format!("allow:{group}"),
                    StepKind::Allow {
                        group: group.clone(),
                        servers: servers.clone(),
                        networks: networks.clone(),
                        previous: previous.clone(),
                    },
                    change,
                    &deps,
                );
            }
            ChangeKind::RenewCertificate {
                server, expires, ..
            } => {
                let deps = [self.ready.get(server).copied()];
                self.add(
                    format!("certify:{server}"),
                    StepKind::Certify {
                        server: server.clone(),
                        expires: *expires,
                    },
                    change,
                    &deps,
                );
            }
            ChangeKind::SetManagedBackups { .. }
            | ChangeKind::MovePrimary { .. }
            | ChangeKind::UpdateEnvironment => {}
        }
    }
}

impl Builder<'_> {
    /// A group master removed together with the master it follows (another
    /// group of this application) goes first, as a group's slaves go before
    /// its master.
    fn remove_followers_first(&mut self, upstreams: &BTreeMap<String, String>) {
        for (follower, upstream) in upstreams {
            let removal = |server: &str| self.by_id.get(&format!("remove:{server}")).copied();
            if let (Some(first), Some(then)) = (removal(follower), removal(upstream)) {
                self.graph.update_edge(first, then, ());
            }
        }
    }

    /// Each backup of data files (`BackupMethod::can_be_moved`) is taken by
    /// its last restore on the backup's host, which waits for the backup's
    /// other restores, so moving it into place (a rename) saves one full
    /// copy of the data: of N new replicas, N - 1 are copied and one is
    /// moved. A logical dump is read, never moved, so its restores stay
    /// parallel; a backup on another host than the restoring server's
    /// cannot be renamed there.
    fn hand_over_backups(&mut self) {
        let mut readers: BTreeMap<NodeIndex, Vec<NodeIndex>> = BTreeMap::new();
        for node in self.graph.node_indices() {
            if let StepKind::Restore { backup, .. } = &self.graph[node].kind
                && let Some(&backup_node) = self.by_id.get(&backup.step)
            {
                readers.entry(backup_node).or_default().push(node);
            }
        }
        for restores in readers.into_values() {
            let can_take = |node: &NodeIndex| match &self.graph[*node].kind {
                StepKind::Restore { server, backup, .. } => {
                    backup.can_be_taken_on(&self.servers.host(server))
                }
                _ => false,
            };
            let Some(&last) = restores.iter().rev().find(|node| can_take(node)) else {
                continue;
            };
            let others: Vec<NodeIndex> = restores.iter().copied().filter(|&n| n != last).collect();
            for other in others {
                self.graph.add_edge(other, last, ());
            }
            if let StepKind::Restore { takes_backup, .. } = &mut self.graph[last].kind {
                *takes_backup = true;
            }
        }
    }
}

/// Builds the step DAG; `env_changes` adds the environment update, after
/// every step that changes addresses; `disk_check` adds the disk checks.
pub(crate) fn build(
    application: &str,
    changes: &[Change],
    recorded_versions: &BTreeMap<GroupAddress, (Engine, String)>,
    upstreams: &BTreeMap<String, String>,
    env_change: Option<&Change>,
    disk_check: bool,
    servers: &Servers,
) -> Vec<Step> {
    let mut builder = Builder {
        disk_check,
        servers,
        graph: DiGraph::new(),
        by_id: BTreeMap::new(),
        ready: BTreeMap::new(),
        removals: BTreeMap::new(),
        joined: BTreeMap::new(),
        application,
    };
    for change in changes {
        builder.build_change(change, recorded_versions);
    }
    builder.hand_over_backups();
    builder.remove_followers_first(upstreams);
    if let Some(change) = env_change {
        // Last: after every step whose outcome changes addresses, and after
        // everything else too, so the variables are written for servers
        // that are ready (depending on every sink covers all of them).
        let deps: Vec<Option<NodeIndex>> = builder
            .graph
            .node_indices()
            .filter(|&n| {
                builder
                    .graph
                    .neighbors_directed(n, petgraph::Direction::Outgoing)
                    .next()
                    .is_none()
            })
            .map(Some)
            .collect();
        builder.add(
            format!("env:{application}"),
            StepKind::UpdateEnvironment,
            change,
            &deps,
        );
    }
    assert!(
        !petgraph::algo::is_cyclic_directed(&builder.graph),
        "the step graph has a cycle: a planner bug"
    );
    ordered(builder.graph)
}

/// Orders steps by wave (the longest chain of dependencies before them),
/// then by the order they were added, so the same changes always give the
/// same order and steps that can run together are listed together.
fn ordered(graph: DiGraph<Step, ()>) -> Vec<Step> {
    let topological = petgraph::algo::toposort(&graph, None).unwrap_or_default();
    let mut wave: BTreeMap<NodeIndex, usize> = BTreeMap::new();
    for &node in &topological {
        let level = graph
            .neighbors_directed(node, petgraph::Direction::Incoming)
            .filter_map(|dep| wave.get(&dep))
            .max()
            .map_or(0, |w| w + 1);
        wave.insert(node, level);
    }
    let mut order: Vec<NodeIndex> = graph.node_indices().collect();
    order.sort_by_key(|node| (wave[node], *node));
    order
        .into_iter()
        .map(|node| {
            let mut step = graph[node].clone();
            let mut deps: Vec<NodeIndex> = graph
                .neighbors_directed(node, petgraph::Direction::Incoming)
                .collect();
            deps.sort();
            deps.dedup();
            step.depends_on = deps.into_iter().map(|d| graph[d].id.clone()).collect();
            step
        })
        .collect()
}

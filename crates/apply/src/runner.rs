//! One step on real servers. Steps only read the state they are given; what
//! they learn comes back as an [`Effect`], which the executor records.

use std::collections::BTreeMap;
use std::sync::Arc;

use dbgroups_engines::engine::{
    Certificate, Copy, DatabaseEngine, FollowRequest, GroupAccess, Operation, Peer, ServerRef,
    Surroundings,
};
use dbgroups_engines::{EngineError, HostRef, engine_for};
use dbgroups_manifest::Engine;
use dbgroups_plan::rules::BackupMethod;
use dbgroups_plan::{BackupRef, GroupAddress, ManagedSeed, Step, StepKind};
use dbgroups_state::{AppState, Authority, GroupState, ServerState};

use crate::hosts::HostSet;
use crate::servers::{group_access, server_ref, upstream_of};

/// What a finished step taught us, for the state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Effect {
    Provisioned {
        group: GroupAddress,
        server: String,
        master: bool,
        port: u16,
        /// When the certificate it was given expires, on a host.
        certificate_expires: Option<u64>,
        /// Who manages the host it is on, and the address peers dial.
        provider: dbgroups_manifest::ProviderKind,
        address: String,
    },
    /// The server now holds a copy of `source` (application, group).
    /// `accounts_copied` when the copy carried the source's accounts (its
    /// engine says which copies do).
    Restored {
        server: String,
        source: (String, GroupAddress),
        accounts_copied: bool,
        /// The database the data now lives in, when a logical copy kept
        /// the source's database name (the MySQL family: its replication
        /// events name the database).
        database: Option<String>,
    },
    /// The server follows `master` in `application`.
    Enslaved {
        server: String,
        application: String,
        master: String,
        /// The port a pending server moved to when the one provision chose
        /// was taken before its first start.
        moved_to: Option<u16>,
    },
    Detached {
        server: String,
    },
    Removed {
        server: String,
    },
    /// The group's servers let in these client networks.
    Allowed {
        group: GroupAddress,
        networks: Vec<String>,
    },
    /// The server serves a new certificate, which expires then.
    Certified {
        server: String,
        expires: u64,
    },
    Nothing,
}

/// What a step may read.
#[derive(Clone)]
pub(crate) struct StepContext {
    /// Check free space before backups and restores.
    pub(crate) disk_check: bool,
    /// Names this apply's staging area: a backup taken by an earlier apply
    /// is never mistaken for this one's.
    pub(crate) staging_prefix: String,
    /// The hosts the servers live on, behind the host interface.
    pub(crate) hosts: Arc<HostSet>,
    pub(crate) state: AppState,
    /// The state the plan expects after it: what it declared of servers
    /// not yet recorded (their `public_address`).
    pub(crate) expected: Arc<AppState>,
    pub(crate) others: Arc<BTreeMap<String, AppState>>,
}

/// A recorded server as a step addresses it: its engine, where it is, and
/// its group.
struct Located<'a> {
    engine: &'static dyn DatabaseEngine,
    server: ServerRef,
    group: &'a GroupState,
    application: String,
}

impl Located<'_> {
    /// The group's access for `operation`: only the secrets its engine
    /// declared for it.
    fn access(&self, ctx: &StepContext, operation: Operation) -> Result<GroupAccess, EngineError> {
        ctx.access(&self.application, self.group, self.engine, operation)
    }
}

/// What a step found missing from the recorded state.
fn missing(what: String) -> EngineError {
    EngineError::StateMismatch(what)
}

impl StepContext {
    fn application_state(&self, application: &str) -> Option<&AppState> {
        if application == self.state.application {
            Some(&self.state)
        } else {
            self.others.get(application)
        }
    }

    /// A recorded server (or one this application's apply has provisioned
    /// and not yet finished), its group and its application.
    fn find(
        &self,
        application: &str,
        server: &str,
    ) -> Result<(&GroupState, &ServerState), EngineError> {
        let state = self.application_state(application);
        let recorded = state.and_then(|s| s.server(server));
        let pending = || {
            let state = state?;
            let pending = state.journal.as_ref()?.pending.get(server)?;
            let group = state.groups.iter().find(|g| g.address() == pending.group)?;
            Some((group, &pending.server))
        };
        recorded
            .or_else(pending)
            .ok_or_else(|| missing(format!("{application}/{server} is not recorded")))
    }

    /// The host a recorded server lives on.
    fn host_of(&self, server: &ServerState) -> HostRef {
        self.hosts.of(&server.unique_name)
    }

    /// The certificate authority of `application`, if it has one.
    fn authority_of(&self, application: &str) -> Option<&Authority> {
        self.application_state(application)?.authority.as_ref()
    }

    fn locate(&self, application: &str, name: &str) -> Result<Located<'_>, EngineError> {
        let (group, server) = self.find(application, name)?;
        let server = server_ref(
            &self.host_of(server),
            group,
            server,
            self.authority_of(application),
        )
        .ok_or_else(|| missing(format!("{name} has no recorded port")))?;
        Ok(Located {
            engine: engine_for(group.db_type),
            server,
            group,
            application: application.to_string(),
        })
    }

    fn access(
        &self,
        application: &str,
        group: &GroupState,
        engine: &dyn DatabaseEngine,
        operation: Operation,
    ) -> Result<GroupAccess, EngineError> {
        let credentials = self
            .application_state(application)
            .and_then(|s| s.credentials.get(&group.address()))
            .ok_or_else(|| {
                missing(format!(
                    "no credentials recorded for {application}/{}",
                    group.address()
                ))
            })?;
        Ok(group_access(application, &group.name, credentials).only(engine.secrets_for(operation)))
    }

    /// The server `located` streams from, and its group's members.
    fn surroundings(
        &self,
        located: &Located<'_>,
        operation: Operation,
    ) -> Result<Surroundings, EngineError> {
        let upstream = upstream_of(
            &located.application,
            located.group,
            &located.server.name,
            |application| self.application_state(application),
        );
        let upstream = match upstream {
            Some((owner, group, master)) => {
                match server_ref(
                    &self.host_of(master),
                    group,
                    master,
                    self.authority_of(&owner),
                ) {
                    Some(server) => Some(Peer {
                        server,
                        access: self.access(&owner, group, located.engine, operation)?,
                    }),
                    None => None,
                }
            }
            None => None,
        };
        Ok(Surroundings {
            upstream,
            members: self.members(located.group, ""),
        })
    }

    /// The recorded members of a group with a port, but `except`.
    fn members(&self, group: &GroupState, except: &str) -> Vec<ServerRef> {
        group
            .servers
            .iter()
            .filter(|s| s.unique_name != except)
            .filter_map(|s| server_ref(&self.host_of(s), group, s, self.state.authority.as_ref()))
            .collect()
    }

    /// Backups are staged on `host` under a directory named after this
    /// apply and the location the plan gives them.
    fn staging(&self, host: &HostRef, location: &str) -> std::path::PathBuf {
        host.staging_dir(&format!("{}-{location}", self.staging_prefix))
    }

    /// The connected host a plan names.
    fn host_named(&self, name: &str) -> Result<HostRef, EngineError> {
        self.hosts
            .named(name)
            .ok_or_else(|| missing(format!("the plan names host {name}, which no server is on")))
    }

    /// Lets `peer`'s servers reach `server` (replication, a backup taken
    /// there), where that is another host.
    async fn admit(&self, server: &Located<'_>, peer: &HostRef) -> Result<(), EngineError> {
        if dbgroups_engines::host::same_host(&server.server.host, peer) {
            return Ok(());
        }
        let access = server.access(self, Operation::Admit)?;
        let _one_at_a_time = self.hosts.changing_rules().await;
        server.engine.admit(&server.server, &access, peer).await
    }

    /// Refuses unless `place` on `host` has room for twice `size` bytes.
    async fn ensure_room(
        &self,
        host: &HostRef,
        what: &str,
        place: &std::path::Path,
        size: u64,
    ) -> Result<(), EngineError> {
        dbgroups_engines::disk::ensure_room_on(host, what, place, size).await
    }
}

/// How the engines call a backup method.
fn copy_of(method: BackupMethod) -> Copy {
    match method {
        BackupMethod::Physical => Copy::Physical,
        BackupMethod::Logical => Copy::Logical,
    }
}

/// How many ports a new server's provision tries before it gives up.
const PORT_ATTEMPTS: u32 = 5;

/// Carries out one step: a dispatcher, each kind in its own function.
pub(crate) async fn run_step(step: Step, ctx: StepContext) -> Result<Effect, EngineError> {
    match step.kind {
        StepKind::Provision {
            group,
            server,
            engine,
            version,
            master,
        } => provision_step(&ctx, group, server, engine, version, master).await,
        StepKind::Backup {
            group,
            method,
            host,
            location,
            managed: Some(managed),
            ..
        } => fetch_step(&ctx, &host, &location, &group, &managed, method).await,
        StepKind::Backup {
            server,
            method,
            host,
            location,
            managed: None,
            ..
        } => backup_step(&ctx, &host, &location, server, method).await,
        StepKind::Restore {
            server,
            backup,
            takes_backup,
            ..
        } => restore_step(&ctx, server, backup, takes_backup).await,
        StepKind::Enslave {
            server,
            master,
            master_application,
            resync,
            non_voting,
            from_backup,
        } => {
            let follow = Follow {
                server,
                master,
                master_application,
                resync,
                voting: !non_voting,
                from_backup,
            };
            enslave_step(&ctx, follow).await
        }
        StepKind::Detach {
            server,
            master,
            master_application,
        } => detach_step(&ctx, server, master, master_application).await,
        StepKind::Remove { server } => remove_step(&ctx, server).await,
        StepKind::Start { server } => start_step(&ctx, server).await,
        StepKind::DiskCheck {
            server,
            master_application,
            method,
            destinations,
            backup,
            ..
        } => {
            disk_check_step(
                &ctx,
                server,
                master_application,
                method,
                destinations,
                backup,
            )
            .await
        }
        StepKind::Allow {
            group,
            servers,
            networks,
            ..
        } => allow_step(&ctx, group, servers, networks).await,
        StepKind::Certify { server, .. } => certify_step(&ctx, server).await,
        // Written by the executor, which owns the state it is made from.
        StepKind::UpdateEnvironment => Ok(Effect::Nothing),
    }
}

/// A new server on a free port (another one if the first is taken before
/// the server binds it), replication-ready, with the group's accounts.
async fn provision_step(
    ctx: &StepContext,
    group: GroupAddress,
    server: String,
    engine: Engine,
    version: String,
    master: bool,
) -> Result<Effect, EngineError> {
    let application = ctx.state.application.clone();
    let database = engine_for(group.db_type);
    let credentials = ctx
        .state
        .credentials
        .get(&group.to_string())
        .ok_or_else(|| missing(format!("no credentials prepared for {group}")))?;
    let access = group_access(&application, &group.name, credentials)
        .only(database.secrets_for(Operation::Provision));
    // A re-run keeps the port an interrupted one chose.
    let pending_port = ctx
        .state
        .journal
        .as_ref()
        .and_then(|j| j.pending.get(&server))
        .and_then(|p| p.server.port);
    let host = ctx.hosts.of(&server);
    // On an ssh host the engine's packages are installed when missing
    // (this machine's host installs nothing).
    host.ensure_packages(&database.packages(engine, &version))
        .await?;
    let earlier = database.earlier_port(&host, &server).await;
    // A new group's networks come with its own allow step, after this.
    let allow_from = ctx
        .state
        .group(group.db_type, &group.name)
        .map(|g| g.allow_from.clone())
        .unwrap_or_default();
    let exposure = crate::servers::exposure(&host, &allow_from, ctx.state.authority.as_ref())
        .filter(|_| database.serves_tls());
    let certificate = match (&exposure, &ctx.state.authority) {
        (Some(_), Some(authority)) => Some(issue_certificate(
            authority,
            &host,
            &server,
            &public_names(ctx, &server),
        )?),
        _ => None,
    };
    let mut target = ServerRef {
        host: host.clone(),
        name: server.clone(),
        engine,
        version,
        port: 0,
        exposure,
    };
    let certificate_expires = certificate.as_ref().map(|(_, expires)| *expires);
    let provisioned = |port| Effect::Provisioned {
        group: group.clone(),
        server: server.clone(),
        master,
        port,
        certificate_expires,
        provider: host.provider(),
        address: host.dial_address(),
    };
    // Before the first start: a server on a host starts with TLS on.
    let secure = async |target: &ServerRef| -> Result<(), EngineError> {
        if let Some((certificate, _)) = &certificate {
            let access = group_access(&application, &group.name, credentials)
                .only(database.secrets_for(Operation::Secure));
            database
                .install_certificate(target, &access, certificate)
                .await?;
        }
        Ok(())
    };
    if let Some(port) = earlier.or(pending_port) {
        target.port = port;
        secure(&target).await?;
        database.provision(&target, &access, master).await?;
        return Ok(provisioned(port));
    }
    // A port checked free can be taken before the new server binds it
    // (another server starting on this host, or any client's outgoing
    // connection). Nothing is recorded of a server until it is
    // provisioned, so a start that finds its port taken is made again,
    // from nothing, on another.
    let mut attempt = 1;
    loop {
        target.port = host.choose_port(database.default_port()).await?;
        let _taken = crate::crash::take_first_port(&server, attempt, target.port);
        secure(&target).await?;
        match database.provision(&target, &access, master).await {
            Err(err) if err.is_address_in_use() && attempt < PORT_ATTEMPTS => {
                host.remove_dir(&host.server_dir(&server)).await?;
                attempt += 1;
            }
            Err(err) => return Err(err),
            Ok(()) => return Ok(provisioned(target.port)),
        }
    }
}

/// A full backup of a master into this apply's staging area on the host
/// that receives it (`host`, as the plan names it), reused when an
/// interrupted apply already finished it.
async fn backup_step(
    ctx: &StepContext,
    host: &str,
    location: &str,
    server: String,
    method: BackupMethod,
) -> Result<Effect, EngineError> {
    let source = ctx.locate(&application_of(ctx, &server), &server)?;
    let into = ctx.host_named(host)?;
    let staging = ctx.staging(&into, location);
    let copy = copy_of(method);
    // A backup this apply finished before a crash is reused; only a new
    // one needs room.
    if ctx.disk_check
        && !source
            .engine
            .backup_is_complete(&into, &staging, copy)
            .await
    {
        let access = source.access(ctx, Operation::MeasureData)?;
        let size = source
            .engine
            .data_size(&source.server, &access, copy)
            .await?;
        ctx.ensure_room(&into, "the backup", &staging, size).await?;
    }
    ctx.admit(&source, &into).await?;
    let access = source.access(ctx, Operation::Backup)?;
    source
        .engine
        .backup(&source.server, &access, copy, &into, &staging)
        .await?;
    Ok(Effect::Nothing)
}

/// A recorded managed backup of `group` (an import's), unpacked from its
/// store on `host` into the staging area as the copy the restore reads.
async fn fetch_step(
    ctx: &StepContext,
    host: &str,
    location: &str,
    group: &GroupAddress,
    managed: &ManagedSeed,
    method: BackupMethod,
) -> Result<Effect, EngineError> {
    let into = ctx.host_named(host)?;
    let staging = ctx.staging(&into, location);
    let id = managed.id.as_str();
    let source = ctx.application_state(&managed.application).ok_or_else(|| {
        missing(format!(
            "application {}, whose {group}'s managed backup {id} is imported",
            managed.application
        ))
    })?;
    if ctx.disk_check {
        let size = source
            .backups
            .iter()
            .find(|r| r.id == id)
            .map_or(0, |r| r.size_bytes);
        ctx.ensure_room(&into, "the managed backup's copy", &staging, size)
            .await?;
    }
    crate::backups::unpack_for_import(
        &into,
        source,
        id,
        copy_of(method),
        &staging,
        &ctx.state.application,
    )
    .await?;
    Ok(Effect::Nothing)
}

/// A staged backup onto a server, moved rather than copied by its last
/// reader.
async fn restore_step(
    ctx: &StepContext,
    server: String,
    backup: BackupRef,
    takes_backup: bool,
) -> Result<Effect, EngineError> {
    let target = ctx.locate(&ctx.state.application, &server)?;
    let host = target.server.host.clone();
    let staging = ctx.staging(&host, &backup.location);
    if ctx.disk_check {
        let size = host.size_of(&staging).await;
        ctx.ensure_room(&host, "the restore", &host.server_dir(&server), size)
            .await?;
    }
    let copy = copy_of(backup.method);
    let access = target.access(ctx, Operation::Restore)?;
    let source_database = source_database(ctx, &backup)?;
    let restored = target
        .engine
        .restore(
            &target.server,
            &access,
            &staging,
            copy,
            takes_backup,
            &source_database,
        )
        .await?;
    Ok(Effect::Restored {
        server,
        source: (
            backup.source.application.clone(),
            backup.source.group.clone(),
        ),
        accounts_copied: target.engine.copy_carries_accounts(copy),
        database: restored.database,
    })
}

/// What an enslave step asks.
struct Follow {
    server: String,
    master: String,
    master_application: String,
    resync: bool,
    voting: bool,
    /// The dump restored on the server just before, if any.
    from_backup: Option<BackupRef>,
}

/// The server follows its master; done only once it does. A new server
/// of an engine that binds its port only here (a PostgreSQL slave, at its
/// first start, perhaps long after provision chose the port) moves to
/// another port when that one was taken meanwhile, while it is pending.
async fn enslave_step(ctx: &StepContext, follow: Follow) -> Result<Effect, EngineError> {
    let replica = ctx.locate(&ctx.state.application, &follow.server)?;
    let source = ctx.locate(&follow.master_application, &follow.master)?;
    let replica_access = replica.access(ctx, Operation::Follow)?;
    let source_access = source.access(ctx, Operation::Follow)?;
    if ctx.disk_check && replica.engine.follow_copies_data() {
        let measure = source.access(ctx, Operation::MeasureData)?;
        let size = source
            .engine
            .data_size(&source.server, &measure, Copy::Physical)
            .await?;
        let host = &replica.server.host;
        ctx.ensure_room(
            host,
            "the full sync",
            &host.server_dir(&follow.server),
            size,
        )
        .await?;
    }
    ctx.admit(&source, &replica.server.host).await?;
    let restored_from = follow
        .from_backup
        .as_ref()
        .map(|b| ctx.staging(&replica.server.host, &b.location));
    let source_members = ctx.members(source.group, &follow.server);
    let pending = ctx
        .state
        .journal
        .as_ref()
        .is_some_and(|j| j.pending.contains_key(&follow.server));
    let mut target = replica.server.clone();
    let mut moved_to = None;
    // An apply that moved the port and crashed before recording it left
    // the new one in the server's config.
    if pending
        && let Some(configured) = replica
            .engine
            .earlier_port(&replica.server.host, &follow.server)
            .await
        && configured != target.port
    {
        target = target.on_port(configured);
        moved_to = Some(configured);
    }
    let mut attempt = 1;
    loop {
        let _taken = pending
            .then(|| crate::crash::take_first_port(&follow.server, attempt, target.port))
            .flatten();
        let request = FollowRequest {
            replica: &target,
            replica_access: &replica_access,
            source: &source.server,
            source_access: &source_access,
            source_members: &source_members,
            restored_from: restored_from.as_deref(),
            resync: follow.resync,
            voting: follow.voting,
        };
        match replica.engine.follow(request).await {
            Err(err) if pending && err.is_address_in_use() && attempt < PORT_ATTEMPTS => {
                let port = replica
                    .server
                    .host
                    .choose_port(replica.engine.default_port())
                    .await?;
                target = target.on_port(port);
                moved_to = Some(port);
                attempt += 1;
            }
            result => break result?,
        }
    }
    Ok(Effect::Enslaved {
        server: follow.server,
        application: follow.master_application,
        master: follow.master,
        moved_to,
    })
}

/// The server stops following and accepts writes; its old master is
/// cleaned up (slot, user) when still recorded.
async fn detach_step(
    ctx: &StepContext,
    server: String,
    master: Option<String>,
    master_application: String,
) -> Result<Effect, EngineError> {
    let replica = ctx.locate(&ctx.state.application, &server)?;
    let access = replica.access(ctx, Operation::Detach)?;
    let old_source = match &master {
        Some(master) => match ctx.locate(&master_application, master) {
            Ok(old) => Some(Peer {
                access: old.access(ctx, Operation::Detach)?,
                server: old.server,
            }),
            Err(_) => None,
        },
        None => None,
    };
    replica
        .engine
        .detach(&replica.server, &access, old_source.as_ref())
        .await?;
    Ok(Effect::Detached { server })
}

/// The server is stopped, its traces on its upstream dropped, and its
/// directory deleted.
async fn remove_step(ctx: &StepContext, server: String) -> Result<Effect, EngineError> {
    let target = ctx.locate(&ctx.state.application, &server)?;
    let access = target.access(ctx, Operation::Remove)?;
    let around = ctx.surroundings(&target, Operation::Remove)?;
    target
        .engine
        .remove(&target.server, &access, &around)
        .await?;
    let host = &target.server.host;
    host.forget_server(&server).await?;
    host.remove_dir(&host.server_dir(&server)).await?;
    Ok(Effect::Removed { server })
}

/// The server runs again; a replica's start is done only once it follows
/// its master again: a process that runs but cannot stream (its slot was
/// dropped, say) fails the step with the reason.
async fn start_step(ctx: &StepContext, server: String) -> Result<Effect, EngineError> {
    let target = ctx.locate(&ctx.state.application, &server)?;
    let access = target.access(ctx, Operation::Start)?;
    let around = ctx.surroundings(&target, Operation::Start)?;
    target
        .engine
        .start(&target.server, &access, &around)
        .await?;
    Ok(Effect::Nothing)
}

/// Room for twice the data to copy, checked before anything of the
/// seeding it guards is built.
async fn disk_check_step(
    ctx: &StepContext,
    server: String,
    master_application: String,
    method: BackupMethod,
    destinations: Vec<String>,
    backup: Option<BackupRef>,
) -> Result<Effect, EngineError> {
    let source = ctx.locate(&master_application, &server)?;
    let access = source.access(ctx, Operation::MeasureData)?;
    let copy = copy_of(method);
    let size = source
        .engine
        .data_size(&source.server, &access, copy)
        .await?;
    // A staged check names the backup whose landing place it checks.
    let staged = backup.is_some();
    if let Some(backup) = &backup {
        let host = &ctx.host_named(&backup.host)?;
        let staging = ctx.staging(host, &backup.location);
        if !source.engine.backup_is_complete(host, &staging, copy).await {
            ctx.ensure_room(host, "the backup", &staging, size).await?;
        }
    }
    let what = if staged {
        "the restore"
    } else {
        "the full sync"
    };
    for destination in destinations {
        let host = ctx.hosts.of(&destination);
        ctx.ensure_room(&host, what, &host.server_dir(&destination), size)
            .await?;
    }
    Ok(Effect::Nothing)
}

/// The application a server is recorded in (this one first).
fn application_of(ctx: &StepContext, server: &str) -> String {
    if ctx.state.server(server).is_some() {
        return ctx.state.application.clone();
    }
    ctx.others
        .iter()
        .find(|(_, s)| s.server(server).is_some())
        .map_or_else(|| ctx.state.application.clone(), |(app, _)| app.clone())
}

/// The database a backup step copied, as its group records it.
fn source_database(ctx: &StepContext, backup: &BackupRef) -> Result<String, EngineError> {
    let source = &backup.source;
    ctx.application_state(&source.application)
        .and_then(|s| s.credentials.get(&source.group.to_string()))
        .map(|c| c.database.clone())
        .ok_or_else(|| missing(format!("no credentials recorded for {}", source.group)))
}

/// A certificate for `server` on `host`, for the addresses clients and
/// replicas dial it at, and when it expires.
/// The names a server's certificate carries besides its host's
/// addresses: its `public_address`, recorded with it (or with the plan's
/// pending server), which clients outside dial.
fn public_names(ctx: &StepContext, server: &str) -> Vec<String> {
    let recorded = ctx
        .state
        .server(server)
        .or_else(|| ctx.expected.server(server))
        .map(|(_, s)| s);
    recorded
        .and_then(|s| s.provider_data.get("public_address"))
        .cloned()
        .into_iter()
        .collect()
}

fn issue_certificate(
    authority: &Authority,
    host: &HostRef,
    server: &str,
    public: &[String],
) -> Result<(Certificate, u64), EngineError> {
    let mut names = vec![host.dial_address()];
    names.extend(host.listen_addresses().iter().map(ToString::to_string));
    names.extend(public.iter().cloned());
    let issued = dbgroups_tls::issue(
        &authority.certificate,
        authority.key.expose(),
        server,
        &names,
        std::time::SystemTime::now(),
    )
    .map_err(|error| EngineError::Command {
        command: format!("a certificate for {server}"),
        status: "failed".into(),
        stderr: error.to_string(),
    })?;
    Ok((
        Certificate {
            certificate: issued.certificate_pem,
            key: issued.key_pem,
        },
        issued.expires,
    ))
}

/// A new certificate for `server` from its application's authority,
/// installed and reloaded by its engine (no restart). Issued afresh on
/// every run: an interrupted renewal issues another, which is as good.
async fn certify_step(ctx: &StepContext, server: String) -> Result<Effect, EngineError> {
    let application = ctx.state.application.clone();
    let located = ctx.locate(&application, &server)?;
    let authority = ctx.state.authority.as_ref().ok_or_else(|| {
        missing(format!(
            "application {application} has no certificate authority to renew {server}'s certificate from"
        ))
    })?;
    let (certificate, expires) = issue_certificate(
        authority,
        &located.server.host,
        &server,
        &public_names(ctx, &server),
    )?;
    let access = located.access(ctx, Operation::Secure)?;
    located
        .engine
        .install_certificate(&located.server, &access, &certificate)
        .await?;
    Ok(Effect::Certified { server, expires })
}

/// The group's servers on hosts let in exactly `networks`, one by one.
async fn allow_step(
    ctx: &StepContext,
    group: GroupAddress,
    servers: Vec<String>,
    networks: Vec<String>,
) -> Result<Effect, EngineError> {
    let application = ctx.state.application.clone();
    for server in &servers {
        let located = ctx.locate(&application, server)?;
        let access = located.access(ctx, Operation::Secure)?;
        located
            .engine
            .allow(&located.server, &access, &networks)
            .await?;
    }
    Ok(Effect::Allowed { group, networks })
}

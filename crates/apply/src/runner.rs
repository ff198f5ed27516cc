//! One step on real servers. Steps only read the state they are given; what
//! they learn comes back as an [`Effect`], which the executor records.

use std::collections::BTreeMap;
use std::sync::Arc;

use dbgroups_engines::{
    EngineError, LocalHost, MongoServer, MysqlServer, PostgresServer, RedisServer, free_port,
};
use dbgroups_manifest::{DbType, Engine};
use dbgroups_plan::rules::BackupMethod;
use dbgroups_plan::{GroupAddress, Step, StepKind};
use dbgroups_state::{AppState, Credentials, GroupState, ServerState};

/// What a finished step taught us, for the state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Effect {
    Provisioned {
        group: GroupAddress,
        server: String,
        master: bool,
        port: u16,
    },
    /// The server now holds a copy of `source` (application, group).
    /// `physical` when its data files (and so its roles) were copied.
    Restored {
        server: String,
        source: (String, GroupAddress),
        physical: bool,
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
    pub(crate) provider: LocalHost,
    /// The same machine behind the host interface.
    pub(crate) host: dbgroups_engines::HostRef,
    pub(crate) state: AppState,
    pub(crate) others: Arc<BTreeMap<String, AppState>>,
}

/// A server of either engine that is live today.
enum Server {
    Postgres(PostgresServer),
    Redis(RedisServer),
    Mysql(MysqlServer),
    Mongodb(MongoServer),
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

    fn credentials(
        &self,
        application: &str,
        group: &GroupState,
    ) -> Result<&Credentials, EngineError> {
        self.application_state(application)
            .and_then(|s| s.credentials.get(&group.address()))
            .ok_or_else(|| {
                missing(format!(
                    "no credentials recorded for {application}/{}",
                    group.address()
                ))
            })
    }

    async fn server(
        &self,
        engine: Engine,
        name: &str,
        version: &str,
        port: u16,
    ) -> Result<Server, EngineError> {
        match engine.db_type() {
            DbType::Mysql => Ok(Server::Mysql(
                MysqlServer::new(&self.host, engine, version, name, port).await?,
            )),
            DbType::Postgresql => Ok(Server::Postgres(
                PostgresServer::new(&self.host, name, version, port).await?,
            )),
            DbType::Redis => Ok(Server::Redis(
                RedisServer::new(&self.host, name, port).await?,
            )),
            DbType::Mongodb => Ok(Server::Mongodb(
                MongoServer::new(&self.host, name, version, port).await?,
            )),
        }
    }

    async fn recorded_server(
        &self,
        application: &str,
        name: &str,
    ) -> Result<(Server, &GroupState), EngineError> {
        let (group, server) = self.find(application, name)?;
        let port = server
            .port
            .ok_or_else(|| missing(format!("{name} has no recorded port")))?;
        Ok((
            self.server(group.engine, name, &group.version, port)
                .await?,
            group,
        ))
    }
}

/// A group's secrets by name, with a clear error when one is missing.
fn admin_password(credentials: &Credentials) -> Result<String, EngineError> {
    secret(credentials.admin_password.as_ref(), "admin password")
}

fn app_password(credentials: &Credentials) -> Result<String, EngineError> {
    secret(credentials.password.as_ref(), "password")
}

fn replication_password(credentials: &Credentials) -> Result<String, EngineError> {
    secret(
        credentials.replication_password.as_ref(),
        "replication password",
    )
}

fn secret(value: Option<&dbgroups_state::Secret>, what: &str) -> Result<String, EngineError> {
    value
        .map(|s| s.expose().to_string())
        .ok_or_else(|| missing(format!("no {what} recorded")))
}

/// What a provision step makes.
#[derive(Clone, Copy)]
struct NewServer<'a> {
    group: &'a GroupAddress,
    server: &'a str,
    engine: Engine,
    version: &'a str,
    master: bool,
}

/// Makes `new` listen on `port`.
async fn provision(
    ctx: &StepContext,
    application: &str,
    credentials: &Credentials,
    new: NewServer<'_>,
    port: u16,
) -> Result<Effect, EngineError> {
    let NewServer {
        group,
        server,
        engine,
        version,
        master,
    } = new;
    match ctx.server(engine, server, version, port).await? {
        // A slave's data comes from its restore; only a master is
        // initialised and given the accounts.
        Server::Postgres(pg) if master => {
            let admin = admin_password(credentials)?;
            pg.ensure_initialised(&admin).await?;
            pg.ensure_running().await?;
            pg.ensure_accounts(
                &admin,
                &credentials.username,
                &app_password(credentials)?,
                &credentials.database,
                &replication_password(credentials)?,
            )
            .await?;
        }
        Server::Postgres(_) => {
            ctx.provider.private_dir(&ctx.provider.server_dir(server))?;
        }
        Server::Redis(redis) => {
            redis
                .ensure_provisioned(&app_password(credentials)?)
                .await?;
        }
        // Every member shares the keyfile (the group's replication
        // secret); the first initiates the set and makes the users,
        // the others join it in their enslave step.
        Server::Mongodb(mongo) => {
            let set = dbgroups_plan::env::replica_set_name(application, &group.name);
            let keyfile = replication_password(credentials)?;
            if master {
                mongo
                    .ensure_primary(
                        &set,
                        &keyfile,
                        &admin_password(credentials)?,
                        &dbgroups_engines::mongodb::AppUser {
                            username: &credentials.username,
                            password: &app_password(credentials)?,
                            database: &credentials.database,
                            home: credentials.account_database(),
                        },
                    )
                    .await?;
            } else {
                mongo.ensure_member_started(&set, &keyfile).await?;
            }
        }
        // A logical dump is loaded into a running server, so a
        // MariaDB slave is provisioned in full, accounts included.
        Server::Mysql(mariadb) => {
            mariadb
                .ensure_provisioned(
                    &admin_password(credentials)?,
                    &credentials.username,
                    &app_password(credentials)?,
                    &credentials.database,
                    &replication_password(credentials)?,
                )
                .await?;
        }
    }
    Ok(Effect::Provisioned {
        group: group.clone(),
        server: server.to_string(),
        master,
        port,
    })
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
        StepKind::Backup { server, method, .. } => {
            backup_step(&ctx, &step.id, server, method).await
        }
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
        } => enslave_step(&ctx, server, master, master_application, resync, non_voting).await,
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
            staged,
            destinations,
            ..
        } => {
            disk_check_step(
                &ctx,
                server,
                master_application,
                method,
                staged,
                destinations,
            )
            .await
        }
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
    // A re-run keeps the port an interrupted one chose.
    let pending_port = ctx
        .state
        .journal
        .as_ref()
        .and_then(|j| j.pending.get(&server))
        .and_then(|p| p.server.port);
    let port = match group.db_type {
        DbType::Postgresql => PostgresServer::earlier_port(&ctx.host, &server),
        DbType::Redis => RedisServer::earlier_port(&ctx.host, &server),
        DbType::Mysql => MysqlServer::earlier_port(&ctx.host, &server),
        DbType::Mongodb => MongoServer::earlier_port(&ctx.host, &server),
    }
    .or(pending_port);
    let credentials = ctx
        .state
        .credentials
        .get(&group.to_string())
        .ok_or_else(|| missing(format!("no credentials prepared for {group}")))?;
    let new = NewServer {
        group: &group,
        server: &server,
        engine,
        version: &version,
        master,
    };
    let Some(port) = port else {
        // A port checked free can be taken before the new server
        // binds it (another server starting on this host, or any
        // client's outgoing connection). Nothing is recorded of a
        // server until it is provisioned, so a start that finds
        // its port taken is made again, from nothing, on another.
        let mut attempt = 1;
        loop {
            let port = free_port()?;
            let _taken = crate::crash::take_first_port(&server, attempt, port);
            match provision(ctx, &application, credentials, new, port).await {
                Err(err) if err.is_address_in_use() && attempt < PORT_ATTEMPTS => {
                    ctx.provider.discard_unrecorded_server(&server)?;
                    attempt += 1;
                }
                result => return result,
            }
        }
    };
    provision(ctx, &application, credentials, new, port).await
}

/// A full backup of a master into this apply's staging area, reused when
/// an interrupted apply already finished it.
async fn backup_step(
    ctx: &StepContext,
    step_id: &str,
    server: String,
    method: BackupMethod,
) -> Result<Effect, EngineError> {
    let (engine, group) = ctx
        .recorded_server(&application_of(ctx, &server), &server)
        .await?;
    let owner = application_of(ctx, &server);
    let credentials = ctx.credentials(&owner, group)?;
    let staging = ctx.provider.staging_dir(&ctx.staging_name(step_id));
    // A backup this apply finished before a crash is reused; only a
    // new one needs room.
    if !backup_complete(&staging) {
        check_backup_room(ctx, &engine, credentials, method, &staging).await?;
    }
    match (engine, method) {
        (Server::Mysql(mariadb), _) => {
            mariadb
                .dump_to(
                    &staging,
                    &admin_password(credentials)?,
                    &credentials.database,
                )
                .await?
        }
        (Server::Postgres(pg), BackupMethod::Physical) => {
            pg.backup_to(&staging, &replication_password(credentials)?)
                .await?
        }
        (Server::Redis(redis), _) => {
            redis
                .backup_to(&staging, &app_password(credentials)?)
                .await?
        }
        (Server::Postgres(pg), BackupMethod::Logical) => {
            pg.dump_to(
                &staging,
                &admin_password(credentials)?,
                &credentials.database,
            )
            .await?
        }
        (Server::Mongodb(mongo), _) => {
            mongo
                .dump_to(&staging, &admin_password(credentials)?)
                .await?
        }
    }
    Ok(Effect::Nothing)
}

/// A staged backup onto a server, moved rather than copied by its last
/// reader.
async fn restore_step(
    ctx: &StepContext,
    server: String,
    backup: String,
    takes_backup: bool,
) -> Result<Effect, EngineError> {
    let application = ctx.state.application.clone();
    let (engine, group) = ctx.recorded_server(&application, &server).await?;
    let staging = ctx.provider.staging_dir(&ctx.staging_name(&backup));
    check_restore_room(ctx, &staging, &server)?;
    let credentials = ctx.credentials(&application, group)?;
    let mut restored_database = None;
    match engine {
        // A logical dump (an import) goes into the running server's
        // own database; a physical backup replaces its data files.
        Server::Postgres(pg) if backup.starts_with(BackupMethod::Logical.step_prefix()) => {
            pg.restore_dump(
                &staging,
                &admin_password(credentials)?,
                &credentials.username,
                &credentials.database,
            )
            .await?
        }
        Server::Postgres(pg) => pg.restore_from(&staging, takes_backup).await?,
        // The dump recreates the source's database under its own
        // name (replication events name it); the group's user is
        // given it.
        Server::Mysql(mysql) => {
            let admin = admin_password(credentials)?;
            mysql.restore_dump(&staging, &admin).await?;
            let source_database = source_database(ctx, &backup)?;
            if source_database != credentials.database {
                mysql
                    .grant_database(&admin, &credentials.username, &source_database)
                    .await?;
            }
            restored_database = Some(source_database);
        }
        Server::Redis(redis) => {
            redis
                .restore_from(&staging, &app_password(credentials)?, takes_backup)
                .await?
        }
        // Like the MySQL family: the copy keeps the source's
        // database name, and the group's user is given it.
        Server::Mongodb(mongo) => {
            let admin = admin_password(credentials)?;
            mongo.restore_from(&staging, &admin).await?;
            let source_database = source_database(ctx, &backup)?;
            if source_database != credentials.database {
                mongo
                    .grant_database(
                        &admin,
                        (&credentials.username, credentials.account_database()),
                        &source_database,
                    )
                    .await?;
            }
            restored_database = Some(source_database);
        }
    }
    let source = backup_source(ctx, &backup)?;
    let physical = !backup.starts_with(BackupMethod::Logical.step_prefix());
    Ok(Effect::Restored {
        server,
        source,
        physical,
        database: restored_database,
    })
}

/// The server follows its master; done only once it does.
async fn enslave_step(
    ctx: &StepContext,
    server: String,
    master: String,
    master_application: String,
    resync: bool,
    non_voting: bool,
) -> Result<Effect, EngineError> {
    let application = ctx.state.application.clone();
    let (replica, group) = ctx.recorded_server(&application, &server).await?;
    let (source, source_group) = ctx.recorded_server(&master_application, &master).await?;
    let source_credentials = ctx.credentials(&master_application, source_group)?;
    let mut moved_to = None;
    match (replica, source) {
        // A new slave first binds its port here, at its first
        // start, perhaps long after provision chose it: a port taken
        // meanwhile is replaced while the slave is still pending.
        (Server::Postgres(replica), Server::Postgres(source)) => {
            let (admin, replication) = (
                admin_password(source_credentials)?,
                replication_password(source_credentials)?,
            );
            let pending = ctx
                .state
                .journal
                .as_ref()
                .is_some_and(|j| j.pending.contains_key(&server));
            let mut replica = replica;
            // An apply that moved the port and crashed before
            // recording it left the new one in the server's config.
            if pending
                && let Some(configured) = PostgresServer::earlier_port(&ctx.host, &server)
                && configured != replica.port()
            {
                replica =
                    PostgresServer::new(&ctx.host, &server, &group.version, configured).await?;
                moved_to = Some(configured);
            }
            let mut attempt = 1;
            loop {
                let _taken = pending
                    .then(|| crate::crash::take_first_port(&server, attempt, replica.port()))
                    .flatten();
                match replica.enslave_to(&source, &admin, &replication).await {
                    Err(err) if pending && err.is_address_in_use() && attempt < PORT_ATTEMPTS => {
                        let port = free_port()?;
                        replica =
                            PostgresServer::new(&ctx.host, &server, &group.version, port).await?;
                        moved_to = Some(port);
                        attempt += 1;
                    }
                    result => break result?,
                }
            }
        }
        // REPLICAOF's full sync copies the data (there is no
        // backup step), so the room for it is checked here.
        (Server::Redis(replica), Server::Redis(source)) => {
            let own = ctx.credentials(&application, group)?;
            if ctx.disk_check {
                let size = source.data_size(&app_password(source_credentials)?).await?;
                dbgroups_engines::disk::ensure_room(
                    "the full sync",
                    &ctx.provider.server_dir(&server),
                    size,
                )?;
            }
            replica
                .enslave_to(
                    &source,
                    &app_password(own)?,
                    &app_password(source_credentials)?,
                )
                .await?
        }
        // MariaDB starts from the GTID position of the dump this
        // apply took of the master and restored on the replica.
        (Server::Mysql(replica), Server::Mysql(source)) => {
            let staging = ctx.provider.staging_dir(
                &ctx.staging_name(&format!("{}:{master}", BackupMethod::Logical.step_prefix())),
            );
            let position = replica.dump_gtid_position(&staging)?;
            let own = ctx.credentials(&application, group)?;
            replica
                .enslave_to(
                    &source,
                    &admin_password(source_credentials)?,
                    &admin_password(own)?,
                    &replication_password(source_credentials)?,
                    position.as_deref(),
                )
                .await?
        }
        // A member joins its group's set through the set's current
        // primary (found by `hello`: after a failover it is not the
        // recorded master); its initial sync copies the data (no
        // backup step). Its data is emptied first only for a
        // re-sync the plan asked for, or when it is too stale to
        // catch up: a member in STARTUP2 or RECOVERING is on its
        // way, and a wipe would restart a long initial sync.
        (Server::Mongodb(replica), Server::Mongodb(_)) => {
            let admin = admin_password(source_credentials)?;
            let set = dbgroups_plan::env::replica_set_name(&master_application, &source_group.name);
            let members = ctx.mongo_members(source_group, &server).await?;
            let primary = MongoServer::find_primary(&members, &set).await?;
            if resync || replica.is_too_stale(&admin).await {
                replica.start_over(&admin).await?;
            }
            primary
                .add_member(&set, &admin, &replica, !non_voting)
                .await?
        }
        _ => {
            return Err(missing(format!(
                "{server} and {master} run different engines"
            )));
        }
    }
    Ok(Effect::Enslaved {
        server,
        application: master_application,
        master,
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
    let application = ctx.state.application.clone();
    let (replica, group) = ctx.recorded_server(&application, &server).await?;
    let credentials = ctx.credentials(&application, group)?;
    match replica {
        Server::Postgres(pg) => {
            let admin = admin_password(credentials)?;
            let old = match &master {
                Some(master) => ctx.recorded_server(&master_application, master).await.ok(),
                None => None,
            };
            match old {
                Some((Server::Postgres(old), old_group)) => {
                    let old_admin =
                        admin_password(ctx.credentials(&master_application, old_group)?)?;
                    pg.promote(&admin, Some((&old, &old_admin))).await?
                }
                _ => pg.promote(&admin, None).await?,
            }
        }
        Server::Redis(redis) => redis.detach(&app_password(credentials)?).await?,
        Server::Mysql(mariadb) => mariadb.detach(&admin_password(credentials)?).await?,
        // The manifest refuses replication between MongoDB groups,
        // so no plan detaches a member.
        Server::Mongodb(_) => {
            return Err(missing(format!(
                "{server} is a MongoDB member: replication between MongoDB groups is not supported"
            )));
        }
    }
    Ok(Effect::Detached { server })
}

/// The server is stopped, its traces on its upstream dropped, and its
/// directory deleted.
async fn remove_step(ctx: &StepContext, server: String) -> Result<Effect, EngineError> {
    let application = ctx.state.application.clone();
    let (engine, group) = ctx.recorded_server(&application, &server).await?;
    let credentials = ctx.credentials(&application, group)?;
    match engine {
        // The server's slot on whatever it streamed from goes with
        // it: a slot nobody reads keeps WAL until the disk is full.
        Server::Postgres(pg) => {
            pg.ensure_stopped().await?;
            if let Some((upstream, upstream_admin)) =
                ctx.postgres_upstream(&application, group, &server).await?
                && upstream.is_running().await
            {
                upstream.drop_slot_of(&server, &upstream_admin).await?;
            }
        }
        Server::Redis(redis) => redis.ensure_stopped(&app_password(credentials)?).await?,
        // rs.remove first, on the set's current primary: a stopped
        // member left in the set would still count towards its
        // majority.
        Server::Mongodb(mongo) => {
            let admin = admin_password(credentials)?;
            let set = dbgroups_plan::env::replica_set_name(&application, &group.name);
            let members = ctx.mongo_members(group, "").await?;
            if members.len() > 1 {
                let primary = MongoServer::find_primary(&members, &set).await?;
                if primary.host() == mongo.host() {
                    return Err(EngineError::Command {
                        command: "replSetReconfig".into(),
                        status: "refused".into(),
                        stderr: format!(
                            "{server} is the primary of {set} (a failover made it so): step it down first (rs.stepDown() on it), then apply again"
                        ),
                    });
                }
                primary.remove_member(&set, &admin, &mongo.host()).await?;
            }
            mongo.ensure_stopped(&admin).await?
        }
        Server::Mysql(mariadb) => {
            mariadb
                .ensure_stopped(&admin_password(credentials)?)
                .await?
        }
    }
    let dir = ctx.provider.server_dir(&server);
    if dir.exists() {
        std::fs::remove_dir_all(&dir).map_err(|source| EngineError::Io {
            action: "delete",
            path: dir,
            source,
        })?;
    }
    Ok(Effect::Removed { server })
}

/// The server runs again; a replica only once it follows again.
async fn start_step(ctx: &StepContext, server: String) -> Result<Effect, EngineError> {
    let application = ctx.state.application.clone();
    let (engine, group) = ctx.recorded_server(&application, &server).await?;
    let credentials = ctx.credentials(&application, group)?;
    // A replica's start is done only once it follows its master
    // again: a process that runs but cannot stream (its slot was
    // dropped, say) fails the step with the reason.
    match engine {
        Server::Postgres(pg) => {
            let upstream = ctx.postgres_upstream(&application, group, &server).await?;
            pg.ensure_running_and_streaming(
                &admin_password(credentials)?,
                upstream
                    .as_ref()
                    .map(|(master, password)| (master, password.as_str())),
            )
            .await?
        }
        Server::Mysql(mariadb) => {
            mariadb
                .ensure_running_and_replicating(&admin_password(credentials)?)
                .await?
        }
        Server::Redis(redis) => {
            redis
                .ensure_running_and_linked(&app_password(credentials)?)
                .await?
        }
        Server::Mongodb(mongo) => mongo.ensure_running().await?,
    }
    Ok(Effect::Nothing)
}

/// Room for twice the data to copy, checked before anything of the
/// seeding it guards is built.
async fn disk_check_step(
    ctx: &StepContext,
    server: String,
    master_application: String,
    method: BackupMethod,
    staged: bool,
    destinations: Vec<String>,
) -> Result<Effect, EngineError> {
    let (engine, group) = ctx.recorded_server(&master_application, &server).await?;
    let credentials = ctx.credentials(&master_application, group)?;
    let size = data_size(&engine, credentials, method).await?;
    if staged {
        let backup = format!("{}:{server}", method.step_prefix());
        let staging = ctx.provider.staging_dir(&ctx.staging_name(&backup));
        if !backup_complete(&staging) {
            dbgroups_engines::disk::ensure_room("the backup", &staging, size)?;
        }
    }
    let what = if staged {
        "the restore"
    } else {
        "the full sync"
    };
    for destination in destinations {
        dbgroups_engines::disk::ensure_room(what, &ctx.provider.server_dir(&destination), size)?;
    }
    Ok(Effect::Nothing)
}

impl StepContext {
    /// The recorded members of a MongoDB group with a port, but `except`.
    async fn mongo_members(
        &self,
        group: &GroupState,
        except: &str,
    ) -> Result<Vec<MongoServer>, EngineError> {
        let mut members = Vec::new();
        for server in group.servers.iter().filter(|s| s.unique_name != except) {
            if let Some(port) = server.port {
                members.push(
                    MongoServer::new(&self.host, &server.unique_name, &group.version, port).await?,
                );
            }
        }
        Ok(members)
    }

    /// The PostgreSQL server `server` streams from, with its superuser's
    /// password: its group's master for a slave; for the master of a group
    /// that replicates from another group (of this application or
    /// another), that group's master.
    async fn postgres_upstream(
        &self,
        application: &str,
        group: &GroupState,
        server: &str,
    ) -> Result<Option<(PostgresServer, String)>, EngineError> {
        let within = group
            .master()
            .filter(|m| m.unique_name != server)
            .map(|m| (application.to_string(), group, m));
        let across = || {
            let source = group.replicate_from.as_ref()?;
            let state = self.application_state(&source.application)?;
            let source_group = state
                .group(group.db_type, &source.group)
                .or_else(|| state.server(&source.group).map(|(g, _)| g))?;
            Some((
                source.application.clone(),
                source_group,
                source_group.master()?,
            ))
        };
        let Some((owner, upstream_group, master)) = within.or_else(across) else {
            return Ok(None);
        };
        let Some(port) = master.port else {
            return Ok(None);
        };
        let admin = admin_password(self.credentials(&owner, upstream_group)?)?;
        let upstream = PostgresServer::new(
            &self.host,
            &master.unique_name,
            &upstream_group.version,
            port,
        )
        .await?;
        Ok(Some((upstream, admin)))
    }

    /// Backups are staged under a directory named after this apply and
    /// their step.
    fn staging_name(&self, step_id: &str) -> String {
        format!("{}-{}", self.staging_prefix, step_id.replace(':', "-"))
    }
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

/// Which group a backup step copied (`backup:pg-main` → pg-main's group).
fn backup_source(ctx: &StepContext, backup: &str) -> Result<(String, GroupAddress), EngineError> {
    let server = backup.split_once(':').map_or(backup, |(_, s)| s);
    let application = application_of(ctx, server);
    let (group, _) = ctx.find(&application, server)?;
    Ok((
        application,
        GroupAddress::new(group.db_type, group.name.clone()),
    ))
}

/// The database a backup step copied, as its group records it.
fn source_database(ctx: &StepContext, backup: &str) -> Result<String, EngineError> {
    let (application, group) = backup_source(ctx, backup)?;
    ctx.application_state(&application)
        .and_then(|s| s.credentials.get(&group.to_string()))
        .map(|c| c.database.clone())
        .ok_or_else(|| missing(format!("no credentials recorded for {group}")))
}

/// The guard before a backup: twice the data must fit where it lands.
async fn check_backup_room(
    ctx: &StepContext,
    engine: &Server,
    credentials: &Credentials,
    method: BackupMethod,
    staging: &std::path::Path,
) -> Result<(), EngineError> {
    if !ctx.disk_check {
        return Ok(());
    }
    let size = data_size(engine, credentials, method).await?;
    dbgroups_engines::disk::ensure_room("the backup", staging, size)
}

/// The bytes a backup of `engine` by `method` copies, by the engine's own
/// measure.
async fn data_size(
    engine: &Server,
    credentials: &Credentials,
    method: BackupMethod,
) -> Result<u64, EngineError> {
    match (engine, method) {
        (Server::Mysql(mariadb), _) => {
            mariadb
                .data_size(&admin_password(credentials)?, &credentials.database)
                .await
        }
        (Server::Postgres(pg), BackupMethod::Physical) => {
            pg.data_size(&admin_password(credentials)?, None).await
        }
        (Server::Postgres(pg), BackupMethod::Logical) => {
            pg.data_size(&admin_password(credentials)?, Some(&credentials.database))
                .await
        }
        (Server::Redis(redis), _) => redis.data_size(&app_password(credentials)?).await,
        (Server::Mongodb(mongo), _) => mongo.data_size(&admin_password(credentials)?).await,
    }
}

/// The guard before a restore: twice the backup must fit on the server.
fn check_restore_room(
    ctx: &StepContext,
    staging: &std::path::Path,
    server: &str,
) -> Result<(), EngineError> {
    if !ctx.disk_check {
        return Ok(());
    }
    let size = dbgroups_engines::disk::size_of(staging);
    dbgroups_engines::disk::ensure_room("the restore", &ctx.provider.server_dir(server), size)
}

fn backup_complete(staging: &std::path::Path) -> bool {
    [
        "backup_manifest",
        "dump.pgdump",
        "dump.rdb",
        "dump.sql",
        "dump/.complete",
    ]
    .iter()
    .any(|file| staging.join(file).is_file())
}

//! MongoDB behind the engine interface: [`MongoServer`] does the work. A
//! group is one replica set: members join and leave it through its current
//! primary, and the set's keyfile is the group's replication secret.

use std::path::Path;

use dbgroups_manifest::{DbType, Engine};

use super::{
    Certificate, Copy, DataSummary, DatabaseEngine, FollowRequest, GroupAccess, Observation,
    ObserveRequest, Operation, Peer, ReplicaHealth, Restored, SecretKind, ServerRef, Surroundings,
    any_file, down,
};
use crate::error::EngineError;
use crate::host::{HostRef, Packages};
use crate::mongodb::{AppUser, MemberHealth, MongoServer};

#[derive(Debug)]
pub(super) struct Mongodb;

async fn server(server: &ServerRef) -> Result<MongoServer, EngineError> {
    MongoServer::new(&server.host, &server.name, &server.version, server.port)
        .await
        .map(|mongo| mongo.exposed(server.exposure.clone()))
}

async fn servers(members: &[ServerRef]) -> Result<Vec<MongoServer>, EngineError> {
    let mut servers = Vec::with_capacity(members.len());
    for member in members {
        servers.push(server(member).await?);
    }
    Ok(servers)
}

#[async_trait::async_trait]
impl DatabaseEngine for Mongodb {
    fn db_type(&self) -> DbType {
        DbType::Mongodb
    }

    fn packages(&self, _engine: Engine, _version: &str) -> Packages {
        Packages {
            names: vec![
                "mongodb-org-server".to_string(),
                "mongodb-database-tools".to_string(),
            ],
            program: "mongod".to_string(),
            outside_distribution: Some(crate::mongodb::REMEDY.to_string()),
        }
    }

    fn default_port(&self) -> u16 {
        27017
    }

    fn secrets_for(&self, operation: Operation) -> &'static [SecretKind] {
        match operation {
            // Every member shares the keyfile (the replication secret).
            Operation::Provision => &[SecretKind::Admin, SecretKind::App, SecretKind::Replication],
            Operation::Start => &[],
            Operation::MeasureData
            | Operation::Backup
            | Operation::Restore
            | Operation::Follow
            | Operation::Detach
            | Operation::Remove
            | Operation::Observe
            | Operation::Admit
            | Operation::Secure => &[SecretKind::Admin],
        }
    }

    async fn earlier_port(&self, host: &HostRef, server: &str) -> Option<u16> {
        MongoServer::earlier_port(host, server).await
    }

    /// The first member initiates the set and makes the users; the others
    /// start with the keyfile and join in their enslave step.
    async fn provision(
        &self,
        target: &ServerRef,
        access: &GroupAccess,
        master: bool,
    ) -> Result<(), EngineError> {
        let mongo = server(target).await?;
        let keyfile = access.replication()?;
        if !master {
            return mongo.ensure_member_started(&access.set_name, keyfile).await;
        }
        mongo
            .ensure_primary(
                &access.set_name,
                keyfile,
                access.admin()?,
                &AppUser {
                    username: &access.username,
                    password: access.app()?,
                    database: &access.database,
                    home: access.account_home(),
                },
            )
            .await
    }

    async fn data_size(
        &self,
        target: &ServerRef,
        access: &GroupAccess,
        _copy: Copy,
    ) -> Result<u64, EngineError> {
        server(target).await?.data_size(access.admin()?).await
    }

    async fn backup(
        &self,
        target: &ServerRef,
        access: &GroupAccess,
        _copy: Copy,
        into: &HostRef,
        at: &Path,
    ) -> Result<(), EngineError> {
        server(target)
            .await?
            .dump_to(into, at, access.admin()?)
            .await
    }

    /// `mongodump --oplog`, from a secondary when the group has a caught-up
    /// one (the oplog makes the dump consistent to one moment).
    fn managed_copy(&self) -> Result<Copy, EngineError> {
        Ok(Copy::Logical)
    }

    async fn data_summary(
        &self,
        target: &ServerRef,
        access: &GroupAccess,
    ) -> Result<DataSummary, EngineError> {
        server(target)
            .await?
            .collection_counts(access.admin()?, &access.database)
            .await
    }

    async fn backup_is_complete(&self, host: &HostRef, at: &Path, _copy: Copy) -> bool {
        any_file(host, at, &["dump/.complete"]).await
    }

    /// Like the MySQL family: the copy keeps the source's database name,
    /// and the group's user is given it.
    async fn restore(
        &self,
        target: &ServerRef,
        access: &GroupAccess,
        from: &Path,
        _copy: Copy,
        _take: bool,
        source_database: &str,
    ) -> Result<Restored, EngineError> {
        let mongo = server(target).await?;
        let admin = access.admin()?;
        mongo.restore_from(from, admin).await?;
        if source_database != access.database {
            mongo
                .grant_database(
                    admin,
                    (&access.username, access.account_home()),
                    source_database,
                )
                .await?;
        }
        Ok(Restored {
            database: Some(source_database.to_string()),
        })
    }

    /// On a host: `requireTLS` with the application's certificates, and
    /// the host's firewall for access (MongoDB has no per-source rules).
    fn serves_tls(&self) -> bool {
        true
    }

    /// Renewal: `rotateCertificates` on 5.0+, a restart on 4.4.
    async fn install_certificate(
        &self,
        target: &ServerRef,
        access: &GroupAccess,
        certificate: &Certificate,
    ) -> Result<(), EngineError> {
        server(target)
            .await?
            .install_certificate(certificate, access.admin()?)
            .await
    }

    async fn allow(
        &self,
        target: &ServerRef,
        _access: &GroupAccess,
        networks: &[String],
    ) -> Result<(), EngineError> {
        server(target).await?.allow(networks).await
    }

    async fn admit(
        &self,
        target: &ServerRef,
        _access: &GroupAccess,
        peer: &HostRef,
    ) -> Result<(), EngineError> {
        server(target).await?.admit(&peer.listen_addresses()).await
    }

    fn follow_copies_data(&self) -> bool {
        // The initial sync copies the data; its room is not checked
        // before (as before the engine interface).
        false
    }

    /// A member joins its group's set through the set's current primary
    /// (found by `hello`: after a failover it is not the recorded master).
    /// On hosts, it and every member let each other in first: members
    /// heartbeat each other, and any of them may become the primary.
    /// Its data is emptied first only for a re-sync the plan asked for, or
    /// when it is too stale to catch up: a member in STARTUP2 or
    /// RECOVERING is on its way, and a wipe would restart a long initial
    /// sync.
    async fn follow(&self, request: FollowRequest<'_>) -> Result<(), EngineError> {
        let replica = server(request.replica).await?;
        let admin = request.source_access.admin()?;
        let set = &request.source_access.set_name;
        let mut members = servers(request.source_members).await?;
        if !request
            .source_members
            .iter()
            .any(|m| m.name == request.source.name)
        {
            members.push(server(request.source).await?);
        }
        replica.admit_each_other(&members).await?;
        let primary = MongoServer::find_primary(&members, set).await?;
        if request.resync || replica.is_too_stale(admin).await {
            replica.start_over(admin).await?;
        }
        primary
            .add_member(set, admin, &replica, request.voting)
            .await
    }

    /// The manifest refuses replication between MongoDB groups, so no plan
    /// detaches a member.
    async fn detach(
        &self,
        target: &ServerRef,
        _access: &GroupAccess,
        _old_source: Option<&Peer>,
    ) -> Result<(), EngineError> {
        Err(EngineError::StateMismatch(format!(
            "{} is a MongoDB member: replication between MongoDB groups is not supported",
            target.name
        )))
    }

    /// rs.remove first, on the set's current primary: a stopped member left
    /// in the set would still count towards its majority.
    async fn remove(
        &self,
        target: &ServerRef,
        access: &GroupAccess,
        around: &Surroundings,
    ) -> Result<(), EngineError> {
        let mongo = server(target).await?;
        let admin = access.admin()?;
        let set = &access.set_name;
        if around.members.len() > 1 {
            let members = servers(&around.members).await?;
            let primary = MongoServer::find_primary(&members, set).await?;
            if primary.host() == mongo.host() {
                return Err(EngineError::Command {
                    command: "replSetReconfig".into(),
                    status: "refused".into(),
                    stderr: format!(
                        "{} is the primary of {set} (a failover made it so): step it down first (rs.stepDown() on it), then apply again",
                        target.name
                    ),
                });
            }
            primary.remove_member(set, admin, &mongo.host()).await?;
        }
        mongo.ensure_stopped(admin).await?;
        mongo.forget_rules().await
    }

    async fn start(
        &self,
        target: &ServerRef,
        _access: &GroupAccess,
        _around: &Surroundings,
    ) -> Result<(), EngineError> {
        server(target).await?.ensure_running().await
    }

    async fn observe(&self, request: ObserveRequest<'_>) -> Result<Observation, EngineError> {
        let mongo = server(request.server).await?;
        let admin = request.access.admin()?;
        if !mongo.is_running().await {
            return Ok(down("not running"));
        }
        let summary = match mongo.members(admin).await {
            Ok(members) => match members.iter().find(|m| m.host == mongo.host()) {
                Some(own) => format!(
                    "{} of a set of {}{}",
                    own.state,
                    members.len(),
                    own.lag_seconds
                        .map(|l| format!(", lag {l}s"))
                        .unwrap_or_default()
                ),
                None => "not a member of its group's set".to_string(),
            },
            Err(err) => err.to_string(),
        };
        // PRIMARY or SECONDARY serve (a failover may have swapped them); a
        // member on its way (STARTUP2, RECOVERING) is not broken, so no
        // plan wipes its sync; only one that cannot recover is. A member
        // whose status cannot be read (a timeout under load) is not
        // judged: a re-sync empties a MongoDB member, so it is planned only
        // on the member's own word that it is broken.
        let replication = if request.replica {
            match mongo.own_health(admin).await {
                Ok(MemberHealth::Healthy { lag_seconds }) => Some(ReplicaHealth {
                    streaming: true,
                    lag_seconds,
                    ..ReplicaHealth::default()
                }),
                Ok(MemberHealth::Syncing { .. }) => Some(ReplicaHealth {
                    streaming: true,
                    ..ReplicaHealth::default()
                }),
                Ok(MemberHealth::Broken { detail }) => Some(ReplicaHealth::broken(detail)),
                Err(_) => None,
            }
        } else {
            None
        };
        Ok(Observation {
            up: true,
            replication,
            summary,
        })
    }
}

//! Redis behind the engine interface: [`RedisServer`] does the work. Every
//! operation authenticates with the group's one password (`requirepass`).

use std::path::Path;

use dbgroups_manifest::{DbType, Engine};

use super::Certificate;
use super::{
    Copy, DataSummary, DatabaseEngine, FollowRequest, GroupAccess, Observation, ObserveRequest,
    Operation, Peer, ReplicaHealth, Restored, SecretKind, ServerRef, Surroundings, any_file, down,
};
use crate::error::EngineError;
use crate::host::{HostRef, Packages};
use crate::redis_engine::RedisServer;

#[derive(Debug)]
pub(super) struct Redis;

async fn server(server: &ServerRef) -> Result<RedisServer, EngineError> {
    RedisServer::new(&server.host, &server.name, server.port)
        .await
        .map(|redis| redis.exposed(server.exposure.clone()))
}

#[async_trait::async_trait]
impl DatabaseEngine for Redis {
    fn db_type(&self) -> DbType {
        DbType::Redis
    }

    fn packages(&self, _engine: Engine, _version: &str) -> Packages {
        Packages {
            names: vec!["redis-server".to_string()],
            program: crate::redis_engine::REDIS_SERVER.to_string(),
            outside_distribution: None,
        }
    }

    fn default_port(&self) -> u16 {
        6379
    }

    fn secrets_for(&self, _operation: Operation) -> &'static [SecretKind] {
        &[SecretKind::App]
    }

    async fn earlier_port(&self, host: &HostRef, server: &str) -> Option<u16> {
        RedisServer::earlier_port(host, server).await
    }

    async fn provision(
        &self,
        target: &ServerRef,
        access: &GroupAccess,
        _master: bool,
    ) -> Result<(), EngineError> {
        server(target)
            .await?
            .ensure_provisioned(access.app()?)
            .await
    }

    async fn data_size(
        &self,
        target: &ServerRef,
        access: &GroupAccess,
        _copy: Copy,
    ) -> Result<u64, EngineError> {
        server(target).await?.data_size(access.app()?).await
    }

    async fn backup(
        &self,
        target: &ServerRef,
        access: &GroupAccess,
        _copy: Copy,
        into: &HostRef,
        at: &Path,
    ) -> Result<(), EngineError> {
        let source = server(target).await?;
        if crate::host::same_host(&target.host, into) {
            source.backup_to(at, access.app()?).await
        } else {
            source.backup_to_host(into, at, access.app()?).await
        }
    }

    async fn backup_is_complete(&self, host: &HostRef, at: &Path, _copy: Copy) -> bool {
        any_file(host, at, &["dump.rdb"]).await
    }

    async fn restore(
        &self,
        target: &ServerRef,
        access: &GroupAccess,
        from: &Path,
        _copy: Copy,
        take: bool,
        _source_database: &str,
    ) -> Result<Restored, EngineError> {
        server(target)
            .await?
            .restore_from(from, access.app()?, take)
            .await?;
        Ok(Restored::default())
    }

    fn serves_tls(&self) -> bool {
        true
    }

    async fn install_certificate(
        &self,
        target: &ServerRef,
        access: &GroupAccess,
        certificate: &Certificate,
    ) -> Result<(), EngineError> {
        server(target)
            .await?
            .install_certificate(certificate, access.app()?)
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

    /// REPLICAOF's full sync copies the data (there is no backup step).
    fn follow_copies_data(&self) -> bool {
        true
    }

    async fn follow(&self, request: FollowRequest<'_>) -> Result<(), EngineError> {
        let replica = server(request.replica).await?;
        let source = server(request.source).await?;
        replica
            .enslave_to(
                &source,
                request.replica_access.app()?,
                request.source_access.app()?,
            )
            .await
    }

    async fn detach(
        &self,
        target: &ServerRef,
        access: &GroupAccess,
        _old_source: Option<&Peer>,
    ) -> Result<(), EngineError> {
        server(target).await?.detach(access.app()?).await
    }

    async fn remove(
        &self,
        target: &ServerRef,
        access: &GroupAccess,
        _around: &Surroundings,
    ) -> Result<(), EngineError> {
        let redis = server(target).await?;
        redis.ensure_stopped(access.app()?).await?;
        redis.forget_rules().await
    }

    async fn start(
        &self,
        target: &ServerRef,
        access: &GroupAccess,
        _around: &Surroundings,
    ) -> Result<(), EngineError> {
        server(target)
            .await?
            .ensure_running_and_linked(access.app()?)
            .await
    }

    async fn observe(&self, request: ObserveRequest<'_>) -> Result<Observation, EngineError> {
        let redis = server(request.server).await?;
        let info = match redis.replication(request.access.app()?).await {
            Err(err) => return Ok(down(err)),
            Ok(info) => info,
        };
        let link_up = info.master_link_status.as_deref() == Some("up");
        let summary = if info.role == "slave" {
            format!(
                "link {}, last contact {}",
                info.master_link_status.clone().unwrap_or_default(),
                info.master_last_io_seconds_ago
                    .map_or("unknown".into(), |s| format!("{s}s ago"))
            )
        } else {
            match info.connected_slaves {
                0 => "master, no replica connected".to_string(),
                1 => "master of 1 replica".to_string(),
                n => format!("master of {n} replicas"),
            }
        };
        let replication = match (request.replica, info.role.as_str()) {
            (false, _) => None,
            (true, "slave") if link_up => Some(ReplicaHealth {
                streaming: true,
                lag_seconds: info
                    .master_last_io_seconds_ago
                    .and_then(|s| u64::try_from(s).ok()),
                held_offset: info.replica_offset,
                ..ReplicaHealth::default()
            }),
            // A full sync in progress (after its master's restart, say)
            // ends by itself: not broken.
            (true, "slave") => Some(ReplicaHealth {
                held_offset: info.replica_offset,
                reconnecting: info.master_sync_in_progress,
                ..ReplicaHealth::broken(format!(
                    "master link {}",
                    info.master_link_status.as_deref().unwrap_or("unknown")
                ))
            }),
            (true, role) => Some(ReplicaHealth::broken(format!(
                "it runs as a {role}, not a replica"
            ))),
        };
        Ok(Observation {
            up: true,
            replication,
            summary,
        })
    }

    fn managed_copy(&self) -> Result<Copy, EngineError> {
        Ok(Copy::Physical)
    }

    /// The offset the server had reached when its snapshot was done.
    async fn backup_position(
        &self,
        target: &ServerRef,
        access: &GroupAccess,
        _host: &HostRef,
        _at: &Path,
    ) -> Option<String> {
        let redis = server(target).await.ok()?;
        let offset = redis.replication_offset(access.app().ok()?).await?;
        Some(format!("replication offset {offset}"))
    }

    async fn data_summary(
        &self,
        target: &ServerRef,
        access: &GroupAccess,
    ) -> Result<DataSummary, EngineError> {
        server(target).await?.keyspace(access.app()?).await
    }
}

//! PostgreSQL behind the engine interface: [`PostgresServer`] does the
//! work; this decides which of its operations each step is.

use std::path::Path;

use dbgroups_manifest::{DbType, Engine};

use super::{
    Certificate, Copy, DataSummary, DatabaseEngine, FollowRequest, GroupAccess, Observation,
    ObserveRequest, Operation, Peer, ReplicaHealth, Restored, SecretKind, ServerRef, Surroundings,
    any_file, down,
};
use crate::error::EngineError;
use crate::host::{HostRef, Packages};
use crate::postgres::{PostgresServer, ReplicationStatus, slot_name};

#[derive(Debug)]
pub(super) struct Postgresql;

async fn server(server: &ServerRef) -> Result<PostgresServer, EngineError> {
    Ok(
        PostgresServer::new(&server.host, &server.name, &server.version, server.port)
            .await?
            .exposed(server.exposure.clone()),
    )
}

/// The upstream as the server type takes it: the server and its
/// superuser's password.
async fn upstream(peer: Option<&Peer>) -> Result<Option<(PostgresServer, String)>, EngineError> {
    match peer {
        Some(peer) => Ok(Some((
            server(&peer.server).await?,
            peer.access.admin()?.to_string(),
        ))),
        None => Ok(None),
    }
}

#[async_trait::async_trait]
impl DatabaseEngine for Postgresql {
    fn db_type(&self) -> DbType {
        DbType::Postgresql
    }

    fn packages(&self, _engine: Engine, version: &str) -> Packages {
        let major = version.split('.').next().unwrap_or(version);
        Packages {
            names: vec![format!("postgresql-{major}")],
            program: crate::postgres::binaries(major)
                .join("postgres")
                .display()
                .to_string(),
            outside_distribution: None,
        }
    }

    fn default_port(&self) -> u16 {
        5432
    }

    fn secrets_for(&self, operation: Operation) -> &'static [SecretKind] {
        match operation {
            Operation::Provision => &[SecretKind::Admin, SecretKind::App, SecretKind::Replication],
            // pg_basebackup connects as the replication role; pg_dump as
            // the superuser.
            Operation::Backup => &[SecretKind::Admin, SecretKind::Replication],
            Operation::Follow => &[SecretKind::Admin, SecretKind::Replication],
            Operation::MeasureData
            | Operation::Restore
            | Operation::Detach
            | Operation::Remove
            | Operation::Start
            | Operation::Observe
            | Operation::Admit
            | Operation::Secure => &[SecretKind::Admin],
        }
    }

    async fn earlier_port(&self, host: &HostRef, server: &str) -> Option<u16> {
        PostgresServer::earlier_port(host, server).await
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
            .install_certificate(certificate, access.admin()?)
            .await
    }

    async fn allow(
        &self,
        target: &ServerRef,
        access: &GroupAccess,
        networks: &[String],
    ) -> Result<(), EngineError> {
        server(target).await?.allow(networks, access.admin()?).await
    }

    async fn provision(
        &self,
        target: &ServerRef,
        access: &GroupAccess,
        master: bool,
    ) -> Result<(), EngineError> {
        // A slave's data comes from its restore; only a master is
        // initialised and given the accounts.
        if !master {
            return target
                .host
                .private_dir(&target.host.server_dir(&target.name))
                .await;
        }
        let pg = server(target).await?;
        pg.ensure_initialised(access.admin()?).await?;
        pg.ensure_running().await?;
        pg.ensure_accounts(
            access.admin()?,
            &access.username,
            access.app()?,
            &access.database,
            access.replication()?,
        )
        .await
    }

    async fn data_size(
        &self,
        target: &ServerRef,
        access: &GroupAccess,
        copy: Copy,
    ) -> Result<u64, EngineError> {
        let database = (copy == Copy::Logical).then_some(access.database.as_str());
        server(target)
            .await?
            .data_size(access.admin()?, database)
            .await
    }

    async fn backup(
        &self,
        target: &ServerRef,
        access: &GroupAccess,
        copy: Copy,
        into: &HostRef,
        at: &Path,
    ) -> Result<(), EngineError> {
        let pg = server(target).await?;
        match copy {
            Copy::Physical => pg.backup_to(into, at, access.replication()?).await,
            Copy::Logical => {
                pg.dump_to(into, at, access.admin()?, &access.database)
                    .await
            }
        }
    }

    async fn admit(
        &self,
        target: &ServerRef,
        access: &GroupAccess,
        peer: &HostRef,
    ) -> Result<(), EngineError> {
        server(target)
            .await?
            .admit(&peer.listen_addresses(), access.admin()?)
            .await
    }

    async fn backup_is_complete(&self, host: &HostRef, at: &Path, copy: Copy) -> bool {
        let file = match copy {
            Copy::Physical => "backup_manifest",
            Copy::Logical => "dump.pgdump",
        };
        any_file(host, at, &[file]).await
    }

    async fn restore(
        &self,
        target: &ServerRef,
        access: &GroupAccess,
        from: &Path,
        copy: Copy,
        take: bool,
        _source_database: &str,
    ) -> Result<Restored, EngineError> {
        let pg = server(target).await?;
        match copy {
            // A dump (an import) goes into the running server's own
            // database; a physical backup replaces its data files.
            Copy::Logical => {
                pg.restore_dump(from, access.admin()?, &access.username, &access.database)
                    .await?
            }
            Copy::Physical => pg.restore_from(from, take).await?,
        }
        Ok(Restored::default())
    }

    fn copy_carries_accounts(&self, copy: Copy) -> bool {
        copy == Copy::Physical
    }

    fn follow_copies_data(&self) -> bool {
        false
    }

    async fn follow(&self, request: FollowRequest<'_>) -> Result<(), EngineError> {
        let replica = server(request.replica).await?;
        let source = server(request.source).await?;
        replica
            .enslave_to(
                &source,
                request.source_access.admin()?,
                request.source_access.replication()?,
            )
            .await
    }

    async fn detach(
        &self,
        target: &ServerRef,
        access: &GroupAccess,
        old_source: Option<&Peer>,
    ) -> Result<(), EngineError> {
        let pg = server(target).await?;
        let old = upstream(old_source).await.ok().flatten();
        pg.promote(
            access.admin()?,
            old.as_ref().map(|(old, admin)| (old, admin.as_str())),
        )
        .await
    }

    async fn remove(
        &self,
        target: &ServerRef,
        _access: &GroupAccess,
        around: &Surroundings,
    ) -> Result<(), EngineError> {
        server(target).await?.ensure_stopped().await?;
        // The server's slot on whatever it streamed from goes with it: a
        // slot nobody reads keeps WAL until the disk is full.
        if let Some((upstream, admin)) = upstream(around.upstream.as_ref()).await?
            && upstream.is_running().await
            && let Err(err) = upstream.drop_slot_of(&target.name, &admin).await
        {
            // An upstream being shut down meanwhile takes the slot with it;
            // only a running one's refusal is a failure. The planner orders
            // a follower's removal before its upstream's in one plan, but
            // the upstream may belong to another application whose own
            // destroy runs at the same time.
            tokio::time::sleep(std::time::Duration::from_secs(2)).await;
            if upstream.is_running().await {
                return Err(err);
            }
        }
        Ok(())
    }

    async fn start(
        &self,
        target: &ServerRef,
        access: &GroupAccess,
        around: &Surroundings,
    ) -> Result<(), EngineError> {
        let upstream = upstream(around.upstream.as_ref()).await?;
        server(target)
            .await?
            .ensure_running_and_streaming(
                access.admin()?,
                upstream
                    .as_ref()
                    .map(|(master, password)| (master, password.as_str())),
            )
            .await
    }

    async fn observe(&self, request: ObserveRequest<'_>) -> Result<Observation, EngineError> {
        let pg = server(request.server).await?;
        let mut observation = match pg.replication_status(request.access.admin()?).await {
            Err(err) => down(err),
            Ok(status) => Observation {
                up: true,
                summary: summary(&status, request.known_servers),
                replication: request.replica.then(|| replica_health(status)),
            },
        };
        let streaming = observation
            .replication
            .as_ref()
            .is_some_and(|r| r.streaming);
        if request.replica
            && !streaming
            && let Some(broken) = missing_slot(&request).await
        {
            observation.replication = Some(broken);
        }
        Ok(observation)
    }

    fn managed_copy(&self) -> Result<Copy, EngineError> {
        Ok(Copy::Physical)
    }

    /// pg_basebackup's `backup_label` names where the backup's WAL starts.
    async fn backup_position(
        &self,
        _server: &ServerRef,
        _access: &GroupAccess,
        host: &HostRef,
        at: &Path,
    ) -> Option<String> {
        let label = host.read_text(&at.join("backup_label")).await?;
        label.lines().find_map(|line| {
            let lsn = line.strip_prefix("START WAL LOCATION: ")?;
            Some(format!("LSN {}", lsn.split_whitespace().next()?))
        })
    }

    async fn data_summary(
        &self,
        target: &ServerRef,
        access: &GroupAccess,
    ) -> Result<DataSummary, EngineError> {
        let pg = server(target).await?;
        let client = pg
            .connect(
                crate::postgres::SUPERUSER,
                access.admin()?,
                &access.database,
            )
            .await?;
        let failed = |source| EngineError::Postgres {
            port: target.port,
            source,
        };
        // The server quotes each name (format's %I): a table's name is
        // the application's, never trusted as SQL.
        let tables = client
            .query(
                "SELECT format('%I.%I', schemaname, relname) FROM pg_stat_user_tables \
                 ORDER BY 1",
                &[],
            )
            .await
            .map_err(failed)?;
        let mut summary = DataSummary::new();
        for row in tables {
            let table: String = row.get(0);
            let count: i64 = client
                .query_one(&format!("SELECT count(*) FROM {table}"), &[])
                .await
                .map_err(failed)?
                .get(0);
            summary.insert(table, u64::try_from(count).unwrap_or(0));
        }
        Ok(summary)
    }
}

fn replica_health(status: ReplicationStatus) -> ReplicaHealth {
    match status {
        ReplicationStatus::Master { .. } => {
            ReplicaHealth::broken("it is not in recovery: it runs as a master".into())
        }
        ReplicationStatus::Replica {
            streaming,
            receiver_status,
            lag_seconds,
        } => ReplicaHealth {
            streaming,
            // Whole seconds are enough to compare with the limit.
            lag_seconds: lag_seconds.map(|lag| lag.max(0.0).round() as u64),
            detail: (!streaming).then(|| match receiver_status {
                Some(status) => format!("WAL receiver {status}"),
                None => "no WAL receiver is running".to_string(),
            }),
            ..ReplicaHealth::default()
        },
    }
}

/// A replica that does not stream is also checked against its master's
/// slots: without its slot it cannot resume. Down servers are checked too.
async fn missing_slot(request: &ObserveRequest<'_>) -> Option<ReplicaHealth> {
    let upstream = request.upstream?;
    let master = server(&upstream.server).await.ok()?;
    // An unreachable master says nothing about the slot.
    match master
        .has_slot_for(&request.server.name, upstream.access.admin().ok()?)
        .await
    {
        Ok(false) => Some(ReplicaHealth::broken(format!(
            "its replication slot {} no longer exists on its master {}",
            slot_name(&request.server.name),
            upstream.server.name
        ))),
        _ => None,
    }
}

fn summary(status: &ReplicationStatus, known_servers: &[String]) -> String {
    match status {
        ReplicationStatus::Master { replicas } => {
            let names: Vec<String> = replicas
                .iter()
                .map(|slot| {
                    known_servers
                        .iter()
                        .find(|name| slot_name(name) == *slot)
                        .unwrap_or(slot)
                        .clone()
                })
                .collect();
            if names.is_empty() {
                "master, no replica streaming".to_string()
            } else {
                format!("master of {}", names.join(", "))
            }
        }
        ReplicationStatus::Replica {
            streaming: true,
            lag_seconds,
            ..
        } => format!(
            "streaming (receiver streaming), lag {}",
            lag_seconds.map_or("unknown".into(), |l| format!("{l:.1}s"))
        ),
        // A lag is only meaningful while WAL arrives.
        ReplicationStatus::Replica {
            receiver_status, ..
        } => format!(
            "NOT STREAMING (receiver {})",
            receiver_status.as_deref().unwrap_or("absent")
        ),
    }
}

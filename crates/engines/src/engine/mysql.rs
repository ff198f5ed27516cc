//! The MySQL family (MariaDB, MySQL, Percona) behind the engine interface:
//! [`MysqlServer`] does the work with its dialect.

use std::path::Path;

use dbgroups_manifest::{DbType, Engine};

use super::Certificate;
use super::{
    Copy, DataSummary, DatabaseEngine, FollowRequest, GroupAccess, Observation, ObserveRequest,
    Operation, Peer, ReplicaHealth, Restored, SecretKind, ServerRef, Surroundings, any_file, down,
};
use crate::error::EngineError;
use crate::host::{HostRef, Packages};
use crate::mysql::{AccountSecrets, MysqlServer};

#[derive(Debug)]
pub(super) struct MysqlFamily;

async fn server(server: &ServerRef) -> Result<MysqlServer, EngineError> {
    MysqlServer::new(
        &server.host,
        server.engine,
        &server.version,
        &server.name,
        server.port,
    )
    .await
    .map(|mysql| mysql.exposed(server.exposure.clone()))
}

/// The secrets an account change sets again.
fn account_secrets(access: &GroupAccess) -> Result<AccountSecrets<'_>, EngineError> {
    Ok(AccountSecrets {
        admin_password: access.admin()?,
        username: &access.username,
        password: access.app()?,
        database: &access.database,
        replication_password: access.replication()?,
    })
}

fn running(yes: bool) -> &'static str {
    if yes { "running" } else { "STOPPED" }
}

#[async_trait::async_trait]
impl DatabaseEngine for MysqlFamily {
    fn db_type(&self) -> DbType {
        DbType::Mysql
    }

    fn packages(&self, engine: Engine, version: &str) -> Packages {
        let names: &[&str] = match engine {
            Engine::Mariadb => &["mariadb-server", "mariadb-client", "mariadb-backup"],
            Engine::Percona => &["percona-server-server"],
            _ => &["mysql-server"],
        };
        let dialect = crate::mysql::Dialect::new(engine, version);
        let program = dialect
            .as_ref()
            .map_or("mysqld", |d| d.programs().server)
            .to_string();
        let availability = dialect.map(|d| d.availability());
        Packages {
            names: names.iter().map(|n| n.to_string()).collect(),
            program,
            outside_distribution: availability
                .filter(|a| a.debian_package.is_none())
                .map(|a| a.remedy.to_string()),
        }
    }

    fn default_port(&self) -> u16 {
        3306
    }

    fn secrets_for(&self, operation: Operation) -> &'static [SecretKind] {
        match operation {
            // A logical dump is loaded into a running server, so a slave
            // is provisioned in full, accounts included.
            Operation::Provision => &[SecretKind::Admin, SecretKind::App, SecretKind::Replication],
            // A backup taken on another host logs in as the replication
            // account (root is the master's socket's only).
            Operation::Follow | Operation::Backup => &[SecretKind::Admin, SecretKind::Replication],
            // Accounts from a new source (a peer's host, a client network)
            // are made with their passwords.
            Operation::Admit | Operation::Secure => {
                &[SecretKind::Admin, SecretKind::App, SecretKind::Replication]
            }
            Operation::MeasureData
            | Operation::Restore
            | Operation::Detach
            | Operation::Remove
            | Operation::Start
            | Operation::Observe => &[SecretKind::Admin],
        }
    }

    async fn earlier_port(&self, host: &HostRef, server: &str) -> Option<u16> {
        MysqlServer::earlier_port(host, server).await
    }

    async fn provision(
        &self,
        target: &ServerRef,
        access: &GroupAccess,
        _master: bool,
    ) -> Result<(), EngineError> {
        server(target)
            .await?
            .ensure_provisioned(
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
        let mysql = server(target).await?;
        match copy {
            Copy::Physical => Ok(mysql.data_files_size().await),
            Copy::Logical => mysql.data_size(access.admin()?, &access.database).await,
        }
    }

    async fn backup(
        &self,
        target: &ServerRef,
        access: &GroupAccess,
        copy: Copy,
        into: &HostRef,
        at: &Path,
    ) -> Result<(), EngineError> {
        let source = server(target).await?;
        let same_host = crate::host::same_host(&target.host, into);
        if copy == Copy::Physical {
            if !same_host {
                return Err(EngineError::Unsupported {
                    what: "a physical copy of a MySQL-family server to another host".into(),
                    remedy: "plan again: the planner takes a dump between hosts".into(),
                });
            }
            return source.backup_files_to(at, access.admin()?).await;
        }
        if same_host {
            source.dump_to(at, access.admin()?, &access.database).await
        } else {
            source
                .dump_to_host(
                    into,
                    at,
                    access.admin()?,
                    access.replication()?,
                    &access.database,
                )
                .await
        }
    }

    async fn backup_is_complete(&self, host: &HostRef, at: &Path, copy: Copy) -> bool {
        match copy {
            Copy::Physical => host.is_file(&MysqlServer::physical_copy_marker(at)).await,
            Copy::Logical => any_file(host, at, &["dump.sql"]).await,
        }
    }

    /// The dump recreates the source's database under its own name (the
    /// replication events name it); the group's user is given it.
    async fn restore(
        &self,
        target: &ServerRef,
        access: &GroupAccess,
        from: &Path,
        copy: Copy,
        take: bool,
        source_database: &str,
    ) -> Result<Restored, EngineError> {
        let mysql = server(target).await?;
        let admin = access.admin()?;
        if copy == Copy::Physical {
            // A copy of a server of the same group: its database and
            // accounts are the group's.
            mysql.restore_files(from, take, admin).await?;
            return Ok(Restored {
                database: Some(source_database.to_string()),
            });
        }
        mysql.restore_dump(from, admin).await?;
        if source_database != access.database {
            mysql
                .grant_database(admin, &access.username, source_database)
                .await?;
        }
        Ok(Restored {
            database: Some(source_database.to_string()),
        })
    }

    fn copy_carries_accounts(&self, copy: Copy) -> bool {
        copy == Copy::Physical
    }

    fn follow_copies_data(&self) -> bool {
        false
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
        server(target)
            .await?
            .allow(networks, &account_secrets(access)?)
            .await
    }

    async fn admit(
        &self,
        target: &ServerRef,
        access: &GroupAccess,
        peer: &HostRef,
    ) -> Result<(), EngineError> {
        server(target)
            .await?
            .admit(&peer.listen_addresses(), &account_secrets(access)?)
            .await
    }

    /// The replica starts from the GTID position of the dump this apply
    /// took of the source and restored on it.
    async fn follow(&self, request: FollowRequest<'_>) -> Result<(), EngineError> {
        let replica = server(request.replica).await?;
        let source = server(request.source).await?;
        let position = match request.restored_from {
            Some(dump) => replica.dump_gtid_position(dump).await?,
            None => None,
        };
        replica
            .enslave_to(
                &source,
                request.source_access.admin()?,
                request.replica_access.admin()?,
                request.source_access.replication()?,
                position.as_deref(),
            )
            .await
    }

    async fn detach(
        &self,
        target: &ServerRef,
        access: &GroupAccess,
        _old_source: Option<&Peer>,
    ) -> Result<(), EngineError> {
        server(target).await?.detach(access.admin()?).await
    }

    async fn remove(
        &self,
        target: &ServerRef,
        access: &GroupAccess,
        _around: &Surroundings,
    ) -> Result<(), EngineError> {
        server(target).await?.ensure_stopped(access.admin()?).await
    }

    async fn start(
        &self,
        target: &ServerRef,
        access: &GroupAccess,
        _around: &Surroundings,
    ) -> Result<(), EngineError> {
        server(target)
            .await?
            .ensure_running_and_replicating(access.admin()?)
            .await
    }

    async fn observe(&self, request: ObserveRequest<'_>) -> Result<Observation, EngineError> {
        let mysql = server(request.server).await?;
        let status = match mysql.replication(request.access.admin()?).await {
            Err(err) => return Ok(down(err)),
            Ok(status) => status,
        };
        let summary = match &status {
            None => "not a replica".to_string(),
            Some(status) => format!(
                "IO thread {}, SQL thread {}, {} behind{}",
                running(status.io_running),
                running(status.sql_running),
                status
                    .seconds_behind
                    .map_or("unknown".into(), |s| format!("{s}s")),
                status
                    .last_error
                    .as_ref()
                    .map(|e| format!("; error: {e}"))
                    .unwrap_or_default()
            ),
        };
        let replication = match (request.replica, status) {
            (false, _) => None,
            (true, None) => Some(ReplicaHealth::broken("it follows no master".into())),
            (true, Some(status)) => {
                let streaming = status.io_running && status.sql_running;
                Some(ReplicaHealth {
                    reconnecting: status.reconnecting,
                    streaming,
                    lag_seconds: status.seconds_behind,
                    detail: (!streaming).then(|| {
                        status.last_error.unwrap_or_else(|| {
                            format!(
                                "replication threads: IO {}, SQL {}",
                                if status.io_running {
                                    "running"
                                } else {
                                    "stopped"
                                },
                                if status.sql_running {
                                    "running"
                                } else {
                                    "stopped"
                                },
                            )
                        })
                    }),
                    held_offset: None,
                })
            }
        };
        Ok(Observation {
            up: true,
            replication,
            summary,
        })
    }

    fn managed_copy(&self) -> Result<Copy, EngineError> {
        Ok(Copy::Logical)
    }

    /// The GTID position the dump records (MariaDB writes it at its end).
    async fn backup_position(
        &self,
        target: &ServerRef,
        _access: &GroupAccess,
        host: &HostRef,
        at: &Path,
    ) -> Option<String> {
        if !crate::host::same_host(&target.host, host) {
            return None;
        }
        let position = server(target).await.ok()?.dump_gtid_position(at).await;
        Some(format!("GTID {}", position.ok()??))
    }

    async fn data_summary(
        &self,
        target: &ServerRef,
        access: &GroupAccess,
    ) -> Result<DataSummary, EngineError> {
        server(target)
            .await?
            .table_rows(access.admin()?, &access.database)
            .await
    }
}

//! Where servers live and how each database does things.
//!
//! [`LocalProvider`] runs real server processes on this machine, with data
//! under the state directory, on loopback ports, as the unprivileged
//! [`SERVICE_USER`] when dbgroups runs as root. [`PostgresServer`] is the
//! PostgreSQL engine on it: initdb, a replication-ready configuration,
//! pg_ctl, accounts through tokio-postgres, pg_basebackup, slot-based
//! streaming and pg_promote. [`RedisServer`] is the Redis engine: a config
//! with `requirepass`/`masterauth`, RDB backups, `REPLICAOF` with a wait for
//! the link and the sync, and `INFO replication`. Failures are
//! [`EngineError`]s carrying the engine's own words.
//!
//! [`MariadbServer`] is the start of the MySQL family (issue 5): a config
//! with the binary log and GTIDs on from birth, install-db, the anonymous
//! accounts removed, mariadb-dump, restores kept out of the replica's
//! binlog, GTID replication (`slave_pos`), detach and `SHOW SLAVE STATUS`.
//! The executor applies MariaDB groups; refresh and `status` do not read
//! MariaDB's replication yet.
//! [`disk`] is the free-space guard run before backups and restores.

pub mod disk;
mod error;
pub mod local;
pub mod mariadb;
pub mod postgres;
pub mod redis_engine;

pub use error::EngineError;
pub use local::{LocalProvider, SERVICE_USER, ServiceUser, free_port, generate_password};
pub use mariadb::MariadbServer;
pub use postgres::PostgresServer;
pub use redis_engine::RedisServer;

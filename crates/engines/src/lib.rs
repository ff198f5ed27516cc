//! Where servers live and how each database does things.
//!
//! [`LocalHost`] runs real server processes on this machine, with data
//! under the state directory, on loopback ports, as the unprivileged
//! [`SERVICE_USER`] when dbgroups runs as root. [`PostgresServer`] is the
//! PostgreSQL engine on it: initdb, a replication-ready configuration,
//! pg_ctl, accounts through tokio-postgres, pg_basebackup, slot-based
//! streaming and pg_promote. [`RedisServer`] is the Redis engine: a config
//! with `requirepass`/`masterauth`, RDB backups, `REPLICAOF` with a wait for
//! the link and the sync, and `INFO replication`. Failures are
//! [`EngineError`]s carrying the engine's own words.
//!
//! [`MysqlServer`] is the MySQL family (MariaDB, MySQL, Percona): a config
//! with the binary log and GTIDs on from birth, the data directory
//! initialised, the anonymous accounts removed, a consistent dump, restores
//! kept out of the replica's GTID history, GTID replication, detach and the
//! replica's status; its [`mysql::Dialect`] holds what each member says
//! differently.
//! [`disk`] is the free-space guard run before backups and restores.

pub mod disk;
pub mod engine;
mod error;
mod exposure;
pub mod host;
pub mod hosts;
pub mod interrupt;
pub mod local;
pub mod mongodb;
pub mod mysql;
pub mod postgres;
pub mod process;
pub mod progress;
pub mod redis_engine;
mod redis_exposed;
pub mod ssh;

pub use engine::{DatabaseEngine, engine_for};
pub use error::{EngineError, with_causes};
pub use host::{Host, HostRef, OsRelease, PackageCheck, Packages, Preflight, Program};
pub use local::{LocalHost, SERVICE_USER, ServiceUser, find_program, free_port, generate_password};
pub use mongodb::MongoServer;
pub use mysql::MysqlServer;
pub use postgres::PostgresServer;
pub use redis_engine::RedisServer;
pub use ssh::{SshClient, SshHost, SshTarget};

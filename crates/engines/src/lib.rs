//! Where servers live and how each database does things.
//!
//! [`LocalProvider`] runs real server processes on this machine, with data
//! under the state directory, on loopback ports, as the unprivileged
//! [`SERVICE_USER`] when dbgroups runs as root. [`PostgresServer`] is the
//! PostgreSQL engine on it: initdb, a replication-ready configuration,
//! pg_ctl, and accounts through tokio-postgres. Failures are
//! [`EngineError`]s carrying the engine's own words.
//!
//! This is the start of issue 4: the executor, the remaining PostgreSQL
//! steps (backup, restore, enslave, promote) and the Redis engine build on
//! these.

mod error;
pub mod local;
pub mod postgres;

pub use error::EngineError;
pub use local::{LocalProvider, SERVICE_USER, ServiceUser, free_port, generate_password};
pub use postgres::PostgresServer;

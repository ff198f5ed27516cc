//! The executor: carries out a plan's steps on real servers.
//!
//! [`run`] takes an [`Apply`] (the plan, the state store and its lock, the
//! provider, a [`Reporter`]) and returns an [`Outcome`]. Steps run on tokio
//! with bounded parallelism in dependency order; state is saved after every
//! step with a journal of what started and finished; after a failure or
//! Ctrl-C nothing new starts and the steps in flight finish. Every step is
//! an idempotent "ensure", so running apply again finishes the job.
//!
//! It applies PostgreSQL and Redis groups (creation, scale ups, replication
//! between groups and applications, imports, re-syncs, starts, removals);
//! the MySQL family and MongoDB come with issue 5.

pub mod backups;
mod crash;
mod error;
mod executor;
pub mod hosts;
mod reporter;
mod runner;
pub mod servers;

pub use error::ApplyError;
pub use executor::{Apply, Outcome, run};
pub use reporter::{Event, Reporter, Silent};

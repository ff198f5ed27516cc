//! Per-engine rules: how each database type does the things a plan needs,
//! so the planner asks these instead of branching on the type.

use dbgroups_manifest::DbType;
use serde::{Deserialize, Serialize};

/// How a backup is taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BackupMethod {
    /// A copy of the data files (pg_basebackup, an RDB snapshot): fast, and
    /// only restorable on the same major version.
    Physical,
    /// A dump of the data (pg_dump, mariadb-dump, mongodump): restorable on
    /// a newer version.
    Logical,
}

impl BackupMethod {
    /// The step id prefix, so a plan says which kind it takes.
    pub fn step_prefix(self) -> &'static str {
        match self {
            BackupMethod::Physical => "backup",
            BackupMethod::Logical => "dump",
        }
    }
}

#[derive(Debug, Clone, Copy)]
pub struct EngineRules {
    /// New slaves start from a backup of the master (backup → restore →
    /// enslave). MongoDB instead adds a member, which copies the data by
    /// initial sync.
    pub slaves_seed_from_backup: bool,
    /// How a replica is seeded.
    pub seed_backup: BackupMethod,
    /// How an import (`import_from`) is copied: it may go to a newer version.
    pub import_backup: BackupMethod,
}

pub fn for_type(db_type: DbType) -> EngineRules {
    match db_type {
        DbType::Postgresql => EngineRules {
            slaves_seed_from_backup: true,
            seed_backup: BackupMethod::Physical,
            import_backup: BackupMethod::Logical,
        },
        DbType::Mysql => EngineRules {
            slaves_seed_from_backup: true,
            seed_backup: BackupMethod::Logical,
            import_backup: BackupMethod::Logical,
        },
        DbType::Redis => EngineRules {
            slaves_seed_from_backup: true,
            seed_backup: BackupMethod::Physical,
            import_backup: BackupMethod::Physical,
        },
        DbType::Mongodb => EngineRules {
            slaves_seed_from_backup: false,
            seed_backup: BackupMethod::Logical,
            import_backup: BackupMethod::Logical,
        },
    }
}

//! Per-engine rules: how each database type does the things a plan needs,
//! so the planner asks these instead of branching on the type.

use dbgroups_manifest::DbType;

#[derive(Debug, Clone, Copy)]
pub struct EngineRules {
    /// New slaves start from a backup of the master (backup → restore →
    /// enslave). MongoDB instead adds a member, which copies the data by
    /// initial sync.
    pub slaves_seed_from_backup: bool,
}

pub fn for_type(db_type: DbType) -> EngineRules {
    match db_type {
        DbType::Mysql | DbType::Postgresql | DbType::Redis => EngineRules {
            slaves_seed_from_backup: true,
        },
        DbType::Mongodb => EngineRules {
            slaves_seed_from_backup: false,
        },
    }
}

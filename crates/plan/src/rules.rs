//! Per-engine rules: how each database type does the things a plan needs,
//! so the planner asks these instead of branching on the type.

use std::collections::{BTreeMap, BTreeSet};

use dbgroups_manifest::{DbType, Engine, Group, Manifest, catalogue};
use serde::{Deserialize, Serialize};

use crate::input::GroupAddress;

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

    /// A restore may move this kind of backup into place instead of
    /// copying it: data files are what the server runs on, a dump is read.
    pub fn can_be_moved(self) -> bool {
        self == BackupMethod::Physical
    }
}

#[derive(Debug, Clone, Copy)]
pub struct EngineRules {
    /// A replica gets its data from the engine's own replication protocol
    /// when it starts following (Redis's full sync on REPLICAOF, MongoDB's
    /// initial sync), so seeding it is one enslave step. Otherwise a
    /// replica starts from a backup of its master: backup → restore →
    /// enslave. (Redis would full-sync anyway: an RDB restored first is
    /// discarded, because a master without replicas writes no replication
    /// offset into it; measured, see docs/benchmarks.md.)
    pub replicas_copy_by_sync: bool,
    /// How a replica of another group (`replicate_from`) is seeded.
    pub seed_backup: BackupMethod,
    /// How a new slave of its own group is seeded (a scale up, a re-sync):
    /// the same accounts on both sides, so a copy of the data files (which
    /// holds them) may serve where a copy between groups may not. See
    /// [`scale_up_backup`] for the engines of a type that differ.
    pub scale_up_backup: BackupMethod,
    /// Its physical copy crosses hosts: pg_basebackup runs on the
    /// receiving host over the replication protocol. The MySQL family's
    /// (`mariadb-backup`) reads the master's files on its own host and
    /// would need a stream between hosts, which is not built: between
    /// hosts it is seeded by a dump.
    pub physical_between_hosts: bool,
    /// A scale up may take its backup from a caught-up slave instead of
    /// the master. PostgreSQL's base backup of a standby starts where the
    /// standby's replay is, which the new replica then streams from the
    /// master. The MySQL family's copy of a slave would have to record the
    /// slave's applied position (`gtid_slave_pos`, `--slave-info`,
    /// `--dump-slave`) rather than its own binary log's, which may be
    /// empty for a slave that has logged nothing since it was seeded: not
    /// built, so its scale ups copy the master.
    pub backup_from_slave: bool,
    /// How an import (`import_from`) is copied: it may go to a newer version.
    pub import_backup: BackupMethod,
    /// The group must have an odd number of members: a MongoDB replica set
    /// elects its primary by majority, and an even count survives no more
    /// failures than one fewer member while splitting votes evenly.
    pub odd_member_count: bool,
    /// A replica's seed copies its source's accounts and passwords with the
    /// data files (PostgreSQL's roles live in the cluster a physical backup
    /// copies), so a group that becomes a replica of another group takes
    /// the source's credentials, and its variables change with them.
    pub replica_takes_source_accounts: bool,
    /// A re-sync replaces a stopped replica's data files and its enslave
    /// starts it (PostgreSQL's restore works on the stopped server), so a
    /// replica found down and broken is re-synchronised without being
    /// started first. The others load a dump into, or sync, a running one.
    pub resync_replaces_stopped_server: bool,
    /// A master that restarts from its own files comes back with a new
    /// replication history, so its replicas copy its whole data set again
    /// and drop whatever they held beyond what it kept. Redis keeps no
    /// replication offset in its append-only file, and with `appendfsync
    /// everysec` a crash loses up to a second of acknowledged writes that
    /// the replicas may hold ("Safety of replication when master has
    /// persistence turned off" in Redis's replication manual). So the plan
    /// does not start such a master while a replica holding data is up
    /// unless `--restart-master` accepts it. The others' replicas resume
    /// from their position (PostgreSQL's WAL, MariaDB's GTID) or are judged
    /// against the restarted master.
    pub restart_discards_replica_data: bool,
    /// The engine restricts its servers on hosts to the clients of
    /// `allow_from` (PostgreSQL's `pg_hba.conf`, the MySQL family's
    /// accounts restricted by host). Where it does not yet, a
    /// group with `allow_from` is refused rather than left open.
    pub access_rules: bool,
    /// Its access rules take a whole IPv6 network. The MySQL family's
    /// accounts name IPv4 networks by netmask only, so an IPv6 `allow_from`
    /// entry there must be one address (`/128`).
    pub ipv6_networks: bool,
    /// Its servers on hosts serve TLS with the application's certificates,
    /// replicas verify their master, and the environment carries
    /// `<P>_CA_CERT` and a URL that asks for verification.
    pub tls_on_hosts: bool,
}

pub fn for_type(db_type: DbType) -> EngineRules {
    match db_type {
        DbType::Postgresql => EngineRules {
            replicas_copy_by_sync: false,
            seed_backup: BackupMethod::Physical,
            scale_up_backup: BackupMethod::Physical,
            physical_between_hosts: true,
            backup_from_slave: true,
            import_backup: BackupMethod::Logical,
            odd_member_count: false,
            replica_takes_source_accounts: true,
            resync_replaces_stopped_server: true,
            restart_discards_replica_data: false,
            access_rules: true,
            ipv6_networks: true,
            tls_on_hosts: true,
        },
        DbType::Mysql => EngineRules {
            replicas_copy_by_sync: false,
            seed_backup: BackupMethod::Logical,
            scale_up_backup: BackupMethod::Physical,
            physical_between_hosts: false,
            backup_from_slave: false,
            import_backup: BackupMethod::Logical,
            odd_member_count: false,
            replica_takes_source_accounts: false,
            resync_replaces_stopped_server: false,
            restart_discards_replica_data: false,
            access_rules: true,
            ipv6_networks: false,
            tls_on_hosts: true,
        },
        DbType::Redis => EngineRules {
            replicas_copy_by_sync: true,
            seed_backup: BackupMethod::Physical,
            scale_up_backup: BackupMethod::Physical,
            physical_between_hosts: true,
            backup_from_slave: false,
            import_backup: BackupMethod::Physical,
            odd_member_count: false,
            replica_takes_source_accounts: false,
            resync_replaces_stopped_server: false,
            restart_discards_replica_data: true,
            access_rules: true,
            ipv6_networks: true,
            tls_on_hosts: true,
        },
        DbType::Mongodb => EngineRules {
            replicas_copy_by_sync: true,
            seed_backup: BackupMethod::Logical,
            scale_up_backup: BackupMethod::Logical,
            physical_between_hosts: true,
            backup_from_slave: false,
            import_backup: BackupMethod::Logical,
            odd_member_count: true,
            replica_takes_source_accounts: false,
            resync_replaces_stopped_server: false,
            restart_discards_replica_data: false,
            access_rules: true,
            ipv6_networks: true,
            tls_on_hosts: true,
        },
    }
}

/// How a new slave of a group of `engine` is seeded from its own group's
/// master: the type's [`EngineRules::scale_up_backup`], but a dump for
/// MySQL and Percona Server, whose physical tool (Percona XtraBackup) is
/// not packaged by Debian; MariaDB's `mariadb-backup` is.
pub fn scale_up_backup(engine: Engine) -> BackupMethod {
    match engine {
        Engine::Mysql | Engine::Percona => BackupMethod::Logical,
        _ => for_type(engine.db_type()).scale_up_backup,
    }
}

/// A MongoDB replica set has at most seven voting members (manual,
/// "Replica Set Members"); the others join with `votes: 0, priority: 0`.
pub const MONGODB_MAX_VOTING_MEMBERS: usize = 7;

/// Whether a group's declared servers would make an even number of voters:
/// two, four or six (from eight on, seven vote).
fn has_even_voters(group: &dbgroups_manifest::Group) -> bool {
    let count = group.servers.len();
    count > 0 && count.is_multiple_of(2) && count < MONGODB_MAX_VOTING_MEMBERS
}

/// The declared servers that join without a vote (`votes: 0, priority:
/// 0`, the manual's alternative to another member, "Replica Set
/// Elections"): the last declared server of a group with an even count
/// that says `add_odd_member: false`. A function of the manifest alone.
pub fn non_voting_members(manifest: &Manifest) -> BTreeSet<String> {
    manifest
        .groups
        .iter()
        .filter(|g| for_type(g.db_type).odd_member_count && !g.adds_odd_member())
        .filter(|g| has_even_voters(g))
        .filter_map(|g| g.servers.last())
        .map(|s| s.unique_name.value.clone())
        .collect()
}

/// The member dbgroups adds to `group` when its declared count is even:
/// `<group>-odd-member`, or with a number when a declared server already
/// has that name, in any case. A function of the manifest alone, so every plan names the
/// same server.
pub fn implied_member_name(group: &str, declared: &BTreeSet<&str>) -> String {
    let base = format!("{group}-odd-member");
    std::iter::once(base.clone())
        .chain((2..).map(|n| format!("{base}-{n}")))
        // Declared names are unique without regard to case (the manifest
        // compares them so), and so must the generated one be.
        .find(|candidate| {
            !declared
                .iter()
                .any(|name| name.eq_ignore_ascii_case(candidate))
        })
        .unwrap_or(base)
}

/// The manifest as the engines need it: a group whose rules want an odd
/// member count and that declares an even number of servers gets one more,
/// made like its last declared server. Returns the completed manifest and
/// the servers added, by name.
pub fn complete_manifest(manifest: &Manifest) -> (Manifest, BTreeMap<String, GroupAddress>) {
    let declared: BTreeSet<&str> = manifest
        .servers()
        .map(|(_, s)| s.unique_name.value.as_str())
        .collect();
    let mut completed = manifest.clone();
    let mut implied = BTreeMap::new();
    for group in &mut completed.groups {
        // Only voters count, and only the first seven members vote: from
        // eight servers on the set has seven voters, an odd number.
        if !(for_type(group.db_type).odd_member_count
            && has_even_voters(group)
            && group.adds_odd_member())
        {
            continue;
        }
        let name = implied_member_name(&group.name.value, &declared);
        let Some(last) = group.servers.last() else {
            continue;
        };
        let mut member = last.clone();
        member.unique_name.value = name.clone();
        // A host can be declared only once; the added member is built by
        // the group's provider wherever it places servers.
        member.address = None;
        group.servers.push(member);
        implied.insert(
            name,
            GroupAddress::new(group.db_type, group.name.value.clone()),
        );
    }
    (completed, implied)
}

/// Why a group's declared version cannot be built by the engines (a
/// catalogued MySQL-family series older than the words dbgroups sends, see
/// [`catalogue::unserved`]): its creation is blocked in the plan instead
/// of failing at the provision.
pub fn unserved_version(group: &Group) -> Option<String> {
    catalogue::unserved(group.engine(), &group.version()?)
}

/// Whether a group of `engine` can be seeded (replicated or imported) from
/// a source of `source_engine`, decided by the source's own engine: `None`
/// when it can, or the reason and a hint. MariaDB and MySQL/Percona share
/// a protocol but not a GTID format or a dump dialect:
/// - MySQL → MariaDB replication: `MASTER_USE_GTID` follows MariaDB GTIDs
///   only, and MySQL's cannot be read as them;
/// - MariaDB → MySQL replication: MySQL's auto-positioning needs MySQL
///   GTIDs;
/// - a mysqldump loaded into MariaDB fails on `SET @@GLOBAL.GTID_PURGED=
///   /*!80000 '+'*/ …`, and a mariadb-dump (10.11.8+) starts with a sandbox
///   line (`/*M!999999\- enable the sandbox mode */`) every MySQL client
///   rejects.
///
/// MySQL and Percona Server count as one engine here.
pub fn mysql_family_crossing(
    source_engine: Engine,
    engine: Engine,
    replicate: bool,
) -> Option<(String, String)> {
    let mysql_like = |e: Engine| matches!(e, Engine::Mysql | Engine::Percona);
    let crossing = (source_engine == Engine::Mariadb && mysql_like(engine))
        || (mysql_like(source_engine) && engine == Engine::Mariadb);
    if !crossing {
        return None;
    }
    let sides = format!("the source runs {source_engine} while this group runs {engine}");
    let reason = if replicate {
        format!(
            "replication needs one GTID format, and {sides}: MariaDB and MySQL/Percona Server use incompatible ones \
             (MASTER_USE_GTID follows only MariaDB's, SOURCE_AUTO_POSITION only MySQL's)"
        )
    } else if engine == Engine::Mariadb {
        format!(
            "an import copies data between groups of one engine, and {sides}: MariaDB refuses mysqldump's \
             SET @@GLOBAL.GTID_PURGED line, and the two differ in system tables, collations and JSON storage"
        )
    } else {
        format!(
            "an import copies data between groups of one engine, and {sides}: every MySQL client refuses \
             mariadb-dump's sandbox line (MariaDB 10.11.8+), and the two differ in system tables, collations \
             and JSON storage"
        )
    };
    let by_hand = if engine == Engine::Mariadb {
        "a mysqldump taken with --set-gtid-purged=OFF, loaded by the mariadb client"
    } else {
        "a mariadb-dump without its first (sandbox) line, loaded by the mysql client"
    };
    Some((
        reason,
        format!(
            "declare `engine: {source_engine}` on this group, or move the data to {engine} yourself ({by_hand}) \
             into a group that neither replicates nor imports from {source_engine}"
        ),
    ))
}

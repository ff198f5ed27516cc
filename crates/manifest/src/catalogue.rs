//! The catalogue of supported versions per engine, and the rules for which
//! versions can replicate from which.
//!
//! The catalogue is static data, not a clock: a series is marked end-of-life
//! when its vendor's support had ended by the date in [`CATALOGUE_DATE`], so
//! validation gives the same answer on every machine and every day.

use crate::model::Engine;

/// When the end-of-life marks below were last checked.
pub const CATALOGUE_DATE: &str = "2026-11-01";

/// A release series (`15`, `8.0`, `10.11`) of one engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Release {
    pub engine: Engine,
    pub series: &'static str,
    pub end_of_life: bool,
}

const fn release(engine: Engine, series: &'static str, end_of_life: bool) -> Release {
    Release {
        engine,
        series,
        end_of_life,
    }
}

const EOL: bool = true;
const SUPPORTED: bool = false;

/// Every version the manifest accepts. Keep `docs/manifest.md` in step.
pub const CATALOGUE: &[Release] = &[
    release(Engine::Postgresql, "9.6", EOL),
    release(Engine::Postgresql, "10", EOL),
    release(Engine::Postgresql, "11", EOL),
    release(Engine::Postgresql, "12", EOL),
    release(Engine::Postgresql, "13", EOL),
    release(Engine::Postgresql, "14", EOL),
    release(Engine::Postgresql, "15", SUPPORTED),
    release(Engine::Postgresql, "16", SUPPORTED),
    release(Engine::Postgresql, "17", SUPPORTED),
    release(Engine::Postgresql, "18", SUPPORTED),
    release(Engine::Mysql, "5.6", EOL),
    release(Engine::Mysql, "5.7", EOL),
    release(Engine::Mysql, "8.0", EOL),
    release(Engine::Mysql, "8.1", EOL),
    release(Engine::Mysql, "8.2", EOL),
    release(Engine::Mysql, "8.3", EOL),
    release(Engine::Mysql, "8.4", SUPPORTED),
    release(Engine::Mysql, "9.0", EOL),
    release(Engine::Mysql, "9.1", EOL),
    release(Engine::Mysql, "9.2", EOL),
    release(Engine::Mysql, "9.3", EOL),
    release(Engine::Mysql, "9.4", EOL),
    // Innovation releases are supported until the next one ships: 9.5
    // ended with 9.6 (2026-01-20), 9.6 with 9.7 LTS (2026-04-21).
    // https://dev.mysql.com/doc/refman/8.4/en/mysql-releases.html
    release(Engine::Mysql, "9.5", EOL),
    release(Engine::Mysql, "9.6", EOL),
    release(Engine::Mysql, "9.7", SUPPORTED),
    release(Engine::Percona, "5.6", EOL),
    release(Engine::Percona, "5.7", EOL),
    release(Engine::Percona, "8.0", EOL),
    release(Engine::Percona, "8.1", EOL),
    release(Engine::Percona, "8.2", EOL),
    release(Engine::Percona, "8.3", EOL),
    release(Engine::Percona, "8.4", SUPPORTED),
    release(Engine::Mariadb, "10.3", EOL),
    release(Engine::Mariadb, "10.4", EOL),
    release(Engine::Mariadb, "10.5", EOL),
    release(Engine::Mariadb, "10.6", EOL),
    release(Engine::Mariadb, "10.11", SUPPORTED),
    release(Engine::Mariadb, "11.4", SUPPORTED),
    release(Engine::Mariadb, "11.8", SUPPORTED),
    release(Engine::Redis, "5.0", EOL),
    release(Engine::Redis, "6.0", EOL),
    release(Engine::Redis, "6.2", EOL),
    release(Engine::Redis, "7.0", SUPPORTED),
    release(Engine::Redis, "7.2", SUPPORTED),
    release(Engine::Redis, "7.4", SUPPORTED),
    release(Engine::Redis, "8.0", SUPPORTED),
    release(Engine::Redis, "8.2", SUPPORTED),
    release(Engine::Mongodb, "4.4", EOL),
    release(Engine::Mongodb, "5.0", EOL),
    release(Engine::Mongodb, "6.0", EOL),
    release(Engine::Mongodb, "7.0", SUPPORTED),
    release(Engine::Mongodb, "8.0", SUPPORTED),
];

/// The version a group gets when its manifest names none: the series Debian
/// stable ships where it ships one, else the vendor's current long-term one.
pub fn default_version(engine: Engine) -> &'static str {
    match engine {
        Engine::Postgresql => "15",
        Engine::Mariadb => "10.11",
        Engine::Mysql | Engine::Percona => "8.4",
        Engine::Redis => "7.0",
        Engine::Mongodb => "7.0",
    }
}

pub fn releases(engine: Engine) -> impl Iterator<Item = &'static Release> {
    CATALOGUE.iter().filter(move |r| r.engine == engine)
}

/// A parsed version: one to three dot-separated numbers, kept with its text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Version {
    pub major: u32,
    pub minor: Option<u32>,
    pub patch: Option<u32>,
}

impl Version {
    pub fn parse(text: &str) -> Option<Self> {
        let mut parts = text.split('.');
        let mut number = |required: bool| -> Option<Option<u32>> {
            match parts.next() {
                None if !required => Some(None),
                None => None,
                Some(p) if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) => {
                    p.parse().ok().map(Some)
                }
                Some(_) => None,
            }
        };
        let major = number(true)??;
        let minor = number(false)?;
        let patch = if minor.is_some() {
            number(false)?
        } else {
            None
        };
        if parts.next().is_some() {
            return None;
        }
        Some(Self {
            major,
            minor,
            patch,
        })
    }

    /// The release series this version belongs to, as the catalogue names it.
    /// PostgreSQL from 10 on is numbered by major alone.
    pub fn series(&self, engine: Engine) -> String {
        match engine {
            Engine::Postgresql if self.major >= 10 => self.major.to_string(),
            _ => format!("{}.{}", self.major, self.minor.unwrap_or(0)),
        }
    }

    /// Compares release series; patch levels count only when both sides
    /// name one (`8.0` means "the current 8.0", not `8.0.0`).
    pub fn compare(&self, other: &Version, engine: Engine) -> std::cmp::Ordering {
        let key = |v: &Version| match engine {
            Engine::Postgresql if v.major >= 10 => (v.major, 0),
            _ => (v.major, v.minor.unwrap_or(0)),
        };
        key(self)
            .cmp(&key(other))
            .then_with(|| match (self.patch, other.patch) {
                (Some(a), Some(b)) => a.cmp(&b),
                _ => std::cmp::Ordering::Equal,
            })
    }
}

/// Why a version is not accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VersionProblem {
    Unparseable,
    NotInCatalogue { series: String },
}

pub fn lookup(engine: Engine, text: &str) -> Result<&'static Release, VersionProblem> {
    let version = Version::parse(text).ok_or(VersionProblem::Unparseable)?;
    let series = version.series(engine);
    releases(engine)
        .find(|r| r.series == series)
        .ok_or(VersionProblem::NotInCatalogue { series })
}

/// The oldest release of a MySQL-family series that dbgroups' statements
/// work on, as `(major, minor, patch)`, or `None` when no release of the
/// series can be served (or the engine is not of the family). Each bound is
/// the release that brought a word dbgroups sends (docs/engines.md cites
/// the manual's page for each):
/// - MySQL/Percona 8.0.26: `START REPLICA` (8.0.22), `CHANGE REPLICATION
///   SOURCE TO` and `GET_SOURCE_PUBLIC_KEY` (8.0.23), `log_replica_updates`
///   and mysqldump `--source-data` (8.0.26);
/// - MySQL/Percona 5.7.8: `mysqld --initialize-insecure` and `CREATE USER
///   IF NOT EXISTS` (5.7.6), `super_read_only` and `DROP USER IF EXISTS`
///   (5.7.8); 5.6 has none of them;
/// - MariaDB 10.4.6: `mysql.global_priv` (10.4.1), the `[mariadbd]` option
///   group and the `mariadbd`/`mariadb-dump`/`mariadb-install-db` names
///   (10.4.6); 10.3 has none of them.
pub fn mysql_family_minimum(engine: Engine, major: u32, minor: u32) -> Option<(u32, u32, u32)> {
    match engine {
        Engine::Mariadb if (major, minor) < (10, 4) => None,
        Engine::Mariadb if (major, minor) == (10, 4) => Some((10, 4, 6)),
        Engine::Mariadb => Some((major, minor, 0)),
        Engine::Mysql | Engine::Percona if (major, minor) < (5, 7) => None,
        Engine::Mysql | Engine::Percona if (major, minor) == (5, 7) => Some((5, 7, 8)),
        Engine::Mysql | Engine::Percona if (major, minor) == (8, 0) => Some((8, 0, 26)),
        Engine::Mysql | Engine::Percona => Some((major, minor, 0)),
        _ => None,
    }
}

/// Why a catalogued MySQL-family version cannot be served by dbgroups'
/// engines (the catalogue accepts it, with its end-of-life warning, because
/// it names a real release), and what would be; `None` when it can, or for
/// other engines. A version naming a patch below the series' minimum is
/// refused too; one naming only the series is checked against the
/// installed server when it is built.
pub fn unserved(engine: Engine, version: &Version) -> Option<String> {
    if !matches!(engine, Engine::Mysql | Engine::Percona | Engine::Mariadb) {
        return None;
    }
    let (major, minor) = (version.major, version.minor.unwrap_or(0));
    let product = engine.product_name();
    let Some(minimum) = mysql_family_minimum(engine, major, minor) else {
        let why = if engine == Engine::Mariadb {
            "it lacks the mysql.global_priv table (MariaDB 10.4.1), the [mariadbd] option group and the \
             mariadbd, mariadb-dump and mariadb-install-db names (10.4.6) that dbgroups uses; \
             use MariaDB 10.4.6 or later"
        } else {
            "it lacks mysqld --initialize-insecure and CREATE USER IF NOT EXISTS (5.7.6) and \
             super_read_only (5.7.8), which dbgroups uses to build servers and keep replicas read-only; \
             use 5.7.8 or later"
        };
        return Some(format!(
            "dbgroups cannot serve {product} {major}.{minor}: {why}"
        ));
    };
    let patch = version.patch?;
    ((major, minor, patch) < minimum).then(|| {
        format!(
            "dbgroups cannot serve {product} {major}.{minor}.{patch}: it needs {}.{}.{} or later in this series \
             (older releases lack words it sends, such as START REPLICA, CHANGE REPLICATION SOURCE TO and \
             log_replica_updates in MySQL 8.0)",
            minimum.0, minimum.1, minimum.2
        )
    })
}

/// Whether a server of `replica` can stream from one of `source`. The error
/// is a sentence saying why not.
pub fn check_replication(
    source: (Engine, &Version),
    replica: (Engine, &Version),
) -> Result<(), String> {
    let ((source_engine, source_version), (replica_engine, replica_version)) = (source, replica);
    let shown = |engine: Engine, v: &Version| format!("{engine} {}", v.series(engine));
    match (source_engine, replica_engine) {
        (Engine::Postgresql, Engine::Postgresql) => {
            if source_version.series(source_engine) != replica_version.series(replica_engine) {
                return Err(format!(
                    "PostgreSQL streaming replication needs the same major version on both sides (source {}, replica {})",
                    shown(source_engine, source_version),
                    shown(replica_engine, replica_version)
                ));
            }
            Ok(())
        }
        (Engine::Mongodb, Engine::Mongodb) => {
            if source_version.series(source_engine) != replica_version.series(replica_engine) {
                return Err(format!(
                    "members of one MongoDB replica set must run the same release series (source {}, replica {})",
                    shown(source_engine, source_version),
                    shown(replica_engine, replica_version)
                ));
            }
            Ok(())
        }
        _ if is_mariadb_mysql_crossing(source_engine, replica_engine) => Err(format!(
            "MariaDB and MySQL/Percona Server use incompatible GTID formats, so {} cannot replicate from {}",
            replica_engine.product_name(),
            source_engine.product_name()
        )),
        _ => {
            if replica_version
                .compare(source_version, replica_engine)
                .is_lt()
            {
                return Err(format!(
                    "a replica must run the same version as its source or a newer one, never older (source {}, replica {})",
                    shown(source_engine, source_version),
                    shown(replica_engine, replica_version)
                ));
            }
            Ok(())
        }
    }
}

/// Whether data can be imported (restored once) from `source` into
/// `destination`: a restore never goes to an older release of the same
/// engine, and never between MariaDB and MySQL/Percona.
pub fn check_import(
    source: (Engine, &Version),
    destination: (Engine, &Version),
) -> Result<(), String> {
    let ((source_engine, source_version), (destination_engine, destination_version)) =
        (source, destination);
    let shown =
        |engine: Engine, v: &Version| format!("{} {}", engine.product_name(), v.series(engine));
    if is_mariadb_mysql_crossing(source_engine, destination_engine) {
        // Their system schemas, GTIDs, collations (MariaDB 11's uca1400)
        // and JSON storage differ: a dump of one is not a backup of the
        // other, and their version numbers say nothing about each other.
        return Err(format!(
            "{} data cannot be imported into {}: a backup is restored only into the engine it was taken from \
             (MySQL and Percona Server count as one); move the data with your own dump and load",
            shown(source_engine, source_version),
            shown(destination_engine, destination_version)
        ));
    }
    // mongorestore guarantees a restore only onto the same major version
    // (or FCV), and not at all for the oplog it replays (Database Tools
    // manual, "mongorestore Behavior, Access, and Usage": "Restore to
    // Matching Server Version"); an import replays the dump's oplog.
    if source_engine == Engine::Mongodb
        && destination_engine == Engine::Mongodb
        && source_version.series(source_engine) != destination_version.series(destination_engine)
    {
        return Err(format!(
            "mongorestore --oplogReplay is supported only between servers of the same release series (source {}, destination {}); \
             import into a group of the source's series, then upgrade that group's servers",
            shown(source_engine, source_version),
            shown(destination_engine, destination_version)
        ));
    }
    // Percona Server is numbered after the MySQL release it is built on,
    // so the two compare as one engine.
    if destination_version
        .compare(source_version, destination_engine)
        .is_lt()
    {
        return Err(format!(
            "a backup cannot be restored into an older release (source {}, destination {})",
            shown(source_engine, source_version),
            shown(destination_engine, destination_version)
        ));
    }
    Ok(())
}

/// MariaDB on one side and MySQL or Percona Server on the other.
fn is_mariadb_mysql_crossing(a: Engine, b: Engine) -> bool {
    let mysql_like = |e: Engine| matches!(e, Engine::Mysql | Engine::Percona);
    (a == Engine::Mariadb && mysql_like(b)) || (mysql_like(a) && b == Engine::Mariadb)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(text: &str) -> Version {
        Version::parse(text).expect("test versions parse")
    }

    #[test]
    fn versions_keep_their_written_precision() {
        assert_eq!(v("10.10").minor, Some(10));
        assert_eq!(v("8.0.36").patch, Some(36));
        assert_eq!(Version::parse("8.x"), None);
        assert_eq!(Version::parse("v8"), None);
        assert_eq!(Version::parse("1.2.3.4"), None);
        assert_eq!(Version::parse(""), None);
    }

    #[test]
    fn series_follow_each_engines_numbering() {
        assert_eq!(v("15.4").series(Engine::Postgresql), "15");
        assert_eq!(v("9.6").series(Engine::Postgresql), "9.6");
        assert_eq!(v("8").series(Engine::Mysql), "8.0");
        assert_eq!(v("10.11.6").series(Engine::Mariadb), "10.11");
    }

    #[test]
    fn every_default_version_is_a_supported_catalogue_entry() {
        for engine in [
            Engine::Mysql,
            Engine::Percona,
            Engine::Mariadb,
            Engine::Postgresql,
            Engine::Redis,
            Engine::Mongodb,
        ] {
            let release = lookup(engine, default_version(engine)).expect("default is catalogued");
            assert!(!release.end_of_life, "{engine} default is end-of-life");
        }
    }

    #[test]
    fn replication_rules() {
        let pg = Engine::Postgresql;
        assert!(check_replication((pg, &v("15")), (pg, &v("15.3"))).is_ok());
        assert!(check_replication((pg, &v("15")), (pg, &v("16"))).is_err());
        let my = Engine::Mysql;
        assert!(check_replication((my, &v("8.0")), (my, &v("8.4"))).is_ok());
        assert!(check_replication((my, &v("8.4")), (my, &v("8.0"))).is_err());
        assert!(check_replication((my, &v("8.0.30")), (my, &v("8.0.20"))).is_err());
        assert!(check_replication((my, &v("8.0.30")), (my, &v("8.0"))).is_ok());
        assert!(check_replication((my, &v("8.0")), (Engine::Percona, &v("8.0"))).is_ok());
        assert!(check_replication((my, &v("8.0")), (Engine::Mariadb, &v("11.4"))).is_err());
        let redis = Engine::Redis;
        assert!(check_replication((redis, &v("7.2")), (redis, &v("7.0"))).is_err());
        let mongo = Engine::Mongodb;
        assert!(check_replication((mongo, &v("7.0")), (mongo, &v("8.0"))).is_err());
        // An import replays the oplog: same series only (issue 21, item 12).
        let across = check_import((mongo, &v("7.0")), (mongo, &v("8.0")));
        assert!(
            across
                .as_ref()
                .is_err_and(|e| e.contains("same release series")),
            "{across:?}"
        );
        assert!(check_import((mongo, &v("8.0")), (mongo, &v("8.0"))).is_ok());
    }
}

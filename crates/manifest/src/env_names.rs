//! The names of the environment variables a group gives the application
//! (docs/reference.md, "What it manages"). Only names live here, because validation must reject
//! group names whose variables would collide; values are the planner's.

use crate::model::DbType;

/// Suffixes every type gets, after `<P>_` (root) or `<P>_<GROUP>_`.
pub const SUFFIXES: &[&str] = &[
    "ADDRESS",
    "ADDRESS_INT",
    "ADDRESS_EXT",
    "PORT",
    "USERNAME",
    "PASSWORD",
    "DATABASE",
    "URL",
    "URL_INT",
    "URL_EXT",
    "SLAVE_ADDRESSES",
    "SLAVE_ADDRESSES_INT",
    "SLAVE_ADDRESSES_EXT",
    // The certificate authority's PEM, for groups whose servers on hosts
    // serve TLS (docs/tls.md).
    "CA_CERT",
];

/// Extra suffixes of one type: a MongoDB replica set's member list.
pub fn extra_suffixes(db_type: DbType) -> &'static [&'static str] {
    match db_type {
        DbType::Mongodb => &["ADDRESSES"],
        _ => &[],
    }
}

/// Whether a variable's value is a secret: passwords, and URLs, which carry
/// the password. Such values are masked everywhere they are shown.
pub fn is_secret(name: &str) -> bool {
    name.ends_with("_PASSWORD") || name.ends_with("_URL") || name.contains("_URL_")
}

pub fn prefix(db_type: DbType) -> &'static str {
    match db_type {
        DbType::Mysql => "MYSQL",
        DbType::Postgresql => "POSTGRESQL",
        DbType::Redis => "REDIS",
        DbType::Mongodb => "MONGODB",
    }
}

/// A group name as it appears inside variable names: upper-cased, every
/// character other than an ASCII letter or digit replaced by `_`.
pub fn group_token(group: &str) -> String {
    group
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect()
}

fn names_with_stem(db_type: DbType, stem: &str) -> Vec<String> {
    SUFFIXES
        .iter()
        .chain(extra_suffixes(db_type))
        .map(|suffix| format!("{stem}_{suffix}"))
        .collect()
}

/// `MYSQL_ADDRESS`, `MYSQL_PORT`, …: the names that follow the primary group.
pub fn root_names(db_type: DbType) -> Vec<String> {
    names_with_stem(db_type, prefix(db_type))
}

/// `MYSQL_VENUS_ADDRESS`, …: the names of one group.
pub fn group_names(db_type: DbType, group: &str) -> Vec<String> {
    names_with_stem(
        db_type,
        &format!("{}_{}", prefix(db_type), group_token(group)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_names_follow_the_design() {
        assert_eq!(group_token("my-venus.2"), "MY_VENUS_2");
        let names = group_names(DbType::Mysql, "venus");
        assert!(names.contains(&"MYSQL_VENUS_ADDRESS".to_string()));
        assert!(names.contains(&"MYSQL_VENUS_SLAVE_ADDRESSES_EXT".to_string()));
        assert!(root_names(DbType::Mongodb).contains(&"MONGODB_ADDRESSES".to_string()));
        assert!(!root_names(DbType::Redis).contains(&"REDIS_ADDRESSES".to_string()));
        assert!(is_secret("MYSQL_VENUS_PASSWORD") && is_secret("REDIS_URL_INT"));
        assert!(!is_secret("MYSQL_USERNAME") && !is_secret("POSTGRESQL_URLS_ADDRESS"));
    }
}

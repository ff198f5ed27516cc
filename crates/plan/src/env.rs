//! The application's environment variables for a state (docs/reference.md), and
//! their difference between two states, with secrets masked.

use std::collections::BTreeMap;

use dbgroups_manifest::{DbType, env_names};
use dbgroups_state::{AppState, GroupState, MASK, ServerState};

/// Shown for a value apply will learn (addresses, ports).
pub const KNOWN_AFTER_APPLY: &str = "(known after apply)";
/// Shown for a secret apply will generate.
pub const GENERATED_AT_APPLY: &str = "(generated at apply)";

pub fn default_port(db_type: DbType) -> u16 {
    match db_type {
        DbType::Mysql => 3306,
        DbType::Postgresql => 5432,
        DbType::Redis => 6379,
        DbType::Mongodb => 27017,
    }
}

/// The user and database a new group's application account gets; decided in
/// the plan so that apply has nothing to choose.
/// Where a new group's account lives when that is not its database:
/// MongoDB's `admin`, so the user still authenticates after an import
/// gives the group another database.
pub fn account_home(db_type: DbType) -> Option<String> {
    (db_type == DbType::Mongodb).then(|| "admin".to_string())
}

pub fn default_account(db_type: DbType, application: &str) -> (String, String) {
    let name: String = application
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect();
    match db_type {
        DbType::Redis => ("default".to_string(), "0".to_string()),
        _ => (name.clone(), name),
    }
}

/// The MongoDB replica set name of a group.
pub fn replica_set_name(application: &str, group: &str) -> String {
    format!("{application}-{group}")
}

/// Every variable for the state, in name order. Unknown values are the
/// placeholders above; secrets are the real values (mask before showing).
pub fn variables(state: &AppState) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for db_type in DbType::ALL {
        let groups: Vec<&GroupState> = state
            .groups
            .iter()
            .filter(|g| g.db_type == db_type)
            .collect();
        for group in &groups {
            let values = group_values(state, group);
            let stem = format!(
                "{}_{}",
                env_names::prefix(db_type),
                env_names::group_token(&group.name)
            );
            for (suffix, value) in &values {
                out.insert(format!("{stem}_{suffix}"), value.clone());
            }
            if group.primary {
                for (suffix, value) in values {
                    out.insert(format!("{}_{suffix}", env_names::prefix(db_type)), value);
                }
            }
        }
    }
    out
}

fn host(server: &ServerState) -> String {
    server
        .address
        .clone()
        .unwrap_or_else(|| KNOWN_AFTER_APPLY.to_string())
}

/// `host`, or `host:port` when the port is not the engine's default (local
/// servers share one host, so their ports tell them apart).
fn host_and_port(db_type: DbType, server: &ServerState, always_port: bool) -> String {
    match (&server.address, server.port) {
        (Some(address), Some(port)) if always_port || port != default_port(db_type) => {
            format!("{address}:{port}")
        }
        (Some(address), Some(_)) => address.clone(),
        _ => KNOWN_AFTER_APPLY.to_string(),
    }
}

/// A group's values; the `_EXT` ones as clients outside reach it: at each
/// server's `public_address` where it has one (DESIGN §2), at its address
/// otherwise.
fn group_values(state: &AppState, group: &GroupState) -> Vec<(&'static str, String)> {
    let mut values = values_at_addresses(state, group);
    let mut public = group.clone();
    for server in &mut public.servers {
        if let Some(address) = server.provider_data.get("public_address") {
            server.address = Some(address.clone());
        }
    }
    if public != *group {
        let outside = values_at_addresses(state, &public);
        for (suffix, value) in &mut values {
            if let Some(base) = suffix.strip_suffix("_EXT")
                && let Some((_, seen)) = outside.iter().find(|(s, _)| *s == base)
            {
                *value = seen.clone();
            }
        }
    }
    values
}

/// A group's values with every server at its `address`.
fn values_at_addresses(state: &AppState, group: &GroupState) -> Vec<(&'static str, String)> {
    let db_type = group.db_type;
    let master = group.master();
    let address = master.map_or_else(|| KNOWN_AFTER_APPLY.to_string(), host);
    let port = master
        .and_then(|m| m.port)
        .map_or_else(|| KNOWN_AFTER_APPLY.to_string(), |p| p.to_string());
    let credentials = state.credentials.get(&group.address());
    let username = credentials.map(|c| c.username.clone()).unwrap_or_default();
    let database = credentials.map(|c| c.database.clone()).unwrap_or_default();
    let password = credentials.and_then(|c| c.password.as_ref()).map_or_else(
        || GENERATED_AT_APPLY.to_string(),
        |p| p.expose().to_string(),
    );
    let slaves: Vec<String> = group
        .slaves()
        .map(|s| host_and_port(db_type, s, false))
        .collect();
    let url = match (master, credentials.and_then(|c| c.password.as_ref())) {
        (Some(m), Some(secret)) if m.address.is_some() && m.port.is_some() => {
            let hosts = if db_type == DbType::Mongodb {
                group
                    .servers
                    .iter()
                    .map(|s| host_and_port(db_type, s, true))
                    .collect::<Vec<_>>()
                    .join(",")
            } else {
                host_and_port(db_type, m, true)
            };
            let pass = percent_encode(secret.expose());
            match db_type {
                // Redis 6+ ACLs name the user: `redis-cli -u` (7.0) refuses
                // the older `redis://:PASSWORD@` form with WRONGPASS.
                // `rediss://` is TLS for redis-cli (`-u`, with `--cacert`),
                // redis-py, ioredis and go-redis alike: docs/tls.md.
                DbType::Redis => format!(
                    "{}://{}:{pass}@{hosts}/{database}",
                    if tls_applies(group) {
                        "rediss"
                    } else {
                        "redis"
                    },
                    percent_encode(if username.is_empty() {
                        "default"
                    } else {
                        &username
                    })
                ),
                // The user lives in its account database (`admin` for the
                // groups made since issue 21), whatever database the URL
                // names: after an import from another application that is
                // the source's database. Older groups keep their user in
                // `database` and their URL as it was. `tls=true` on hosts:
                // drivers and mongosh then verify the certificate and the
                // name against the CA file they are given (docs/tls.md).
                DbType::Mongodb => format!(
                    "mongodb://{}:{pass}@{hosts}/{database}?replicaSet={}{}{}",
                    percent_encode(&username),
                    replica_set_name(&state.application, &group.name),
                    credentials
                        .and_then(|c| c.auth_database.as_deref())
                        .map(|home| format!("&authSource={}", percent_encode(home)))
                        .unwrap_or_default(),
                    if tls_applies(group) { "&tls=true" } else { "" }
                ),
                // libpq verifies the server against the authority it is
                // given (`sslrootcert`, or ~/.postgresql/root.crt):
                // docs/tls.md.
                DbType::Postgresql => format!(
                    "postgresql://{}:{pass}@{hosts}/{database}{}",
                    percent_encode(&username),
                    if tls_applies(group) {
                        "?sslmode=verify-full"
                    } else {
                        ""
                    }
                ),
                // The form MySQL's own clients read (`ssl-mode` in the
                // URI-like connection strings of mysqlsh and Connector/J,
                // `--ssl-mode` for mysql): verify the certificate and the
                // name against `<P>_CA_CERT`. docs/tls.md.
                DbType::Mysql => format!(
                    "mysql://{}:{pass}@{hosts}/{database}{}",
                    percent_encode(&username),
                    if tls_applies(group) {
                        "?ssl-mode=VERIFY_IDENTITY"
                    } else {
                        ""
                    }
                ),
            }
        }
        _ => KNOWN_AFTER_APPLY.to_string(),
    };
    let mut values = vec![
        ("ADDRESS", address.clone()),
        ("ADDRESS_INT", address.clone()),
        ("ADDRESS_EXT", address),
        ("PORT", port),
        ("USERNAME", username),
        ("PASSWORD", password),
        ("DATABASE", database),
        ("URL", url.clone()),
        ("URL_INT", url.clone()),
        ("URL_EXT", url),
        ("SLAVE_ADDRESSES", slaves.join(",")),
        ("SLAVE_ADDRESSES_INT", slaves.join(",")),
        ("SLAVE_ADDRESSES_EXT", slaves.join(",")),
    ];
    if tls_applies(group) {
        let authority = state
            .authority
            .as_ref()
            .map_or_else(|| KNOWN_AFTER_APPLY.to_string(), |a| a.certificate.clone());
        values.push(("CA_CERT", authority));
    }
    if db_type == DbType::Mongodb {
        let members: Vec<String> = group
            .servers
            .iter()
            .map(|s| host_and_port(db_type, s, true))
            .collect();
        values.push(("ADDRESSES", members.join(",")));
    }
    values
}

/// Whether the group's clients connect with TLS: its master is on a host
/// (servers here listen on loopback only, without TLS) and its engine
/// serves TLS there.
fn tls_applies(group: &GroupState) -> bool {
    crate::rules::for_type(group.db_type).tls_on_hosts
        && group
            .master()
            .is_some_and(|m| m.provider != dbgroups_manifest::ProviderKind::Local)
}

fn percent_encode(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// Masks secret values. A secret that differs from `before` (and is not a
/// placeholder) is shown as changed, so a reviewer still sees that it moves.
pub fn masked(
    variables: &BTreeMap<String, String>,
    before: Option<&BTreeMap<String, String>>,
) -> BTreeMap<String, String> {
    variables
        .iter()
        .map(|(name, value)| {
            let shown = if !env_names::is_secret(name) || is_placeholder(value) {
                value.clone()
            } else if before.is_some_and(|b| b.get(name).is_some_and(|old| old != value)) {
                format!("{MASK} changed")
            } else {
                MASK.to_string()
            };
            (name.clone(), shown)
        })
        .collect()
}

pub fn is_placeholder(value: &str) -> bool {
    value == KNOWN_AFTER_APPLY || value == GENERATED_AT_APPLY
}

/// `NAME=value` lines, as the environment file and `dbgroups env` write
/// them. A value of several lines (a certificate) is written in double
/// quotes with `\n` for each line break, on one line: what dotenv readers
/// (python-dotenv, Node's dotenv, godotenv, Docker Compose) expand.
pub fn dotenv(variables: &BTreeMap<String, String>) -> String {
    variables
        .iter()
        .map(|(name, value)| {
            if value.contains('\n') {
                format!("{name}=\"{}\"\n", value.replace('\n', "\\n"))
            } else {
                format!("{name}={value}\n")
            }
        })
        .collect()
}

/// A unified diff of two masked variable sets, `-`/`+` per changed line.
pub fn diff_lines(
    before: &BTreeMap<String, String>,
    after: &BTreeMap<String, String>,
) -> Vec<String> {
    let (old, new) = (dotenv(before), dotenv(after));
    similar::TextDiff::from_lines(&old, &new)
        .iter_all_changes()
        .filter_map(|change| {
            let sign = match change.tag() {
                similar::ChangeTag::Delete => '-',
                similar::ChangeTag::Insert => '+',
                similar::ChangeTag::Equal => return None,
            };
            Some(format!("{sign} {}", change.value().trim_end()))
        })
        .collect()
}

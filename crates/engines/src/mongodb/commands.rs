//! The documents and arguments MongoDB is sent, as pure functions, so they
//! are unit-tested without a server (tests/integration/mongodb_commands.rs).
//!
//! References: MongoDB manual, "replSetInitiate", "replSetGetConfig",
//! "replSetReconfig" (a reconfig adds or removes at most one voting member,
//! and its `version` must grow), "replSetGetStatus" (`members[].stateStr`),
//! "Deploy Self-Managed Replica Set With Keyfile Authentication" (keyfile
//! of 6 to 1024 base64 characters, owner-only permissions; the first user
//! is created through the localhost exception), mongodump `--oplog` and
//! mongorestore `--oplogReplay`.

use mongodb::bson::{Bson, Document, doc};

/// `replSetInitiate`'s config: a set of one member, the first server.
pub fn initiate(set: &str, host: &str) -> Document {
    doc! {
        "replSetInitiate": {
            "_id": set,
            "members": [{ "_id": 0, "host": host }],
        }
    }
}

/// The config with `host` added as a voting, data-bearing member, or
/// `None` when it is already a member. The new `_id` is one more than the
/// largest in use (ids are never reused while a member holds them).
/// MongoDB 4.4+ keeps a new voting member out of elections (`newlyAdded`)
/// until its initial sync ends, so adding it cannot stall the majority.
pub fn with_member(config: &Document, host: &str) -> Result<Option<Document>, String> {
    let members = members(config)?;
    if members.iter().any(|m| member_host(m) == Some(host)) {
        return Ok(None);
    }
    let next_id = members
        .iter()
        .filter_map(|m| m.get("_id").and_then(as_i64))
        .max()
        .map_or(0, |id| id + 1);
    let mut updated = members.to_vec();
    updated.push(doc! { "_id": int(next_id), "host": host });
    Ok(Some(next_version(config, updated)?))
}

/// The config without `host`, or `None` when it is not a member (the
/// `rs.remove` of the shell).
pub fn without_member(config: &Document, host: &str) -> Result<Option<Document>, String> {
    let members = members(config)?;
    if !members.iter().any(|m| member_host(m) == Some(host)) {
        return Ok(None);
    }
    let kept: Vec<Document> = members
        .iter()
        .filter(|m| member_host(m) != Some(host))
        .cloned()
        .collect();
    Ok(Some(next_version(config, kept)?))
}

/// `replSetReconfig` for a changed config.
pub fn reconfig(config: Document) -> Document {
    doc! { "replSetReconfig": config }
}

fn next_version(config: &Document, members: Vec<Document>) -> Result<Document, String> {
    let version = config
        .get("version")
        .and_then(as_i64)
        .ok_or("the replica set config has no version")?;
    let mut updated = config.clone();
    updated.insert("version", int(version + 1));
    updated.insert(
        "members",
        members.into_iter().map(Bson::Document).collect::<Vec<_>>(),
    );
    Ok(updated)
}

fn members(config: &Document) -> Result<Vec<Document>, String> {
    let array = config
        .get_array("members")
        .map_err(|_| "the replica set config has no members".to_string())?;
    array
        .iter()
        .map(|m| {
            m.as_document()
                .cloned()
                .ok_or_else(|| "a replica set member is not a document".to_string())
        })
        .collect()
}

fn member_host(member: &Document) -> Option<&str> {
    member.get_str("host").ok()
}

/// The server writes these numbers as 32-bit ints; they are sent back so.
fn int(value: i64) -> Bson {
    i32::try_from(value).map_or(Bson::Int64(value), Bson::Int32)
}

fn as_i64(value: &Bson) -> Option<i64> {
    match value {
        Bson::Int32(v) => Some(i64::from(*v)),
        Bson::Int64(v) => Some(*v),
        Bson::Double(v) if v.fract() == 0.0 => Some(*v as i64),
        _ => None,
    }
}

/// One member as `replSetGetStatus` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberStatus {
    pub host: String,
    /// PRIMARY, SECONDARY, STARTUP2 (initial sync), RECOVERING, …
    pub state: String,
    /// Seconds behind the primary's last write, for a secondary.
    pub lag_seconds: Option<u64>,
    /// `lastHeartbeatMessage` or `infoMessage`, when the member says why.
    pub message: Option<String>,
}

/// The members of a `replSetGetStatus` answer.
pub fn member_statuses(status: &Document) -> Result<Vec<MemberStatus>, String> {
    let members = status
        .get_array("members")
        .map_err(|_| "replSetGetStatus has no members".to_string())?;
    let primary_optime = members
        .iter()
        .filter_map(Bson::as_document)
        .find(|m| m.get_str("stateStr") == Ok("PRIMARY"))
        .and_then(optime_date_ms);
    members
        .iter()
        .map(|m| {
            let m = m.as_document().ok_or("a member status is not a document")?;
            let state = m.get_str("stateStr").unwrap_or("UNKNOWN").to_string();
            let lag_seconds = match (state.as_str(), primary_optime, optime_date_ms(m)) {
                ("SECONDARY", Some(primary), Some(own)) => {
                    Some(u64::try_from((primary - own).max(0) / 1000).unwrap_or(0))
                }
                _ => None,
            };
            let message = ["lastHeartbeatMessage", "infoMessage"]
                .iter()
                .filter_map(|k| m.get_str(k).ok())
                .find(|text| !text.is_empty())
                .map(str::to_string);
            Ok(MemberStatus {
                host: m.get_str("name").unwrap_or_default().to_string(),
                state,
                lag_seconds,
                message,
            })
        })
        .collect()
}

fn optime_date_ms(member: &Document) -> Option<i64> {
    member
        .get_datetime("optimeDate")
        .ok()
        .map(|d| d.timestamp_millis())
}

/// `createUser` for the group's administrator (the first user, made
/// through the localhost exception) and `updateUser` to reset its password.
pub fn create_admin(username: &str, password: &str) -> Document {
    doc! { "createUser": username, "pwd": password, "roles": [{ "role": "root", "db": "admin" }] }
}

/// The application's user, in its own database (the URL's auth source).
pub fn create_app_user(username: &str, password: &str, database: &str) -> Document {
    doc! { "createUser": username, "pwd": password, "roles": [{ "role": "readWrite", "db": database }] }
}

/// `grantRolesToUser`: `readWrite` on another database.
pub fn grant_read_write(username: &str, database: &str) -> Document {
    doc! { "grantRolesToUser": username, "roles": [{ "role": "readWrite", "db": database }] }
}

pub fn update_password(username: &str, password: &str) -> Document {
    doc! { "updateUser": username, "pwd": password }
}

/// mongod's config file (YAML). Authorization and the keyfile are on from
/// the first start, so adding members never restarts the primary.
pub fn config_file(paths: &ConfigPaths<'_>, port: u16, set: &str) -> String {
    format!(
        "# Written by dbgroups; changes here are overwritten.\n\
         storage:\n  dbPath: {data}\n\
         net:\n  bindIp: 127.0.0.1\n  port: {port}\n\
         replication:\n  replSetName: {set}\n\
         security:\n  keyFile: {keyfile}\n  authorization: enabled\n\
         systemLog:\n  destination: file\n  path: {log}\n  logAppend: true\n\
         processManagement:\n  pidFilePath: {pid}\n",
        data = paths.data_dir,
        keyfile = paths.keyfile,
        log = paths.log_file,
        pid = paths.pid_file,
    )
}

#[derive(Debug, Clone, Copy)]
pub struct ConfigPaths<'a> {
    pub data_dir: &'a str,
    pub keyfile: &'a str,
    pub log_file: &'a str,
    pub pid_file: &'a str,
}

/// mongodump of the whole instance with the oplog written during the dump,
/// so the copy is consistent to one moment (`--oplog` works only on a whole
/// instance of a replica set member). The password comes from `--config`.
pub fn dump_args(config: &str, username: &str, port: u16, out: &str) -> Vec<String> {
    vec![
        format!("--config={config}"),
        format!("--username={username}"),
        format!("--host=127.0.0.1:{port}"),
        "--authenticationDatabase=admin".into(),
        "--oplog".into(),
        format!("--out={out}"),
    ]
}

/// mongorestore replaying the dump's oplog. The target's own users and
/// replica set configuration are kept: `admin` and `config` are excluded.
pub fn restore_args(config: &str, username: &str, port: u16, dir: &str) -> Vec<String> {
    vec![
        format!("--config={config}"),
        format!("--username={username}"),
        format!("--host=127.0.0.1:{port}"),
        "--authenticationDatabase=admin".into(),
        "--oplogReplay".into(),
        "--drop".into(),
        "--nsExclude=admin.*".into(),
        "--nsExclude=config.*".into(),
        dir.to_string(),
    ]
}

/// The YAML `--config` file the database tools read the password from, so
/// it never appears in an argument (the tools read only `password`, `uri`
/// and `sslPEMKeyPassword` from it).
pub fn tools_config(password: &str) -> String {
    format!("password: {password}\n")
}

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

/// The recorded master's `priority`: higher than every other member's
/// (1, the default), so after a failover it takes the primary back once it
/// has caught up, and the state's master is the set's primary again
/// (manual, "Adjust Priority for Replica Set Member").
pub const MASTER_PRIORITY: i32 = 2;

/// At most 50 members, at most 7 of them voting (manual, "Replica Set
/// Members": "A replica set can have up to 50 members but only 7 voting
/// members").
pub const MAX_MEMBERS: usize = 50;
pub const MAX_VOTING_MEMBERS: usize = 7;

/// `replSetInitiate`'s config: a set of one member, the first server, with
/// the master's priority.
pub fn initiate(set: &str, host: &str) -> Document {
    doc! {
        "replSetInitiate": {
            "_id": set,
            "members": [{ "_id": 0, "host": host, "priority": MASTER_PRIORITY }],
        }
    }
}

/// Whether a member of a config votes (`votes` defaults to 1).
fn votes(member: &Document) -> bool {
    member.get("votes").and_then(as_i64).unwrap_or(1) > 0
}

/// How many voting members a config has.
pub fn voting_members(config: &Document) -> Result<usize, String> {
    Ok(members(config)?.iter().filter(|m| votes(m)).count())
}

/// The config with `host` added as a data-bearing member, or `None` when
/// it is already a member. The new `_id` is one more than the largest in
/// use (ids are never reused while a member holds them). It votes when
/// `voting` is asked and the set has fewer than seven voters; otherwise it
/// is added with `votes: 0, priority: 0` (a non-voting member must have
/// priority 0). A set of 50 members takes no more. MongoDB 4.4+ keeps a
/// new voting member out of elections (`newlyAdded`) until its initial
/// sync ends, so adding it cannot stall the majority; one reconfig adds
/// one member, so it adds at most one voter.
pub fn with_member(
    config: &Document,
    host: &str,
    voting: bool,
) -> Result<Option<Document>, String> {
    let members = members(config)?;
    if members.iter().any(|m| member_host(m) == Some(host)) {
        return Ok(None);
    }
    if members.len() >= MAX_MEMBERS {
        return Err(format!(
            "the replica set already has {} members, MongoDB's maximum: {host} cannot join",
            members.len()
        ));
    }
    let next_id = members
        .iter()
        .filter_map(|m| m.get("_id").and_then(as_i64))
        .max()
        .map_or(0, |id| id + 1);
    let voters = members.iter().filter(|m| votes(m)).count();
    let mut member = doc! { "_id": int(next_id), "host": host };
    if !voting || voters >= MAX_VOTING_MEMBERS {
        member.insert("votes", 0);
        member.insert("priority", 0);
    }
    let mut updated = members.to_vec();
    updated.push(member);
    Ok(Some(next_version(config, updated)?))
}

/// Whether `member` of this config has `votes: 0`.
pub fn is_non_voting(config: &Document, host: &str) -> Result<bool, String> {
    Ok(members(config)?
        .iter()
        .any(|m| member_host(m) == Some(host) && !votes(m)))
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
    /// The member that answered (`self: true`).
    pub is_self: bool,
    /// `optimeDate` in milliseconds, when reported.
    pub optime_ms: Option<i64>,
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
                is_self: m.get_bool("self").unwrap_or(false),
                optime_ms: optime_date_ms(m),
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

/// What a member's own `replSetGetStatus` says about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MemberHealth {
    /// PRIMARY or SECONDARY: a recorded slave may have become the primary
    /// after a failover, and the recorded master a secondary; both serve.
    Healthy { lag_seconds: Option<u64> },
    /// STARTUP, STARTUP2 (initial sync), RECOVERING, ROLLBACK, …: on its
    /// way, and not to be wiped (a wipe would restart a long initial sync).
    Syncing { detail: String },
    /// Cannot recover by itself: too stale to catch up (`tooStale`, manual
    /// "Resync a Member of a Self-Managed Replica Set"), removed from the
    /// set, or an arbiter. Only these (or `--resync`) are re-synchronised.
    Broken { detail: String },
}

/// Judges `host` from its own `replSetGetStatus` answer.
pub fn own_health(status: &Document, host: &str) -> MemberHealth {
    let members = member_statuses(status).unwrap_or_default();
    let own = members
        .iter()
        .find(|m| m.is_self)
        .or_else(|| members.iter().find(|m| m.host == host));
    let too_stale = status.get_bool("tooStale").unwrap_or(false);
    let said = |m: &MemberStatus| match &m.message {
        Some(message) => format!("{}: {message}", m.state),
        None => m.state.clone(),
    };
    match own {
        _ if too_stale => MemberHealth::Broken {
            detail: format!(
                "{} is too stale to catch up (tooStale): its oplog no longer overlaps any member's",
                own.map_or_else(|| "RECOVERING".to_string(), said)
            ),
        },
        None => MemberHealth::Broken {
            detail: format!("{host} is not a member of the group's replica set"),
        },
        Some(m) => match m.state.as_str() {
            "PRIMARY" | "SECONDARY" => MemberHealth::Healthy {
                lag_seconds: m.lag_seconds,
            },
            "REMOVED" | "ARBITER" => MemberHealth::Broken { detail: said(m) },
            _ => MemberHealth::Syncing {
                detail: progress_detail(status, m),
            },
        },
    }
}

fn progress_detail(status: &Document, member: &MemberStatus) -> String {
    let mut detail = match &member.message {
        Some(message) => format!("{}: {message}", member.state),
        None => member.state.clone(),
    };
    if let Ok(sync) = status.get_document("initialSyncStatus")
        && let (Some(copied), Some(total)) = (
            sync.get("approxTotalBytesCopied").and_then(as_i64),
            sync.get("approxTotalDataSize").and_then(as_i64),
        )
    {
        detail.push_str(&format!(
            ", initial sync copied {copied} of about {total} bytes"
        ));
    }
    detail
}

/// What changes while an initial sync advances: the member's state and
/// optime, and from its own status (4.2.1+ reports `initialSyncStatus`
/// during STARTUP2) the bytes copied, the ops applied and the databases
/// cloned. The wait for SECONDARY goes on while this changes.
pub fn sync_progress(member: &MemberStatus, own_status: Option<&Document>) -> String {
    let sync = own_status.and_then(|s| s.get_document("initialSyncStatus").ok());
    let number = |key: &str| {
        sync.and_then(|s| s.get(key))
            .and_then(as_i64)
            .map_or_else(String::new, |n| n.to_string())
    };
    let cloned = sync
        .and_then(|s| s.get_document("databases").ok())
        .and_then(|d| d.get("databasesCloned"))
        .and_then(as_i64)
        .map_or_else(String::new, |n| n.to_string());
    format!(
        "{}|{}|{}|{}|{}",
        member.state,
        member.optime_ms.map_or_else(String::new, |t| t.to_string()),
        number("approxTotalBytesCopied"),
        number("appliedOps"),
        cloned
    )
}

/// A member state from which no wait reaches SECONDARY.
pub fn never_secondary(member: &MemberStatus) -> bool {
    matches!(member.state.as_str(), "REMOVED" | "ARBITER")
}

/// How long the progress of a sync has stood still.
#[derive(Debug, Default)]
pub struct StallClock {
    last: Option<String>,
    since: u64,
}

impl StallClock {
    /// Seconds since `token` last changed, `now` being seconds from any
    /// fixed start.
    pub fn stalled_for(&mut self, token: &str, now: u64) -> u64 {
        if self.last.as_deref() != Some(token) {
            self.last = Some(token.to_string());
            self.since = now;
        }
        now.saturating_sub(self.since)
    }
}

/// What one member's `hello` says about the set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hello {
    pub writable_primary: bool,
    /// The current primary, as this member knows it.
    pub primary: Option<String>,
    pub set_name: Option<String>,
}

/// Manual, "hello": `isWritablePrimary`, `primary`, `setName`.
pub fn read_hello(answer: &Document) -> Hello {
    Hello {
        writable_primary: answer.get_bool("isWritablePrimary").unwrap_or(false),
        primary: answer
            .get_str("primary")
            .ok()
            .filter(|p| !p.is_empty())
            .map(str::to_string),
        set_name: answer.get_str("setName").ok().map(str::to_string),
    }
}

/// The primary of `set` from the members' `hello` answers (`None` for a
/// member that did not answer): a member that says it is the writable
/// primary, else the primary the others name. A reconfig goes there, not
/// to the recorded master, which after a failover is a secondary and
/// refuses it (NotWritablePrimary).
pub fn choose_primary(answers: &[(String, Option<Hello>)], set: &str) -> Result<String, String> {
    let of_set = |hello: &&Hello| hello.set_name.as_deref() == Some(set);
    if let Some((host, _)) = answers.iter().find(|(_, hello)| {
        hello
            .as_ref()
            .filter(of_set)
            .is_some_and(|h| h.writable_primary)
    }) {
        return Ok(host.clone());
    }
    let named = answers
        .iter()
        .filter_map(|(_, hello)| hello.as_ref().filter(of_set)?.primary.clone())
        .find(|primary| answers.iter().any(|(host, _)| host == primary));
    named.ok_or_else(|| {
        let asked: Vec<&str> = answers.iter().map(|(host, _)| host.as_str()).collect();
        let elsewhere = answers
            .iter()
            .find_map(|(_, hello)| hello.as_ref().filter(of_set)?.primary.clone());
        match elsewhere {
            // The member this step acts on is itself the primary.
            Some(primary) => format!(
                "{primary} is the primary of {set}, and it is the member this step changes: step it down first (rs.stepDown() on it), then apply again"
            ),
            None => format!(
                "no member of {set} is primary (asked {}): the set has no majority, or its members are down",
                asked.join(", ")
            ),
        }
    })
}

/// `createUser` for the group's administrator (the first user, made
/// through the localhost exception) and `updateUser` to reset its password.
pub fn create_admin(username: &str, password: &str) -> Document {
    doc! { "createUser": username, "pwd": password, "roles": [{ "role": "root", "db": "admin" }] }
}

/// The application's user. It is created in `admin`, and the URL names
/// `authSource=admin`: after an import from another application the URL's
/// database is the source's, and a user kept in the group's own database
/// would no longer authenticate through it (manual, "Connection String
/// Options": `authSource` defaults to the URL's database).
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
/// the first start, so adding members never restarts the primary. Every
/// string is a double-quoted YAML scalar, so a path with `: ` or `#` in it
/// is read as written. `bind_ip` is the host's listen address;
/// `cache_size_gb` is WiredTiger's cache ([`cache_size_gb`]).
pub fn config_file(
    paths: &ConfigPaths<'_>,
    bind_ip: &str,
    port: u16,
    set: &str,
    cache_size_gb: f64,
    tls: Option<&TlsPaths<'_>>,
) -> String {
    format!(
        "# Written by dbgroups; changes here are overwritten.\n\
         storage:\n  dbPath: {data}\n  wiredTiger:\n    engineConfig:\n      cacheSizeGB: {cache_size_gb:.2}\n\
         net:\n  bindIp: {bind_ip}\n  port: {port}\n{tls}\
         replication:\n  replSetName: {set}\n\
         security:\n  keyFile: {keyfile}\n  authorization: \"enabled\"\n\
         systemLog:\n  destination: \"file\"\n  path: {log}\n  logAppend: true\n\
         processManagement:\n  pidFilePath: {pid}\n",
        data = yaml_string(paths.data_dir),
        bind_ip = yaml_string(bind_ip),
        tls = tls.map(tls_section).unwrap_or_default(),
        set = yaml_string(set),
        keyfile = yaml_string(paths.keyfile),
        log = yaml_string(paths.log_file),
        pid = yaml_string(paths.pid_file),
    )
}

/// The TLS files of a server on a host (docs/tls.md, "MongoDB").
#[derive(Debug, Clone, Copy)]
pub struct TlsPaths<'a> {
    /// Its certificate followed by its key, in one PEM file (mongod reads
    /// both from `certificateKeyFile`).
    pub certificate_key: &'a str,
    /// The authorities it verifies peers against (`CAFile`).
    pub trusted: &'a str,
}

/// `net.tls` (manual, "Configure mongod and mongos for TLS/SSL" and the
/// configuration file options, MongoDB 4.2+): TLS on every connection,
/// loopback included (`requireTLS`), the members' own connections to each
/// other too (they present the same certificate, verified against
/// `CAFile`); clients show no certificate
/// (`allowConnectionsWithoutCertificates`: they log in with SCRAM, and the
/// keyfile stays the members' credential); TLS 1.2 at least.
fn tls_section(tls: &TlsPaths<'_>) -> String {
    format!(
        "  tls:\n    mode: \"requireTLS\"\n    certificateKeyFile: {key}\n    CAFile: {ca}\n    \
         allowConnectionsWithoutCertificates: true\n    disabledProtocols: \"TLS1_0,TLS1_1\"\n",
        key = yaml_string(tls.certificate_key),
        ca = yaml_string(tls.trusted),
    )
}

/// The port a config written by [`config_file`] names (`  port: 27018`
/// under `net:`), so a re-run keeps an earlier provision's port.
pub fn port_in_config(text: &str) -> Option<u16> {
    text.lines()
        .find_map(|line| line.trim().strip_prefix("port:"))
        .and_then(|port| port.trim().parse().ok())
}

#[derive(Debug, Clone, Copy)]
pub struct ConfigPaths<'a> {
    pub data_dir: &'a str,
    pub keyfile: &'a str,
    pub log_file: &'a str,
    pub pid_file: &'a str,
}

/// A YAML double-quoted scalar: `\\`, `"` and control characters escaped.
pub fn yaml_string(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => out.push_str(&format!("\\u{:04x}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// WiredTiger's cache for one of `mongods` servers sharing a host of
/// `ram_bytes`. MongoDB's default is the larger of 50% of (RAM − 1 GB) and
/// 256 MB *per mongod*, so several members on one host would each claim
/// half the RAM; the manual says to lower `cacheSizeGB` when several
/// mongod run on one machine. Each gets an equal share of that 50%, never
/// less than 0.25 GB (the setting's minimum).
pub fn cache_size_gb(ram_bytes: u64, mongods: usize) -> f64 {
    const GB: f64 = 1024.0 * 1024.0 * 1024.0;
    let ram_gb = ram_bytes as f64 / GB;
    let share = (ram_gb - 1.0).max(0.0) * 0.5 / mongods.max(1) as f64;
    (share.max(0.25) * 100.0).floor() / 100.0
}

/// mongodump of the whole instance with the oplog written during the dump,
/// so the copy is consistent to one moment (`--oplog` works only on a whole
/// instance of a replica set member). The password comes from `--config`;
/// `dial_address` is the server's host as a client dials it.
pub fn dump_args(
    config: &str,
    username: &str,
    dial_address: &str,
    port: u16,
    out: &str,
    tls_ca: Option<&str>,
) -> Vec<String> {
    let mut args = vec![
        format!("--config={config}"),
        format!("--username={username}"),
        format!("--host={dial_address}:{port}"),
        "--authenticationDatabase=admin".into(),
    ];
    args.extend(tls_args(tls_ca));
    args.extend(["--oplog".into(), format!("--out={out}")]);
    args
}

/// `--tls --tlsCAFile=<authority>` for a server that serves TLS (the
/// database tools' manuals, "--tls", "--tlsCAFile"): the tools then check
/// the server's certificate against the authority and the name dialled
/// (`--host`, the server's address, which its certificate names). No
/// client certificate: the server does not ask for one.
pub fn tls_args(tls_ca: Option<&str>) -> Vec<String> {
    match tls_ca {
        Some(ca) => vec!["--tls".into(), format!("--tlsCAFile={ca}")],
        None => Vec::new(),
    }
}

/// mongorestore replaying the dump's oplog, onto the whole dump. The
/// staged dump holds no `admin` or `config` database (they are deleted
/// from it after mongodump, [`SYSTEM_DATABASES`]), so the target keeps its
/// own users, roles and replica set data; mongorestore refuses
/// `--oplogReplay` with any namespace filter, so the filter cannot be an
/// argument ([`restore_argument_problems`]). `dial_address` is as in
/// [`dump_args`].
pub fn restore_args(
    config: &str,
    username: &str,
    dial_address: &str,
    port: u16,
    dir: &str,
    tls_ca: Option<&str>,
) -> Vec<String> {
    let mut args = vec![
        format!("--config={config}"),
        format!("--username={username}"),
        format!("--host={dial_address}:{port}"),
        "--authenticationDatabase=admin".into(),
    ];
    args.extend(tls_args(tls_ca));
    args.extend(["--oplogReplay".into(), "--drop".into(), dir.to_string()]);
    args
}

/// The databases removed from a staged dump before it is restored: the
/// source's users and roles (`admin`) and its sessions and cluster data
/// (`config`) are not the target's to take.
pub const SYSTEM_DATABASES: [&str; 2] = ["admin", "config"];

/// mongorestore's own refusals of an argument list (mongo-tools,
/// `mongorestore/mongorestore.go`, `ParseAndValidateOptions`), so a test
/// applies them to ours: `--oplogReplay` with includes (`--nsInclude`,
/// `--db`), excludes (`--nsExclude`, `--excludeCollection`,
/// `--excludeCollectionsWithPrefix`) or renames (`--nsFrom`/`--nsTo`);
/// `--oplogLimit` without `--oplogReplay`; a password in an argument
/// (ours never: it is in `--config`).
pub fn restore_argument_problems(args: &[String]) -> Vec<String> {
    let has = |name: &str| {
        args.iter()
            .any(|a| a == name || a.starts_with(&format!("{name}=")))
    };
    let mut problems = Vec::new();
    if has("--oplogReplay") {
        if has("--nsInclude") || has("--db") || has("-d") {
            problems.push("cannot use --oplogReplay with includes specified".to_string());
        }
        if has("--nsExclude") || has("--excludeCollection") || has("--excludeCollectionsWithPrefix")
        {
            problems.push("cannot use --oplogReplay with excludes specified".to_string());
        }
        if has("--nsFrom") || has("--nsTo") {
            problems.push("cannot use --oplogReplay with namespace renames specified".to_string());
        }
    } else if has("--oplogLimit") {
        problems.push("cannot use --oplogLimit without --oplogReplay enabled".to_string());
    }
    if has("--password") || has("-p") || args.iter().any(|a| a.contains("://") && a.contains('@')) {
        problems.push("a password is in an argument".to_string());
    }
    problems
}

/// The YAML `--config` file the database tools read the password from, so
/// it never appears in an argument (the tools read only `password`, `uri`
/// and `sslPEMKeyPassword` from it). Quoted: a generated password may hold
/// any character YAML gives a meaning to.
pub fn tools_config(password: &str) -> String {
    format!("password: {}\n", yaml_string(password))
}

/// The bytes a logical copy holds: the sum of `dbStats.dataSize` (the
/// uncompressed size of the documents; `listDatabases`' `totalSize` and
/// `sizeOnDisk` are the compressed files, which a dump is larger than)
/// over the databases a dump copies.
pub fn copied_databases(list_databases: &Document) -> Vec<String> {
    list_databases
        .get_array("databases")
        .map(|dbs| {
            dbs.iter()
                .filter_map(|d| d.as_document()?.get_str("name").ok())
                .filter(|name| !SYSTEM_DATABASES.contains(name) && *name != "local")
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

/// `dbStats`' `dataSize`, whatever number type the server used.
pub fn data_size_of(db_stats: &Document) -> u64 {
    db_stats
        .get("dataSize")
        .and_then(|v| match v {
            Bson::Double(n) if *n >= 0.0 => Some(*n as u64),
            other => as_i64(other).and_then(|n| u64::try_from(n).ok()),
        })
        .unwrap_or(0)
}

/// Whether `answer` (a command's error code) means a reconfig may succeed
/// on a re-read config: another reconfig in progress (109
/// ConfigurationInProgress), the previous one not yet committed (308
/// CurrentConfigNotCommittedYet), a version that another reconfig used
/// first (103 NewReplicaSetConfigurationIncompatible), or a quorum check
/// that a just-started member did not answer yet (74 NodeNotFound).
pub fn reconfig_retryable(code: i32) -> bool {
    [109, 308, 103, 74].contains(&code)
}

/// `rotateCertificates` (MongoDB 5.0+, manual "rotateCertificates"): a
/// running mongod reads its certificate, key and CA files again from the
/// paths its config names; connections already open keep theirs.
pub fn rotate_certificates() -> Document {
    doc! { "rotateCertificates": 1, "message": "dbgroups renewed this server's certificate" }
}

/// Whether mongod of `series` rotates certificates online
/// ([`rotate_certificates`], 5.0+); 4.4 is restarted instead.
pub fn rotates_certificates_online(series: &str) -> bool {
    series_of(series)
        .and_then(|s| s.split('.').next()?.parse::<u32>().ok())
        .is_some_and(|major| major >= 5)
}

/// `mongod --shutdown --dbpath <dir>`: stops the mongod whose data
/// directory this is, without logging in.
pub fn shutdown_args(data_dir: &str) -> Vec<String> {
    vec!["--shutdown".into(), format!("--dbpath={data_dir}")]
}

/// The release series `mongod --version` reports: its first line is
/// `db version v7.0.14` (manual, "mongod --version").
pub fn installed_series(version_output: &str) -> Option<String> {
    let line = version_output
        .lines()
        .find(|l| l.starts_with("db version"))?;
    let number = line
        .trim_start_matches("db version")
        .trim()
        .trim_start_matches('v');
    series_of(number)
}

/// `7.0` of `7.0`, `7.0.14` or `7.0.14-rc1`.
pub fn series_of(version: &str) -> Option<String> {
    let mut parts = version.split(['.', '-']);
    let major: u32 = parts.next()?.parse().ok()?;
    let minor: u32 = parts.next()?.parse().ok()?;
    Some(format!("{major}.{minor}"))
}

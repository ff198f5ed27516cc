//! MongoDB's documents and tool arguments, checked against the manual
//! without a server (MongoDB cannot be installed here). Each test names the
//! page it follows.

use dbgroups_engines::mongodb::commands::{self, ConfigPaths};
use mongodb::bson::{DateTime, Document, doc};

fn config(version: i32, hosts: &[(i32, &str)]) -> Document {
    let members: Vec<Document> = hosts
        .iter()
        .map(|(id, host)| doc! { "_id": *id, "host": *host, "priority": 1, "votes": 1 })
        .collect();
    doc! { "_id": "shop-default", "version": version, "term": 3, "members": members, "settings": { "chainingAllowed": true } }
}

/// Manual, "replSetInitiate": `{ _id: <set>, members: [{ _id: 0, host }] }`;
/// "Adjust Priority for Replica Set Member": the recorded master's priority
/// is above the default 1 of every other member, so after a failover it
/// takes the primary back once it has caught up.
#[test]
fn the_first_server_initiates_a_set_of_itself_with_the_higher_priority() {
    assert_eq!(
        commands::initiate("shop-default", "127.0.0.1:27017"),
        doc! { "replSetInitiate": { "_id": "shop-default", "members": [{ "_id": 0, "host": "127.0.0.1:27017", "priority": 2 }] } }
    );
    const { assert!(commands::MASTER_PRIORITY > 1) };
    // Members added later take the default priority (1).
    let current = config(1, &[(0, "127.0.0.1:27017")]);
    let updated = commands::with_member(&current, "127.0.0.1:27018", true)
        .expect("valid")
        .expect("a change");
    let added = updated.get_array("members").expect("members")[1]
        .as_document()
        .cloned()
        .expect("a document");
    assert!(added.get("priority").is_none(), "{added}");
}

/// Manual, "replSetReconfig" / "rs.add()": the new config keeps every
/// member and setting, adds one member with an unused `_id`, and raises
/// `version` by one.
#[test]
fn adding_a_member_keeps_the_config_and_raises_its_version() {
    let current = config(4, &[(0, "127.0.0.1:27017"), (3, "127.0.0.1:27018")]);
    let updated = commands::with_member(&current, "127.0.0.1:27019", true)
        .expect("a valid config")
        .expect("a change");
    assert_eq!(updated.get_i32("version"), Ok(5));
    assert_eq!(
        updated.get_document("settings"),
        current.get_document("settings")
    );
    let members = updated.get_array("members").expect("members");
    assert_eq!(members.len(), 3);
    assert_eq!(
        members[2].as_document(),
        Some(&doc! { "_id": 4, "host": "127.0.0.1:27019" })
    );
    assert_eq!(
        commands::reconfig(updated.clone()),
        doc! { "replSetReconfig": updated }
    );
}

#[test]
fn adding_a_member_twice_changes_nothing() {
    let current = config(4, &[(0, "127.0.0.1:27017"), (1, "127.0.0.1:27018")]);
    assert_eq!(
        commands::with_member(&current, "127.0.0.1:27018", true),
        Ok(None)
    );
}

/// Manual, "rs.remove()": the member is dropped, the others and their ids
/// are kept, and `version` rises.
#[test]
fn removing_a_member_keeps_the_others() {
    let current = config(
        7,
        &[
            (0, "127.0.0.1:27017"),
            (1, "127.0.0.1:27018"),
            (2, "127.0.0.1:27019"),
        ],
    );
    let updated = commands::without_member(&current, "127.0.0.1:27018")
        .expect("valid")
        .expect("a change");
    assert_eq!(updated.get_i32("version"), Ok(8));
    let hosts: Vec<&str> = updated
        .get_array("members")
        .expect("members")
        .iter()
        .filter_map(|m| m.as_document()?.get_str("host").ok())
        .collect();
    assert_eq!(hosts, ["127.0.0.1:27017", "127.0.0.1:27019"]);
    assert_eq!(
        commands::without_member(&updated, "127.0.0.1:27018"),
        Ok(None)
    );
}

#[test]
fn a_config_without_members_or_version_is_an_error_not_a_guess() {
    assert!(commands::with_member(&doc! { "version": 1 }, "h:1", true).is_err());
    assert!(commands::with_member(&doc! { "members": [] }, "h:1", true).is_err());
}

/// Manual, "replSetGetStatus": `members[].name`, `stateStr`, `optimeDate`,
/// `lastHeartbeatMessage`/`infoMessage`.
#[test]
fn status_reads_each_members_state_and_lag() {
    let now = DateTime::from_millis(1_700_000_100_000);
    let behind = DateTime::from_millis(1_700_000_088_000);
    let status = doc! {
        "set": "shop-default",
        "members": [
            { "_id": 0, "name": "127.0.0.1:27017", "stateStr": "PRIMARY", "optimeDate": now, "self": true },
            { "_id": 1, "name": "127.0.0.1:27018", "stateStr": "SECONDARY", "optimeDate": behind, "lastHeartbeatMessage": "" },
            { "_id": 2, "name": "127.0.0.1:27019", "stateStr": "STARTUP2", "infoMessage": "initial sync in progress" },
        ]
    };
    let members = commands::member_statuses(&status).expect("readable");
    assert_eq!(members.len(), 3);
    assert_eq!(members[0].state, "PRIMARY");
    assert_eq!(members[0].lag_seconds, None);
    assert_eq!(members[1].state, "SECONDARY");
    assert_eq!(members[1].lag_seconds, Some(12));
    assert_eq!(members[1].message, None, "an empty message is no message");
    assert_eq!(members[2].state, "STARTUP2");
    assert_eq!(
        members[2].message.as_deref(),
        Some("initial sync in progress")
    );
}

/// Manual, "Deploy a Replica Set With Keyfile Authentication" and the
/// configuration file options: replication.replSetName, security.keyFile,
/// security.authorization, net.bindIp.
#[test]
fn the_config_file_has_the_set_the_keyfile_and_authorization_from_birth() {
    let text = commands::config_file(
        &ConfigPaths {
            data_dir: "/srv/m/data",
            keyfile: "/srv/m/keyfile",
            log_file: "/srv/m/mongod.log",
            pid_file: "/srv/m/run/mongod.pid",
        },
        "127.0.0.1",
        27018,
        "shop-default",
        1.5,
        None,
    );
    insta::assert_snapshot!("mongod_conf", text);
    let root = marked_yaml::parse_yaml(0, &text).expect("valid YAML");
    let value = |section: &str, key: &str| -> String {
        root.as_mapping()
            .and_then(|m| m.get_mapping(section))
            .and_then(|m| m.get_scalar(key))
            .map(|s| s.as_str().to_string())
            .unwrap_or_else(|| panic!("{section}.{key} is missing"))
    };
    assert_eq!(value("replication", "replSetName"), "shop-default");
    assert_eq!(value("security", "authorization"), "enabled");
    assert_eq!(value("security", "keyFile"), "/srv/m/keyfile");
    assert_eq!(value("net", "bindIp"), "127.0.0.1");
    assert_eq!(value("net", "port"), "27018");
    let cache = root
        .as_mapping()
        .and_then(|m| m.get_mapping("storage"))
        .and_then(|m| m.get_mapping("wiredTiger"))
        .and_then(|m| m.get_mapping("engineConfig"))
        .and_then(|m| m.get_scalar("cacheSizeGB"))
        .map(|s| s.as_str().to_string());
    assert_eq!(cache.as_deref(), Some("1.50"));
}

/// Manual, "Configure mongod and mongos for TLS/SSL" and the
/// configuration file options (`net.tls`, MongoDB 4.2+): a server on a host
/// requires TLS on every connection, names its certificate-and-key file and
/// the authorities it trusts, asks clients for no certificate (they log in
/// with SCRAM), refuses TLS 1.0 and 1.1, and keeps its keyfile for the
/// members' own authentication. Written to the manual, not run here.
#[test]
fn a_server_on_a_host_requires_tls_with_its_own_files() {
    let tls = commands::TlsPaths {
        certificate_key: "/var/lib/dbgroups/servers/m1/tls/server.pem",
        trusted: "/var/lib/dbgroups/servers/m1/tls/trusted.crt",
    };
    let text = commands::config_file(
        &ConfigPaths {
            data_dir: "/var/lib/dbgroups/servers/m1/data",
            keyfile: "/var/lib/dbgroups/servers/m1/keyfile",
            log_file: "/var/lib/dbgroups/servers/m1/mongod.log",
            pid_file: "/var/lib/dbgroups/servers/m1/run/mongod.pid",
        },
        "198.18.0.11,127.0.0.1",
        27017,
        "shop-default",
        1.5,
        Some(&tls),
    );
    insta::assert_snapshot!("mongod_conf_tls", text);
    let root = marked_yaml::parse_yaml(0, &text).expect("valid YAML");
    let net = root
        .as_mapping()
        .and_then(|m| m.get_mapping("net"))
        .expect("net");
    let setting = |key: &str| -> String {
        net.get_mapping("tls")
            .and_then(|m| m.get_scalar(key))
            .map(|s| s.as_str().to_string())
            .unwrap_or_else(|| panic!("net.tls.{key} is missing"))
    };
    assert_eq!(setting("mode"), "requireTLS");
    assert_eq!(setting("certificateKeyFile"), tls.certificate_key);
    assert_eq!(setting("CAFile"), tls.trusted);
    assert_eq!(setting("allowConnectionsWithoutCertificates"), "true");
    assert_eq!(setting("disabledProtocols"), "TLS1_0,TLS1_1");
    // The rest is as without TLS: the port read back, the keyfile kept.
    assert_eq!(commands::port_in_config(&text), Some(27017));
    assert_eq!(
        root.as_mapping()
            .and_then(|m| m.get_mapping("security"))
            .and_then(|m| m.get_scalar("keyFile"))
            .map(|s| s.as_str().to_string())
            .as_deref(),
        Some("/var/lib/dbgroups/servers/m1/keyfile")
    );
    // A server on this machine (loopback only) has no `tls` section.
    let plain = commands::config_file(
        &ConfigPaths {
            data_dir: "/d",
            keyfile: "/k",
            log_file: "/l",
            pid_file: "/p",
        },
        "127.0.0.1",
        27017,
        "shop-default",
        1.5,
        None,
    );
    assert!(!plain.contains("tls"), "{plain}");
}

/// The database tools' manuals, `--tls` and `--tlsCAFile`: against a
/// server that requires TLS, mongodump and mongorestore connect over TLS
/// and verify its certificate against the authority file on the host they
/// run on; `--host` is the server's address, which its certificate names.
/// The password stays in `--config`.
#[test]
fn dump_and_restore_of_a_tls_server_verify_it_and_keep_the_password_out_of_argv() {
    let dump = commands::dump_args(
        "/st/tools.yaml",
        "dbgroups-admin",
        "198.18.0.11",
        27017,
        "/st/dump",
        Some("/st/authority.crt"),
    );
    assert_eq!(
        dump,
        [
            "--config=/st/tools.yaml",
            "--username=dbgroups-admin",
            "--host=198.18.0.11:27017",
            "--authenticationDatabase=admin",
            "--tls",
            "--tlsCAFile=/st/authority.crt",
            "--oplog",
            "--out=/st/dump",
        ]
    );
    let restore = commands::restore_args(
        "/s/m1/tools.yaml",
        "dbgroups-admin",
        "198.18.0.12",
        27017,
        "/st/dump",
        Some("/s/m1/tls/authority.crt"),
    );
    assert!(restore.contains(&"--tls".to_string()), "{restore:?}");
    assert!(
        restore.contains(&"--tlsCAFile=/s/m1/tls/authority.crt".to_string()),
        "{restore:?}"
    );
    assert!(restore.contains(&"--host=198.18.0.12:27017".to_string()));
    assert_eq!(restore.last().map(String::as_str), Some("/st/dump"));
    assert_eq!(
        commands::restore_argument_problems(&restore),
        Vec::<String>::new(),
        "no password, no filter beside --oplogReplay"
    );
    for args in [&dump, &restore] {
        assert!(
            !args
                .iter()
                .any(|a| a.starts_with("--password") || a.starts_with("--tlsCertificateKeyFile")),
            "{args:?}"
        );
    }
    // Without TLS, no TLS argument at all.
    let plain = commands::dump_args("/c", "u", "127.0.0.1", 27017, "/o", None);
    assert!(!plain.iter().any(|a| a.starts_with("--tls")), "{plain:?}");
}

/// Manual, "rotateCertificates" (new in 5.0): a running mongod reads its
/// renewed files again; 4.4 has no such command and is restarted.
#[test]
fn renewed_certificates_are_rotated_online_from_five_on() {
    assert_eq!(
        commands::rotate_certificates().get_i32("rotateCertificates"),
        Ok(1)
    );
    for series in ["5.0", "6.0", "7.0", "8.0", "7.0.14"] {
        assert!(commands::rotates_certificates_online(series), "{series}");
    }
    assert!(!commands::rotates_certificates_online("4.4"));
    assert!(!commands::rotates_certificates_online("not a version"));
}

/// An earlier provision's port is read back from the config it wrote.
#[test]
fn the_port_is_read_back_from_the_config_file() {
    let text = commands::config_file(
        &ConfigPaths {
            data_dir: "/srv/m/data",
            keyfile: "/srv/m/keyfile",
            log_file: "/srv/m/mongod.log",
            pid_file: "/srv/m/run/mongod.pid",
        },
        "127.0.0.1",
        27018,
        "shop-default",
        1.5,
        None,
    );
    assert_eq!(commands::port_in_config(&text), Some(27018));
    assert_eq!(commands::port_in_config("net:\n  bindIp: \"x\"\n"), None);
}

/// YAML scalars are quoted: a path holding `: `, `#` or a quote is read
/// back exactly as written (unquoted, `# x` would start a comment and
/// `a: b` a mapping).
#[test]
fn config_values_with_yaml_characters_are_read_back_as_written() {
    let awkward = "/srv/a: b #c/\"q\"\\d";
    let text = commands::config_file(
        &ConfigPaths {
            data_dir: awkward,
            keyfile: "/k",
            log_file: "/l",
            pid_file: "/p",
        },
        "127.0.0.1",
        27017,
        "shop-default",
        0.25,
        None,
    );
    let root = marked_yaml::parse_yaml(0, &text).expect("valid YAML");
    let data = root
        .as_mapping()
        .and_then(|m| m.get_mapping("storage"))
        .and_then(|m| m.get_scalar("dbPath"))
        .map(|s| s.as_str().to_string());
    assert_eq!(data.as_deref(), Some(awkward));
    let password = "p#a: \"s\\s";
    let tools = commands::tools_config(password);
    let tools_root = marked_yaml::parse_yaml(0, &tools).expect("valid YAML");
    assert_eq!(
        tools_root
            .as_mapping()
            .and_then(|m| m.get_scalar("password"))
            .map(|s| s.as_str().to_string())
            .as_deref(),
        Some(password)
    );
}

/// Configuration file options, `storage.wiredTiger.engineConfig.cacheSizeGB`:
/// the default is the larger of 50% of (RAM − 1 GB) and 256 MB per
/// mongod, and the setting's minimum is 0.25; members sharing a host split
/// that half.
#[test]
fn members_on_one_host_share_the_wiredtiger_cache() {
    const GIB: u64 = 1 << 30;
    assert_eq!(commands::cache_size_gb(17 * GIB, 1), 8.0);
    assert_eq!(commands::cache_size_gb(17 * GIB, 4), 2.0);
    assert_eq!(commands::cache_size_gb(16 * GIB, 3), 2.5);
    assert_eq!(
        commands::cache_size_gb(GIB, 3),
        0.25,
        "never below the minimum"
    );
    assert_eq!(commands::cache_size_gb(0, 0), 0.25);
}

/// mongodump/mongorestore manuals: `--oplog` with a whole-instance dump,
/// `--oplogReplay` to restore to one moment; the password only in the
/// `--config` file. mongorestore refuses `--oplogReplay` with any
/// namespace filter, so the target's users are kept by taking `admin` and
/// `config` out of the staged dump, not by `--nsExclude`.
#[test]
fn dump_and_restore_take_the_oplog_and_no_password_argument() {
    let dump = commands::dump_args(
        "/s/tools.yaml",
        "dbgroups-admin",
        "127.0.0.1",
        27017,
        "/st/dump",
        None,
    );
    assert!(dump.contains(&"--oplog".to_string()));
    assert!(dump.contains(&"--config=/s/tools.yaml".to_string()));
    assert!(
        !dump
            .iter()
            .any(|a| a.starts_with("--db") || a.starts_with("--password"))
    );
    let restore = commands::restore_args(
        "/s/tools.yaml",
        "dbgroups-admin",
        "127.0.0.1",
        27018,
        "/st/dump",
        None,
    );
    for arg in ["--oplogReplay", "--drop"] {
        assert!(restore.contains(&arg.to_string()), "missing {arg}");
    }
    assert!(
        !restore.iter().any(|a| a.starts_with("--ns")),
        "{restore:?}"
    );
    assert_eq!(restore.last().map(String::as_str), Some("/st/dump"));
    assert_eq!(
        commands::restore_argument_problems(&restore),
        Vec::<String>::new()
    );
    assert_eq!(commands::SYSTEM_DATABASES, ["admin", "config"]);
    assert_eq!(commands::tools_config("secret"), "password: \"secret\"\n");
}

/// mongo-tools' `ParseAndValidateOptions`, applied to argument lists: the
/// arguments dbgroups sent before issue 21 are refused exactly as a real
/// mongorestore refuses them.
#[test]
fn mongorestores_own_rules_refuse_a_filtered_oplog_replay() {
    let args = |list: &[&str]| list.iter().map(|a| a.to_string()).collect::<Vec<_>>();
    let old = args(&[
        "--oplogReplay",
        "--drop",
        "--nsExclude=admin.*",
        "--nsExclude=config.*",
        "/st/dump",
    ]);
    assert_eq!(
        commands::restore_argument_problems(&old),
        ["cannot use --oplogReplay with excludes specified"]
    );
    assert_eq!(
        commands::restore_argument_problems(&args(&["--oplogReplay", "--nsInclude=shop.*"])),
        ["cannot use --oplogReplay with includes specified"]
    );
    assert_eq!(
        commands::restore_argument_problems(&args(&["--oplogReplay", "--db=shop"])),
        ["cannot use --oplogReplay with includes specified"]
    );
    assert_eq!(
        commands::restore_argument_problems(&args(&[
            "--oplogReplay",
            "--nsFrom=a.*",
            "--nsTo=b.*"
        ])),
        ["cannot use --oplogReplay with namespace renames specified"]
    );
    assert_eq!(
        commands::restore_argument_problems(&args(&["--oplogLimit=1:1"])),
        ["cannot use --oplogLimit without --oplogReplay enabled"]
    );
    assert_eq!(
        commands::restore_argument_problems(&args(&["--password=x"])),
        ["a password is in an argument"]
    );
}

/// The backup-room check measures `dbStats.dataSize` (uncompressed, what a
/// dump writes) over the databases a dump copies, not `listDatabases`'
/// `totalSize`/`sizeOnDisk` (compressed files). Documented samples.
#[test]
fn the_data_size_is_the_uncompressed_size_of_the_copied_databases() {
    let list = doc! {
        "databases": [
            { "name": "admin", "sizeOnDisk": 40960_i64, "empty": false },
            { "name": "config", "sizeOnDisk": 61440_i64, "empty": false },
            { "name": "local", "sizeOnDisk": 1_000_000_i64, "empty": false },
            { "name": "shop", "sizeOnDisk": 2_000_000_i64, "empty": false },
            { "name": "reports", "sizeOnDisk": 500_000_i64, "empty": false },
        ],
        "totalSize": 3_102_400_i64,
        "ok": 1.0,
    };
    assert_eq!(commands::copied_databases(&list), ["shop", "reports"]);
    let stats = doc! { "db": "shop", "collections": 3, "objects": 1000, "dataSize": 9_000_000.0, "storageSize": 2_000_000.0, "ok": 1.0 };
    assert_eq!(commands::data_size_of(&stats), 9_000_000);
    assert_eq!(commands::data_size_of(&doc! { "dataSize": 12_i64 }), 12);
    assert_eq!(commands::data_size_of(&doc! { "dataSize": 7 }), 7);
}

/// Manual, "Replica Set Members": at most 50 members, at most 7 voting;
/// "Configure Non-Voting Replica Set Member": a non-voting member has
/// `votes: 0` and `priority: 0`.
#[test]
fn the_eighth_member_joins_without_a_vote_and_the_fifty_first_not_at_all() {
    let seven: Vec<(i32, String)> = (0..7)
        .map(|i| (i, format!("127.0.0.1:{}", 27017 + i)))
        .collect();
    let hosts: Vec<(i32, &str)> = seven.iter().map(|(i, h)| (*i, h.as_str())).collect();
    let current = config(9, &hosts);
    assert_eq!(commands::voting_members(&current), Ok(7));
    let updated = commands::with_member(&current, "127.0.0.1:28000", true)
        .expect("valid")
        .expect("a change");
    let added = updated.get_array("members").expect("members")[7]
        .as_document()
        .cloned()
        .expect("a document");
    assert_eq!(added.get_i32("votes"), Ok(0));
    assert_eq!(added.get_i32("priority"), Ok(0));
    assert_eq!(commands::voting_members(&updated), Ok(7));
    assert_eq!(
        commands::is_non_voting(&updated, "127.0.0.1:28000"),
        Ok(true)
    );
    // Asked not to vote, a member joins without a vote even in a small set.
    let small = config(1, &[(0, "127.0.0.1:27017")]);
    let quiet = commands::with_member(&small, "127.0.0.1:27018", false)
        .expect("valid")
        .expect("a change");
    assert_eq!(commands::is_non_voting(&quiet, "127.0.0.1:27018"), Ok(true));
    assert_eq!(commands::voting_members(&quiet), Ok(1));

    let fifty: Vec<(i32, String)> = (0..50)
        .map(|i| (i, format!("127.0.0.1:{}", 27017 + i)))
        .collect();
    let hosts: Vec<(i32, &str)> = fifty.iter().map(|(i, h)| (*i, h.as_str())).collect();
    let full = config(60, &hosts);
    let refused = commands::with_member(&full, "127.0.0.1:29000", true);
    assert!(
        refused.as_ref().is_err_and(|e| e.contains("50 members")),
        "{refused:?}"
    );
}

/// Manual, "hello": `isWritablePrimary`, `primary`, `setName`. After a
/// failover the recorded master answers as a secondary naming the new
/// primary, and reconfigs go to that one.
#[test]
fn the_primary_is_found_by_hello_after_a_failover() {
    let a = doc! { "isWritablePrimary": false, "secondary": true, "setName": "shop-default", "primary": "127.0.0.1:27018", "me": "127.0.0.1:27017", "hosts": ["127.0.0.1:27017", "127.0.0.1:27018", "127.0.0.1:27019"], "ok": 1.0 };
    let b = doc! { "isWritablePrimary": true, "secondary": false, "setName": "shop-default", "primary": "127.0.0.1:27018", "me": "127.0.0.1:27018", "ok": 1.0 };
    let answers = vec![
        (
            "127.0.0.1:27017".to_string(),
            Some(commands::read_hello(&a)),
        ),
        (
            "127.0.0.1:27018".to_string(),
            Some(commands::read_hello(&b)),
        ),
        ("127.0.0.1:27019".to_string(), None),
    ];
    assert_eq!(
        commands::choose_primary(&answers, "shop-default").as_deref(),
        Ok("127.0.0.1:27018")
    );
    // The new primary does not answer: the secondary's word is taken.
    let without_b = vec![answers[0].clone(), ("127.0.0.1:27018".to_string(), None)];
    assert_eq!(
        commands::choose_primary(&without_b, "shop-default").as_deref(),
        Ok("127.0.0.1:27018")
    );
    // The primary is the member being changed (not among those asked).
    let only_a = vec![answers[0].clone()];
    let error = commands::choose_primary(&only_a, "shop-default");
    assert!(
        error.as_ref().is_err_and(
            |e| e.contains("127.0.0.1:27018 is the primary") && e.contains("rs.stepDown()")
        ),
        "{error:?}"
    );
    // Another set's primary is not ours; no primary at all is an error.
    assert!(commands::choose_primary(&answers, "other-set").is_err());
    let electing = doc! { "isWritablePrimary": false, "secondary": true, "setName": "shop-default", "ok": 1.0 };
    let none = vec![(
        "127.0.0.1:27017".to_string(),
        Some(commands::read_hello(&electing)),
    )];
    let error = commands::choose_primary(&none, "shop-default");
    assert!(
        error.as_ref().is_err_and(|e| e.contains("no member")),
        "{error:?}"
    );
}

fn own_status(state: &str, extra: Document) -> Document {
    let mut own = doc! { "_id": 1, "name": "127.0.0.1:27018", "stateStr": state, "self": true, "optimeDate": DateTime::from_millis(1_700_000_000_000) };
    own.extend(extra);
    doc! {
        "set": "shop-default",
        "members": [
            { "_id": 0, "name": "127.0.0.1:27017", "stateStr": "PRIMARY", "optimeDate": DateTime::from_millis(1_700_000_003_000) },
            own,
        ],
    }
}

/// Manual, "replSetGetStatus" and "Resync a Member": a member is
/// re-synchronised only when it cannot recover by itself (`tooStale`,
/// removed); a recorded slave that a failover made PRIMARY serves; one in
/// STARTUP2 (initial sync) or RECOVERING is on its way and is not wiped.
#[test]
fn member_health_follows_the_documented_states_including_a_failover() {
    let host = "127.0.0.1:27018";
    // Failover: the recorded slave is now the primary.
    let promoted = doc! {
        "set": "shop-default",
        "members": [
            { "_id": 0, "name": "127.0.0.1:27017", "stateStr": "SECONDARY", "optimeDate": DateTime::from_millis(1_700_000_000_000) },
            { "_id": 1, "name": host, "stateStr": "PRIMARY", "self": true, "optimeDate": DateTime::from_millis(1_700_000_000_000) },
        ],
    };
    assert_eq!(
        commands::own_health(&promoted, host),
        commands::MemberHealth::Healthy { lag_seconds: None }
    );
    assert_eq!(
        commands::own_health(&own_status("SECONDARY", doc! {}), host),
        commands::MemberHealth::Healthy {
            lag_seconds: Some(3)
        }
    );
    let syncing = own_status("STARTUP2", doc! {});
    let mut syncing = syncing;
    syncing.insert(
        "initialSyncStatus",
        doc! { "failedInitialSyncAttempts": 0, "approxTotalDataSize": 1000_i64, "approxTotalBytesCopied": 400_i64, "appliedOps": 0 },
    );
    let verdict = commands::own_health(&syncing, host);
    assert!(
        matches!(&verdict, commands::MemberHealth::Syncing { detail } if detail.contains("400 of about 1000")),
        "{verdict:?}"
    );
    assert!(matches!(
        commands::own_health(&own_status("RECOVERING", doc! {}), host),
        commands::MemberHealth::Syncing { .. }
    ));
    let mut stale = own_status(
        "RECOVERING",
        doc! { "infoMessage": "could not find member to sync from" },
    );
    stale.insert("tooStale", true);
    assert!(matches!(
        commands::own_health(&stale, host),
        commands::MemberHealth::Broken { detail } if detail.contains("tooStale")
    ));
    assert!(matches!(
        commands::own_health(&own_status("REMOVED", doc! {}), host),
        commands::MemberHealth::Broken { .. }
    ));
    let elsewhere = doc! { "set": "shop-default", "members": [{ "_id": 0, "name": "127.0.0.1:27017", "stateStr": "PRIMARY" }] };
    assert!(matches!(
        commands::own_health(&elsewhere, host),
        commands::MemberHealth::Broken { .. }
    ));
}

/// The wait for SECONDARY goes on while the initial sync advances and
/// stops once it stands still (instead of a fixed hour).
#[test]
fn an_initial_sync_is_waited_for_while_it_advances() {
    let members = commands::member_statuses(&own_status("STARTUP2", doc! {})).expect("readable");
    let member = &members[1];
    let progress = |copied: i64| {
        doc! { "initialSyncStatus": { "approxTotalBytesCopied": copied, "appliedOps": 0, "databases": { "databasesCloned": 1 } } }
    };
    let mut clock = commands::StallClock::default();
    let first = commands::sync_progress(member, Some(&progress(10)));
    assert_eq!(clock.stalled_for(&first, 0), 0);
    assert_eq!(clock.stalled_for(&first, 200), 200);
    let advanced = commands::sync_progress(member, Some(&progress(20)));
    assert_ne!(first, advanced);
    assert_eq!(
        clock.stalled_for(&advanced, 300),
        0,
        "progress restarts the clock"
    );
    assert_eq!(clock.stalled_for(&advanced, 900), 600);
    // Without its own status (no users yet) the state and optime still count.
    assert!(!commands::sync_progress(member, None).is_empty());
    assert!(!commands::never_secondary(member));
}

/// mongod --shutdown with the data directory: no login needed (a member
/// that has not joined has no administrator yet).
#[test]
fn the_fallback_shutdown_needs_no_login() {
    assert_eq!(
        commands::shutdown_args("/srv/m/data"),
        ["--shutdown", "--dbpath=/srv/m/data"]
    );
}

/// Manual, "createUser": the administrator gets `root` on `admin`; the
/// application `readWrite` on its own database (the user itself is made in
/// `admin`, which the URL names as `authSource`).
#[test]
fn users_get_the_least_role_they_need() {
    assert_eq!(
        commands::create_app_user("shop", "<secret>", "shop"),
        doc! { "createUser": "shop", "pwd": "<secret>", "roles": [{ "role": "readWrite", "db": "shop" }] }
    );
    assert_eq!(
        commands::create_admin("dbgroups-admin", "<secret>")
            .get_array("roles")
            .map(|r| r.len()),
        Ok(1)
    );
    // Manual, "grantRolesToUser": an import from another application's
    // database gives the group's user that database too.
    assert_eq!(
        commands::grant_read_write("analytics", "shop"),
        doc! { "grantRolesToUser": "analytics", "roles": [{ "role": "readWrite", "db": "shop" }] }
    );
}

/// `mongod --version` (its documented first line) gives the series the
/// group's version is compared with before a member is built.
#[test]
fn the_installed_series_is_read_from_mongod_version() {
    let said = "db version v7.0.14\nBuild Info: {\n    \"version\": \"7.0.14\",\n    \"gitVersion\": \"ce59cfc6a3c5e5c067dca0d30697edd68d4f5188\"\n}\n";
    assert_eq!(commands::installed_series(said).as_deref(), Some("7.0"));
    assert_eq!(
        commands::installed_series("db version v8.0.4-rc1\n").as_deref(),
        Some("8.0")
    );
    assert_eq!(commands::installed_series("mongod: not found"), None);
    assert_eq!(commands::series_of("7.0").as_deref(), Some("7.0"));
    assert_eq!(commands::series_of("8.0.3").as_deref(), Some("8.0"));
    assert_eq!(commands::series_of("eight"), None);
}

/// Every MongoDB series the catalogue accepts gets the same documents and
/// arguments, checked against the 6.0, 7.0 and 8.0 manuals (4.4 and 5.0
/// are past end of life, accepted with a warning, and not separately
/// checked: docs/engines.md). A series added to the catalogue fails this
/// test until its manual has been read against them.
#[test]
fn every_catalogued_series_is_one_the_rules_were_checked_for() {
    use dbgroups_manifest::Engine;
    use dbgroups_manifest::catalogue;
    let series: Vec<&str> = catalogue::releases(Engine::Mongodb)
        .map(|r| r.series)
        .collect();
    assert_eq!(
        series,
        ["4.4", "5.0", "6.0", "7.0", "8.0"],
        "a MongoDB series was added or removed: check its manual against docs/engines.md's MongoDB rules and update this list"
    );
    let mut matrix = String::new();
    for release in catalogue::releases(Engine::Mongodb) {
        let restore = commands::restore_args(
            "/s/tools.yaml",
            "dbgroups-admin",
            "127.0.0.1",
            27018,
            "/st/dump",
            None,
        );
        assert!(commands::restore_argument_problems(&restore).is_empty());
        matrix.push_str(&format!(
            "{} (end of life: {}): initiate {}; restore {}\n",
            release.series,
            release.end_of_life,
            commands::initiate("shop-default", "127.0.0.1:27017"),
            restore.join(" ")
        ));
    }
    insta::assert_snapshot!("mongodb_series_matrix", matrix);
}

/// The staged dump loses `admin/` and `config/` (the source's users and
/// cluster data) and keeps the application's databases and `oplog.bson`,
/// which `--oplogReplay` replays.
#[test]
fn the_staged_dump_keeps_no_users_and_keeps_the_oplog() {
    let dump = tempfile::tempdir().expect("a temporary directory");
    for file in [
        "admin/system.users.bson",
        "admin/system.version.bson",
        "config/system.sessions.bson",
        "shop/orders.bson",
        "shop/orders.metadata.json",
    ] {
        let path = dump.path().join(file);
        std::fs::create_dir_all(path.parent().expect("a parent")).expect("mkdir");
        std::fs::write(&path, b"x").expect("write");
    }
    std::fs::write(dump.path().join("oplog.bson"), b"x").expect("write");
    let state = tempfile::tempdir().expect("a temporary directory");
    let host = dbgroups_engines::LocalHost::inspect(state.path())
        .expect("a host")
        .into_ref();
    crate::common::block_on(dbgroups_engines::mongodb::remove_system_databases(
        &host,
        dump.path(),
    ))
    .expect("removed");
    let mut left: Vec<String> = crate::common::files_under(dump.path(), &[])
        .iter()
        .filter_map(|p| p.strip_prefix(dump.path()).ok())
        .map(|p| p.display().to_string())
        .collect();
    left.sort();
    assert_eq!(
        left,
        [
            "oplog.bson",
            "shop/orders.bson",
            "shop/orders.metadata.json"
        ]
    );
    // Twice is fine (a re-run of the step).
    crate::common::block_on(dbgroups_engines::mongodb::remove_system_databases(
        &host,
        dump.path(),
    ))
    .expect("idempotent");
}

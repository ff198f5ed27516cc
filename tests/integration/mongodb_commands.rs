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

/// Manual, "replSetInitiate": `{ _id: <set>, members: [{ _id: 0, host }] }`.
#[test]
fn the_first_server_initiates_a_set_of_itself() {
    assert_eq!(
        commands::initiate("shop-default", "127.0.0.1:27017"),
        doc! { "replSetInitiate": { "_id": "shop-default", "members": [{ "_id": 0, "host": "127.0.0.1:27017" }] } }
    );
}

/// Manual, "replSetReconfig" / "rs.add()": the new config keeps every
/// member and setting, adds one member with an unused `_id`, and raises
/// `version` by one.
#[test]
fn adding_a_member_keeps_the_config_and_raises_its_version() {
    let current = config(4, &[(0, "127.0.0.1:27017"), (3, "127.0.0.1:27018")]);
    let updated = commands::with_member(&current, "127.0.0.1:27019")
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
    assert_eq!(commands::with_member(&current, "127.0.0.1:27018"), Ok(None));
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
    assert!(commands::with_member(&doc! { "version": 1 }, "h:1").is_err());
    assert!(commands::with_member(&doc! { "members": [] }, "h:1").is_err());
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
        27018,
        "shop-default",
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
}

/// mongodump/mongorestore manuals: `--oplog` with a whole-instance dump,
/// `--oplogReplay` to restore to one moment; the password only in the
/// `--config` file; the target's users (`admin.*`) kept.
#[test]
fn dump_and_restore_take_the_oplog_and_no_password_argument() {
    let dump = commands::dump_args("/s/tools.yaml", "dbgroups-admin", 27017, "/st/dump");
    assert!(dump.contains(&"--oplog".to_string()));
    assert!(dump.contains(&"--config=/s/tools.yaml".to_string()));
    assert!(
        !dump
            .iter()
            .any(|a| a.starts_with("--db") || a.starts_with("--password"))
    );
    let restore = commands::restore_args("/s/tools.yaml", "dbgroups-admin", 27018, "/st/dump");
    for arg in ["--oplogReplay", "--nsExclude=admin.*", "--drop"] {
        assert!(restore.contains(&arg.to_string()), "missing {arg}");
    }
    assert_eq!(restore.last().map(String::as_str), Some("/st/dump"));
    assert!(!restore.iter().any(|a| a.starts_with("--password")));
    assert_eq!(commands::tools_config("<secret>"), "password: <secret>\n");
}

/// Manual, "createUser": the administrator gets `root` on `admin`; the
/// application `readWrite` on its own database.
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

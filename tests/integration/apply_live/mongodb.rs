//! `dbgroups apply` on real MongoDB servers. MongoDB is not packaged by
//! Debian, so these run only where `mongod`, `mongodump` and `mongorestore`
//! are installed (build.rs looks); elsewhere they are reported as ignored,
//! with the reason, never as passed.

use ::mongodb::bson::doc;

use super::*;

fn mongo_manifest(servers: &[&str]) -> String {
    let mut text = String::from(
        "application: shop\nmongodb:\n  configuration: { version: \"7.0\" }\n  backups: { managed: true }\n  servers:\n",
    );
    for server in servers {
        text.push_str(&format!("    - server: {{ unique_name: {server} }}\n"));
    }
    text
}

/// The documents of `shop.orders` in the `archive` group, read through the
/// URL apply wrote to the environment.
async fn archive_orders(dir: &Path) -> u64 {
    let env = std::fs::read_to_string(dir.join(".dbgroups/env/shop.env")).expect("env");
    let url = env
        .lines()
        .find_map(|l| l.strip_prefix("MONGODB_ARCHIVE_URL="))
        .expect("MONGODB_ARCHIVE_URL")
        .trim_matches('"')
        .to_string();
    ::mongodb::Client::with_uri_str(&url)
        .await
        .expect("URL")
        .database("shop")
        .collection::<::mongodb::bson::Document>("orders")
        .count_documents(doc! {})
        .await
        .expect("reads")
}

/// The application's client, from the URL apply wrote to its environment.
async fn client_from_env(dir: &Path) -> ::mongodb::Client {
    let env = std::fs::read_to_string(dir.join(".dbgroups/env/shop.env")).expect("env file");
    let url = env
        .lines()
        .find_map(|line| line.strip_prefix("MONGODB_URL="))
        .expect("MONGODB_URL");
    ::mongodb::Client::with_uri_str(url.trim_matches('"'))
        .await
        .expect("a valid URL")
}

#[test]
#[cfg_attr(
    not(mongod_available),
    ignore = "mongod, mongodump and mongorestore are not installed (MongoDB is not packaged by Debian; install mongodb-org and rebuild)"
)]
fn two_declared_servers_make_a_replica_set_of_three_that_replicates_and_converges() {
    let (dir, _servers) = quickstart();
    set_manifest(dir.path(), &mongo_manifest(&["mongo-a", "mongo-b"]));
    let applied = apply_ok(dir.path(), &[]);
    assert!(
        applied
            .stdout
            .contains("default-odd-member is added by dbgroups"),
        "{}",
        applied.stdout
    );
    let recorded = state(dir.path());
    assert_eq!(recorded.groups[0].servers.len(), 3);
    let env = std::fs::read_to_string(dir.path().join(".dbgroups/env/shop.env")).expect("env");
    let addresses = env
        .lines()
        .find_map(|l| l.strip_prefix("MONGODB_ADDRESSES="))
        .expect("MONGODB_ADDRESSES");
    assert_eq!(addresses.trim_matches('"').split(',').count(), 3, "{env}");

    let runtime = crate::common::runtime();
    runtime.block_on(async {
        let client = client_from_env(dir.path()).await;
        let orders = client
            .database("shop")
            .collection::<::mongodb::bson::Document>("orders");
        orders
            .insert_many((1..=100).map(|i| doc! { "_id": i }))
            .await
            .expect("the application writes through the replica set");
        // Every member holds the rows once the writes are majority-acknowledged.
        let admin = recorded.credentials["mongodb.default"]
            .admin_password
            .as_ref()
            .expect("admin")
            .expose()
            .to_string();
        for server in ["mongo-b", "default-odd-member"] {
            let member = dbgroups_engines::MongoServer::new(
                &LocalHost::inspect(&dir.path().join(".dbgroups"))
                    .expect("provider")
                    .into_ref(),
                server,
                "7.0",
                port(&recorded, server),
            )
            .await
            .expect("installed");
            let statuses = member.members(&admin).await.expect("replSetGetStatus");
            assert!(
                statuses
                    .iter()
                    .any(|m| m.host == member.host() && m.state == "SECONDARY"),
                "{server} is a SECONDARY: {statuses:?}"
            );
        }
    });
    converged(dir.path(), "manifest.yml");

    // A third declared server retires the added one, after joining.
    set_manifest(
        dir.path(),
        &mongo_manifest(&["mongo-a", "mongo-b", "mongo-c"]),
    );
    let grown = dbgroups_in(dir.path(), &["apply", "--auto-approve"]);
    assert_eq!(grown.code, 0, "{}\n{}", grown.stdout, grown.stderr);
    let after = state(dir.path());
    let names: Vec<&str> = after.groups[0]
        .servers
        .iter()
        .map(|s| s.unique_name.as_str())
        .collect();
    assert_eq!(names.len(), 3, "{names:?}");
    assert!(!names.contains(&"default-odd-member"));
    runtime.block_on(async {
        let client = client_from_env(dir.path()).await;
        let count = client
            .database("shop")
            .collection::<::mongodb::bson::Document>("orders")
            .count_documents(doc! {})
            .await
            .expect("reads");
        assert_eq!(count, 100, "the data survived the membership changes");
    });
    converged(dir.path(), "manifest.yml");
}

#[test]
#[cfg_attr(
    not(mongod_available),
    ignore = "mongod, mongodump and mongorestore are not installed (MongoDB is not packaged by Debian; install mongodb-org and rebuild)"
)]
fn an_import_copies_a_mongodb_group_with_its_oplog() {
    let (dir, _servers) = quickstart();
    set_manifest(dir.path(), &mongo_manifest(&["mongo-a"]));
    apply_ok(dir.path(), &[]);
    let runtime = crate::common::runtime();
    runtime.block_on(async {
        let client = client_from_env(dir.path()).await;
        client
            .database("shop")
            .collection::<::mongodb::bson::Document>("orders")
            .insert_many((1..=20).map(|i| doc! { "_id": i }))
            .await
            .expect("writes");
    });
    let manifest = "application: shop\nmongodb:\n  groups:\n    default:\n      configuration: { version: \"7.0\" }\n      backups: { managed: true }\n      servers:\n        - server: { unique_name: mongo-a }\n    archive:\n      configuration: { version: \"7.0\" }\n      import_from: default\n      servers:\n        - server: { unique_name: mongo-archive }\n";
    set_manifest(dir.path(), manifest);
    let imported = apply_ok(dir.path(), &["--add-group", "mongodb.archive"]);
    assert!(
        imported.stdout.contains("dump:mongo-a"),
        "{}",
        imported.stdout
    );
    runtime.block_on(async {
        let count = archive_orders(dir.path()).await;
        assert_eq!(count, 20, "the import copied the documents");
    });
}

/// A managed backup of a replica set: `mongodump --oplog` from a caught-up
/// secondary, verified by a scratch server that shows the recorded
/// collection counts; then an import from `backup: latest` holds the
/// backup's documents, not the ones written after it.
#[test]
#[cfg_attr(
    not(mongod_available),
    ignore = "mongod, mongodump and mongorestore are not installed (MongoDB is not packaged by Debian; install mongodb-org and rebuild)"
)]
fn a_mongodb_backup_comes_from_a_secondary_verifies_and_an_import_restores_it() {
    let (dir, _servers) = quickstart();
    set_manifest(dir.path(), &mongo_manifest(&["mongo-a", "mongo-b"]));
    apply_ok(dir.path(), &[]);
    let runtime = crate::common::runtime();
    let insert = |from: i32, to: i32| {
        runtime.block_on(async {
            client_from_env(dir.path())
                .await
                .database("shop")
                .collection::<::mongodb::bson::Document>("orders")
                .insert_many((from..=to).map(|i| doc! { "_id": i }))
                .await
                .expect("writes");
        })
    };
    insert(1, 100);
    let run = dbgroups_in(
        dir.path(),
        &["backup", "run", "--group", "mongodb.default", "--verify"],
    );
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    let recorded = state(dir.path());
    let record = recorded.backups.last().expect("a recorded backup");
    assert_ne!(record.server, "mongo-a", "taken from a secondary");
    let managed = record.managed.as_ref().expect("managed");
    assert_eq!(managed.summary.get("orders"), Some(&100));
    assert!(
        matches!(
            managed.verification,
            dbgroups_state::Verification::Passed { .. }
        ),
        "{managed:?}"
    );
    insert(101, 150);
    let manifest = "application: shop\nmongodb:\n  groups:\n    default:\n      configuration: { version: \"7.0\" }\n      backups: { managed: true }\n      servers:\n        - server: { unique_name: mongo-a }\n        - server: { unique_name: mongo-b }\n    archive:\n      configuration: { version: \"7.0\" }\n      import_from: { group: default, backup: latest }\n      servers:\n        - server: { unique_name: mongo-archive }\n";
    set_manifest(dir.path(), manifest);
    let imported = apply_ok(dir.path(), &["--add-group", "mongodb.archive"]);
    assert!(
        imported.stdout.contains(&format!("fetch:{}", record.id)),
        "{}",
        imported.stdout
    );
    runtime.block_on(async {
        let count = archive_orders(dir.path()).await;
        assert_eq!(
            count, 100,
            "the backup's documents, not the 150 written since"
        );
    });
}

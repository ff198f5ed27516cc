//! MongoDB on test hosts: a replica set of three members on three hosts,
//! each joining by initial sync from the others. MongoDB is not packaged by
//! Debian, so this runs only where `mongod`, `mongodump` and `mongorestore`
//! are installed (build.rs looks; the test hosts share this machine's
//! `/usr`); elsewhere it is reported as ignored, with the reason, never as
//! passed.

use ::mongodb::bson::doc;

use super::{hosts_or_skip, manifest_head, nothing_left_on, run_ok, state};
use crate::test_hosts::{WAIT, wait_for};

#[test]
#[cfg_attr(
    not(mongod_available),
    ignore = "mongod, mongodump and mongorestore are not installed (MongoDB is not packaged by Debian; install mongodb-org and rebuild)"
)]
fn a_mongodb_replica_set_across_three_hosts_replicates_and_is_destroyed() {
    let Some(hosts) = hosts_or_skip(3) else {
        return;
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path();
    // The test reads the members from this machine (the bridge's
    // address): the hosts' firewalls let in only the set and allow_from.
    let mut manifest = format!(
        "{}mongodb:\n  configuration: {{ version: \"7.0\" }}\n  backups: {{ managed: true }}\n  allow_from: [{}/32]\n  servers:\n",
        manifest_head(&hosts),
        hosts.bridge_address()
    );
    for k in 1..=3 {
        manifest.push_str(&format!(
            "    - server: {{ unique_name: mongo-{k}, address: {} }}\n",
            hosts.address(k)
        ));
    }
    std::fs::write(path.join("manifest.yml"), manifest).expect("manifest");
    run_ok(path, &["apply", "--auto-approve", "--refresh=false"]);
    let recorded = state(path);
    let credentials = &recorded.credentials["mongodb.default"];
    let (user, password) = (
        credentials.username.clone(),
        credentials
            .password
            .as_ref()
            .expect("generated")
            .expose()
            .to_string(),
    );
    let auth = credentials
        .auth_database
        .clone()
        .unwrap_or_else(|| credentials.database.clone());
    let database = credentials.database.clone();
    let _scanned = crate::transcripts::ScannedDeployment::new(path, &[&password]);
    let env = std::fs::read_to_string(path.join(".dbgroups/env/shop.env")).expect("env file");
    let addresses = env
        .lines()
        .find_map(|l| l.strip_prefix("MONGODB_ADDRESSES="))
        .expect("MONGODB_ADDRESSES");
    for k in 1..=3 {
        assert!(
            addresses.contains(&hosts.address(k).to_string()),
            "{addresses}"
        );
    }
    let url = env
        .lines()
        .find_map(|l| l.strip_prefix("MONGODB_URL="))
        .expect("MONGODB_URL")
        .trim_matches('"')
        .to_string();
    // On hosts the members require TLS: the URL says `tls=true`, and the
    // driver verifies them against the application's authority.
    assert!(url.ends_with("&tls=true"), "{url}");
    let ca = path.join("ca.pem");
    let authority = recorded.authority.as_ref().expect("an authority");
    std::fs::write(&ca, &authority.certificate).expect("ca.pem");
    let tls = format!("&tlsCAFile={}", ca.display());
    let url = format!("{url}{tls}");
    let runtime = crate::common::runtime();
    runtime.block_on(async {
        let client = ::mongodb::Client::with_uri_str(&url)
            .await
            .expect("a valid URL");
        client
            .database(&database)
            .collection::<::mongodb::bson::Document>("orders")
            .insert_many((1..=100).map(|i| doc! { "_id": i }))
            .await
            .expect("the application writes through the replica set");
    });
    // Every member, read on its own host's address, holds the documents.
    for k in 1..=3 {
        let member = format!(
            "mongodb://{user}:{password}@{}:27017/?directConnection=true&authSource={auth}&readPreference=secondaryPreferred&tls=true{tls}",
            hosts.address(k)
        );
        let held = wait_for(WAIT, || {
            runtime.block_on(async {
                let Ok(client) = ::mongodb::Client::with_uri_str(&member).await else {
                    return false;
                };
                client
                    .database(&database)
                    .collection::<::mongodb::bson::Document>("orders")
                    .count_documents(doc! {})
                    .await
                    .is_ok_and(|n| n == 100)
            })
        });
        assert!(held, "mongo-{k} holds the documents");
    }
    let status = run_ok(path, &["status"]);
    for k in 1..=3 {
        assert!(
            status.stdout.contains(&format!("mongo-{k}")),
            "{}",
            status.stdout
        );
    }
    run_ok(path, &["plan", "--detailed-exitcode"]);
    run_ok(path, &["destroy", "--app", "shop", "--auto-approve"]);
    for k in 1..=3 {
        nothing_left_on(&hosts, k);
    }
    hosts.down();
}

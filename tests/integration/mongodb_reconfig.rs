//! Reconfigs of one replica set under concurrency, against a simulated set
//! that applies the rules of the manual's "replSetReconfig" page: a new
//! config's `version` must be greater than the installed one (else 103
//! NewReplicaSetConfigurationIncompatible), and one reconfig adds or
//! removes at most one voting member. Two enslave steps of one set run in
//! one wave; before issue 21 both read version v and both sent v + 1.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use dbgroups_engines::EngineError;
use dbgroups_engines::mongodb::commands;
use dbgroups_engines::mongodb::reconfig::{self, Refusal, Retry};
use mongodb::bson::{Document, doc};

/// The set as a server holds it, and every version it installed.
struct FakeSet {
    config: Document,
    installed: Vec<i64>,
    sends: u32,
    /// Another process's reconfig lands between the next read and send.
    interfere_once: bool,
}

type Shared = Arc<Mutex<FakeSet>>;

fn version(config: &Document) -> i64 {
    config
        .get_i32("version")
        .map(i64::from)
        .or_else(|_| config.get_i64("version"))
        .expect("a version")
}

fn new_set() -> Shared {
    Arc::new(Mutex::new(FakeSet {
        config: doc! { "_id": "shop-default", "version": 1, "members": [{ "_id": 0, "host": "127.0.0.1:27017", "priority": 2 }] },
        installed: Vec::new(),
        sends: 0,
        interfere_once: false,
    }))
}

fn refusal(code: i32, text: &str) -> Refusal {
    Refusal {
        code: Some(code),
        error: EngineError::Command {
            command: "replSetReconfig".into(),
            status: format!("code {code}"),
            stderr: text.into(),
        },
    }
}

async fn read(set: Shared) -> Result<Document, EngineError> {
    tokio::time::sleep(Duration::from_millis(1)).await;
    let config = set.lock().expect("lock").config.clone();
    tokio::time::sleep(Duration::from_millis(1)).await;
    Ok(config)
}

async fn send(set: Shared, updated: Document) -> Result<(), Refusal> {
    tokio::time::sleep(Duration::from_millis(1)).await;
    let mut set = set.lock().expect("lock");
    set.sends += 1;
    if set.interfere_once {
        set.interfere_once = false;
        let bumped = version(&set.config) + 1;
        set.config.insert("version", bumped);
        set.installed.push(bumped);
    }
    let (current, wanted) = (version(&set.config), version(&updated));
    if wanted <= current {
        return Err(refusal(
            103,
            &format!("version {wanted} must be greater than the current {current}"),
        ));
    }
    let voters = |c: &Document| commands::voting_members(c).expect("members");
    if voters(&updated).abs_diff(voters(&set.config)) > 1 {
        return Err(refusal(103, "more than one voting member changed"));
    }
    set.installed.push(wanted);
    set.config = updated;
    Ok(())
}

async fn add(set: Shared, host: String, retry: Retry) -> Result<bool, EngineError> {
    let (for_read, for_send) = (Arc::clone(&set), Arc::clone(&set));
    reconfig::reconfigure_with(
        "shop-default",
        retry,
        move || read(Arc::clone(&for_read)),
        move |updated| send(Arc::clone(&for_send), updated),
        move |config| commands::with_member(config, &host, true),
    )
    .await
}

const QUICK: Retry = Retry {
    attempts: 5,
    pause: Duration::from_millis(1),
};

/// The simulated set refuses what a real one refuses: the sequence the
/// engine used before issue 21 (read, read, send, send) fails.
#[tokio::test]
async fn the_simulated_set_refuses_two_reconfigs_from_one_version() {
    let set = new_set();
    let first = read(Arc::clone(&set)).await.expect("read");
    let second = read(Arc::clone(&set)).await.expect("read");
    let a = commands::with_member(&first, "127.0.0.1:27018", true)
        .expect("valid")
        .expect("a change");
    let b = commands::with_member(&second, "127.0.0.1:27019", true)
        .expect("valid")
        .expect("a change");
    assert!(send(Arc::clone(&set), a).await.is_ok());
    let refused = send(Arc::clone(&set), b).await;
    assert!(
        matches!(
            &refused,
            Err(Refusal {
                code: Some(103),
                ..
            })
        ),
        "{refused:?}"
    );
}

/// Eight members join one set at once (one wave): every reconfig is
/// installed, versions rise by exactly one each time, every member is in
/// the final config once, and the eighth joiner (ninth member) has no vote.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_joins_install_strictly_increasing_versions() {
    let set = new_set();
    let mut joins = tokio::task::JoinSet::new();
    for port in 27018..27026 {
        joins.spawn(add(Arc::clone(&set), format!("127.0.0.1:{port}"), QUICK));
    }
    while let Some(joined) = joins.join_next().await {
        assert!(joined.expect("no panic").expect("the reconfig succeeds"));
    }
    let set = set.lock().expect("lock");
    assert_eq!(set.installed, (2..=9).collect::<Vec<i64>>());
    assert_eq!(set.sends, 8, "the lock leaves nothing to retry");
    let hosts: Vec<&str> = set
        .config
        .get_array("members")
        .expect("members")
        .iter()
        .filter_map(|m| m.as_document()?.get_str("host").ok())
        .collect();
    assert_eq!(hosts.len(), 9);
    for port in 27017..27026 {
        let host = format!("127.0.0.1:{port}");
        assert_eq!(hosts.iter().filter(|h| **h == host).count(), 1, "{host}");
    }
    assert_eq!(commands::voting_members(&set.config), Ok(7));
}

/// A reconfig by someone else between the read and the send (another
/// dbgroups process, an operator's rs.add) is refused with 103; the
/// config is read again and the member added on top of it.
#[tokio::test]
async fn a_refusal_with_103_rereads_the_config_and_retries() {
    let set = new_set();
    set.lock().expect("lock").interfere_once = true;
    let added = add(Arc::clone(&set), "127.0.0.1:27018".into(), QUICK).await;
    assert!(added.expect("succeeds on the second attempt"));
    let set = set.lock().expect("lock");
    assert_eq!(set.installed, [2, 3]);
    assert_eq!(set.sends, 2);
}

/// Adding a member that is already there sends nothing; an error that no
/// retry can mend is returned at once, and a retryable one only a bounded
/// number of times.
#[tokio::test]
async fn retries_are_bounded_and_only_for_retryable_codes() {
    let set = new_set();
    let again = add(Arc::clone(&set), "127.0.0.1:27017".into(), QUICK).await;
    assert!(!again.expect("no change needed"));
    assert_eq!(set.lock().expect("lock").sends, 0);

    let calls = Arc::new(Mutex::new(0u32));
    let counted = Arc::clone(&calls);
    let unauthorized = reconfig::reconfigure_with(
        "other-set",
        QUICK,
        || async { Ok(doc! { "version": 1, "members": [{ "_id": 0, "host": "h:1" }] }) },
        move |_| {
            *counted.lock().expect("lock") += 1;
            async { Err(refusal(13, "not authorized")) }
        },
        |config| commands::with_member(config, "h:2", true),
    )
    .await;
    assert!(unauthorized.is_err());
    assert_eq!(*calls.lock().expect("lock"), 1);

    let busy_calls = Arc::new(Mutex::new(0u32));
    let counted = Arc::clone(&busy_calls);
    let busy = reconfig::reconfigure_with(
        "busy-set",
        QUICK,
        || async { Ok(doc! { "version": 1, "members": [{ "_id": 0, "host": "h:1" }] }) },
        move |_| {
            *counted.lock().expect("lock") += 1;
            async { Err(refusal(109, "ConfigurationInProgress")) }
        },
        |config| commands::with_member(config, "h:2", true),
    )
    .await;
    assert!(busy.is_err());
    assert_eq!(*busy_calls.lock().expect("lock"), QUICK.attempts);
}

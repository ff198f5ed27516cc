//! The backend itself: versions, compare-and-swap, locks per application.

use std::time::Duration;

use dbgroups_state::{
    AppState, Credentials, LockScope, Secret, SecretPolicy, StateError, StateStore,
};

use super::{StateServer, encrypted, run};

pub(super) fn with_password(application: &str, password: &str) -> AppState {
    let mut state = AppState::new(application);
    state.credentials.insert(
        "postgresql.default".into(),
        Credentials {
            username: "shop".into(),
            password: Some(Secret::new(password)),
            database: "shop".into(),
            admin_password: None,
            replication_password: None,
            auth_database: None,
        },
    );
    state
        .environment
        .insert("POSTGRESQL_PASSWORD".into(), password.into());
    state
}

#[test]
fn every_version_is_kept_and_a_stale_write_is_refused() {
    let server = StateServer::start();
    let store = server.store("dbgroups", encrypted());
    let lock = store
        .lock(LockScope::Application("shop"), "apply", Duration::ZERO)
        .expect("lock");
    let mut state = with_password("shop", "first-secret-value");
    for _ in 0..3 {
        store.save(&lock, &mut state).expect("save");
    }
    let stale = {
        let mut stale = state.clone();
        stale.serial -= 1;
        stale
    };
    let mut stale = stale;
    assert!(
        matches!(
            store.save(&lock, &mut stale),
            Err(StateError::Conflict {
                expected: 2,
                found: 3,
                ..
            })
        ),
        "a write from serial 2 when 3 is stored"
    );
    let versions = store.versions("shop").expect("history");
    assert_eq!(
        versions.iter().map(|v| v.serial).collect::<Vec<_>>(),
        [1, 2, 3]
    );
    assert!(versions.iter().all(|v| v.command == "apply"));
    assert!(versions.iter().all(|v| v.written_by.contains('@')));
    assert_eq!(store.load_version("shop", 2).expect("kept").serial, 2);
    assert!(matches!(
        store.load_version("shop", 9),
        Err(StateError::NoSuchVersion { .. })
    ));
    // Another command reads what was written, secrets opened.
    let other = server.store("dbgroups", encrypted());
    let loaded = other.load("shop").expect("loads").expect("recorded");
    assert_eq!(loaded.serial, 3);
    assert_eq!(
        loaded.credentials["postgresql.default"]
            .password
            .as_ref()
            .map(Secret::expose),
        Some("first-secret-value")
    );
}

#[test]
fn locks_are_per_application_and_schema_and_name_their_holder() {
    let server = StateServer::start();
    let first = server.store("dbgroups", encrypted());
    let second = server.store("dbgroups", encrypted());
    let held = first
        .lock(LockScope::Application("shop"), "apply", Duration::ZERO)
        .expect("first lock");
    let refused = second
        .lock(
            LockScope::Application("shop"),
            "plan --out",
            Duration::from_millis(300),
        )
        .expect_err("held by the first");
    let message = refused.to_string();
    assert!(
        message.contains("`apply` of \"shop\"")
            && message.contains(&format!("pid {}", std::process::id()))
            && message.contains(&held.info().id),
        "{message}"
    );
    // Unrelated applications and schemas do not wait.
    let _other_app = second
        .lock(LockScope::Application("blog"), "apply", Duration::ZERO)
        .expect("another application");
    let _other_schema = server
        .store("dbgroups_staging", encrypted())
        .lock(LockScope::Application("shop"), "apply", Duration::ZERO)
        .expect("another schema");

    // `state list` names the holders, without the URL's password.
    let dir = tempfile::tempdir().expect("temp dir");
    let url = server.url();
    let listed = run(
        dir.path(),
        &["state", "list"],
        &[("DBGROUPS_STATE_URL", &url)],
    );
    assert_eq!(listed.code, 0, "{}", listed.stderr);
    assert!(listed.stderr.contains(&held.info().id), "{}", listed.stderr);

    // A waiter gets the lock once it is released.
    let waiter = std::thread::spawn(move || {
        second
            .lock(
                LockScope::Application("shop"),
                "apply",
                Duration::from_secs(60),
            )
            .map(|guard| guard.info().operation.clone())
    });
    eventually_waiting();
    drop(held);
    assert_eq!(waiter.join().expect("joins").expect("got it"), "apply");

    // `state unlock ID` ends a stuck holder's session; its next write
    // fails, saying its lock went with the connection.
    let stuck = first
        .lock(LockScope::Application("report"), "apply", Duration::ZERO)
        .expect("lock");
    let unlocked = run(
        dir.path(),
        &["state", "unlock", &stuck.info().id],
        &[("DBGROUPS_STATE_URL", &url)],
    );
    assert_eq!(unlocked.code, 0, "{}", unlocked.stderr);
    assert!(!unlocked.stderr.contains(&url), "{}", unlocked.stderr);
    let mut state = AppState::new("report");
    let lost = first
        .save(&stuck, &mut state)
        .expect_err("the session is gone");
    assert!(
        dbgroups_engines::with_causes(&lost).contains("lost"),
        "{}",
        dbgroups_engines::with_causes(&lost)
    );
    server
        .store("dbgroups", encrypted())
        .lock(LockScope::Application("report"), "apply", Duration::ZERO)
        .expect("free again");
}

/// Gives the waiter time to ask before the release; the assertion does not
/// depend on it (the waiter succeeds either way), only the coverage does.
fn eventually_waiting() {
    std::thread::sleep(Duration::from_millis(300));
}

#[test]
fn plaintext_secrets_are_refused_without_the_flag_and_none_reach_the_dump() {
    let server = StateServer::start();
    let plain = server.store(
        "dbgroups",
        SecretPolicy {
            keyring: None,
            secrets_needed: false,
            allow_plaintext: false,
        },
    );
    let lock = plain
        .lock(LockScope::Application("plain"), "apply", Duration::ZERO)
        .expect("lock");
    let mut state = with_password("plain", "never-stored-in-clear");
    assert!(matches!(
        plain.save(&lock, &mut state),
        Err(StateError::PlaintextRefused { .. })
    ));
    assert!(
        plain.load("plain").expect("reads").is_none(),
        "nothing written"
    );

    let sealed = server.store("dbgroups", encrypted());
    let lock = sealed
        .lock(LockScope::Application("shop"), "apply", Duration::ZERO)
        .expect("lock");
    let mut state = with_password("shop", "sealed-secret-value");
    sealed.save(&lock, &mut state).expect("save");
    let dump = server.dump();
    assert!(dump.contains("lineage"), "the dump holds the state");
    assert!(!dump.contains("sealed-secret-value"), "{dump}");
    assert!(!dump.contains("never-stored-in-clear"));

    // The CLI refuses before it starts anything.
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(
        dir.path().join("manifest.yml"),
        "application: shop\nredis:\n  configuration: { version: \"7.0\" }\n  servers:\n    - server: { unique_name: redis-plain }\n",
    )
    .expect("manifest");
    let url = server.url();
    let refused = run(
        dir.path(),
        &["apply", "--auto-approve"],
        &[("DBGROUPS_STATE_URL", &url)],
    );
    assert_eq!(refused.code, 1);
    assert!(
        refused.stderr.contains("--allow-plaintext-secrets"),
        "{}",
        refused.stderr
    );
    assert!(!dir.path().join(".dbgroups/servers").exists());
    let both = run(
        dir.path(),
        &["state", "list", "--state-dir", "elsewhere"],
        &[("DBGROUPS_STATE_URL", &url)],
    );
    assert_eq!(both.code, 1);
    assert!(both.stderr.contains("give one"), "{}", both.stderr);
}

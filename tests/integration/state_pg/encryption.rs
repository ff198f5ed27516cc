//! Passphrases through the CLI: a wrong one changes nothing, `rekey`
//! re-encrypts every version, `migrate` round-trips byte for byte.

use std::path::Path;
use std::time::Duration;

use dbgroups_state::{DirectoryStore, LockScope, StateError, StateStore};

use super::store::with_password;
use super::{OTHER_PASSPHRASE, PASSPHRASE, StateServer, encrypted, keyring, run};

/// `shop` written three times in a state directory, encrypted.
fn encrypted_directory(dir: &Path) {
    let store = DirectoryStore::new(dir).with_policy(encrypted());
    let lock = store
        .lock(LockScope::Everything, "apply", Duration::ZERO)
        .expect("lock");
    let mut state = with_password("shop", "directory-secret-value");
    for _ in 0..3 {
        store.save(&lock, &mut state).expect("save");
    }
}

fn files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut found: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir.join("apps"))
        .expect("apps")
        .flatten()
        .map(|e| {
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read(e.path()).expect("read"),
            )
        })
        .collect();
    found.sort();
    found
}

#[test]
fn the_state_directory_holds_no_secret_when_a_passphrase_is_set() {
    let dir = tempfile::tempdir().expect("temp dir");
    encrypted_directory(dir.path());
    for (name, bytes) in files(dir.path()) {
        let text = String::from_utf8_lossy(&bytes);
        assert!(!text.contains("directory-secret-value"), "{name}: {text}");
        assert!(text.contains("AES-256-GCM"), "{name}");
    }
    // Readable without the passphrase, masked; the secrets refused.
    let state_dir = dir.path().display().to_string();
    let shown = run(
        dir.path(),
        &["state", "show", "--app", "shop", "--state-dir", &state_dir],
        &[],
    );
    assert_eq!(shown.code, 0, "{}", shown.stderr);
    assert!(shown.stdout.contains("\"serial\": 3"), "{}", shown.stdout);
    let secrets = run(
        dir.path(),
        &[
            "env",
            "--app",
            "shop",
            "--show-secrets",
            "--state-dir",
            &state_dir,
        ],
        &[],
    );
    assert_eq!(secrets.code, 1);
    assert!(
        secrets.stderr.contains("DBGROUPS_STATE_PASSPHRASE"),
        "{}",
        secrets.stderr
    );
    let opened = run(
        dir.path(),
        &[
            "env",
            "--app",
            "shop",
            "--show-secrets",
            "--state-dir",
            &state_dir,
        ],
        &[("DBGROUPS_STATE_PASSPHRASE", PASSPHRASE)],
    );
    assert_eq!(opened.code, 0, "{}", opened.stderr);
    assert!(
        opened
            .stdout
            .contains("POSTGRESQL_PASSWORD=directory-secret-value"),
        "{}",
        opened.stdout
    );
}

#[test]
fn a_wrong_passphrase_changes_nothing_and_rekey_reencrypts_every_version() {
    let server = StateServer::start();
    let url = server.url();
    let store = server.store("dbgroups", encrypted());
    let lock = store
        .lock(LockScope::Application("shop"), "apply", Duration::ZERO)
        .expect("lock");
    let mut state = with_password("shop", "rotated-secret-value");
    for _ in 0..3 {
        store.save(&lock, &mut state).expect("save");
    }
    drop(lock);
    let documents = || {
        server
            .store("dbgroups", super::encrypted())
            .versions("shop")
            .expect("history")
    };
    let before = documents();
    let dir = tempfile::tempdir().expect("temp dir");

    let wrong = run(
        dir.path(),
        &["env", "--app", "shop", "--show-secrets"],
        &[
            ("DBGROUPS_STATE_URL", &url),
            ("DBGROUPS_STATE_PASSPHRASE", OTHER_PASSPHRASE),
        ],
    );
    assert_eq!(wrong.code, 1);
    assert!(wrong.stderr.contains("does not open"), "{}", wrong.stderr);
    let wrong_rekey = run(
        dir.path(),
        &["state", "rekey"],
        &[
            ("DBGROUPS_STATE_URL", &url),
            ("DBGROUPS_STATE_OLD_PASSPHRASE", OTHER_PASSPHRASE),
            ("DBGROUPS_STATE_PASSPHRASE", "a third passphrase, long"),
        ],
    );
    assert_eq!(wrong_rekey.code, 1);
    assert!(
        wrong_rekey.stderr.contains("does not open"),
        "{}",
        wrong_rekey.stderr
    );
    assert_eq!(documents(), before, "a wrong passphrase changed nothing");

    let rekeyed = run(
        dir.path(),
        &["state", "rekey"],
        &[
            ("DBGROUPS_STATE_URL", &url),
            ("DBGROUPS_STATE_OLD_PASSPHRASE", PASSPHRASE),
            ("DBGROUPS_STATE_PASSPHRASE", OTHER_PASSPHRASE),
        ],
    );
    assert_eq!(rekeyed.code, 0, "{}", rekeyed.stderr);
    assert!(
        rekeyed.stderr.contains("3 stored versions"),
        "{}",
        rekeyed.stderr
    );
    assert!(!server.dump().contains("rotated-secret-value"));
    let policy = |passphrase| dbgroups_state::SecretPolicy {
        keyring: Some(keyring(passphrase)),
        secrets_needed: true,
        allow_plaintext: false,
    };
    let new = server.store("dbgroups", policy(OTHER_PASSPHRASE));
    for serial in 1..=3 {
        let version = new.versions("shop").expect("history")[serial - 1].clone();
        let text = String::from_utf8(version.document).expect("UTF-8");
        assert!(!text.contains("rotated-secret-value"));
    }
    let loaded = new.load("shop").expect("opens").expect("recorded");
    assert_eq!(
        loaded.credentials["postgresql.default"]
            .password
            .as_ref()
            .map(dbgroups_state::Secret::expose),
        Some("rotated-secret-value")
    );
    assert!(matches!(
        server.store("dbgroups", policy(PASSPHRASE)).load("shop"),
        Err(StateError::WrongPassphrase { .. })
    ));
}

#[test]
fn migrate_round_trips_directory_postgresql_directory_byte_for_byte() {
    let server = StateServer::start();
    let url = server.url();
    let work = tempfile::tempdir().expect("temp dir");
    let source = work.path().join("source");
    encrypted_directory(&source);
    let (source_dir, copy_dir) = (
        source.display().to_string(),
        work.path().join("copy").display().to_string(),
    );

    let to_pg = run(
        work.path(),
        &["state", "migrate", "--state-dir", &source_dir, "--to", &url],
        &[],
    );
    assert_eq!(to_pg.code, 0, "{}", to_pg.stderr);
    assert!(
        !to_pg.stderr.contains(&url),
        "the password is never printed"
    );
    let again = run(
        work.path(),
        &["state", "migrate", "--state-dir", &source_dir, "--to", &url],
        &[],
    );
    assert_eq!(again.code, 0, "{}", again.stderr);
    assert!(again.stderr.contains("already"), "{}", again.stderr);
    let history = run(
        work.path(),
        &["state", "history", "--app", "shop"],
        &[("DBGROUPS_STATE_URL", &url)],
    );
    assert_eq!(history.code, 0, "{}", history.stderr);
    assert!(
        history.stdout.contains("\n2\t") && history.stdout.contains("\n3\t"),
        "{}",
        history.stdout
    );

    let back = run(
        work.path(),
        &["state", "migrate", "--to", &copy_dir],
        &[("DBGROUPS_STATE_URL", &url)],
    );
    assert_eq!(back.code, 0, "{}", back.stderr);
    assert_eq!(files(&source), files(Path::new(&copy_dir)));

    // Another lineage of the same application is not overwritten.
    let other = work.path().join("other");
    encrypted_directory(&other);
    let refused = run(
        work.path(),
        &[
            "state",
            "migrate",
            "--state-dir",
            &other.display().to_string(),
            "--to",
            &url,
        ],
        &[],
    );
    assert_eq!(refused.code, 1);
    assert!(refused.stderr.contains("lineage"), "{}", refused.stderr);
}

//! The encrypted-value reader: what it opens, and what it refuses.

use std::sync::{Arc, OnceLock};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use proptest::prelude::*;

use super::*;
use crate::model::{Credentials, Secret};

/// One keyring for every case: deriving a key is slow on purpose.
fn keyring() -> Arc<Keyring> {
    static KEYRING: OnceLock<Arc<Keyring>> = OnceLock::new();
    Arc::clone(KEYRING.get_or_init(|| {
        Arc::new(Keyring::new("correct horse battery staple").expect("long enough"))
    }))
}

fn with_password(password: &str) -> AppState {
    let mut state = AppState::new("shop");
    state.credentials.insert(
        "postgresql.default".into(),
        Credentials {
            username: "shop".into(),
            password: Some(Secret::new(password)),
            database: "shop".into(),
            admin_password: Some(Secret::new(format!("{password}-admin"))),
            replication_password: None,
            auth_database: None,
        },
    );
    state.environment.insert(
        "POSTGRESQL_URL".into(),
        format!("postgresql://shop:{password}@127.0.0.1/shop"),
    );
    state
        .environment
        .insert("POSTGRESQL_USERNAME".into(), "shop".into());
    state
}

fn policy(keyring: Option<Arc<Keyring>>) -> SecretPolicy {
    SecretPolicy {
        secrets_needed: keyring.is_some(),
        keyring,
        allow_plaintext: false,
    }
}

fn read(text: &[u8], keyring: Option<Arc<Keyring>>) -> Result<AppState, String> {
    let value: serde_json::Value = serde_json::from_slice(text).map_err(|e| e.to_string())?;
    decode(value, &policy(keyring))
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())
}

#[test]
fn secrets_are_sealed_and_the_rest_stays_readable() {
    let mut state = with_password("hunter2-very-secret");
    let (text, counts) = encode(&mut state, Some(&keyring())).expect("encodes");
    let shown = String::from_utf8(text.clone()).expect("UTF-8");
    assert!(!shown.contains("hunter2"), "{shown}");
    assert_eq!(counts.plaintext, 0);
    assert!(
        shown.contains("\"POSTGRESQL_USERNAME\": \"shop\""),
        "{shown}"
    );
    assert!(shown.contains(PBKDF2_ITERATIONS.to_string().as_str()));

    let opened = read(&text, Some(keyring())).expect("opens");
    assert_eq!(
        opened.credentials["postgresql.default"]
            .password
            .as_ref()
            .map(Secret::expose),
        Some("hunter2-very-secret")
    );
    assert!(!opened.has_sealed_secrets());

    let sealed = read(&text, None).expect("reads without the passphrase");
    assert!(sealed.has_sealed_secrets());
    assert_eq!(sealed.credentials["postgresql.default"].username, "shop");
    let needed = SecretPolicy {
        secrets_needed: true,
        ..policy(None)
    };
    let value: serde_json::Value = serde_json::from_slice(&text).expect("JSON");
    assert!(matches!(
        decode(value, &needed),
        Err(StateError::PassphraseRequired { .. })
    ));
}

#[test]
fn a_wrong_passphrase_is_told_apart_from_damage() {
    let mut state = with_password("hunter2-very-secret");
    let (text, _) = encode(&mut state, Some(&keyring())).expect("encodes");
    let wrong = Arc::new(Keyring::new("not the passphrase at all").expect("long enough"));
    let value: serde_json::Value = serde_json::from_slice(&text).expect("JSON");
    assert!(matches!(
        decode(value, &policy(Some(wrong))),
        Err(StateError::WrongPassphrase { .. })
    ));
    assert!(Keyring::new("short").is_err(), "under 16 characters");
}

#[test]
fn a_state_read_without_the_passphrase_is_never_written_back() {
    let mut state = with_password("hunter2-very-secret");
    let (text, _) = encode(&mut state, Some(&keyring())).expect("encodes");
    let mut sealed = read(&text, None).expect("reads");
    assert!(matches!(
        encode(&mut sealed, None),
        Err(StateError::PassphraseRequired { .. })
    ));
}

/// Every sealed value in a document, as (JSON pointer, text).
fn sealed_values(value: &serde_json::Value, at: String, into: &mut Vec<(String, String)>) {
    match value {
        serde_json::Value::Object(map) => {
            if let Some(serde_json::Value::String(sealed)) = map.get("sealed") {
                into.push((at, sealed.clone()));
                return;
            }
            for (key, inner) in map {
                sealed_values(
                    inner,
                    format!("{at}/{}", key.replace('~', "~0").replace('/', "~1")),
                    into,
                );
            }
        }
        serde_json::Value::Array(items) => {
            for (index, inner) in items.iter().enumerate() {
                sealed_values(inner, format!("{at}/{index}"), into);
            }
        }
        _ => {}
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn any_secret_round_trips(password in "\\PC{0,64}") {
        let mut state = with_password(&password);
        let (text, _) = encode(&mut state, Some(&keyring())).expect("encodes");
        let opened = read(&text, Some(keyring())).expect("opens");
        prop_assert_eq!(
            opened.credentials["postgresql.default"].password.as_ref().map(Secret::expose),
            Some(password.as_str())
        );
        prop_assert_eq!(opened.environment, state.environment);
    }

    /// Any change to any byte of a sealed value (nonce, ciphertext or tag)
    /// is refused, never read as another secret.
    #[test]
    fn tampered_ciphertext_is_refused(which in 0usize..16, byte in 0usize..128, flip in 1u8..=255) {
        let mut state = with_password("hunter2-very-secret");
        let (text, _) = encode(&mut state, Some(&keyring())).expect("encodes");
        let mut value: serde_json::Value = serde_json::from_slice(&text).expect("JSON");
        let mut found = Vec::new();
        sealed_values(&value, String::new(), &mut found);
        prop_assert!(found.len() >= 3, "passwords and the URL are sealed");
        let (pointer, sealed) = &found[which % found.len()];
        let mut bytes = BASE64.decode(sealed).expect("base64");
        let at = byte % bytes.len();
        bytes[at] ^= flip;
        *value.pointer_mut(pointer).expect("there") =
            serde_json::json!({ "sealed": BASE64.encode(&bytes) });
        let tampered = serde_json::to_vec(&value).expect("JSON");
        let read_back = read(&tampered, Some(keyring()));
        prop_assert!(read_back.is_err(), "read a tampered value");
        prop_assert!(read_back.err().unwrap_or_default().contains("does not decrypt"));
    }

    /// A nonce used twice under one key is refused, even when both values
    /// would open: AES-GCM's guarantees are gone once a nonce repeats.
    #[test]
    fn nonce_reuse_is_refused(which in 0usize..16, other in 0usize..16) {
        let mut state = with_password("hunter2-very-secret");
        let (text, _) = encode(&mut state, Some(&keyring())).expect("encodes");
        let mut value: serde_json::Value = serde_json::from_slice(&text).expect("JSON");
        let mut found = Vec::new();
        sealed_values(&value, String::new(), &mut found);
        let first = which % found.len();
        let mut second = other % found.len();
        if second == first {
            second = (first + 1) % found.len();
        }
        let copied = found[first].1.clone();
        *value.pointer_mut(&found[second].0).expect("there") =
            serde_json::json!({ "sealed": copied });
        let reused = serde_json::to_vec(&value).expect("JSON");
        let read_back = read(&reused, Some(keyring()));
        prop_assert!(read_back.is_err(), "read a reused nonce");
        prop_assert!(read_back.err().unwrap_or_default().contains("share a nonce"));
    }
}

//! Commands that read only the state: `env` and `state`, with and without a
//! manifest, their JSON, dotenv quoting, and the corrupt-state message.

use std::time::Duration;

use dbgroups_state::{AppState, DirectoryStore, StateError, StateStore};

use crate::cli::dbgroups_in;
use crate::cli_plan::{quickstart, record_quickstart};

/// The quickstart recorded in `dir/.dbgroups`, with the manifest gone.
fn state_without_manifest() -> tempfile::TempDir {
    let dir = quickstart();
    record_quickstart(dir.path());
    std::fs::remove_file(dir.path().join("manifest.yml")).expect("remove the manifest");
    dir
}

#[test]
fn env_and_state_show_with_app_need_no_manifest() {
    let dir = state_without_manifest();
    let env = dbgroups_in(dir.path(), &["env", "--app", "shop"]);
    assert_eq!(env.code, 0, "{}", env.stderr);
    assert!(
        env.stdout.contains("POSTGRESQL_PASSWORD=(sensitive)"),
        "{}",
        env.stdout
    );
    let json = dbgroups_in(dir.path(), &["env", "--app", "shop", "--format", "json"]);
    assert_eq!(json.code, 0, "{}", json.stderr);
    let variables: serde_json::Value = serde_json::from_str(&json.stdout).expect("JSON");
    assert_eq!(variables["POSTGRESQL_PASSWORD"], "(sensitive)");
    // Without --app the manifest names the application, so it is needed.
    let without = dbgroups_in(dir.path(), &["env"]);
    assert_eq!(without.code, 1);
    assert!(
        without.stderr.contains("cannot read manifest"),
        "{}",
        without.stderr
    );
}

/// Records `shop` with these environment values.
fn record_environment(dir: &std::path::Path, values: &[(&str, &str)]) {
    let mut state = DirectoryStore::new(dir.join(".dbgroups"))
        .load("shop")
        .expect("loads")
        .unwrap_or_else(|| AppState::new("shop"));
    for (name, value) in values {
        state
            .environment
            .insert((*name).to_string(), (*value).to_string());
    }
    crate::common::save_state(&dir.join(".dbgroups"), &mut state);
}

/// Reads a dotenv file as python-dotenv and docker compose do, for the
/// quoting `env` uses: bare, '…' taken literally, "…" with backslash escapes.
fn read_dotenv(text: &str) -> Vec<(String, String)> {
    text.lines()
        .map(|line| {
            let (name, raw) = line.split_once('=').expect("NAME=value");
            let value = if let Some(inner) = raw.strip_prefix('\'') {
                inner.strip_suffix('\'').expect("closed quote").to_string()
            } else if let Some(inner) = raw.strip_prefix('"') {
                let inner = inner.strip_suffix('"').expect("closed quote");
                let mut value = String::new();
                let mut chars = inner.chars();
                while let Some(c) = chars.next() {
                    if c == '\\' {
                        match chars.next().expect("an escaped character") {
                            'n' => value.push('\n'),
                            'r' => value.push('\r'),
                            't' => value.push('\t'),
                            other => value.push(other),
                        }
                    } else {
                        assert!(!"\"$`".contains(c), "unescaped {c:?} in {line:?}");
                        value.push(c);
                    }
                }
                value
            } else {
                assert!(
                    !raw.contains([' ', '#', '$', '"', '\'']),
                    "a bare value that needs quotes: {line:?}"
                );
                raw.to_string()
            };
            (name.to_string(), value)
        })
        .collect()
}

#[test]
fn env_quotes_values_so_they_read_back_the_same_and_inject_nothing() {
    let dir = quickstart();
    record_quickstart(dir.path());
    let tricky = [
        ("TRICKY_NEWLINE", "first\nINJECTED=1"),
        ("TRICKY_SPACE", "two words"),
        ("TRICKY_HASH", "before#after"),
        ("TRICKY_DOLLAR", "$HOME and ${PATH}"),
        ("TRICKY_QUOTES", "it's \"quoted\" $x"),
        ("TRICKY_BACKSLASH", "back\\slash'"),
        ("TRICKY_EMPTY", ""),
        ("TRICKY_PARENS", "(a) b"),
    ];
    record_environment(dir.path(), &tricky);
    let run = dbgroups_in(dir.path(), &["env", "--show-secrets"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let read = read_dotenv(&run.stdout);
    assert!(
        !read.iter().any(|(name, _)| name == "INJECTED"),
        "a newline started a variable: {}",
        run.stdout
    );
    for (name, value) in tricky {
        let found = read
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str());
        assert_eq!(found, Some(value), "{name}: {}", run.stdout);
    }
    let state = DirectoryStore::new(dir.path().join(".dbgroups"))
        .load("shop")
        .expect("loads")
        .expect("recorded");
    assert_eq!(read.len(), state.environment.len(), "one line per variable");
}

#[test]
fn state_list_and_show_have_json_and_text() {
    let dir = state_without_manifest();
    let list = dbgroups_in(dir.path(), &["state", "list", "--format", "json"]);
    assert_eq!(list.code, 0, "{}", list.stderr);
    let document: serde_json::Value = serde_json::from_str(&list.stdout).expect("JSON");
    assert_eq!(document["applications"][0]["application"], "shop");
    assert_eq!(document["applications"][0]["groups"], 2);
    assert_eq!(document["locked_by"], serde_json::Value::Null);
    let show = dbgroups_in(
        dir.path(),
        &["state", "show", "--app", "shop", "--format", "text"],
    );
    assert_eq!(show.code, 0, "{}", show.stderr);
    assert!(
        show.stdout.starts_with("application shop (serial 1"),
        "{}",
        show.stdout
    );
    assert!(
        show.stdout
            .contains("postgresql.default (postgresql 15), primary"),
        "{}",
        show.stdout
    );
    assert!(show.stdout.contains("pg-replica-1"), "{}", show.stdout);
    let json = dbgroups_in(
        dir.path(),
        &["state", "show", "--app", "shop", "--format", "json"],
    );
    let state: serde_json::Value = serde_json::from_str(&json.stdout).expect("JSON");
    assert_eq!(state["application"], "shop");
}

#[test]
fn a_corrupt_state_names_a_previous_version_only_when_one_exists() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = DirectoryStore::new(dir.path().join(".dbgroups"));
    let lock = store
        .lock(
            dbgroups_state::LockScope::Everything,
            "test",
            Duration::ZERO,
        )
        .expect("lock");
    let path = store.root().join("apps/shop.json");
    let backup = store.root().join("apps/shop.json.backup");

    // The first write keeps no previous version.
    store
        .save(&lock, &mut AppState::new("shop"))
        .expect("saves");
    assert!(!backup.exists());
    std::fs::write(&path, "{ truncated").expect("damage");
    let err = store.load("shop").expect_err("refused");
    assert!(matches!(err, StateError::Corrupt { .. }), "{err}");
    let message = err.to_string();
    assert!(
        !message.contains(".backup"),
        "names a file that does not exist: {message}"
    );
    assert!(
        message.contains("no previous version was kept"),
        "{message}"
    );

    // After a second write there is one, and the message names it.
    std::fs::remove_file(&path).expect("remove");
    let mut state = AppState::new("shop");
    store.save(&lock, &mut state).expect("saves");
    store.save(&lock, &mut state).expect("saves again");
    assert!(backup.exists());
    std::fs::write(&path, "{ truncated").expect("damage");
    let message = store.load("shop").expect_err("refused").to_string();
    assert!(
        message.contains(&format!("the previous version is {}", backup.display())),
        "{message}"
    );
}

//! Property tests: whatever bytes or YAML trees come in, parsing and
//! validation never panic, every diagnostic points inside the text, and a
//! manifest is returned exactly when there are no errors.
//!
//! Case counts are set here and recorded in docs/testing.md; set
//! PROPTEST_CASES to run more.

use dbgroups_manifest::{ParseOptions, SourceFile};
use proptest::prelude::*;

/// The invariants every parse must keep, whatever it was given.
fn check_parse(source: &SourceFile, options: &ParseOptions) -> Result<(), TestCaseError> {
    let parsed = dbgroups_manifest::parse(source, options);
    let len = source.text().len();
    for diagnostic in &parsed.diagnostics {
        prop_assert!(!diagnostic.message.is_empty());
        prop_assert!(!diagnostic.labels.is_empty(), "no label: {diagnostic:?}");
        for label in &diagnostic.labels {
            prop_assert!(
                label.span.start <= label.span.end && label.span.end <= len,
                "span {:?} outside 0..{len}",
                label.span
            );
            prop_assert!(
                source.text().is_char_boundary(label.span.start)
                    && source.text().is_char_boundary(label.span.end)
            );
        }
        let at = source.location(diagnostic.primary_span().start);
        prop_assert!(at.line >= 1 && at.line <= source.line_count());
    }
    prop_assert_eq!(parsed.manifest.is_some(), !parsed.diagnostics.has_errors());
    // The same input gives the same diagnostics, in the same order.
    let again = dbgroups_manifest::parse(source, options);
    let render = |p: &dbgroups_manifest::Parsed| -> Vec<String> {
        p.diagnostics
            .iter()
            .map(|d| d.to_compact_string(source))
            .collect()
    };
    prop_assert_eq!(render(&parsed), render(&again));
    Ok(())
}

/// Pieces that make generated trees hit real rules often, mixed with noise.
fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => prop::sample::select(vec![
            "application", "mysql", "postgresql", "redis", "mongodb", "groups", "default",
            "reporting", "configuration", "engine", "version", "servers", "server",
            "unique_name", "vendor", "address", "primary", "backups", "managed",
            "replicate_from", "import_from", "group", "tags", "root_disk_size", "production",
            "rails", "verison", "ssh", "user", "port", "jump", "identity_file",
            "public_address",
        ]).prop_map(String::from),
        1 => "[a-z_]{1,8}",
        1 => any::<String>().prop_map(|s| s.chars().take(6).collect()),
    ]
}

fn scalar() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => prop::sample::select(vec![
            "15", "16", "8.0", "10.11", "10.10", "7.0", "7.2", "true", "false", "yes", "mysql",
            "mariadb", "percona", "default", "reporting", "pg-main", "pg-main", "aws", "local",
            "ssh", "", "~", "-x", "100", "100GB", "a: b", "#", "&a", "*a", "'", "\"",
        ]).prop_map(String::from),
        1 => any::<String>().prop_map(|s| s.chars().take(12).collect()),
    ]
}

#[derive(Debug, Clone)]
enum Tree {
    Scalar(String),
    List(Vec<Tree>),
    Map(Vec<(String, Tree)>),
}

fn tree() -> impl Strategy<Value = Tree> {
    let leaf = scalar().prop_map(Tree::Scalar);
    leaf.prop_recursive(6, 64, 5, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Tree::List),
            prop::collection::vec((key(), inner), 0..5).prop_map(Tree::Map),
        ]
    })
}

/// Renders a tree as block YAML, quoting scalars as JSON strings (valid
/// YAML) half of the time so that both plain and quoted forms are covered.
fn render(tree: &Tree, indent: usize, out: &mut String) {
    let pad = " ".repeat(indent);
    match tree {
        Tree::Scalar(text) => {
            out.push(' ');
            out.push_str(&quote(text, indent));
            out.push('\n');
        }
        Tree::List(items) if items.is_empty() => out.push_str(" []\n"),
        Tree::Map(entries) if entries.is_empty() => out.push_str(" {}\n"),
        Tree::List(items) => {
            out.push('\n');
            for item in items {
                out.push_str(&pad);
                out.push('-');
                render(item, indent + 2, out);
            }
        }
        Tree::Map(entries) => {
            out.push('\n');
            for (key, value) in entries {
                out.push_str(&pad);
                out.push_str(&quote(key, indent));
                out.push(':');
                render(value, indent + 2, out);
            }
        }
    }
}

fn quote(text: &str, salt: usize) -> String {
    let plain_safe = !text.is_empty()
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
        && !text.starts_with(['-', '.']);
    if plain_safe && (salt + text.len()).is_multiple_of(2) {
        text.to_string()
    } else {
        serde_json::to_string(text).unwrap_or_else(|_| "\"\"".to_string())
    }
}

fn document(entries: &[(String, Tree)]) -> String {
    let mut out = String::new();
    render(&Tree::Map(entries.to_vec()), 0, &mut out);
    out.trim_start_matches('\n').to_string()
}

proptest! {
    #![proptest_config(crate::common::proptest_cases(2_000))]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let source = SourceFile::from_bytes("manifest.yml", &bytes);
        check_parse(&source, &ParseOptions::default())?;
    }

    #[test]
    fn arbitrary_text_with_yaml_punctuation_never_panics(
        text in "[a-z:\\-{}\\[\\],&*!|>#'\" \t\n]{0,200}"
    ) {
        let source = SourceFile::new("manifest.yml", text);
        check_parse(&source, &ParseOptions::default())?;
    }
}

proptest! {
    #![proptest_config(crate::common::proptest_cases(1_000))]

    #[test]
    fn arbitrary_yaml_trees_never_panic(
        entries in prop::collection::vec((key(), tree()), 0..6),
        environment in prop::option::of(prop::sample::select(vec!["production", "staging"])),
    ) {
        let text = document(&entries);
        let source = SourceFile::new("manifest.yml", text);
        let options = ParseOptions { environment: environment.map(String::from), application: None };
        check_parse(&source, &options)?;
    }

    /// Generated manifests in the real shape: the rules fire in every
    /// combination, and a valid one has the groups it declared.
    #[test]
    fn manifest_shaped_trees_never_panic(
        groups in prop::collection::vec(
            (
                prop::sample::select(vec!["mysql", "postgresql", "redis", "mongodb"]),
                prop::sample::select(vec!["default", "reporting", "cache", "my-db", "my_db"]),
                prop::option::of(scalar()),
                prop::option::of(prop::sample::select(vec!["default", "reporting", "cache", "nope"])),
                prop::collection::vec(scalar(), 0..3),
            ),
            0..6,
        )
    ) {
        let mut text = String::from("application: shop\n");
        let mut by_type: std::collections::BTreeMap<&str, Vec<String>> = Default::default();
        for (db_type, name, version, replicate_from, servers) in &groups {
            let mut group = format!("    {name}:\n");
            if let Some(version) = version {
                group.push_str(&format!("      configuration: {{ version: {} }}\n", quote(version, 1)));
            }
            if let Some(source) = replicate_from {
                group.push_str(&format!("      replicate_from: {source}\n"));
            }
            group.push_str("      servers:\n");
            for server in servers {
                group.push_str(&format!("        - server: {{ unique_name: {} }}\n", quote(server, 1)));
            }
            by_type.entry(db_type).or_default().push(group);
        }
        for (db_type, groups) in by_type {
            text.push_str(&format!("{db_type}:\n  groups:\n"));
            for group in groups {
                text.push_str(&group);
            }
        }
        let source = SourceFile::new("manifest.yml", text);
        check_parse(&source, &ParseOptions::default())?;
        if let Some(manifest) = dbgroups_manifest::parse(&source, &ParseOptions::default()).manifest {
            let declared: std::collections::BTreeSet<(&str, &str)> =
                groups.iter().map(|(db_type, name, ..)| (*db_type, *name)).collect();
            let parsed: std::collections::BTreeSet<(&str, &str)> = manifest
                .groups
                .iter()
                .map(|g| (g.db_type.key(), g.name.as_str()))
                .collect();
            prop_assert_eq!(parsed, declared);
        }
    }
}

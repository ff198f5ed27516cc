//! Every example under examples/ parses and validates (the tabbed copy of the
//! published manifest is the one that must not).

use dbgroups_manifest::{Code, ParseOptions, Severity, SourceFile};

use crate::common::repo_path;

fn example_files() -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    for dir in std::fs::read_dir(repo_path("examples")).expect("examples/ exists") {
        let dir = dir.expect("readable entry").path();
        // examples/ci holds a CI workflow, not manifests.
        if !dir.is_dir() || dir.ends_with("ci") {
            continue;
        }
        for file in std::fs::read_dir(&dir).expect("readable example dir") {
            let file = file.expect("readable entry").path();
            if file.extension().is_some_and(|e| e == "yml") {
                files.push(file);
            }
        }
    }
    files.sort();
    files
}

#[test]
fn every_example_validates() {
    let files = example_files();
    assert!(files.len() >= 6, "expected the examples, found {files:?}");
    for path in files
        .iter()
        .filter(|p| !p.to_string_lossy().ends_with("-with-tabs.yml"))
    {
        let source = SourceFile::read(path).expect("example is readable");
        let parsed = dbgroups_manifest::parse(&source, &ParseOptions::default());
        let errors: Vec<String> = parsed
            .diagnostics
            .iter()
            .filter(|d| d.is_error())
            .map(|d| d.to_compact_string(&source))
            .collect();
        assert!(
            errors.is_empty(),
            "{} has errors:\n{}",
            path.display(),
            errors.join("\n")
        );
        let manifest = parsed.manifest.expect("a valid example yields a manifest");
        assert!(
            !manifest.groups.is_empty(),
            "{} declares no groups",
            path.display()
        );
    }
}

#[test]
fn the_published_mysql_manifest_validates_with_end_of_life_warnings() {
    let source =
        SourceFile::read(&repo_path("examples/published-mysql/manifest.yml")).expect("readable");
    let parsed = dbgroups_manifest::parse(&source, &ParseOptions::default());
    let manifest = parsed.manifest.expect("valid as published");
    let groups: Vec<String> = manifest.groups.iter().map(|g| g.address()).collect();
    assert_eq!(groups, ["mysql.default", "mysql.upgrade", "mysql.legacy"]);
    let end_of_life: Vec<String> = parsed
        .diagnostics
        .iter()
        .filter(|d| d.code == Code::EndOfLifeVersion)
        .map(|d| format!("{} {}", source.location(d.primary_span().start), d.message))
        .collect();
    assert_eq!(
        end_of_life,
        [
            "6:15 percona 8.0 is past its end of life",
            "10:15 percona 8.1 is past its end of life",
            "14:15 mysql 5.6 is past its end of life",
        ]
    );
    assert!(
        parsed
            .diagnostics
            .iter()
            .all(|d| d.severity != Severity::Error)
    );
}

#[test]
fn the_published_text_with_tabs_points_at_each_tabbed_line() {
    let source = SourceFile::read(&repo_path(
        "examples/published-mysql/manifest-with-tabs.yml",
    ))
    .expect("readable");
    let parsed = dbgroups_manifest::parse(&source, &ParseOptions::default());
    assert!(parsed.manifest.is_none());
    let found: Vec<String> = parsed
        .diagnostics
        .iter()
        .map(|d| {
            format!(
                "{} {} {}",
                source.location(d.primary_span().start),
                d.code,
                d.message
            )
        })
        .collect();
    assert_eq!(
        found,
        [
            "5:1 tab-indentation this line is indented with a tab character",
            "9:1 tab-indentation this line is indented with a tab character",
            "13:1 tab-indentation this line is indented with a tab character",
        ]
    );
    let help = parsed
        .diagnostics
        .iter()
        .next()
        .and_then(|d| d.help.clone())
        .unwrap_or_default();
    assert!(
        help.contains("replace the tab with spaces"),
        "help says what to do: {help}"
    );
}

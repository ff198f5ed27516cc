//! What the renderings show a person or a pull-request comment: control
//! characters escaped, Markdown cut between lines, wording that is true,
//! destructive re-syncs counted, and failures and manifest warnings on
//! stdout for `--format json|markdown`.

use std::collections::BTreeMap;

use dbgroups_plan::render::{json, markdown, text};
use dbgroups_plan::{Blocked, Intents, ObservedFacts, Plan};

use crate::cli::dbgroups_in;
use crate::common::{applied, plan_with};
use crate::plans::BASE;

fn plan_of(manifest: &str, state: Option<&dbgroups_state::AppState>, intents: &Intents) -> Plan {
    plan_with(
        manifest,
        state,
        &BTreeMap::new(),
        &ObservedFacts::offline(),
        intents,
    )
    .0
}

/// A control character other than a line feed.
fn raw_control(text: &str) -> Option<char> {
    text.chars().find(|c| c.is_control() && *c != '\n')
}

#[test]
fn control_characters_reach_no_rendering_raw() {
    let mut plan = plan_of(BASE, None, &Intents::default());
    let hostile = "x\u{1b}]0;owned\u{7}\u{1b}[2J\0\u{9b}31m";
    plan.report.blocked.push(Blocked {
        subject: format!("postgresql.{hostile}"),
        reason: format!("reason {hostile}"),
        hint: format!("hint {hostile}"),
    });
    plan.report.warnings.push(format!("warning {hostile}"));
    for (format, rendering) in [
        ("text", text::render(&plan)),
        ("markdown", markdown::render(&plan)),
    ] {
        assert_eq!(raw_control(&rendering), None, "{format}: {rendering:?}");
        assert!(
            rendering.contains("x\\u{1b}]0;owned\\u{7}\\u{1b}[2J\\u{0}\\u{9b}31m"),
            "{format} shows what was there: {rendering}"
        );
    }
    // JSON escapes them its own way, and keeps the value.
    let document: serde_json::Value = serde_json::from_str(&json::render(&plan)).expect("JSON");
    assert_eq!(document["warnings"][0], format!("warning {hostile}"));
}

#[test]
fn a_manifest_with_control_characters_is_shown_escaped_by_plan() {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(
        dir.path().join("manifest.yml"),
        "application: shop\npostgresql:\n  groups:\n    default:\n      configuration: { version: \"15\" }\n      import_from: { application: \"x\\e]0;owned\\a\", group: \"y\\e[2J\" }\n      servers:\n        - server: { unique_name: pg-main }\n",
    )
    .expect("write");
    for format in ["text", "markdown"] {
        let run = dbgroups_in(dir.path(), &["plan", "--refresh=false", "--format", format]);
        assert_eq!(raw_control(&run.stdout), None, "{format}: {:?}", run.stdout);
        assert_eq!(raw_control(&run.stderr), None, "{format}: {:?}", run.stderr);
    }
}

/// A plan with `groups` new PostgreSQL groups, each of one server.
fn many_groups(groups: usize) -> String {
    let mut manifest = String::from("application: shop\npostgresql:\n  groups:\n");
    for index in 0..groups {
        manifest.push_str(&format!(
            "    group{index}:\n      configuration: {{ version: \"15\" }}\n      servers:\n        - server: {{ unique_name: pg-{index}-with-a-long-name-to-fill-the-comment }}\n"
        ));
    }
    manifest
}

#[test]
fn markdown_is_cut_between_lines_within_the_limit() {
    let plan = plan_of(&many_groups(60), None, &Intents::default());
    let full = markdown::render(&plan);
    let head_lines = full
        .lines()
        .take_while(|l| !l.starts_with("<details>"))
        .count();
    assert!(head_lines > 60, "the changes table is long");
    // Limits that fall inside the table of changes, at many offsets.
    for limit in (900..full.chars().count() / 3).step_by(97) {
        let cut = markdown::render_within(&plan, limit);
        assert!(
            cut.chars().count() <= limit,
            "{limit}: {} chars",
            cut.chars().count()
        );
        for line in cut.lines().filter(|l| l.starts_with('|')) {
            assert!(line.ends_with('|'), "{limit}: a row cut in half: {line:?}");
            assert!(
                full.lines().any(|whole| whole == line),
                "{limit}: a line that is not in the full rendering: {line:?}"
            );
        }
        assert!(cut.contains("Cut to fit a comment"), "{limit}: {cut}");
        assert!(
            cut.contains("`dbgroups plan` prints all of it"),
            "{limit}: it names a way to see everything that always exists: {cut}"
        );
        assert!(
            !cut.contains("on the plan file"),
            "{limit}: no plan file may have been written: {cut}"
        );
    }
}

#[test]
fn an_all_blocked_plan_does_not_point_the_wrong_way() {
    let state = applied(BASE);
    let with_new_group = BASE.replace(
        "redis:",
        "    reporting:\n      configuration: { version: \"15\" }\n      servers:\n        - server: { unique_name: pg-report }\nredis:",
    );
    let plan = plan_of(&with_new_group, Some(&state), &Intents::default());
    assert!(!plan.has_changes() && plan.report.blocked.len() == 1);
    let markdown = markdown::render(&plan);
    let text = text::render(&plan);
    for rendering in [&markdown, &text] {
        assert!(!rendering.contains("see above"), "{rendering}");
        assert!(
            rendering.contains("listed under \"Blocked\""),
            "{rendering}"
        );
    }
    // In Markdown the summary comes first, then the list it refers to.
    let summary = markdown.find("1 blocked").expect("summary");
    let list = markdown.find("Blocked, not in this plan").expect("list");
    assert!(summary < list);
}

#[test]
fn a_resync_is_counted_as_destructive() {
    let state = applied(BASE);
    let intents = Intents {
        resync: ["pg-replica-1".to_string()].into(),
        ..Intents::default()
    };
    let plan = plan_of(BASE, Some(&state), &intents);
    let text = text::render(&plan);
    assert!(text.contains("(REPLACES ALL DATA)"), "{text}");
    assert!(text.contains("(1 destructive)"), "{text}");
    assert!(text.contains("! DESTRUCTIVE: 1 change below"), "{text}");
    let document: serde_json::Value = serde_json::from_str(&json::render(&plan)).expect("JSON");
    assert_eq!(document["summary"]["destructive"], 1);
    assert_eq!(document["changes"][0]["destructive"], true);
    assert!(markdown::render(&plan).contains("[!CAUTION]"));
}

#[test]
fn json_and_markdown_plans_carry_the_failure_on_stdout() {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::create_dir(dir.path().join("a-directory")).expect("mkdir");
    std::fs::write(
        dir.path().join("invalid.yml"),
        "application: shop\npostgresql:\n  configuration: { verison: \"15\" }\n  servers:\n    - server: { unique_name: pg-main }\n",
    )
    .expect("write");
    for (manifest, message) in [
        (
            "missing.yml",
            "cannot read manifest missing.yml: No such file or directory",
        ),
        (
            "a-directory",
            "cannot read manifest a-directory: Is a directory",
        ),
        ("invalid.yml", "invalid.yml is invalid: 1 error"),
    ] {
        let run = dbgroups_in(dir.path(), &["plan", "-f", manifest, "--format", "json"]);
        assert_eq!(run.code, 1);
        let document: serde_json::Value = serde_json::from_str(&run.stdout)
            .unwrap_or_else(|e| panic!("{manifest}: {e}: {}", run.stdout));
        assert_eq!(document["format_version"], 2);
        let said = document["error"]["message"].as_str().expect("a message");
        assert!(said.starts_with(message), "{manifest}: {said}");
        let markdown = dbgroups_in(
            dir.path(),
            &["plan", "-f", manifest, "--format", "markdown"],
        );
        assert_eq!(markdown.code, 1);
        assert!(
            markdown.stdout.starts_with("### dbgroups plan failed"),
            "{}",
            markdown.stdout
        );
        assert!(
            markdown.stdout.contains(message),
            "{manifest}: {}",
            markdown.stdout
        );
    }
    let invalid = dbgroups_in(dir.path(), &["plan", "-f", "invalid.yml", "--json"]);
    let document: serde_json::Value = serde_json::from_str(&invalid.stdout).expect("JSON");
    let diagnostic = &document["diagnostics"][0];
    assert_eq!(diagnostic["code"], "unknown-key");
    assert_eq!(
        (diagnostic["line"].as_u64(), diagnostic["column"].as_u64()),
        (Some(3), Some(20))
    );
    let markdown = dbgroups_in(
        dir.path(),
        &["plan", "-f", "invalid.yml", "--format", "markdown"],
    );
    assert!(
        markdown
            .stdout
            .contains("invalid.yml:3:20: error[unknown-key]: unknown key \"verison\""),
        "{}",
        markdown.stdout
    );
    // The human report still goes to stderr.
    assert!(
        invalid.stderr.contains("unknown key \"verison\""),
        "{}",
        invalid.stderr
    );
}

#[test]
fn manifest_warnings_are_in_the_json_and_markdown_plans() {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(
        dir.path().join("manifest.yml"),
        "application: shop\npostgresql:\n  configuration: { version: \"11\" }\n  servers:\n    - server: { unique_name: pg-main }\n",
    )
    .expect("write");
    let run = dbgroups_in(dir.path(), &["plan", "--refresh=false", "--json"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let plan: serde_json::Value = serde_json::from_str(&run.stdout).expect("JSON");
    let warnings: Vec<&str> = plan["warnings"]
        .as_array()
        .expect("warnings")
        .iter()
        .filter_map(|w| w.as_str())
        .collect();
    assert!(
        warnings.iter().any(|w| w
            .starts_with("manifest.yml:3:29: postgresql 11 is past its end of life")
            && w.ends_with("[end-of-life-version]")),
        "{warnings:?}"
    );
    assert_eq!(
        plan["summary"]["warnings"].as_u64(),
        Some(warnings.len() as u64)
    );
    let markdown = dbgroups_in(
        dir.path(),
        &["plan", "--refresh=false", "--format", "markdown"],
    );
    assert!(
        markdown
            .stdout
            .contains("postgresql 11 is past its end of life"),
        "{}",
        markdown.stdout
    );
}

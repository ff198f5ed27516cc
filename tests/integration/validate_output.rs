//! `dbgroups validate` as a terminal and a CI job see it: control
//! characters never reach the terminal raw, long outputs are capped and long
//! lines cut, `short` is one line per diagnostic on stdout, and `json` is a
//! document even when the manifest cannot be read.

use crate::cli::dbgroups_in;

fn dir_with(text: &[u8]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("manifest.yml"), text).expect("write manifest");
    dir
}

fn validate(dir: &tempfile::TempDir, extra: &[&str]) -> crate::cli::Run {
    let mut args = vec!["validate"];
    args.extend_from_slice(extra);
    dbgroups_in(dir.path(), &args)
}

/// Raw C0/C1 controls other than the line break, as a terminal would act on them.
fn raw_controls(text: &str) -> Vec<char> {
    text.chars()
        .filter(|&c| c.is_control() && c != '\n')
        .collect()
}

const HOSTILE: &str = "application: \"shop\\e]0;pwned\\a\"\nredis:\n  servers:\n    - server: { unique_name: \"r\\e[2J\\0\", vendor: \"\\e[31maws\" }\n    - server:\n        unique_name: r2\x1b[H\x07\n        size: \"\\u009b2J\"\n";

#[test]
fn control_characters_are_escaped_in_every_format_with_and_without_colour() {
    let dir = dir_with(HOSTILE.as_bytes());
    for format in ["text", "short"] {
        for colour in [&["--no-color"][..], &[][..]] {
            let mut args = vec!["--format", format];
            args.extend_from_slice(colour);
            let run = validate(&dir, &args);
            assert_eq!(run.code, 1, "{}", run.stderr);
            let output = format!("{}{}", run.stdout, run.stderr);
            assert_eq!(
                raw_controls(&output),
                Vec::<char>::new(),
                "{format}: {output}"
            );
            assert!(
                output.contains("\\u{1b}"),
                "{format}: the escape is shown: {output}"
            );
            assert!(output.contains("control-character"), "{output}");
        }
    }
}

#[test]
fn text_output_is_capped_and_says_how_many_more() {
    let mut text = String::from("application: shop\nredis:\n  servers:\n");
    for n in 0..200 {
        text.push_str(&format!(
            "    - server: {{ unique_name: r{n}, regoin: eu }}\n"
        ));
    }
    let dir = dir_with(text.as_bytes());
    let run = validate(&dir, &[]);
    assert_eq!(run.code, 1);
    let shown = run.stderr.matches("manifest::unknown-key").count();
    assert_eq!(shown, 50, "{}", run.stderr);
    assert!(
        run.stderr.contains("… and 150 more (150 errors) not shown: `--format short` or `--format json` lists every one"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr
            .ends_with("manifest.yml is invalid: 200 errors, 0 warnings\n"),
        "{}",
        run.stderr
    );
    let json = validate(&dir, &["--format", "json"]);
    let document: serde_json::Value = serde_json::from_str(&json.stdout).expect("JSON");
    assert_eq!(document["diagnostics"].as_array().map(Vec::len), Some(200));
    let short = validate(&dir, &["--format", "short"]);
    assert_eq!(short.stdout.lines().count(), 200);
}

#[test]
fn a_long_line_is_quoted_around_its_span_only() {
    let filler = "x".repeat(100_000);
    let text = format!(
        "application: shop\nredis: {{ servers: [], configuration: {{ tags: {{ team: \"{filler}\" }} }}, regoin: eu }}\n"
    );
    let dir = dir_with(text.as_bytes());
    let run = validate(&dir, &["--format", "short"]);
    let unknown: Vec<&str> = run
        .stdout
        .lines()
        .filter(|l| l.contains("\"regoin\""))
        .collect();
    assert_eq!(unknown.len(), 1, "{}", run.stdout);
    let text_run = validate(&dir, &[]);
    assert!(
        text_run.stderr.len() < 60_000,
        "{} bytes of stderr",
        text_run.stderr.len()
    );
    let quoted = text_run
        .stderr
        .lines()
        .find(|l| l.contains("regoin: eu"))
        .expect("the line with the span is quoted");
    assert!(
        quoted.chars().count() < 200,
        "cut around the span: {quoted}"
    );
    assert!(quoted.contains('…'), "the cut is marked: {quoted}");
    // The caret sits under `regoin` on the cut line.
    let lines: Vec<&str> = text_run.stderr.lines().collect();
    let at = lines
        .iter()
        .position(|l| *l == quoted)
        .expect("quoted line");
    let caret_line = lines[at + 1];
    let column = |line: &str, needle: &str| line.find(needle).map(|b| line[..b].chars().count());
    assert_eq!(
        column(caret_line, "──"),
        column(quoted, "regoin"),
        "{quoted}\n{caret_line}"
    );
}

#[test]
fn text_short_and_json_count_columns_in_characters_alike() {
    // Two-byte characters before the span: byte and character columns differ.
    let dir = dir_with("application: shop\nredis:\n  servers:\n    - server: { unique_name: r1, region: éé-wést, regoin: eu }\n".as_bytes());
    let text = validate(&dir, &[]);
    assert!(
        text.stderr.contains("[manifest.yml:4:51]"),
        "{}",
        text.stderr
    );
    let short = validate(&dir, &["--format", "short"]);
    assert!(
        short
            .stdout
            .starts_with("manifest.yml:4:51: error[unknown-key]"),
        "{}",
        short.stdout
    );
    let json = validate(&dir, &["--format", "json"]);
    let document: serde_json::Value = serde_json::from_str(&json.stdout).expect("JSON");
    assert_eq!(document["diagnostics"][0]["column"], 51);
}

#[test]
fn short_format_is_one_line_per_diagnostic_on_stdout() {
    let dir = dir_with(b"application: shop\nredis:\n  servers:\n    - server: { unique_name: r1, regoin: eu }\n    - server: { unique_name: r2, vendor: aws }\n");
    let run = validate(&dir, &["--format", "short"]);
    assert_eq!(run.code, 1);
    insta::assert_snapshot!(run.stdout, @r#"
    manifest.yml:4:34: error[unknown-key]: unknown key "regoin", did you mean "region"? (help: server accepts: unique_name, address, public_address, ssh, vendor, size, region, key_name, root_disk_size, root_disk_type, subnet_id, availability_zone)
    manifest.yml:5:42: error[unsupported-vendor]: vendor "aws" has no provider in dbgroups (help: vendors with a provider: local (this machine, the default) and ssh (an existing host named by `address`))
    "#);
    assert_eq!(
        run.stderr,
        "manifest.yml is invalid: 2 errors, 0 warnings\n"
    );
}

#[test]
fn json_format_reports_a_missing_or_unreadable_manifest_as_a_document() {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::create_dir(dir.path().join("a-directory")).expect("mkdir");
    for path in ["missing.yml", "a-directory"] {
        let run = dbgroups_in(dir.path(), &["validate", "--format", "json", "-f", path]);
        assert_eq!(run.code, 1, "{path}");
        let document: serde_json::Value = serde_json::from_str(&run.stdout)
            .unwrap_or_else(|e| panic!("{path}: stdout is JSON ({e}): {:?}", run.stdout));
        assert_eq!(document["valid"], false);
        assert_eq!(document["errors"], 1);
        let diagnostic = &document["diagnostics"][0];
        assert_eq!(diagnostic["code"], "unreadable-manifest");
        let message = diagnostic["message"].as_str().unwrap_or_default();
        assert!(
            message.starts_with(&format!("cannot read manifest {path}: ")),
            "{message}"
        );
        let short = dbgroups_in(dir.path(), &["validate", "--format", "short", "-f", path]);
        assert_eq!(short.code, 1);
        assert!(
            short.stdout.starts_with(&format!(
                "{path}: error[unreadable-manifest]: cannot read manifest"
            )),
            "{}",
            short.stdout
        );
    }
    // An invalid manifest is a document too, with its diagnostics.
    std::fs::write(dir.path().join("bad.yml"), "application: shop\nredis: [\n").expect("write");
    let run = dbgroups_in(
        dir.path(),
        &["validate", "--format", "json", "-f", "bad.yml"],
    );
    let document: serde_json::Value = serde_json::from_str(&run.stdout).expect("JSON");
    assert_eq!(document["diagnostics"][0]["code"], "yaml-syntax");
}

#[test]
fn a_bad_app_flag_is_a_command_line_error_not_a_place_in_the_file() {
    let dir =
        dir_with(b"application: shop\nredis:\n  servers:\n    - server: { unique_name: r1 }\n");
    let run = validate(&dir, &["--format", "short", "--app", "bad name!"]);
    assert_eq!(run.code, 1);
    assert_eq!(
        run.stdout.lines().next(),
        Some(
            "command line: error[invalid-name]: invalid --app value \"bad name!\": it contains a space, which names may not hold (help: names are used in paths, hostnames and variable names: use at most 63 characters: letters, digits, `_` and `-`, starting with a letter or digit)"
        )
    );
    let json = validate(&dir, &["--format", "json", "--app", "bad name!"]);
    let document: serde_json::Value = serde_json::from_str(&json.stdout).expect("JSON");
    let diagnostic = &document["diagnostics"][0];
    assert_eq!(
        (diagnostic["line"].is_null(), diagnostic["file"].is_null()),
        (true, true)
    );
    let text = validate(&dir, &["--app", "bad name!"]);
    assert!(!text.stderr.contains("manifest.yml:1:1"), "{}", text.stderr);
    assert!(
        text.stderr.contains("invalid --app value"),
        "{}",
        text.stderr
    );
}

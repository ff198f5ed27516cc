//! The `dbgroups` binary as a user runs it: output snapshots and exit codes.

use std::process::Command;

use insta::assert_snapshot;

use crate::common::repo_path;

pub(crate) struct Run {
    pub(crate) code: i32,
    pub(crate) stdout: String,
    pub(crate) stderr: String,
}

pub(crate) fn dbgroups(args: &[&str]) -> Run {
    dbgroups_in(&repo_path(""), args)
}

/// Runs the binary in `dir`, without colour.
pub(crate) fn dbgroups_in(dir: &std::path::Path, args: &[&str]) -> Run {
    dbgroups_with_env(dir, args, &[])
}

/// Runs the binary in `dir`, without colour, with `env` added to the
/// caller's environment (the hostile-environment tests).
pub(crate) fn dbgroups_with_env(
    dir: &std::path::Path,
    args: &[&str],
    env: &[(String, String)],
) -> Run {
    let output = Command::new(env!("CARGO_BIN_EXE_dbgroups"))
        .args(args)
        .current_dir(dir)
        .env("NO_COLOR", "1")
        .envs(env.iter().map(|(k, v)| (k, v)))
        .output()
        .expect("dbgroups runs");
    let run = Run {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    };
    crate::transcripts::record_run(args, &run.stdout, &run.stderr);
    run
}

fn write_manifest(text: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("manifest.yml"), text).expect("write manifest");
    dir
}

#[test]
fn validate_accepts_the_quickstart() {
    let run = dbgroups(&["validate", "-f", "examples/quickstart/manifest.yml"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_snapshot!(run.stderr, @"examples/quickstart/manifest.yml is valid: 2 groups, 3 servers (0 warnings)");
}

#[test]
fn validate_renders_each_problem_with_the_line_it_points_at() {
    let dir = write_manifest(
        "application: shop\npostgresql:\n  configuration:\n    verison: \"15\"\n  servers:\n    - server: { unique_name: pg-main, vendor: aws }\n",
    );
    let manifest = dir.path().join("manifest.yml");
    let run = dbgroups(&["validate", "-f", manifest.to_str().expect("utf-8 path")]);
    assert_eq!(run.code, 1);
    let stderr = run
        .stderr
        .replace(manifest.to_str().expect("utf-8 path"), "manifest.yml");
    assert_snapshot!(stderr, @r#"
    manifest::unknown-key

      × unknown key "verison", did you mean "version"?
       ╭─[manifest.yml:4:5]
     3 │   configuration:
     4 │     verison: "15"
       ·     ───────
     5 │   servers:
       ╰────
      help: configuration accepts: engine, version, operating_system, root_disk_size, root_disk_type,
            encoding, tags

    manifest::unsupported-vendor

      × vendor "aws" has no provider in dbgroups
       ╭─[manifest.yml:6:47]
     5 │   servers:
     6 │     - server: { unique_name: pg-main, vendor: aws }
       ·                                               ───
       ╰────
      help: vendors with a provider: local (this machine, the default) and ssh (an existing host named
            by `address`)

    manifest.yml is invalid: 2 errors, 0 warnings
    "#);
}

#[test]
fn validate_reports_tabs_in_the_published_example() {
    let run = dbgroups(&[
        "validate",
        "-f",
        "examples/published-mysql/manifest-with-tabs.yml",
    ]);
    assert_eq!(run.code, 1);
    assert_snapshot!(run.stderr, @r#"
    manifest::tab-indentation

      × this line is indented with a tab character
       ╭─[examples/published-mysql/manifest-with-tabs.yml:5:1]
     4 │    configuration:
     5 │      engine: percona
       · ──┬─
       ·   ╰── tab
     6 │      version: "8.0"
       ╰────
      help: YAML allows only spaces for indentation: replace the tab with spaces, indenting this line
            further than `configuration:` above it

    manifest::tab-indentation

      × this line is indented with a tab character
        ╭─[examples/published-mysql/manifest-with-tabs.yml:9:1]
      8 │    configuration:
      9 │      engine: percona
        · ──┬─
        ·   ╰── tab
     10 │      version: "8.1"
        ╰────
      help: YAML allows only spaces for indentation: replace the tab with spaces, indenting this line
            further than `configuration:` above it

    manifest::tab-indentation

      × this line is indented with a tab character
        ╭─[examples/published-mysql/manifest-with-tabs.yml:13:1]
     12 │    configuration:
     13 │      operating_system: ubuntu1604
        · ──┬─
        ·   ╰── tab
     14 │      version: "5.6"
        ╰────
      help: YAML allows only spaces for indentation: replace the tab with spaces, indenting this line
            further than `configuration:` above it

    examples/published-mysql/manifest-with-tabs.yml is invalid: 3 errors, 0 warnings
    "#);
}

#[test]
fn validate_short_format() {
    let run = dbgroups(&[
        "validate",
        "--format",
        "short",
        "-f",
        "examples/published-mysql/manifest.yml",
    ]);
    assert_eq!(run.code, 0);
    assert_snapshot!(run.stdout, @"
    examples/published-mysql/manifest.yml:1:1: warning[missing-application]: the manifest names no application (help: add `application: NAME` at the top, or pass --app NAME; plan and apply need one)
    examples/published-mysql/manifest.yml:3:3: warning[no-servers]: group mysql.default declares no servers (help: it is valid, but nothing is built for it until it lists `servers:`)
    examples/published-mysql/manifest.yml:6:15: warning[end-of-life-version]: percona 8.0 is past its end of life (help: it is accepted, but no longer gets security fixes; supported series: 8.4)
    examples/published-mysql/manifest.yml:7:3: warning[no-servers]: group mysql.upgrade declares no servers (help: it is valid, but nothing is built for it until it lists `servers:`)
    examples/published-mysql/manifest.yml:10:15: warning[end-of-life-version]: percona 8.1 is past its end of life (help: it is accepted, but no longer gets security fixes; supported series: 8.4)
    examples/published-mysql/manifest.yml:11:3: warning[no-servers]: group mysql.legacy declares no servers (help: it is valid, but nothing is built for it until it lists `servers:`)
    examples/published-mysql/manifest.yml:14:15: warning[end-of-life-version]: mysql 5.6 is past its end of life (help: it is accepted, but no longer gets security fixes; supported series: 8.4, 9.7)
    ");
    assert_eq!(
        run.stderr,
        "examples/published-mysql/manifest.yml is valid: 3 groups, 0 servers (7 warnings)\n"
    );
}

#[test]
fn validate_json_format() {
    let run = dbgroups(&[
        "validate",
        "--json",
        "-f",
        "examples/published-mysql/manifest-with-tabs.yml",
    ]);
    assert_eq!(run.code, 1);
    let document: serde_json::Value = serde_json::from_str(&run.stdout).expect("stdout is JSON");
    assert_eq!(document["valid"], false);
    assert_eq!(document["errors"], 3);
    let first = &document["diagnostics"][0];
    assert_eq!(first["code"], "tab-indentation");
    assert_eq!(
        (first["line"].as_u64(), first["column"].as_u64()),
        (Some(5), Some(1))
    );
    assert_snapshot!(run.stdout, @r#"
    {
      "format_version": 1,
      "file": "examples/published-mysql/manifest-with-tabs.yml",
      "valid": false,
      "errors": 3,
      "warnings": 0,
      "diagnostics": [
        {
          "severity": "error",
          "code": "tab-indentation",
          "message": "this line is indented with a tab character",
          "file": "examples/published-mysql/manifest-with-tabs.yml",
          "line": 5,
          "column": 1,
          "labels": [
            {
              "line": 5,
              "column": 1,
              "end_line": 5,
              "end_column": 2,
              "text": "tab"
            }
          ],
          "help": "YAML allows only spaces for indentation: replace the tab with spaces, indenting this line further than `configuration:` above it"
        },
        {
          "severity": "error",
          "code": "tab-indentation",
          "message": "this line is indented with a tab character",
          "file": "examples/published-mysql/manifest-with-tabs.yml",
          "line": 9,
          "column": 1,
          "labels": [
            {
              "line": 9,
              "column": 1,
              "end_line": 9,
              "end_column": 2,
              "text": "tab"
            }
          ],
          "help": "YAML allows only spaces for indentation: replace the tab with spaces, indenting this line further than `configuration:` above it"
        },
        {
          "severity": "error",
          "code": "tab-indentation",
          "message": "this line is indented with a tab character",
          "file": "examples/published-mysql/manifest-with-tabs.yml",
          "line": 13,
          "column": 1,
          "labels": [
            {
              "line": 13,
              "column": 1,
              "end_line": 13,
              "end_column": 2,
              "text": "tab"
            }
          ],
          "help": "YAML allows only spaces for indentation: replace the tab with spaces, indenting this line further than `configuration:` above it"
        }
      ]
    }
    "#);
}

#[test]
fn validate_environment_and_app_flags() {
    let dir = write_manifest(
        "production:\n  redis:\n    servers:\n      - server: { unique_name: redis-prod }\n",
    );
    let manifest = dir.path().join("manifest.yml");
    let path = manifest.to_str().expect("utf-8 path");
    let without = dbgroups(&["validate", "--format", "short", "-f", path]);
    assert_eq!(without.code, 1, "{}", without.stderr);
    assert!(
        without.stdout.contains("pass --environment production"),
        "{}",
        without.stdout
    );
    let with = dbgroups(&[
        "validate",
        "--format",
        "short",
        "--environment",
        "production",
        "--app",
        "shop",
        "-f",
        path,
    ]);
    assert_eq!(with.code, 0, "{}", with.stderr);
    assert!(
        with.stderr
            .ends_with("is valid: 1 group, 1 server (0 warnings)\n"),
        "{}",
        with.stderr
    );
}

#[test]
fn validate_a_missing_file_is_a_clear_error() {
    let run = dbgroups(&["validate", "-f", "no/such/manifest.yml"]);
    assert_eq!(run.code, 1);
    assert!(
        run.stderr
            .contains("cannot read manifest no/such/manifest.yml"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("No such file or directory"),
        "{}",
        run.stderr
    );
}

#[test]
fn schema_prints_json_schema() {
    let run = dbgroups(&["schema"]);
    assert_eq!(run.code, 0);
    let schema: serde_json::Value = serde_json::from_str(&run.stdout).expect("schema is JSON");
    assert_eq!(schema["$schema"], "http://json-schema.org/draft-07/schema#");
    assert!(schema["definitions"]["postgresqlGroup"].is_object());
}

#[test]
fn help_lists_the_commands_with_examples() {
    let run = dbgroups(&["--help"]);
    assert_eq!(run.code, 0);
    assert_snapshot!(run.stdout, @"
    dbgroups reads the MySQL, PostgreSQL, Redis and MongoDB groups declared in manifest.yml, compares
    them with the recorded state, and plans and applies the changes on real servers.

    Usage: dbgroups [OPTIONS] <COMMAND>

    Commands:
      validate  Check a manifest and report every problem with its line and column
      schema    Print the manifest's JSON Schema, for editors (yaml-language-server)
      plan      Compare the manifest with the recorded state and show the plan
      show      Render a plan file written by `plan --out`
      graph     Draw the plan's step graph as DOT or Mermaid
      state     Inspect the recorded state
      apply     Carry out a plan on the servers (plans first and asks, unless given a plan file)
      status    Show every recorded server: role, whether it is up, replication and lag
      backup    Take, list and verify managed backups (docs/backups.md)
      env       Print the application's environment variables (secrets masked)
      destroy   Stop and delete every server and all data of an application
      help      Print this message or the help of the given subcommand(s)

    Options:
      -f, --manifest <FILE>
              The manifest to read (`-` reads it from stdin)
              
              [default: manifest.yml]

          --app <NAME>
              The application, overriding the manifest's `application:`

          --environment <NAME>
              Read the groups from this environment section of the manifest (`production:` …)

          --no-color
              Never colour the output (the NO_COLOR variable does the same)

          --state-dir <DIR>
              Where state is kept [default: .dbgroups/ next to the manifest]
              
              [env: DBGROUPS_STATE_DIR=]

          --state-url <URL>
              Keep the state in this PostgreSQL database (postgres://…; TLS as its sslmode says), shared
              by every machine that names it; its password is never printed
              
              [env: DBGROUPS_STATE_URL]

          --state-schema <NAME>
              The schema of the state's tables in --state-url's database
              
              [env: DBGROUPS_STATE_SCHEMA=]
              [default: dbgroups]

          --allow-plaintext-secrets
              Let the PostgreSQL backend store secrets in plain text (without DBGROUPS_STATE_PASSPHRASE)

          --lock-timeout <DURATION>
              How long a writing command waits for another to release the state lock
              
              [default: 0s]

          --ssh-config <FILE>
              The OpenSSH client configuration for servers on hosts [default: ssh's own, ~/.ssh/config]
              
              [env: DBGROUPS_SSH_CONFIG=]

          --accept-new-host-keys
              Trust a host key seen for the first time (ssh's accept-new); a changed key is refused
              anyway

      -h, --help
              Print help (see a summary with '-h')

      -V, --version
              Print version
    ");
    let run = dbgroups(&["validate", "--help"]);
    assert_eq!(run.code, 0);
    assert!(run.stdout.contains("Examples:"), "{}", run.stdout);
}

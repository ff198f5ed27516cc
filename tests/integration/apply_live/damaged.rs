//! Damaged files through the CLI: truncated, corrupt, newer-format and
//! hand-edited state files and plan files, a plan file applied to another
//! application's state, and a state write that fails midway (a full
//! filesystem). Each is refused with an error that names what is wrong, the
//! last good state stays byte for byte, and nothing is overwritten.

use super::*;

fn apps_file(dir: &Path) -> PathBuf {
    dir.join(".dbgroups/apps/shop.json")
}

/// Runs `args` against a damaged file and checks the refusal: a non-zero
/// exit, `expected` in the message, and the state file unchanged.
fn refused(dir: &Path, args: &[&str], expected: &str) {
    let before = std::fs::read(apps_file(dir)).expect("state file");
    let run = dbgroups_in(dir, args);
    assert_ne!(run.code, 0, "{args:?} was to be refused:\n{}", run.stdout);
    assert!(
        run.stderr.contains(expected),
        "{args:?}: expected {expected:?} in:\n{}",
        run.stderr
    );
    assert!(
        !run.stderr.contains("panicked"),
        "{args:?} panicked:\n{}",
        run.stderr
    );
    assert_eq!(
        std::fs::read(apps_file(dir)).expect("state file"),
        before,
        "{args:?} left the state file as it was"
    );
}

#[test]
fn damaged_state_files_are_refused_by_plan_and_apply_and_left_untouched() {
    let (dir, _servers) = quickstart();
    apply_ok(dir.path(), &[]);
    let good = std::fs::read_to_string(apps_file(dir.path())).expect("state");
    let damaged: [(&str, String, &str); 6] = [
        ("truncated", good[..good.len() / 2].to_string(), "corrupt"),
        ("corrupt bytes", good.replacen('{', "\u{0}{", 3), "corrupt"),
        (
            "a newer format",
            good.replacen("\"format_version\": 1", "\"format_version\": 99", 1),
            "newer",
        ),
        (
            "a hand-edited serial",
            good.replacen("\"serial\": ", "\"serial\": \"twelve\", \"was\": ", 1),
            "corrupt",
        ),
        (
            "a hand-edited type",
            good.replacen("\"redis\"", "\"oracle\"", 1),
            "corrupt",
        ),
        (
            "another application's file",
            good.replacen(
                "\"application\": \"shop\"",
                "\"application\": \"billing\"",
                1,
            ),
            "records application \"billing\"",
        ),
    ];
    for (what, text, expected) in damaged {
        assert_ne!(text, good, "{what}: the damage applies to this state file");
        std::fs::write(apps_file(dir.path()), &text).expect("damage");
        refused(dir.path(), &["plan", "--refresh=false"], expected);
        refused(
            dir.path(),
            &["apply", "--auto-approve", "--refresh=false"],
            expected,
        );
        refused(dir.path(), &["status"], expected);
    }
    // Put back, everything is as it was.
    std::fs::write(apps_file(dir.path()), &good).expect("restore");
    converged(dir.path(), "manifest.yml");
}

#[test]
fn damaged_or_foreign_plan_files_are_refused_and_change_nothing() {
    let (dir, _servers) = quickstart();
    apply_ok(dir.path(), &[]);
    let grown = std::fs::read_to_string(dir.path().join("manifest.yml"))
        .expect("manifest")
        .replace(
            "  configuration: { version: \"7.0\" }\n  servers:\n    - server: { unique_name: redis-main }",
            "  configuration: { version: \"7.0\" }\n  backups: { managed: true }\n  servers:\n    - server: { unique_name: redis-main }\n    - server: { unique_name: redis-replica-1 }",
        );
    assert!(
        grown.contains("redis-replica-1"),
        "the quickstart's Redis group grows"
    );
    set_manifest(dir.path(), &grown);
    let planned = dbgroups_in(
        dir.path(),
        &["plan", "--refresh=false", "--out", "plan.json"],
    );
    assert_eq!(planned.code, 0, "{}", planned.stderr);
    let good = std::fs::read_to_string(dir.path().join("plan.json")).expect("plan file");
    let damaged: [(&str, String, &str); 4] = [
        (
            "truncated",
            good[..good.len() / 2].to_string(),
            "is not a dbgroups plan",
        ),
        (
            "corrupt bytes",
            good.replacen('"', "\u{0}", 5),
            "is not a dbgroups plan",
        ),
        (
            "a newer format",
            good.replacen(
                "\"format_version\": ",
                "\"format_version\": 99, \"was\": ",
                1,
            ),
            "newer",
        ),
        (
            "a hand-edited step",
            good.replacen("redis-replica-1", "redis-replica-9", 2),
            "modified after it was written",
        ),
    ];
    for (what, text, expected) in damaged {
        assert_ne!(text, good, "{what}: the damage applies to this plan file");
        std::fs::write(dir.path().join("bad.json"), &text).expect("damage");
        refused(
            dir.path(),
            &["apply", "bad.json", "--auto-approve"],
            expected,
        );
    }
    assert!(
        state(dir.path()).server("redis-replica-1").is_none(),
        "no damaged plan built anything"
    );

    // The intact plan, applied to another application's state: refused.
    let other = tempfile::tempdir().expect("dir");
    let _other_servers = Servers {
        state_dir: other.path().join(".dbgroups"),
    };
    std::fs::copy(
        dir.path().join("manifest.yml"),
        other.path().join("manifest.yml"),
    )
    .expect("copy");
    let foreign = std::fs::read_to_string(dir.path().join("manifest.yml"))
        .expect("manifest")
        .replace("application: shop", "application: billing")
        .replace("unique_name: ", "unique_name: billing-");
    set_manifest(other.path(), &foreign);
    std::fs::copy(dir.path().join("plan.json"), other.path().join("plan.json")).expect("copy");
    let applied = dbgroups_in(other.path(), &["apply", "plan.json", "--auto-approve"]);
    assert_ne!(applied.code, 0, "{}", applied.stdout);
    assert!(
        applied
            .stderr
            .contains("the plan is for application \"shop\", not \"billing\""),
        "{}",
        applied.stderr
    );
    assert!(
        !other.path().join(".dbgroups/apps/shop.json").exists()
            && !other.path().join(".dbgroups/apps/billing.json").exists(),
        "nothing was recorded for either application:\n{}",
        applied.stderr
    );

    // The intact plan still applies where it was made.
    apply_ok(dir.path(), &["plan.json"]);
    assert!(state(dir.path()).server("redis-replica-1").is_some());
}

#[test]
fn a_state_write_that_fails_on_a_full_filesystem_keeps_the_last_good_state() {
    let (dir, servers) = quickstart();
    set_manifest(
        dir.path(),
        "application: shop\nredis:\n  configuration: { version: \"7.0\" }\n  servers:\n    - server: { unique_name: redis-main }\n",
    );
    // The state files live on a filesystem of four pages: room for the
    // state, its backup and the next version while each fits in a page.
    let apps = dir.path().join(".dbgroups/apps");
    let _small = SmallFilesystem::mount(&apps, "16k");
    // Declared after the mount, so the servers are stopped (their state
    // read) before it is unmounted, pass or fail.
    let _servers = servers;
    apply_ok(dir.path(), &[]);
    let good = std::fs::read(apps_file(dir.path())).expect("state");
    let good_serial = state(dir.path()).serial;

    // Ten more groups: the state outgrows a page and the write fails.
    let mut grown = String::from(
        "application: shop\nredis:\n  groups:\n    default:\n      configuration: { version: \"7.0\" }\n      servers:\n        - server: { unique_name: redis-main }\n",
    );
    for i in 1..=10 {
        grown.push_str(&format!(
            "    cache-{i}:\n      configuration: {{ version: \"7.0\" }}\n      servers:\n        - server: {{ unique_name: redis-cache-{i} }}\n"
        ));
    }
    set_manifest(dir.path(), &grown);
    let mut add_groups = vec!["apply", "--auto-approve", "--refresh=false"];
    let names: Vec<String> = (1..=10).map(|i| format!("redis.cache-{i}")).collect();
    for name in &names {
        add_groups.extend(["--add-group", name.as_str()]);
    }
    let failed = dbgroups_in(dir.path(), &add_groups);
    assert_ne!(failed.code, 0, "{}", failed.stdout);
    assert!(
        failed.stderr.contains("No space left on device"),
        "the error says why: {}",
        failed.stderr
    );
    let kept = std::fs::read(apps_file(dir.path())).expect("state");
    // Either the version before this apply, or one this apply wrote
    // completely before the write that failed; never a partial file.
    assert!(
        kept == good || state(dir.path()).serial > good_serial,
        "the state file is the last good one"
    );
    DirectoryStore::new(dir.path().join(".dbgroups"))
        .load("shop")
        .expect("the state file reads")
        .expect("and is there");

    // With room again, the next apply finishes from there.
    let status = std::process::Command::new("mount")
        .args(["-o", "remount,size=1m"])
        .arg(&apps)
        .status()
        .expect("remount");
    assert!(status.success());
    apply_ok(dir.path(), &add_groups[3..]);
    converged(dir.path(), "manifest.yml");
}

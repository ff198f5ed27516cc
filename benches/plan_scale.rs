//! Planning at scale (issue 7, item 1): `dbgroups plan --refresh=false`,
//! end to end as a user runs it (process start, parse, validate, diff,
//! plan, render), on generated manifests and states of 10 to 10,000
//! servers over groups of all four types with replication between groups.
//! Prints a table of wall time (median of runs) and peak RSS for text and
//! JSON output, and the growth exponent between sizes.
//!
//! `cargo bench --bench plan_scale` runs the full sizes; `-- --quick` (what
//! CI runs, asserting nothing about time) stops at 100 servers, once each.
//! A measurement is one child process; its peak RSS is read with
//! `getrusage(RUSAGE_CHILDREN)` in a fresh process per measurement (this
//! binary re-run with `--measure`), so runs never mix.

// A benchmark prints its table; that is its output.
#![allow(clippy::print_stdout)]

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::time::Instant;

use dbgroups_manifest::{ParseOptions, SourceFile};
use dbgroups_plan::{Intents, ObservedFacts, PlanInput};
use dbgroups_state::{DirectoryStore, Secret, StateStore};

const DBGROUPS: &str = env!("CARGO_BIN_EXE_dbgroups");

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(at) = args.iter().position(|a| a == "--measure") {
        measure_once(&args[at + 1..]);
        return;
    }
    let quick = args.iter().any(|a| a == "--quick");
    let sizes: &[usize] = if quick {
        &[10, 100]
    } else {
        &[10, 100, 1_000, 10_000]
    };
    let runs = if quick { 1 } else { 5 };
    println!(
        "plan --refresh=false, end to end; median of {runs} run(s); {} cores",
        cores()
    );
    println!(
        "| servers | groups | changes | text: time | text: peak RSS | json: time | json: peak RSS | plan bytes (text) |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|");
    let mut timings = Vec::new();
    for &servers in sizes {
        let dir = tempfile::tempdir().expect("temp dir");
        let (groups, changes) = write_fixture(dir.path(), servers);
        let text = median_run(dir.path(), &[], runs);
        let json = median_run(dir.path(), &["--format", "json"], runs);
        println!(
            "| {servers} | {groups} | {changes} | {:.3} s | {:.1} MiB | {:.3} s | {:.1} MiB | {} |",
            text.seconds,
            text.peak_kib as f64 / 1024.0,
            json.seconds,
            json.peak_kib as f64 / 1024.0,
            text.output_bytes,
        );
        timings.push((servers, text.seconds.max(json.seconds)));
    }
    for pair in timings.windows(2) {
        let ((n0, t0), (n1, t1)) = (pair[0], pair[1]);
        println!(
            "growth {n0} → {n1} servers: time × {:.2} for size × {:.0}, exponent {:.2}",
            t1 / t0,
            n1 as f64 / n0 as f64,
            (t1 / t0).ln() / (n1 as f64 / n0 as f64).ln()
        );
    }
}

struct Run {
    seconds: f64,
    peak_kib: u64,
    output_bytes: usize,
}

/// Runs `dbgroups plan` `runs` times, each measured in a fresh process.
fn median_run(dir: &Path, extra: &[&str], runs: usize) -> Run {
    let mut results: Vec<Run> = (0..runs)
        .map(|_| {
            let output = Command::new(std::env::current_exe().expect("self"))
                .arg("--measure")
                .arg(dir)
                .args(extra)
                .output()
                .expect("measures");
            assert!(
                output.status.success(),
                "{}",
                String::from_utf8_lossy(&output.stderr)
            );
            let text = String::from_utf8_lossy(&output.stdout);
            let fields: Vec<&str> = text.split_whitespace().collect();
            Run {
                seconds: fields[0].parse().expect("seconds"),
                peak_kib: fields[1].parse().expect("KiB"),
                output_bytes: fields[2].parse().expect("bytes"),
            }
        })
        .collect();
    results.sort_by(|a, b| a.seconds.total_cmp(&b.seconds));
    results.swap_remove(runs / 2)
}

/// In a fresh process: one `dbgroups plan`, then its time, peak RSS (KiB)
/// and output size.
fn measure_once(args: &[String]) {
    let dir = &args[0];
    let started = Instant::now();
    let output = Command::new(DBGROUPS)
        .args(["plan", "--refresh=false", "--no-color"])
        .args(&args[1..])
        .current_dir(dir)
        .output()
        .expect("runs dbgroups");
    let seconds = started.elapsed().as_secs_f64();
    // 0 = no changes, 2 = changes (--detailed-exitcode is not passed, so 0).
    assert!(
        output.status.success(),
        "dbgroups plan failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    // Linux reports ru_maxrss in KiB.
    let peak_kib = nix::sys::resource::getrusage(nix::sys::resource::UsageWho::RUSAGE_CHILDREN)
        .expect("getrusage")
        .max_rss();
    println!("{seconds} {peak_kib} {}", output.stdout.len());
}

fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from)
}

/// Writes `manifest.yml` and a recorded state for about `servers` servers,
/// then grows the manifest so the plan has work proportional to the size:
/// every tenth group of PostgreSQL, MySQL and Redis gains a slave. Returns
/// (groups, changes planned).
fn write_fixture(dir: &Path, servers: usize) -> (usize, usize) {
    let applied = manifest_text(servers, false);
    let grown = manifest_text(servers, true);
    // The recorded state is what applying the first manifest records.
    let source = SourceFile::new("manifest.yml", &applied);
    let parsed = dbgroups_manifest::parse(&source, &ParseOptions::default());
    let manifest = parsed.manifest.expect("a valid generated manifest");
    let groups = manifest.groups.len();
    let (_, expected) = dbgroups_plan::plan_with_expected_state(&PlanInput {
        manifest: &manifest,
        state: None,
        other_applications: &BTreeMap::new(),
        observed: &ObservedFacts::offline(),
        intents: &Intents::default(),
    })
    .expect("plans");
    let mut state = expected;
    state.lineage = "bench".into();
    state.journal = None;
    let mut port = 10_000u16;
    for group in &mut state.groups {
        for server in &mut group.servers {
            server.port = Some(port);
            server.address = Some("127.0.0.1".into());
            port = port.wrapping_add(1).max(10_000);
        }
    }
    for credentials in state.credentials.values_mut() {
        credentials.password = Some(Secret::new("bench-password".to_string()));
    }
    state.environment = dbgroups_plan::env::variables(&state);
    state.serial = 0;
    let store = DirectoryStore::new(dir.join(".dbgroups"));
    let lock = store
        .lock(
            dbgroups_state::LockScope::Everything,
            "bench",
            std::time::Duration::from_secs(1),
        )
        .expect("lock");
    store.save(&lock, &mut state).expect("saves state");
    drop(lock);
    std::fs::write(dir.join("manifest.yml"), &grown).expect("writes manifest");
    let source = SourceFile::new("manifest.yml", &grown);
    let manifest = dbgroups_manifest::parse(&source, &ParseOptions::default())
        .manifest
        .expect("valid");
    let recorded = store
        .load(&state.application)
        .expect("loads")
        .expect("saved");
    let plan = dbgroups_plan::plan(&PlanInput {
        manifest: &manifest,
        state: Some(&recorded),
        other_applications: &BTreeMap::new(),
        observed: &ObservedFacts::offline(),
        intents: &Intents::default(),
    })
    .expect("plans");
    (groups, plan.changes.len())
}

/// Groups of ten servers (a master and nine slaves; MongoDB's of nine, an
/// odd replica set) in turn over the four types, and every fifth group of
/// PostgreSQL, MySQL and Redis a single server replicating from the
/// previous group of its type.
fn manifest_text(servers: usize, grown: bool) -> String {
    const TYPES: [(&str, &str); 4] = [
        ("postgresql", "      configuration: { version: \"16\" }\n"),
        (
            "mysql",
            "      configuration: { engine: mariadb, version: \"10.11\" }\n",
        ),
        ("redis", "      configuration: { version: \"7.0\" }\n"),
        ("mongodb", "      configuration: { version: \"7.0\" }\n"),
    ];
    let mut sections: Vec<String> = TYPES
        .iter()
        .map(|(name, _)| format!("{name}:\n  groups:\n"))
        .collect();
    let mut written = 0;
    let mut index = 0;
    let mut last_full: [Option<String>; 4] = Default::default();
    while written < servers {
        let t = index % 4;
        let (type_name, configuration) = TYPES[t];
        let group = format!("g{index:05}");
        let replica = t != 3 && index % 5 == 4 && last_full[t].is_some();
        let mut count = if replica {
            1
        } else if t == 3 {
            9
        } else {
            10
        };
        count = count.min(servers - written).max(1);
        if t == 3 && count % 2 == 0 {
            count -= 1;
        }
        let mut text = format!("    {group}:\n{configuration}      backups: {{ managed: true }}\n");
        if replica {
            text.push_str(&format!(
                "      replicate_from: {}\n",
                last_full[t].as_ref().expect("checked")
            ));
        }
        text.push_str("      servers:\n");
        let extra = grown && !replica && t != 3 && index % 10 == 0;
        for s in 0..count + usize::from(extra) {
            text.push_str(&format!(
                "        - server: {{ unique_name: {type_name}-{group}-{s} }}\n"
            ));
        }
        sections[t].push_str(&text);
        if !replica && count > 1 {
            last_full[t] = Some(group);
        }
        written += count;
        index += 1;
    }
    let body: String = sections
        .into_iter()
        .filter(|s| s.lines().count() > 2)
        .collect();
    format!("application: bench\n{body}")
}

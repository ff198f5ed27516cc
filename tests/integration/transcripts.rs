//! Everything the suite's `dbgroups` runs print, and the files they leave
//! that are not meant to hold secrets (plan files, server logs), is kept
//! under `target/tmp/transcripts/`; the secrets each live test generated
//! are kept beside it (mode 0600) when its servers are stopped. After the
//! suite, `scripts/test.sh` runs the ignored test below, which fails on any
//! generated secret found in a transcript, in a snapshot, or in the docs.

use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::common::files_under;

static SEQUENCE: AtomicU64 = AtomicU64::new(0);

fn directory() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("transcripts")
}

fn next_file(kind: &str) -> Option<std::fs::File> {
    let dir = directory();
    std::fs::create_dir_all(&dir).ok()?;
    let _ = std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700));
    let name = format!(
        "{kind}-{}-{}",
        std::process::id(),
        SEQUENCE.fetch_add(1, Ordering::SeqCst)
    );
    std::fs::OpenOptions::new()
        .create_new(true)
        .write(true)
        .mode(0o600)
        .open(dir.join(name))
        .ok()
}

/// Keeps what one `dbgroups` run printed. A run asked for the secrets
/// (`env --show-secrets`) prints them by design and is not kept; its
/// stderr still is.
pub(crate) fn record_run(args: &[&str], stdout: &str, stderr: &str) {
    let stdout = if args.contains(&"--show-secrets") {
        "(stdout not kept: --show-secrets prints the secrets by request)"
    } else {
        stdout
    };
    if let Some(mut file) = next_file("run") {
        let _ = write!(file, "$ dbgroups {}\n{stdout}\n{stderr}\n", args.join(" "));
    }
}

/// Keeps a deployment's secrets and its non-secret files before it is torn
/// down: plan files and JSON beside the manifest, and the servers' logs.
pub(crate) fn record_deployment(dir: &Path, secrets: &[String]) {
    if let Some(mut file) = next_file("secrets") {
        for secret in secrets {
            let _ = writeln!(file, "{secret}");
        }
    }
    let mut kept = Vec::new();
    collect_printed_files(dir, 0, &mut kept);
    for path in kept {
        if let (Some(mut file), Ok(bytes)) = (next_file("file"), std::fs::read(&path)) {
            let _ = writeln!(file, "# {}", path.display());
            let _ = file.write_all(&bytes);
        }
    }
}

/// Files that may be shown or shared: plan files and other JSON, NDJSON and
/// text beside the manifest, and every log under the state directory.
/// State files, `.env`, password files and configs hold secrets by design
/// (mode 0600, checked by the security test) and are left out.
fn collect_printed_files(dir: &Path, depth: usize, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        if path.is_dir() {
            // Data directories are the databases' own files; `apps` holds
            // state. Logs live beside data, not inside it.
            if depth < 6 && !matches!(name.as_str(), "apps" | "data" | "staging" | "pg_wal") {
                collect_printed_files(&path, depth + 1, out);
            }
            continue;
        }
        let printed = name.ends_with(".log")
            || name == "log"
            || (depth == 0
                && (name.ends_with(".json") || name.ends_with(".ndjson") || name.ends_with(".md")));
        if printed {
            out.push(path);
        }
    }
}

#[test]
#[ignore = "scans what the rest of the suite left; scripts/test.sh runs it after the suite"]
fn no_generated_secret_in_anything_the_suite_printed_or_wrote() {
    let recorded = files_under(&directory(), &[]);
    // Each secret with the deployment it came from, so a hit can be traced
    // without printing any of the secret.
    let mut secrets = std::collections::BTreeMap::new();
    for path in &recorded {
        let name = path.file_name().unwrap_or_default().to_string_lossy();
        if name.starts_with("secrets-") {
            let text = std::fs::read_to_string(path).unwrap_or_default();
            for secret in text.lines().filter(|l| l.len() >= 16) {
                secrets.insert(secret.to_string(), name.to_string());
            }
        }
    }
    assert!(
        !secrets.is_empty(),
        "no secrets were recorded: run the suite first (scripts/test.sh does)"
    );
    let mut scanned: Vec<PathBuf> = recorded
        .into_iter()
        .filter(|p| {
            !p.file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .starts_with("secrets-")
        })
        .collect();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    for shared in ["tests/integration/snapshots", "docs", "examples"] {
        scanned.extend(files_under(&root.join(shared), &[]));
    }
    let mut hits = Vec::new();
    let mut bytes_scanned = 0usize;
    for path in &scanned {
        let text = String::from_utf8_lossy(&std::fs::read(path).unwrap_or_default()).into_owned();
        bytes_scanned += text.len();
        for (secret, origin) in &secrets {
            if text.contains(secret.as_str()) {
                hits.push(format!("{}: a secret recorded in {origin}", path.display()));
            }
        }
    }
    assert!(hits.is_empty(), "secrets found:\n{}", hits.join("\n"));
    #[allow(clippy::print_stdout)] // the scan's size is its figure
    {
        println!(
            "scanned {} files ({} bytes) for {} generated secrets: no hit",
            scanned.len(),
            bytes_scanned,
            secrets.len()
        );
    }
}

/// Records a test's generated secrets and its deployment's printable files
/// for the scan when it is dropped, pass or fail: declared after the test's
/// directory and before its servers' guards, it runs once the servers have
/// stopped and their logs are complete. For tests that drive the engines
/// directly, without a state file to read the secrets from.
pub(crate) struct ScannedDeployment {
    dir: PathBuf,
    secrets: Vec<String>,
}

impl ScannedDeployment {
    pub(crate) fn new(dir: &Path, secrets: &[&String]) -> Self {
        Self {
            dir: dir.to_path_buf(),
            secrets: secrets.iter().map(|s| s.to_string()).collect(),
        }
    }
}

impl Drop for ScannedDeployment {
    fn drop(&mut self) {
        record_deployment(&self.dir, &self.secrets);
    }
}

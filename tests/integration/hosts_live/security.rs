//! No generated secret on any host's command lines or in any process's
//! environment there, sampled throughout an apply that creates, seeds and
//! replicates across three hosts (PostgreSQL, and MariaDB, whose dump for
//! another host runs there and whose root is relayed to its socket); files
//! 0600, directories 0700; servers listening only on their host's address
//! and loopback.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use super::{TestHosts, hosts_or_skip, manifest_head, on_host, run_ok, secrets, state};

/// What every host shows of its processes: their arguments (`ps -eo
/// args`) and their environments (`/proc/*/environ`).
const SAMPLE: &str =
    "ps -eo args; for p in /proc/[0-9]*; do tr '\\0' ' ' < $p/environ 2>/dev/null; echo; done";

#[test]
fn no_secret_reaches_a_command_line_or_environment_on_any_host() {
    let Some(hosts) = hosts_or_skip(3) else {
        return;
    };
    let server = |name: &str, k: usize| {
        format!(
            "        - server: {{ unique_name: {name}, address: {} }}\n",
            hosts.address(k)
        )
    };
    let manifest = format!(
        "{}postgresql:\n  groups:\n    default:\n      configuration: {{ version: \"15\" }}\n      backups: {{ managed: true }}\n      servers:\n{}{}    reporting:\n      configuration: {{ version: \"15\" }}\n      replicate_from: default\n      servers:\n{}mysql:\n  groups:\n    default:\n      configuration: {{ engine: mariadb, version: \"10.11\" }}\n      backups: {{ managed: true }}\n      servers:\n{}{}",
        manifest_head(&hosts),
        server("pg-main", 1),
        server("pg-replica-1", 2),
        server("pg-report", 3),
        server("db-main", 3),
        server("db-replica-1", 1),
    );
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("manifest.yml"), manifest).expect("manifest");

    let samples: Arc<Mutex<Vec<(usize, String)>>> = Arc::default();
    let done = Arc::new(AtomicBool::new(false));
    let hosts = Arc::new(hosts);
    let sampler = {
        let (samples, done, hosts) = (samples.clone(), done.clone(), hosts.clone());
        std::thread::spawn(move || {
            while !done.load(Ordering::Relaxed) {
                for k in 1..=3 {
                    let output = hosts.run_on(k, SAMPLE);
                    let text = String::from_utf8_lossy(&output.stdout).into_owned();
                    samples.lock().expect("samples").push((k, text));
                }
            }
        })
    };
    run_ok(dir.path(), &["apply", "--auto-approve", "--refresh=false"]);
    run_ok(dir.path(), &["status"]);
    done.store(true, Ordering::Relaxed);
    sampler.join().expect("the sampler ends");

    let recorded = state(dir.path());
    let secrets = secrets(&recorded);
    assert!(
        secrets.len() >= 9,
        "three groups' passwords: {}",
        secrets.len()
    );
    let samples = samples.lock().expect("samples");
    for k in 1..=3 {
        let taken = samples.iter().filter(|(host, _)| *host == k).count();
        assert!(taken >= 5, "host {k} was sampled {taken} times");
    }
    // The samples saw the work (a server ran), so they were taken in time,
    // and they hold environments, not only arguments.
    assert!(
        samples
            .iter()
            .any(|(k, text)| *k == 2 && text.contains("postgres")),
        "the samples saw the servers"
    );
    assert!(
        samples.iter().all(|(_, text)| text.contains("PATH=/")),
        "every sample read the processes' environments"
    );
    for (k, text) in samples.iter() {
        for secret in &secrets {
            assert!(
                !text.contains(secret.as_str()),
                "a generated secret is on a command line or in an environment on host {k}"
            );
        }
    }

    // Secret-holding files are 0600, directories 0700, owned by the
    // service user, on every host.
    for k in 1..=3 {
        let listed = on_host(
            &hosts,
            k,
            "find /var/lib/dbgroups/servers -mindepth 1 -maxdepth 2 -printf '%y %m %u %p\\n'",
        );
        assert!(!listed.is_empty(), "host {k} holds a server");
        for line in listed.lines() {
            let fields: Vec<&str> = line.splitn(4, ' ').collect();
            let wanted = if fields[0] == "d" { "700" } else { "600" };
            assert_eq!(fields[1], wanted, "on host {k}: {line}");
            assert_eq!(fields[2], "dbgroups", "on host {k}: {line}");
        }
    }
    // Servers listen only on their host's address and loopback (access
    // rules and TLS are issue 17's).
    for (k, port) in [(1, 5432), (2, 5432), (3, 5432), (1, 3306), (3, 3306)] {
        let listening = on_host(&hosts, k, &format!("ss -ltnH 'sport = :{port}'"));
        let wanted = [
            format!("{}:{port}", hosts.address(k)),
            format!("127.0.0.1:{port}"),
        ];
        let mut seen: Vec<String> = listening
            .lines()
            .filter_map(|l| l.split_whitespace().nth(3).map(str::to_string))
            .collect();
        seen.sort();
        let mut wanted = wanted.to_vec();
        wanted.sort();
        assert_eq!(seen, wanted, "host {k}:\n{listening}");
    }
    run_ok(dir.path(), &["destroy", "--app", "shop", "--auto-approve"]);
    if let Ok(hosts) = Arc::try_unwrap(hosts) {
        TestHosts::down(hosts);
    }
}

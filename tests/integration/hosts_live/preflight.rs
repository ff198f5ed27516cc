//! The hosts' preflight live (issue 16): what a host says about itself,
//! and `dbgroups plan` (with refresh) blocking on what it says. The test
//! hosts share this machine's `/usr`, so PostgreSQL 15 is installed on
//! them and PostgreSQL 16 is not; no test installs anything there.

use dbgroups_engines::{Host, SshClient, SshHost, SshTarget, engine_for};
use dbgroups_manifest::{DbType, Engine};

use super::{TestHosts, hosts_or_skip, manifest_head, on_host};
use crate::cli::dbgroups_in;

fn block_on<T>(future: impl std::future::Future<Output = T>) -> T {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(future)
}

fn postgres(hosts: &TestHosts, version: &str, os: Option<&str>, k: &[usize]) -> String {
    let servers: String = k
        .iter()
        .enumerate()
        .map(|(i, k)| {
            format!(
                "        - server: {{ unique_name: pg-{i}, address: {} }}\n",
                hosts.address(*k)
            )
        })
        .collect();
    let os = os
        .map(|o| format!(", operating_system: {o}"))
        .unwrap_or_default();
    format!(
        "{}postgresql:\n  groups:\n    default:\n      configuration: {{ version: \"{version}\"{os} }}\n      backups: {{ managed: true }}\n      servers:\n{servers}",
        manifest_head(hosts)
    )
}

#[test]
fn a_healthy_host_reports_its_system_space_and_installed_packages() {
    let Some(hosts) = hosts_or_skip(1) else {
        return;
    };
    let host = block_on(SshHost::connect(
        SshTarget {
            address: hosts.address(1).to_string(),
            user: Some("root".into()),
            port: None,
            identity_file: Some(hosts.identity_path()),
            known_hosts_file: Some(hosts.known_hosts_path()),
            jump: None,
        },
        SshClient::default(),
    ))
    .expect("connects");
    let pg = engine_for(DbType::Postgresql);
    let wanted = [
        pg.packages(Engine::Postgresql, "15"),
        pg.packages(Engine::Postgresql, "16"),
    ];
    assert_eq!(wanted[0].names, vec!["postgresql-15".to_string()]);
    let found = block_on(host.preflight(&wanted));
    let os = found.os.expect("os-release read");
    let release = on_host(&hosts, 1, ". /etc/os-release; echo \"$ID $VERSION_ID\"");
    assert_eq!(format!("{} {}", os.id, os.version_id), release);
    assert!(
        found.free_bytes.is_some_and(|f| f > 0),
        "{:?}",
        found.free_bytes
    );
    assert!(found.packages[0].installed, "postgresql-15 is installed");
    assert!(!found.packages[1].installed, "postgresql-16 is not");
    // Present: nothing to install, apt is not run.
    block_on(host.ensure_packages(&wanted[0])).expect("present");
}

#[test]
fn plan_blocks_on_a_host_that_is_not_debian_or_runs_another_declared_system() {
    let Some(hosts) = hosts_or_skip(2) else {
        return;
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let manifest = dir.path().join("manifest.yml");
    // Healthy: PostgreSQL 15 on two Debian 12 hosts, nothing blocked.
    std::fs::write(&manifest, postgres(&hosts, "15", Some("debian12"), &[1, 2])).expect("write");
    let run = dbgroups_in(dir.path(), &["plan", "--no-color"]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert!(!run.stdout.contains("Blocked"), "{}", run.stdout);
    // Declared Ubuntu 22.04 on Debian 12 hosts: blocked, naming both.
    std::fs::write(
        &manifest,
        postgres(&hosts, "15", Some("ubuntu2204"), &[1, 2]),
    )
    .expect("write");
    let run = dbgroups_in(dir.path(), &["plan", "--no-color"]);
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    for host in [hosts.address(1), hosts.address(2)] {
        assert!(
            run.stdout
                .contains(&format!("declares operating_system ubuntu2204 (ubuntu 22.04), and host {host} runs debian 12")),
            "{}",
            run.stdout
        );
    }
    // Host 2 says it is Fedora, and PostgreSQL 16 is not installed: blocked
    // with the packages to install by hand; host 1 is not named.
    on_host(
        &hosts,
        2,
        "rm -f /etc/os-release && printf 'ID=fedora\\nVERSION_ID=40\\n' > /etc/os-release",
    );
    std::fs::write(&manifest, postgres(&hosts, "16", None, &[1, 2])).expect("write");
    let run = dbgroups_in(dir.path(), &["plan", "--no-color"]);
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    let host2 = hosts.address(2).to_string();
    assert!(
        run.stdout.contains(&format!(
            "postgresql 16 needs postgresql-16, which is not installed on host {host2}, and it runs fedora 40, neither Debian nor Ubuntu"
        )),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout
            .contains(&format!("install postgresql-16 on {host2} by hand")),
        "{}",
        run.stdout
    );
    // Without refresh there is no preflight: the group is planned.
    let run = dbgroups_in(dir.path(), &["plan", "--no-color", "--refresh=false"]);
    assert!(
        run.stdout.contains("create postgresql.default"),
        "{}\n{}",
        run.stdout,
        run.stderr
    );
}

//! The ssh host against real hosts (scripts/test-hosts.sh): the host
//! interface's operations over a real sshd, as root and through `sudo -n`,
//! files 0600 and directories 0700 owned by the service user, and host
//! keys checked strictly. Skipped (with a message) when not root.

use std::path::{Path, PathBuf};

use dbgroups_engines::host::Host;
use dbgroups_engines::{EngineError, Program, SshClient, SshHost, SshTarget};

use crate::common::block_on;
use crate::test_hosts::{TestHosts, hosts_or_skip};

fn target(hosts: &TestHosts, k: usize, user: &str, known_hosts: PathBuf) -> SshTarget {
    SshTarget {
        address: hosts.address(k).to_string(),
        user: Some(user.into()),
        port: None,
        identity_file: Some(hosts.identity_path()),
        known_hosts_file: Some(known_hosts),
        jump: None,
    }
}

fn connect(target: SshTarget, client: SshClient) -> Result<SshHost, EngineError> {
    block_on(SshHost::connect(target, client))
}

fn on_host(hosts: &TestHosts, k: usize, command: &str) -> String {
    let output = hosts.run_on(k, command);
    assert!(output.status.success(), "{command}: {output:?}");
    String::from_utf8_lossy(&output.stdout).trim().to_string()
}

#[test]
fn an_ssh_host_does_what_the_host_interface_says_as_root_and_through_sudo() {
    let Some(hosts) = hosts_or_skip(1) else {
        return;
    };
    for user in ["root", "deploy"] {
        let host = connect(
            target(&hosts, 1, user, hosts.known_hosts_path()),
            SshClient::default(),
        )
        .unwrap_or_else(|e| panic!("{user}: {e}"));
        let uid = host.service_uid().expect("a service user");
        let dir = Path::new("/var/lib/dbgroups/servers").join(format!("probe-{user}"));
        let file = dir.join("secret.conf");
        block_on(async {
            host.private_dir(&dir).await.expect("dir");
            host.write_private_file(&file, b"password = it's; $(id)\n")
                .await
                .expect("write");
            assert_eq!(
                host.read_file(&file).await.expect("read").as_deref(),
                Some(&b"password = it's; $(id)\n"[..])
            );
            assert_eq!(
                host.read_file(&dir.join("absent")).await.expect("read"),
                None
            );
            assert!(host.is_file(&file).await);
            assert!(!host.is_file(&dir).await);
            assert_eq!(host.owner_of(&file).await, Some(uid));
            assert_eq!(host.file_len(&file).await, 23);
            // sshd holds 22: the next port up; 5432 is free.
            assert_eq!(host.choose_port(22).await.expect("port"), 23);
            assert_eq!(host.choose_port(5432).await.expect("port"), 5432);
            assert!(host.free_bytes(&dir.join("not/yet")).await.expect("free") > 0);
            let mut id = Program::new(&dir, Path::new("id"));
            id.arg("-un").env("PROBE", "a b");
            assert_eq!(
                host.run(&id, "id").await.expect("id").trim(),
                dbgroups_engines::SERVICE_USER
            );
            host.remove_dir(&dir).await.expect("remove");
            assert!(!host.exists(&dir).await);
        });
        let listed = on_host(&hosts, 1, "stat -c '%a %U' /var/lib/dbgroups/backups");
        assert_eq!(listed, "700 dbgroups", "{user}");
    }
}

#[test]
fn an_unknown_host_key_is_refused_with_how_to_trust_it_and_accept_new_trusts_it() {
    let Some(hosts) = hosts_or_skip(1) else {
        return;
    };
    let empty = hosts.state_dir().join("empty_known_hosts");
    std::fs::write(&empty, "").expect("empty known_hosts");
    let err = connect(
        target(&hosts, 1, "root", empty.clone()),
        SshClient::default(),
    )
    .expect_err("an unknown key is refused");
    let text = err.to_string();
    let address = hosts.address(1).to_string();
    assert!(
        text.starts_with(&format!("host {address}: its ssh host key is not known")),
        "{text}"
    );
    assert!(
        text.contains(&format!("ssh-keyscan -p 22 {address}")),
        "{text}"
    );
    let accepted = connect(
        target(&hosts, 1, "root", empty.clone()),
        SshClient {
            config_file: None,
            accept_new_host_keys: true,
        },
    );
    assert!(accepted.is_ok(), "{:?}", accepted.err());
    // (Debian's ssh hashes the names it writes: the key is what shows.)
    let trusted = std::fs::read_to_string(&empty).expect("known_hosts");
    assert!(trusted.contains("ssh-ed25519"), "{trusted}");
    // A changed key is refused even with --accept-new-host-keys.
    let forged = hosts.state_dir().join("forged_known_hosts");
    let other_key = std::fs::read_to_string(hosts.identity_path().with_extension("pub"))
        .expect("a public key of another machine");
    let key = other_key
        .split_whitespace()
        .take(2)
        .collect::<Vec<_>>()
        .join(" ");
    std::fs::write(&forged, format!("{address} {key}\n")).expect("forged");
    let err = connect(
        target(&hosts, 1, "root", forged),
        SshClient {
            config_file: None,
            accept_new_host_keys: true,
        },
    )
    .expect_err("a changed key is refused");
    assert!(err.to_string().contains("has CHANGED"), "{err}");
}

/// pkill with the pattern kills a process naming the path, and not the
/// shell that runs pkill with the pattern on its own command line.
#[test]
fn the_stale_tool_pattern_matches_the_path_and_not_itself() {
    let path = std::env::temp_dir().join(format!(
        "dbgroups-stale-{}/backup-pg.main",
        std::process::id()
    ));
    let pattern = dbgroups_engines::ssh::script::unmatched_by_itself(&path);
    assert!(pattern.starts_with("[/]"), "{pattern}");
    assert!(pattern.ends_with("backup-pg\\.main"), "{pattern}");
    let mut stale = std::process::Command::new("sh")
        .args(["-c", "sleep 60"])
        .arg(&path)
        .spawn()
        .expect("sh runs");
    let killer = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!(
            "pkill -KILL -f -- {}; echo survived",
            dbgroups_engines::ssh::script::quote(&pattern).expect("quotable")
        ))
        .output()
        .expect("sh runs");
    assert_eq!(String::from_utf8_lossy(&killer.stdout).trim(), "survived");
    use std::os::unix::process::ExitStatusExt;
    let status = stale.wait().expect("waits");
    assert_eq!(
        status.signal(),
        Some(9),
        "the tool naming the path was killed"
    );
}

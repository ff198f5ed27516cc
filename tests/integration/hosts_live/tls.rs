//! TLS and access on hosts (PostgreSQL): every connection off loopback is
//! TLS verified against the application's authority, and only the group's
//! hosts and its `allow_from` networks get in.
//!
//! Hosts: 1 the master, 2 its slave, 3 and 4 clients. Host 3 is allowed
//! first, then host 4 instead.

use dbgroups_state::{AppState, Authority};

use super::{
    Login, ScannedDeployment, TestHosts, WAIT, app_login, hosts_or_skip, manifest_head, on_host,
    port, psql, quoted, run_ok, secrets, state, superuser_login, wait_for,
};
use crate::cli::Run;

fn manifest(hosts: &TestHosts, allowed: usize) -> String {
    format!(
        "{}postgresql:\n  groups:\n    default:\n      configuration: {{ version: \"15\" }}\n      backups: {{ managed: true }}\n      allow_from: [{}/32]\n      servers:\n        - server: {{ unique_name: pg-main, address: {}, public_address: db.shop.test }}\n        - server: {{ unique_name: pg-replica-1, address: {} }}\n",
        manifest_head(hosts),
        hosts.address(allowed),
        hosts.address(1),
        hosts.address(2)
    )
}

/// Replaces the authority file `file` on host K (a replica's, which it
/// verifies its master against) by a self-signed certificate of another
/// name and key; returns where the original was kept.
pub(super) fn swap_authority(hosts: &TestHosts, k: usize, file: &str) -> String {
    let kept = "/tmp/authority.good";
    on_host(
        hosts,
        k,
        &format!(
            "cp {file} {kept} && \
             openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
             -subj /CN=another -keyout /tmp/other.key -out {file} -days 2 2>/dev/null && \
             chown dbgroups {file}"
        ),
    );
    kept.to_string()
}

/// A deployment with TLS, as each engine's test starts: `manifest`
/// (allowing host 3) planned, with its allow step shown, and applied; the
/// environment's `<prefix>_CA_CERT` is the authority, and it is written to
/// /tmp/ca.crt on every host for the clients there. The secrets are
/// scanned for while it lives.
pub(super) struct TlsDeployment {
    pub(super) plan: Run,
    pub(super) recorded: AppState,
    pub(super) authority: Authority,
    pub(super) env: Run,
    /// `<prefix>_URL`.
    pub(super) url: String,
    _scanned: ScannedDeployment,
}

pub(super) fn deploy(
    hosts: &TestHosts,
    path: &std::path::Path,
    manifest: &str,
    prefix: &str,
) -> TlsDeployment {
    std::fs::write(path.join("manifest.yml"), manifest).expect("manifest");
    let plan = run_ok(path, &["plan", "--refresh=false"]);
    assert!(
        plan.stdout
            .contains(&format!("clients from {}/32 may connect", hosts.address(3))),
        "the allow step is shown:\n{}",
        plan.stdout
    );
    run_ok(path, &["apply", "--auto-approve", "--refresh=false"]);
    let recorded = state(path);
    let authority = recorded.authority.clone().expect("an authority was made");
    let scanned = ScannedDeployment::new(path, &secrets(&recorded).iter().collect::<Vec<_>>());
    // The environment carries the authority and a URL that verifies.
    let env = run_ok(path, &["env", "--format", "json", "--show-secrets"]);
    let variables: serde_json::Value = serde_json::from_str(&env.stdout).expect("env JSON");
    let ca = variables[format!("{prefix}_CA_CERT")]
        .as_str()
        .expect("CA_CERT");
    assert_eq!(ca, authority.certificate);
    for k in 1..=4 {
        on_host(
            hosts,
            k,
            &format!("printf '%s' {} > /tmp/ca.crt", quoted(ca)),
        );
    }
    let url = variables[format!("{prefix}_URL")]
        .as_str()
        .expect("URL")
        .to_string();
    TlsDeployment {
        plan,
        recorded,
        authority,
        env,
        url,
        _scanned: scanned,
    }
}

/// psql on client host K to the master over the network with `sslmode`
/// (and the authority in /tmp/ca.crt there): its answer to `SELECT 1`, or
/// the error.
fn from_client(
    hosts: &TestHosts,
    k: usize,
    port: u16,
    login: &Login,
    sslmode: &str,
) -> Result<String, String> {
    let conninfo = format!(
        "host={} port={port} user={} dbname={} sslmode={sslmode} sslrootcert=/tmp/ca.crt connect_timeout=5",
        hosts.address(1),
        login.user,
        login.database
    );
    let output = hosts.run_on(
        k,
        &format!(
            "PGPASSWORD={} /usr/lib/postgresql/15/bin/psql {} -Atc 'SELECT 1'",
            quoted(&login.password),
            quoted(&conninfo)
        ),
    );
    if output.status.success() {
        Ok(String::from_utf8_lossy(&output.stdout).trim().to_string())
    } else {
        Err(String::from_utf8_lossy(&output.stderr).into_owned())
    }
}

#[test]
fn postgresql_on_hosts_is_tls_only_verified_and_lets_in_only_its_networks() {
    let Some(hosts) = hosts_or_skip(4) else {
        return;
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path();
    let deployed = deploy(&hosts, path, &manifest(&hosts, 3), "POSTGRESQL");
    let (plan, recorded, authority, env) = (
        &deployed.plan,
        &deployed.recorded,
        &deployed.authority,
        &deployed.env,
    );
    assert!(
        deployed.url.ends_with("?sslmode=verify-full"),
        "{}",
        deployed.url
    );
    let app = app_login(recorded, "postgresql.default");
    let main_port = port(recorded, "pg-main");
    // Its certificate also names its public_address, which the _EXT
    // variables carry.
    let names = on_host(
        &hosts,
        1,
        "openssl x509 -noout -ext subjectAltName -in /var/lib/dbgroups/servers/pg-main/tls/server.crt",
    );
    assert!(
        names.contains("DNS:db.shop.test")
            && names.contains(&format!("IP Address:{}", hosts.address(1))),
        "{names}"
    );
    assert_eq!(
        recorded.environment["POSTGRESQL_ADDRESS_EXT"], "db.shop.test",
        "the outside address"
    );
    let env_file =
        std::fs::read_to_string(path.join(".dbgroups/env/shop.env")).expect("the environment file");
    assert!(
        env_file.contains("POSTGRESQL_CA_CERT=\"-----BEGIN CERTIFICATE-----\\n"),
        "one line, quoted: {env_file}"
    );

    // From the allowed host: plain text is refused, verified TLS works.
    let plain = from_client(&hosts, 3, main_port, &app, "disable");
    assert!(
        plain.as_ref().is_err_and(|e| e.contains("no encryption")),
        "plain text from an allowed network: {plain:?}"
    );
    assert_eq!(
        from_client(&hosts, 3, main_port, &app, "verify-full").as_deref(),
        Ok("1")
    );
    // From a host neither in the group nor allowed: nothing connects.
    for sslmode in ["disable", "verify-full"] {
        let refused = from_client(&hosts, 4, main_port, &app, sslmode);
        assert!(
            refused
                .as_ref()
                .is_err_and(|e| e.contains("no pg_hba.conf entry")),
            "{sslmode} from host 4: {refused:?}"
        );
    }
    // The replication link is TLS.
    let superuser = superuser_login(recorded, "postgresql.default");
    let link = psql(
        &hosts,
        1,
        main_port,
        &superuser,
        "SELECT s.ssl FROM pg_stat_replication r JOIN pg_stat_ssl s USING (pid)",
    );
    assert_eq!(link, "t", "the WAL sender's connection is TLS");

    // A replica handed another authority refuses its master.
    let upstream = "/var/lib/dbgroups/servers/pg-replica-1/tls/upstream.crt";
    let good = swap_authority(&hosts, 2, upstream);
    let kick = "SELECT pg_terminate_backend(pid) FROM pg_stat_replication";
    psql(&hosts, 1, main_port, &superuser, kick);
    let log = "/var/lib/dbgroups/servers/pg-replica-1/postgresql.log";
    assert!(
        wait_for(WAIT, || {
            on_host(
                &hosts,
                2,
                &format!("grep -c 'certificate verify failed' {log} || true"),
            ) != "0"
        }),
        "the replica reports the unverifiable master"
    );
    let streaming = "SELECT count(*) FROM pg_stat_replication";
    assert_eq!(
        psql(&hosts, 1, main_port, &superuser, streaming),
        "0",
        "nothing streams while the replica cannot verify its master"
    );
    // Its own authority back: it streams again by itself.
    on_host(&hosts, 2, &format!("cp {good} {upstream}"));
    assert!(
        wait_for(WAIT, || psql(&hosts, 1, main_port, &superuser, streaming)
            == "1"),
        "the replica streams again with the right authority"
    );

    // allow_from moves to host 4: it gets in, host 3 no longer does.
    std::fs::write(path.join("manifest.yml"), manifest(&hosts, 4)).expect("manifest");
    let moved = run_ok(path, &["apply", "--auto-approve", "--refresh=false"]);
    assert!(
        moved.stdout.contains("allow:postgresql.default"),
        "{}",
        moved.stdout
    );
    assert_eq!(
        from_client(&hosts, 4, main_port, &app, "verify-full").as_deref(),
        Ok("1")
    );
    let refused = from_client(&hosts, 3, main_port, &app, "verify-full");
    assert!(
        refused
            .as_ref()
            .is_err_and(|e| e.contains("no pg_hba.conf entry")),
        "host 3 after the change: {refused:?}"
    );
    // The authority's key is nowhere in the plan, the output or the
    // environment file (the scanned deployment checks the rest).
    let key_lines: Vec<&str> = authority
        .key
        .expose()
        .lines()
        .filter(|line| !line.starts_with("-----"))
        .collect();
    assert!(!key_lines.is_empty());
    for text in [&plan.stdout, &moved.stdout, &env.stdout, &env_file] {
        assert!(
            key_lines.iter().all(|line| !text.contains(line)),
            "the authority's key leaked"
        );
    }
    let conninfo = format!(
        "host={} port={main_port} user={} dbname={} sslmode=verify-full sslrootcert=/tmp/ca.crt connect_timeout=5",
        hosts.address(1),
        app.user,
        app.database
    );
    let client = format!(
        "PGPASSWORD={} /usr/lib/postgresql/15/bin/psql {} -Atc 'SELECT 1'",
        quoted(&app.password),
        quoted(&conninfo)
    );
    renewal_interrupts_no_client(&hosts, path, ("pg-main", main_port, "postgres"), &client);
    run_ok(path, &["plan", "--detailed-exitcode"]);
    run_ok(path, &["destroy", "--app", "shop", "--auto-approve"]);
    hosts.down();
}

/// `server`'s certificate (on host 1, at `port`, speaking `starttls` as
/// openssl names it, or TLS from the start when empty) recorded as ending tomorrow: the plan renews it with a
/// `certify` step; the server then presents a new certificate (for the
/// same names, from the same authority) while `client` on host 4, a
/// command connecting with verified TLS, run five times a second, never
/// fails.
pub(super) fn renewal_interrupts_no_client(
    hosts: &TestHosts,
    path: &std::path::Path,
    (server, port, starttls): (&str, u16, &str),
    client: &str,
) {
    let mut recorded = state(path);
    let tomorrow = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs()
        + 86_400;
    for recorded_server in recorded
        .groups
        .iter_mut()
        .flat_map(|g| g.servers.iter_mut())
    {
        if recorded_server.unique_name == server {
            recorded_server.certificate_expires = Some(tomorrow);
        }
    }
    crate::common::save_state(&path.join(".dbgroups"), &mut recorded);
    let plan = run_ok(path, &["plan", "--refresh=false"]);
    assert!(
        plan.stdout.contains(&format!("certify:{server}"))
            && plan.stdout.contains("within 30 days"),
        "{}",
        plan.stdout
    );
    let served = format!("/var/lib/dbgroups/servers/{server}/tls/server.crt");
    let before = on_host(hosts, 1, &format!("cat {served}"));
    // Host 4 is the allowed network now. The loop counts failures until
    // /tmp/stop appears.
    let looped = format!(
        "rm -f /tmp/stop /tmp/failures /tmp/tries; while [ ! -e /tmp/stop ]; do \
         echo >> /tmp/tries; \
         {client} >/dev/null 2>>/tmp/failures || echo FAILED >> /tmp/failures; \
         sleep 0.2; done"
    );
    let init = hosts.init_pid(4).expect("host 4 runs").to_string();
    let mut looping = std::process::Command::new("nsenter")
        .args(["-t", &init, "-a", "--", "/bin/bash", "-c", &looped])
        .env_clear()
        .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
        .spawn()
        .expect("the client loop starts");
    let tries = || {
        on_host(hosts, 4, "cat /tmp/tries 2>/dev/null | wc -l")
            .parse::<usize>()
            .unwrap_or(0)
    };
    assert!(wait_for(WAIT, || tries() > 0), "the client loop connects");
    let renewed = run_ok(path, &["apply", "--auto-approve", "--refresh=false"]);
    assert!(
        renewed.stdout.contains(&format!("certify:{server}")),
        "{}",
        renewed.stdout
    );
    // A few more connections after the reload.
    let after_apply = tries();
    assert!(
        wait_for(WAIT, || tries() >= after_apply + 5),
        "the client loop goes on"
    );
    on_host(hosts, 4, "touch /tmp/stop");
    looping.wait().expect("the client loop ends");
    let failures = on_host(hosts, 4, "cat /tmp/failures 2>/dev/null || true");
    assert_eq!(
        failures, "",
        "no client connection failed during the renewal"
    );
    let after = on_host(hosts, 1, &format!("cat {served}"));
    assert_ne!(before, after, "a new certificate is installed");
    // The server presents it: its serial is the one host 4 is shown.
    let presented = on_host(
        hosts,
        4,
        &format!(
            "openssl s_client {} -connect {}:{port} -CAfile /tmp/ca.crt -verify_return_error </dev/null 2>/dev/null | openssl x509 -noout -serial",
            if starttls.is_empty() {
                String::new()
            } else {
                format!("-starttls {starttls}")
            },
            hosts.address(1)
        ),
    );
    let installed = on_host(
        hosts,
        1,
        &format!("openssl x509 -noout -serial -in {served}"),
    );
    assert_eq!(
        presented, installed,
        "the server presents the renewed certificate"
    );
    let recorded = state(path);
    let (_, renewed_server) = recorded.server(server).expect("recorded");
    assert!(
        renewed_server
            .certificate_expires
            .is_some_and(|e| e > tomorrow + 300 * 86_400),
        "the new end is recorded: {:?}",
        renewed_server.certificate_expires
    );
}

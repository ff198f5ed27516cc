//! TLS and access on hosts (MariaDB): TCP clients must use TLS
//! (`require_secure_transport`), the accounts log in only from the group's
//! hosts and its `allow_from` networks (`REQUIRE SSL`), and the replica
//! verifies its master's certificate against the application's authority.
//!
//! Hosts: 1 the master, 2 its slave, 3 and 4 clients. Host 3 is allowed
//! first, then host 4 instead.

use super::{
    Login, TestHosts, WAIT, app_login, hosts_or_skip, manifest_head, on_host, port, quoted, run_ok,
    wait_for,
};

fn manifest(hosts: &TestHosts, allowed: usize) -> String {
    format!(
        "{}mysql:\n  groups:\n    default:\n      configuration: {{ engine: mariadb, version: \"10.11\" }}\n      backups: {{ managed: true }}\n      allow_from: [{}/32]\n      servers:\n        - server: {{ unique_name: db-main, address: {} }}\n        - server: {{ unique_name: db-replica-1, address: {} }}\n",
        manifest_head(hosts),
        hosts.address(allowed),
        hosts.address(1),
        hosts.address(2)
    )
}

/// The mariadb client on host K to the master over the network, with
/// `tls` options (the authority is /tmp/ca.crt there): `SELECT 1`'s
/// answer, or the error.
fn from_client(
    hosts: &TestHosts,
    k: usize,
    port: u16,
    login: &Login,
    tls: &str,
) -> Result<String, String> {
    let output = hosts.run_on(
        k,
        &format!(
            "MYSQL_PWD={} mariadb --no-defaults {tls} --connect-timeout=5 --protocol=TCP -h {} -P {port} -u {} -D {} -N -B -e 'SELECT 1'",
            quoted(&login.password),
            hosts.address(1),
            quoted(&login.user),
            quoted(&login.database)
        ),
    );
    if output.status.success() {
        Ok(String::from_utf8_lossy(&output.stdout).trim().to_string())
    } else {
        Err(String::from_utf8_lossy(&output.stderr).into_owned())
    }
}

const PLAIN: &str = "--skip-ssl";
const VERIFIED: &str = "--ssl --ssl-ca=/tmp/ca.crt --ssl-verify-server-cert";

/// Root over the socket of `server` on host K: `sql`'s output.
fn root_sql(hosts: &TestHosts, k: usize, server: &str, root_password: &str, sql: &str) -> String {
    // `-E`: one `column: value` line each, for SHOW SLAVE STATUS.
    let layout = if sql.starts_with("SHOW") {
        "-E"
    } else {
        "-N -B"
    };
    let output = hosts.run_on(
        k,
        &format!(
            "MYSQL_PWD={} mariadb --no-defaults -S /var/lib/dbgroups/servers/{server}/run/mysqld.sock -u root {layout} -e {}",
            quoted(root_password),
            quoted(sql)
        ),
    );
    // Not `on_host`: its failure message shows the command, password and all.
    assert!(
        output.status.success(),
        "root on {} ({sql}): {}",
        hosts.name(k),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).trim().to_string()
}

/// One field of the replica's `SHOW SLAVE STATUS`.
fn slave_status(hosts: &TestHosts, root_password: &str, field: &str) -> String {
    let vertical = root_sql(hosts, 2, "db-replica-1", root_password, "SHOW SLAVE STATUS");
    vertical
        .lines()
        .find_map(|line| line.trim().strip_prefix(&format!("{field}: ")))
        .unwrap_or_default()
        .to_string()
}

#[test]
fn mariadb_on_hosts_is_tls_only_verified_and_lets_in_only_its_networks() {
    let Some(hosts) = hosts_or_skip(4) else {
        return;
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path();
    let deployed = super::tls::deploy(&hosts, path, &manifest(&hosts, 3), "MYSQL");
    assert!(
        deployed.url.ends_with("?ssl-mode=VERIFY_IDENTITY"),
        "{}",
        deployed.url
    );
    let recorded = &deployed.recorded;
    let app = app_login(recorded, "mysql.default");
    let root = recorded.credentials["mysql.default"]
        .admin_password
        .as_ref()
        .expect("generated")
        .expose()
        .to_string();
    let main_port = port(recorded, "db-main");

    // The server takes no TCP client without TLS.
    assert_eq!(
        root_sql(
            &hosts,
            1,
            "db-main",
            &root,
            "SELECT @@require_secure_transport"
        ),
        "1"
    );
    // From the allowed host: plain text is refused (the account requires
    // TLS, and MariaDB says so as a refused login), verified TLS works with
    // the same password.
    let plain = from_client(&hosts, 3, main_port, &app, PLAIN);
    assert!(
        plain.as_ref().is_err_and(
            |e| e.contains("Access denied") || e.contains("insecure transport are prohibited")
        ),
        "plain text from an allowed network: {plain:?}"
    );
    assert_eq!(
        from_client(&hosts, 3, main_port, &app, VERIFIED).as_deref(),
        Ok("1")
    );
    // From a host neither in the group nor allowed: nothing connects.
    for tls in [PLAIN, VERIFIED] {
        let refused = from_client(&hosts, 4, main_port, &app, tls);
        assert!(
            refused
                .as_ref()
                .is_err_and(|e| e.contains("is not allowed to connect")),
            "{tls} from host 4: {refused:?}"
        );
    }
    // The replication link is TLS, and verifies the master.
    assert_eq!(slave_status(&hosts, &root, "Slave_IO_Running"), "Yes");
    assert_eq!(slave_status(&hosts, &root, "Master_SSL_Allowed"), "Yes");
    assert_eq!(
        slave_status(&hosts, &root, "Master_SSL_Verify_Server_Cert"),
        "Yes"
    );

    // A replica handed another authority refuses its master.
    let upstream = "/var/lib/dbgroups/servers/db-replica-1/tls/upstream.crt";
    let good = super::tls::swap_authority(&hosts, 2, upstream);
    root_sql(&hosts, 2, "db-replica-1", &root, "STOP SLAVE; START SLAVE");
    assert!(
        wait_for(WAIT, || {
            // MariaDB 10.11 words a failed verification as
            // "SSL connection error: error:00000000:lib(0)::reason(0)".
            slave_status(&hosts, &root, "Last_IO_Error").contains("SSL connection error")
        }),
        "the replica reports the unverifiable master: {}",
        slave_status(&hosts, &root, "Last_IO_Error")
    );
    assert_ne!(slave_status(&hosts, &root, "Slave_IO_Running"), "Yes");
    // Its own authority back: it connects again.
    on_host(&hosts, 2, &format!("cp {good} {upstream}"));
    root_sql(&hosts, 2, "db-replica-1", &root, "STOP SLAVE; START SLAVE");
    assert!(
        wait_for(WAIT, || slave_status(&hosts, &root, "Slave_IO_Running")
            == "Yes"),
        "the replica follows again with the right authority"
    );

    // allow_from moves to host 4: it gets in, host 3 no longer does.
    std::fs::write(path.join("manifest.yml"), manifest(&hosts, 4)).expect("manifest");
    let moved = run_ok(path, &["apply", "--auto-approve", "--refresh=false"]);
    assert!(
        moved.stdout.contains("allow:mysql.default"),
        "{}",
        moved.stdout
    );
    assert_eq!(
        from_client(&hosts, 4, main_port, &app, VERIFIED).as_deref(),
        Ok("1")
    );
    let refused = from_client(&hosts, 3, main_port, &app, VERIFIED);
    assert!(
        refused
            .as_ref()
            .is_err_and(|e| e.contains("is not allowed to connect")),
        "host 3 after the change: {refused:?}"
    );
    // Renewal: FLUSH SSL, no restart, no client refused meanwhile.
    let client = format!(
        "MYSQL_PWD={} mariadb --no-defaults {VERIFIED} --connect-timeout=5 --protocol=TCP -h {} -P {main_port} -u {} -D {} -N -B -e 'SELECT 1'",
        quoted(&app.password),
        hosts.address(1),
        quoted(&app.user),
        quoted(&app.database)
    );
    super::tls::renewal_interrupts_no_client(
        &hosts,
        path,
        ("db-main", main_port, "mysql"),
        &client,
    );
    run_ok(path, &["plan", "--detailed-exitcode"]);
    run_ok(path, &["destroy", "--app", "shop", "--auto-approve"]);
    hosts.down();
}

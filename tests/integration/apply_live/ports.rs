//! A new server's port is checked free and then bound by the server: in
//! between, anything on the host can take it (CI saw "Address already in
//! use" from PostgreSQL and MariaDB). The debug build's
//! `DBGROUPS_TAKE_PORT_OF` makes that race happen on the first port chosen;
//! the provision is made again on another port, and only the port the
//! server really listens on is recorded.

use super::{converged, port, quickstart, set_manifest, state};
use crate::cli::dbgroups_with_env;

fn survives_a_taken_port(manifest: &str, server: &str) {
    let (dir, _servers) = quickstart();
    set_manifest(dir.path(), manifest);
    let applied = dbgroups_with_env(
        dir.path(),
        &["apply", "--auto-approve", "--refresh=false"],
        &[("DBGROUPS_TAKE_PORT_OF".into(), server.into())],
    );
    assert_eq!(
        applied.code, 0,
        "a provision whose first port was taken is made again on another:\n{}\n{}",
        applied.stdout, applied.stderr
    );
    let recorded = state(dir.path());
    let listening = std::net::TcpStream::connect(("127.0.0.1", port(&recorded, server)));
    assert!(listening.is_ok(), "{server} listens on its recorded port");
    // The state is whole: a refreshed plan has nothing to do.
    converged(dir.path(), "manifest.yml");
}

#[test]
fn a_postgresql_master_whose_port_is_taken_is_provisioned_on_another() {
    survives_a_taken_port(
        "application: shop\npostgresql:\n  configuration: { version: \"15\" }\n  servers:\n    - server: { unique_name: pg-main }\n",
        "pg-main",
    );
}

#[test]
fn a_mariadb_server_whose_port_is_taken_is_provisioned_on_another() {
    survives_a_taken_port(
        "application: shop\nmysql:\n  configuration: { engine: mariadb, version: \"10.11\" }\n  servers:\n    - server: { unique_name: db-main }\n",
        "db-main",
    );
}

#[test]
fn a_redis_server_whose_port_is_taken_is_provisioned_on_another() {
    survives_a_taken_port(
        "application: shop\nredis:\n  configuration: { version: \"7.0\" }\n  servers:\n    - server: { unique_name: redis-main }\n",
        "redis-main",
    );
}

/// A PostgreSQL slave first binds its port at its first start, in the
/// enslave step, after the backup and restore: the port is taken there and
/// the slave is started on another before it is recorded.
#[test]
fn a_postgresql_slave_whose_port_is_taken_before_its_first_start_moves_to_another() {
    survives_a_taken_port(
        "application: shop\npostgresql:\n  configuration: { version: \"15\" }\n  backups: { managed: true }\n  servers:\n    - server: { unique_name: pg-main }\n    - server: { unique_name: pg-replica-1 }\n",
        "pg-replica-1",
    );
}

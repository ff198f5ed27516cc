//! A state server with a certificate from a private authority: the URL's
//! `sslmode=verify-full` and `sslrootcert`, as libpq takes them, make the
//! connection TLS verified against that authority; another authority, a
//! missing file and `verify-ca` are refused with what is wrong.

use std::time::SystemTime;

use dbgroups_engines::engine::Certificate;
use dbgroups_state::{PostgresStore, SecretPolicy, StateStore};

use super::StateServer;

fn plaintext() -> SecretPolicy {
    SecretPolicy {
        keyring: None,
        secrets_needed: false,
        allow_plaintext: true,
    }
}

/// An authority, and a certificate from it for 127.0.0.1 and localhost.
fn authority_and_certificate() -> (dbgroups_tls::Authority, Certificate) {
    let authority =
        dbgroups_tls::create_authority("state-test", SystemTime::now()).expect("authority");
    let issued = dbgroups_tls::issue(
        &authority.certificate_pem,
        &authority.key_pem,
        "state-db",
        &["127.0.0.1".to_string(), "localhost".to_string()],
        SystemTime::now(),
    )
    .expect("certificate");
    let certificate = Certificate {
        certificate: issued.certificate_pem,
        key: issued.key_pem,
    };
    (authority, certificate)
}

#[test]
fn a_private_authority_is_trusted_through_sslrootcert_and_nothing_else_is() {
    let (authority, certificate) = authority_and_certificate();
    let server = StateServer::start_with_tls(&authority.certificate_pem, &certificate);
    let dir = tempfile::tempdir().expect("temp dir");
    let ca = dir.path().join("ca.crt");
    std::fs::write(&ca, &authority.certificate_pem).expect("CA file");
    let verified = server.url_with(&format!("sslmode=verify-full&sslrootcert={}", ca.display()));
    let store = PostgresStore::open(&verified, "tls_test", plaintext())
        .expect("a verified TLS connection to the state server");
    assert!(store.applications().expect("reads").is_empty());
    // The server saw that session over TLS.
    let sessions =
        crate::common::client_tool(dbgroups_engines::postgres::binaries("15").join("psql"))
            .arg(format!("--dbname={}", server.url()))
            .args([
                "-Atc",
                "SELECT count(*) FROM pg_stat_ssl WHERE ssl AND pid <> pg_backend_pid()",
            ])
            .output()
            .expect("psql runs");
    assert_eq!(String::from_utf8_lossy(&sessions.stdout).trim(), "1");
    drop(store);

    // Another authority: the Mozilla roots (no sslrootcert) and a second
    // private one are both refused.
    let (other, _) = authority_and_certificate();
    let other_ca = dir.path().join("other.crt");
    std::fs::write(&other_ca, &other.certificate_pem).expect("CA file");
    for url in [
        server.url_with("sslmode=require"),
        server.url_with(&format!(
            "sslmode=verify-full&sslrootcert={}",
            other_ca.display()
        )),
    ] {
        let refused = PostgresStore::open(&url, "tls_test", plaintext())
            .expect_err("an unverifiable server is refused")
            .to_string();
        assert!(
            refused.contains("connect") && !refused.contains(&server_password(&server)),
            "{refused}"
        );
    }
    // What is wrong with the URL is said before connecting.
    let missing = PostgresStore::open(
        &server.url_with("sslmode=verify-full&sslrootcert=/nonexistent/ca.crt"),
        "tls_test",
        plaintext(),
    )
    .expect_err("a missing file")
    .to_string();
    assert!(
        missing.contains("sslrootcert /nonexistent/ca.crt"),
        "{missing}"
    );
    let verify_ca = PostgresStore::open(
        &server.url_with("sslmode=verify-ca"),
        "tls_test",
        plaintext(),
    )
    .expect_err("verify-ca")
    .to_string();
    assert!(verify_ca.contains("use sslmode=verify-full"), "{verify_ca}");
}

fn server_password(server: &StateServer) -> String {
    server
        .url()
        .split_once("postgres:")
        .and_then(|(_, rest)| rest.split_once('@'))
        .map(|(password, _)| password.to_string())
        .unwrap_or_default()
}

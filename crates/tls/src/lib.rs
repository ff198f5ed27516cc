//! The certificate authority of an application and the certificates of its
//! servers on hosts, made with `rcgen` (never hand-written cryptography).
//!
//! One authority per application, created by the first apply that puts a
//! server on a host; its key is a secret of the state. Each such server
//! gets a certificate for the addresses clients and replicas dial (its
//! `address`, `public_address` and the addresses it listens on), signed by
//! the authority, valid for [`SERVER_DAYS`] and renewed by a planned change
//! before it expires (the planner decides when: dbgroups-plan's
//! `diff/certificates.rs`). Keys are ECDSA P-256, which
//! OpenSSL-based servers (PostgreSQL, MariaDB, Redis, MongoDB) all accept.

use std::net::IpAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType,
};
use time::OffsetDateTime;

/// How long an authority is valid: it is not renewed by dbgroups.
pub const AUTHORITY_DAYS: u64 = 3650;
/// How long a server's certificate is valid.
pub const SERVER_DAYS: u64 = 365;

const DAY: u64 = 86_400;

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot make a certificate: {0}")]
    Certificate(#[from] rcgen::Error),
    #[error("{0:?} is not a name or address a certificate can hold")]
    BadName(String),
    #[error("cannot read a certificate: {0}")]
    Unreadable(String),
}

/// An application's certificate authority.
pub struct Authority {
    pub certificate_pem: String,
    /// A secret: kept in the state only.
    pub key_pem: String,
    /// Seconds since the Unix epoch.
    pub expires: u64,
}

impl std::fmt::Debug for Authority {
    // The key never reaches a log or an error through Debug.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authority")
            .field("expires", &self.expires)
            .finish_non_exhaustive()
    }
}

/// A server's certificate and its key.
pub struct Issued {
    pub certificate_pem: String,
    /// A secret: written to the server's host (0600) only.
    pub key_pem: String,
    /// Seconds since the Unix epoch.
    pub expires: u64,
}

impl std::fmt::Debug for Issued {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Issued")
            .field("expires", &self.expires)
            .finish_non_exhaustive()
    }
}

fn unix(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

fn offset(seconds: u64) -> Result<OffsetDateTime, TlsError> {
    OffsetDateTime::from_unix_timestamp(i64::try_from(seconds).unwrap_or(i64::MAX))
        .map_err(|e| TlsError::Unreadable(e.to_string()))
}

/// A new authority for `application`, valid from `now`.
pub fn create_authority(application: &str, now: SystemTime) -> Result<Authority, TlsError> {
    let key = KeyPair::generate()?;
    let mut params = CertificateParams::default();
    let mut name = DistinguishedName::new();
    name.push(DnType::OrganizationName, "dbgroups");
    name.push(
        DnType::CommonName,
        format!("dbgroups certificate authority of {application}"),
    );
    params.distinguished_name = name;
    // It signs servers' certificates, never another authority's.
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let start = unix(now).saturating_sub(DAY);
    let expires = unix(now) + AUTHORITY_DAYS * DAY;
    params.not_before = offset(start)?;
    params.not_after = offset(expires)?;
    let certificate = params.self_signed(&key)?;
    Ok(Authority {
        certificate_pem: certificate.pem(),
        key_pem: key.serialize_pem(),
        expires,
    })
}

/// A certificate for `server`, valid for `names` (host names and IP
/// addresses, as clients dial them), signed by the authority.
pub fn issue(
    authority_certificate_pem: &str,
    authority_key_pem: &str,
    server: &str,
    names: &[String],
    now: SystemTime,
) -> Result<Issued, TlsError> {
    let authority_key = KeyPair::from_pem(authority_key_pem)?;
    let issuer = Issuer::from_ca_cert_pem(authority_certificate_pem, authority_key)?;
    let key = KeyPair::generate()?;
    let mut params = CertificateParams::default();
    let mut name = DistinguishedName::new();
    name.push(DnType::OrganizationName, "dbgroups");
    name.push(DnType::CommonName, server);
    params.distinguished_name = name;
    let mut alternative_names = Vec::new();
    for name in names {
        let san = match name.parse::<IpAddr>() {
            Ok(address) => SanType::IpAddress(address),
            Err(_) => SanType::DnsName(
                name.as_str()
                    .try_into()
                    .map_err(|_| TlsError::BadName(name.clone()))?,
            ),
        };
        if !alternative_names.contains(&san) {
            alternative_names.push(san);
        }
    }
    params.subject_alt_names = alternative_names;
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    // Servers also present it as clients: a replica to its master.
    params.extended_key_usages = vec![
        ExtendedKeyUsagePurpose::ServerAuth,
        ExtendedKeyUsagePurpose::ClientAuth,
    ];
    let start = unix(now).saturating_sub(DAY);
    let expires = unix(now) + SERVER_DAYS * DAY;
    params.not_before = offset(start)?;
    params.not_after = offset(expires)?;
    let certificate = params.signed_by(&key, &issuer)?;
    Ok(Issued {
        certificate_pem: certificate.pem(),
        key_pem: key.serialize_pem(),
        expires,
    })
}

/// When a PEM certificate expires, in seconds since the Unix epoch.
pub fn expires_of(certificate_pem: &str) -> Result<u64, TlsError> {
    let (_, pem) = x509_parser::pem::parse_x509_pem(certificate_pem.as_bytes())
        .map_err(|e| TlsError::Unreadable(e.to_string()))?;
    let certificate = pem
        .parse_x509()
        .map_err(|e| TlsError::Unreadable(e.to_string()))?;
    u64::try_from(certificate.validity().not_after.timestamp())
        .map_err(|e| TlsError::Unreadable(e.to_string()))
}

/// The moment `seconds` after the epoch, for messages.
pub fn at(seconds: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(seconds)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_server_certificate_names_its_addresses_and_is_signed_by_the_authority() {
        let now = SystemTime::now();
        let authority = create_authority("shop", now).expect("authority");
        let names = vec![
            "198.18.0.2".to_string(),
            "db-1.example".to_string(),
            "127.0.0.1".to_string(),
            "198.18.0.2".to_string(),
        ];
        let issued = issue(
            &authority.certificate_pem,
            &authority.key_pem,
            "pg-main",
            &names,
            now,
        )
        .expect("issued");
        let (_, pem) =
            x509_parser::pem::parse_x509_pem(issued.certificate_pem.as_bytes()).expect("pem");
        let certificate = pem.parse_x509().expect("x509");
        let (_, authority_pem) =
            x509_parser::pem::parse_x509_pem(authority.certificate_pem.as_bytes()).expect("pem");
        let authority_certificate = authority_pem.parse_x509().expect("x509");
        assert_eq!(certificate.issuer(), authority_certificate.subject());
        certificate
            .verify_signature(Some(authority_certificate.public_key()))
            .expect("signed by the authority");
        let alternative = certificate
            .subject_alternative_name()
            .expect("parses")
            .expect("present");
        let listed: Vec<String> = alternative
            .value
            .general_names
            .iter()
            .map(|n| n.to_string())
            .collect();
        assert_eq!(
            listed,
            [
                "IPAddress(c6:12:00:02)",
                "DNSName(db-1.example)",
                "IPAddress(7f:00:00:01)"
            ],
            "each name once"
        );
        assert!(authority_certificate.is_ca());
        assert!(!certificate.is_ca());
        assert_eq!(
            expires_of(&issued.certificate_pem).expect("reads"),
            issued.expires
        );
        assert!(!issued.key_pem.is_empty());
    }

    #[test]
    fn a_name_no_certificate_can_hold_is_refused() {
        let now = SystemTime::now();
        let authority = create_authority("shop", now).expect("authority");
        let refused = issue(
            &authority.certificate_pem,
            &authority.key_pem,
            "pg-main",
            &["bad name with spaces é".to_string()],
            now,
        );
        assert!(matches!(refused, Err(TlsError::BadName(_))), "{refused:?}");
    }

    #[test]
    fn debug_never_shows_a_key() {
        let authority = create_authority("shop", SystemTime::now()).expect("authority");
        let shown = format!("{authority:?}");
        assert!(!shown.contains("PRIVATE KEY"), "{shown}");
    }
}

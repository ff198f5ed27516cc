//! Who may reach a MySQL-family server, and over what. The family has no
//! rule file like `pg_hba.conf`: an account is a name *and* the host it
//! logs in from, so a server on a host restricts its application's and
//! replication accounts to the sources it lets in, each with `REQUIRE SSL`,
//! and the server itself refuses any TCP client without TLS
//! (`require_secure_transport`). Everything here is text, like the rest of
//! the [`Dialect`]; the statements are checked against the manuals in
//! tests/integration/mysql_dialect.rs.
//!
//! References: MariaDB "Account Names" (`host_ip/netmask`), "CREATE USER"
//! (`REQUIRE`), "Securing Connections for Client and Server"
//! (`require_secure_transport` 10.5.2+, `tls_version`, `FLUSH SSL` 10.4+),
//! "CHANGE MASTER TO" (`MASTER_SSL*`); MySQL 8.4 manual §8.3.1 (CIDR and
//! netmask host values), §8.3.1 "Configuring MySQL to Use Encrypted
//! Connections", "ALTER INSTANCE RELOAD TLS" (8.0.16+), "CHANGE
//! REPLICATION SOURCE TO" (`SOURCE_SSL*`).

use std::net::IpAddr;

use super::dialect::Dialect;

/// One source an account may log in from, in the server's own words, and
/// whether it must use TLS from there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountHost {
    /// `%`, `localhost` (the socket), an address, or `address/netmask`.
    pub host: String,
    /// `Some(true)`: `REQUIRE SSL`; `Some(false)`: `REQUIRE NONE`; `None`:
    /// left as the server has it (a server on loopback only).
    pub tls: Option<bool>,
}

/// Where a group's accounts log in from.
#[derive(Debug, Clone, Copy)]
pub enum Reach<'a> {
    /// From anywhere, without TLS: a server that listens on loopback only
    /// (this machine's).
    Anywhere,
    /// A server on a host: its own host's and its admitted peers' addresses
    /// (`peers`: replication, backups and clients), and for the
    /// application's account also its group's client networks
    /// (`networks`, already in the server's `address/netmask` form); the
    /// socket too, without TLS, which it cannot carry. `tls`: the server
    /// serves TLS (its certificate is installed), so every source but the
    /// socket must use it.
    Only {
        peers: &'a [IpAddr],
        networks: &'a [String],
        tls: bool,
    },
}

impl Reach<'_> {
    /// Where the application's account logs in from.
    pub fn app_hosts(&self) -> Vec<AccountHost> {
        match self {
            Reach::Anywhere => vec![anywhere()],
            Reach::Only {
                peers,
                networks,
                tls,
            } => {
                let mut hosts = vec![AccountHost {
                    host: "localhost".into(),
                    tls: Some(false),
                }];
                hosts.extend(peers.iter().map(|peer| source(peer.to_string(), *tls)));
                hosts.extend(networks.iter().map(|n| source(n.clone(), *tls)));
                hosts
            }
        }
    }

    /// Where the replication account logs in from: replicas, and backups
    /// taken on another host; never a client network.
    pub fn replication_hosts(&self) -> Vec<AccountHost> {
        match self {
            Reach::Anywhere => vec![anywhere()],
            Reach::Only { peers, tls, .. } => peers
                .iter()
                .map(|peer| source(peer.to_string(), *tls))
                .collect(),
        }
    }
}

fn anywhere() -> AccountHost {
    AccountHost {
        host: "%".into(),
        tls: None,
    }
}

fn source(host: String, tls: bool) -> AccountHost {
    AccountHost {
        host,
        tls: Some(tls),
    }
}

/// A client network (CIDR, as `allow_from` takes it) as an account's host:
/// `address/netmask`, which MariaDB and MySQL both read. A whole IPv6
/// network has no such form in MariaDB (its netmasks are IPv4 only), so
/// only a single IPv6 address (`/128`) is taken.
pub fn network_host(cidr: &str) -> Result<String, String> {
    let refused = || format!("\"{cidr}\" is not a network in CIDR form");
    let (address, prefix) = cidr.split_once('/').unwrap_or((cidr, ""));
    let address: IpAddr = address.parse().map_err(|_| refused())?;
    let full = if address.is_ipv4() { 32 } else { 128 };
    let prefix: u32 = if prefix.is_empty() {
        full
    } else {
        prefix.parse().map_err(|_| refused())?
    };
    match address {
        _ if prefix > full => Err(refused()),
        _ if prefix == full => Ok(address.to_string()),
        IpAddr::V4(v4) => {
            let mask = u32::MAX.checked_shl(32 - prefix).unwrap_or(0);
            let network = std::net::Ipv4Addr::from(u32::from(v4) & mask);
            Ok(format!("{network}/{}", std::net::Ipv4Addr::from(mask)))
        }
        IpAddr::V6(_) => Err(format!(
            "{cidr}: MySQL-family accounts take IPv6 sources one address at a time (/128); list the clients' addresses"
        )),
    }
}

/// An account from one source, with its password (set again, so a changed
/// secret takes) and its TLS requirement.
pub(super) fn account(user: &str, password: &str, from: &AccountHost) -> [String; 2] {
    let host = &from.host;
    let require = match from.tls {
        Some(true) => " REQUIRE SSL",
        Some(false) => " REQUIRE NONE",
        None => "",
    };
    [
        format!("CREATE USER IF NOT EXISTS '{user}'@'{host}' IDENTIFIED BY '{password}'"),
        format!("ALTER USER '{user}'@'{host}' IDENTIFIED BY '{password}'{require}"),
    ]
}

/// The application's account's rights on `database`, from one source.
pub fn grant_all(user: &str, database: &str, from: &AccountHost) -> String {
    format!(
        "GRANT ALL PRIVILEGES ON `{database}`.* TO '{user}'@'{}'",
        from.host
    )
}

/// The server's TLS files, as paths on its host.
#[derive(Debug, Clone, Copy)]
pub struct TlsPaths<'a> {
    pub certificate: &'a str,
    pub key: &'a str,
    pub authority: &'a str,
}

impl Dialect {
    /// `DROP USER` for each of `user`'s existing sources (`existing`) that
    /// is not wanted any more: a network no longer allowed, or `%` once a
    /// server restricts its accounts. Nothing is dropped for a server
    /// that lets its accounts in from anywhere.
    pub fn stale_accounts(
        &self,
        user: &str,
        existing: &[String],
        wanted: &[AccountHost],
    ) -> Vec<String> {
        if wanted.iter().any(|w| w.host == "%") {
            return Vec::new();
        }
        existing
            .iter()
            .filter(|host| wanted.iter().all(|w| &w.host != *host))
            .map(|host| format!("DROP USER IF EXISTS '{user}'@'{host}'"))
            .collect()
    }

    /// The server's TLS settings, once its certificate is installed: every
    /// TCP client, loopback included, must use TLS (the socket stays for
    /// root). MariaDB before 10.5.2 has no `require_secure_transport`; its
    /// accounts' `REQUIRE SSL` still holds them to TLS.
    pub fn tls_settings(&self, paths: &TlsPaths<'_>) -> Vec<String> {
        let mut lines = vec![
            format!("ssl_cert = {}", paths.certificate),
            format!("ssl_key = {}", paths.key),
            format!("ssl_ca = {}", paths.authority),
        ];
        if !self.mariadb() || self.series >= (10, 5) {
            lines.push("require_secure_transport = ON".into());
        }
        // MySQL 5.7 speaks TLS 1.2 at most.
        lines.push(if !self.mariadb() && self.series < (8, 0) {
            "tls_version = TLSv1.2".into()
        } else {
            "tls_version = TLSv1.2,TLSv1.3".into()
        });
        lines
    }

    /// The statement that makes a running server read its renewed
    /// certificate, or `None` where only a restart does (MySQL 5.7).
    pub fn reload_tls_statement(&self) -> Option<&'static str> {
        if self.mariadb() {
            Some("FLUSH SSL")
        } else if self.series >= (8, 0) {
            Some("ALTER INSTANCE RELOAD TLS")
        } else {
            None
        }
    }

    /// The `CHANGE MASTER` / `CHANGE REPLICATION SOURCE` options that make
    /// a replica connect over TLS and verify its source's certificate
    /// (name and authority) against `authority`; nothing without one.
    pub fn replication_tls(&self, authority: Option<&str>) -> String {
        let Some(authority) = authority else {
            return String::new();
        };
        let word = if self.source_replica_words() {
            "SOURCE"
        } else {
            "MASTER"
        };
        format!(
            ", {word}_SSL = 1, {word}_SSL_CA = '{authority}', {word}_SSL_VERIFY_SERVER_CERT = 1"
        )
    }

    /// Option-file lines for a command-line client (the dump tool) that
    /// connects over TLS and verifies the server against `authority`.
    pub fn client_tls_options(&self, authority: &str) -> String {
        if self.mariadb() {
            format!("ssl-ca = {authority}\nssl-verify-server-cert\n")
        } else {
            format!("ssl-ca = {authority}\nssl-mode = VERIFY_IDENTITY\n")
        }
    }
}

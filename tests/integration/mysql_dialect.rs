//! The MySQL family's statements and tool arguments, for the members that
//! cannot run on this machine (MySQL 8, Percona Server 8) as well as
//! MariaDB, checked against each manual. Each assertion names the page it
//! was checked against; the snapshots show every statement for review.

use dbgroups_engines::mysql::dialect::{
    Accounts, ConfigPaths, Dialect, Installed, Reach, ReplicaStatus, Replicating, Source, TlsPaths,
    installed_release, installed_series,
};
use dbgroups_manifest::Engine;
use dbgroups_manifest::catalogue;

fn dialect(engine: Engine, version: &str) -> Dialect {
    Dialect::new(engine, version).expect("a MySQL-family engine")
}

const PATHS: ConfigPaths<'static> = ConfigPaths {
    data_dir: "/srv/db/data",
    socket: "/srv/db/run/mysqld.sock",
    pid_file: "/srv/db/run/mysqld.pid",
    log_file: "/srv/db/mysqld.log",
    tmp_dir: "/srv/db/tmp",
};

/// What the local host binds (the snapshots were taken with it).
const LISTEN: &str = "127.0.0.1";

const SOURCE: Source<'static> = Source {
    host: "127.0.0.1",
    port: 40001,
    user: "replicator",
    password: "<replication-password>",
    authority: None,
};

const ACCOUNTS: Accounts<'static> = Accounts {
    admin_password: "<admin-password>",
    username: "shop",
    password: "<app-password>",
    database: "shop",
    replication_user: "replicator",
    replication_password: "<replication-password>",
    reach: Reach::Anywhere,
};

/// Everything one dialect would run, in order, as a reviewer reads it.
fn transcript(dialect: &Dialect) -> String {
    let programs = dialect.programs();
    let mut out = vec![
        format!("programs: {programs:?}"),
        format!("remedy when missing: {}", dialect.availability().remedy),
        "--- config".into(),
        dialect.config(&PATHS, LISTEN, 40002, 40002),
        format!("--- initialise: {:?}", dialect.install_args()),
        "--- accounts".into(),
    ];
    out.extend(dialect.account_statements(&ACCOUNTS));
    out.push(format!("--- dump: {:?}", dialect.dump_args("shop")));
    out.push("--- accounts on a read-only replica (first and last statements)".into());
    let on_replica = dialect.as_root_on_replica(dialect.account_statements(&ACCOUNTS), true);
    out.extend(on_replica.first().cloned());
    out.extend(on_replica.last().cloned());
    out.push(format!(
        "--- before a data size: {:?}",
        dialect.size_session_settings()
    ));
    out.push("--- before restore (into a replica: replication, read-only, history)".into());
    out.extend(dialect.restore_preamble());
    out.push(format!(
        "--- restore init command: {}",
        dialect.restore_init_command()
    ));
    out.push("--- enslave".into());
    out.extend(dialect.enslave_statements(&SOURCE, Some("0-40001-17")));
    out.push("--- detach".into());
    out.extend(dialect.detach_statements());
    out.push(format!(
        "--- read-only config lines: {:?}",
        dialect.read_only_settings()
    ));
    out.push(format!("--- status: {}", dialect.status_query()));
    out.push(format!(
        "--- GTIDs: {} / {}",
        dialect.executed_gtids_query(),
        dialect.wait_for_gtids_query()
    ));
    out.push(format!(
        "--- oldest release served: {:?}",
        dialect.minimum_release()
    ));
    out.extend(on_a_host(dialect));
    out.join("\n")
}

/// What changes for a server on a host: its TLS settings, accounts only
/// from its sources and over TLS, and replication that verifies its source.
fn on_a_host(dialect: &Dialect) -> Vec<String> {
    let peers = [
        std::net::IpAddr::from([127, 0, 0, 1]),
        std::net::IpAddr::from([198, 18, 0, 2]),
    ];
    let networks = ["198.18.5.0/255.255.255.0".to_string()];
    let reach = Reach::Only {
        peers: &peers,
        networks: &networks,
        tls: true,
    };
    let mut out = vec!["--- on a host: TLS settings".to_string()];
    out.extend(dialect.tls_settings(&TLS_PATHS));
    out.push(format!(
        "--- on a host: reload TLS: {:?}",
        dialect.reload_tls_statement()
    ));
    out.push("--- on a host: accounts".into());
    out.extend(dialect.account_statements(&Accounts { reach, ..ACCOUNTS }));
    out.push("--- on a host: stale sources of the application's account".into());
    out.extend(dialect.stale_accounts(
        "shop",
        &["%".into(), "localhost".into(), "198.18.0.2".into()],
        &reach.app_hosts(),
    ));
    out.push("--- on a host: grants for a copy".into());
    out.extend(dialect.copy_grants("replicator", "shop", &reach));
    out.push("--- on a host: enslave".into());
    out.extend(dialect.enslave_statements(
        &Source {
            authority: Some("/srv/db/tls/upstream.crt"),
            ..SOURCE
        },
        Some("0-40001-17"),
    ));
    out.push(format!(
        "--- on a host: dump client options\n{}",
        dialect.client_tls_options("/srv/stage/authority.crt")
    ));
    out
}

const TLS_PATHS: TlsPaths<'static> = TlsPaths {
    certificate: "/srv/db/tls/server.crt",
    key: "/srv/db/tls/server.key",
    authority: "/srv/db/tls/authority.crt",
};

/// MariaDB 10.11 on a host, against its manual: TCP clients need TLS
/// (`require_secure_transport`, 10.5.2+), every account but the socket's
/// has `REQUIRE SSL`, the accounts come from the sources only (an IPv4
/// network as `address/netmask`; `%` dropped), and the replica verifies
/// its master's certificate against the authority it is given.
#[test]
fn mariadb_on_a_host_takes_tls_only_from_its_sources() {
    let mariadb = dialect(Engine::Mariadb, "10.11");
    let text = on_a_host(&mariadb).join("\n");
    for expected in [
        "require_secure_transport = ON",
        "ssl_ca = /srv/db/tls/authority.crt",
        "ALTER USER 'shop'@'198.18.5.0/255.255.255.0' IDENTIFIED BY '<app-password>' REQUIRE SSL",
        "ALTER USER 'shop'@'localhost' IDENTIFIED BY '<app-password>' REQUIRE NONE",
        "ALTER USER 'replicator'@'198.18.0.2' IDENTIFIED BY '<replication-password>' REQUIRE SSL",
        "DROP USER IF EXISTS 'shop'@'%'",
        "MASTER_SSL = 1, MASTER_SSL_CA = '/srv/db/tls/upstream.crt', MASTER_SSL_VERIFY_SERVER_CERT = 1",
        "ssl-verify-server-cert",
    ] {
        assert!(text.contains(expected), "{expected} missing from:\n{text}");
    }
    // A client network is never a replication source.
    assert!(!text.contains("'replicator'@'198.18.5.0"), "{text}");
    // Sources still wanted are kept.
    assert!(
        !text.contains("DROP USER IF EXISTS 'shop'@'198.18.0.2'"),
        "{text}"
    );
    assert_eq!(mariadb.reload_tls_statement(), Some("FLUSH SSL"));
    // MariaDB 10.4 has no require_secure_transport: its accounts alone
    // hold clients to TLS.
    let old = dialect(Engine::Mariadb, "10.4").tls_settings(&TLS_PATHS);
    assert!(
        !old.iter()
            .any(|l| l.starts_with("require_secure_transport")),
        "{old:?}"
    );
    // On this machine nothing is dropped: the accounts log in from anywhere.
    assert!(
        mariadb
            .stale_accounts(
                "shop",
                &["%".into(), "10.0.0.1".into()],
                &Reach::Anywhere.app_hosts()
            )
            .is_empty()
    );
}

/// MySQL 8.4: the same with its own words (`SOURCE_SSL*`, `ssl-mode`,
/// `ALTER INSTANCE RELOAD TLS`).
#[test]
fn mysql_8_on_a_host_uses_its_own_tls_words() {
    let mysql = dialect(Engine::Mysql, "8.4");
    let text = on_a_host(&mysql).join("\n");
    for expected in [
        "SOURCE_SSL = 1, SOURCE_SSL_CA = '/srv/db/tls/upstream.crt', SOURCE_SSL_VERIFY_SERVER_CERT = 1",
        "ssl-mode = VERIFY_IDENTITY",
        "tls_version = TLSv1.2,TLSv1.3",
    ] {
        assert!(text.contains(expected), "{expected} missing from:\n{text}");
    }
    assert_eq!(
        mysql.reload_tls_statement(),
        Some("ALTER INSTANCE RELOAD TLS")
    );
}

/// A client network as an account's host, as both manuals read it.
#[test]
fn client_networks_become_netmask_hosts() {
    use dbgroups_engines::mysql::access::network_host;
    assert_eq!(
        network_host("10.0.1.0/24").as_deref(),
        Ok("10.0.1.0/255.255.255.0")
    );
    assert_eq!(
        network_host("10.0.0.0/8").as_deref(),
        Ok("10.0.0.0/255.0.0.0")
    );
    assert_eq!(network_host("0.0.0.0/0").as_deref(), Ok("0.0.0.0/0.0.0.0"));
    assert_eq!(network_host("192.0.2.7/32").as_deref(), Ok("192.0.2.7"));
    assert_eq!(network_host("192.0.2.7").as_deref(), Ok("192.0.2.7"));
    assert_eq!(
        network_host("2001:db8::7/128").as_deref(),
        Ok("2001:db8::7")
    );
    assert!(network_host("2001:db8::/64").is_err_and(|e| e.contains("one address at a time")));
    assert!(network_host("10.0.0.0/33").is_err());
}

/// Every series of the family the catalogue accepts, each either served
/// (a dialect) or refused with what is needed.
fn catalogued() -> Vec<(Engine, &'static str)> {
    [Engine::Mariadb, Engine::Mysql, Engine::Percona]
        .into_iter()
        .flat_map(|engine| catalogue::releases(engine).map(move |r| (engine, r.series)))
        .collect()
}

#[test]
fn every_statement_of_each_catalogued_series_is_reviewed() {
    let mut refused = Vec::new();
    let mut served = 0;
    for (engine, series) in catalogued() {
        let dialect = dialect(engine, series);
        match dialect.unsupported() {
            Some(reason) => refused.push(format!("{engine} {series}: {reason}")),
            None => {
                served += 1;
                insta::assert_snapshot!(
                    format!("{engine}_{}", series.replace('.', "_")),
                    transcript(&dialect)
                );
            }
        }
    }
    assert!(served >= 20, "only {served} series served");
    insta::assert_snapshot!("refused_series", refused.join("\n"));
}

/// A word dbgroups may send, and the releases of one product line that
/// know it: the manual's first release with it, and the release from which
/// it is deprecated or removed (dbgroups then must use the new word).
struct Rule {
    word: &'static str,
    mariadb: bool,
    since: (u32, u32, u32),
    not_from: Option<(u32, u32, u32)>,
    page: &'static str,
}

const fn mysql(word: &'static str, since: (u32, u32, u32), page: &'static str) -> Rule {
    Rule {
        word,
        mariadb: false,
        since,
        not_from: None,
        page,
    }
}

const fn mysql_until(word: &'static str, not_from: (u32, u32, u32), page: &'static str) -> Rule {
    Rule {
        word,
        mariadb: false,
        since: (5, 0, 0),
        not_from: Some(not_from),
        page,
    }
}

const fn mariadb(word: &'static str, since: (u32, u32, u32), page: &'static str) -> Rule {
    Rule {
        word,
        mariadb: true,
        since,
        not_from: None,
        page,
    }
}

/// The manuals' rules, page by page (docs/engines.md lists them too).
const RULES: &[Rule] = &[
    mysql(
        "--initialize-insecure",
        (5, 7, 6),
        "https://dev.mysql.com/doc/refman/5.7/en/data-directory-initialization.html",
    ),
    mysql(
        "CREATE USER IF NOT EXISTS",
        (5, 7, 6),
        "https://dev.mysql.com/doc/refman/5.7/en/create-user.html",
    ),
    mysql(
        "DROP USER IF EXISTS",
        (5, 7, 8),
        "https://dev.mysql.com/doc/refman/5.7/en/drop-user.html",
    ),
    mysql(
        "super_read_only",
        (5, 7, 8),
        "https://dev.mysql.com/doc/refman/5.7/en/server-system-variables.html#sysvar_super_read_only",
    ),
    mysql(
        "WAIT_FOR_EXECUTED_GTID_SET",
        (5, 7, 5),
        "https://dev.mysql.com/doc/refman/8.0/en/gtid-functions.html",
    ),
    mysql(
        "mysqlx",
        (8, 0, 0),
        "https://dev.mysql.com/doc/refman/8.0/en/x-plugin-options-system-variables.html",
    ),
    mysql(
        "information_schema_stats_expiry",
        (8, 0, 3),
        "https://dev.mysql.com/doc/refman/8.0/en/server-system-variables.html#sysvar_information_schema_stats_expiry",
    ),
    mysql(
        "START REPLICA",
        (8, 0, 22),
        "https://dev.mysql.com/doc/refman/8.0/en/start-replica.html",
    ),
    mysql(
        "STOP REPLICA",
        (8, 0, 22),
        "https://dev.mysql.com/doc/refman/8.0/en/stop-replica.html",
    ),
    mysql(
        "RESET REPLICA",
        (8, 0, 22),
        "https://dev.mysql.com/doc/refman/8.0/en/reset-replica.html",
    ),
    mysql(
        "SHOW REPLICA STATUS",
        (8, 0, 22),
        "https://dev.mysql.com/doc/refman/8.0/en/show-replica-status.html",
    ),
    mysql(
        "CHANGE REPLICATION SOURCE TO",
        (8, 0, 23),
        "https://dev.mysql.com/doc/refman/8.0/en/change-replication-source-to.html",
    ),
    mysql(
        "SOURCE_AUTO_POSITION",
        (8, 0, 23),
        "https://dev.mysql.com/doc/refman/8.0/en/change-replication-source-to.html",
    ),
    mysql(
        "GET_SOURCE_PUBLIC_KEY",
        (8, 0, 23),
        "https://dev.mysql.com/doc/refman/8.0/en/change-replication-source-to.html",
    ),
    mysql(
        "log_replica_updates",
        (8, 0, 26),
        "https://dev.mysql.com/doc/refman/8.0/en/replication-options-binary-log.html#sysvar_log_replica_updates",
    ),
    mysql(
        "--source-data",
        (8, 0, 26),
        "https://dev.mysql.com/doc/refman/8.0/en/mysqldump.html#option_mysqldump_source-data",
    ),
    mysql(
        "RESET BINARY LOGS AND GTIDS",
        (8, 2, 0),
        "https://dev.mysql.com/doc/refman/8.4/en/reset-binary-logs-and-gtids.html",
    ),
    mysql_until(
        "START SLAVE",
        (8, 0, 22),
        "https://dev.mysql.com/doc/refman/8.0/en/start-slave.html",
    ),
    mysql_until(
        "STOP SLAVE",
        (8, 0, 22),
        "https://dev.mysql.com/doc/refman/8.0/en/stop-slave.html",
    ),
    mysql_until(
        "RESET SLAVE",
        (8, 0, 22),
        "https://dev.mysql.com/doc/refman/8.0/en/reset-slave.html",
    ),
    mysql_until(
        "SHOW SLAVE STATUS",
        (8, 0, 22),
        "https://dev.mysql.com/doc/refman/8.0/en/show-slave-status.html",
    ),
    mysql_until(
        "CHANGE MASTER TO",
        (8, 0, 23),
        "https://dev.mysql.com/doc/refman/8.0/en/change-master-to.html",
    ),
    mysql_until(
        "MASTER_AUTO_POSITION",
        (8, 0, 23),
        "https://dev.mysql.com/doc/refman/8.0/en/change-master-to.html",
    ),
    mysql_until(
        "log_slave_updates",
        (8, 0, 26),
        "https://dev.mysql.com/doc/refman/8.0/en/replication-options-binary-log.html#sysvar_log_slave_updates",
    ),
    mysql_until(
        "--master-data",
        (8, 0, 26),
        "https://dev.mysql.com/doc/refman/8.0/en/mysqldump.html#option_mysqldump_master-data",
    ),
    mysql_until(
        "binlog_format",
        (8, 0, 34),
        "https://dev.mysql.com/doc/refman/8.0/en/replication-options-binary-log.html#sysvar_binlog_format",
    ),
    mysql_until(
        "RESET MASTER",
        (8, 2, 0),
        "https://dev.mysql.com/doc/refman/8.4/en/news-8-4-0.html (removed; deprecated from 8.2.0)",
    ),
    mysql_until(
        "DELETE FROM mysql.user",
        (5, 7, 0),
        "https://dev.mysql.com/doc/refman/8.0/en/drop-user.html (accounts go with DROP USER)",
    ),
    mariadb(
        "mysql.global_priv",
        (10, 4, 1),
        "https://mariadb.com/kb/en/mysql-global_priv-table/",
    ),
    mariadb(
        "[mariadbd]",
        (10, 4, 6),
        "https://mariadb.com/kb/en/configuring-mariadb-with-option-files/",
    ),
    mariadb(
        "mariadbd",
        (10, 4, 6),
        "https://mariadb.com/kb/en/mariadbd/",
    ),
    mariadb(
        "mariadb-dump",
        (10, 4, 6),
        "https://mariadb.com/kb/en/mariadb-dump/",
    ),
    mariadb(
        "mariadb-install-db",
        (10, 4, 6),
        "https://mariadb.com/kb/en/mariadb-install-db/",
    ),
    mariadb(
        "--auth-root-authentication-method",
        (10, 4, 3),
        "https://mariadb.com/kb/en/mysql_install_db/",
    ),
    mariadb(
        "MASTER_GTID_WAIT",
        (10, 0, 9),
        "https://mariadb.com/kb/en/master_gtid_wait/",
    ),
    mariadb(
        "gtid_strict_mode",
        (10, 0, 0),
        "https://mariadb.com/kb/en/gtid/",
    ),
    mariadb(
        "MASTER_USE_GTID",
        (10, 0, 0),
        "https://mariadb.com/kb/en/change-master-to/",
    ),
];

/// Everything a dialect sends or runs, as one text the rules search.
fn all_words(dialect: &Dialect) -> String {
    let programs = dialect.programs();
    let mut words = transcript(dialect);
    for program in [
        Some(programs.server),
        Some(programs.dump),
        Some(programs.client),
        programs.installer,
    ]
    .into_iter()
    .flatten()
    {
        words.push_str(&format!("\nprogram {program}"));
    }
    words.push_str(
        &dialect
            .as_root_on_replica(dialect.account_statements(&ACCOUNTS), true)
            .join("\n"),
    );
    words
}

/// The statement matrix: for every catalogued series that is served, each
/// word sent is known from the oldest release served and not yet
/// deprecated or removed in the series; the manuals' pages are in RULES.
#[test]
fn every_word_sent_to_a_series_exists_in_every_release_served_of_it() {
    let mut checked = 0;
    for (engine, series) in catalogued() {
        let dialect = dialect(engine, series);
        if dialect.unsupported().is_some() {
            continue;
        }
        let words = all_words(&dialect);
        let minimum = dialect.minimum_release();
        for rule in RULES {
            if rule.mariadb != (engine == Engine::Mariadb) || !words.contains(rule.word) {
                continue;
            }
            checked += 1;
            assert!(
                minimum >= rule.since,
                "{engine} {series} is served from {minimum:?}, but `{}` needs {:?} ({})",
                rule.word,
                rule.since,
                rule.page
            );
            if let Some(not_from) = rule.not_from {
                assert!(
                    dialect.series < (not_from.0, not_from.1),
                    "{engine} {series} is sent `{}`, deprecated or removed from {not_from:?} ({})",
                    rule.word,
                    rule.page
                );
            }
        }
    }
    assert!(checked > 100, "the rules matched only {checked} times");
}

/// The matrix catches the defects: a dialect that served 8.0 from
/// 8.0.0, or sent RESET MASTER to 8.2, would break these rules.
#[test]
fn the_matrix_would_catch_the_defects_it_guards() {
    let rule = |word: &str| RULES.iter().find(|r| r.word == word).expect("a rule");
    assert!((8, 0, 0) < rule("START REPLICA").since);
    assert!((8, 0, 0) < rule("log_replica_updates").since);
    assert_eq!(rule("RESET MASTER").not_from, Some((8, 2, 0)));
    assert!(dialect(Engine::Mysql, "8.2").series >= (8, 2));
    assert!(!all_words(&dialect(Engine::Mysql, "8.2")).contains("RESET MASTER"));
    assert!(!all_words(&dialect(Engine::Mysql, "8.4")).contains("DELETE FROM mysql.user"));
    assert_eq!(dialect(Engine::Mysql, "8.0").minimum_release(), (8, 0, 26));
    assert_eq!(
        dialect(Engine::Percona, "8.0").minimum_release(),
        (8, 0, 26)
    );
    assert_eq!(dialect(Engine::Mysql, "5.7").minimum_release(), (5, 7, 8));
    assert_eq!(
        dialect(Engine::Mariadb, "10.4").minimum_release(),
        (10, 4, 6)
    );
}

/// MySQL/Percona 5.6 and MariaDB 10.3 are catalogued (real releases, with
/// an end-of-life warning) but cannot be served; the refusal says what is.
#[test]
fn series_that_cannot_be_served_are_refused_with_what_is_needed() {
    let mysql_56 = dialect(Engine::Mysql, "5.6")
        .unsupported()
        .expect("refused");
    assert!(
        mysql_56.contains("super_read_only (5.7.8)") && mysql_56.contains("use 5.7.8 or later"),
        "{mysql_56}"
    );
    assert!(dialect(Engine::Percona, "5.6").unsupported().is_some());
    let mariadb_103 = dialect(Engine::Mariadb, "10.3")
        .unsupported()
        .expect("refused");
    assert!(
        mariadb_103.contains("mysql.global_priv") && mariadb_103.contains("10.4.6 or later"),
        "{mariadb_103}"
    );
    for (engine, series) in [
        (Engine::Mysql, "5.7"),
        (Engine::Mysql, "8.0"),
        (Engine::Mariadb, "10.4"),
        (Engine::Percona, "8.4"),
    ] {
        assert_eq!(
            dialect(engine, series).unsupported(),
            None,
            "{engine} {series}"
        );
    }
    // A manifest naming a patch below the minimum is refused too.
    let old_80 = catalogue::unserved(
        Engine::Mysql,
        &catalogue::Version::parse("8.0.25").expect("v"),
    );
    assert!(old_80.is_some_and(|r| r.contains("8.0.26 or later")));
    assert_eq!(
        catalogue::unserved(
            Engine::Mysql,
            &catalogue::Version::parse("8.0.26").expect("v")
        ),
        None
    );
    assert_eq!(
        catalogue::unserved(
            Engine::Postgresql,
            &catalogue::Version::parse("9.6").expect("v")
        ),
        None
    );
}

/// Item 1 of issue 21: before a restore into a replica, on every served
/// series, replication is stopped and reset, read-only is off, and only
/// then is the GTID history reset (MySQL 8.4 "RESET REPLICA", "Replica
/// Errors During Replication" for 1290 under super_read_only, "gtid_purged"
/// for error 3546).
#[test]
fn a_restore_stops_and_resets_replication_then_lifts_read_only_then_resets_history() {
    for (engine, series) in catalogued() {
        let dialect = dialect(engine, series);
        if dialect.unsupported().is_some() {
            continue;
        }
        let preamble = dialect.restore_preamble();
        let position = |wanted: &str| {
            preamble
                .iter()
                .position(|s| s.starts_with(wanted))
                .unwrap_or_else(|| panic!("{engine} {series}: no `{wanted}` in {preamble:?}"))
        };
        let (stop, reset, read_only, history) = if engine == Engine::Mariadb {
            (
                position("STOP SLAVE"),
                position("RESET SLAVE ALL"),
                position("SET GLOBAL read_only = OFF"),
                position("RESET MASTER"),
            )
        } else {
            let words = dialect.detach_statements();
            let (stop, reset) = (words[0].clone(), words[1].clone());
            let read_only = position("SET GLOBAL super_read_only = OFF");
            assert!(read_only < position("SET GLOBAL read_only = OFF"));
            (
                position(&stop),
                position(&reset),
                read_only,
                position(if dialect.series >= (8, 2) {
                    "RESET BINARY LOGS AND GTIDS"
                } else {
                    "RESET MASTER"
                }),
            )
        };
        assert!(
            stop < reset && reset < read_only && read_only < history,
            "{engine} {series}: {preamble:?}"
        );
        assert_eq!(
            history,
            preamble.len() - 1,
            "{engine} {series}: the history reset is last"
        );
    }
}

/// Root's statements on a restarted (read-only) MySQL replica: the
/// account set-up and grant_database lift super_read_only around
/// themselves (read_only stays on, refusing the application's account);
/// MariaDB's root passes read_only (READ ONLY ADMIN) and is unchanged.
#[test]
fn root_statements_on_a_read_only_replica_lift_only_super_read_only() {
    let grant = vec!["GRANT ALL PRIVILEGES ON `shop`.* TO 'shop'@'%'".to_string()];
    for engine in [Engine::Mysql, Engine::Percona] {
        let wrapped = dialect(engine, "8.4").as_root_on_replica(grant.clone(), true);
        assert_eq!(
            wrapped,
            [
                "SET GLOBAL super_read_only = OFF",
                "GRANT ALL PRIVILEGES ON `shop`.* TO 'shop'@'%'",
                "SET GLOBAL super_read_only = ON",
            ]
        );
        assert!(!wrapped.iter().any(|s| s.contains("SET GLOBAL read_only")));
        assert_eq!(
            dialect(engine, "8.4").as_root_on_replica(grant.clone(), false),
            grant
        );
    }
    assert_eq!(
        dialect(Engine::Mariadb, "10.11").as_root_on_replica(grant.clone(), true),
        grant
    );
}

/// MySQL 8.0 "information_schema_stats_expiry": table statistics are
/// cached for 86400 s by default; 0 reads them fresh. MariaDB has no such
/// cache (and no such variable: setting it would fail).
#[test]
fn data_sizes_on_mysql_8_are_read_without_the_statistics_cache() {
    for engine in [Engine::Mysql, Engine::Percona] {
        assert_eq!(
            dialect(engine, "8.4").size_session_settings(),
            ["SET SESSION information_schema_stats_expiry = 0"]
        );
    }
    assert!(
        dialect(Engine::Mysql, "5.7")
            .size_session_settings()
            .is_empty()
    );
    assert!(
        dialect(Engine::Mariadb, "10.11")
            .size_session_settings()
            .is_empty()
    );
}

/// `--version` of each product, as their manuals and packages print it;
/// Percona Server's number is MySQL's base release plus a build
/// (docs.percona.com/percona-server/8.0/server-version-numbers.html).
#[test]
fn the_product_and_release_are_read_from_version_and_checked() {
    let oracle = installed_release(
        "/usr/sbin/mysqld  Ver 8.0.25 for Linux on x86_64 (MySQL Community Server - GPL)",
    )
    .expect("reads");
    assert_eq!(
        oracle,
        Installed {
            engine: Engine::Mysql,
            release: (8, 0, 25)
        }
    );
    let percona = installed_release("/usr/sbin/mysqld  Ver 8.0.36-28 for Linux on x86_64 (Percona Server (GPL), Release 28, Revision 47601f19)").expect("reads");
    assert_eq!(
        percona,
        Installed {
            engine: Engine::Percona,
            release: (8, 0, 36)
        }
    );
    let mariadb = installed_release("/usr/sbin/mariadbd  Ver 10.11.6-MariaDB-0+deb12u1 for debian-linux-gnu on x86_64 (Debian 12)").expect("reads");
    assert_eq!(
        mariadb,
        Installed {
            engine: Engine::Mariadb,
            release: (10, 11, 6)
        }
    );

    let too_old = dialect(Engine::Mysql, "8.0")
        .check_installed(&oracle)
        .expect_err("8.0.25 lacks the words");
    assert!(too_old.contains("8.0.26 or later"), "{too_old}");
    let newer = Installed {
        release: (8, 0, 26),
        ..oracle
    };
    assert_eq!(
        dialect(Engine::Mysql, "8.0").check_installed(&newer),
        Ok(())
    );
    let wrong_product = dialect(Engine::Mysql, "8.0")
        .check_installed(&percona)
        .expect_err("Percona is not Oracle's");
    assert!(
        wrong_product.contains("that is Percona Server")
            && wrong_product.contains("engine to percona"),
        "{wrong_product}"
    );
    assert!(
        dialect(Engine::Percona, "8.0")
            .check_installed(&oracle)
            .is_err()
    );
    assert_eq!(
        dialect(Engine::Percona, "8.0").check_installed(&percona),
        Ok(())
    );
    let other_series = dialect(Engine::Mariadb, "11.4")
        .check_installed(&mariadb)
        .expect_err("10.11 is not 11.4");
    assert!(
        other_series.contains("installed one, 10.11"),
        "{other_series}"
    );
    assert_eq!(
        dialect(Engine::Mariadb, "10.11").check_installed(&mariadb),
        Ok(())
    );
    let old_104 = Installed {
        engine: Engine::Mariadb,
        release: (10, 4, 5),
    };
    assert!(
        dialect(Engine::Mariadb, "10.4")
            .check_installed(&old_104)
            .is_err()
    );
}

/// A `SHOW REPLICA STATUS\G` text read into columns as the server names
/// them (an empty value is an empty string, NULL is no value).
fn status_from(sample: &str) -> ReplicaStatus {
    let columns: std::collections::BTreeMap<String, String> = sample
        .lines()
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.trim().to_string(), value.trim().to_string()))
        .collect();
    ReplicaStatus::from_columns(|column| columns.get(column).filter(|v| *v != "NULL").cloned())
}

/// The MySQL 8.4 manual's sample
/// (https://dev.mysql.com/doc/refman/8.4/en/show-replica-status.html),
/// the columns this code reads.
const REPLICATING: &str = "
             Replica_IO_State: Waiting for source to send event
                  Source_Host: 127.0.0.1
                  Source_User: root
                  Source_Port: 13000
           Replica_IO_Running: Yes
          Replica_SQL_Running: Yes
                   Last_Errno: 0
                   Last_Error:
        Seconds_Behind_Source: 0
                Last_IO_Errno: 0
                Last_IO_Error:
               Last_SQL_Errno: 0
               Last_SQL_Error:
           Retrieved_Gtid_Set: 3e11fa47-71ca-11e1-9e33-c80aa9429562:1-5
            Executed_Gtid_Set: 3e11fa47-71ca-11e1-9e33-c80aa9429562:1-5
                Auto_Position: 1
";

/// The source went away (its host failed): the receiver retries,
/// `Replica_IO_Running: Connecting` (the manual's third value besides Yes
/// and No) with error 2003 in Last_IO_Error, and no lag is known.
const SOURCE_LOST: &str = "
             Replica_IO_State: Reconnecting after a failed source event read
                  Source_Host: 127.0.0.1
                  Source_Port: 13000
           Replica_IO_Running: Connecting
          Replica_SQL_Running: Yes
        Seconds_Behind_Source: NULL
                Last_IO_Errno: 2003
                Last_IO_Error: Error reconnecting to source 'repl@127.0.0.1:13000'. This was attempt 1/86400, with a delay of 60 seconds between attempts. Message: Can't connect to MySQL server on '127.0.0.1:13000' (111)
               Last_SQL_Errno: 0
               Last_SQL_Error:
";

/// After the failover: pointed at the promoted server, both threads run;
/// CHANGE REPLICATION SOURCE TO cleared the old error.
const FAILED_OVER: &str = "
             Replica_IO_State: Waiting for source to send event
                  Source_Host: 127.0.0.1
                  Source_Port: 13001
           Replica_IO_Running: Yes
          Replica_SQL_Running: Yes
        Seconds_Behind_Source: 4
                Last_IO_Errno: 0
                Last_IO_Error:
               Last_SQL_Errno: 0
               Last_SQL_Error:
";

/// The replica was pointed at the promoted server before it had the old
/// source's last transactions: the applier stops on a duplicate key.
const DIVERGED: &str = "
           Replica_IO_Running: Yes
          Replica_SQL_Running: No
        Seconds_Behind_Source: NULL
                Last_IO_Error:
               Last_SQL_Errno: 1062
               Last_SQL_Error: Coordinator stopped because there were error(s) in the worker(s). The most recent failure being: Worker 1 failed executing transaction '3e11fa47-71ca-11e1-9e33-c80aa9429562:6'; Error 'Duplicate entry '7' for key 'orders.PRIMARY'' on query.
";

/// MariaDB KB "SHOW REPLICA STATUS": its own column names.
const MARIADB_CONNECTING: &str = "
               Slave_IO_State: Connecting to master
                  Master_Host: 127.0.0.1
             Slave_IO_Running: Connecting
            Slave_SQL_Running: Yes
        Seconds_Behind_Master: NULL
                Last_IO_Error:
               Last_SQL_Error:
                   Using_Gtid: Slave_Pos
";

#[test]
fn replica_status_is_read_from_the_manuals_samples_through_a_failover() {
    let running = status_from(REPLICATING);
    assert_eq!(
        running,
        ReplicaStatus {
            io_running: true,
            sql_running: true,
            seconds_behind: Some(0),
            last_error: None,
            reconnecting: false,
        }
    );
    assert_eq!(running.verdict(), Replicating::Yes);

    let lost = status_from(SOURCE_LOST);
    assert!(
        !lost.io_running && lost.sql_running && lost.seconds_behind.is_none(),
        "{lost:?}"
    );
    // The receiver retries by itself: a refresh does not count it broken.
    assert!(lost.reconnecting, "{lost:?}");
    assert!(!status_from(DIVERGED).reconnecting);
    match lost.verdict() {
        Replicating::Failed(reason) => assert!(
            reason.contains("Can't connect to MySQL server on '127.0.0.1:13000'"),
            "{reason}"
        ),
        other => panic!("a lost source is a failure with its reason, not {other:?}"),
    }

    let failed_over = status_from(FAILED_OVER);
    assert_eq!(failed_over.verdict(), Replicating::Yes);
    assert_eq!(failed_over.seconds_behind, Some(4));

    match status_from(DIVERGED).verdict() {
        Replicating::Failed(reason) => assert!(reason.contains("Duplicate entry"), "{reason}"),
        other => panic!("a stopped applier is a failure, not {other:?}"),
    }

    // Connecting with no error yet: not replicating, and not failed.
    let connecting = status_from(MARIADB_CONNECTING);
    assert!(
        !connecting.io_running && connecting.last_error.is_none(),
        "{connecting:?}"
    );
    assert_eq!(connecting.verdict(), Replicating::NotYet);
}

/// MySQL 8.4 manual, 19.1.3.4 "Setting Up Replication Using GTIDs": the
/// source and replica need `gtid_mode=ON` and `enforce_gtid_consistency=ON`,
/// binary logging, and a unique `server_id`.
#[test]
fn mysql_8_servers_have_gtids_and_a_binary_log_from_their_first_start() {
    for engine in [Engine::Mysql, Engine::Percona] {
        let config = dialect(engine, "8.4").config(&PATHS, LISTEN, 40002, 40002);
        for line in [
            "[mysqld]",
            "gtid_mode = ON",
            "enforce_gtid_consistency = ON",
            "log_bin = binlog",
            "server_id = 40002",
            "bind-address = 127.0.0.1",
            "log_replica_updates = ON",
            // The X Plugin's default port 33060 would clash between servers.
            "mysqlx = OFF",
        ] {
            assert!(
                config.lines().any(|l| l == line),
                "{engine}: missing `{line}` in\n{config}"
            );
        }
        assert!(
            !config.contains("gtid_strict_mode"),
            "a MariaDB-only variable would stop mysqld from starting"
        );
    }
}

/// MariaDB KB "gtid_strict_mode", "Setting up replication": GTIDs are
/// always on; the section `[mariadbd]` is read by MariaDB 10.4.6+.
#[test]
fn mariadb_servers_use_mariadb_variables() {
    let config = dialect(Engine::Mariadb, "10.11").config(&PATHS, LISTEN, 40002, 40002);
    for line in ["[mariadbd]", "gtid_strict_mode = ON", "binlog_format = ROW"] {
        assert!(config.lines().any(|l| l == line), "missing `{line}`");
    }
    assert!(!config.contains("gtid_mode"), "gtid_mode is MySQL's");
}

/// MySQL 8.4 manual, 2.9.1 "Initializing the Data Directory":
/// `mysqld --initialize-insecure` creates root@localhost with no password
/// (provisioning sets one at once) and no anonymous accounts.
#[test]
fn mysql_initialises_with_the_server_binary() {
    let mysql = dialect(Engine::Mysql, "8.4");
    assert_eq!(mysql.programs().installer, None);
    assert_eq!(mysql.programs().server, "mysqld");
    assert_eq!(mysql.install_args(), ["--initialize-insecure"]);
    let mariadb = dialect(Engine::Mariadb, "11.4");
    assert_eq!(mariadb.programs().installer, Some("mariadb-install-db"));
}

/// MySQL 8.4 manual, "CHANGE REPLICATION SOURCE TO" (SOURCE_AUTO_POSITION,
/// GET_SOURCE_PUBLIC_KEY for caching_sha2_password without TLS), "START
/// REPLICA", and `super_read_only` for a replica.
#[test]
fn mysql_8_follows_its_source_with_auto_positioning() {
    for engine in [Engine::Mysql, Engine::Percona] {
        let statements = dialect(engine, "8.4").enslave_statements(&SOURCE, None);
        assert_eq!(statements[0], "STOP REPLICA");
        assert_eq!(statements[1], "RESET REPLICA ALL");
        let change = &statements[2];
        assert!(change.starts_with("CHANGE REPLICATION SOURCE TO SOURCE_HOST = '127.0.0.1', SOURCE_PORT = 40001, SOURCE_USER = 'replicator'"));
        assert!(change.contains("SOURCE_AUTO_POSITION = 1"));
        assert!(change.contains("GET_SOURCE_PUBLIC_KEY = 1"));
        assert!(!change.contains("MASTER_"), "8.4 removed the MASTER_ words");
        assert_eq!(statements[3], "SET GLOBAL super_read_only = ON");
        assert_eq!(statements.last().map(String::as_str), Some("START REPLICA"));
    }
}

/// MariaDB KB "CHANGE MASTER TO" (MASTER_USE_GTID=slave_pos) and
/// "gtid_slave_pos": the replica starts from the dump's position.
#[test]
fn mariadb_follows_from_the_dump_position() {
    let statements =
        dialect(Engine::Mariadb, "10.11").enslave_statements(&SOURCE, Some("0-40001-17"));
    assert_eq!(
        statements,
        [
            "STOP SLAVE",
            "RESET SLAVE ALL",
            "SET GLOBAL gtid_slave_pos = '0-40001-17'",
            "CHANGE MASTER TO MASTER_HOST = '127.0.0.1', MASTER_PORT = 40001, MASTER_USER = 'replicator', MASTER_PASSWORD = '<replication-password>', MASTER_USE_GTID = slave_pos, MASTER_CONNECT_RETRY = 2",
            "SET GLOBAL read_only = ON",
            "START SLAVE",
        ]
    );
}

/// mysqldump (MySQL 8.0.26+): `--source-data` replaces `--master-data`;
/// `--set-gtid-purged=ON` writes SET @@GLOBAL.GTID_PURGED, which needs an
/// empty GTID history on the replica: `RESET MASTER` on 8.0, `RESET BINARY
/// LOGS AND GTIDS` from 8.2 (RESET MASTER is gone in 8.4).
#[test]
fn mysql_dumps_carry_gtids_and_the_replica_history_is_cleared_first() {
    let mysql_84 = dialect(Engine::Mysql, "8.4");
    let args = mysql_84.dump_args("shop");
    for arg in [
        "--single-transaction",
        "--source-data=2",
        "--set-gtid-purged=ON",
    ] {
        assert!(args.iter().any(|a| a == arg), "missing {arg}");
    }
    assert_eq!(args.last().map(String::as_str), Some("shop"));
    assert_eq!(mysql_84.before_restore(), ["RESET BINARY LOGS AND GTIDS"]);
    assert_eq!(
        dialect(Engine::Mysql, "8.0").before_restore(),
        ["RESET MASTER"]
    );
    // RESET BINARY LOGS AND GTIDS exists from 8.2.0, where RESET MASTER
    // is deprecated.
    for series in ["8.2", "8.3", "9.7"] {
        assert_eq!(
            dialect(Engine::Mysql, series).before_restore(),
            ["RESET BINARY LOGS AND GTIDS"]
        );
    }
    assert_eq!(
        dialect(Engine::Percona, "8.0").before_restore(),
        ["RESET MASTER"]
    );
    // MariaDB's dump records the position as a comment the replica is told.
    let mariadb = dialect(Engine::Mariadb, "10.11");
    assert_eq!(mariadb.before_restore(), ["RESET MASTER"]);
    assert!(mariadb.dump_args("shop").iter().any(|a| a == "--gtid"));
}

#[test]
fn the_gtid_position_is_read_from_a_mariadb_dump_and_not_needed_on_mysql() {
    let tail = "-- MASTER_LOG_FILE='binlog.000002', MASTER_LOG_POS=1234;\n\
                -- SET GLOBAL gtid_slave_pos='0-40001-17';\n-- Dump completed\n";
    assert_eq!(
        dialect(Engine::Mariadb, "10.11").gtid_position(tail),
        Some(Some("0-40001-17".to_string()))
    );
    assert_eq!(
        dialect(Engine::Mariadb, "10.11").gtid_position("-- Dump completed\n"),
        None
    );
    assert_eq!(dialect(Engine::Mysql, "8.4").gtid_position(""), Some(None));
}

/// MySQL 8.4 "RESET REPLICA" and `super_read_only`; MariaDB "RESET SLAVE".
#[test]
fn detaching_makes_the_server_writable() {
    assert_eq!(
        dialect(Engine::Mysql, "8.4").detach_statements(),
        [
            "STOP REPLICA",
            "RESET REPLICA ALL",
            "SET GLOBAL super_read_only = OFF",
            "SET GLOBAL read_only = OFF"
        ]
    );
    assert_eq!(
        dialect(Engine::Mariadb, "10.11").detach_statements(),
        [
            "STOP SLAVE",
            "RESET SLAVE ALL",
            "SET GLOBAL read_only = OFF"
        ]
    );
}

/// MySQL 8.4 "SHOW REPLICA STATUS" names its columns Replica_IO_Running,
/// Seconds_Behind_Source; MariaDB keeps Slave_IO_Running,
/// Seconds_Behind_Master. Either row reads the same.
#[test]
fn replica_status_reads_both_families_column_names() {
    let mysql_row = |column: &str| -> Option<String> {
        match column {
            "Replica_IO_Running" => Some("Yes".into()),
            "Replica_SQL_Running" => Some("No".into()),
            "Seconds_Behind_Source" => None,
            "Last_SQL_Error" => Some("Error 'Duplicate entry' on query".into()),
            "Last_IO_Error" => Some(String::new()),
            _ => None,
        }
    };
    assert_eq!(
        ReplicaStatus::from_columns(mysql_row),
        ReplicaStatus {
            io_running: true,
            sql_running: false,
            seconds_behind: None,
            last_error: Some("Error 'Duplicate entry' on query".into()),
            reconnecting: false,
        }
    );
    let mariadb_row = |column: &str| -> Option<String> {
        match column {
            "Slave_IO_Running" | "Slave_SQL_Running" => Some("Yes".into()),
            "Seconds_Behind_Master" => Some("3".into()),
            _ => None,
        }
    };
    assert_eq!(
        ReplicaStatus::from_columns(mariadb_row),
        ReplicaStatus {
            io_running: true,
            sql_running: true,
            seconds_behind: Some(3),
            last_error: None,
            reconnecting: false,
        }
    );
    // A replica whose master went away retries by itself (MariaDB 10.11's
    // row after its master was killed); a refused password does not.
    let retrying = |errno: &'static str| {
        move |column: &str| -> Option<String> {
            match column {
                "Slave_IO_Running" => Some("Connecting".into()),
                "Slave_SQL_Running" => Some("Yes".into()),
                "Last_IO_Errno" => Some(errno.into()),
                "Last_SQL_Errno" => Some("0".into()),
                "Last_IO_Error" => Some("error reconnecting to master 'replicator@127.0.0.1:24195' - retry-time: 60  maximum-retries: 100000  message: Can't connect to server on '127.0.0.1' (111 \"Connection refused\")".into()),
                _ => None,
            }
        }
    };
    let status = ReplicaStatus::from_columns(retrying("2003"));
    assert!(status.reconnecting && !status.io_running, "{status:?}");
    assert!(!ReplicaStatus::from_columns(retrying("1045")).reconnecting);
    assert_eq!(
        dialect(Engine::Mysql, "8.4").status_query(),
        "SHOW REPLICA STATUS"
    );
    assert_eq!(
        dialect(Engine::Mariadb, "10.11").status_query(),
        "SHOW SLAVE STATUS"
    );
}

#[test]
fn a_missing_mysql_names_where_to_get_it() {
    let mysql = dialect(Engine::Mysql, "8.4").availability();
    assert_eq!(mysql.debian_package, None);
    assert!(mysql.remedy.contains("repo.mysql.com"), "{}", mysql.remedy);
    let percona = dialect(Engine::Percona, "8.4").availability();
    assert!(percona.remedy.contains("percona-server-server"));
    assert_eq!(
        dialect(Engine::Mariadb, "10.11")
            .availability()
            .debian_package,
        Some("mariadb-server")
    );
    assert!(Dialect::new(Engine::Postgresql, "16").is_none());
}

/// What `mariadbd --version` and `mysqld --version` print, read as the
/// release series a group's `version` must match.
#[test]
fn the_installed_series_is_read_from_the_servers_own_words() {
    assert_eq!(
        installed_series(
            "/usr/sbin/mariadbd  Ver 10.11.19-MariaDB-0+deb12u1 for debian-linux-gnu on x86_64 (Debian 12)"
        ),
        Some((10, 11))
    );
    assert_eq!(
        installed_series(
            "/usr/sbin/mysqld  Ver 8.4.3 for Linux on x86_64 (MySQL Community Server - GPL)"
        ),
        Some((8, 4))
    );
    assert_eq!(installed_series("mysqld: unknown option"), None);
}

/// `xtrabackup_binlog_info` as mariadb-backup writes it (file, offset,
/// GTID position; the position absent while the master has logged no
/// GTID) and as Percona XtraBackup writes it for MySQL (a GTID set, broken
/// over lines after its commas). MariaDB Knowledge Base, "mariadb-backup
/// and BACKUP STAGE" / "Setting up a Replica with mariadb-backup"; Percona
/// XtraBackup 8.0, "How to set up a replica for replication in 6 simple
/// steps".
#[test]
fn a_physical_copys_position_is_read_and_set_as_each_family_takes_it() {
    let mariadb = dialect(Engine::Mariadb, "10.11");
    assert_eq!(
        mariadb.physical_copy_position("binlog.000002\t1234\t0-1-55\n"),
        Some("0-1-55".into())
    );
    assert_eq!(
        mariadb.physical_copy_position("binlog.000002\t1234\t0-1-55,1-2-7\n"),
        Some("0-1-55,1-2-7".into())
    );
    assert_eq!(
        mariadb.physical_copy_position("binlog.000001\t325\n"),
        Some(String::new()),
        "no GTID logged yet: the replica takes everything"
    );
    assert_eq!(mariadb.physical_copy_position("garbage"), None);
    assert_eq!(
        mariadb.physical_copy_position("binlog.000002\t1234\t0-1-55'; DROP TABLE x; --"),
        None,
        "only GTID characters reach a statement"
    );
    assert_eq!(
        mariadb.physical_position_statements("0-1-55"),
        vec!["SET GLOBAL gtid_slave_pos = '0-1-55'".to_string()]
    );

    let mysql = dialect(Engine::Mysql, "8.0");
    let set = "binlog.000003\t157\t3e11fa47-71ca-11e1-9e33-c80aa9429562:1-5,\n7e11fa47-71ca-11e1-9e33-c80aa9429562:1-3\n";
    assert_eq!(
        mysql.physical_copy_position(set),
        Some(
            "3e11fa47-71ca-11e1-9e33-c80aa9429562:1-5,7e11fa47-71ca-11e1-9e33-c80aa9429562:1-3"
                .into()
        )
    );
    assert_eq!(
        mysql.physical_position_statements("uuid-set"),
        vec![
            "RESET MASTER".to_string(),
            "SET GLOBAL gtid_purged = 'uuid-set'".to_string()
        ]
    );
    assert_eq!(
        dialect(Engine::Mysql, "8.4").physical_position_statements("x")[0],
        "RESET BINARY LOGS AND GTIDS"
    );
    assert_eq!(mysql.programs().physical_backup, "xtrabackup");
    assert_eq!(mariadb.programs().physical_backup, "mariadb-backup");
}

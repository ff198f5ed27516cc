//! The MySQL family's statements and tool arguments, for the members that
//! cannot run on this machine (MySQL 8, Percona Server 8) as well as
//! MariaDB, checked against each manual. Each assertion names the page it
//! was checked against; the snapshots show every statement for review.

use dbgroups_engines::mysql::dialect::{
    Accounts, ConfigPaths, Dialect, ReplicaStatus, Source, installed_series,
};
use dbgroups_manifest::Engine;

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

const SOURCE: Source<'static> = Source {
    host: "127.0.0.1",
    port: 40001,
    user: "replicator",
    password: "<replication-password>",
};

const ACCOUNTS: Accounts<'static> = Accounts {
    admin_password: "<admin-password>",
    username: "shop",
    password: "<app-password>",
    database: "shop",
    replication_user: "replicator",
    replication_password: "<replication-password>",
};

/// Everything one dialect would run, in order, as a reviewer reads it.
fn transcript(dialect: &Dialect) -> String {
    let programs = dialect.programs();
    let mut out = vec![
        format!("programs: {programs:?}"),
        format!("remedy when missing: {}", dialect.availability().remedy),
        "--- config".into(),
        dialect.config(&PATHS, 40002),
        format!("--- initialise: {:?}", dialect.install_args()),
        "--- accounts".into(),
    ];
    out.extend(dialect.account_statements(&ACCOUNTS));
    out.push(format!("--- dump: {:?}", dialect.dump_args("shop")));
    out.push("--- before restore".into());
    out.extend(dialect.before_restore());
    out.push(format!(
        "--- restore init command: {}",
        dialect.restore_init_command()
    ));
    out.push("--- enslave".into());
    out.extend(dialect.enslave_statements(&SOURCE, Some("0-40001-17")));
    out.push("--- detach".into());
    out.extend(dialect.detach_statements());
    out.push(format!("--- status: {}", dialect.status_query()));
    out.join("\n")
}

#[test]
fn every_statement_of_each_member_is_reviewed() {
    for (engine, version) in [
        (Engine::Mariadb, "10.11"),
        (Engine::Mysql, "8.0"),
        (Engine::Mysql, "8.4"),
        (Engine::Percona, "8.4"),
        (Engine::Mysql, "5.7"),
    ] {
        insta::assert_snapshot!(
            format!("{engine}_{}", version.replace('.', "_")),
            transcript(&dialect(engine, version))
        );
    }
}

/// MySQL 8.4 manual, 19.1.3.4 "Setting Up Replication Using GTIDs": the
/// source and replica need `gtid_mode=ON` and `enforce_gtid_consistency=ON`,
/// binary logging, and a unique `server_id`.
#[test]
fn mysql_8_servers_have_gtids_and_a_binary_log_from_their_first_start() {
    for engine in [Engine::Mysql, Engine::Percona] {
        let config = dialect(engine, "8.4").config(&PATHS, 40002);
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
    let config = dialect(Engine::Mariadb, "10.11").config(&PATHS, 40002);
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

//! The Redis engine, on the host it is given: a config file with
//! `requirepass`/`masterauth` and the append-only file on (`everysec`),
//! RDB snapshots for backups, `REPLICAOF` (and a
//! wait until the link is up and the first sync is done, because the
//! command returns before either), `REPLICAOF NO ONE`, `INFO replication`.

use std::path::{Path, PathBuf};

use crate::engine::Exposure;
use crate::error::EngineError;
use crate::host::{HostRef, Program, ServerStart};
use crate::local::wait_until;

pub const REDIS_SERVER: &str = "/usr/bin/redis-server";

/// How much of the server's log an error about its start or its link shows.
const LOG_LINES: usize = 5;

#[derive(Debug, Clone)]
pub struct RedisServer {
    /// The machine the server lives on.
    pub(crate) host: HostRef,
    pub(crate) name: String,
    pub(crate) port: u16,
    /// TLS and access, for a server on a host (see [`Exposure`]).
    pub(crate) exposure: Option<std::sync::Arc<Exposure>>,
}

/// `INFO replication`, the fields dbgroups reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedisReplication {
    /// `master` or `slave`.
    pub role: String,
    /// For a slave: `up` or `down`.
    pub master_link_status: Option<String>,
    pub master_sync_in_progress: bool,
    /// Seconds since the last interaction with the master.
    pub master_last_io_seconds_ago: Option<i64>,
    pub connected_slaves: usize,
    /// For a slave: how far into its master's replication stream it holds
    /// data (`slave_repl_offset`; Redis keeps the last value while the link
    /// is down).
    pub replica_offset: Option<u64>,
}

impl RedisServer {
    pub async fn new(host: &HostRef, name: &str, port: u16) -> Result<Self, EngineError> {
        if !host.is_file(Path::new(REDIS_SERVER)).await {
            return Err(EngineError::MissingBinary {
                program: "redis-server".into(),
                engine: "redis".into(),
                version: "7".into(),
                looked: REDIS_SERVER.into(),
                remedy: "install the Debian package redis-server".into(),
            });
        }
        Ok(Self {
            host: host.clone(),
            name: name.to_string(),
            port,
            exposure: None,
        })
    }

    /// The same server, reached beyond loopback as `exposure` says.
    pub fn exposed(mut self, exposure: Option<std::sync::Arc<Exposure>>) -> Self {
        self.exposure = exposure;
        self
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The port an earlier provision of this server chose, if any.
    pub async fn earlier_port(host: &HostRef, name: &str) -> Option<u16> {
        let config = host
            .read_text(&host.server_dir(name).join("redis.conf"))
            .await?;
        port_in_config(&config)
    }

    pub fn dir(&self) -> PathBuf {
        self.host.server_dir(&self.name)
    }

    fn data_dir(&self) -> PathBuf {
        self.dir().join("data")
    }

    pub(crate) fn config_file(&self) -> PathBuf {
        self.dir().join("redis.conf")
    }

    pub fn rdb_file(&self) -> PathBuf {
        self.data_dir().join("dump.rdb")
    }

    /// The config file (0600: it holds the passwords). A full sync waits
    /// one second, not Redis's default five, for more replicas to share
    /// it: the replicas one plan adds start following within that second. `master`, when
    /// given (with its password), makes the server a replica that stays one
    /// across restarts.
    async fn write_config(
        &self,
        password: &str,
        master: Option<(&RedisServer, &str)>,
    ) -> Result<(), EngineError> {
        self.host.private_dir(&self.dir()).await?;
        self.host.private_dir(&self.data_dir()).await?;
        // Durability is the AOF's (`appendonly`, fsync every second). RDB
        // save points are off: Redis's defaults would have a master fork
        // and write a snapshot now and then by itself, copy work that
        // managed backups promise to leave to the slave; a backup and a
        // full sync ask for their own snapshot.
        let mut config = format!(
            "# Written by dbgroups; changes here are overwritten.\n\
             bind {listen}\n\
             port {port}\n\
             protected-mode yes\n\
             daemonize yes\n\
             pidfile {dir}/redis.pid\n\
             logfile {dir}/redis.log\n\
             dir {data}\n\
             dbfilename dump.rdb\n\
             requirepass {password}\n\
             replica-read-only yes\n\
             repl-diskless-sync-delay 1\n\
             appendonly yes\n\
             appendfsync everysec\n\
             save \"\"\n",
            listen = self.host.listen_list().replace(',', " "),
            port = self.port,
            dir = self.dir().display(),
            data = self.data_dir().display(),
        );
        if let Some((master, master_password)) = master {
            config.push_str(&format!(
                "masterauth {master_password}\nreplicaof {} {}\n",
                master.host.dial_address(),
                master.port
            ));
        }
        config.push_str(&self.tls_settings(master.map(|(m, _)| m)).await?);
        self.host
            .write_private_file(&self.config_file(), config.as_bytes())
            .await
    }

    async fn connect(
        &self,
        password: &str,
    ) -> Result<redis::aio::MultiplexedConnection, EngineError> {
        let (address, port) = self.host.client_endpoint(self.port).await?;
        let redis = redis::RedisConnectionInfo {
            db: 0,
            username: None,
            password: Some(password.to_string()),
            protocol: redis::ProtocolVersion::RESP2,
        };
        let failed = |source| EngineError::Redis {
            port: self.port,
            source,
        };
        // Over TLS once it serves it, verified against its authority (the
        // certificate names the host's loopback, where the connection
        // arrives).
        let client = match self.authority_if_tls().await {
            Some(authority) => redis::Client::build_with_tls(
                redis::ConnectionInfo {
                    addr: redis::ConnectionAddr::TcpTls {
                        host: address,
                        port,
                        insecure: false,
                        tls_params: None,
                    },
                    redis,
                },
                redis::TlsCertificates {
                    client_tls: None,
                    root_cert: Some(authority.into_bytes()),
                },
            )
            .map_err(failed)?,
            None => redis::Client::open(redis::ConnectionInfo {
                addr: redis::ConnectionAddr::Tcp(address, port),
                redis,
            })
            .map_err(failed)?,
        };
        client
            .get_multiplexed_async_connection()
            .await
            .map_err(|source| EngineError::Redis {
                port: self.port,
                source,
            })
    }

    /// A connection for the application (and tests).
    pub async fn client(
        &self,
        password: &str,
    ) -> Result<redis::aio::MultiplexedConnection, EngineError> {
        self.connect(password).await
    }

    pub(crate) async fn query<T: redis::FromRedisValue>(
        &self,
        password: &str,
        command: &redis::Cmd,
    ) -> Result<T, EngineError> {
        let mut connection = self.connect(password).await?;
        command
            .query_async(&mut connection)
            .await
            .map_err(|source| EngineError::Redis {
                port: self.port,
                source,
            })
    }

    /// Whether our server answers on its port. Bounded: whatever else holds
    /// the port and never answers (another program that took it) is not
    /// our server, and must not hang the caller.
    pub async fn is_running(&self, password: &str) -> bool {
        let command = redis::cmd("PING");
        let ping = self.query::<String>(password, &command);
        matches!(
            tokio::time::timeout(std::time::Duration::from_secs(5), ping).await,
            Ok(Ok(_))
        )
    }

    /// Writes the configuration (a master's; always, so a config left by an
    /// interrupted run is corrected) and starts the server.
    pub async fn ensure_provisioned(&self, password: &str) -> Result<(), EngineError> {
        self.write_config(password, None).await?;
        self.ensure_running(password).await
    }

    /// The append-only file's directory (Redis 7's multi-part AOF).
    fn aof_dir(&self) -> PathBuf {
        self.data_dir().join("appendonlydir")
    }

    /// Starts the server unless it runs, and makes sure its append-only
    /// file is on.
    pub async fn ensure_running(&self, password: &str) -> Result<(), EngineError> {
        if !self.is_running(password).await {
            self.start(password).await?;
        }
        self.ensure_append_only(password).await
    }

    async fn start(&self, password: &str) -> Result<(), EngineError> {
        let mut start = Program::new(&self.dir(), Path::new(REDIS_SERVER));
        start.arg(self.config_file());
        // With `appendonly yes` and no AOF yet, Redis starts empty and
        // ignores dump.rdb (measured on 7.0): a restored snapshot, or the
        // data of a server from before AOF was on, would be lost. So such
        // a server starts from its RDB, and the AOF is switched on live
        // (which writes it from the loaded data).
        let first_start = !self.host.exists(&self.aof_dir()).await;
        if first_start {
            start.args(["--appendonly", "no"]);
        }
        let log = self.dir().join("redis.log");
        let logged_before = self.host.file_len(&log).await;
        // `daemonize yes`: the program returns once the server is forked
        // off. Only its steady start (the config alone) may become a
        // systemd unit: a unit that kept `--appendonly no` would start it
        // again from its RDB alone, past its AOF.
        if !first_start {
            let daemon = ServerStart::Daemonizes {
                pid_file: self.dir().join("redis.pid"),
            };
            self.host
                .start_server(&self.name, &start, daemon, "redis-server")
                .await?;
        } else {
            self.host.run(&start, "redis-server").await?;
        }
        let answering = wait_until(&format!("{} to answer", self.name), 60, || async {
            // A daemonised server that cannot bind its port says so in its
            // log and exits: fail at once, with its words, rather than wait.
            let logged = self
                .host
                .read_file(&log)
                .await
                .ok()
                .flatten()
                .unwrap_or_default();
            let since_start = String::from_utf8_lossy(
                logged
                    .get(usize::try_from(logged_before).unwrap_or(0)..)
                    .unwrap_or_default(),
            );
            if since_start.contains("Address already in use") {
                return Err(EngineError::Command {
                    command: "redis-server".into(),
                    status: "could not listen".into(),
                    stderr: self.host.tail(&log, LOG_LINES).await,
                });
            }
            Ok(self.is_running(password).await)
        })
        .await;
        match answering {
            Err(EngineError::Timeout { .. }) => Err(EngineError::Command {
                command: "redis-server".into(),
                status: "not answering after 60 s".into(),
                stderr: self.host.tail(&log, LOG_LINES).await,
            }),
            other => other,
        }
    }

    /// `appendonly yes` with `appendfsync everysec`, switched on live when
    /// off, and waited for until its first rewrite is done: from then on a
    /// crash loses at most about a second of acknowledged writes.
    async fn ensure_append_only(&self, password: &str) -> Result<(), EngineError> {
        let info = self.persistence(password).await?;
        if info_field(&info, "aof_enabled").as_deref() == Some("1") {
            return Ok(());
        }
        for (name, value) in [("appendfsync", "everysec"), ("appendonly", "yes")] {
            self.query::<String>(
                password,
                redis::cmd("CONFIG").arg("SET").arg(name).arg(value),
            )
            .await?;
        }
        wait_until(&format!("the AOF of {}", self.name), 600, || async {
            let info = self.persistence(password).await?;
            let done = info_field(&info, "aof_enabled").as_deref() == Some("1")
                && info_field(&info, "aof_rewrite_in_progress").as_deref() == Some("0")
                && info_field(&info, "aof_rewrite_scheduled").as_deref() == Some("0");
            if done && info_field(&info, "aof_last_bgrewrite_status").as_deref() != Some("ok") {
                return Err(EngineError::Command {
                    command: "CONFIG SET appendonly yes".into(),
                    status: "failed".into(),
                    stderr: "aof_last_bgrewrite_status is not ok (see redis.log)".into(),
                });
            }
            Ok(done)
        })
        .await
    }

    pub async fn ensure_stopped(&self, password: &str) -> Result<(), EngineError> {
        if !self.is_running(password).await {
            return Ok(());
        }
        // SHUTDOWN closes the connection instead of answering. A server
        // that refuses it for now (its save failed, or it was busy loading
        // a full sync's data) is asked again: one refusal must not leave it
        // running for the whole wait. The log's last lines say why when it
        // never stops.
        let what = format!("shutdown of {}", self.name);
        for _ in 0..6 {
            let mut command = redis::cmd("SHUTDOWN");
            command.arg("SAVE");
            let shutdown = self.query::<()>(password, &command);
            let _ = tokio::time::timeout(std::time::Duration::from_secs(5), shutdown).await;
            let stopped =
                wait_until(&what, 10, || async { Ok(!self.is_running(password).await) }).await;
            match stopped {
                Err(EngineError::Timeout { .. }) => continue,
                other => return other,
            }
        }
        let log = self.host.tail(&self.dir().join("redis.log"), 5).await;
        Err(EngineError::Command {
            command: what,
            status: "did not happen within 60 s".into(),
            stderr: log,
        })
    }

    /// An RDB snapshot (BGSAVE, waited for), copied into `staging`.
    pub async fn backup_to(&self, staging: &Path, password: &str) -> Result<(), EngineError> {
        let target = staging.join("dump.rdb");
        if self.host.is_file(&target).await {
            return Ok(());
        }
        // `rdb_saves` counts snapshots since start (Redis 7); LASTSAVE has a
        // one-second resolution, so a snapshot finished within the second it
        // started would look like no snapshot at all.
        let saves_before = info_field(&self.persistence(password).await?, "rdb_saves")
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0);
        // SCHEDULE: while an AOF rewrite runs (a replica starts one right
        // after its full sync) a plain BGSAVE is refused and would never
        // happen; scheduled, it starts when the rewrite ends. A save
        // already running counts: BGSAVE then refuses, and we wait for it.
        let mut bgsave = redis::cmd("BGSAVE");
        bgsave.arg("SCHEDULE");
        if let Err(error) = self.query::<String>(password, &bgsave).await
            && !error.to_string().contains("already in progress")
        {
            return Err(error);
        }
        wait_until(&format!("BGSAVE on {}", self.name), 600, || async {
            let info = self.persistence(password).await?;
            let in_progress = info_field(&info, "rdb_bgsave_in_progress").as_deref() != Some("0");
            let saves = info_field(&info, "rdb_saves")
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0);
            if in_progress || saves <= saves_before {
                return Ok(false);
            }
            if info_field(&info, "rdb_last_bgsave_status").as_deref() != Some("ok") {
                return Err(EngineError::Command {
                    command: "BGSAVE".into(),
                    status: "failed".into(),
                    stderr: "rdb_last_bgsave_status is not ok (see redis.log)".into(),
                });
            }
            Ok(true)
        })
        .await?;
        self.host.private_dir(staging).await?;
        let partial = staging.join("dump.rdb.partial");
        let mut copy = Program::new(&self.dir(), Path::new("/bin/cp"));
        copy.arg(self.rdb_file()).arg(&partial);
        self.host.run_stoppable(&copy, "cp dump.rdb").await?;
        self.host.rename(&partial, &target).await
    }

    /// An RDB snapshot of this server taken on `into` (another host, where
    /// it is restored) by that host's `redis-cli --rdb`, which asks this
    /// server for one over the replication protocol: the data goes from
    /// this host to that one and never through the machine running
    /// dbgroups. The password reaches `redis-cli` on its standard input
    /// (`--askpass`), from a 0600 file in the staging entry removed after:
    /// never on its command line or in its environment.
    pub async fn backup_to_host(
        &self,
        into: &HostRef,
        staging: &Path,
        password: &str,
    ) -> Result<(), EngineError> {
        let target = staging.join("dump.rdb");
        if into.is_file(&target).await {
            return Ok(());
        }
        let cli =
            into.find_program(&["redis-cli"])
                .await
                .ok_or_else(|| EngineError::MissingBinary {
                    program: "redis-cli".into(),
                    engine: "redis".into(),
                    version: "7".into(),
                    looked: format!("PATH on {}", into.name()),
                    remedy: "install the Debian package redis-tools".into(),
                })?;
        into.private_dir(staging).await?;
        let secret = staging.join("auth");
        into.write_private_file(&secret, format!("{password}\n").as_bytes())
            .await?;
        let partial = staging.join("dump.rdb.partial");
        let mut fetch = Program::new(staging, &cli);
        // Over TLS, verified against this server's authority, written
        // beside the snapshot.
        if let Some(authority) = self.authority_if_tls().await {
            let file = staging.join("authority.crt");
            into.write_private_file(&file, authority.as_bytes()).await?;
            fetch.arg("--tls").arg("--cacert").arg(&file);
        }
        fetch
            .arg("-h")
            .arg(self.host.dial_address())
            .arg("-p")
            .arg(self.port.to_string())
            .arg("--askpass")
            .arg("--rdb")
            .arg(&partial)
            .stdin_from(&secret);
        let result = into
            .run_stoppable(&fetch, &format!("redis-cli --rdb on {}", into.name()))
            .await;
        let _ = into.remove_file(&secret).await;
        result?;
        into.rename(&partial, &target).await
    }

    /// Replaces this server's data with an RDB snapshot (stopped while the
    /// file is swapped, loaded on start).
    /// `take`: this restore is the snapshot's last reader, so the file is
    /// moved into place (a rename) rather than copied.
    pub async fn restore_from(
        &self,
        staging: &Path,
        password: &str,
        take: bool,
    ) -> Result<(), EngineError> {
        self.ensure_stopped(password).await?;
        if !self.host.is_file(&self.config_file()).await {
            self.write_config(password, None).await?;
        }
        // The AOF, when there is one, is what Redis loads at start: it
        // goes, so the snapshot is loaded (and a new AOF written from it).
        self.host.remove_dir(&self.aof_dir()).await?;
        let snapshot = staging.join("dump.rdb");
        let moved = take && self.host.rename(&snapshot, &self.rdb_file()).await.is_ok();
        if !moved {
            let mut copy = Program::new(&self.dir(), Path::new("/bin/cp"));
            copy.arg(&snapshot).arg(self.rdb_file());
            self.host.run_stoppable(&copy, "cp dump.rdb").await?;
        }
        self.ensure_running(password).await
    }

    /// Follows `master` and waits until the link is up and the first sync is
    /// done (REPLICAOF returns before either). Recorded in the config file
    /// so that a restart keeps following.
    pub async fn enslave_to(
        &self,
        master: &RedisServer,
        password: &str,
        master_password: &str,
    ) -> Result<(), EngineError> {
        self.write_config(password, Some((master, master_password)))
            .await?;
        // The authorities it trusts now include the master's (another
        // application's, across them), read before it connects.
        if self.authority_if_tls().await.is_some() {
            self.query::<String>(
                password,
                redis::cmd("CONFIG")
                    .arg("SET")
                    .arg("tls-ca-cert-file")
                    .arg(self.trusted_file().display().to_string()),
            )
            .await?;
        }
        self.query::<String>(
            password,
            redis::cmd("CONFIG")
                .arg("SET")
                .arg("masterauth")
                .arg(master_password),
        )
        .await?;
        self.query::<String>(
            password,
            redis::cmd("REPLICAOF")
                .arg(master.host.dial_address())
                .arg(master.port),
        )
        .await?;
        self.wait_linked(password).await
    }

    /// Starts the server; a replica's start is done once its link to the
    /// master is up and its sync finished.
    pub async fn ensure_running_and_linked(&self, password: &str) -> Result<(), EngineError> {
        self.ensure_running(password).await?;
        if self.replication(password).await?.role == "slave" {
            self.wait_linked(password).await?;
        }
        Ok(())
    }

    async fn wait_linked(&self, password: &str) -> Result<(), EngineError> {
        let linked = wait_until(
            &format!("replication link of {}", self.name),
            600,
            || async {
                let status = self.replication(password).await?;
                Ok(status.master_link_status.as_deref() == Some("up")
                    && !status.master_sync_in_progress)
            },
        )
        .await;
        match linked {
            // The log says why a link stays down (a refused password, say).
            Err(EngineError::Timeout { what, .. }) => Err(EngineError::Command {
                command: what,
                status: "the link to the master is not up after 600 s".into(),
                stderr: self
                    .host
                    .tail(&self.dir().join("redis.log"), LOG_LINES)
                    .await,
            }),
            other => other,
        }
    }

    /// Stops following; the server keeps its data and accepts writes.
    pub async fn detach(&self, password: &str) -> Result<(), EngineError> {
        self.query::<String>(password, redis::cmd("REPLICAOF").arg("NO").arg("ONE"))
            .await?;
        self.write_config(password, None).await
    }

    /// The bytes a snapshot of this server takes: the dataset in memory (an
    /// RDB is usually smaller, so this errs on the safe side).
    pub async fn data_size(&self, password: &str) -> Result<u64, EngineError> {
        let info: String = self
            .query(password, redis::cmd("INFO").arg("memory"))
            .await?;
        Ok(info_field(&info, "used_memory_dataset")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0))
    }

    async fn persistence(&self, password: &str) -> Result<String, EngineError> {
        self.query(password, redis::cmd("INFO").arg("persistence"))
            .await
    }

    pub async fn replication(&self, password: &str) -> Result<RedisReplication, EngineError> {
        let info: String = self
            .query(password, redis::cmd("INFO").arg("replication"))
            .await?;
        Ok(parse_replication(&info))
    }

    /// Keys per database (`INFO keyspace`: `db0:keys=3,expires=0,…`).
    pub async fn keyspace(
        &self,
        password: &str,
    ) -> Result<std::collections::BTreeMap<String, u64>, EngineError> {
        let info: String = self
            .query(password, redis::cmd("INFO").arg("keyspace"))
            .await?;
        Ok(info
            .lines()
            .filter_map(|line| {
                let (db, fields) = line.trim_end().split_once(':')?;
                let keys = fields.split(',').find_map(|f| f.strip_prefix("keys="))?;
                Some((db.to_string(), keys.parse().ok()?))
            })
            .collect())
    }

    /// The replication offset this server has reached (`master_repl_offset`).
    pub async fn replication_offset(&self, password: &str) -> Option<u64> {
        let info: String = self
            .query(password, redis::cmd("INFO").arg("replication"))
            .await
            .ok()?;
        info_field(&info, "master_repl_offset")?.parse().ok()
    }
}

/// The port a config file written by [`RedisServer`] names (`port 6380`).
pub use crate::local::port_in_config;

/// One `name:value` field of an `INFO` section.
fn info_field(info: &str, name: &str) -> Option<String> {
    info.lines()
        .find_map(|line| {
            line.trim_end()
                .strip_prefix(name)
                .and_then(|rest| rest.strip_prefix(':'))
        })
        .map(str::to_string)
}

/// Reads the fields of `INFO replication` dbgroups uses.
pub fn parse_replication(info: &str) -> RedisReplication {
    let field = |name: &str| info_field(info, name);
    RedisReplication {
        role: field("role").unwrap_or_default(),
        master_link_status: field("master_link_status"),
        master_sync_in_progress: field("master_sync_in_progress").as_deref() == Some("1"),
        master_last_io_seconds_ago: field("master_last_io_seconds_ago")
            .and_then(|v| v.parse().ok()),
        connected_slaves: field("connected_slaves")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0),
        replica_offset: field("slave_repl_offset").and_then(|v| v.parse().ok()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_port_of_an_earlier_config_is_read_back() {
        let config = "# Written by dbgroups; changes here are overwritten.\nbind 192.0.2.10\nport 6380\nprotected-mode yes\n";
        assert_eq!(port_in_config(config), Some(6380));
        assert_eq!(port_in_config("bind 192.0.2.10\n"), None);
    }

    #[test]
    fn parses_info_replication_of_a_slave() {
        let info = "# Replication\r\nrole:slave\r\nmaster_host:192.0.2.10\r\nmaster_link_status:up\r\nmaster_last_io_seconds_ago:1\r\nmaster_sync_in_progress:0\r\nslave_read_repl_offset:4812\r\nslave_repl_offset:4812\r\nconnected_slaves:0\r\n";
        assert_eq!(
            parse_replication(info),
            RedisReplication {
                role: "slave".into(),
                master_link_status: Some("up".into()),
                master_sync_in_progress: false,
                master_last_io_seconds_ago: Some(1),
                connected_slaves: 0,
                replica_offset: Some(4812),
            }
        );
    }
}

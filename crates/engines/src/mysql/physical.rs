//! Physical copies of a MySQL-family server: its data files copied while
//! it runs (`mariadb-backup --backup`; Percona XtraBackup for MySQL and
//! Percona Server, written to its manual), prepared (the copy's redo log
//! applied, so the files are consistent), and put in place of a stopped
//! replica's data directory. The copy ends at a GTID position, which the
//! tool writes to `xtrabackup_binlog_info`; the replica is set to it
//! before it follows its master. Much faster than a dump and a load: no
//! SQL is parsed, and no index is rebuilt.
//!
//! Only between servers of one group (their accounts and passwords are
//! the same, and a copy of the files brings the master's), and only on one
//! host: a copy to another host is a stream this release does not build,
//! so the planner takes a dump there (`rules::seed_backup`).

use std::path::{Path, PathBuf};

use super::{MysqlServer, find_engine_program, program_name};
use crate::error::EngineError;
use crate::host::Program;

/// Where the tool writes the binary log position and GTID the copy ends
/// at: `xtrabackup_binlog_info` (Percona XtraBackup, and mariadb-backup
/// before MariaDB 11.1), `mariadb_backup_binlog_info` (mariadb-backup from
/// 11.1, MDEV-18931).
const BINLOG_INFO: [&str; 2] = ["mariadb_backup_binlog_info", "xtrabackup_binlog_info"];

/// dbgroups' own mark in a prepared copy, written last: the copy is whole.
/// It travels with the copy into the replica's data directory and is
/// removed there once the replica is set to the copy's position, so a
/// restore run again knows how far the one before it got.
const COPY_MARK: &str = "dbgroups-physical-copy";

/// The prepared copy in a staging entry.
fn copy_dir(staging: &Path) -> PathBuf {
    staging.join("data")
}

impl MysqlServer {
    /// Whether a staging entry holds a finished, prepared copy (it is
    /// renamed into place only once prepared).
    pub fn physical_copy_marker(staging: &Path) -> PathBuf {
        copy_dir(staging).join(COPY_MARK)
    }

    async fn physical_tool(&self) -> Result<PathBuf, EngineError> {
        let version = format!("{}.{}", self.dialect.series.0, self.dialect.series.1);
        let program = self.dialect.programs().physical_backup;
        find_engine_program(&self.host, &self.dialect, &version, program).await
    }

    /// A defaults file for the backup tool: root over the socket. The tool
    /// reads only this file (`--defaults-file`), so no option file of the
    /// host's (`/etc/mysql/my.cnf`) changes what it does.
    async fn physical_defaults(&self, admin_password: &str) -> Result<PathBuf, EngineError> {
        let path = self.dir().join("backup.cnf");
        let login = format!(
            "user = root\npassword = {admin_password}\nsocket = {}\n",
            self.socket().display()
        );
        let text = format!("[client]\n{login}[mariadb-backup]\n{login}[xtrabackup]\n{login}");
        self.host.write_private_file(&path, text.as_bytes()).await?;
        Ok(path)
    }

    /// A prepared physical copy of this server in `staging/data` on its own
    /// host. Done again after a crash, it keeps a finished copy and starts
    /// an unfinished one over.
    pub async fn backup_files_to(
        &self,
        staging: &Path,
        admin_password: &str,
    ) -> Result<(), EngineError> {
        if self
            .host
            .is_file(&Self::physical_copy_marker(staging))
            .await
        {
            return Ok(());
        }
        self.host.private_dir(staging).await?;
        let partial = staging.join("data.partial");
        // An interrupted attempt's tool may still write there.
        self.host.stop_programs_naming(&partial).await;
        self.host.remove_dir(&partial).await?;
        let tool = self.physical_tool().await?;
        let shown = program_name(&tool);
        let defaults = self.physical_defaults(admin_password).await?;
        let mut backup = Program::new(&self.dir(), &tool);
        backup
            .arg(format!("--defaults-file={}", defaults.display()))
            .arg("--backup")
            .arg(format!("--datadir={}", self.data_dir().display()))
            .arg(format!("--target-dir={}", partial.display()));
        let taken = self
            .host
            .run_stoppable(&backup, &format!("{shown} --backup"))
            .await;
        let _ = self.host.remove_file(&defaults).await;
        taken?;
        let mut prepare = Program::new(&self.dir(), &tool);
        prepare
            .arg("--no-defaults")
            .arg("--prepare")
            .arg(format!("--target-dir={}", partial.display()));
        self.host
            .run_stoppable(&prepare, &format!("{shown} --prepare"))
            .await?;
        self.host
            .write_private_file(&partial.join(COPY_MARK), b"")
            .await?;
        self.host.rename(&partial, &copy_dir(staging)).await
    }

    /// The bytes a physical copy reads: the whole data directory.
    pub async fn data_files_size(&self) -> u64 {
        self.host.size_of(&self.data_dir()).await
    }

    /// Replaces this server's data with the prepared copy in `staging`
    /// (moved when `take`, else copied), starts it, and sets it to the
    /// copy's GTID position for its enslave. Done again after a crash, a
    /// copy already in place is kept and the rest finished; a restore that
    /// finished before is not done twice.
    pub async fn restore_files(
        &self,
        staging: &Path,
        take: bool,
        admin_password: &str,
    ) -> Result<(), EngineError> {
        let copy = copy_dir(staging);
        let data = self.data_dir();
        let placed = self.host.is_file(&data.join(COPY_MARK)).await;
        if !placed {
            if !self.host.is_file(&copy.join(COPY_MARK)).await {
                return Err(EngineError::Command {
                    command: "restore".into(),
                    status: "refused".into(),
                    stderr: format!(
                        "no finished physical copy in {} and none in place in {}",
                        copy.display(),
                        data.display()
                    ),
                });
            }
            self.replace_data(&copy, take, admin_password).await?;
        }
        // The copy holds the master's accounts: the group's own, with the
        // same passwords, so root logs in as before.
        self.ensure_running(admin_password).await?;
        if self.host.is_file(&data.join(COPY_MARK)).await {
            let position = self.copy_position(&data).await?;
            self.root_query(
                admin_password,
                &self.dialect.physical_position_statements(&position),
            )
            .await?;
            // Read once: a later enslave (a new master) must not set the
            // replica back to where the copy ended. The mark goes last.
            for name in BINLOG_INFO {
                let _ = self.host.remove_file(&data.join(name)).await;
            }
            self.host.remove_file(&data.join(COPY_MARK)).await?;
        }
        Ok(())
    }

    /// The stopped server's data directory becomes `copy`. Whatever still
    /// runs on this server's files (its own server starting, a copy an
    /// interrupted attempt left) is stopped first: nothing may write into
    /// the directory being replaced.
    async fn replace_data(
        &self,
        copy: &Path,
        take: bool,
        admin_password: &str,
    ) -> Result<(), EngineError> {
        let data = self.data_dir();
        self.ensure_stopped(admin_password).await?;
        // With the trailing slash: this server's directory, not another
        // whose name begins with this one's.
        self.host.stop_programs_naming(&self.dir().join("")).await;
        self.host.remove_dir(&data).await?;
        let moved = take && self.host.rename(copy, &data).await.is_ok();
        if !moved {
            let mut cp = Program::new(&self.dir(), Path::new("cp"));
            cp.args(["--archive", "--reflink=auto"])
                .arg(copy)
                .arg(&data);
            self.host.run_stoppable(&cp, "cp --archive").await?;
        }
        // MySQL names each server by the UUID in auto.cnf: a copied one
        // would make the replica its master's twin, which MySQL refuses to
        // replicate between. A new one is made at start.
        let _ = self.host.remove_file(&data.join("auto.cnf")).await;
        Ok(())
    }

    /// The GTID position the copy in `data` ends at.
    async fn copy_position(&self, data: &Path) -> Result<String, EngineError> {
        for name in BINLOG_INFO {
            if let Some(text) = self.host.read_text(&data.join(name)).await {
                return self.dialect.physical_copy_position(&text).ok_or_else(|| {
                    EngineError::Command {
                        command: name.into(),
                        status: "incomplete".into(),
                        stderr: format!("no GTID position in \"{}\"", text.trim()),
                    }
                });
            }
        }
        Err(EngineError::Command {
            command: "restore".into(),
            status: "incomplete".into(),
            stderr: format!(
                "the copy names no binary log position ({} missing)",
                BINLOG_INFO.join(" and ")
            ),
        })
    }
}

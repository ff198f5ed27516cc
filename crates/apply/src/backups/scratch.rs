//! A scratch server built from a managed backup on the store's host:
//! `backup verify` starts one to judge the backup, and an import from a
//! managed backup starts one when the backup is not the kind of copy the
//! import restores (PostgreSQL's managed backups are data files; an import
//! restores a dump). Reached by dbgroups over loopback only, and removed
//! with its unpacked copy whatever happened.

use std::path::{Path, PathBuf};

use dbgroups_engines::HostRef;
use dbgroups_engines::engine::{DatabaseEngine, GroupAccess, Operation, ServerRef, Surroundings};
use dbgroups_state::{BackupRecord, ManagedBackup};

pub(super) struct Scratch<'a> {
    engine: &'a dyn DatabaseEngine,
    access: &'a GroupAccess,
    pub(super) server: ServerRef,
    unpacked: PathBuf,
}

impl<'a> Scratch<'a> {
    /// A scratch server named `name` for `record` on `host`, unpacked at
    /// `unpacked`: a port is chosen, nothing is built yet.
    pub(super) async fn new(
        engine: &'a dyn DatabaseEngine,
        host: &HostRef,
        name: String,
        managed: &ManagedBackup,
        access: &'a GroupAccess,
        unpacked: PathBuf,
    ) -> Result<Self, String> {
        // One an interrupted run left under this name goes first: it would
        // hold the directory, and perhaps a port, of the new one.
        clear(host, &name, &unpacked).await;
        let port = host
            .choose_port(engine.default_port())
            .await
            .map_err(|e| format!("no port for the scratch server: {e}"))?;
        Ok(Self {
            engine,
            access,
            server: ServerRef {
                host: host.clone(),
                name,
                engine: managed.engine,
                version: managed.version.clone(),
                port,
                exposure: None,
            },
            unpacked,
        })
    }

    pub(super) fn engine(&self) -> &'a dyn DatabaseEngine {
        self.engine
    }

    pub(super) fn access(&self, operation: Operation) -> GroupAccess {
        self.access.only(self.engine.secrets_for(operation))
    }

    /// Unpacks `record`, builds the server from it and starts it.
    pub(super) async fn restore(&self, record: &BackupRecord) -> Result<(), String> {
        let host = &self.server.host;
        let copy = self.engine.managed_copy().map_err(|e| e.to_string())?;
        let _ = host.remove_dir(&self.unpacked).await;
        host.unpack(Path::new(&record.path), &self.unpacked)
            .await
            .map_err(|e| format!("it does not unpack: {e}"))?;
        self.engine
            .provision(&self.server, &self.access(Operation::Provision), true)
            .await
            .map_err(|e| format!("the scratch server did not start: {e}"))?;
        self.engine
            .restore(
                &self.server,
                &self.access(Operation::Restore),
                &self.unpacked,
                copy,
                true,
                &self.access.database,
            )
            .await
            .map_err(|e| format!("it does not restore: {e}"))?;
        self.engine
            .start(
                &self.server,
                &self.access(Operation::Start),
                &Surroundings::default(),
            )
            .await
            .map_err(|e| format!("the restored server does not start: {e}"))
    }

    /// The server, its directory, its record on the host and the unpacked
    /// copy go; best effort, as a teardown.
    pub(super) async fn remove(self) {
        let host = &self.server.host;
        let _ = self
            .engine
            .remove(
                &self.server,
                &self.access(Operation::Remove),
                &Surroundings::default(),
            )
            .await;
        clear(host, &self.server.name, &self.unpacked).await;
    }
}

/// Whatever a scratch server named `name` left on `host`, by the host's
/// means alone (its port and state are unknown): its service record, any
/// process on its files, its directory and its unpacked copy.
async fn clear(host: &HostRef, name: &str, unpacked: &Path) {
    let dir = host.server_dir(name);
    let _ = host.forget_server(name).await;
    // With the trailing slash: this directory, not another whose name
    // begins with this one's.
    host.stop_programs_naming(&dir.join("")).await;
    let _ = host.remove_dir(&dir).await;
    let _ = host.remove_dir(unpacked).await;
}

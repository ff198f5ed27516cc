//! `import_from: { group, backup: latest | ID }`: the managed backup an
//! import names, judged from the source's recorded backups (the state:
//! no I/O). A backup that is not recorded, never verified or failed its
//! verification is refused with the command that fixes it. Restoring an
//! import from a managed backup is not built yet (docs/backups.md), so a
//! verified one is refused too, naming it, its time and size, rather than
//! silently taking a fresh backup instead.

use dbgroups_manifest::{BackupChoice, DbType};
use dbgroups_state::{AppState, BackupRecord, SourceRef, Verification};

use super::Differ;

impl Differ<'_> {
    /// Why the import's managed backup cannot be used, and what to do.
    pub(super) fn managed_import_problem(
        &self,
        db_type: DbType,
        source: &SourceRef,
        choice: &BackupChoice,
    ) -> (String, String) {
        let state: Option<&AppState> = if source.application == self.application {
            self.input.state
        } else {
            self.input.other_applications.get(&source.application)
        };
        let group = format!("{db_type}.{}", source.group);
        let mut records: Vec<&BackupRecord> = state
            .into_iter()
            .flat_map(|s| s.backups.iter())
            .filter(|r| r.group == group && r.managed.is_some())
            .collect();
        records.sort_by(|a, b| b.taken_at.cmp(&a.taken_at).then(b.id.cmp(&a.id)));
        let verified = |r: &&&BackupRecord| {
            r.managed
                .as_ref()
                .is_some_and(|m| matches!(m.verification, Verification::Passed { .. }))
        };
        let label = source.label(db_type);
        let chosen = match choice {
            BackupChoice::Latest => records.iter().find(|r| verified(r)).or(records.first()),
            BackupChoice::Id(id) => records.iter().find(|r| &r.id == id),
        };
        let Some(record) = chosen else {
            return (
                match choice {
                    BackupChoice::Latest => format!("{label} has no recorded managed backup"),
                    BackupChoice::Id(id) => {
                        format!("{label} has no recorded managed backup {id}")
                    }
                },
                format!(
                    "run `dbgroups backup run --group {group} --verify` in {} (or see `dbgroups backup list`)",
                    source.application
                ),
            );
        };
        let described = format!(
            "managed backup {} of {label} (taken {}, {:.1} MiB, from {})",
            record.id,
            record.taken_at,
            record.size_bytes as f64 / (1024.0 * 1024.0),
            record.server
        );
        match record.managed.as_ref().map(|m| &m.verification) {
            Some(Verification::Passed { .. }) => (
                format!("{described} is verified, but restoring an import from a managed backup is not built yet"),
                "remove `backup:` from import_from to import from a fresh backup of the source's master".into(),
            ),
            Some(Verification::Failed { reason, .. }) => (
                format!("{described} failed verification: {reason}"),
                "name another backup (`dbgroups backup list`), or take one with `dbgroups backup run --verify`".into(),
            ),
            _ => (
                format!("{described} was never verified"),
                format!("run `dbgroups backup verify {}` first", record.id),
            ),
        }
    }
}

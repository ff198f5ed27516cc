//! `import_from: { group, backup: latest | ID }`: the managed backup an
//! import restores instead of taking a new backup of its source, judged
//! from the source's recorded backups (the state: no I/O). A backup that
//! is not recorded, never verified or failed its verification is refused
//! with the command that fixes it; so is one that cannot be restored where
//! the group is built (another engine or version than the group's, or a
//! store on another host than the group's master: copying it there would
//! pass the data through this machine).

use dbgroups_manifest::{BackupChoice, DbType, Engine};
use dbgroups_state::{AppState, BackupRecord, SourceRef, Verification};

use super::Differ;
use crate::change::ManagedSeed;

/// The new group an import from a managed backup builds: where its master
/// runs and what it is.
pub(super) struct ImportTarget<'t> {
    pub engine: Engine,
    pub version: &'t str,
    pub master_host: String,
}

impl Differ<'_> {
    /// The managed backup the import restores, or why it cannot, and what
    /// to do.
    pub(super) fn managed_import(
        &self,
        db_type: DbType,
        source: &SourceRef,
        choice: &BackupChoice,
        target: &ImportTarget<'_>,
    ) -> Result<ManagedSeed, (String, String)> {
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
            return Err((
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
            ));
        };
        let seed = self.managed_seed(record, &source.application);
        let described = format!("{label}'s {seed}");
        let Some(managed) = record.managed.as_ref() else {
            return Err((
                format!("{described} is not a managed backup"),
                "name a managed backup (`dbgroups backup list`)".into(),
            ));
        };
        match &managed.verification {
            Verification::Passed { .. } => {}
            Verification::Failed { reason, .. } => {
                return Err((
                    format!("{described} failed verification: {reason}"),
                    "name another backup (`dbgroups backup list`), or take one with `dbgroups backup run --verify`".into(),
                ));
            }
            _ => {
                return Err((
                    format!("{described} was never verified"),
                    format!("run `dbgroups backup verify {}` first", record.id),
                ));
            }
        }
        if managed.engine != target.engine || managed.version != target.version {
            return Err((
                format!(
                    "{described} is {} {}, and the group is {} {}: a managed backup restores into its own engine and version",
                    managed.engine, managed.version, target.engine, target.version
                ),
                "remove `backup:` from import_from to import from a fresh dump of the source's master, which crosses versions".into(),
            ));
        }
        if seed.store_host != target.master_host {
            return Err((
                format!(
                    "{described} is in a store on {}, and the group's master is on {}: a managed backup is restored on its store's host only (copying it to another host would pass the data through this machine)",
                    seed.store_host, target.master_host
                ),
                format!(
                    "put the group's master on {}, or remove `backup:` from import_from to import from a fresh backup taken on the master's host",
                    seed.store_host
                ),
            ));
        }
        Ok(seed)
    }

    fn managed_seed(&self, record: &BackupRecord, application: &str) -> ManagedSeed {
        // A store without an address is on this machine.
        let store_host = record
            .managed
            .as_ref()
            .and_then(|m| m.store_address.clone())
            .unwrap_or_else(|| {
                crate::backup::host_of(dbgroups_manifest::ProviderKind::Local, None)
            });
        let age_seconds = self
            .input
            .observed
            .now
            .zip(epoch_seconds(&record.taken_at))
            .map(|(now, taken)| now.saturating_sub(taken));
        ManagedSeed {
            id: record.id.clone(),
            application: application.to_string(),
            server: record.server.clone(),
            taken_at: record.taken_at.clone(),
            age_seconds,
            size_bytes: record.size_bytes,
            store_host,
        }
    }
}

/// Seconds since the epoch of an RFC 3339 UTC time as dbgroups records
/// them (`2026-12-07T10:00:00.123Z`); `None` for anything else. Written
/// here rather than taken from a time crate: the planner reads no clock and
/// links none (ARCHITECTURE.md).
fn epoch_seconds(text: &str) -> Option<u64> {
    let number = |range: std::ops::Range<usize>| -> Option<i64> {
        let part = text.get(range)?;
        part.bytes()
            .all(|b| b.is_ascii_digit())
            .then(|| part.parse().ok())?
    };
    let bytes = text.as_bytes();
    if bytes.len() < 20
        || bytes[4] != b'-'
        || bytes[7] != b'-'
        || bytes[10] != b'T'
        || bytes[13] != b':'
        || bytes[16] != b':'
        || !text.ends_with('Z')
    {
        return None;
    }
    let (year, month, day) = (number(0..4)?, number(5..7)?, number(8..10)?);
    let (hour, minute, second) = (number(11..13)?, number(14..16)?, number(17..19)?);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) {
        return None;
    }
    // Days from the civil date (Howard Hinnant's algorithm), the inverse of
    // certificates.rs's `date`.
    let shifted_year = if month <= 2 { year - 1 } else { year };
    let era = shifted_year.div_euclid(400);
    let year_of_era = shifted_year - era * 400;
    let day_of_year = (153 * ((month + 9) % 12) + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    let days = era * 146_097 + day_of_era - 719_468;
    let seconds = days * 86_400 + hour * 3_600 + minute * 60 + second;
    u64::try_from(seconds).ok()
}

#[cfg(test)]
mod tests {
    use super::epoch_seconds;

    #[test]
    fn recorded_times_are_read_as_seconds_since_the_epoch() {
        assert_eq!(epoch_seconds("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(
            epoch_seconds("2027-01-01T00:00:00.000Z"),
            Some(1_798_761_600)
        );
        assert_eq!(epoch_seconds("2000-02-29T00:00:01Z"), Some(951_782_401));
        assert_eq!(
            epoch_seconds("2026-12-31T23:59:59.999Z"),
            Some(1_798_761_599)
        );
        assert_eq!(epoch_seconds("yesterday"), None);
        assert_eq!(epoch_seconds("2026-13-01T00:00:00Z"), None);
        assert_eq!(epoch_seconds("2026-12-01T00:00:00+01:00"), None);
    }
}

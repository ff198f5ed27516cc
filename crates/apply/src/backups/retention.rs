//! `keep: N`: which managed backups of a group go. A pure function of the
//! records, so it is tested without a store.

use dbgroups_state::{BackupRecord, Verification};

/// The backups to delete, and the verified ones kept.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RetentionVerdict {
    pub delete: Vec<String>,
    pub kept_verified: Vec<String>,
}

/// The newest `keep` verified backups of one group are kept, and never
/// fewer than one: the newest verified backup is never deleted, even with
/// `keep: 0`. Every backup older than the oldest one kept goes (verified,
/// failed or never verified); newer ones that are not verified yet stay
/// until they are judged. With no verified backup nothing goes.
pub fn retention(records: &[&BackupRecord], keep: u32) -> RetentionVerdict {
    let mut newest_first: Vec<&BackupRecord> = records.to_vec();
    newest_first.sort_by(|a, b| b.taken_at.cmp(&a.taken_at).then(b.id.cmp(&a.id)));
    let verified: Vec<&BackupRecord> = newest_first
        .iter()
        .copied()
        .filter(|r| {
            r.managed
                .as_ref()
                .is_some_and(|m| matches!(m.verification, Verification::Passed { .. }))
        })
        .collect();
    let keep = usize::try_from(keep.max(1)).unwrap_or(usize::MAX);
    let kept: Vec<&BackupRecord> = verified.into_iter().take(keep).collect();
    let Some(oldest_kept) = kept.last() else {
        return RetentionVerdict::default();
    };
    let boundary = newest_first
        .iter()
        .position(|r| r.id == oldest_kept.id)
        .unwrap_or(newest_first.len());
    RetentionVerdict {
        delete: newest_first[boundary + 1..]
            .iter()
            .map(|r| r.id.clone())
            .collect(),
        kept_verified: kept.iter().map(|r| r.id.clone()).collect(),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use dbgroups_manifest::Engine;
    use dbgroups_state::ManagedBackup;

    use super::*;

    fn record(id: &str, verification: Verification) -> BackupRecord {
        BackupRecord {
            id: id.into(),
            group: "postgresql.default".into(),
            server: "pg".into(),
            path: format!("/store/{id}.tar"),
            size_bytes: 1,
            taken_at: format!("2026-12-0{id}T00:00:00Z"),
            managed: Some(ManagedBackup {
                // Any engine: retention never looks at it.
                engine: Engine::MYSQL_FAMILY[0],
                version: "16".into(),
                from_master: false,
                source_reason: String::new(),
                started_at: String::new(),
                finished_at: String::new(),
                sha256: String::new(),
                position: None,
                store_address: None,
                store_ssh: BTreeMap::new(),
                summary: BTreeMap::new(),
                summary_exact: true,
                verification,
            }),
        }
    }

    fn passed() -> Verification {
        Verification::Passed { at: "x".into() }
    }

    fn failed() -> Verification {
        Verification::Failed {
            at: "x".into(),
            reason: "y".into(),
        }
    }

    #[test]
    fn keeps_the_newest_verified_and_deletes_what_is_older() {
        let all = [
            record("1", passed()),
            record("2", failed()),
            record("3", passed()),
            record("4", passed()),
            record("5", Verification::Unverified),
        ];
        let refs: Vec<&BackupRecord> = all.iter().collect();
        let verdict = retention(&refs, 2);
        assert_eq!(verdict.kept_verified, ["4", "3"]);
        assert_eq!(verdict.delete, ["2", "1"]);
    }

    #[test]
    fn keep_zero_still_keeps_the_newest_verified() {
        let all = [
            record("1", passed()),
            record("2", passed()),
            record("3", failed()),
        ];
        let refs: Vec<&BackupRecord> = all.iter().collect();
        let verdict = retention(&refs, 0);
        assert_eq!(verdict.kept_verified, ["2"]);
        assert_eq!(verdict.delete, ["1"]);
    }

    #[test]
    fn nothing_goes_without_a_verified_backup() {
        let all = [record("1", failed()), record("2", Verification::Unverified)];
        let refs: Vec<&BackupRecord> = all.iter().collect();
        assert_eq!(retention(&refs, 0), RetentionVerdict::default());
    }
}

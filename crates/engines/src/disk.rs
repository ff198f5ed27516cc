//! The disk-space guard: before a backup, the place it lands must have free
//! space of at least twice the data; before a restore, the destination at
//! least twice the backup. Otherwise the step refuses, with the figures,
//! before touching anything.
//!
//! Engines and the executor measure through the host the place lives on
//! ([`ensure_room_on`], [`crate::Host::free_bytes`], [`crate::Host::size_of`]);
//! the sync functions measuring this machine are what [`crate::LocalHost`]
//! implements those with.

use std::path::Path;

use crate::error::EngineError;
use crate::host::HostRef;

/// How much free space a copy needs, as a multiple of its size.
pub const FACTOR: u64 = 2;

/// Free bytes (for an unprivileged writer) on the filesystem holding
/// `path`, or its nearest existing ancestor, on this machine. Engines and
/// the executor go through the host ([`crate::Host::free_bytes`]).
pub fn free_bytes(path: &Path) -> Result<u64, EngineError> {
    let existing = path
        .ancestors()
        .find(|p| p.exists())
        .unwrap_or(Path::new("/"));
    let stats = rustix::fs::statvfs(existing).map_err(|e| EngineError::Io {
        action: "measure free space on",
        path: existing.to_path_buf(),
        source: e.into(),
    })?;
    Ok(stats.f_bavail.saturating_mul(stats.f_frsize))
}

/// The bytes of every file under `path`, on this machine. Engines and the
/// executor go through the host ([`crate::Host::size_of`]).
pub fn size_of(path: &Path) -> u64 {
    let Ok(metadata) = std::fs::symlink_metadata(path) else {
        return 0;
    };
    if !metadata.is_dir() {
        return metadata.len();
    }
    std::fs::read_dir(path)
        .into_iter()
        .flatten()
        .flatten()
        .map(|entry| size_of(&entry.path()))
        .sum()
}

/// Refuses unless `place` has room for `FACTOR` times `size` bytes, on
/// this machine. Engines and the executor go through the host
/// ([`ensure_room_on`]).
pub fn ensure_room(what: &str, place: &Path, size: u64) -> Result<(), EngineError> {
    check_room(what, place, free_bytes(place)?, size)
}

/// Refuses unless `place`, a path on `host`, has room for `FACTOR` times
/// `size` bytes: the host measures its free space.
pub async fn ensure_room_on(
    host: &HostRef,
    what: &str,
    place: &Path,
    size: u64,
) -> Result<(), EngineError> {
    check_room(what, place, host.free_bytes(place).await?, size)
}

/// The verdict of [`ensure_room`] for `free` bytes: exactly `FACTOR` times
/// `size` is enough, one byte less is not.
pub fn check_room(what: &str, place: &Path, free: u64, size: u64) -> Result<(), EngineError> {
    let needed = size.saturating_mul(FACTOR);
    if free < needed {
        return Err(EngineError::DiskSpace {
            what: what.to_string(),
            place: place.to_path_buf(),
            free,
            needed,
            size,
        });
    }
    Ok(())
}

/// Bytes as people read them.
pub fn human(bytes: u64) -> String {
    let mib = bytes as f64 / (1024.0 * 1024.0);
    if mib >= 1024.0 {
        format!("{:.1} GiB", mib / 1024.0)
    } else {
        format!("{mib:.1} MiB")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Sizes as each engine's measure reports them for a copy: PostgreSQL's
    /// cluster (`pg_database_size` summed) and one database, MariaDB's
    /// schema, Redis's dataset and MongoDB's data. The guard's verdict must
    /// turn exactly at twice each.
    const MEASURED: [(&str, u64); 5] = [
        ("PostgreSQL cluster", 31_457_987),
        ("PostgreSQL database", 7_725_871),
        ("MariaDB schema", 629_145_600),
        ("Redis dataset", 4_194_817),
        ("MongoDB data", 1),
    ];

    #[test]
    fn the_verdict_turns_at_exactly_twice_the_size() {
        let place = Path::new("/staging");
        for (measure, size) in MEASURED {
            let twice = size * FACTOR;
            let refused = check_room("the backup", place, twice - 1, size);
            assert!(
                matches!(refused, Err(EngineError::DiskSpace { needed, free, .. }) if needed == twice && free == twice - 1),
                "{measure}: just under twice is refused"
            );
            assert!(
                check_room("the backup", place, twice, size).is_ok(),
                "{measure}: exactly twice is enough"
            );
            assert!(
                check_room("the backup", place, twice + 1, size).is_ok(),
                "{measure}: just over twice is enough"
            );
        }
    }

    #[test]
    fn a_size_too_large_to_double_needs_all_there_is() {
        assert!(check_room("the restore", Path::new("/"), u64::MAX - 1, u64::MAX).is_err());
        assert!(check_room("the restore", Path::new("/"), u64::MAX, u64::MAX).is_ok());
    }
}

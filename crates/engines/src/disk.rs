//! The disk-space guard: before a backup, the place it lands must have free
//! space of at least twice the data; before a restore, the destination at
//! least twice the backup. Otherwise the step refuses, with the figures,
//! before touching anything.

use std::path::Path;

use crate::error::EngineError;

/// How much free space a copy needs, as a multiple of its size.
pub const FACTOR: u64 = 2;

/// Free bytes (for an unprivileged writer) on the filesystem holding
/// `path`, or its nearest existing ancestor.
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

/// The bytes of every file under `path`.
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

/// Refuses unless `place` has room for `FACTOR` times `size` bytes.
pub fn ensure_room(what: &str, place: &Path, size: u64) -> Result<(), EngineError> {
    let free = free_bytes(place)?;
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

//! Durable file replacement: write a temporary file, fsync it, rename it
//! over the target, fsync the directory. A crash leaves either the old file
//! or the new one, never a mix.

use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use crate::error::{StateError, io};

/// Files holding state or secrets are readable by their owner only.
pub const PRIVATE_MODE: u32 = 0o600;

/// Replaces `path` with `contents`. When `backup` is given and `path`
/// exists, the old file is first kept there (by a hard link, so `path` is
/// never missing).
pub(crate) fn write_atomically(
    path: &Path,
    contents: &[u8],
    backup: Option<&Path>,
) -> Result<(), StateError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let temp = dir.join(format!(".{file_name}.tmp-{}", std::process::id()));
    let result = (|| {
        let mut file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(PRIVATE_MODE)
            .open(&temp)
            .map_err(io("create", &temp))?;
        file.write_all(contents).map_err(io("write", &temp))?;
        file.sync_all().map_err(io("flush", &temp))?;
        if let Some(backup) = backup
            && path.exists()
        {
            let staged = dir.join(format!(".{file_name}.backup-{}", std::process::id()));
            let _ = std::fs::remove_file(&staged);
            std::fs::hard_link(path, &staged).map_err(io("keep the previous version of", path))?;
            std::fs::rename(&staged, backup).map_err(io("keep the previous version as", backup))?;
        }
        std::fs::rename(&temp, path).map_err(io("replace", path))?;
        sync_dir(dir)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&temp);
    }
    result
}

/// Replaces `path` (mode 0600) durably, creating its directory (0700) if
/// needed: for the other files that hold secrets, such as the environment
/// file, so they get the state file's guarantees.
pub fn write_private_file(path: &Path, contents: &[u8]) -> Result<(), StateError> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        create_private_dir(dir)?;
    }
    write_atomically(path, contents, None)
}

pub(crate) fn sync_dir(dir: &Path) -> Result<(), StateError> {
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io("flush directory", dir))
}

pub(crate) fn create_private_dir(dir: &Path) -> Result<(), StateError> {
    use std::os::unix::fs::DirBuilderExt;
    if dir.is_dir() {
        return Ok(());
    }
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(io("create directory", dir))
}

//! Files that must be readable by their owner only: private keys, the SQLite database (and
//! its `-wal`/`-shm` companions) and token files. On Unix they are created with mode 0600,
//! and an existing file is narrowed to 0600 before it is used; elsewhere the platform's
//! defaults apply.

use std::io::Write;
use std::path::Path;

/// Writes `contents` to `path`, creating or truncating it with mode 0600 (an existing file is
/// narrowed to 0600 first, so the secret is never readable by others, not even briefly).
pub fn write_private(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    if path.exists() {
        restrict_to_owner(path)?;
    }
    let mut file = options.open(path)?;
    file.write_all(contents)?;
    file.sync_all()
}

/// Creates `path` empty with mode 0600 if it does not exist, and narrows it to 0600 if it
/// does. SQLite gives the `-wal` and `-shm` files the mode of the database file, so calling
/// this before the database is opened keeps all three private.
pub fn ensure_private(path: &Path) -> std::io::Result<()> {
    if path.exists() {
        return restrict_to_owner(path);
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(false);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options.open(path).map(drop)
}

/// Sets an existing file's mode to 0600 (owner read and write only).
pub fn restrict_to_owner(path: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}

/// The file's permission bits (`0o600`…), for tests and `check`; `None` off Unix.
pub fn mode(path: &Path) -> std::io::Result<Option<u32>> {
    let metadata = std::fs::metadata(path)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        Ok(Some(metadata.permissions().mode() & 0o777))
    }
    #[cfg(not(unix))]
    {
        let _ = metadata;
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_files_are_0600_even_when_they_existed_world_readable() {
        let directory = tempfile::tempdir().unwrap();
        let secret = directory.path().join("secret");
        std::fs::write(&secret, "old").unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o644)).unwrap();
        }

        write_private(&secret, b"new").unwrap();
        let fresh = directory.path().join("fresh");
        ensure_private(&fresh).unwrap();

        assert_eq!(std::fs::read_to_string(&secret).unwrap(), "new");
        if cfg!(unix) {
            assert_eq!(mode(&secret).unwrap(), Some(0o600));
            assert_eq!(mode(&fresh).unwrap(), Some(0o600));
        }
    }
}

//! Writing files that matter safely: owner-only files created new, and atomic replacement.
//!
//! Both refuse to be steered by a planted symlink: a new file is created with `O_CREAT |
//! O_EXCL` (which fails on any existing path, a symlink included), and a replacement is written
//! to a temporary file with a random name in the same directory (created the same way), its
//! mode set through the open handle, synced, then renamed over the target, which replaces a
//! directory entry and never writes through a link. Nothing here reads a secret's value; the
//! callers decide what goes in.

use std::io::Write;
use std::path::{Path, PathBuf};

/// Creates `path` with `contents`, readable and writable by the owner only (`0600`). Fails
/// with `AlreadyExists` when anything, a symlink included, is at `path`.
pub fn create_private(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(path)?;
    f.write_all(contents)?;
    f.sync_all()
}

/// The file a path finally names: a symlinked config file (dotfiles) is edited where it
/// lives, and the link is kept.
pub fn resolve_link(path: &Path) -> PathBuf {
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_symlink() => {
            std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf())
        }
        _ => path.to_path_buf(),
    }
}

/// Replaces `path` with `contents` atomically: readers see the old file or the new one, never
/// half of either, and the new file keeps the old one's permissions (`0600` for a new file).
/// Written and synced before the rename, and the directory synced after it, so an answer
/// given once this returns survives a crash.
pub fn replace_atomically(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    let dir = match path.parent().filter(|d| !d.as_os_str().is_empty()) {
        Some(d) => d.to_path_buf(),
        None => PathBuf::from("."),
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut tmp = tempfile::Builder::new()
        .prefix(&format!(".{name}."))
        .suffix(".tmp")
        .tempfile_in(&dir)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(path)
            .map(|m| m.permissions().mode() & 0o777)
            .unwrap_or(0o600);
        tmp.as_file()
            .set_permissions(std::fs::Permissions::from_mode(mode))?;
    }
    tmp.write_all(contents)?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    if let Ok(d) = std::fs::File::open(&dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::os::unix::fs::{symlink, PermissionsExt};

    #[test]
    fn a_new_private_file_is_owner_only_and_never_follows_a_link() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("code");
        create_private(&path, b"x").expect("create");
        let mode = std::fs::metadata(&path).expect("meta").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(
            create_private(&path, b"y").expect_err("exists").kind(),
            std::io::ErrorKind::AlreadyExists
        );
        let victim = dir.path().join("victim");
        std::fs::write(&victim, "mine").expect("write");
        let planted = dir.path().join("planted");
        symlink(&victim, &planted).expect("symlink");
        assert!(create_private(&planted, b"owned").is_err());
        assert_eq!(std::fs::read_to_string(&victim).expect("read"), "mine");
        let dangling = dir.path().join("dangling");
        symlink(dir.path().join("nowhere"), &dangling).expect("symlink");
        assert!(create_private(&dangling, b"owned").is_err());
        assert!(!dir.path().join("nowhere").exists());
    }

    #[test]
    fn a_replacement_keeps_the_mode_ignores_planted_links_and_leaves_nothing_behind() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("config.toml");
        std::fs::write(&path, "old").expect("write");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).expect("chmod");
        // The predictable names an attacker would plant a link at.
        let victim = dir.path().join("victim");
        std::fs::write(&victim, "mine").expect("write");
        std::fs::set_permissions(&victim, std::fs::Permissions::from_mode(0o600)).expect("chmod");
        for planted in [
            "config.toml.fluxgate-edit",
            "config.toml.tmp",
            ".config.toml.tmp",
        ] {
            symlink(&victim, dir.path().join(planted)).expect("symlink");
        }
        replace_atomically(&path, b"new").expect("replace");
        assert_eq!(std::fs::read_to_string(&path).expect("read"), "new");
        let mode = std::fs::metadata(&path).expect("meta").permissions().mode() & 0o777;
        assert_eq!(mode, 0o640);
        assert_eq!(std::fs::read_to_string(&victim).expect("read"), "mine");
        let victim_mode = std::fs::metadata(&victim)
            .expect("meta")
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(
            victim_mode, 0o600,
            "the victim's mode was changed through a link"
        );
        let names: Vec<String> = std::fs::read_dir(dir.path())
            .expect("dir")
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names.len(), 5, "no temporary file left: {names:?}");
        // A new file is owner-only.
        let fresh = dir.path().join("fresh.toml");
        replace_atomically(&fresh, b"x").expect("create");
        let mode = std::fs::metadata(&fresh)
            .expect("meta")
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o600);
    }

    #[test]
    fn a_symlinked_file_is_edited_where_it_lives() {
        let dir = tempfile::tempdir().expect("dir");
        let real = dir.path().join("dotfiles.toml");
        std::fs::write(&real, "old").expect("write");
        let link = dir.path().join("config.toml");
        symlink(&real, &link).expect("symlink");
        let target = resolve_link(&link);
        replace_atomically(&target, b"new").expect("replace");
        assert!(std::fs::symlink_metadata(&link)
            .expect("meta")
            .file_type()
            .is_symlink());
        assert_eq!(std::fs::read_to_string(&link).expect("read"), "new");
    }
}

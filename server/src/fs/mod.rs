//! The file system as both sides use it: the server's confined root, the
//! client's staged files, copies in the kernel and hashing on all cores.

mod copy;
mod hashing;
pub(crate) mod journal;
pub(crate) mod listing;
pub(crate) mod mtime;
mod reader;
mod relpath;
mod root;
mod version;

use std::path::{Path, PathBuf};

pub(crate) use copy::{DiskWrites, clone_file, copy_range, start_writeback};
pub(crate) use hashing::{HashReceiver, hash_file_blocks, rebuilt_file_hash};
pub(crate) use reader::FileReader;
pub(crate) use relpath::{JOURNAL_DIR, PathError, RESERVED_PREFIX, RelPath};
pub(crate) use root::{Dir, FsError, Root};
pub(crate) use version::FileVersion;

/// The directory a local `path` is in (`.` for a bare name).
pub(crate) fn dir_of(path: &Path) -> PathBuf {
    match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// Makes the entries of the local directory `dir` durable (after a file
/// in it was created, renamed or removed).
pub(crate) fn sync_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

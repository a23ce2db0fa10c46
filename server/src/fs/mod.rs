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

pub(crate) use copy::{DiskWrites, copy_range, start_writeback};
pub(crate) use hashing::{HashReceiver, hash_file_blocks, rebuilt_file_hash};
pub(crate) use reader::FileReader;
pub(crate) use relpath::{JOURNAL_DIR, PathError, RESERVED_PREFIX, RelPath};
pub(crate) use root::{Dir, FsError, Root};
pub(crate) use version::FileVersion;

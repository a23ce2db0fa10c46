//! A local target's new version written in place behind a redo journal,
//! for file systems that cannot clone (ext4), as the server's `--commit
//! journal` does (`serve/commit/journal.rs`; the entry's format and its
//! application are `fs/journal.rs`, shared with it). The changed bytes are
//! already in a staging file beside the target, at their own offsets:
//!
//! 1. the target's blocks up to the new size are reserved (`fallocate`),
//!    so applying cannot run out of space, and the staging file is fsynced;
//! 2. `.diffcopy-apply-<H>.pending` is written beside the target (H: a hash
//!    of the target's name) and fsynced (`journal-written`,
//!    `journal-fsynced`);
//! 3. it is renamed to `.diffcopy-apply-<H>` and the directory fsynced: the
//!    commit point (`journal-committed`);
//! 4. each range is copied into the target (`journal-applied`), which is cut
//!    to its new size and fsynced (`journal-target-fsynced`);
//! 5. the journal and the staging file are removed (`journal-removed`).
//!
//! The names in parentheses are the fault points a test can stop the
//! process at (`DIFFCOPY_FAULT`, `faults.rs`). After a crash the target is
//! the old version, or it has a committed journal: every `diffcopy` that
//! opens the target, to read it or to write it, first replays that journal
//! ([`recover`]), so it never reads a target half applied. A pending journal
//! is discarded with its staging file.

use std::fs::File;
use std::io::{self, Write};
use std::ops::Range;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use diffcopy_core::delta::piece_hash;

use super::error::ClientError;
use crate::faults::{FaultHook, FaultPoint};
use crate::fs::journal::{Entry, reserve};
use crate::fs::{RESERVED_PREFIX, dir_of, sync_dir};

/// The new version of `target` to commit in place.
pub(super) struct InPlace<'a> {
    pub(super) target: &'a Path,
    /// The target as it was opened for the sync: the commit refuses to go
    /// ahead if the path now names another file.
    pub(super) existing: &'a File,
    pub(super) staging: &'a File,
    pub(super) staging_path: &'a Path,
    pub(super) size: u64,
    /// The ranges of the staging file that hold the new bytes (sorted,
    /// apart); everything else is the target's bytes at the same offsets.
    pub(super) staged: &'a [Range<u64>],
}

/// The fault hook `DIFFCOPY_FAULT` asks for, read once.
fn at(step: &'static str) {
    static HOOK: OnceLock<Option<FaultHook>> = OnceLock::new();
    FaultHook::at(HOOK.get_or_init(FaultHook::from_env).as_ref(), FaultPoint::Commit(step));
}

/// The directory of `target` and its file name.
fn split(target: &Path) -> Result<(PathBuf, String), ClientError> {
    let dir = dir_of(target);
    let name = target
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| ClientError::Usage(format!("{} has no file name in UTF-8", target.display())))?;
    Ok((dir, name.to_owned()))
}

/// Where `target`'s journal goes, committed and pending.
fn journal_paths(dir: &Path, name: &str) -> (PathBuf, PathBuf) {
    let hash = piece_hash(0, name.as_bytes());
    let committed = dir.join(format!("{RESERVED_PREFIX}apply-{hash:016x}"));
    (committed.clone(), committed.with_extension("pending"))
}

fn remove_if_there(path: &Path) -> io::Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

impl InPlace<'_> {
    /// Commits (blocking I/O). On an error before the commit point the
    /// target is untouched, and the journal and the staging file are
    /// removed; after it, both stay for the next run to replay.
    pub(super) fn commit(&self) -> Result<(), ClientError> {
        let (dir, name) = split(self.target)?;
        let (committed, pending) = journal_paths(&dir, &name);
        let (target, entry) = self.journal(&dir, &name, &committed, &pending).inspect_err(|_| {
            // Nothing is applied yet: undone, whichever step failed. The
            // staging file goes only once no journal names it.
            let _ = remove_if_there(&pending);
            if remove_if_there(&committed).is_ok() {
                let _ = remove_if_there(self.staging_path);
            }
        })?;
        at("journal-committed");
        let shown = self.target.display();
        let failed = |e: io::Error| ClientError::io(&shown, e);
        entry.apply(self.staging, &target, || at("journal-applied")).map_err(|e| {
            ClientError::io(format!("{shown} (its next sync finishes this commit from the journal)"), e)
        })?;
        at("journal-target-fsynced");
        std::fs::remove_file(&committed).map_err(failed)?;
        sync_dir(&dir).map_err(failed)?;
        remove_if_there(self.staging_path).map_err(failed)?;
        at("journal-removed");
        Ok(())
    }

    /// Steps 1 to 3: returns the target, open for writing, and the entry,
    /// once the journal is committed.
    fn journal(
        &self,
        dir: &Path,
        name: &str,
        committed: &Path,
        pending: &Path,
    ) -> Result<(File, Entry), ClientError> {
        let shown = self.target.display();
        let failed = |e: io::Error| ClientError::io(&shown, e);
        let target = File::options().write(true).open(self.target).map_err(failed)?;
        let (now, then) = (target.metadata().map_err(failed)?, self.existing.metadata().map_err(failed)?);
        if (now.dev(), now.ino()) != (then.dev(), then.ino()) {
            return Err(ClientError::Local(format!(
                "{shown} was replaced while it was synced; nothing was written"
            )));
        }
        reserve(&target, self.size).map_err(failed)?;
        self.staging.sync_all().map_err(failed)?;
        let staging_name = self.staging_path.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        let entry = Entry::of(name.to_owned(), staging_name.to_owned(), self.size, self.staging, self.staged)
            .map_err(failed)?;
        let mut file =
            File::options().write(true).create(true).truncate(true).open(pending).map_err(failed)?;
        file.write_all(&entry.encode()).map_err(failed)?;
        at("journal-written");
        file.sync_all().map_err(failed)?;
        at("journal-fsynced");
        std::fs::rename(pending, committed).map_err(failed)?;
        sync_dir(dir).map_err(failed)?;
        Ok((target, entry))
    }
}

/// Finishes or discards a commit in place of `target` that a crash
/// interrupted: a committed journal is replayed (its staged bytes checked
/// first), a pending one removed with its staging file. Nothing to do is
/// the common case: two opens of names that are not there.
pub(super) fn recover(target: &Path) -> Result<(), ClientError> {
    let Ok((dir, name)) = split(target) else { return Ok(()) };
    let (committed, pending) = journal_paths(&dir, &name);
    let read = |path: &Path| match std::fs::read(path) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(e) if matches!(e.kind(), io::ErrorKind::NotFound | io::ErrorKind::NotADirectory) => Ok(None),
        Err(e) => Err(ClientError::io(path.display(), e)),
    };
    let failed = |e: io::Error| ClientError::io(target.display(), e);
    if let Some(bytes) = read(&pending)? {
        if let Some(entry) = Entry::decode(&bytes).filter(|e| e.path == name) {
            remove_if_there(&dir.join(&entry.staging)).map_err(failed)?;
        }
        remove_if_there(&pending).map_err(failed)?;
    }
    let Some(bytes) = read(&committed)? else { return Ok(()) };
    let unusable = |why: &str| {
        ClientError::Local(format!(
            "{} has an unfinished commit whose journal {} {why}; the target may be half written",
            target.display(),
            committed.display()
        ))
    };
    let entry = Entry::decode(&bytes).ok_or_else(|| unusable("is unreadable"))?;
    if entry.path != name {
        return Err(unusable("names another file"));
    }
    let staging_path = dir.join(&entry.staging);
    let staging = File::open(&staging_path).map_err(|_| unusable("names a staging file that is gone"))?;
    if !entry.staged_intact(&staging).map_err(failed)? {
        return Err(unusable("names staged bytes that changed"));
    }
    let file = File::options().write(true).open(target).map_err(failed)?;
    entry.apply(&staging, &file, || {}).map_err(failed)?;
    std::fs::remove_file(&committed).map_err(failed)?;
    sync_dir(&dir).map_err(failed)?;
    remove_if_there(&staging_path).map_err(failed)?;
    Ok(())
}

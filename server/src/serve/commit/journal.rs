//! `--commit journal`: changes written in place behind a redo journal, for
//! file systems that cannot clone (ext4). The new bytes are already in the
//! staging file beside the target, at their own offsets; the journal names
//! them:
//!
//! 1. the staging file is fsynced;
//! 2. `ROOT/.diffcopy-sessions/apply-<id>.pending` is written (the target's
//!    path, the staging file's name, the new size, each range with the XXH3
//!    of its bytes, and a checksum of all that) and fsynced;
//! 3. it is renamed to `apply-<id>` (the commit point) and the directory
//!    fsynced;
//! 4. each range is copied from the staging file into the target;
//! 5. the target is cut to its new size and fsynced;
//! 6. the journal and the staging file are removed.
//!
//! At start-up, before anything is served, [`recover`] replays every
//! committed journal (steps 4 to 6 again: copying a range twice is harmless)
//! and discards every pending one, so the target is exactly the old version
//! or exactly the new one. The target keeps its inode. Before the commit
//! point the target's blocks up to its new size are reserved (`fallocate`),
//! so applying cannot run out of space. Readers through the server take the
//! path's shared lock, which the commit holds exclusively from before step
//! 2 to the end, so they never see the ranges half applied; a process
//! reading the file on disk meanwhile can. A committed journal that cannot
//! be applied (an I/O error) leaves the path answering 503
//! `commit_unfinished` until the next start replays it.
//!
//! The entry's format, its checksums and applying it are `fs/journal.rs`,
//! shared with the client's commit in place of a local target.

use std::collections::HashSet;
use std::fs::File;
use std::io::Read;
use std::os::unix::fs::FileExt;
use std::sync::{Mutex, PoisonError};

use super::{Commit, set_mtime};
use crate::faults::{FaultHook, FaultPoint};
use crate::fs::journal::{self, Entry};
use crate::fs::{Dir, FileVersion, FsError, JOURNAL_DIR, RelPath, Root};
use crate::serve::error::{AppError, AppResult, ErrorKind};
use crate::serve::locks::WriteHold;

/// Where commits in flight are journaled.
#[derive(Debug)]
pub(crate) struct ApplyJournal {
    dir: Dir,
    /// Paths whose committed journal could not be applied.
    unapplied: Mutex<HashSet<String>>,
}

impl ApplyJournal {
    /// The journal's directory below `root`.
    pub(crate) fn open(root: &Root) -> Result<Self, FsError> {
        Ok(Self { dir: root.internal_dir(JOURNAL_DIR)?, unapplied: Mutex::default() })
    }

    /// 503 `commit_unfinished` if `path` has a committed journal this run
    /// could not apply.
    pub(crate) fn check_applied(&self, path: &RelPath) -> AppResult<()> {
        if self.unapplied.lock().unwrap_or_else(PoisonError::into_inner).contains(path.as_str()) {
            return Err(AppError::new(
                ErrorKind::CommitUnfinished,
                format!("a commit of {path} could not be finished; the server's next start finishes it"),
            ));
        }
        Ok(())
    }

    fn unapplied(&self, path: &RelPath) {
        self.unapplied.lock().unwrap_or_else(PoisonError::into_inner).insert(path.to_string());
    }
}

fn io(path: &RelPath) -> impl Fn(std::io::Error) -> AppError + '_ {
    move |e| AppError::from_fs(e.into(), path)
}

/// Commits in place; `_readers_out` keeps the server's readers of the
/// target out until the journal is applied.
pub(super) fn install(commit: &Commit<'_>, _readers_out: WriteHold) -> AppResult<FileVersion> {
    let staged = &commit.staged;
    let path = staged.path;
    commit.ctx.journal.check_applied(path)?;
    let at = |step: &'static str| FaultHook::at(commit.ctx.faults, FaultPoint::Commit(step));
    let entry = Entry::of(
        path.to_string(),
        staged.name.to_owned(),
        commit.version.size,
        staged.file,
        &commit.version.staged,
    )
    .map_err(io(path))?;
    reserve(commit)?;
    staged.file.sync_all().map_err(io(path))?;
    let dir = &commit.ctx.journal.dir;
    let (pending, committed) = (format!("apply-{}.pending", commit.id), format!("apply-{}", commit.id));
    let fs_error = |e| AppError::from_fs(e, path);
    dir.remove(&pending).map_err(fs_error)?;
    let file = dir.create_new(&pending).map_err(fs_error)?;
    let durable =
        file.write_all_at(&entry.encode(), 0).map(|()| at("journal-written")).and_then(|()| file.sync_all());
    if let Err(e) = durable {
        let _ = dir.remove(&pending);
        return Err(io(path)(e));
    }
    at("journal-fsynced");
    dir.rename(&pending, &committed).map_err(fs_error)?;
    dir.sync().map_err(fs_error)?;
    at("journal-committed");
    // From here the commit is decided: the journal stays until it is applied.
    let applied = apply(commit.ctx.root, &entry, staged.dir, commit.ctx.faults).or_else(|e| {
        tracing::warn!(path = %path, "applying a committed journal failed ({e}); trying once more");
        apply(commit.ctx.root, &entry, staged.dir, None)
    });
    let target = applied.map_err(|e| {
        tracing::error!(path = %path, "a committed journal could not be applied; the next start replays it: {e}");
        commit.ctx.journal.unapplied(path);
        AppError::from_fs(e, path)
    })?;
    dir.remove(&committed).map_err(fs_error)?;
    let _ = dir.sync();
    let _ = staged.dir.remove(staged.name);
    at("journal-removed");
    // Not part of the journal: a crash before this leaves the new bytes
    // with the time they were written, which the uploader's next quick
    // check sees as a change, and mends by an upload that sends nothing.
    set_mtime(&target, commit.mtime).map_err(io(path))?;
    FileVersion::of(&target).map_err(|e| AppError::internal("reading metadata", e))
}

/// Before the commit point: the target must still be the old version's
/// inode, and its blocks up to the new size are allocated, so applying the
/// journal cannot run out of space (507 `no_space` now, the target intact).
fn reserve(commit: &Commit<'_>) -> AppResult<()> {
    let path = commit.staged.path;
    let target = commit.ctx.root.open_write(path, false).map_err(|e| AppError::from_fs(e, path))?;
    let same = commit
        .base
        .as_ref()
        .is_some_and(|base| FileVersion::of(&target).is_ok_and(|now| now.same_content(&base.version)));
    if !same {
        return Err(super::target_changed(path));
    }
    journal::reserve(&target, commit.version.size).map_err(|e| AppError::from_fs(e.into(), path))
}

/// Steps 4 and 5: the ranges copied into the target, its size set, fsynced.
fn apply(root: &Root, entry: &Entry, dir: &Dir, faults: Option<&FaultHook>) -> Result<File, FsError> {
    let path = RelPath::parse(&entry.path).map_err(|e| FsError::Io(std::io::Error::other(e)))?;
    let target = root.open_write(&path, false)?;
    let staging = dir.open_existing(&entry.staging)?;
    entry.apply(&staging, &target, || FaultHook::at(faults, FaultPoint::Commit("journal-applied")))?;
    FaultHook::at(faults, FaultPoint::Commit("journal-target-fsynced"));
    Ok(target)
}

/// At start-up: replays every committed journal below `root` and discards
/// every pending one; a replayed commit's upload session is ended (its
/// journal entries removed), so it is not resumed. Returns how many were
/// replayed.
pub(crate) fn recover(root: &Root) -> Result<usize, FsError> {
    let journal = ApplyJournal::open(root)?;
    let dir = &journal.dir;
    let mut replayed = 0;
    for name in dir.names_starting_with("apply-")? {
        if name.ends_with(".pending") {
            tracing::info!("discarding an uncommitted journal: {name}");
            dir.remove(&name)?;
            continue;
        }
        let Some(id) = name.strip_prefix("apply-") else { continue };
        let mut bytes = Vec::new();
        if let Some(mut file) = dir.open_read(&name)? {
            file.read_to_end(&mut bytes)?;
        }
        let Some(entry) = Entry::decode(&bytes) else {
            tracing::error!("journal {name} is unreadable; the target is left as it is");
            dir.remove(&name)?;
            continue;
        };
        let path = RelPath::parse(&entry.path).map_err(|e| FsError::Io(std::io::Error::other(e)))?;
        let target_dir = root.parent_dir(&path, false)?;
        let staging = target_dir.open_existing(&entry.staging)?;
        if !entry.staged_intact(&staging)? {
            return Err(FsError::Io(std::io::Error::other(format!(
                "journal {name}: the staged bytes of {path} do not match their checksums"
            ))));
        }
        apply(root, &entry, &target_dir, None)?;
        tracing::info!(path = %path, "a committed journal was replayed");
        dir.remove(&name)?;
        target_dir.remove(&entry.staging)?;
        for session_file in ["json", "log", "v2", "v2plan", "v2data"] {
            dir.remove(&format!("{id}.{session_file}"))?;
        }
        replayed += 1;
    }
    dir.sync()?;
    Ok(replayed)
}

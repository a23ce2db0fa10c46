//! Committing a new version of a target. An upload (API v1 or protocol v2)
//! leaves its new bytes in a staging file beside the target, at their own
//! offsets; everything else of the new version is the old version's bytes at
//! the same offsets. How that becomes the target is `--commit`'s choice:
//!
//! * `replace.rs`: the unchanged bytes are copied into the staging file,
//!   which is made durable and renamed over the target (a new inode; costs
//!   the whole file where the file system cannot share extents);
//! * `reflink.rs`: the target is cloned (`FICLONE`: shared extents, no data
//!   copied), the new bytes are written into the clone, which is made durable
//!   and renamed over the target (a new inode; costs what changed);
//! * `journal.rs`: a redo journal names the staging file's new ranges; once
//!   it is durable and marked committed, they are applied in place and the
//!   target made durable (the same inode; costs what changed, twice).
//!
//! After a crash at any step the target is the old version or the new one:
//! replace and reflink by the rename, the journal by its replay at start-up
//! (`recover`). `auto` (the default) clones where the file system can; where
//! it cannot, it journals when that writes fewer bytes than a new file
//! would (the changed bytes against the kept ones) and the server's readers
//! of the target let it in within [`AUTO_READERS_WAIT`], else it replaces.

mod journal;
mod reflink;
mod replace;

use std::fs::File;
use std::ops::Range;
use std::time::{Duration, SystemTime};

pub(crate) use journal::{ApplyJournal, recover};

use crate::faults::FaultHook;
use crate::fs::{Dir, FileVersion, FsError, RelPath, Root, copy_range, start_writeback};
use crate::serve::config::CommitMode;
use crate::serve::error::{AppError, AppResult, ErrorKind};
use crate::serve::locks::PathLocks;
use crate::serve::stats::Stats;

/// How long an `auto` commit waits for the server's readers of the target
/// before it writes a new file instead of journaling in place.
const AUTO_READERS_WAIT: Duration = Duration::from_secs(5);
/// How long `--commit journal` waits for them before 503 `target_busy`.
const JOURNAL_READERS_WAIT: Duration = Duration::from_secs(60);

/// Bytes of the old version to copy into the new one: `new` from `old_start`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Copy {
    /// The range in the new version.
    pub(crate) new: Range<u64>,
    /// Where those bytes start in the old version.
    pub(crate) old_start: u64,
}

/// A staging file beside `path`, holding the new version's uploaded bytes.
#[derive(Debug)]
pub(crate) struct Staged<'a> {
    pub(crate) path: &'a RelPath,
    pub(crate) dir: &'a Dir,
    pub(crate) name: &'a str,
    pub(crate) file: &'a File,
}

/// What the target must still be for a commit to go ahead.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Expect<'a> {
    /// Anything (the client named no version).
    Any,
    /// The version with this ETag.
    Etag(&'a str),
    /// Absent (it was when the upload began).
    Absent,
}

impl Expect<'_> {
    /// Whether the target's `current` version (`None`: absent) is what this expects.
    fn holds(&self, current: Option<&FileVersion>) -> bool {
        match self {
            Self::Any => true,
            Self::Etag(etag) => current.map(FileVersion::etag).as_deref() == Some(*etag),
            Self::Absent => current.is_none(),
        }
    }
}

/// The old version: its open file and the version it was when read.
#[derive(Debug)]
pub(crate) struct Base<'a> {
    pub(crate) file: &'a File,
    pub(crate) version: FileVersion,
}

/// The new version: its size, and the ranges of the staging file that hold
/// its new bytes at their own offsets (sorted, apart). The rest of it is the
/// old version's bytes at the same offsets.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct NewVersion {
    pub(crate) size: u64,
    pub(crate) staged: Vec<Range<u64>>,
}

impl NewVersion {
    /// The ranges kept from the old version: what `staged` leaves of `0..size`.
    pub(crate) fn kept(&self) -> Vec<Range<u64>> {
        let mut kept = Vec::new();
        let mut at = 0;
        for range in &self.staged {
            if range.start > at {
                kept.push(at..range.start);
            }
            at = range.end;
        }
        if at < self.size {
            kept.push(at..self.size);
        }
        kept
    }

    /// The bytes the new version changes (those in the staging file).
    fn changed_bytes(&self) -> u64 {
        self.staged.iter().map(|r| r.end - r.start).sum()
    }

    /// The bytes it keeps from the old version.
    fn kept_bytes(&self) -> u64 {
        self.size - self.changed_bytes()
    }
}

/// A commit done: the new version, how it was installed, and the bytes the
/// install wrote (beyond the upload's own: kept bytes copied for a
/// replace, changed bytes applied for the journal or a clone).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Installed {
    pub(crate) version: FileVersion,
    pub(crate) mode: CommitMode,
    pub(crate) bytes_written: u64,
}

/// One commit: where the new version is, what it must replace, how.
#[derive(Debug)]
pub(crate) struct Commit<'a> {
    /// The server's parts a commit uses (its locks are where a commit in
    /// place shuts the server's readers out).
    pub(crate) ctx: Committer<'a>,
    pub(crate) staged: Staged<'a>,
    pub(crate) base: Option<Base<'a>>,
    pub(crate) version: &'a NewVersion,
    pub(crate) expect: Expect<'a>,
    /// The upload's id, which the journal names the commit by.
    pub(crate) id: &'a str,
    /// The modification time the uploader gave the new version, if any.
    pub(crate) mtime: Option<SystemTime>,
}

/// What a commit needs of the server, and no more: the served root,
/// `--commit`, the journal of commits in place, the path locks, the
/// counters and the fault hook. The upload sessions of both protocols take
/// this instead of the server's whole state.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Committer<'a> {
    pub(crate) root: &'a Root,
    pub(crate) mode: CommitMode,
    pub(crate) journal: &'a ApplyJournal,
    pub(crate) locks: &'a PathLocks,
    pub(crate) stats: &'a Stats,
    pub(crate) faults: Option<&'a FaultHook>,
}

/// What can commit: the server's state, for the sessions that own an
/// `Arc` of it across a blocking thread.
pub(crate) trait Commits: Send + Sync + 'static {
    /// The parts of the server a commit uses.
    fn committer(&self) -> Committer<'_>;
}

/// 412: the target is no longer the version the client compared against.
pub(crate) fn target_changed(path: &RelPath) -> AppError {
    AppError::new(ErrorKind::TargetChanged, format!("{path} changed since the client compared against it"))
}

/// The current version of the file at `path`, `None` if it does not exist.
pub(crate) fn current_version(root: &Root, path: &RelPath) -> AppResult<Option<FileVersion>> {
    match root.open_read(path) {
        Ok(file) => Ok(Some(FileVersion::of(&file).map_err(|e| AppError::internal("reading metadata", e))?)),
        Err(FsError::NotFound) => Ok(None),
        Err(e) => Err(AppError::from_fs(e, path)),
    }
}

/// Checks that the base did not change while it was read and that the
/// target is still what `expected` says (else 412 `target_changed`).
pub(crate) fn check_unchanged(
    root: &Root,
    path: &RelPath,
    base: Option<&Base<'_>>,
    expected: Expect<'_>,
) -> AppResult<Option<FileVersion>> {
    if let Some(base) = base
        && !FileVersion::of(base.file).is_ok_and(|now| now.same_content(&base.version))
    {
        return Err(target_changed(path));
    }
    let current = current_version(root, path)?;
    if !expected.holds(current.as_ref()) {
        return Err(target_changed(path));
    }
    Ok(current)
}

/// Copies `copies` from `base` into `staged`, in the kernel. Blocking I/O.
pub(crate) fn copy_in(staged: &Staged<'_>, base: &Base<'_>, copies: &[Copy]) -> AppResult<()> {
    for copy in copies {
        copy_range(base.file, copy.old_start, staged.file, copy.new.start, copy.new.end - copy.new.start)
            .map_err(|e| AppError::from_fs(e.into(), staged.path))?;
        start_writeback(staged.file, copy.new.clone());
    }
    Ok(())
}

/// Reads `len` bytes at `offset` of the new version before it exists: kept
/// ranges from the base, the rest from the staging file.
pub(crate) fn read_assembled(commit: &Commit<'_>, offset: u64, buf: &mut [u8]) -> std::io::Result<()> {
    let old = commit.base.as_ref().map(|b| b.file);
    crate::fs::journal::read_assembled(&commit.version.staged, commit.staged.file, old, offset, buf)
}

/// Gives `file` the modification time an uploader named (nothing when it
/// named none). Set last, after every write, which would move it.
pub(crate) fn set_mtime(file: &File, mtime: Option<SystemTime>) -> std::io::Result<()> {
    match mtime {
        Some(time) => file.set_modified(time),
        None => Ok(()),
    }
}

/// 503: readers of the target did not let a commit in place in.
fn target_busy(path: &RelPath) -> AppError {
    AppError::new(
        ErrorKind::TargetBusy,
        format!("{path} is being read; try the commit again when the reads are done"),
    )
}

/// Removes the file at `path` if it is what `expected` says (404 when it
/// is not there, 412 when it is another version), durably. Run under the
/// path's commit lock; blocking I/O.
pub(crate) fn remove(ctx: &Committer<'_>, path: &RelPath, expected: Expect<'_>) -> AppResult<()> {
    ctx.journal.check_applied(path)?;
    let current = current_version(ctx.root, path)?.ok_or_else(|| AppError::not_found(path))?;
    if !expected.holds(Some(&current)) {
        return Err(target_changed(path));
    }
    let dir = ctx.root.parent_dir(path, false).map_err(|e| AppError::from_fs(e, path))?;
    dir.remove(path.file_name()).map_err(|e| AppError::from_fs(e, path))?;
    dir.sync().map_err(|e| AppError::from_fs(e, path))
}

/// Makes the new version the target, as `commit.ctx.mode` says, once
/// [`check_unchanged`] passes. Blocking I/O, on a blocking thread of the
/// runtime.
pub(crate) fn install(commit: &Commit<'_>) -> AppResult<Installed> {
    let path = commit.staged.path;
    check_unchanged(commit.ctx.root, path, commit.base.as_ref(), commit.expect)?;
    let (changed, kept) = (commit.version.changed_bytes(), commit.version.kept_bytes());
    let done = |mode, version, bytes_written| Installed { version, mode, bytes_written };
    if commit.base.is_none() {
        // Nothing to keep: the staging file is the whole new version.
        return Ok(done(CommitMode::Replace, replace::install(commit)?, 0));
    }
    let replaced = || Ok(done(CommitMode::Replace, replace::install(commit)?, kept));
    let journaled = |hold| Ok(done(CommitMode::Journal, journal::install(commit, hold)?, changed));
    match commit.ctx.mode {
        CommitMode::Replace => replaced(),
        CommitMode::Reflink => match reflink::install(commit)? {
            Some(version) => Ok(done(CommitMode::Reflink, version, changed)),
            None => Err(AppError::internal(
                "committing",
                "--commit reflink, but this file system cannot clone files",
            )),
        },
        CommitMode::Journal => journaled(
            commit.ctx.locks.exclusive_within(path, JOURNAL_READERS_WAIT).ok_or_else(|| target_busy(path))?,
        ),
        CommitMode::Auto => {
            if let Some(version) = reflink::install(commit)? {
                return Ok(done(CommitMode::Reflink, version, changed));
            }
            let cheaper_in_place = changed <= kept;
            match cheaper_in_place
                .then(|| commit.ctx.locks.exclusive_within(path, AUTO_READERS_WAIT))
                .flatten()
            {
                Some(hold) => journaled(hold),
                None => replaced(),
            }
        }
    }
}

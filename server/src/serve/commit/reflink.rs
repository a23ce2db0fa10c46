//! `--commit reflink`: the target cloned into a new file beside it
//! (`FICLONE`: the clone shares the old version's extents, no data is
//! copied), the new bytes written into the clone from the staging file, then
//! fsync, rename, fsync of the directory. A new inode; the cost is what
//! changed. XFS, Btrfs and bcachefs can clone; ext4 cannot.

use std::ops::Range;

use super::{Commit, set_mtime};
use crate::faults::{FaultHook, FaultPoint};
use crate::fs::{FileVersion, clone_file, copy_range};
use crate::serve::error::{AppError, AppResult};

/// Commits by a clone; `None` (nothing done) where the file system cannot
/// clone the target.
pub(super) fn install(commit: &Commit<'_>) -> AppResult<Option<FileVersion>> {
    let (staged, Some(base)) = (&commit.staged, &commit.base) else { return Ok(None) };
    let path = staged.path;
    let clone_name = format!("{}.clone", staged.name);
    staged.dir.remove(&clone_name).map_err(|e| AppError::from_fs(e, path))?;
    let clone = staged.dir.create_new(&clone_name).map_err(|e| AppError::from_fs(e, path))?;
    let discard = || {
        let _ = staged.dir.remove(&clone_name);
    };
    match clone_file(&clone, base.file) {
        Ok(true) => {}
        Ok(false) => {
            discard();
            return Ok(None);
        }
        Err(e) => {
            discard();
            return Err(AppError::from_fs(e.into(), path));
        }
    }
    FaultHook::at(commit.ctx.faults, FaultPoint::Commit("reflink-cloned"));
    let written = (|| -> std::io::Result<()> {
        for range in &commit.version.staged {
            copy(staged.file, &clone, range)?;
        }
        clone.set_len(commit.version.size)?;
        if let Ok(meta) = base.file.metadata() {
            clone.set_permissions(meta.permissions())?;
        }
        set_mtime(&clone, commit.mtime)
    })();
    if let Err(e) = written {
        discard();
        return Err(AppError::from_fs(e.into(), path));
    }
    FaultHook::at(commit.ctx.faults, FaultPoint::Commit("reflink-written"));
    if let Err(e) = clone.sync_all() {
        discard();
        return Err(AppError::from_fs(e.into(), path));
    }
    FaultHook::at(commit.ctx.faults, FaultPoint::Commit("reflink-fsynced"));
    staged.dir.rename(&clone_name, path.file_name()).map_err(|e| AppError::from_fs(e, path))?;
    FaultHook::at(commit.ctx.faults, FaultPoint::Commit("reflink-renamed"));
    staged.dir.sync().map_err(|e| AppError::from_fs(e, path))?;
    let _ = staged.dir.remove(staged.name);
    FileVersion::of(&clone).map(Some).map_err(|e| AppError::internal("reading metadata", e))
}

fn copy(from: &std::fs::File, to: &std::fs::File, range: &Range<u64>) -> std::io::Result<()> {
    copy_range(from, range.start, to, range.start, range.end - range.start)
}

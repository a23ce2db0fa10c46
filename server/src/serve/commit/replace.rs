//! `--commit replace`: the whole new version written beside the target and
//! renamed over it. The kept ranges are copied from the old version in the
//! kernel (a reflink only where the file system shares extents on
//! `copy_file_range`), then fsync, rename, fsync of the directory. A new
//! inode, with the old one's permission bits; the cost is the whole file.

use super::{Commit, Copy, copy_in, set_mtime};
use crate::faults::{FaultHook, FaultPoint};
use crate::fs::FileVersion;
use crate::serve::error::{AppError, AppResult};

pub(super) fn install(commit: &Commit<'_>) -> AppResult<FileVersion> {
    let staged = &commit.staged;
    if let Some(base) = &commit.base {
        let kept: Vec<Copy> =
            commit.version.kept().into_iter().map(|r| Copy { old_start: r.start, new: r }).collect();
        copy_in(staged, base, &kept)?;
        if let Ok(meta) = base.file.metadata() {
            let _ = staged.file.set_permissions(meta.permissions());
        }
    } else if let Some(meta) = commit.ctx.root.open_read(staged.path).ok().and_then(|f| f.metadata().ok()) {
        let _ = staged.file.set_permissions(meta.permissions());
    }
    staged.file.set_len(commit.version.size).map_err(|e| AppError::from_fs(e.into(), staged.path))?;
    set_mtime(staged.file, commit.mtime).map_err(|e| AppError::from_fs(e.into(), staged.path))?;
    FaultHook::at(commit.ctx.faults, FaultPoint::Commit("replace-copied"));
    staged.file.sync_all().map_err(|e| AppError::from_fs(e.into(), staged.path))?;
    FaultHook::at(commit.ctx.faults, FaultPoint::Commit("replace-fsynced"));
    staged.dir.rename(staged.name, staged.path.file_name()).map_err(|e| AppError::from_fs(e, staged.path))?;
    FaultHook::at(commit.ctx.faults, FaultPoint::Commit("replace-renamed"));
    staged.dir.sync().map_err(|e| AppError::from_fs(e, staged.path))?;
    // After the rename, which changes the ctime that the ETag includes.
    FileVersion::of(staged.file).map_err(|e| AppError::internal("reading metadata", e))
}

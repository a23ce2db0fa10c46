//! Replacing a target atomically with a new version built beside it: the
//! copies from the old version are made in the kernel, the staging file is
//! made durable, then renamed over the target. Readers see the old file or
//! the new one, never a mixture. Shared by API v1 and protocol v2 commits.

use std::fs::File;
use std::ops::Range;

use crate::fs::{Dir, FileVersion, FsError, RelPath, Root, copy_range};
use crate::serve::error::{AppError, AppResult};

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

/// The old version: its open file and the version it was when read.
#[derive(Debug)]
pub(crate) struct Base<'a> {
    pub(crate) file: &'a File,
    pub(crate) version: FileVersion,
}

/// 412: the target is no longer the version the client compared against.
pub(crate) fn target_changed(path: &RelPath) -> AppError {
    AppError::new(
        axum::http::StatusCode::PRECONDITION_FAILED,
        "target_changed",
        format!("{path} changed since the client compared against it"),
    )
}

/// The current version of the file at `path`, `None` if it does not exist.
pub(crate) fn current_version(root: &Root, path: &RelPath) -> AppResult<Option<FileVersion>> {
    match root.open_read(path) {
        Ok(file) => Ok(Some(FileVersion::of(&file).map_err(|e| AppError::internal("reading metadata", e))?)),
        Err(FsError::NotFound) => Ok(None),
        Err(e) => Err(AppError::from_fs(e, path)),
    }
}

/// Copies `copies` from `base` into `staged`, in the kernel. Blocking I/O.
pub(crate) fn copy_in(staged: &Staged<'_>, base: &Base<'_>, copies: &[Copy]) -> AppResult<()> {
    for copy in copies {
        copy_range_to(base.file, staged.file, copy).map_err(|e| AppError::from_fs(e.into(), staged.path))?;
    }
    Ok(())
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
    let holds = match expected {
        Expect::Any => true,
        Expect::Etag(etag) => current.map(|v| v.etag()).as_deref() == Some(etag),
        Expect::Absent => current.is_none(),
    };
    if !holds {
        return Err(target_changed(path));
    }
    Ok(current)
}

/// Renames `staged` over the target with the old version's permission
/// bits, once [`check_unchanged`] passes. Returns the new version. Blocking I/O.
pub(crate) fn install(
    root: &Root,
    staged: &Staged<'_>,
    base: Option<&Base<'_>>,
    expected: Expect<'_>,
) -> AppResult<FileVersion> {
    let path = staged.path;
    check_unchanged(root, path, base, expected)?;
    // The new version keeps the old one's permissions.
    let old_meta = match base {
        Some(base) => base.file.metadata().ok(),
        None => root.open_read(path).ok().and_then(|f| f.metadata().ok()),
    };
    if let Some(meta) = old_meta {
        let _ = staged.file.set_permissions(meta.permissions());
    }
    staged.file.sync_all().map_err(|e| AppError::from_fs(e.into(), path))?;
    staged.dir.rename(staged.name, path.file_name()).map_err(|e| AppError::from_fs(e, path))?;
    staged.dir.sync().map_err(|e| AppError::from_fs(e, path))?;
    // After the rename, which changes the ctime that the ETag includes.
    FileVersion::of(staged.file).map_err(|e| AppError::internal("reading metadata", e))
}

/// Copies `copy` from `src` to `dst` in the kernel.
fn copy_range_to(src: &File, dst: &File, copy: &Copy) -> std::io::Result<()> {
    copy_range(src, copy.old_start, dst, copy.new.start, copy.new.end - copy.new.start)
}

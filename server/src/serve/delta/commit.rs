//! Committing a protocol v2 upload: the data the plan finds elsewhere in
//! the old version joins the literal data in the staging file, the whole new
//! version's hash is checked, then `commit` installs it. An unchanged file
//! is only checked, never rewritten.

use std::ops::Range;
use std::os::unix::fs::FileExt;
use std::time::SystemTime;

use diffcopy_core::BlockLayout;
use diffcopy_core::delta::Source;

use super::session::{DeltaUpload, ToCommit, moved_copies};
use crate::faults::{FaultHook, FaultPoint};
use crate::fs::{DiskWrites, FileVersion};
use crate::serve::commit::{
    Base, Commit, Committer, Expect, NewVersion, check_unchanged, copy_in, install, read_assembled, set_mtime,
};
use crate::serve::error::{AppError, AppResult};
use crate::serve::sessions::Session as _;
use crate::serve::v2::{DeltaOutcome, mismatch, rebuilt_hash};

/// Checks and commits `upload` as `job.plan` says (blocking I/O).
pub(super) fn commit(
    upload: &DeltaUpload,
    job: &ToCommit,
    ctx: &Committer,
    mtime: Option<SystemTime>,
) -> AppResult<DeltaOutcome> {
    let (plan, file_hash, known) = (&job.plan, job.file_hash, &job.known);
    let params = &upload.params;
    let base = upload.base.as_ref().map(|b| Base { file: &b.file, version: b.version });
    let base_etag = upload.base.as_ref().map(|b| b.version.etag());
    // The target must still be what the search read: that version, or absent.
    let expect = base_etag.as_deref().map_or(Expect::Absent, Expect::Etag);
    let staged = upload.staging.staged(&upload.path);
    let layout = BlockLayout::new(params.file_size, params.levels.block_size())
        .map_err(|e| AppError::internal("the upload's block layout", e))?;
    let outcome = |etag: String, commit: &'static str| DeltaOutcome::new(&upload.path, plan, etag, commit);
    // Everything below runs on this thread: what the kernel counts it
    // writing is what the commit wrote.
    let written = DiskWrites::of_thread();

    if let (Some(base), Some(old)) = (&base, &upload.base)
        && plan.is_identity(old.len())
    {
        let read = |offset: u64, buf: &mut [u8]| old.file.read_exact_at(buf, offset);
        if rebuilt_hash(read, layout, params.seed, known)? != file_hash {
            return Err(mismatch());
        }
        let mut current = check_unchanged(ctx.root, &upload.path, Some(base), expect)?;
        upload.discard();
        if mtime.is_some() {
            // The bytes stay; only the time the uploader gave is new.
            let failed = |e: std::io::Error| AppError::from_fs(e.into(), &upload.path);
            set_mtime(&old.file, mtime).map_err(failed)?;
            current = Some(FileVersion::of(&old.file).map_err(failed)?);
        }
        return Ok(outcome(current.map(|v| v.etag()).unwrap_or_default(), "none"));
    }

    // Data the search found elsewhere in the old version joins the literal
    // data in the staging file (unless the session copied it while the data
    // arrived); what it found at the same offset stays put.
    let moved = if job.moved_copied { Vec::new() } else { moved_copies(plan) };
    match &base {
        Some(base) => copy_in(&staged, base, &moved)?,
        None if plan.copied_bytes() > 0 => {
            return Err(AppError::internal("committing", "a plan copies from a file that did not exist"));
        }
        None => {}
    }
    let mut in_staging: Vec<Range<u64>> = Vec::new();
    for segment in plan.segments() {
        if segment.source != Source::Old(segment.new.start) {
            match in_staging.last_mut() {
                Some(last) if last.end == segment.new.start => last.end = segment.new.end,
                _ => in_staging.push(segment.new.clone()),
            }
        }
    }
    let version = NewVersion { size: params.file_size, staged: in_staging };
    let commit = Commit { ctx: *ctx, staged, base, version: &version, expect, id: &upload.id, mtime };
    FaultHook::at(ctx.faults, FaultPoint::FileHashCheck);
    // Blocks the search found whole are the old bytes it hashed, copied in
    // the kernel: their hashes are known. The others are read back.
    let read = |offset: u64, buf: &mut [u8]| read_assembled(&commit, offset, buf);
    if rebuilt_hash(read, layout, params.seed, known)? != file_hash {
        return Err(mismatch());
    }
    let installed = install(&commit)?;
    // What this commit wrote, here and in the session's early copy.
    let written = written.so_far().zip(job.moved_written).map(|(here, early)| here + early);
    let outcome = outcome(installed.version.etag(), installed.mode.name()).with_disk_bytes(written);
    ctx.stats.installed(installed.mode, installed.bytes_written + outcome.moved_bytes(), written);
    Ok(outcome)
}

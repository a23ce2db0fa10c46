//! Committing a protocol v2 upload: the data the plan finds elsewhere in
//! the old version joins the literal data in the staging file, the whole new
//! version's hash is checked, then `commit` installs it. An unchanged file
//! is only checked, never rewritten.

use std::ops::Range;
use std::os::unix::fs::FileExt;

use diffcopy_core::BlockLayout;
use diffcopy_core::delta::{FileHasher, Plan, Source, block_hash};
use serde::Serialize;

use super::session::{DeltaUpload, ToCommit};
use crate::serve::commit::{
    Base, Commit, Copy, Expect, NewVersion, Staged, check_unchanged, copy_in, install, read_assembled,
};
use crate::serve::error::{AppError, AppResult, ErrorKind};
use crate::serve::faults::{FaultHook, FaultPoint};
use crate::serve::state::AppState;

/// What a successful commit answers.
#[derive(Debug, Serialize)]
pub(crate) struct DeltaOutcome {
    path: String,
    size: u64,
    etag: String,
    /// Bytes that came as literal data.
    literal_bytes: u64,
    /// Bytes copied from the old version.
    copied_bytes: u64,
    /// Of those, bytes found elsewhere than at their own offset.
    moved_bytes: u64,
    /// Where those are in the new file: merged ranges, at most
    /// [`MAX_MOVED_RANGES`] (neighbours joined beyond that: for display).
    moved: Vec<[u64; 2]>,
    /// Whether the new file is the old one, untouched.
    unchanged: bool,
    /// How the new version was installed: `reflink`, `journal`, `replace`,
    /// or `none` for an unchanged file.
    commit: &'static str,
}

/// The most ranges a commit's answer lists as moved.
const MAX_MOVED_RANGES: usize = 1024;

/// The new file's ranges that `plan` copies from elsewhere in the old one.
pub(crate) fn moved_ranges(plan: &Plan) -> (u64, Vec<[u64; 2]>) {
    let mut ranges: Vec<[u64; 2]> = Vec::new();
    let mut bytes = 0;
    for segment in plan.segments() {
        if matches!(segment.source, Source::Old(at) if at != segment.new.start) {
            bytes += segment.new.end - segment.new.start;
            match ranges.last_mut() {
                Some(last) if last[1] == segment.new.start => last[1] = segment.new.end,
                _ => ranges.push([segment.new.start, segment.new.end]),
            }
        }
    }
    if ranges.len() > MAX_MOVED_RANGES {
        // One range per 1/MAX_MOVED_RANGES of the file, spanning what moved there.
        let span = plan.file_size().div_ceil(MAX_MOVED_RANGES as u64).max(1);
        let mut coarse: Vec<[u64; 2]> = Vec::new();
        for [start, end] in ranges {
            match coarse.last_mut() {
                Some(last) if last[0] / span == start / span => last[1] = end,
                _ => coarse.push([start, end]),
            }
        }
        ranges = coarse;
    }
    (bytes, ranges)
}

/// 422: the rebuilt file is not the client's.
fn mismatch() -> AppError {
    AppError::new(
        ErrorKind::FileHashMismatch,
        "the rebuilt file does not have the file hash the client sent; nothing was committed",
    )
}

/// Checks and commits `upload` as `job.plan` says (blocking I/O).
pub(super) fn commit(upload: &DeltaUpload, job: &ToCommit, state: &AppState) -> AppResult<DeltaOutcome> {
    let (plan, file_hash, known) = (&job.plan, job.file_hash, &job.known);
    let params = &upload.params;
    let faults = state.config.fault_hook.as_ref();
    let base = upload.base.as_ref().map(|b| Base { file: &b.file, version: b.version });
    let base_etag = upload.base.as_ref().map(|b| b.version.etag());
    // The target must still be what the search read: that version, or absent.
    let expect = base_etag.as_deref().map_or(Expect::Absent, Expect::Etag);
    let staged =
        Staged { path: &upload.path, dir: &upload.dir, name: &upload.staging_name, file: &upload.staging };
    let layout = BlockLayout::new(params.file_size, params.levels.block_size())
        .map_err(|e| AppError::internal("the upload's block layout", e))?;
    let (moved_bytes, moved_ranges) = moved_ranges(plan);
    let outcome = |etag: String, commit: &'static str| DeltaOutcome {
        path: upload.path.to_string(),
        size: params.file_size,
        etag,
        literal_bytes: plan.literal_bytes(),
        copied_bytes: plan.copied_bytes(),
        moved_bytes,
        moved: moved_ranges.clone(),
        unchanged: commit == "none",
        commit,
    };

    if let (Some(base), Some(old)) = (&base, &upload.base)
        && plan.is_identity(old.len())
    {
        let read = |offset: u64, buf: &mut [u8]| old.file.read_exact_at(buf, offset);
        if rebuilt_hash(read, layout, params.seed, known)? != file_hash {
            return Err(mismatch());
        }
        let current = check_unchanged(&state.root, &upload.path, Some(base), expect)?;
        upload.discard();
        return Ok(outcome(current.map(|v| v.etag()).unwrap_or_default(), "none"));
    }

    // Data the search found elsewhere in the old version joins the literal
    // data in the staging file; what it found at the same offset stays put.
    let moved: Vec<Copy> = plan
        .segments()
        .iter()
        .filter_map(|s| match s.source {
            Source::Old(at) if at != s.new.start => Some(Copy { new: s.new.clone(), old_start: at }),
            _ => None,
        })
        .collect();
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
    let commit = Commit {
        root: &state.root,
        staged,
        base,
        version: &version,
        expect,
        mode: state.config.commit,
        journal: &state.applies,
        locks: &state.locks,
        id: &upload.id,
        faults,
    };
    FaultHook::at(faults, FaultPoint::FileHashCheck);
    // Blocks the search found whole are the old bytes it hashed, copied in
    // the kernel: their hashes are known. The others are read back.
    let read = |offset: u64, buf: &mut [u8]| read_assembled(&commit, offset, buf);
    if rebuilt_hash(read, layout, params.seed, known)? != file_hash {
        return Err(mismatch());
    }
    let installed = install(&commit)?;
    state.stats.installed(installed.mode, installed.bytes_written + moved_bytes);
    Ok(outcome(installed.version.etag(), installed.mode.name()))
}

/// The file hash of the new version (`layout`'s blocks, read with `read`
/// and hashed with `seed` on up to four threads), taking block `i`'s hash
/// from `known[i]` where it is there.
pub(crate) fn rebuilt_hash(
    read: impl Fn(u64, &mut [u8]) -> std::io::Result<()> + Sync,
    layout: BlockLayout,
    seed: u64,
    known: &[Option<u128>],
) -> AppResult<u128> {
    let count = layout.block_count();
    let known = |i: u64| known.get(i as usize).copied().flatten();
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get()).min(4) as u64;
    let hashes: Vec<std::io::Result<Vec<u128>>> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|t| {
                let (known, read) = (&known, &read);
                scope.spawn(move || {
                    let mut buf = vec![0u8; layout.block_size() as usize];
                    let mut out = Vec::new();
                    for i in (t..count).step_by(threads as usize) {
                        if let Some(hash) = known(i) {
                            out.push(hash);
                            continue;
                        }
                        let range = layout.block_range(i).unwrap_or_default();
                        let block = &mut buf[..(range.end - range.start) as usize];
                        read(range.start, block)?;
                        out.push(block_hash(seed, block));
                    }
                    Ok(out)
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|w| w.join().unwrap_or_else(|_| Err(std::io::Error::other("hashing panicked"))))
            .collect()
    });
    let hashes = hashes
        .into_iter()
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| AppError::internal("hashing the new file", e))?;
    let mut file_hash = FileHasher::new(seed, layout.file_size(), layout.block_size());
    for i in 0..count {
        let (thread, nth) = ((i % threads) as usize, (i / threads) as usize);
        file_hash.push(hashes[thread][nth]);
    }
    Ok(file_hash.finish())
}

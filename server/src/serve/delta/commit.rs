//! Committing a protocol v2 upload: the plan's copies from the old version
//! go into the staging file beside the literal data, the whole new file's
//! hash is checked, then it is renamed over the target. An unchanged file
//! is only checked, never rewritten.

use std::fs::File;
use std::os::unix::fs::FileExt;

use axum::http::StatusCode;
use diffcopy_core::BlockLayout;
use diffcopy_core::delta::{FileHasher, Source, block_hash};
use serde::Serialize;

use super::session::{DeltaUpload, ToCommit};
use crate::fs::Root;
use crate::serve::error::{AppError, AppResult};
use crate::serve::faults::{FaultHook, FaultPoint};
use crate::serve::replace::{Base, Copy, Expect, Staged, check_unchanged, copy_in, install};

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
    /// Whether the new file is the old one, untouched.
    unchanged: bool,
}

/// 422: the rebuilt file is not the client's.
fn mismatch() -> AppError {
    AppError::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        "file_hash_mismatch",
        "the rebuilt file does not have the file hash the client sent; nothing was committed",
    )
}

/// Checks and commits `upload` as `job.plan` says (blocking I/O).
pub(super) fn commit(
    upload: &DeltaUpload,
    job: &ToCommit,
    root: &Root,
    faults: Option<&FaultHook>,
) -> AppResult<DeltaOutcome> {
    let (plan, file_hash, known) = (&job.plan, job.file_hash, &job.known);
    let params = &upload.params;
    let base = upload.base.as_ref().map(|b| Base { file: &b.file, version: b.version });
    let base_etag = upload.base.as_ref().map(|b| b.version.etag());
    // The target must still be what the search read: that version, or absent.
    let expected = base_etag.as_deref().map_or(Expect::Absent, Expect::Etag);
    let staged =
        Staged { path: &upload.path, dir: &upload.dir, name: &upload.staging_name, file: &upload.staging };
    let layout = BlockLayout::new(params.file_size, params.levels.block_size())
        .map_err(|e| AppError::internal("the upload's block layout", e))?;
    let outcome = |etag: String, unchanged: bool| DeltaOutcome {
        path: upload.path.to_string(),
        size: params.file_size,
        etag,
        literal_bytes: plan.literal_bytes(),
        copied_bytes: plan.copied_bytes(),
        unchanged,
    };

    if let (Some(base), Some(old)) = (&base, &upload.base)
        && plan.is_identity(old.len())
    {
        if rebuilt_hash(&old.file, layout, params.seed, known)? != file_hash {
            return Err(mismatch());
        }
        let current = check_unchanged(root, &upload.path, Some(base), expected)?;
        upload.discard();
        return Ok(outcome(current.map(|v| v.etag()).unwrap_or_default(), true));
    }

    let copies: Vec<Copy> = plan
        .segments()
        .iter()
        .filter_map(|s| match s.source {
            Source::Old(at) => Some(Copy { new: s.new.clone(), old_start: at }),
            Source::Literal => None,
        })
        .collect();
    if let Some(base) = &base {
        copy_in(&staged, base, &copies)?;
    } else if !copies.is_empty() {
        return Err(AppError::internal("committing", "a plan copies from a file that did not exist"));
    }
    FaultHook::at(faults, FaultPoint::FileHashCheck);
    // Blocks the search found whole are the old bytes it hashed, copied in
    // the kernel: their hashes are known. The others are read back.
    if rebuilt_hash(&upload.staging, layout, params.seed, known)? != file_hash {
        return Err(mismatch());
    }
    let version = install(root, &staged, base.as_ref(), expected)?;
    Ok(outcome(version.etag(), false))
}

/// The file hash of `file` (`layout`'s blocks, hashed with `seed` on up to
/// four threads), taking block `i`'s hash from `known[i]` where it is there.
fn rebuilt_hash(file: &File, layout: BlockLayout, seed: u64, known: &[Option<u128>]) -> AppResult<u128> {
    let count = layout.block_count();
    let known = |i: u64| known.get(i as usize).copied().flatten();
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get()).min(4) as u64;
    let hashes: Vec<std::io::Result<Vec<u128>>> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|t| {
                let known = &known;
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
                        file.read_exact_at(block, range.start)?;
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

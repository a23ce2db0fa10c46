//! Committing an upload: every block is either uploaded (digest checked) or
//! unchanged in the current target; then `commit` makes the staging file's
//! blocks and the target's unchanged ones the new version.

use crate::serve::hooks::{Committed, Reported};
use std::collections::BTreeMap;
use std::os::unix::fs::FileExt;
use std::sync::Arc;

use diffcopy_core::{Digest, Signature, diff, hash_block};
use serde::Serialize;
use serde_json::json;

use super::session::{Upload, run_pairs};
use crate::fs::DiskWrites;
use crate::fs::FsError;
use crate::serve::commit::{Base, Commit, Commits, Expect, NewVersion, install};
use crate::serve::error::{AppError, AppResult, ErrorKind};
use crate::serve::sessions::lock;
use crate::serve::signer::Signer;

/// What a successful commit answers.
#[derive(Debug, Serialize)]
pub(crate) struct CommitOutcome {
    path: String,
    size: u64,
    etag: String,
    blocks_uploaded: u64,
    blocks_reused: u64,
    /// How the new version was installed: `reflink`, `journal` or `replace`.
    commit: &'static str,
    /// The bytes of those blocks.
    #[serde(skip)]
    bytes_uploaded: u64,
}

impl Reported for CommitOutcome {
    fn committed(&self) -> Committed {
        Committed {
            path: self.path.clone(),
            size: self.size,
            etag: self.etag.clone(),
            bytes_received: self.bytes_uploaded,
            commit_mode: self.commit,
        }
    }
}

/// Verifies `upload` against the source's full `signature` and replaces the
/// target with it. `received` are the blocks on disk in the staging file.
pub(super) async fn commit_upload(
    upload: &Arc<Upload>,
    received: BTreeMap<u64, Digest>,
    signature: &Signature,
    signer: &Arc<Signer>,
    state: Arc<impl Commits>,
) -> AppResult<CommitOutcome> {
    // Uploaded blocks must be the signature's; the rest must be in the base.
    for (&index, digest) in &received {
        if signature.block_digest(index) != Some(digest.as_bytes()) {
            return Err(AppError::new(
                ErrorKind::DigestMismatch,
                format!("uploaded block {index} is not the block the signature describes"),
            ));
        }
    }
    if upload.restored {
        let bad = reverify(upload, &received).await?;
        if !bad.is_empty() {
            let mut upload_state = lock(&upload.state);
            for i in &bad {
                upload_state.received.remove(i);
            }
            return Err(missing_blocks(&bad));
        }
    }
    let needed: Vec<u64> =
        (0..signature.header().block_count()).filter(|i| !received.contains_key(i)).collect();
    let base = if needed.is_empty() {
        None
    } else {
        match state.committer().root.open_read(&upload.path) {
            Ok(file) => Some(file),
            Err(FsError::NotFound) => None,
            Err(e) => return Err(AppError::from_fs(e, &upload.path)),
        }
    };
    let base_version = match base {
        Some(file) => {
            let copy = file.try_clone().map_err(|e| AppError::internal("duplicating a descriptor", e))?;
            let stream = signer.start(copy, signature.algorithm(), signature.block_size(), None).await?;
            let version = stream.version();
            let base_sig = stream.collect().await.map_err(|e| AppError::internal("hashing the base", e))?;
            // The core's diff decides which blocks the base has unchanged.
            let changed = diff(signature, Some(&base_sig))
                .map_err(|e| AppError::internal("comparing with the base", e))?;
            let missing: Vec<u64> =
                needed.iter().copied().filter(|i| changed.blocks().binary_search(i).is_ok()).collect();
            if !missing.is_empty() {
                return Err(missing_blocks(&missing));
            }
            Some((file, version))
        }
        None if needed.is_empty() => None,
        None => return Err(missing_blocks(&needed)),
    };
    let version = NewVersion {
        size: upload.header.file_size(),
        staged: signature.layout().byte_runs(received.keys().copied()),
    };
    let blocks_uploaded = received.len() as u64;
    let bytes_uploaded = version.staged.iter().map(|r| r.end - r.start).sum();
    let blocks_reused = signature.header().block_count() - blocks_uploaded;
    let upload = upload.clone();
    tokio::task::spawn_blocking(move || {
        let ctx = state.committer();
        let commit = Commit {
            ctx,
            staged: upload.staging.staged(&upload.path),
            base: base_version.as_ref().map(|(file, version)| Base { file, version: *version }),
            version: &version,
            // The target must still be the version the client compared
            // against, whether or not any of its blocks were reused.
            expect: upload.base_etag.as_deref().map_or(Expect::Any, Expect::Etag),
            id: &upload.id,
            mtime: None,
        };
        let written = DiskWrites::of_thread();
        let installed = install(&commit)?;
        ctx.stats.installed(installed.mode, installed.bytes_written, written.so_far());
        Ok(CommitOutcome {
            path: upload.path.to_string(),
            size: upload.header.file_size(),
            etag: installed.version.etag(),
            blocks_uploaded,
            blocks_reused,
            commit: installed.mode.name(),
            bytes_uploaded,
        })
    })
    .await
    .map_err(|e| AppError::internal("committing", e))?
}

/// Re-hashes the received blocks of a session restored after a restart;
/// returns those whose bytes in the staging file no longer match.
async fn reverify(upload: &Arc<Upload>, received: &BTreeMap<u64, Digest>) -> AppResult<Vec<u64>> {
    let upload = upload.clone();
    let received = received.clone();
    tokio::task::spawn_blocking(move || {
        let layout = upload.header.layout();
        let mut buf = vec![0u8; upload.header.block_size() as usize];
        let mut bad = Vec::new();
        for (&i, digest) in &received {
            let Some(range) = layout.block_range(i) else { continue };
            let block = &mut buf[..(range.end - range.start) as usize];
            let ok = upload.staging.file().read_exact_at(block, range.start).is_ok()
                && hash_block(upload.header.algorithm(), block) == *digest;
            if !ok {
                bad.push(i);
            }
        }
        bad
    })
    .await
    .map_err(|e| AppError::internal("re-checking blocks", e))
}

fn missing_blocks(missing: &[u64]) -> AppError {
    AppError::new(
        ErrorKind::MissingBlocks,
        format!("{} blocks were neither uploaded nor unchanged in the current target", missing.len()),
    )
    .with("missing", json!(run_pairs(missing.iter().copied())))
}

//! One upload session: its staging file, the blocks received so far, and
//! the rule that no block lands once a commit has started.

use std::collections::BTreeMap;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::sync::Mutex;
use std::time::Instant;

use diffcopy_core::{Digest, SignatureHeader, hash_block, index_runs};
use serde::Serialize;

use crate::faults::{FaultHook, FaultPoint};
use crate::fs::RelPath;
use crate::serve::error::{AppError, AppResult, ErrorKind};
use crate::serve::sessions::{Session, Staging, Writes, commit_in_progress, lock};

/// One upload in progress.
#[derive(Debug)]
pub(crate) struct Upload {
    /// The session id (32 hex digits).
    pub(crate) id: String,
    /// The target path.
    pub(crate) path: RelPath,
    /// The `sub` of the token that opened it.
    pub(crate) owner: Option<String>,
    /// The source file's algorithm, block size and size.
    pub(crate) header: SignatureHeader,
    pub(super) base_etag: Option<String>,
    pub(super) staging: Staging,
    /// The journal's block log for this session.
    pub(super) log: File,
    /// Recovered after a restart: its blocks are re-hashed at commit.
    pub(super) restored: bool,
    pub(super) state: Mutex<UploadState>,
    /// Block writes in flight.
    pub(super) writes: Writes,
}

#[derive(Debug)]
pub(super) struct UploadState {
    /// Digests of the blocks received, by index.
    pub(super) received: BTreeMap<u64, Digest>,
    pub(super) last_seen: Instant,
    /// Set once a commit starts; blocks that arrive afterwards are refused.
    pub(super) committing: bool,
    /// Bytes in the block log.
    pub(super) log_len: u64,
}

impl UploadState {
    pub(super) fn new(received: BTreeMap<u64, Digest>, log_len: u64) -> Self {
        Self { received, last_seen: Instant::now(), committing: false, log_len }
    }
}

/// What `GET /api/v1/uploads/{id}` answers.
#[derive(Debug, Serialize)]
pub(crate) struct UploadStatus {
    id: String,
    path: String,
    size: u64,
    block_size: u32,
    hash: &'static str,
    block_count: u64,
    /// Runs of received block indexes, `[start, end)`.
    received: Vec<[u64; 2]>,
    received_blocks: u64,
}

/// Index runs as `[start, end)` pairs, the form the JSON answers use.
pub(super) fn run_pairs(indexes: impl IntoIterator<Item = u64>) -> Vec<[u64; 2]> {
    index_runs(indexes, u64::MAX).into_iter().map(|r| [r.start, r.end]).collect()
}

impl Upload {
    /// Checks and stores block `index` (blocking I/O: call from a blocking
    /// thread). Refused with 409 once a commit has started; a write admitted
    /// before that is waited for by the commit.
    pub(crate) fn put_block(
        &self,
        index: u64,
        digest_hex: &str,
        bytes: &[u8],
        faults: Option<&FaultHook>,
    ) -> AppResult<()> {
        let layout = self.header.layout();
        let Some(range) = layout.block_range(index) else {
            return Err(AppError::new(
                ErrorKind::BlockOutOfRange,
                format!("block {index} is past the last block ({})", layout.block_count()),
            ));
        };
        let expected_len = range.end - range.start;
        if bytes.len() as u64 != expected_len {
            return Err(AppError::new(
                ErrorKind::BadBlockLength,
                format!("block {index} must be {expected_len} bytes, got {}", bytes.len()),
            ));
        }
        let algorithm = self.header.algorithm();
        let claimed = Digest::from_hex(digest_hex.trim(), algorithm.digest_len()).map_err(|e| {
            AppError::new(ErrorKind::BadDigest, format!("X-Block-Digest is not a {algorithm} digest: {e}"))
        })?;
        let actual = hash_block(algorithm, bytes);
        if actual != claimed {
            return Err(AppError::new(
                ErrorKind::BadDigest,
                format!("block {index} hashes to {actual}, not to the X-Block-Digest {claimed}"),
            ));
        }
        let _in_flight = {
            let state = lock(&self.state);
            if state.committing {
                return Err(commit_in_progress());
            }
            self.writes.admit()
        };
        FaultHook::at(faults, FaultPoint::BlockWrite { index });
        self.staging.write_at(bytes, range.start).map_err(|e| AppError::from_fs(e.into(), &self.path))?;
        let mut state = lock(&self.state);
        let mut record = index.to_le_bytes().to_vec();
        record.extend_from_slice(actual.as_bytes());
        // The block is on disk; its journal record is what a restarted server
        // trusts (and re-checks at commit).
        if let Err(e) = self.log.write_all_at(&record, state.log_len) {
            tracing::warn!(id = %self.id, "could not journal block {index}: {e}");
        } else {
            state.log_len += record.len() as u64;
        }
        state.received.insert(index, actual);
        state.last_seen = Instant::now();
        Ok(())
    }

    /// Marks the session as committing (409 if it already is) and waits for
    /// the block writes admitted before that moment; returns the blocks
    /// received, all of them on disk.
    pub(super) async fn begin_commit(&self) -> AppResult<BTreeMap<u64, Digest>> {
        {
            let mut state = lock(&self.state);
            if state.committing {
                return Err(commit_in_progress());
            }
            state.committing = true;
        }
        self.writes.drained().await;
        Ok(lock(&self.state).received.clone())
    }

    /// Lets blocks arrive again after a commit failed.
    pub(super) fn end_commit(&self) {
        lock(&self.state).committing = false;
    }

    /// The session's state for resuming.
    pub(crate) fn status(&self) -> UploadStatus {
        let state = lock(&self.state);
        UploadStatus {
            id: self.id.clone(),
            path: self.path.to_string(),
            size: self.header.file_size(),
            block_size: self.header.block_size(),
            hash: self.header.algorithm().name(),
            block_count: self.header.block_count(),
            received: run_pairs(state.received.keys().copied()),
            received_blocks: state.received.len() as u64,
        }
    }
}

impl Session for Upload {
    fn touch(&self) {
        lock(&self.state).last_seen = Instant::now();
    }

    fn idle_since(&self) -> Option<Instant> {
        let state = lock(&self.state);
        (!state.committing).then_some(state.last_seen)
    }

    fn discard(&self) {
        self.staging.remove(&self.path);
    }
}

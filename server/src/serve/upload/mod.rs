//! Upload sessions (API v1): blocks land in a staging file beside the
//! target, each checked against its digest; a commit verifies the whole
//! signature, fills unchanged blocks from the current target, and renames
//! the staging file over the target atomically.
//!
//! * `session.rs`: one session, its blocks, and how commits and block
//!   writes exclude each other;
//! * `commit.rs`: verifying and replacing the target;
//! * `journal.rs`: the on-disk record that lets a restarted server resume.

mod commit;
mod journal;
mod session;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use diffcopy_core::{Digest, HashAlgorithm, Signature, SignatureHeader};

pub(crate) use commit::CommitOutcome;
use journal::{Journal, Recovered, SessionRecord};
pub(crate) use session::Upload;
use session::UploadState;

use crate::fs::{FsError, RelPath, Root};
use crate::limits::{check_block_count, check_block_size};
use crate::serve::commit::{Commits, current_version, target_changed};
use crate::serve::config::ServerConfig;
use crate::serve::error::{AppError, AppResult, ErrorKind};
use crate::serve::sessions::{Session as _, SessionTable, Staging, Writes};
use crate::serve::signer::Signer;

/// All open upload sessions.
#[derive(Debug)]
pub(crate) struct UploadStore {
    journal: Journal,
    sessions: SessionTable<Upload>,
}

/// What a client asks for when it opens an upload.
#[derive(Debug, serde::Deserialize)]
pub(crate) struct NewUpload {
    /// The target path.
    pub(crate) path: String,
    /// The source file's size.
    pub(crate) size: u64,
    /// The block size.
    pub(crate) block_size: u32,
    /// The hash algorithm name.
    #[serde(default = "default_hash")]
    pub(crate) hash: String,
    /// The target's ETag the client diffed against, if any.
    #[serde(default)]
    pub(crate) base_etag: Option<String>,
}

fn default_hash() -> String {
    HashAlgorithm::Sha1.name().to_owned()
}

impl UploadStore {
    /// Opens the session journal below `root` and resumes the sessions a
    /// previous run left, removing those idle for longer than `ttl`.
    pub(crate) fn open(root: &Root, ttl: Duration) -> Result<Self, FsError> {
        let store = Self { journal: Journal::open(root)?, sessions: SessionTable::default() };
        let recovered = store.journal.load(|name| name.parse::<HashAlgorithm>().ok().map(|a| a.digest_len()));
        for found in recovered {
            let id = found.record.id.clone();
            let idle = found.modified.elapsed().unwrap_or_default();
            match store.restore(root, found) {
                Some(upload) if idle <= ttl => {
                    tracing::info!(id = %id, path = %upload.path, "upload resumed from the journal");
                    store.sessions.insert(id, upload);
                }
                Some(upload) => {
                    tracing::info!(id = %id, path = %upload.path, "stale upload removed");
                    upload.discard();
                    store.journal.end(&id);
                }
                None => store.journal.end(&id),
            }
        }
        Ok(store)
    }

    fn restore(&self, root: &Root, found: Recovered) -> Option<Arc<Upload>> {
        let record = found.record;
        let path = RelPath::parse(&record.path).ok()?;
        let algorithm: HashAlgorithm = record.hash.parse().ok()?;
        let header = SignatureHeader::new(algorithm, record.block_size, record.size).ok()?;
        let staging = Staging::reopen(root.parent_dir(&path, false).ok()?, &record.id)?;
        let log = self.journal.reopen_log(&record.id).ok()?;
        let log_len = (found.blocks.len() * (8 + algorithm.digest_len())) as u64;
        let received: BTreeMap<u64, Digest> = found
            .blocks
            .into_iter()
            .filter(|(i, _)| *i < header.block_count())
            .filter_map(|(i, d)| Some((i, Digest::from_slice(&d)?)))
            .collect();
        Some(Arc::new(Upload {
            id: record.id,
            path,
            owner: record.owner,
            header,
            base_etag: record.base_etag,
            staging,
            log,
            restored: true,
            state: Mutex::new(UploadState::new(received, log_len)),
            writes: Writes::default(),
        }))
    }

    /// Opens a session and its staging file (blocking I/O: call from a blocking thread).
    pub(crate) fn create(
        &self,
        root: &Root,
        config: &ServerConfig,
        request: NewUpload,
        owner: Option<String>,
    ) -> AppResult<Arc<Upload>> {
        let path = RelPath::parse(&request.path)?;
        check_block_size(request.block_size)?;
        let algorithm: HashAlgorithm = request.hash.parse()?;
        if request.size > config.max_file_size {
            return Err(AppError::file_too_large(request.size, config.max_file_size));
        }
        // Also refuses a target that is a directory or a symlink out of the root.
        let current = current_version(root, &path)?;
        if let Some(expected) = &request.base_etag
            && current.map(|v| v.etag()).as_ref() != Some(expected)
        {
            return Err(target_changed(&path));
        }
        let header = SignatureHeader::new(algorithm, request.block_size, request.size)
            .map_err(|e| AppError::new(ErrorKind::BadBlockSize, e.to_string()))?;
        check_block_count(&header)?;
        let dir = root.parent_dir(&path, true).map_err(|e| AppError::from_fs(e, &path))?;
        let id = crate::random::random_hex(16).map_err(|e| AppError::internal("making a session id", e))?;
        let staging = Staging::create(dir, &id, request.size, &path)?;
        let record = SessionRecord {
            id: id.clone(),
            path: path.to_string(),
            size: request.size,
            block_size: request.block_size,
            hash: algorithm.name().to_owned(),
            base_etag: request.base_etag.clone(),
            owner: owner.clone(),
        };
        let log = match self.journal.begin(&record) {
            Ok(log) => log,
            Err(e) => {
                staging.remove(&path);
                return Err(AppError::from_fs(e, &path));
            }
        };
        let upload = Arc::new(Upload {
            id: id.clone(),
            path,
            owner,
            header,
            base_etag: request.base_etag,
            staging,
            log,
            restored: false,
            state: Mutex::new(UploadState::new(BTreeMap::new(), 0)),
            writes: Writes::default(),
        });
        self.sessions.insert(id, upload.clone());
        Ok(upload)
    }

    /// The session `id`, touched so it does not expire.
    pub(crate) fn get(&self, id: &str) -> AppResult<Arc<Upload>> {
        self.sessions.get(id)
    }

    /// Ends session `id` and removes its staging file.
    pub(crate) fn abort(&self, id: &str) -> AppResult<()> {
        self.sessions.remove(id)?.discard();
        self.journal.end(id);
        Ok(())
    }

    /// Removes sessions idle for longer than `ttl`; returns how many.
    pub(crate) fn expire(&self, ttl: Duration) -> usize {
        let expired = self.sessions.take_expired(ttl);
        for (id, upload) in &expired {
            tracing::info!(id = %id, path = %upload.path, "upload expired");
            upload.discard();
            self.journal.end(id);
        }
        expired.len()
    }

    /// How many sessions are open.
    pub(crate) fn len(&self) -> usize {
        self.sessions.len()
    }

    /// Verifies and commits session `id` against the source's full signature.
    pub(crate) async fn commit(
        &self,
        id: &str,
        signer: &Arc<Signer>,
        state: Arc<impl Commits>,
        signature_bytes: bytes::Bytes,
    ) -> AppResult<CommitOutcome> {
        let upload = self.get(id)?;
        let signature = Signature::decode(&signature_bytes).map_err(|e| {
            AppError::new(ErrorKind::BadSignature, format!("the commit body is not a signature: {e}"))
        })?;
        if *signature.header() != upload.header {
            return Err(AppError::new(
                ErrorKind::SignatureMismatch,
                "the signature's algorithm, block size or file size differ from the upload's",
            ));
        }
        let received = upload.begin_commit().await?;
        let _guard = state.committer().locks.commit(&upload.path).await;
        let result = commit::commit_upload(&upload, received, &signature, signer, state).await;
        match &result {
            Ok(_) => {
                let _ = self.sessions.remove(id);
                self.journal.end(id);
            }
            Err(_) => upload.end_commit(),
        }
        result
    }
}

//! Upload sessions: blocks land in a staging file beside the target, each
//! checked against its digest; a commit verifies the whole signature, fills
//! unchanged blocks from the current target, and renames the staging file
//! over the target atomically.

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::Read;
use std::ops::Range;
use std::os::unix::fs::FileExt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use diffcopy_core::{Digest, HashAlgorithm, Signature, SignatureHeader, diff, hash_block};
use serde::Serialize;
use serde_json::json;

use crate::config::{MAX_BLOCK_SIZE, MAX_BLOCKS, MIN_BLOCK_SIZE, ServerConfig};
use crate::copy::copy_range;
use crate::error::{AppError, AppResult};
use crate::journal::{Journal, Recovered, SessionRecord};
use crate::relpath::{RESERVED_PREFIX, RelPath};
use crate::root::{Dir, FsError, Root};
use crate::state::AppState;
use crate::version::FileVersion;

/// One upload in progress.
#[derive(Debug)]
pub struct Upload {
    /// The session id (32 hex digits).
    pub id: String,
    /// The target path.
    pub path: RelPath,
    /// The source file's algorithm, block size and size.
    pub header: SignatureHeader,
    base_etag: Option<String>,
    dir: Dir,
    staging_name: String,
    staging: File,
    /// The journal's block log for this session.
    log: File,
    /// Recovered after a restart: its blocks are re-hashed at commit.
    restored: bool,
    state: Mutex<UploadState>,
}

#[derive(Debug)]
struct UploadState {
    /// Digests of the blocks received, by index.
    received: BTreeMap<u64, Digest>,
    last_seen: Instant,
    committing: bool,
    /// Bytes in the block log.
    log_len: u64,
}

/// What `GET /api/v1/uploads/{id}` answers.
#[derive(Debug, Serialize)]
pub struct UploadStatus {
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

/// What a successful commit answers.
#[derive(Debug, Serialize)]
pub struct CommitOutcome {
    path: String,
    size: u64,
    etag: String,
    blocks_uploaded: u64,
    blocks_reused: u64,
}

/// All open upload sessions.
#[derive(Debug)]
pub struct UploadStore {
    journal: Journal,
    sessions: Mutex<HashMap<String, Arc<Upload>>>,
    /// One lock per target path, so commits to one path run one at a time.
    commit_locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

/// What a client asks for when it opens an upload.
#[derive(Debug, serde::Deserialize)]
pub struct NewUpload {
    /// The target path.
    pub path: String,
    /// The source file's size.
    pub size: u64,
    /// The block size.
    pub block_size: u32,
    /// The hash algorithm name.
    #[serde(default = "default_hash")]
    pub hash: String,
    /// The target's ETag the client diffed against, if any.
    #[serde(default)]
    pub base_etag: Option<String>,
}

fn default_hash() -> String {
    HashAlgorithm::Sha1.name().to_owned()
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Checks a block size against the server's range.
pub fn check_block_size(block_size: u32) -> AppResult<()> {
    if !(MIN_BLOCK_SIZE..=MAX_BLOCK_SIZE).contains(&block_size) {
        return Err(AppError::bad_request(
            "bad_block_size",
            format!("block size {block_size} is outside {MIN_BLOCK_SIZE}..={MAX_BLOCK_SIZE} bytes"),
        ));
    }
    Ok(())
}

/// Refuses a file that would have more than [`MAX_BLOCKS`] blocks.
pub fn check_block_count(header: &SignatureHeader) -> AppResult<()> {
    if header.block_count() > MAX_BLOCKS {
        return Err(AppError::bad_request(
            "too_many_blocks",
            format!(
                "{} blocks of {} bytes is more than {MAX_BLOCKS}; use a larger block size",
                header.block_count(),
                header.block_size()
            ),
        ));
    }
    Ok(())
}

/// Parses an algorithm name into a 400 on failure.
pub fn parse_algorithm(name: &str) -> AppResult<HashAlgorithm> {
    name.parse()
        .map_err(|e: diffcopy_core::ParseAlgorithmError| AppError::bad_request("bad_hash", e.to_string()))
}

fn new_id() -> AppResult<String> {
    let mut bytes = [0u8; 16];
    File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .map_err(|e| AppError::internal("making a session id", e))?;
    Ok(diffcopy_core::hex::encode(&bytes))
}

fn gone(id: &str) -> AppError {
    AppError::new(
        StatusCode::NOT_FOUND,
        "no_such_upload",
        format!("upload {id} does not exist or has expired"),
    )
}

fn target_changed(path: &RelPath) -> AppError {
    AppError::new(
        StatusCode::PRECONDITION_FAILED,
        "target_changed",
        format!("{path} changed since the client compared against it"),
    )
}

/// Index runs `[start, end)` of a sorted index sequence.
fn runs(indexes: impl IntoIterator<Item = u64>) -> Vec<[u64; 2]> {
    let mut out: Vec<[u64; 2]> = Vec::new();
    for i in indexes {
        match out.last_mut() {
            Some(run) if run[1] == i => run[1] += 1,
            _ => out.push([i, i + 1]),
        }
    }
    out
}

/// The current version of the file at `path`, `None` if it does not exist.
fn current_version(root: &Root, path: &RelPath) -> AppResult<Option<FileVersion>> {
    match root.open_read(path) {
        Ok(file) => Ok(Some(FileVersion::of(&file).map_err(|e| AppError::internal("reading metadata", e))?)),
        Err(FsError::NotFound) => Ok(None),
        Err(e) => Err(AppError::from_fs(e, path)),
    }
}

impl UploadStore {
    /// Opens the session journal below `root` and resumes the sessions a
    /// previous run left, removing those idle for longer than `ttl`.
    pub fn open(root: &Root, ttl: Duration) -> Result<Self, FsError> {
        let store = Self {
            journal: Journal::open(root)?,
            sessions: Mutex::default(),
            commit_locks: Mutex::default(),
        };
        let recovered = store.journal.load(|name| name.parse::<HashAlgorithm>().ok().map(|a| a.digest_len()));
        for found in recovered {
            let id = found.record.id.clone();
            let idle = found.modified.elapsed().unwrap_or_default();
            match store.restore(root, found) {
                Some(upload) if idle <= ttl => {
                    tracing::info!(id = %id, path = %upload.path, "upload resumed from the journal");
                    lock(&store.sessions).insert(id, upload);
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
        let dir = root.parent_dir(&path, false).ok()?;
        let staging_name = format!("{RESERVED_PREFIX}{}.part", record.id);
        let staging = dir.open_existing(&staging_name).ok()?;
        let log = self.journal.reopen_log(&record.id).ok()?;
        let log_len = (found.blocks.len() * (8 + algorithm.digest_len())) as u64;
        let received = found
            .blocks
            .into_iter()
            .filter(|(i, _)| *i < header.block_count())
            .filter_map(|(i, d)| Some((i, Digest::from_slice(&d)?)))
            .collect();
        Some(Arc::new(Upload {
            id: record.id,
            path,
            header,
            base_etag: record.base_etag,
            dir,
            staging_name,
            staging,
            log,
            restored: true,
            state: Mutex::new(UploadState {
                received,
                last_seen: Instant::now(),
                committing: false,
                log_len,
            }),
        }))
    }

    /// Opens a session and its staging file (blocking I/O: call from a blocking thread).
    pub fn create(&self, root: &Root, config: &ServerConfig, request: NewUpload) -> AppResult<Arc<Upload>> {
        let path = RelPath::parse(&request.path)?;
        check_block_size(request.block_size)?;
        let algorithm = parse_algorithm(&request.hash)?;
        if request.size > config.max_file_size {
            return Err(AppError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "file_too_large",
                format!(
                    "{} bytes is more than this server's limit of {}",
                    request.size, config.max_file_size
                ),
            ));
        }
        if lock(&self.sessions).len() >= config.max_uploads {
            return Err(AppError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "too_many_uploads",
                "too many uploads are open; finish or abort one, or wait for them to expire",
            ));
        }
        // Also refuses a target that is a directory or a symlink out of the root.
        let current = current_version(root, &path)?;
        if let Some(expected) = &request.base_etag
            && current.map(|v| v.etag()).as_ref() != Some(expected)
        {
            return Err(target_changed(&path));
        }
        let header = SignatureHeader::new(algorithm, request.block_size, request.size)
            .map_err(|e| AppError::bad_request("bad_block_size", e.to_string()))?;
        check_block_count(&header)?;
        let dir = root.parent_dir(&path, true).map_err(|e| AppError::from_fs(e, &path))?;
        let id = new_id()?;
        let staging_name = format!("{RESERVED_PREFIX}{id}.part");
        let staging = dir.create_new(&staging_name).map_err(|e| AppError::from_fs(e, &path))?;
        if let Err(e) = staging.set_len(request.size) {
            let _ = dir.remove(&staging_name);
            return Err(AppError::from_fs(e.into(), &path));
        }
        let record = SessionRecord {
            id: id.clone(),
            path: path.to_string(),
            size: request.size,
            block_size: request.block_size,
            hash: algorithm.name().to_owned(),
            base_etag: request.base_etag.clone(),
        };
        let log = match self.journal.begin(&record) {
            Ok(log) => log,
            Err(e) => {
                let _ = dir.remove(&staging_name);
                return Err(AppError::from_fs(e, &path));
            }
        };
        let upload = Arc::new(Upload {
            id: id.clone(),
            path,
            header,
            base_etag: request.base_etag,
            dir,
            staging_name,
            staging,
            log,
            restored: false,
            state: Mutex::new(UploadState {
                received: BTreeMap::new(),
                last_seen: Instant::now(),
                committing: false,
                log_len: 0,
            }),
        });
        lock(&self.sessions).insert(id, upload.clone());
        Ok(upload)
    }

    /// The session `id`, touched so it does not expire.
    pub fn get(&self, id: &str) -> AppResult<Arc<Upload>> {
        let upload = lock(&self.sessions).get(id).cloned().ok_or_else(|| gone(id))?;
        lock(&upload.state).last_seen = Instant::now();
        Ok(upload)
    }

    /// Ends session `id` and removes its staging file.
    pub fn abort(&self, id: &str) -> AppResult<()> {
        let upload = lock(&self.sessions).remove(id).ok_or_else(|| gone(id))?;
        upload.discard();
        self.journal.end(id);
        Ok(())
    }

    /// Removes sessions idle for longer than `ttl`; returns how many.
    pub fn expire(&self, ttl: Duration) -> usize {
        let now = Instant::now();
        let expired: Vec<Arc<Upload>> = {
            let mut sessions = lock(&self.sessions);
            let ids: Vec<String> = sessions
                .iter()
                .filter(|(_, u)| {
                    let state = lock(&u.state);
                    !state.committing && now.duration_since(state.last_seen) > ttl
                })
                .map(|(id, _)| id.clone())
                .collect();
            ids.iter().filter_map(|id| sessions.remove(id)).collect()
        };
        for upload in &expired {
            tracing::info!(id = %upload.id, path = %upload.path, "upload expired");
            upload.discard();
            self.journal.end(&upload.id);
        }
        expired.len()
    }

    /// How many sessions are open.
    pub fn len(&self) -> usize {
        lock(&self.sessions).len()
    }

    /// Whether no session is open.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn commit_lock(&self, path: &RelPath) -> Arc<tokio::sync::Mutex<()>> {
        let mut locks = lock(&self.commit_locks);
        locks.retain(|_, l| Arc::strong_count(l) > 1);
        locks.entry(path.as_str().to_owned()).or_default().clone()
    }

    /// Verifies and commits session `id` against the source's full signature.
    pub async fn commit(
        &self,
        id: &str,
        state: Arc<AppState>,
        signature_bytes: bytes::Bytes,
    ) -> AppResult<CommitOutcome> {
        let upload = self.get(id)?;
        let signature = Signature::decode(&signature_bytes).map_err(|e| {
            AppError::bad_request("bad_signature", format!("the commit body is not a signature: {e}"))
        })?;
        if *signature.header() != upload.header {
            return Err(AppError::bad_request(
                "signature_mismatch",
                "the signature's algorithm, block size or file size differ from the upload's",
            ));
        }
        {
            let mut state = lock(&upload.state);
            if state.committing {
                return Err(AppError::new(
                    StatusCode::CONFLICT,
                    "commit_in_progress",
                    "this upload is already committing",
                ));
            }
            state.committing = true;
        }
        let path_lock = self.commit_lock(&upload.path);
        let _guard = path_lock.lock().await;
        let result = commit_upload(&upload, &signature, &state).await;
        match &result {
            Ok(_) => {
                lock(&self.sessions).remove(id);
                self.journal.end(id);
            }
            Err(_) => lock(&upload.state).committing = false,
        }
        result
    }
}

impl Upload {
    /// Checks and stores block `index` (blocking I/O: call from a blocking thread).
    pub fn put_block(&self, index: u64, digest_hex: &str, bytes: &[u8]) -> AppResult<()> {
        let layout = self.header.layout();
        let Some(range) = layout.block_range(index) else {
            return Err(AppError::bad_request(
                "block_out_of_range",
                format!("block {index} is past the last block ({})", layout.block_count()),
            ));
        };
        let expected_len = range.end - range.start;
        if bytes.len() as u64 != expected_len {
            return Err(AppError::bad_request(
                "bad_block_length",
                format!("block {index} must be {expected_len} bytes, got {}", bytes.len()),
            ));
        }
        let algorithm = self.header.algorithm();
        let claimed = Digest::from_hex(digest_hex.trim(), algorithm.digest_len()).map_err(|e| {
            AppError::bad_request("bad_digest", format!("X-Block-Digest is not a {algorithm} digest: {e}"))
        })?;
        let actual = hash_block(algorithm, bytes);
        if actual != claimed {
            return Err(AppError::bad_request(
                "bad_digest",
                format!("block {index} hashes to {actual}, not to the X-Block-Digest {claimed}"),
            ));
        }
        if lock(&self.state).committing {
            return Err(AppError::new(
                StatusCode::CONFLICT,
                "commit_in_progress",
                "this upload is committing",
            ));
        }
        self.staging.write_all_at(bytes, range.start).map_err(|e| AppError::from_fs(e.into(), &self.path))?;
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

    /// The session's state for resuming.
    pub fn status(&self) -> UploadStatus {
        let state = lock(&self.state);
        UploadStatus {
            id: self.id.clone(),
            path: self.path.to_string(),
            size: self.header.file_size(),
            block_size: self.header.block_size(),
            hash: self.header.algorithm().name(),
            block_count: self.header.block_count(),
            received: runs(state.received.keys().copied()),
            received_blocks: state.received.len() as u64,
        }
    }

    fn discard(&self) {
        if let Err(e) = self.dir.remove(&self.staging_name) {
            tracing::warn!(path = %self.path, "could not remove staging file {}: {e:?}", self.staging_name);
        }
    }
}

async fn commit_upload(
    upload: &Arc<Upload>,
    signature: &Signature,
    state: &Arc<AppState>,
) -> AppResult<CommitOutcome> {
    let (root, signer) = (&state.root, &state.signer);
    // Uploaded blocks must be the signature's; the rest must be in the base.
    let received = lock(&upload.state).received.clone();
    for (&index, digest) in &received {
        if signature.block_digest(index) != Some(digest.as_bytes()) {
            return Err(AppError::new(
                StatusCode::CONFLICT,
                "digest_mismatch",
                format!("uploaded block {index} is not the block the signature describes"),
            ));
        }
    }
    if upload.restored {
        let bad = reverify(upload, &received).await?;
        if !bad.is_empty() {
            let mut state = lock(&upload.state);
            for i in &bad {
                state.received.remove(i);
            }
            return Err(missing_blocks(&bad));
        }
    }
    let needed: Vec<u64> =
        (0..signature.header().block_count()).filter(|i| !received.contains_key(i)).collect();
    let base = if needed.is_empty() {
        None
    } else {
        match root.open_read(&upload.path) {
            Ok(file) => Some(file),
            Err(FsError::NotFound) => None,
            Err(e) => return Err(AppError::from_fs(e, &upload.path)),
        }
    };
    let mut reuse: Vec<Range<u64>> = Vec::new();
    let base_version = match base {
        Some(file) => {
            let copy = file.try_clone().map_err(|e| AppError::internal("duplicating a descriptor", e))?;
            let stream = signer.start(copy, signature.algorithm(), signature.block_size(), None).await?;
            let version = stream.version();
            let base_sig = stream.collect().await.map_err(|e| AppError::internal("hashing the base", e))?;
            // The core's diff decides which blocks the base has unchanged.
            let changed = diff(signature, Some(&base_sig))
                .map_err(|e| AppError::internal("comparing with the base", e))?;
            let (missing, unchanged): (Vec<u64>, Vec<u64>) =
                needed.iter().partition(|i| changed.blocks().binary_search(i).is_ok());
            reuse = signature.layout().byte_runs(unchanged);
            if !missing.is_empty() {
                return Err(missing_blocks(&missing));
            }
            Some((file, version))
        }
        None if needed.is_empty() => None,
        None => return Err(missing_blocks(&needed)),
    };
    let upload = upload.clone();
    let state = state.clone();
    let blocks_uploaded = received.len() as u64;
    let blocks_reused = signature.header().block_count() - blocks_uploaded;
    tokio::task::spawn_blocking(move || {
        if let Some((base, version)) = &base_version {
            for range in &reuse {
                copy_range(base, &upload.staging, range.start, range.end - range.start)
                    .map_err(|e| AppError::from_fs(e.into(), &upload.path))?;
            }
            // The base must not have changed while it was read.
            if !FileVersion::of(base).is_ok_and(|now| now.same_content(version)) {
                return Err(target_changed(&upload.path));
            }
        }
        // The target must still be the version the client compared against,
        // whether or not any of its blocks were reused.
        if let Some(expected) = &upload.base_etag
            && current_version(&state.root, &upload.path)?.map(|v| v.etag()).as_ref() != Some(expected)
        {
            return Err(target_changed(&upload.path));
        }
        // The new version keeps the old one's permissions.
        let current = match &base_version {
            Some((base, _)) => base.metadata().ok(),
            None => state.root.open_read(&upload.path).ok().and_then(|f| f.metadata().ok()),
        };
        if let Some(meta) = current {
            let _ = upload.staging.set_permissions(meta.permissions());
        }
        upload.staging.sync_all().map_err(|e| AppError::from_fs(e.into(), &upload.path))?;
        upload
            .dir
            .rename(&upload.staging_name, upload.path.file_name())
            .map_err(|e| AppError::from_fs(e, &upload.path))?;
        upload.dir.sync().map_err(|e| AppError::from_fs(e, &upload.path))?;
        // After the rename, which changes the ctime that the ETag includes.
        let version =
            FileVersion::of(&upload.staging).map_err(|e| AppError::internal("reading metadata", e))?;
        Ok(CommitOutcome {
            path: upload.path.to_string(),
            size: upload.header.file_size(),
            etag: version.etag(),
            blocks_uploaded,
            blocks_reused,
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
            let ok = upload.staging.read_exact_at(block, range.start).is_ok()
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
        StatusCode::CONFLICT,
        "missing_blocks",
        format!("{} blocks were neither uploaded nor unchanged in the current target", missing.len()),
    )
    .with("missing", json!(runs(missing.iter().copied())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_merge_consecutive_indexes() {
        assert_eq!(runs([0, 1, 2, 5, 7, 8]), vec![[0, 3], [5, 6], [7, 9]]);
        assert!(runs([]).is_empty());
    }
}

//! Protocol v2 uploads: the client sends its file's block hashes, the
//! server searches its old version for them (the core's `Matcher`, over
//! `base.rs`'s open file and its aligned hashes) and answers what it still
//! needs, level by level; then only the literal data travels, into a staging
//! file beside the target, and the commit rebuilds, checks the file hash
//! and renames (`commit.rs`).
//!
//! * `session.rs`: one upload and its phases (searching, receiving, committing);
//! * `journal.rs`: what a restarted server needs to resume a session whose
//!   search had ended;
//!
//! What both stores share (the messages, the checks, the file hash) is in
//! `serve/v2/`.

mod base;
mod commit;
mod journal;
mod session;

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use diffcopy_core::delta::{DeltaParams, Levels, Matcher, Need, Plan};

use journal::{DeltaJournal, Recovered};
pub(crate) use session::DeltaUpload;
use session::{Phase, State};

use crate::fs::{FileVersion, FsError, RelPath, Root};
use crate::serve::commit::{Commits, target_changed};
use crate::serve::config::ServerConfig;
use crate::serve::error::{AppError, AppResult, ErrorKind};
use crate::serve::sessions::{Session as _, SessionTable, Staging, Writes};
use crate::serve::v2::{DeltaOutcome, NewDelta, RangeSet, Work};
pub(crate) use base::BaseFile;

/// All open protocol v2 uploads.
#[derive(Debug)]
pub(crate) struct DeltaStore {
    journal: DeltaJournal,
    sessions: SessionTable<DeltaUpload>,
}

/// The target as it is now, opened, or `None` when it does not exist.
fn open_base(root: &Root, path: &RelPath) -> AppResult<Option<BaseFile>> {
    match root.open_read(path) {
        Ok(file) => {
            let version = FileVersion::of(&file).map_err(|e| AppError::internal("reading metadata", e))?;
            Ok(Some(BaseFile { file, version }))
        }
        Err(FsError::NotFound) => Ok(None),
        Err(e) => Err(AppError::from_fs(e, path)),
    }
}

impl DeltaStore {
    /// Opens the journal below `root` and resumes the sessions a previous
    /// run left in their data phase, removing those idle for longer than `ttl`.
    pub(crate) fn open(root: &Root, ttl: Duration) -> Result<Self, FsError> {
        let store = Self { journal: DeltaJournal::open(root)?, sessions: SessionTable::default() };
        for found in store.journal.load() {
            let id = found.record.id.clone();
            let idle = found.modified.elapsed().unwrap_or_default();
            match store.restore(root, found) {
                Some(upload) if idle <= ttl => {
                    tracing::info!(id = %id, path = %upload.path, "v2 upload resumed from the journal");
                    store.sessions.insert(id, upload);
                }
                Some(upload) => {
                    upload.discard();
                    store.journal.end(&id);
                }
                None => store.journal.end(&id),
            }
        }
        Ok(store)
    }

    fn restore(&self, root: &Root, found: Recovered) -> Option<Arc<DeltaUpload>> {
        let record = found.record;
        let path = RelPath::parse(&record.path).ok()?;
        let seed = u64::from_str_radix(&record.seed, 16).ok()?;
        let file_hash = u128::from_str_radix(record.file_hash.as_deref()?, 16).ok()?;
        let params =
            DeltaParams { file_size: record.size, seed, levels: Levels::for_block(record.block_size).ok()? };
        let base = open_base(root, &path).ok()?;
        // The target must still be the version the plan copies from.
        if base.as_ref().map(|b| b.version.etag()) != record.base_version {
            return None;
        }
        let plan = Plan::decode(&found.plan, base.as_ref().map_or(0, BaseFile::len)).ok()?;
        let staging = Staging::reopen(root.parent_dir(&path, false).ok()?, &record.id)?;
        let log = self.journal.reopen_data(&record.id).ok()?;
        let received = RangeSet::from_ranges(found.received.iter().cloned());
        Some(Arc::new(DeltaUpload {
            id: record.id,
            path,
            owner: record.owner,
            params,
            base: base.map(Arc::new),
            base_etag: record.base_etag,
            staging,
            writing: Mutex::new(()),
            aligned: None,
            state: Mutex::new(State::new(
                Phase::Receiving { plan: Arc::new(plan), received },
                Some(file_hash),
                Some((log, 16 * found.received.len() as u64)),
            )),
            writes: Writes::default(),
        }))
    }

    /// Opens a session and its staging file, and starts hashing the old
    /// version (call from a blocking thread inside the runtime).
    pub(crate) fn create(
        &self,
        root: &Root,
        config: &ServerConfig,
        request: NewDelta,
        owner: Option<String>,
    ) -> AppResult<Arc<DeltaUpload>> {
        let (path, levels) = request.check(config.max_file_size)?;
        let block_size = levels.block_size();
        // Also refuses a target that is a directory or a symlink out of the root.
        let base = open_base(root, &path)?.map(Arc::new);
        if let Some(expected) = &request.base_etag
            && base.as_ref().map(|b| b.version.etag()).as_ref() != Some(expected)
        {
            return Err(target_changed(&path));
        }
        let dir = root.parent_dir(&path, true).map_err(|e| AppError::from_fs(e, &path))?;
        let id = crate::random::random_hex(16).map_err(|e| AppError::internal("making a session id", e))?;
        let seed = crate::random::random_seed()?;
        let params = DeltaParams { file_size: request.size, seed, levels };
        let staging = Staging::create(dir, &id, request.size, &path)?;
        // A whole upload is searched against nothing: its first round asks
        // for everything as literal data (and still brings the file hash).
        let (old_len, aligned) = match (&base, request.whole) {
            (Some(b), false) => (b.len(), base::hash_aligned(b, block_size, seed, config.hash_threads)),
            _ => (0, None),
        };
        let phase = Phase::Searching(Box::new(Matcher::new(params, old_len)));
        let upload = Arc::new(DeltaUpload {
            id: id.clone(),
            path,
            owner,
            params,
            base,
            base_etag: request.base_etag,
            staging,
            writing: Mutex::new(()),
            aligned,
            state: Mutex::new(State::new(phase, None, None)),
            writes: Writes::default(),
        });
        if let Err(e) = self.journal.record(&upload.record()) {
            upload.discard();
            self.journal.end(&id);
            return Err(AppError::from_fs(e, &upload.path));
        }
        self.sessions.insert(id, upload.clone());
        Ok(upload)
    }

    /// The session `id`, touched so it does not expire.
    pub(crate) fn get(&self, id: &str) -> AppResult<Arc<DeltaUpload>> {
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
            tracing::info!(id = %id, path = %upload.path, "v2 upload expired");
            upload.discard();
            self.journal.end(id);
        }
        expired.len()
    }

    /// How many sessions are open.
    pub(crate) fn len(&self) -> usize {
        self.sessions.len()
    }

    /// A round of session `id`'s search, and the work it took; once the
    /// search is over the file hash is kept in the journal, so the session
    /// survives a restart.
    pub(crate) async fn hashes(&self, id: &str, body: bytes::Bytes) -> AppResult<(Need, Work)> {
        let upload = self.get(id)?;
        let (need, done) = upload.hashes(body, &self.journal).await?;
        if need.is_final() {
            self.journal.record(&upload.record()).map_err(|e| AppError::from_fs(e, &upload.path))?;
        }
        Ok((need, done))
    }

    /// Checks and commits session `id`. A file hash mismatch or a changed
    /// target ends the session; other failures leave it to retry.
    pub(crate) async fn commit<S: Commits>(
        &self,
        id: &str,
        state: Arc<S>,
        mtime: Option<SystemTime>,
    ) -> AppResult<DeltaOutcome> {
        let upload = self.get(id)?;
        let job = upload.begin_commit().await?;
        let _guard = state.committer().locks.commit(&upload.path).await;
        let upload2 = upload.clone();
        let result =
            tokio::task::spawn_blocking(move || commit::commit(&upload2, &job, &state.committer(), mtime))
                .await
                .map_err(|e| AppError::internal("committing", e))?;
        match &result {
            Ok(_) => self.end(id),
            Err(e) if matches!(e.kind(), ErrorKind::FileHashMismatch | ErrorKind::TargetChanged) => {
                upload.discard();
                self.end(id);
            }
            Err(_) => upload.end_commit(),
        }
        result
    }

    fn end(&self, id: &str) {
        let _ = self.sessions.remove(id);
        self.journal.end(id);
    }
}

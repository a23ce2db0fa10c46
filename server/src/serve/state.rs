//! What every handler shares.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use crate::fs::{RelPath, Root};
use crate::serve::commit::{ApplyJournal, Commits, Committer, Expect, recover, remove};
use crate::serve::config::ServerConfig;
use crate::serve::delta::DeltaStore;
use crate::serve::error::{AppError, AppResult, ErrorKind};
use crate::serve::hooks::{DirOutbox, Hooks};
use crate::serve::locks::{PathLocks, ReadHold};
use crate::serve::remove::Removes;
use crate::serve::served::{Served, SessionScope};
use crate::serve::signer::Signer;
use crate::serve::stats::{Stats, StatsSnapshot};
use crate::serve::tls::Tls;
use crate::serve::upload::UploadStore;

impl Served for AppState {
    fn settings(&self) -> &ServerConfig {
        &self.config
    }

    async fn session_scope(&self, id: &str) -> AppResult<Option<SessionScope>> {
        let scope = |path: &RelPath, owner: &Option<String>| SessionScope {
            path: path.to_string(),
            owner: owner.clone(),
        };
        if let Ok(upload) = self.uploads.get(id) {
            return Ok(Some(scope(&upload.path, &upload.owner)));
        }
        Ok(self.deltas.get(id).ok().map(|delta| scope(&delta.path, &delta.owner)))
    }
}

impl Commits for AppState {
    fn committer(&self) -> Committer<'_> {
        Committer {
            root: &self.root,
            mode: self.config.commit,
            journal: &self.applies,
            locks: &self.locks,
            stats: &self.stats,
            faults: self.config.fault_hook.as_ref(),
        }
    }
}

impl Removes for AppState {
    async fn remove(self: &Arc<Self>, path: RelPath, if_match: Option<String>) -> AppResult<()> {
        let _guard = self.locks.commit(&path).await;
        let state = self.clone();
        tokio::task::spawn_blocking(move || {
            let expect = if_match.as_deref().map_or(Expect::Any, Expect::Etag);
            remove(&state.committer(), &path, expect)
        })
        .await
        .map_err(|e| AppError::internal("removing a file", e))?
    }
}

/// The server's shared state.
#[derive(Debug)]
pub struct AppState {
    /// The settings.
    pub(crate) config: ServerConfig,
    /// The served directory.
    pub(crate) root: Root,
    /// Signatures, cached.
    pub(crate) signer: Arc<Signer>,
    /// Open API v1 upload sessions.
    pub(crate) uploads: UploadStore,
    /// Open protocol v2 upload sessions.
    pub(crate) deltas: DeltaStore,
    /// Counters.
    pub(crate) stats: Arc<Stats>,
    /// One commit at a time per path; readers kept out of installs.
    pub(crate) locks: PathLocks,
    /// Commits applied in place, journaled.
    pub(crate) applies: ApplyJournal,
    /// Held while an upload of either protocol is admitted, so that
    /// `--max-uploads` counts both and two opens cannot both take the last slot.
    admitting: Mutex<()>,
    /// HTTPS, when configured.
    pub(crate) tls: Option<Tls>,
    /// The webhook after each commit, when configured.
    pub(crate) hooks: Option<Arc<Hooks<DirOutbox>>>,
}

impl AppState {
    /// Opens the root (creating it) and sets everything up.
    pub fn new(config: ServerConfig) -> std::io::Result<Arc<Self>> {
        let root = Root::open(&config.root)?;
        let stats = Arc::new(Stats::default());
        let signer = Arc::new(Signer::new(
            config.max_hash_jobs,
            config.hash_threads,
            config.signature_cache_bytes,
            stats.clone(),
        ));
        let journal_error = |e| std::io::Error::other(format!("opening the upload journal: {e}"));
        // Before anything else reads or writes a target: finish the commits
        // a crash interrupted after their commit point, drop the others.
        let replayed =
            recover(&root).map_err(|e| std::io::Error::other(format!("replaying journals: {e}")))?;
        if replayed > 0 {
            tracing::info!("{replayed} interrupted commits finished from their journals");
        }
        let staged = crate::serve::sessions::recover_batches(&root)
            .map_err(|e| std::io::Error::other(format!("removing a stopped batch's files: {e}")))?;
        if staged > 0 {
            tracing::info!("{staged} staging files of interrupted batches removed");
        }
        let applies = ApplyJournal::open(&root).map_err(journal_error)?;
        let uploads = UploadStore::open(&root, config.upload_ttl).map_err(journal_error)?;
        let deltas = DeltaStore::open(&root, config.upload_ttl).map_err(journal_error)?;
        let locks = PathLocks::default();
        let tls = config.tls.as_ref().map(Tls::new).transpose().map_err(std::io::Error::other)?;
        let admitting = Mutex::new(());
        let hooks = match &config.hook {
            Some(target) => {
                let outbox = DirOutbox::open(&root)?;
                Some(Arc::new(
                    Hooks::new(target.clone(), outbox, stats.clone()).map_err(std::io::Error::other)?,
                ))
            }
            None => None,
        };
        Ok(Arc::new(Self {
            config,
            root,
            signer,
            uploads,
            deltas,
            stats,
            locks,
            applies,
            admitting,
            tls,
            hooks,
        }))
    }

    /// Waits until no commit writes `path` in place, then holds commits
    /// off: what every reader of a target through the server takes first.
    /// 503 `commit_unfinished` if a committed journal of `path` could not
    /// be applied (the next start replays it).
    pub(super) async fn read_hold(&self, path: &RelPath) -> AppResult<ReadHold> {
        let hold = self.locks.shared(path).await;
        self.applies.check_applied(path)?;
        Ok(hold)
    }

    /// Runs `open` (which opens an upload session of either protocol)
    /// unless `--max-uploads` sessions are open already: 429 `too_many_uploads`.
    pub(super) fn admit_upload<T>(&self, open: impl FnOnce() -> AppResult<T>) -> AppResult<T> {
        let _admitting = self.admitting.lock().unwrap_or_else(PoisonError::into_inner);
        if self.open_uploads() >= self.config.max_uploads {
            return Err(AppError::new(
                ErrorKind::TooManyUploads,
                "too many uploads are open; finish or abort one, or wait for them to expire",
            ));
        }
        open()
    }

    /// The URL scheme served: `https` with TLS, else `http`.
    pub fn scheme(&self) -> &'static str {
        if self.tls.is_some() { "https" } else { "http" }
    }

    /// The settings.
    pub fn config(&self) -> &ServerConfig {
        &self.config
    }

    /// The served directory on disk.
    pub fn root_path(&self) -> &std::path::Path {
        self.root.path()
    }

    /// The counters now (also served at `/api/v1/stats`).
    pub fn stats(&self) -> StatsSnapshot {
        self.stats.snapshot()
    }

    /// How many upload sessions are open, of either protocol.
    pub fn open_uploads(&self) -> usize {
        self.uploads.len() + self.deltas.len()
    }

    /// Removes upload sessions idle for longer than `ttl` (the server does
    /// this on its own now and then); returns how many.
    pub fn expire_uploads(&self, ttl: Duration) -> usize {
        self.uploads.expire(ttl) + self.deltas.expire(ttl)
    }
}

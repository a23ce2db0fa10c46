//! What every handler shares.

use std::sync::Arc;
use std::time::Duration;

use crate::fs::Root;
use crate::serve::config::ServerConfig;
use crate::serve::delta::DeltaStore;
use crate::serve::locks::PathLocks;
use crate::serve::signer::Signer;
use crate::serve::stats::{Stats, StatsSnapshot};
use crate::serve::upload::UploadStore;

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
    /// One commit at a time per path.
    pub(crate) locks: PathLocks,
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
        let uploads = UploadStore::open(&root, config.upload_ttl).map_err(journal_error)?;
        let deltas = DeltaStore::open(&root, config.upload_ttl).map_err(journal_error)?;
        Ok(Arc::new(Self { config, root, signer, uploads, deltas, stats, locks: PathLocks::default() }))
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

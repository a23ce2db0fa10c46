//! What every handler shares.

use std::sync::Arc;

use crate::config::ServerConfig;
use crate::root::Root;
use crate::signer::Signer;
use crate::stats::Stats;
use crate::upload::UploadStore;

/// The server's shared state.
#[derive(Debug)]
pub struct AppState {
    /// The settings.
    pub config: ServerConfig,
    /// The served directory.
    pub root: Root,
    /// Signatures, cached.
    pub signer: Arc<Signer>,
    /// Open upload sessions.
    pub uploads: UploadStore,
    /// Counters.
    pub stats: Arc<Stats>,
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
        let uploads = UploadStore::open(&root, config.upload_ttl)
            .map_err(|e| std::io::Error::other(format!("opening the upload journal: {e:?}")))?;
        Ok(Arc::new(Self { config, root, signer, uploads, stats }))
    }
}

//! Server settings, filled by `diffcopy serve`'s options.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// The smallest block size the server accepts (4 KiB).
pub const MIN_BLOCK_SIZE: u32 = 4 << 10;
/// The largest block size the server accepts (64 MiB).
pub const MAX_BLOCK_SIZE: u32 = 64 << 20;
/// The default block size (1 MiB), as pdiffcopy's.
pub const DEFAULT_BLOCK_SIZE: u32 = 1 << 20;
/// The most blocks one signature or upload may have (2^24: 320 MiB of SHA-1
/// digests held in memory at worst). Larger files need larger blocks.
pub const MAX_BLOCKS: u64 = 1 << 24;

/// Everything the server needs to know.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    /// Where to listen.
    pub listen: SocketAddr,
    /// The directory served.
    pub root: PathBuf,
    /// When set, every API request needs `Authorization: Bearer <token>`.
    pub token: Option<String>,
    /// Refuse every write.
    pub read_only: bool,
    /// Origins allowed to call the API from a browser (CORS).
    pub cors_origins: Vec<String>,
    /// The largest file an upload may create, in bytes.
    pub max_file_size: u64,
    /// How many upload sessions may be open at once.
    pub max_uploads: usize,
    /// How long an upload session may sit idle before it expires.
    pub upload_ttl: Duration,
    /// How many signatures may be computed at once.
    pub max_hash_jobs: usize,
    /// Threads per signature computation.
    pub hash_threads: usize,
    /// The largest total of cached signature digests, in bytes.
    pub signature_cache_bytes: usize,
    /// Serve the page from this directory instead of the embedded copy.
    pub assets_dir: Option<PathBuf>,
    /// How long a client may take to send a request's headers.
    pub header_timeout: Duration,
    /// How long a client may take to send a request body (a block, a signature).
    pub body_timeout: Duration,
}

impl Default for ServerConfig {
    fn default() -> Self {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            root: PathBuf::from("diffcopy-data"),
            token: None,
            read_only: false,
            cors_origins: Vec::new(),
            max_file_size: 1 << 40,
            max_uploads: 64,
            upload_ttl: Duration::from_secs(3600),
            max_hash_jobs: 4,
            hash_threads: cores,
            signature_cache_bytes: 64 << 20,
            assets_dir: None,
            header_timeout: Duration::from_secs(30),
            body_timeout: Duration::from_secs(120),
        }
    }
}

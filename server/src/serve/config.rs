//! Server settings, filled by `diffcopy serve`'s options. The defaults live
//! here once; the options' defaults are these constants.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use super::tls::TlsFiles;
use crate::faults::FaultHook;
use defaults::{
    BODY_TIMEOUT_SECS, COMMIT, HEADER_TIMEOUT_SECS, LISTEN, MAX_FILE_SIZE, MAX_HASH_JOBS, MAX_UPLOADS, ROOT,
    UPLOAD_TTL_SECS,
};

/// How commits become the target (`diffcopy serve --commit`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum CommitMode {
    /// Reflink where the file system can clone a file, else the journal.
    #[default]
    Auto,
    /// Clone the target, write the changes into the clone, rename it over.
    Reflink,
    /// A redo journal, then the changes written in place.
    Journal,
    /// Write a whole new file beside the target and rename it over.
    Replace,
}

impl CommitMode {
    /// The name `--commit` takes and answers carry.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Auto => "auto",
            Self::Reflink => "reflink",
            Self::Journal => "journal",
            Self::Replace => "replace",
        }
    }
}

/// The defaults of `diffcopy serve`'s options and of [`ServerConfig`].
pub mod defaults {
    use std::net::{IpAddr, Ipv4Addr, SocketAddr};

    /// Where `diffcopy serve` listens by default.
    pub const LISTEN: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 8080);
    /// The directory served by default (relative to the working directory).
    pub const ROOT: &str = "diffcopy-data";
    /// The largest file an upload may create by default (1 TiB).
    pub const MAX_FILE_SIZE: u64 = 1 << 40;
    /// Upload sessions open at once, by default.
    pub const MAX_UPLOADS: usize = 64;
    /// Seconds an idle upload session lives, by default.
    pub const UPLOAD_TTL_SECS: u64 = 3600;
    /// Signatures computed at once, by default.
    pub const MAX_HASH_JOBS: usize = 4;
    /// Seconds a client may take to send a request's headers, by default.
    pub const HEADER_TIMEOUT_SECS: u64 = 30;
    /// Seconds a client may take to send a request body, by default.
    pub const BODY_TIMEOUT_SECS: u64 = 120;
    /// How commits become the target, by default.
    pub const COMMIT: super::CommitMode = super::CommitMode::Auto;
}

/// Everything the server needs to know.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    /// Where to listen.
    pub listen: SocketAddr,
    /// HTTPS: the certificate and key files; plain HTTP when `None`.
    pub tls: Option<TlsFiles>,
    /// The directory served.
    pub root: PathBuf,
    /// When set, every API request needs `Authorization: Bearer <token>`.
    pub token: Option<String>,
    /// Verifies scoped tokens (JWTs), when `--jwt-secret-file` or
    /// `--jwt-public-key` is given.
    pub jwt: Option<std::sync::Arc<crate::token::Verifier>>,
    /// Where to POST after each commit, and the secret its bodies are signed with.
    pub hook: Option<super::HookTarget>,
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
    /// How commits become the target.
    pub commit: CommitMode,
    /// Tests only: called at each [`FaultPoint`](super::FaultPoint).
    pub fault_hook: Option<FaultHook>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        Self {
            listen: LISTEN,
            tls: None,
            root: PathBuf::from(ROOT),
            token: None,
            jwt: None,
            hook: None,
            read_only: false,
            cors_origins: Vec::new(),
            max_file_size: MAX_FILE_SIZE,
            max_uploads: MAX_UPLOADS,
            upload_ttl: Duration::from_secs(UPLOAD_TTL_SECS),
            max_hash_jobs: MAX_HASH_JOBS,
            hash_threads: cores,
            signature_cache_bytes: 64 << 20,
            assets_dir: None,
            header_timeout: Duration::from_secs(HEADER_TIMEOUT_SECS),
            body_timeout: Duration::from_secs(BODY_TIMEOUT_SECS),
            commit: COMMIT,
            fault_hook: None,
        }
    }
}

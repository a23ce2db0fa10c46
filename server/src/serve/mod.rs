//! Everything `diffcopy serve` runs: the HTTP routes (API v1, pdiffcopy's
//! endpoints, the page), upload sessions, signatures and their cache, and
//! the accept loop.

mod access;
mod api;
mod assets;
mod batch;
mod body;
mod bucket;
mod commit;
mod config;
mod delta;
mod error;
mod hooks;
mod locks;
mod memory;
mod multi;
mod reads;
mod remove;
mod run;
mod served;
mod sessions;
mod sigcache;
mod signer;
mod state;
mod stats;
mod tls;
mod upload;
mod v2;
mod wire;

pub use crate::faults::{FaultHook, FaultPoint};
pub use api::app;
pub use bucket::{Addressing, BucketState, StoreUrl, bucket_app};
pub use config::{CommitMode, ServerConfig, defaults};
pub use error::{AppError, AppResult, ErrorKind};
pub use hooks::HookTarget;
pub use run::{run, run_bucket, shutdown_signal};
pub use state::AppState;
pub use stats::StatsSnapshot;
pub use tls::{TlsError, TlsFiles};

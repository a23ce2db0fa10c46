//! The command-line client: `diffcopy SOURCE TARGET`.
//!
//! [`sync`] picks the direction and the protocol: `delta.rs` (protocol v2,
//! uploads and downloads), `upload.rs` and `download.rs` (API v1 and
//! pdiffcopy's endpoints; downloads are rebuilt beside the target by
//! `rebuild.rs`) or `copy.rs` (local to local); `remote.rs` speaks the
//! server's protocols.

mod benchmark;
mod copy;
mod delta;
mod download;
mod error;
mod in_place;
mod local;
mod location;
mod multi;
mod options;
mod progress;
mod rebuild;
mod remote;
mod resume;
mod size;
mod summary;
mod sync;
mod tree;
mod upload;

pub use benchmark::{BenchmarkRow, RsyncPeer, run_benchmark, table};
pub use error::ClientError;
pub use location::Location;
pub use options::{ProtocolChoice, SyncOptions};
pub use progress::Progress;
pub use size::parse_size;
pub use summary::Summary;
pub use sync::sync;
pub use tree::{TreeOptions, TreeSummary, sync_tree};

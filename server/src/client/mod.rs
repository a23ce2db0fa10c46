//! The command-line client: `diffcopy SOURCE TARGET`.

mod benchmark;
mod error;
mod local;
mod location;
mod progress;
mod remote;
mod resume;
mod size;
mod summary;
mod sync;

pub use benchmark::{BenchmarkRow, RsyncPeer, run_benchmark, table};
pub use error::ClientError;
pub use location::Location;
pub use progress::Progress;
pub use remote::Protocol;
pub use size::parse_size;
pub use summary::Summary;
pub use sync::{SyncOptions, sync};

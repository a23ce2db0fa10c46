//! The command-line client: `diffcopy SOURCE TARGET`.

mod error;
mod local;
mod location;
mod progress;
mod remote;
mod resume;
mod size;
mod summary;
mod sync;

pub use error::ClientError;
pub use location::Location;
pub use progress::Progress;
pub use remote::Protocol;
pub use size::parse_size;
pub use summary::Summary;
pub use sync::{SyncOptions, sync};

//! diffcopy: fast, safe, differential transfer of large files over HTTP.
//!
//! The library behind the `diffcopy` program: [`app`] builds the router
//! (for oneshot tests), [`run`] serves it on a socket until shutdown, and
//! [`AppState`] holds what the handlers share.

mod api;
mod assets;
mod body;
pub mod client;
pub mod config;
pub mod copy;
pub mod error;
pub mod hashing;
pub mod journal;
pub mod relpath;
pub mod root;
mod server;
pub mod sigcache;
pub mod signer;
pub mod state;
pub mod stats;
pub mod upload;
pub mod version;

pub use api::app;
pub use config::ServerConfig;
pub use error::{AppError, AppResult};
pub use server::{run, shutdown_signal};
pub use state::AppState;
pub use stats::StatsSnapshot;

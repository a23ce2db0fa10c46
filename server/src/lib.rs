//! diffcopy: fast, safe, differential transfer of large files over HTTP.
//!
//! The library behind the `diffcopy` program, in three rooms:
//!
//! * `serve` (`diffcopy serve`): [`app`] builds the router (for oneshot
//!   tests), [`run`] serves it on a socket until shutdown, and [`AppState`]
//!   holds what the handlers share;
//! * [`client`] (`diffcopy SOURCE TARGET`): [`client::sync`] and the
//!   benchmark mode;
//! * `fs`: what both use: the confined file system, kernel copies and
//!   hashing files on all cores.
//!
//! [`limits`] holds the block-size and block-count limits both sides apply;
//! `frames.rs` protocol v2's literal frames, written and read by both;
//! `s3` the small S3 client a server over a bucket uses, which the tests
//! reach only through [`testing`].

pub mod client;
mod faults;
mod frames;
mod fs;
mod http;
pub mod limits;
mod packed;
mod parts;
mod random;
mod s3;
mod secret;
mod serve;
pub mod testing;
pub mod token;

pub use serve::{
    Addressing, AppError, AppResult, AppState, BucketState, CommitMode, ErrorKind, FaultHook, FaultPoint,
    HookTarget, ServerConfig, StatsSnapshot, StoreUrl, TlsError, TlsFiles, app, bucket_app, defaults, run,
    run_bucket, shutdown_signal,
};

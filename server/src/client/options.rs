//! What a sync is asked to do (`SyncOptions`), and the steps every
//! direction shares: the plan of blocks, the nothing-to-do check, opening
//! the source, signing the target. A leaf: `sync.rs` dispatches to the
//! directions, and they take these from here, not from it.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use diffcopy_core::{Delta, HashAlgorithm, Signature, diff};

use super::error::ClientError;
use super::local::{open_existing, sign_file};
use super::location::Location;
use super::progress::Progress;

/// Which protocol to speak, as `--protocol` names it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum ProtocolChoice {
    /// Ask the server (`/api/v1/health`): v2 where it speaks it.
    #[default]
    Auto,
    /// diffcopy's protocol v2: only what changed travels, insertions included.
    V2,
    /// diffcopy's HTTP API v1: changed blocks travel whole.
    V1,
    /// pdiffcopy 1.0.1's endpoints.
    Pdiffcopy,
}

/// What to sync and how.
#[derive(Clone, Debug)]
pub struct SyncOptions {
    /// Where the data comes from.
    pub source: Location,
    /// Where it goes.
    pub target: Location,
    /// Block size in bytes.
    pub block_size: u32,
    /// Block hash.
    pub algorithm: HashAlgorithm,
    /// Send every block without comparing (pdiffcopy's `-W`).
    pub whole_file: bool,
    /// Blocks in flight at once.
    pub concurrency: usize,
    /// Compare and report, write nothing.
    pub dry_run: bool,
    /// How long an upload is tried again, resuming, while the server
    /// answers 503 with `Retry-After` (its store down or throttling).
    pub retry_for: std::time::Duration,
    /// Bearer token for the server.
    pub token: Option<String>,
    /// A PEM file of CA certificates trusted besides the system's (`--cacert`).
    pub cacert: Option<PathBuf>,
    /// The protocol to speak, or `Auto` to ask the server.
    pub protocol: ProtocolChoice,
    /// Progress bars.
    pub progress: Progress,
}

/// The blocks to send: the delta's, or all of them with `--whole-file`.
pub(super) fn plan(
    options: &SyncOptions,
    source: &Signature,
    target: Option<&Signature>,
) -> Result<Delta, ClientError> {
    let target = if options.whole_file { None } else { target };
    diff(source, target).map_err(|e| ClientError::Protocol(e.to_string()))
}

/// Whether there is nothing to write: a dry run, or a target that exists and
/// already equals the source (unless `--whole-file` asks to send it anyway).
pub(super) fn nothing_to_do(options: &SyncOptions, delta: &Delta) -> bool {
    options.dry_run || (delta.is_identical() && !options.whole_file)
}

/// Opens the sync's source file.
pub(super) fn open_source(path: &Path) -> Result<Arc<File>, ClientError> {
    open_existing(path)?
        .map(Arc::new)
        .ok_or_else(|| ClientError::NotFound(format!("{} does not exist", path.display())))
}

/// The signature of an existing local target, unless `--whole-file` makes
/// comparing pointless.
pub(super) async fn sign_target(
    options: &SyncOptions,
    file: Option<Arc<File>>,
) -> Result<Option<Signature>, ClientError> {
    match file {
        Some(file) if !options.whole_file => {
            sign_file(file, options.algorithm, options.block_size, &options.progress, "target")
                .await
                .map(Some)
        }
        _ => Ok(None),
    }
}

/// The absolute form of a local path, for resume keys.
pub(super) fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}

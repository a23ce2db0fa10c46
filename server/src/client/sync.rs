//! One sync: pick the direction and the protocol, then hand over to
//! `delta.rs` (protocol v2, both directions), `upload.rs` and `download.rs`
//! (API v1 and pdiffcopy's endpoints) or `copy.rs` (local to local).

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use diffcopy_core::{Delta, HashAlgorithm, Signature, diff};

use super::copy::copy_local;
use super::delta::{download_v2, upload_v2};
use super::download::download;
use super::error::ClientError;
use super::local::{open_existing, sign_file};
use super::location::Location;
use super::progress::Progress;
use super::remote::{Protocol, Remote};
use super::summary::Summary;
use super::upload::{upload_pdiffcopy, upload_v1};
use crate::limits::{H2_CONNECTION_WINDOW, H2_STREAM_WINDOW};

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
    /// Bearer token for the server.
    pub token: Option<String>,
    /// A PEM file of CA certificates trusted besides the system's (`--cacert`).
    pub cacert: Option<PathBuf>,
    /// The protocol to speak, or `Auto` to ask the server.
    pub protocol: ProtocolChoice,
    /// Progress bars.
    pub progress: Progress,
}

/// Runs one sync.
pub async fn sync(options: &SyncOptions) -> Result<Summary, ClientError> {
    let started = Instant::now();
    let http = http_client(options)?;
    let remote = |base: &str, path: &str| Remote::new(http.clone(), base, path, options.token.clone());
    let mut summary = match (&options.source, &options.target) {
        (Location::Local(source), Location::Remote { base, path }) => {
            let remote = remote(base, path);
            match protocol(options, &remote).await? {
                Protocol::V2 => upload_v2(options, source, &remote).await?,
                Protocol::V1 => upload_v1(options, source, &remote).await?,
                Protocol::Pdiffcopy => upload_pdiffcopy(options, source, &remote).await?,
            }
        }
        (Location::Remote { base, path }, Location::Local(target)) => {
            let remote = remote(base, path);
            match protocol(options, &remote).await? {
                Protocol::V2 => download_v2(options, &remote, target).await?,
                other => download(options, &remote, other, target).await?,
            }
        }
        (Location::Local(source), Location::Local(target)) => copy_local(options, source, target).await?,
        (Location::Remote { .. }, Location::Remote { .. }) => {
            return Err(ClientError::Usage("one side must be a local path".into()));
        }
    };
    summary.seconds = started.elapsed().as_secs_f64();
    Ok(summary)
}

/// The HTTP client: HTTPS with the system's roots and `--cacert`'s, HTTP/2
/// where the server offers it by ALPN, HTTP/1.1 otherwise.
fn http_client(options: &SyncOptions) -> Result<reqwest::Client, ClientError> {
    // reqwest is built without a crypto provider of its own; ring it is.
    // An error only says one is installed already.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut builder = reqwest::Client::builder()
        .pool_max_idle_per_host(options.concurrency.max(1))
        .tcp_nodelay(true)
        .http2_initial_stream_window_size(H2_STREAM_WINDOW)
        .http2_initial_connection_window_size(H2_CONNECTION_WINDOW);
    if let Some(path) = &options.cacert {
        let pem = std::fs::read(path)
            .map_err(|e| ClientError::Usage(format!("--cacert {}: {e}", path.display())))?;
        let certs = reqwest::Certificate::from_pem_bundle(&pem)
            .map_err(|e| ClientError::Usage(format!("--cacert {}: {e}", path.display())))?;
        if certs.is_empty() {
            return Err(ClientError::Usage(format!("--cacert {}: no PEM certificate in it", path.display())));
        }
        builder = builder.tls_certs_merge(certs);
    }
    builder.build().map_err(|e| ClientError::Local(format!("HTTP client: {e}")))
}

async fn protocol(options: &SyncOptions, remote: &Remote) -> Result<Protocol, ClientError> {
    match options.protocol {
        ProtocolChoice::Auto => remote.detect().await,
        ProtocolChoice::V2 => Ok(Protocol::V2),
        ProtocolChoice::V1 => Ok(Protocol::V1),
        ProtocolChoice::Pdiffcopy => Ok(Protocol::Pdiffcopy),
    }
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

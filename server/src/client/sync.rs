//! One sync: pick the direction and the protocol, then hand over to
//! `delta.rs` (protocol v2, both directions), `upload.rs` and `download.rs`
//! (API v1 and pdiffcopy's endpoints) or `copy.rs` (local to local).

use std::sync::Arc;
use std::time::Instant;

use super::copy::copy_local;
use super::delta::{download_v2, upload_v2};
use super::download::download;
use super::error::ClientError;
use super::location::Location;
use super::multi::Multi;
use super::options::{ProtocolChoice, SyncOptions};
use super::remote::{Protocol, Remote};
use super::summary::Summary;
use super::upload::{upload_pdiffcopy, upload_v1};
use crate::limits::{H2_CONNECTION_WINDOW, H2_STREAM_WINDOW};

/// Runs one sync. While the server answers 503 with `Retry-After` (its
/// store down or throttling, the file held by a commit), waits as it says
/// and runs it again, for up to `--retry-for`: an upload resumes where it
/// stopped, a download starts over.
pub async fn sync(options: &SyncOptions) -> Result<Summary, ClientError> {
    sync_with(options, &http_client(options)?, None).await
}

/// [`sync`] over an HTTP client made by [`http_client`] (a tree's files
/// share one, and its connections), its requests sent with other files'
/// through `multi` when given.
pub(super) async fn sync_with(
    options: &SyncOptions,
    http: &reqwest::Client,
    multi: Option<&Arc<Multi>>,
) -> Result<Summary, ClientError> {
    let started = Instant::now();
    let deadline = started + options.retry_for;
    loop {
        match sync_once(options, http, multi).await {
            Err(ClientError::Server { status: 503, retry_after: Some(wait), code, message })
                if !options.dry_run && Instant::now() + wait <= deadline =>
            {
                tracing::warn!("the server cannot serve this now ({code}: {message}); again in {wait:?}");
                tokio::time::sleep(wait).await;
            }
            Ok(mut summary) => {
                summary.seconds = started.elapsed().as_secs_f64();
                return Ok(summary);
            }
            Err(e) => return Err(e),
        }
    }
}

async fn sync_once(
    options: &SyncOptions,
    http: &reqwest::Client,
    multi: Option<&Arc<Multi>>,
) -> Result<Summary, ClientError> {
    let remote = |base: &str, path: &str| {
        Remote::new(http.clone(), base, path, options.token.clone()).with_multi(multi.cloned())
    };
    Ok(match (&options.source, &options.target) {
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
    })
}

/// The HTTP client: HTTPS with the system's roots and `--cacert`'s, HTTP/2
/// where the server offers it by ALPN, HTTP/1.1 otherwise.
pub(super) fn http_client(options: &SyncOptions) -> Result<reqwest::Client, ClientError> {
    let mut builder = crate::http::client_builder()
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

pub(super) async fn protocol(options: &SyncOptions, remote: &Remote) -> Result<Protocol, ClientError> {
    match options.protocol {
        ProtocolChoice::Auto => remote.detect().await,
        ProtocolChoice::V2 => Ok(Protocol::V2),
        ProtocolChoice::V1 => Ok(Protocol::V1),
        ProtocolChoice::Pdiffcopy => Ok(Protocol::Pdiffcopy),
    }
}

//! Downloads: hash the local target while the server sends the source's
//! signature, fetch the changed runs (each block checked against the
//! signature) into a new version beside the target, and rename it over.

use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use diffcopy_core::{Signature, hash_block};
use futures_util::{StreamExt, TryStreamExt};

use super::error::ClientError;
use super::local::open_existing;
use super::options::{SyncOptions, nothing_to_do, plan, sign_target};
use super::rebuild::Rebuild;
use super::remote::{Protocol, Remote};
use super::summary::Summary;

/// The most bytes one ranged download request asks for: large enough to
/// amortise a request, small enough that `concurrency` of them in memory stay
/// well under the client's memory budget.
const MAX_RUN_BYTES: u64 = 4 << 20;

/// Where the source's bytes come from.
enum Origin<'a> {
    /// API v1 ranged GETs, refused once the file is no longer version `etag`.
    V1 { remote: &'a Remote, etag: String },
    /// pdiffcopy's `GET /blocks`.
    Pdiffcopy(&'a Remote),
}

impl Origin<'_> {
    async fn signature<'a>(
        protocol: Protocol,
        remote: &'a Remote,
        options: &SyncOptions,
    ) -> Result<(Signature, Origin<'a>), ClientError> {
        let missing = || ClientError::NotFound(format!("{} does not exist", remote.url()));
        match protocol {
            Protocol::V1 | Protocol::V2 => {
                let (signature, etag) =
                    remote.signature(options.algorithm, options.block_size).await?.ok_or_else(missing)?;
                Ok((signature, Origin::V1 { remote, etag }))
            }
            Protocol::Pdiffcopy => {
                let size = remote.pd_info().await?.ok_or_else(missing)?;
                let signature = remote
                    .pd_hashes(options.algorithm, options.block_size, size, options.concurrency)
                    .await?;
                Ok((signature, Origin::Pdiffcopy(remote)))
            }
        }
    }

    /// Bytes `start..end` of the source, exactly that many.
    async fn fetch(&self, start: u64, end: u64) -> Result<Bytes, ClientError> {
        match self {
            Self::V1 { remote, etag } => remote.get_range(start, end, etag).await,
            Self::Pdiffcopy(remote) => {
                let bytes = remote.pd_read(start, end - start).await?;
                if bytes.len() as u64 != end - start {
                    return Err(ClientError::Protocol(format!("{} sent a short block", remote.url())));
                }
                Ok(bytes)
            }
        }
    }
}

/// Downloads `remote` over the local `target`.
pub(super) async fn download(
    options: &SyncOptions,
    remote: &Remote,
    protocol: Protocol,
    target: &Path,
) -> Result<Summary, ClientError> {
    let existing = open_existing(target)?.map(Arc::new);
    let (theirs, mine) =
        tokio::join!(Origin::signature(protocol, remote, options), sign_target(options, existing.clone()));
    let ((source, origin), mine) = (theirs?, mine?);
    let delta = plan(options, &source, mine.as_ref())?;
    let name = if protocol == Protocol::Pdiffcopy { "pdiffcopy" } else { "v1" };
    let mut done = Summary::of("download", name, options.dry_run, &delta);
    // The signature came too: its binary form, or pdiffcopy's text lines.
    done.payload_bytes += source.encode().len() as u64;
    if nothing_to_do(options, &delta) {
        return Ok(done);
    }
    let kept = delta.unchanged_byte_runs().into_iter().map(|r| (r.start, r)).collect();
    let rebuild = Rebuild::start(target, source.file_size(), existing, kept).await?;
    let layout = source.layout();
    let block = u64::from(source.block_size());
    let bar = options.progress.bar("receiving", delta.bytes_to_send());
    futures_util::stream::iter(delta.runs((MAX_RUN_BYTES / block).max(1)))
        .map(|run| {
            let (origin, source, rebuild, bar) = (&origin, &source, &rebuild, &bar);
            async move {
                let start = layout.block_range(run.start).map_or(0, |r| r.start);
                let end = layout.block_range(run.end - 1).map_or(0, |r| r.end);
                let bytes = origin.fetch(start, end).await?;
                for (i, chunk) in run.zip(bytes.chunks(block as usize)) {
                    let digest = hash_block(source.algorithm(), chunk);
                    if source.block_digest(i) != Some(digest.as_bytes()) {
                        return Err(ClientError::Protocol(format!("block {i} does not match its digest")));
                    }
                }
                rebuild.write_at(&bytes, start)?;
                bar.inc(end - start);
                Ok::<_, ClientError>(())
            }
        })
        .buffer_unordered(options.concurrency.max(1))
        .try_collect::<()>()
        .await?;
    bar.finish_and_clear();
    Ok(done.written(rebuild.finish().await?))
}

//! Uploads: hash the local file while the server sends its signature, then
//! send the blocks that differ, through an API v1 session (atomic,
//! resumable) or pdiffcopy's endpoints (in place).

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::Arc;

use diffcopy_core::{Signature, in_runs};
use futures_util::{StreamExt, TryStreamExt};

use super::error::ClientError;
use super::local::sign_file;
use super::options::{SyncOptions, nothing_to_do, open_source, plan};
use super::remote::Remote;
use super::resume::ResumeState;
use super::summary::Summary;

/// Uploads through an API v1 session; an interrupted upload resumes.
pub(super) async fn upload_v1(
    options: &SyncOptions,
    source: &Path,
    remote: &Remote,
) -> Result<Summary, ClientError> {
    let file = open_source(source)?;
    let (local, theirs) = tokio::join!(
        sign_file(file.clone(), options.algorithm, options.block_size, &options.progress, "hashing"),
        remote.signature(options.algorithm, options.block_size)
    );
    let (local, theirs) = (local?, theirs?);
    let delta = plan(options, &local, theirs.as_ref().map(|(s, _)| s))?;
    let mut done = Summary::of("upload", "v1", options.dry_run, &delta);
    let signature_bytes = theirs.as_ref().map_or(0, |(s, _)| s.encode().len() as u64);
    if nothing_to_do(options, &delta) {
        return Ok(done);
    }
    let base_etag = theirs.as_ref().map(|(_, etag)| etag.as_str());
    let resume = ResumeState::for_upload(source, &remote.url(), &local.file_digest().to_string())?;
    let (id, received) = match resume.load() {
        Some(id) => match remote.upload_status(&id).await? {
            Some(received) => (id, received),
            None => (remote.create_upload(&local, base_etag).await?, Vec::new()),
        },
        None => (remote.create_upload(&local, base_etag).await?, Vec::new()),
    };
    resume.save(&id);
    let to_send: Vec<u64> = delta.blocks().iter().copied().filter(|&i| !in_runs(&received, i)).collect();
    let bar = options.progress.bar("uploading", delta.layout().bytes_in_blocks(to_send.iter().copied()));
    send_blocks(&file, &local, &to_send, options.concurrency, &bar, |index, bytes| {
        let digest = local.block_digest(index).map(diffcopy_core::hex::encode).unwrap_or_default();
        remote.put_block(&id, index, bytes, digest)
    })
    .await?;
    bar.finish_and_clear();
    if let Err(e) = remote.commit(&id, local.encode()).await {
        // A conflict (the target changed meanwhile) dooms this session: drop
        // it, so the next run compares against the new target afresh.
        if matches!(e, ClientError::Conflict(_)) {
            resume.clear();
            remote.abort(&id).await;
        }
        return Err(e);
    }
    resume.clear();
    // Blocks a resumed session already had were not sent this time.
    done.blocks_sent = to_send.len() as u64;
    done.bytes_sent = local.layout().bytes_in_blocks(to_send.iter().copied());
    // The server's signature came in, the client's went out at the commit.
    done.payload_bytes = done.bytes_sent + signature_bytes + local.encode().len() as u64;
    Ok(done)
}

/// Uploads through pdiffcopy's endpoints: resize, then write changed blocks
/// in place.
pub(super) async fn upload_pdiffcopy(
    options: &SyncOptions,
    source: &Path,
    remote: &Remote,
) -> Result<Summary, ClientError> {
    let file = open_source(source)?;
    let size = remote.pd_info().await?;
    let concurrency = options.concurrency;
    let (local, theirs) = tokio::join!(
        sign_file(file.clone(), options.algorithm, options.block_size, &options.progress, "hashing"),
        async {
            match size {
                Some(size) if !options.whole_file => {
                    remote.pd_hashes(options.algorithm, options.block_size, size, concurrency).await.map(Some)
                }
                _ => Ok(None),
            }
        }
    );
    let (local, theirs) = (local?, theirs?);
    let delta = plan(options, &local, theirs.as_ref())?;
    let done = Summary::of("upload", "pdiffcopy", options.dry_run, &delta);
    if nothing_to_do(options, &delta) {
        return Ok(done);
    }
    if size != Some(local.file_size()) {
        remote.pd_resize(local.file_size()).await?;
    }
    let bar = options.progress.bar("uploading", delta.bytes_to_send());
    send_blocks(&file, &local, delta.blocks(), options.concurrency, &bar, |index, bytes| {
        remote.pd_write(index * u64::from(local.block_size()), bytes)
    })
    .await?;
    bar.finish_and_clear();
    Ok(done)
}

/// Reads each of `blocks` from `file` and hands it to `send`, with at most
/// `concurrency` blocks in flight, counting the bytes on `bar`.
async fn send_blocks<F, Fut>(
    file: &Arc<File>,
    signature: &Signature,
    blocks: &[u64],
    concurrency: usize,
    bar: &indicatif::ProgressBar,
    send: F,
) -> Result<(), ClientError>
where
    F: Fn(u64, Vec<u8>) -> Fut,
    Fut: Future<Output = Result<(), ClientError>>,
{
    futures_util::stream::iter(blocks.iter().copied())
        .map(|index| {
            let send = &send;
            async move {
                let bytes = read_block(file, signature, index).await?;
                let len = bytes.len() as u64;
                send(index, bytes).await?;
                bar.inc(len);
                Ok::<_, ClientError>(())
            }
        })
        .buffer_unordered(concurrency.max(1))
        .try_collect::<()>()
        .await
}

async fn read_block(file: &Arc<File>, signature: &Signature, index: u64) -> Result<Vec<u8>, ClientError> {
    let range = signature.layout().block_range(index).unwrap_or(0..0);
    let file = file.clone();
    tokio::task::spawn_blocking(move || {
        let mut buf = vec![0u8; (range.end - range.start) as usize];
        file.read_exact_at(&mut buf, range.start).map(|()| buf)
    })
    .await
    .map_err(|e| ClientError::Local(e.to_string()))?
    .map_err(|e| ClientError::io("reading the source", e))
}

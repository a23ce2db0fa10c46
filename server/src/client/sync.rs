//! The sync engine: hash both sides at once, diff, move only the changed
//! blocks, and replace the target atomically (in place only on a pdiffcopy
//! server, whose protocol has no other way).

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use diffcopy_core::{Delta, HashAlgorithm, Signature, diff};
use futures_util::{StreamExt, TryStreamExt};

use super::error::ClientError;
use super::local::{Staged, open_existing, sign_file};
use super::location::Location;
use super::progress::Progress;
use super::remote::{Protocol, Remote};
use super::resume::ResumeState;
use super::summary::Summary;
use crate::copy::copy_range;

/// The most bytes one ranged download request asks for: large enough to
/// amortise a request, small enough that `concurrency` of them in memory stay
/// well under the client's memory budget.
const MAX_RUN_BYTES: u64 = 4 << 20;

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
    /// Force a protocol instead of asking the server.
    pub protocol: Option<Protocol>,
    /// Progress bars.
    pub progress: Progress,
}

/// Runs one sync.
pub async fn sync(options: &SyncOptions) -> Result<Summary, ClientError> {
    let started = Instant::now();
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(options.concurrency.max(1))
        .tcp_nodelay(true)
        .build()
        .map_err(|e| ClientError::Local(format!("HTTP client: {e}")))?;
    let remote = |base: &str, path: &str| Remote::new(http.clone(), base, path, options.token.clone());
    let mut summary = match (&options.source, &options.target) {
        (Location::Local(source), Location::Remote { base, path }) => {
            let remote = remote(base, path);
            match protocol(options, &remote).await? {
                Protocol::V1 => upload_v1(options, source, &remote).await?,
                Protocol::Pdiffcopy => upload_pdiffcopy(options, source, &remote).await?,
            }
        }
        (Location::Remote { base, path }, Location::Local(target)) => {
            let remote = remote(base, path);
            let protocol = protocol(options, &remote).await?;
            download(options, &remote, protocol, target).await?
        }
        (Location::Local(source), Location::Local(target)) => copy_local(options, source, target).await?,
        (Location::Remote { .. }, Location::Remote { .. }) => {
            return Err(ClientError::Usage("one side must be a local path".into()));
        }
    };
    summary.seconds = started.elapsed().as_secs_f64();
    Ok(summary)
}

async fn protocol(options: &SyncOptions, remote: &Remote) -> Result<Protocol, ClientError> {
    match options.protocol {
        Some(p) => Ok(p),
        None => remote.detect().await,
    }
}

fn summary(
    direction: &'static str,
    options: &SyncOptions,
    source: &Signature,
    delta: &Delta,
    sent: u64,
) -> Summary {
    Summary {
        direction,
        dry_run: options.dry_run,
        total_blocks: delta.total_blocks(),
        blocks_sent: sent,
        total_bytes: source.file_size(),
        bytes_sent: delta.layout().bytes_in_blocks(delta.blocks().iter().copied().take(sent as usize)),
        similarity_percent: delta.similarity_percent(),
        seconds: 0.0,
    }
}

/// The blocks to send: the delta's, or all of them with `--whole-file`.
fn plan(options: &SyncOptions, source: &Signature, target: Option<&Signature>) -> Result<Delta, ClientError> {
    let target = if options.whole_file { None } else { target };
    diff(source, target).map_err(|e| ClientError::Local(e.to_string()))
}

fn open_source(path: &Path) -> Result<Arc<File>, ClientError> {
    open_existing(path)?
        .map(Arc::new)
        .ok_or_else(|| ClientError::NotFound(format!("{} does not exist", path.display())))
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

async fn upload_v1(options: &SyncOptions, source: &Path, remote: &Remote) -> Result<Summary, ClientError> {
    let file = open_source(source)?;
    let (local, theirs) = tokio::join!(
        sign_file(file.clone(), options.algorithm, options.block_size, &options.progress, "hashing"),
        remote.signature(options.algorithm, options.block_size)
    );
    let (local, theirs) = (local?, theirs?);
    let delta = plan(options, &local, theirs.as_ref().map(|(s, _)| s))?;
    if options.dry_run || (delta.is_identical() && !options.whole_file) {
        return Ok(summary("upload", options, &local, &delta, delta.blocks_to_send()));
    }
    let base_etag = theirs.as_ref().map(|(_, etag)| etag.as_str());
    let resume = ResumeState::for_upload(source, &remote.url(), &local)?;
    let mut already = Vec::new();
    let id = match resume.load() {
        Some(id) => match remote.upload_status(&id).await? {
            Some(received) => {
                already = received;
                id
            }
            None => {
                remote
                    .create_upload(local.file_size(), local.block_size(), local.algorithm(), base_etag)
                    .await?
            }
        },
        None => {
            remote.create_upload(local.file_size(), local.block_size(), local.algorithm(), base_etag).await?
        }
    };
    resume.save(&id);
    let to_send: Vec<u64> =
        delta.blocks().iter().copied().filter(|i| already.binary_search(i).is_err()).collect();
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
    let mut done = summary("upload", options, &local, &delta, delta.blocks_to_send());
    // Blocks a resumed session already had were not sent this time.
    done.blocks_sent = to_send.len() as u64;
    done.bytes_sent = local.layout().bytes_in_blocks(to_send.iter().copied());
    Ok(done)
}

async fn upload_pdiffcopy(
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
    let mut delta = plan(options, &local, theirs.as_ref())?;
    if size.is_some() && theirs.is_none() && !options.whole_file {
        delta = plan(options, &local, None)?;
    }
    if options.dry_run || (delta.is_identical() && !options.whole_file) {
        return Ok(summary("upload", options, &local, &delta, delta.blocks_to_send()));
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
    Ok(summary("upload", options, &local, &delta, delta.blocks_to_send()))
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

/// Where downloaded blocks come from.
enum BlockSource<'a> {
    V1 { remote: &'a Remote, etag: String },
    Pdiffcopy(&'a Remote),
    Local(Arc<File>),
}

impl BlockSource<'_> {
    async fn read(&self, start: u64, end: u64) -> Result<bytes::Bytes, ClientError> {
        match self {
            Self::V1 { remote, etag } => remote.get_range(start, end, etag).await,
            Self::Pdiffcopy(remote) => {
                let bytes = remote.pd_read(start, end - start).await?;
                if bytes.len() as u64 != end - start {
                    return Err(ClientError::Local(format!("{} sent a short block", remote.url())));
                }
                Ok(bytes)
            }
            Self::Local(_) => unreachable!("local sources are copied in the kernel"),
        }
    }
}

async fn download(
    options: &SyncOptions,
    remote: &Remote,
    protocol: Protocol,
    target: &Path,
) -> Result<Summary, ClientError> {
    let existing = open_existing(target)?.map(Arc::new);
    let theirs = async {
        match protocol {
            Protocol::V1 => match remote.signature(options.algorithm, options.block_size).await? {
                Some((signature, etag)) => Ok((signature, BlockSource::V1 { remote, etag })),
                None => Err(ClientError::NotFound(format!("{} does not exist", remote.url()))),
            },
            Protocol::Pdiffcopy => {
                let size = remote
                    .pd_info()
                    .await?
                    .ok_or_else(|| ClientError::NotFound(format!("{} does not exist", remote.url())))?;
                let signature = remote
                    .pd_hashes(options.algorithm, options.block_size, size, options.concurrency)
                    .await?;
                Ok((signature, BlockSource::Pdiffcopy(remote)))
            }
        }
    };
    let mine = sign_optional(options, existing.clone());
    let (theirs, mine) = tokio::join!(theirs, mine);
    let ((source_sig, source), mine) = (theirs?, mine?);
    fill_target(options, "download", &source_sig, source, target, existing, mine.as_ref(), true).await
}

async fn copy_local(options: &SyncOptions, source: &Path, target: &Path) -> Result<Summary, ClientError> {
    let file = open_source(source)?;
    let existing = open_existing(target)?.map(Arc::new);
    let (source_sig, mine) = tokio::join!(
        sign_file(file.clone(), options.algorithm, options.block_size, &options.progress, "hashing"),
        sign_optional(options, existing.clone())
    );
    let (source_sig, mine) = (source_sig?, mine?);
    fill_target(
        options,
        "copy",
        &source_sig,
        BlockSource::Local(file),
        target,
        existing,
        mine.as_ref(),
        false,
    )
    .await
}

async fn sign_optional(
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

/// Writes the source's content to a staged file beside `target`: unchanged
/// blocks copied from the current target, changed ones from `source` (and,
/// when `verify`, checked against the source's signature), then renames it
/// over the target.
#[allow(clippy::too_many_arguments)]
async fn fill_target(
    options: &SyncOptions,
    direction: &'static str,
    source_sig: &Signature,
    source: BlockSource<'_>,
    target: &Path,
    existing: Option<Arc<File>>,
    mine: Option<&Signature>,
    verify: bool,
) -> Result<Summary, ClientError> {
    let delta = plan(options, source_sig, mine)?;
    if options.dry_run || (delta.is_identical() && !options.whole_file && existing.is_some()) {
        return Ok(summary(direction, options, source_sig, &delta, delta.blocks_to_send()));
    }
    let staged = Arc::new(Staged::create(target, source_sig.file_size())?);
    if let Some(existing) = &existing {
        let unchanged = unchanged_runs(&delta);
        let (existing, staged2) = (existing.clone(), staged.clone());
        tokio::task::spawn_blocking(move || {
            unchanged.iter().try_for_each(|r| copy_range(&existing, &staged2.file, r.start, r.end - r.start))
        })
        .await
        .map_err(|e| ClientError::Local(e.to_string()))?
        .map_err(|e| ClientError::io("copying unchanged blocks", e))?;
    }
    let block = u64::from(source_sig.block_size());
    let runs = delta.runs((MAX_RUN_BYTES / block).max(1));
    let bar = options.progress.bar("receiving", delta.bytes_to_send());
    let received = AtomicU64::new(0);
    futures_util::stream::iter(runs)
        .map(|run| {
            let (source, staged, bar, received) = (&source, staged.clone(), bar.clone(), &received);
            async move {
                let layout = source_sig.layout();
                let start = layout.block_range(run.start).map_or(0, |r| r.start);
                let end = layout.block_range(run.end - 1).map_or(0, |r| r.end);
                if let BlockSource::Local(file) = source {
                    // Local to local: the kernel copies, no bytes pass through here.
                    let (file, staged) = (file.clone(), staged.clone());
                    tokio::task::spawn_blocking(move || copy_range(&file, &staged.file, start, end - start))
                        .await
                        .map_err(|e| ClientError::Local(e.to_string()))?
                        .map_err(|e| ClientError::io("copying changed blocks", e))?;
                } else {
                    let bytes = source.read(start, end).await?;
                    if verify {
                        for (i, chunk) in (run.clone()).zip(bytes.chunks(block as usize)) {
                            let digest = diffcopy_core::hash_block(source_sig.algorithm(), chunk);
                            if source_sig.block_digest(i) != Some(digest.as_bytes()) {
                                return Err(ClientError::Local(format!(
                                    "block {i} does not match its digest"
                                )));
                            }
                        }
                    }
                    staged.write_at(&bytes, start)?;
                }
                bar.inc(end - start);
                received.fetch_add(end - start, Ordering::Relaxed);
                Ok::<_, ClientError>(())
            }
        })
        .buffer_unordered(options.concurrency.max(1))
        .try_collect::<()>()
        .await?;
    bar.finish_and_clear();
    let staged =
        Arc::try_unwrap(staged).map_err(|_| ClientError::Local("staged file still in use".into()))?;
    // The new version keeps the old one's permission bits.
    if let Some(meta) = existing.as_ref().and_then(|f| f.metadata().ok()) {
        let _ = staged.file.set_permissions(meta.permissions());
    }
    tokio::task::spawn_blocking(move || staged.commit())
        .await
        .map_err(|e| ClientError::Local(e.to_string()))??;
    Ok(summary(direction, options, source_sig, &delta, delta.blocks_to_send()))
}

/// Byte ranges of the source's blocks that the delta does not send.
fn unchanged_runs(delta: &Delta) -> Vec<std::ops::Range<u64>> {
    let changed = delta.blocks();
    delta.layout().byte_runs((0..delta.total_blocks()).filter(|i| changed.binary_search(i).is_err()))
}

/// The absolute form of a local path, for resume keys.
pub(super) fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}

//! Protocol v2 from the client's side. Uploads: hash the file's blocks with
//! the server's seed, answer the server's needs level by level, send only
//! the literal data, commit. Downloads: the roles swap; this side searches
//! its old file against the server's block hashes, fetches the literal
//! ranges, rebuilds beside the target and checks the file hash.

use std::fs::File;
use std::ops::Range;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::Arc;

use diffcopy_core::BlockLayout;
use diffcopy_core::delta::{
    BlockHash, BlockHashes, BlockHashesBuilder, DeltaParams, FRAMES_HEADER, LITERAL_BATCH, Matcher,
    PieceHashes, Plan, Source, block_hash, joined, literal_batches, parse_frames,
};
use futures_util::{StreamExt, TryStreamExt};

use super::error::ClientError;
use super::local::open_existing;
use super::options::{SyncOptions, open_source};
use super::progress::Progress;
use super::rebuild::Rebuild;
use super::remote::Remote;
use super::resume::ResumeState;
use super::summary::Summary;
use crate::frames::{Arrivals, frame_bytes, push_frame, whole_blocks};
use crate::fs::{FileReader, hash_file_blocks};

/// What one upload or download moved: the bodies each way, the literal data.
#[derive(Debug, Default)]
struct Traffic {
    payload: u64,
    literal: u64,
}

fn threads() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get())
}

fn blocking_error(e: tokio::task::JoinError) -> ClientError {
    ClientError::Local(e.to_string())
}

/// The block hashes of `file` under `params`, hashed on all cores.
async fn block_hashes(
    file: &Arc<File>,
    params: DeltaParams,
    progress: &Progress,
    label: &str,
) -> Result<BlockHashes, ClientError> {
    let layout = layout(&params)?;
    let seed = params.seed;
    let mut rx = hash_file_blocks(file.clone(), layout, threads(), move |b| BlockHash::of(seed, b));
    let mut builder = BlockHashesBuilder::new(params);
    let bar = progress.bar(label, params.file_size);
    while let Some(hash) = rx.recv().await {
        let index = builder.len();
        builder.push(hash.map_err(|e| ClientError::io(format!("reading {label}"), e))?);
        bar.inc(u64::from(layout.block_len(index).unwrap_or(0)));
    }
    bar.finish_and_clear();
    builder.finish().map_err(|_| ClientError::Local(format!("{label} changed while it was hashed")))
}

fn layout(params: &DeltaParams) -> Result<BlockLayout, ClientError> {
    BlockLayout::new(params.file_size, params.levels.block_size())
        .map_err(|e| ClientError::Usage(e.to_string()))
}

/// Uploads `source` through protocol v2; resumes a session whose search
/// had ended; retries once with the whole file after a file hash mismatch.
pub(super) async fn upload_v2(
    options: &SyncOptions,
    source: &Path,
    remote: &Remote,
) -> Result<Summary, ClientError> {
    let file = open_source(source)?;
    let meta = file.metadata().map_err(|e| ClientError::io(source.display(), e))?;
    let size = meta.len();
    // Taken before the first read: a file written during the upload keeps
    // an older time on the server, which the next quick check sees.
    let mtime = meta.modified().ok().map(crate::fs::mtime::to_ms);
    let resume = ResumeState::for_upload(source, &remote.url(), &format!("v2 {}", options.block_size))?;
    if !options.dry_run
        && let Some(id) = resume.load()
        && let Some(missing) = remote.delta_missing(&id).await?
    {
        let mut traffic = Traffic::default();
        send_literal(options, &file, remote, &id, &missing, LITERAL_BATCH, &mut traffic).await?;
        return commit(options, remote, &resume, &id, Committing { size, mtime }, traffic).await;
    }
    let committing = Committing { size, mtime };
    match upload_once(options, &file, committing, remote, &resume, options.whole_file).await {
        Err(ClientError::Server { code, .. }) if code == "file_hash_mismatch" => {
            tracing::warn!("the server's rebuilt file did not match; sending the whole file");
            upload_once(options, &file, committing, remote, &resume, true).await
        }
        other => other,
    }
}

/// What a commit tells the server about the new file.
#[derive(Clone, Copy, Debug)]
struct Committing {
    size: u64,
    /// The source's modification time, milliseconds since the epoch.
    mtime: Option<i64>,
}

async fn upload_once(
    options: &SyncOptions,
    file: &Arc<File>,
    committing: Committing,
    remote: &Remote,
    resume: &ResumeState,
    whole: bool,
) -> Result<Summary, ClientError> {
    let size = committing.size;
    let session = remote.delta_create(size, options.block_size, whole).await?;
    let params = session.params;
    let mut traffic = Traffic::default();
    let mut literal: Vec<Range<u64>> = Vec::new();
    // Sent even for a whole upload (searched against nothing): the server
    // checks the file hash.
    let hashes = block_hashes(file, params, &options.progress, "hashing").await?.encode();
    traffic.payload += hashes.len() as u64;
    let mut need = remote.delta_hashes(&session.id, hashes, size).await?;
    loop {
        traffic.payload += need.encode().len() as u64;
        literal.extend(need.literal.iter().cloned());
        if need.is_final() {
            break;
        }
        let (file, need_now) = (file.clone(), need.clone());
        let pieces = tokio::task::spawn_blocking(move || {
            let mut reader = FileReader::with_len(&file, size);
            PieceHashes::compute(&params, need_now.level, &need_now.refine, &mut reader)
        })
        .await
        .map_err(blocking_error)?
        .map_err(|e| ClientError::io("reading the source", e))?
        .encode();
        traffic.payload += pieces.len() as u64;
        need = remote.delta_hashes(&session.id, pieces, size).await?;
    }
    if options.dry_run {
        remote.delta_abort(&session.id).await;
        traffic.literal = literal.iter().map(|r| r.end - r.start).sum();
        return Ok(summary("upload", true, &params, traffic));
    }
    resume.save(&session.id);
    send_literal(options, file, remote, &session.id, &literal, session.data_batch, &mut traffic).await?;
    commit(options, remote, resume, &session.id, committing, traffic).await
}

async fn commit(
    options: &SyncOptions,
    remote: &Remote,
    resume: &ResumeState,
    id: &str,
    committing: Committing,
    traffic: Traffic,
) -> Result<Summary, ClientError> {
    let size = committing.size;
    match remote.delta_commit(id, committing.mtime).await {
        Ok(_) => {
            resume.clear();
            let levels = diffcopy_core::delta::Levels::for_block(options.block_size)
                .map_err(|e| ClientError::Usage(e.to_string()))?;
            let params = DeltaParams { file_size: size, seed: 0, levels };
            Ok(summary("upload", false, &params, traffic))
        }
        Err(e) => {
            // A session that cannot commit will not next time either;
            // one the server could not take now (503) may.
            if matches!(e, ClientError::Conflict(_))
                || matches!(e, ClientError::Server { status, .. } if status != 503)
            {
                resume.clear();
                remote.delta_abort(id).await;
            }
            Err(e)
        }
    }
}

fn summary(direction: &'static str, dry_run: bool, params: &DeltaParams, traffic: Traffic) -> Summary {
    let size = params.file_size;
    Summary {
        direction,
        protocol: "v2",
        dry_run,
        total_blocks: params.block_count(),
        blocks_sent: 0,
        total_bytes: size,
        bytes_sent: traffic.literal,
        payload_bytes: traffic.payload,
        similarity_percent: if size == 0 {
            100.0
        } else {
            (size - traffic.literal) as f64 * 100.0 / size as f64
        },
        seconds: 0.0,
        written_as: None,
        disk_bytes_written: None,
    }
}

/// Sends `ranges` of `file` as literal frames, a few requests in flight.
async fn send_literal(
    options: &SyncOptions,
    file: &Arc<File>,
    remote: &Remote,
    id: &str,
    ranges: &[Range<u64>],
    batch: u32,
    traffic: &mut Traffic,
) -> Result<(), ClientError> {
    let total: u64 = ranges.iter().map(|r| r.end - r.start).sum();
    let bar = options.progress.bar("uploading", total);
    let sent = futures_util::stream::iter(literal_batches(ranges, batch))
        .map(|batch| {
            let (file, bar) = (file.clone(), &bar);
            async move {
                let bytes: u64 = batch.iter().map(|r| r.end - r.start).sum();
                let body = tokio::task::spawn_blocking(move || frames_of(&file, &batch))
                    .await
                    .map_err(blocking_error)?
                    .map_err(|e| ClientError::io("reading the source", e))?;
                let len = body.len() as u64;
                remote.delta_data(id, body).await?;
                bar.inc(bytes);
                Ok::<_, ClientError>((bytes, len))
            }
        })
        .buffer_unordered(options.concurrency.max(1))
        .try_fold((0, 0), |(a, b), (bytes, len)| async move { Ok((a + bytes, b + len)) })
        .await?;
    bar.finish_and_clear();
    traffic.literal += sent.0;
    traffic.payload += sent.1;
    Ok(())
}

/// One request body: the frames of `batch`'s ranges of `file`.
fn frames_of(file: &File, batch: &[Range<u64>]) -> std::io::Result<Vec<u8>> {
    let mut body = FRAMES_HEADER.to_vec();
    let mut buf = Vec::new();
    for range in batch {
        buf.resize((range.end - range.start) as usize, 0);
        file.read_exact_at(&mut buf, range.start)?;
        push_frame(&mut body, range.start, &buf);
    }
    Ok(body)
}

/// Downloads `remote` over the local `target` through protocol v2.
pub(super) async fn download_v2(
    options: &SyncOptions,
    remote: &Remote,
    target: &Path,
) -> Result<Summary, ClientError> {
    let existing = open_existing(target)?.map(Arc::new);
    let (hashes, etag) = remote
        .delta_signature(options.block_size)
        .await?
        .ok_or_else(|| ClientError::NotFound(format!("{} does not exist", remote.url())))?;
    let params = *hashes.params();
    let mut traffic = Traffic { payload: hashes.encode().len() as u64, literal: 0 };
    let old = existing.as_ref().filter(|_| !options.whole_file);
    let (plan, known) = match old {
        Some(old) => search(options, remote, &etag, &hashes, old, &mut traffic).await?,
        None => (Plan::literal(params.file_size), Vec::new()),
    };
    traffic.literal = plan.literal_bytes();
    let old_len = match &existing {
        Some(f) => f.metadata().map_err(|e| ClientError::io(target.display(), e))?.len(),
        None => 0,
    };
    if options.dry_run || (old.is_some() && plan.is_identity(old_len)) {
        return Ok(summary("download", options.dry_run, &params, traffic));
    }
    let copies = plan.segments().iter().filter_map(|s| match s.source {
        Source::Old(at) => Some((at, s.new.clone())),
        Source::Literal => None,
    });
    let rebuild = Rebuild::start(target, params.file_size, existing, copies.collect()).await?;
    let literal: Vec<Range<u64>> = plan.literal_ranges().collect();
    let arrived = fetch_literal(options, remote, &etag, &literal, &rebuild, &params, &mut traffic).await?;
    // Blocks the search found whole are the target's bytes it hashed, and
    // blocks that arrived whole were hashed on arrival: their hashes are
    // known. The others are read back.
    let known = arrived.fill(&known, params.block_count());
    if rebuild.file_hash(layout(&params)?, params.seed, known).await? != hashes.file_hash() {
        return Err(ClientError::Protocol("the rebuilt file does not have the server's file hash".into()));
    }
    let written = rebuild.finish().await?;
    Ok(summary("download", false, &params, traffic).written(written))
}

/// This side's search of its `old` file for the server's blocks, asking
/// the server for finer hashes where it needs them; returns the plan and
/// the block hashes it knows (those of blocks found whole).
async fn search(
    options: &SyncOptions,
    remote: &Remote,
    etag: &str,
    hashes: &BlockHashes,
    old: &Arc<File>,
    traffic: &mut Traffic,
) -> Result<(Plan, Vec<Option<u128>>), ClientError> {
    let params = *hashes.params();
    let old_len = old.metadata().map_err(|e| ClientError::io("the target", e))?.len();
    // The old file's aligned block hashes, on all cores; then the search.
    let old_params = DeltaParams { file_size: old_len, ..params };
    let aligned_layout = layout(&old_params)?;
    let seed = params.seed;
    let mut rx = hash_file_blocks(old.clone(), aligned_layout, threads(), move |b| block_hash(seed, b));
    let bar = options.progress.bar("target", old_len);
    let mut aligned = Vec::with_capacity(aligned_layout.block_count() as usize);
    while let Some(hash) = rx.recv().await {
        aligned.push(hash.map_err(|e| ClientError::io("reading the target", e))?);
        bar.inc(u64::from(params.levels.block_size()));
    }
    bar.finish_and_clear();
    let mut matcher = Matcher::new(params, old_len);
    let (file, hashes) = (old.clone(), hashes.clone());
    let (mut matcher_back, mut need) = tokio::task::spawn_blocking(move || {
        let need = matcher.blocks(&hashes, &mut FileReader::with_len(&file, old_len), Some(&aligned));
        (matcher, need)
    })
    .await
    .map_err(blocking_error)?;
    loop {
        let current = need.map_err(|e| ClientError::Protocol(format!("searching the target: {e}")))?;
        if current.is_final() {
            break;
        }
        traffic.payload += current.encode().len() as u64;
        let pieces = remote.delta_pieces(etag, &params, &current).await?;
        traffic.payload += pieces.encode().len() as u64;
        let file = old.clone();
        let mut matcher = matcher_back;
        (matcher_back, need) = tokio::task::spawn_blocking(move || {
            let need = matcher.pieces(&pieces, &mut FileReader::with_len(&file, old_len));
            (matcher, need)
        })
        .await
        .map_err(blocking_error)?;
    }
    let plan = matcher_back.plan().ok_or_else(|| ClientError::Local("the search did not end".into()))?;
    Ok((plan, matcher_back.known_block_hashes()))
}

/// Fetches `ranges` of version `etag` and writes them into `rebuild`;
/// returns the blocks that arrived whole, hashed.
async fn fetch_literal(
    options: &SyncOptions,
    remote: &Remote,
    etag: &str,
    ranges: &[Range<u64>],
    rebuild: &Rebuild,
    params: &DeltaParams,
    traffic: &mut Traffic,
) -> Result<Arrivals, ClientError> {
    let total: u64 = ranges.iter().map(|r| r.end - r.start).sum();
    let bar = options.progress.bar("receiving", total);
    let size = rebuild.size();
    let received = futures_util::stream::iter(literal_batches(ranges, LITERAL_BATCH))
        .map(|batch| {
            let bar = &bar;
            async move {
                let asked: Vec<Range<u64>> = joined(&batch);
                let body = remote.delta_fetch(etag, asked.clone()).await?;
                let frames = parse_frames(&body, size)
                    .map_err(|e| ClientError::Protocol(format!("bad literal data: {e}")))?;
                let mut got = 0;
                let mut whole = Vec::new();
                for frame in &frames {
                    if !asked.iter().any(|r| r.start <= frame.offset && frame.range().end <= r.end) {
                        return Err(ClientError::Protocol(
                            "the server sent data that was not asked for".into(),
                        ));
                    }
                    let bytes = frame_bytes(frame).map_err(ClientError::Protocol)?;
                    whole.push((frame.range(), whole_blocks(params, &frame.range(), &bytes)));
                    rebuild.write_at(&bytes, frame.offset)?;
                    got += u64::from(frame.len);
                }
                let wanted: u64 = asked.iter().map(|r| r.end - r.start).sum();
                if got != wanted {
                    return Err(ClientError::Protocol(format!("asked for {wanted} bytes, got {got}")));
                }
                bar.inc(got);
                Ok::<_, ClientError>((body.len() as u64, whole))
            }
        })
        .buffer_unordered(options.concurrency.max(1))
        .try_fold((0, Arrivals::default()), |(sum, mut arrived), (len, whole)| async move {
            for (range, blocks) in whole {
                arrived.note(params, &range, blocks);
            }
            Ok((sum + len, arrived))
        })
        .await?;
    bar.finish_and_clear();
    traffic.payload += received.0;
    Ok(received.1)
}

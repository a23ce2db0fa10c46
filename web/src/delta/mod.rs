//! `uploadFile` over protocol v2 (docs/api.md#protocol-v2): the page sends
//! what the CLI sends.
//!
//! 1. open a session (the server picks the seed and the levels), or continue
//!    the one remembered for this file if its search had ended;
//! 2. hash every block with the seed in Web Workers (`hashes.rs`) and send
//!    the block hashes; the server searches its old version and answers
//!    with a need: ranges to refine at the next level, literal ranges;
//! 3. answer each refinement with the pieces' hashes, round after round;
//! 4. send the literal ranges in frames (`frames.rs`), a few requests at once;
//! 5. commit: the server rebuilds the file, checks its hash and installs it.
//!    A file hash mismatch (the file changed while it was read) is retried
//!    once with the whole file.

mod api;
mod frames;
pub(crate) mod hashes;

use std::cell::Cell;
use std::ops::Range;

use diffcopy_core::delta::{DeltaParams, FRAMES_HEADER, LITERAL_BATCH, Levels, literal_batches};
use futures_util::{StreamExt, TryStreamExt};
use js_sys::{Array, Date, Object, Reflect};
use wasm_bindgen::JsValue;
use web_sys::Blob;

pub use hashes::{DeltaBlockHasher, delta_block_hash, delta_hash_blob};

use crate::diff::set;
use crate::error::{ErrorCode, WebError};
use crate::job::{Upload, with_retries};
use crate::read::{RangeReader, blob_size};
use crate::resume;

/// The most literal ranges an upload's result lists (neighbours joined
/// beyond that: they are for display).
const MAX_SENT_RANGES: usize = 1024;

/// The parameters for a file of `size` bytes with `block_size` and `seed`.
fn params(size: u64, block_size: u32, seed: u64) -> Result<DeltaParams, WebError> {
    let levels =
        Levels::for_block(block_size).map_err(|e| WebError::new(ErrorCode::InvalidOption, e.to_string()))?;
    Ok(DeltaParams { file_size: size, seed, levels })
}

/// What this call sent.
#[derive(Debug, Default)]
struct Sent {
    /// Every request body: hashes, pieces, frames.
    payload: u64,
    /// Literal bytes (before compression).
    literal: u64,
    /// The literal ranges, merged.
    ranges: Vec<Range<u64>>,
    /// Workers that hashed the file.
    workers: u32,
}

/// Uploads `file` through protocol v2. `Ok(None)`: the server has no
/// protocol v2 endpoints (it answered 404 to opening a session).
pub(crate) async fn upload(upload: &Upload, file: &Blob) -> Result<Option<JsValue>, WebError> {
    let started = Date::now();
    let size = blob_size(file);
    let block_size = upload.hash.block_size;
    // Checked before anything is sent.
    params(size, block_size, 0)?;
    let key = resume::key(upload.api.base(), &upload.path, file, block_size, "v2").filter(|_| upload.resume);
    if let Some(key) = &key
        && let Some(id) = resume::load(key)
    {
        match upload.api.delta_status(&id).await? {
            Some(status) if status.phase == "receiving" && status.size == size => {
                let mut sent = Sent::default();
                send_literal(upload, file, (&id, LITERAL_BATCH, status.lz4), &status.missing, &mut sent)
                    .await?;
                return commit(upload, file, &id, Some(key), sent, started).await.map(Some);
            }
            _ => resume::forget(key),
        }
    }
    match upload_once(upload, file, key.as_deref(), false, started).await {
        Err(error) if error.code() == "file_hash_mismatch" => {
            web_sys::console::warn_1(
                &"diffcopy: the server's rebuilt file did not match; sending it whole".into(),
            );
            upload_once(upload, file, key.as_deref(), true, started).await
        }
        other => other,
    }
}

async fn upload_once(
    upload: &Upload,
    file: &Blob,
    key: Option<&str>,
    whole: bool,
    started: f64,
) -> Result<Option<JsValue>, WebError> {
    let size = blob_size(file);
    let session = match upload.api.delta_create(&upload.path, size, upload.hash.block_size, whole).await {
        Err(error) if error.status() == Some(404) && error.code() != "not_found" => return Ok(None),
        other => other?,
    };
    let mut sent = Sent::default();
    // Until the search ends the session cannot be resumed: a failure ends it.
    let literal = match search(upload, file, &session, &mut sent).await {
        Ok(literal) => literal,
        Err(error) => {
            upload.api.delta_abort(&session.id).await;
            return Err(error);
        }
    };
    if let Some(key) = key {
        resume::store(key, &session.id);
    }
    send_literal(upload, file, (&session.id, session.data_batch, session.lz4), &literal, &mut sent).await?;
    commit(upload, file, &session.id, key, sent, started).await.map(Some)
}

/// Hashes `file`, answers the server's needs level by level; the literal
/// ranges the search leaves.
async fn search(
    upload: &Upload,
    file: &Blob,
    session: &api::DeltaSession,
    sent: &mut Sent,
) -> Result<Vec<Range<u64>>, WebError> {
    let (size, params, progress) = (blob_size(file), session.params, &upload.progress);
    let signal = upload.signal.as_ref();
    progress.report(Some("hashing"), 0, size, true);
    let mut on_bytes = |done| progress.report(Some("hashing"), done, size, false);
    let (hashes, workers) = hashes::block_hashes(file, params, &upload.hash, signal, &mut on_bytes).await?;
    progress.report(Some("hashing"), size, size, true);
    sent.workers = workers;

    // The search: one round per level, until the need has nothing to refine.
    let rounds = params.levels.count() as u64;
    progress.report(Some("searching"), 0, rounds, true);
    let body = hashes.encode();
    sent.payload += body.len() as u64;
    let mut need = upload.api.delta_hashes(&session.id, &body, size).await?;
    let mut literal: Vec<Range<u64>> = Vec::new();
    loop {
        literal.extend(need.literal.iter().cloned());
        progress.report(Some("searching"), u64::from(need.level) + 1, rounds, false);
        if need.is_final() {
            break;
        }
        let pieces = hashes::piece_hashes(file, &params, &need, signal).await?.encode();
        sent.payload += pieces.len() as u64;
        need = upload.api.delta_hashes(&session.id, &pieces, size).await?;
    }
    progress.report(Some("searching"), rounds, rounds, true);
    Ok(literal)
}

/// Sends `ranges` of `file` as literal frames to session `id`, `batch`
/// literal bytes a request (LZ4 frames where smaller if `lz4`),
/// `concurrency` requests at a time.
async fn send_literal(
    upload: &Upload,
    file: &Blob,
    (id, batch, lz4): (&str, u32, bool),
    ranges: &[Range<u64>],
    sent: &mut Sent,
) -> Result<(), WebError> {
    let total: u64 = ranges.iter().map(|r| r.end - r.start).sum();
    upload.progress.report(Some("uploading"), 0, total, true);
    let done = Cell::new(0u64);
    let payload = futures_util::stream::iter(literal_batches(ranges, batch))
        .map(|batch| {
            let done = &done;
            async move {
                let mut reader = RangeReader::new(file, batch, 2);
                let mut body = FRAMES_HEADER.to_vec();
                let mut bytes = 0;
                while let Some((range, data)) = reader.next().await? {
                    frames::push_frame(&mut body, range.start, &data, lz4);
                    bytes += range.end - range.start;
                }
                with_retries(upload.signal.as_ref(), || upload.api.delta_data(id, &body)).await?;
                done.set(done.get() + bytes);
                upload.progress.report(Some("uploading"), done.get(), total, false);
                Ok::<_, WebError>(body.len() as u64)
            }
        })
        .buffer_unordered(upload.concurrency.max(1) as usize)
        .try_fold(0u64, |sum, len| async move { Ok(sum + len) })
        .await?;
    upload.progress.report(Some("uploading"), total, total, true);
    sent.payload += payload;
    sent.literal += total;
    sent.ranges = merge(ranges);
    Ok(())
}

/// `ranges` sorted, touching ones joined.
fn merge(ranges: &[Range<u64>]) -> Vec<Range<u64>> {
    let mut sorted = ranges.to_vec();
    sorted.sort_unstable_by_key(|r| r.start);
    let mut out: Vec<Range<u64>> = Vec::with_capacity(sorted.len());
    for range in sorted {
        match out.last_mut() {
            Some(last) if range.start <= last.end => last.end = last.end.max(range.end),
            _ => out.push(range),
        }
    }
    out
}

/// `ranges` as a JS array of `[start, end]`, at most [`MAX_SENT_RANGES`] of
/// them (neighbours within one 1/1024 of the file joined beyond that).
pub(crate) fn ranges_array(ranges: &[Range<u64>], size: u64) -> Array {
    let span = size.div_ceil(MAX_SENT_RANGES as u64).max(1);
    let mut shown: Vec<Range<u64>> = Vec::new();
    for range in ranges {
        match shown.last_mut() {
            Some(last) if ranges.len() > MAX_SENT_RANGES && last.start / span == range.start / span => {
                last.end = range.end
            }
            _ => shown.push(range.clone()),
        }
    }
    shown
        .iter()
        .map(|r| -> JsValue {
            [JsValue::from(r.start as f64), JsValue::from(r.end as f64)].into_iter().collect::<Array>().into()
        })
        .collect()
}

/// Commits session `id` and describes the whole upload.
async fn commit(
    upload: &Upload,
    file: &Blob,
    id: &str,
    key: Option<&str>,
    sent: Sent,
    started: f64,
) -> Result<JsValue, WebError> {
    upload.progress.report(Some("committing"), 0, 1, true);
    // A File's time goes with it, so that a folder's next upload
    // (`uploadFiles`) finds it unchanged by size and time.
    let mtime = wasm_bindgen::JsCast::dyn_ref::<web_sys::File>(file).map(web_sys::File::last_modified);
    let committed = match upload.api.delta_commit(id, mtime).await {
        Ok(committed) => committed,
        Err(error) => {
            // A session the server refused to commit will not commit next time either.
            if let (Some(key), Some(404 | 409 | 412 | 422)) = (key, error.status()) {
                resume::forget(key);
            }
            return Err(error);
        }
    };
    if let Some(key) = key {
        resume::forget(key);
    }
    upload.progress.report(Some("committing"), 1, 1, true);

    let size = blob_size(file);
    let number =
        |name: &str| Reflect::get(&committed, &name.into()).ok().and_then(|v| v.as_f64()).unwrap_or(0.0);
    let literal = number("literal_bytes") as u64;
    let block = u64::from(upload.hash.block_size);
    let blocks_sent: u64 = {
        let mut touched =
            sent.ranges.iter().flat_map(|r| r.start / block..r.end.div_ceil(block)).collect::<Vec<_>>();
        touched.dedup();
        touched.len() as u64
    };
    let result = Object::new();
    set(&result, "path", upload.path.as_str().into());
    set(&result, "protocol", "v2".into());
    set(&result, "bytesSent", (sent.literal as f64).into());
    set(&result, "bytesResumed", (literal.saturating_sub(sent.literal) as f64).into());
    set(&result, "payloadBytes", (sent.payload as f64).into());
    set(&result, "literalBytes", (literal as f64).into());
    set(&result, "copiedBytes", number("copied_bytes").into());
    set(&result, "movedBytes", number("moved_bytes").into());
    set(&result, "blocksSent", (blocks_sent as f64).into());
    set(&result, "blocksResumed", 0.into());
    set(&result, "totalBlocks", (size.div_ceil(block) as f64).into());
    set(&result, "totalBytes", (size as f64).into());
    let similarity = if size == 0 { 100.0 } else { 100.0 * (size - literal.min(size)) as f64 / size as f64 };
    set(&result, "similarity", similarity.into());
    set(&result, "seconds", ((Date::now() - started) / 1000.0).into());
    let etag = Reflect::get(&committed, &"etag".into()).ok().and_then(|e| e.as_string());
    set(&result, "etag", etag.unwrap_or_default().into());
    set(&result, "strategy", "wasm".into());
    set(&result, "hashWorkers", sent.workers.into());
    set(&result, "sentRanges", ranges_array(&sent.ranges, size).into());
    let moved =
        api::ranges(&Reflect::get(&committed, &"moved".into()).unwrap_or(JsValue::UNDEFINED), "moved")?;
    set(&result, "movedRanges", ranges_array(&moved, size).into());
    set(&result, "commit", Reflect::get(&committed, &"commit".into()).unwrap_or(JsValue::UNDEFINED));
    Ok(result.into())
}

//! Hashing a `File` or `Blob` into its signature without reading it whole.
//!
//! Two engines give the same signature:
//!
//! * `webcrypto`: each block is handed, as a view of a slice of several whole
//!   blocks, to `crypto.subtle.digest`, which hashes natively (Chromium does
//!   it on the calling thread). Only for SHA-1 and SHA-256, and only in
//!   secure contexts (https, localhost, 127.0.0.1).
//! * `wasm`: the core's `SignatureBuilder` compiled to WebAssembly. Any
//!   algorithm, any context.
//!
//! `auto` (the default) picks `webcrypto` where it can and `wasm` otherwise.
//! Either runs in Web Workers that read their own slices (the default for
//! files of 8 MiB and more, see `hash_workers.rs`), or on the calling thread.
//! Reads of a few MiB matter: Chromium reads a `File` in 1 MiB slices at less
//! than half the rate of 8 MiB slices.

use diffcopy_core::{Signature, SignatureBuilder, SignatureHeader};
use futures_util::StreamExt;
use futures_util::stream::FuturesOrdered;
use js_sys::{ArrayBuffer, Object, Uint8Array};
use wasm_bindgen::prelude::wasm_bindgen;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{AbortSignal, Blob, SubtleCrypto};

use crate::engine::{Engine, HashConfig, subtle, webcrypto_name};
use crate::error::{ErrorCode, WebError};
use crate::hash_workers::Workers;
use crate::options::{Options, check_abort};
use crate::progress::Progress;
use crate::read::{SliceReader, blob_size, read_range};

/// Bytes kept in flight (read, not yet hashed) by WebCrypto on the calling thread.
const WEBCRYPTO_BYTES_IN_FLIGHT: u64 = 32 << 20;
/// Default bytes per read: measured best in headless Chromium (web/bench).
pub(crate) const WASM_SLICE: u32 = 4 << 20;
const WEBCRYPTO_SLICE: u32 = 8 << 20;
/// A worker reads its slice as a stream into one block-sized buffer, so a
/// slice costs no memory; it is as long as this, or shorter for small files
/// (so that every worker gets at least two)...
const WORKER_SLICE_MAX: u64 = 64 << 20;
/// ...but no shorter than this.
const WORKER_SLICE_MIN: u64 = 16 << 20;

/// Called with each block's index and digest, in order, as soon as it is known.
pub(crate) type OnBlock<'a> = &'a mut dyn FnMut(u64, &[u8]) -> Result<(), WebError>;

/// Where hashing reports to, and what stops it.
pub(crate) struct Report<'a> {
    /// Hashing fails with `aborted` once this fires.
    pub(crate) signal: Option<&'a AbortSignal>,
    /// Each block's digest.
    pub(crate) on_block: OnBlock<'a>,
    /// Called with the bytes hashed so far.
    pub(crate) on_bytes: &'a mut dyn FnMut(u64),
}

/// How a blob was hashed.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Hashed {
    /// What hashed it.
    pub(crate) engine: Engine,
    /// Workers that hashed it; 0 when the calling thread did.
    pub(crate) workers: u32,
}

/// Hashes all of `blob`, reporting blocks and bytes to `report` as it goes.
///
/// Workers are used as [`Workers::count_for`] says. Where they cannot start,
/// the calling thread hashes instead, unless the `workers` option asked for
/// them (`workers_unavailable`).
pub(crate) async fn hash(
    blob: &Blob,
    config: &HashConfig,
    mut report: Report<'_>,
) -> Result<(Signature, Hashed), WebError> {
    let engine = config.resolve()?;
    let count = Workers::count_for(config, blob_size(blob));
    let workers = match count {
        0 => None,
        _ => match Workers::start(blob, count, engine, config).await {
            Ok(workers) => Some(workers),
            Err(error) if config.workers.is_some() => return Err(error),
            Err(_) => None,
        },
    };
    check_abort(report.signal)?;
    let block = u64::from(config.block_size);
    let signature = match (&workers, engine) {
        (Some(workers), _) => {
            let count = u64::from(workers.count());
            let slice = worker_slice(config.slice_size, blob_size(blob), count, block);
            // One slice at a time per worker.
            let depth = if config.in_flight == 0 { count } else { u64::from(config.in_flight) };
            let digest = |start, end| workers.digest(start, end);
            hash_slices(blob, config, slice, depth, &mut report, digest).await?
        }
        (None, Engine::WebCrypto) => {
            let (Some(subtle), Some(name)) = (subtle(), webcrypto_name(config.algorithm)) else {
                return Err(WebError::new(
                    ErrorCode::WebCryptoUnavailable,
                    "WebCrypto is not available here",
                ));
            };
            let slice = whole_blocks(config.slice_size.unwrap_or(WEBCRYPTO_SLICE), block);
            let depth = match config.in_flight {
                0 => (WEBCRYPTO_BYTES_IN_FLIGHT / slice).clamp(2, 8),
                n => u64::from(n),
            };
            let digest = |start, end| digest_slice(blob, &subtle, name, start, end, block);
            hash_slices(blob, config, slice, depth, &mut report, digest).await?
        }
        (None, _) => hash_wasm(blob, config, &mut report).await?,
    };
    // An abort during the last progress callback still counts.
    check_abort(report.signal)?;
    Ok((signature, Hashed { engine, workers: workers.as_ref().map_or(0, Workers::count) }))
}

/// The bytes per slice a worker reads: `asked`, or a share of the file
/// (so every one of `workers` gets at least two), in whole blocks.
pub(crate) fn worker_slice(asked: Option<u32>, size: u64, workers: u64, block: u64) -> u64 {
    match asked {
        Some(slice) => whole_blocks(slice, block),
        None => {
            let share = size.div_ceil(2 * workers.max(1)).clamp(WORKER_SLICE_MIN, WORKER_SLICE_MAX);
            whole_blocks(share as u32, block)
        }
    }
}

/// `slice` rounded down to whole blocks, at least one.
pub(crate) fn whole_blocks(slice: u32, block: u64) -> u64 {
    (u64::from(slice) / block).max(1) * block
}

/// Feeds slices of `blob` in order to the core on this thread.
async fn hash_wasm(blob: &Blob, config: &HashConfig, report: &mut Report<'_>) -> Result<Signature, WebError> {
    let mut builder = SignatureBuilder::new(config.algorithm, config.block_size)
        .map_err(|e| WebError::new(ErrorCode::InvalidOption, e.to_string()))?;
    builder.reserve_for(blob_size(blob));
    let depth = if config.in_flight == 0 { 4 } else { config.in_flight };
    let mut reader = SliceReader::new(blob, config.slice_size.unwrap_or(WASM_SLICE), depth);
    let mut buffer = Vec::new();
    while let Some((_, slice)) = reader.next().await? {
        check_abort(report.signal)?;
        let bytes = Uint8Array::new(&slice);
        buffer.resize(bytes.length() as usize, 0);
        bytes.copy_to(&mut buffer);
        let before = builder.completed_blocks();
        builder.update(&buffer);
        for index in before..builder.completed_blocks() {
            (report.on_block)(index, builder.block_digest(index).unwrap_or_default())?;
        }
        (report.on_bytes)(builder.bytes_hashed());
    }
    let complete = builder.completed_blocks();
    let signature = builder.finish();
    if let Some(last) = signature.block_digest(complete) {
        (report.on_block)(complete, last)?;
    }
    Ok(signature)
}

/// Hashes `blob` in slices of `slice` bytes (whole blocks), `depth` in
/// flight: `digest(start, end)` gives the concatenated digests of the blocks
/// in `start..end`, and they are taken in order.
async fn hash_slices<F, Fut>(
    blob: &Blob,
    config: &HashConfig,
    slice: u64,
    depth: u64,
    report: &mut Report<'_>,
    mut digest: F,
) -> Result<Signature, WebError>
where
    F: FnMut(u64, u64) -> Fut,
    Fut: Future<Output = Result<Vec<u8>, WebError>>,
{
    let size = blob_size(blob);
    let header = SignatureHeader::new(config.algorithm, config.block_size, size)
        .map_err(|e| WebError::new(ErrorCode::InvalidOption, e.to_string()))?;
    let mut signature = Signature::new(header);
    let block = u64::from(config.block_size);
    let digest_len = config.algorithm.digest_len();
    let layout = SliceLayout { size, block, slice, depth, record_len: digest_len };
    let signal = report.signal;
    records_in_order(layout, signal, &mut digest, |digests| {
        for digest in digests.chunks(digest_len) {
            let index = signature.digest_count();
            signature.push_digest(digest).map_err(|e| WebError::new(ErrorCode::ReadFailed, e.to_string()))?;
            (report.on_block)(index, digest)?;
        }
        (report.on_bytes)((signature.digest_count() * block).min(size));
        Ok(())
    })
    .await?;
    Ok(signature)
}

/// How [`records_in_order`] walks a blob: `size` bytes in slices of `slice`
/// (whole blocks of `block`), `depth` slices in flight, `record_len` bytes
/// of result per block.
#[derive(Clone, Copy, Debug)]
pub(crate) struct SliceLayout {
    pub(crate) size: u64,
    pub(crate) block: u64,
    pub(crate) slice: u64,
    pub(crate) depth: u64,
    pub(crate) record_len: usize,
}

/// Asks `fetch(start, end)` for the records of each slice, keeping
/// `layout.depth` requests in flight, and hands each slice's records to
/// `take` in file order, after checking there is one record per block.
pub(crate) async fn records_in_order<F, Fut>(
    layout: SliceLayout,
    signal: Option<&AbortSignal>,
    fetch: &mut F,
    mut take: impl FnMut(&[u8]) -> Result<(), WebError>,
) -> Result<(), WebError>
where
    F: FnMut(u64, u64) -> Fut,
    Fut: Future<Output = Result<Vec<u8>, WebError>>,
{
    let SliceLayout { size, block, slice, depth, record_len } = layout;
    let mut pending = FuturesOrdered::new();
    let mut next = 0;
    loop {
        while (pending.len() as u64) < depth && next < size {
            let end = size.min(next + slice);
            let blocks = (end - next).div_ceil(block) as usize;
            let records = fetch(next, end);
            pending.push_back(async move { (blocks, records.await) });
            next = end;
        }
        let Some((blocks, records)) = pending.next().await else { return Ok(()) };
        check_abort(signal)?;
        let records = records?;
        if records.len() != blocks * record_len {
            return Err(WebError::new(
                ErrorCode::ReadFailed,
                format!("a slice of {blocks} blocks gave {} bytes of hashes", records.len()),
            ));
        }
        take(&records)?;
    }
}

/// Reads bytes `start..end` of `blob` and digests each `block`-sized piece
/// of it with WebCrypto on this thread: the digests, concatenated.
fn digest_slice(
    blob: &Blob,
    subtle: &SubtleCrypto,
    name: &'static str,
    start: u64,
    end: u64,
    block: u64,
) -> impl Future<Output = Result<Vec<u8>, WebError>> + use<> {
    // The read starts now, before the future is first polled.
    let read = read_range(blob, start, end);
    let subtle = subtle.clone();
    let failed = |e: JsValue| WebError::from_js(ErrorCode::ReadFailed, "WebCrypto digest", &e);
    async move {
        let buffer: ArrayBuffer = JsFuture::from(read?)
            .await
            .map_err(|e| WebError::from_js(ErrorCode::ReadFailed, "reading the file", &e))?
            .unchecked_into();
        // Start every block's digest before awaiting the first.
        let mut digests = Vec::new();
        let mut offset = 0;
        while offset < end - start {
            let len = block.min(end - start - offset);
            let view = Uint8Array::new_with_byte_offset_and_length(&buffer, offset as u32, len as u32);
            digests
                .push(JsFuture::from(subtle.digest_with_str_and_buffer_source(name, &view).map_err(failed)?));
            offset += len;
        }
        let mut out = Vec::new();
        for digest in digests {
            out.extend(Uint8Array::new(&digest.await.map_err(failed)?).to_vec());
        }
        Ok(out)
    }
}

/// Hashes a `File` or `Blob` into its binary signature, reading it in slices.
///
/// Options: `hash` ("sha1"), `blockSize` (1 MiB), `strategy` ("auto",
/// "webcrypto" or "wasm"), `workers` (default: 4 for blobs of 8 MiB and
/// more; 0 hashes on the calling thread), `sliceSize`,
/// `readsInFlight`, `onProgress(done, total)` in bytes, `signal`.
#[wasm_bindgen(js_name = hashBlob, unchecked_return_type = "Uint8Array")]
pub async fn hash_blob(
    blob: Blob,
    #[wasm_bindgen(unchecked_optional_param_type = "HashBlobOptions")] options: Option<Object>,
) -> Result<JsValue, JsValue> {
    let options = Options::new(options);
    let config = HashConfig::from_options(&options)?;
    let progress = Progress::new(options.function("onProgress")?);
    let signal = options.signal()?;
    check_abort(signal.as_ref())?;
    let total = blob_size(&blob);
    progress.report(None, 0, total, true);
    let report = Report {
        signal: signal.as_ref(),
        on_block: &mut |_, _| Ok(()),
        on_bytes: &mut |done| progress.report(None, done, total, false),
    };
    let (signature, _) = hash(&blob, &config, report).await?;
    Ok(Uint8Array::from(signature.encode().as_slice()).into())
}

/// The strategy `hashBlob` would use here for `options` ("webcrypto" or "wasm").
#[wasm_bindgen(js_name = hashStrategy, unchecked_return_type = "\"webcrypto\" | \"wasm\"")]
pub fn hash_strategy(
    #[wasm_bindgen(unchecked_optional_param_type = "HashBlobOptions")] options: Option<Object>,
) -> Result<JsValue, JsValue> {
    let config = HashConfig::from_options(&Options::new(options))?;
    Ok(config.resolve()?.name().into())
}

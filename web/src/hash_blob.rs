//! Hashing a `File` or `Blob` into its signature without reading it whole.
//!
//! Two strategies give the same signature:
//!
//! * `webcrypto`: slices of several whole blocks are read (a few in flight),
//!   and each block is handed, as a view, to `crypto.subtle.digest`, which
//!   hashes natively off the main thread. Only for SHA-1 and SHA-256, and only
//!   in secure contexts (https, localhost, 127.0.0.1). Reads of a few MiB
//!   matter: Chromium reads a `File` in 1 MiB slices at less than half the
//!   rate of 8 MiB slices.
//! * `wasm`: slices are read in order and fed to the core's
//!   `SignatureBuilder` compiled to WebAssembly. Any algorithm, any context.
//!
//! `auto` (the default) picks `webcrypto` where it can and `wasm` otherwise.

use diffcopy_core::{HashAlgorithm, Signature, SignatureBuilder, SignatureHeader};
use futures_util::StreamExt;
use futures_util::stream::FuturesOrdered;
use js_sys::{ArrayBuffer, Object, Reflect, Uint8Array};
use wasm_bindgen::prelude::wasm_bindgen;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{AbortSignal, Blob, SubtleCrypto};

use crate::error::{ErrorCode, WebError};
use crate::options::{Options, check_abort};
use crate::progress::Progress;
use crate::read::{SliceReader, blob_size, read_range};

/// Blocks smaller than this are hashed in wasm even where WebCrypto exists:
/// one `digest()` call per small block costs more than it saves.
const WEBCRYPTO_MIN_BLOCK: u32 = 64 * 1024;
/// Bytes kept in flight by the WebCrypto strategy (read, not yet hashed).
const WEBCRYPTO_BYTES_IN_FLIGHT: u64 = 32 << 20;
/// Default bytes per read: measured best in headless Chromium (web/bench).
const WASM_SLICE: u32 = 4 << 20;
const WEBCRYPTO_SLICE: u32 = 8 << 20;

/// How to hash.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Strategy {
    /// WebCrypto where possible, else wasm.
    Auto,
    /// `crypto.subtle.digest` per block.
    WebCrypto,
    /// The core compiled to wasm, on this thread.
    Wasm,
}

/// Everything `hash` needs besides the blob and callbacks.
#[derive(Clone, Debug)]
pub(crate) struct HashConfig {
    pub(crate) algorithm: HashAlgorithm,
    pub(crate) block_size: u32,
    pub(crate) strategy: Strategy,
    /// Bytes per read (rounded down to whole blocks, at least one, for webcrypto).
    pub(crate) slice_size: Option<u32>,
    /// Reads in flight (wasm) or blocks in flight (webcrypto); 0 = automatic.
    pub(crate) in_flight: u32,
}

impl HashConfig {
    /// Reads `hash`, `blockSize`, `strategy`, `sliceSize` and `readsInFlight`.
    pub(crate) fn from_options(options: &Options) -> Result<Self, WebError> {
        let strategy = match options.string("strategy")?.as_deref() {
            None | Some("auto") => Strategy::Auto,
            Some("webcrypto") => Strategy::WebCrypto,
            Some("wasm") => Strategy::Wasm,
            Some(other) => {
                return Err(WebError::new(
                    ErrorCode::InvalidOption,
                    format!("option `strategy` must be \"auto\", \"webcrypto\" or \"wasm\", not {other:?}"),
                ));
            }
        };
        Ok(Self {
            algorithm: options.hash()?,
            block_size: options.block_size()?,
            strategy,
            slice_size: options.integer("sliceSize", 1, 1 << 30)?,
            in_flight: options.integer("readsInFlight", 1, 64)?.unwrap_or(0),
        })
    }

    /// The strategy that will run here: `auto` resolved, `webcrypto` checked.
    pub(crate) fn resolve(&self) -> Result<Strategy, WebError> {
        let webcrypto_algorithm = webcrypto_name(self.algorithm).is_some();
        match self.strategy {
            Strategy::Wasm => Ok(Strategy::Wasm),
            Strategy::WebCrypto if !webcrypto_algorithm => Err(WebError::new(
                ErrorCode::InvalidOption,
                format!("WebCrypto cannot hash {}; use strategy \"wasm\"", self.algorithm),
            )),
            Strategy::WebCrypto if subtle().is_none() => Err(WebError::new(
                ErrorCode::WebCryptoUnavailable,
                "WebCrypto exists only in secure contexts (https, localhost); use strategy \"wasm\"",
            )),
            Strategy::WebCrypto => Ok(Strategy::WebCrypto),
            Strategy::Auto => {
                Ok(if webcrypto_algorithm && self.block_size >= WEBCRYPTO_MIN_BLOCK && subtle().is_some() {
                    Strategy::WebCrypto
                } else {
                    Strategy::Wasm
                })
            }
        }
    }
}

/// The WebCrypto name of `algorithm`, if WebCrypto has it.
fn webcrypto_name(algorithm: HashAlgorithm) -> Option<&'static str> {
    match algorithm {
        HashAlgorithm::Sha1 => Some("SHA-1"),
        HashAlgorithm::Sha256 => Some("SHA-256"),
        HashAlgorithm::Blake3 => None,
    }
}

/// `crypto.subtle` of this global (window or worker), in a secure context only.
fn subtle() -> Option<SubtleCrypto> {
    let global = js_sys::global();
    let secure = Reflect::get(&global, &"isSecureContext".into()).ok()?.as_bool()?;
    if !secure {
        return None;
    }
    let crypto = Reflect::get(&global, &"crypto".into()).ok()?;
    let subtle = Reflect::get(&crypto, &"subtle".into()).ok()?;
    subtle.dyn_into::<SubtleCrypto>().ok()
}

/// Called with each block's index and digest, in order, as soon as it is known.
pub(crate) type OnBlock<'a> = &'a mut dyn FnMut(u64, &[u8]) -> Result<(), WebError>;

/// Hashes all of `blob`. `on_block(index, digest)` is called for every block
/// in order as soon as its digest is known; `on_bytes(done)` as bytes are hashed.
pub(crate) async fn hash(
    blob: &Blob,
    config: &HashConfig,
    signal: Option<&AbortSignal>,
    on_block: OnBlock<'_>,
    on_bytes: &mut dyn FnMut(u64),
) -> Result<Signature, WebError> {
    let signature = match config.resolve()? {
        Strategy::WebCrypto => hash_webcrypto(blob, config, signal, on_block, on_bytes).await?,
        Strategy::Wasm | Strategy::Auto => hash_wasm(blob, config, signal, on_block, on_bytes).await?,
    };
    // An abort during the last progress callback still counts.
    check_abort(signal)?;
    Ok(signature)
}

async fn hash_wasm(
    blob: &Blob,
    config: &HashConfig,
    signal: Option<&AbortSignal>,
    on_block: OnBlock<'_>,
    on_bytes: &mut dyn FnMut(u64),
) -> Result<Signature, WebError> {
    let mut builder = SignatureBuilder::new(config.algorithm, config.block_size)
        .map_err(|e| WebError::new(ErrorCode::InvalidOption, e.to_string()))?;
    builder.reserve_for(blob_size(blob));
    let depth = if config.in_flight == 0 { 4 } else { config.in_flight };
    let mut reader = SliceReader::new(blob, config.slice_size.unwrap_or(WASM_SLICE), depth);
    let mut buffer = Vec::new();
    while let Some((_, slice)) = reader.next().await? {
        check_abort(signal)?;
        let bytes = Uint8Array::new(&slice);
        buffer.resize(bytes.length() as usize, 0);
        bytes.copy_to(&mut buffer);
        let before = builder.completed_blocks();
        builder.update(&buffer);
        for index in before..builder.completed_blocks() {
            on_block(index, builder.block_digest(index).unwrap_or_default())?;
        }
        on_bytes(builder.bytes_hashed());
    }
    let complete = builder.completed_blocks();
    let signature = builder.finish();
    if let Some(last) = signature.block_digest(complete) {
        on_block(complete, last)?;
    }
    Ok(signature)
}

async fn hash_webcrypto(
    blob: &Blob,
    config: &HashConfig,
    signal: Option<&AbortSignal>,
    on_block: OnBlock<'_>,
    on_bytes: &mut dyn FnMut(u64),
) -> Result<Signature, WebError> {
    let (Some(subtle), Some(name)) = (subtle(), webcrypto_name(config.algorithm)) else {
        return Err(WebError::new(ErrorCode::WebCryptoUnavailable, "WebCrypto is not available here"));
    };
    let size = blob_size(blob);
    let header = SignatureHeader::new(config.algorithm, config.block_size, size)
        .map_err(|e| WebError::new(ErrorCode::InvalidOption, e.to_string()))?;
    let mut signature = Signature::new(header);
    // Reads of a few MiB cost far less per byte than reads of one block, so a
    // slice spans whole blocks, and each block is digested from a view of it.
    let block = u64::from(config.block_size);
    let slice = (u64::from(config.slice_size.unwrap_or(WEBCRYPTO_SLICE)) / block).max(1) * block;
    let depth = match config.in_flight {
        0 => (WEBCRYPTO_BYTES_IN_FLIGHT / slice).clamp(2, 8),
        n => u64::from(n),
    };
    let mut pending = FuturesOrdered::new();
    let mut next = 0;
    let mut done = 0;
    loop {
        while (pending.len() as u64) < depth && next < size {
            let end = size.min(next + slice);
            pending.push_back(digest_slice(blob, &subtle, name, next, end, block));
            next = end;
        }
        let Some(result) = pending.next().await else { break };
        check_abort(signal)?;
        for (len, digest) in result? {
            let index = signature.digest_count();
            signature
                .push_digest(&digest)
                .map_err(|e| WebError::new(ErrorCode::BadResponse, e.to_string()))?;
            on_block(index, &digest)?;
            done += len;
        }
        on_bytes(done);
    }
    Ok(signature)
}

/// Reads bytes `start..end` of `blob` and digests each `block`-sized piece
/// of it with WebCrypto: (length, digest) per block, in order.
fn digest_slice(
    blob: &Blob,
    subtle: &SubtleCrypto,
    name: &'static str,
    start: u64,
    end: u64,
    block: u64,
) -> impl Future<Output = Result<Vec<(u64, Vec<u8>)>, WebError>> + use<> {
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
            digests.push((
                len,
                JsFuture::from(subtle.digest_with_str_and_buffer_source(name, &view).map_err(failed)?),
            ));
            offset += len;
        }
        let mut out = Vec::with_capacity(digests.len());
        for (len, digest) in digests {
            out.push((len, Uint8Array::new(&digest.await.map_err(failed)?).to_vec()));
        }
        Ok(out)
    }
}

/// Hashes a `File` or `Blob` into its binary signature, reading it in slices.
///
/// Options: `hash` ("sha1"), `blockSize` (1 MiB), `strategy` ("auto",
/// "webcrypto" or "wasm"), `sliceSize` (4 MiB for wasm; 8 MiB, whole blocks,
/// for webcrypto),
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
    let signature = hash(&blob, &config, signal.as_ref(), &mut |_, _| Ok(()), &mut |done| {
        progress.report(None, done, total, false)
    })
    .await?;
    Ok(Uint8Array::from(signature.encode().as_slice()).into())
}

/// The strategy `hashBlob` would use here for `options` ("webcrypto" or "wasm").
#[wasm_bindgen(js_name = hashStrategy, unchecked_return_type = "\"webcrypto\" | \"wasm\"")]
pub fn hash_strategy(
    #[wasm_bindgen(unchecked_optional_param_type = "HashBlobOptions")] options: Option<Object>,
) -> Result<JsValue, JsValue> {
    let config = HashConfig::from_options(&Options::new(options))?;
    Ok(match config.resolve()? {
        Strategy::WebCrypto => "webcrypto",
        Strategy::Wasm | Strategy::Auto => "wasm",
    }
    .into())
}

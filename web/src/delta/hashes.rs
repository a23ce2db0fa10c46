//! Protocol v2's hashing in the browser: every block's weak sum and seeded
//! XXH3-128 (in Web Workers that read their own slices of the file, like API
//! v1's digests), and the piece hashes of the ranges a need refines. The
//! core does the hashing, so the page sends the bytes the CLI sends.

use std::ops::Range;

use diffcopy_core::delta::{
    BlockHash, BlockHasher, BlockHashes, BlockHashesBuilder, DeltaParams, Need, PieceHashes, ReadAt,
};
use js_sys::{Object, Uint8Array};
use wasm_bindgen::JsValue;
use wasm_bindgen::prelude::wasm_bindgen;
use web_sys::{AbortSignal, Blob};

use crate::engine::HashConfig;
use crate::error::{ErrorCode, WebError};
use crate::hash_blob::{SliceLayout, WASM_SLICE, records_in_order, whole_blocks, worker_slice};
use crate::hash_workers::Workers;
use crate::options::{Options, check_abort};
use crate::progress::Progress;
use crate::read::{RangeReader, SliceReader, blob_size};

/// One block's hashes as a worker hands them over: the weak sum (u32) and
/// the XXH3-128 (u128), little-endian.
const RECORD: usize = 4 + 16;

/// Bytes of the file read at once to hash the pieces a need refines.
const PIECE_READ: u64 = 4 << 20;
/// Reads in flight while hashing pieces.
const PIECE_READS: u32 = 3;

/// Protocol v2's hashes of one block with the session's `seed`: the weak
/// sum of its anchor and its XXH3-128, as 20 little-endian bytes.
#[wasm_bindgen(js_name = deltaBlockHash)]
pub fn delta_block_hash(seed: u64, block: &[u8]) -> Vec<u8> {
    encode_record(BlockHash::of(seed, block))
}

/// Protocol v2's hashes of one block fed in pieces as they are read: what
/// the hashing workers use (`finish` gives what [`delta_block_hash`] gives
/// for the whole block, and starts the next block).
#[wasm_bindgen(js_name = DeltaBlockHasher)]
pub struct DeltaBlockHasher(BlockHasher);

#[wasm_bindgen(js_class = DeltaBlockHasher)]
impl DeltaBlockHasher {
    /// A hasher with the session's `seed`.
    #[wasm_bindgen(constructor)]
    pub fn new(seed: u64) -> DeltaBlockHasher {
        Self(BlockHasher::new(seed))
    }

    /// Feeds the block's next bytes.
    pub fn update(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }

    /// The block's 20 bytes, as `deltaBlockHash` gives them; then starts over.
    pub fn finish(&mut self) -> Vec<u8> {
        let record = encode_record(self.0.finish());
        self.0.reset();
        record
    }
}

fn encode_record(hash: BlockHash) -> Vec<u8> {
    let mut out = Vec::with_capacity(RECORD);
    out.extend_from_slice(&hash.weak.to_le_bytes());
    out.extend_from_slice(&hash.hash.to_le_bytes());
    out
}

fn parse_record(record: &[u8]) -> BlockHash {
    let mut weak = [0u8; 4];
    let mut hash = [0u8; 16];
    weak.copy_from_slice(&record[..4]);
    hash.copy_from_slice(&record[4..RECORD]);
    BlockHash { weak: u32::from_le_bytes(weak), hash: u128::from_le_bytes(hash) }
}

/// The block hashes of all of `blob` under `params`, and how many workers
/// computed them (0: the calling thread). `on_bytes` hears the bytes hashed.
pub(crate) async fn block_hashes(
    blob: &Blob,
    params: DeltaParams,
    config: &HashConfig,
    signal: Option<&AbortSignal>,
    on_bytes: &mut dyn FnMut(u64),
) -> Result<(BlockHashes, u32), WebError> {
    let mut builder = BlockHashesBuilder::new(params);
    let workers = hash_blocks(blob, params, config, signal, on_bytes, &mut |hash| builder.push(hash)).await?;
    let hashes = builder
        .finish()
        .map_err(|_| WebError::new(ErrorCode::ReadFailed, "the file changed size while it was hashed"))?;
    Ok((hashes, workers))
}

/// Hashes every block of `blob` under `params`, handing each block's hashes
/// to `on_hash` in order; how many workers computed them (0: the calling
/// thread). `on_bytes` hears the bytes hashed.
pub(crate) async fn hash_blocks(
    blob: &Blob,
    params: DeltaParams,
    config: &HashConfig,
    signal: Option<&AbortSignal>,
    on_bytes: &mut dyn FnMut(u64),
    on_hash: &mut dyn FnMut(BlockHash),
) -> Result<u32, WebError> {
    let size = blob_size(blob);
    let block_size = params.levels.block_size();
    let block = u64::from(block_size);
    let mut hashed = 0u64;
    let count = Workers::count_for(config, size);
    let workers = match count {
        0 => None,
        _ => match Workers::start_delta(blob, count, params.seed, block_size, RECORD).await {
            Ok(workers) => Some(workers),
            Err(error) if config.workers.is_some() => return Err(error),
            Err(_) => None,
        },
    };
    check_abort(signal)?;
    match &workers {
        Some(workers) => {
            let slice = worker_slice(config.slice_size, size, u64::from(workers.count()), block);
            let depth =
                if config.in_flight == 0 { u64::from(workers.count()) } else { u64::from(config.in_flight) };
            let layout = SliceLayout { size, block, slice, depth, record_len: RECORD };
            records_in_order(layout, signal, &mut |start, end| workers.digest(start, end), |records| {
                for record in records.chunks(RECORD) {
                    on_hash(parse_record(record));
                    hashed += 1;
                }
                on_bytes((hashed * block).min(size));
                Ok(())
            })
            .await?;
        }
        None => {
            let slice = whole_blocks(config.slice_size.unwrap_or(WASM_SLICE), block) as u32;
            let depth = if config.in_flight == 0 { 4 } else { config.in_flight };
            let mut reader = SliceReader::new(blob, slice, depth);
            let mut buffer = Vec::new();
            while let Some((_, slice)) = reader.next().await? {
                check_abort(signal)?;
                let bytes = Uint8Array::new(&slice);
                buffer.resize(bytes.length() as usize, 0);
                bytes.copy_to(&mut buffer);
                for piece in buffer.chunks(block_size as usize) {
                    on_hash(BlockHash::of(params.seed, piece));
                    hashed += 1;
                }
                on_bytes((hashed * block).min(size));
            }
        }
    }
    if hashed != params.block_count() {
        return Err(WebError::new(ErrorCode::ReadFailed, "the file changed size while it was hashed"));
    }
    Ok(workers.as_ref().map_or(0, Workers::count))
}

/// Bytes of the file at their own offsets: one chunk read for hashing pieces.
struct Chunk<'a> {
    start: u64,
    bytes: &'a [u8],
    file_len: u64,
}

impl ReadAt for Chunk<'_> {
    type Error = WebError;

    fn len(&self) -> u64 {
        self.file_len
    }

    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> Result<(), WebError> {
        let from = offset.checked_sub(self.start).map(|o| o as usize);
        match from.and_then(|o| self.bytes.get(o..o + buf.len())) {
            Some(bytes) => {
                buf.copy_from_slice(bytes);
                Ok(())
            }
            None => Err(WebError::new(ErrorCode::ReadFailed, "a piece outside the bytes read")),
        }
    }
}

/// The piece hashes of the ranges `need` refines, read from `blob` a few
/// MiB at a time.
pub(crate) async fn piece_hashes(
    blob: &Blob,
    params: &DeltaParams,
    need: &Need,
    signal: Option<&AbortSignal>,
) -> Result<PieceHashes, WebError> {
    let size = u64::from(params.levels.size(usize::from(need.level)).unwrap_or(u32::MAX)).max(1);
    // Whole pieces per read, counted from each range's start as the core cuts them.
    let chunk = (PIECE_READ / size).max(1) * size;
    let chunks: Vec<Range<u64>> = need
        .refine
        .iter()
        .flat_map(|r| (r.start..r.end).step_by(chunk as usize).map(move |s| s..(s + chunk).min(r.end)))
        .collect();
    let mut out = PieceHashes { level: need.level, weak: Vec::new(), hashes: Vec::new() };
    let mut reader = RangeReader::new(blob, chunks, PIECE_READS);
    while let Some((range, bytes)) = reader.next().await? {
        check_abort(signal)?;
        let mut file = Chunk { start: range.start, bytes: &bytes, file_len: params.file_size };
        let part = PieceHashes::compute(params, need.level, core::slice::from_ref(&range), &mut file)?;
        out.weak.extend(part.weak);
        out.hashes.extend(part.hashes);
    }
    Ok(out)
}

/// Protocol v2's block hashes of a `File` or `Blob` (the `DCB2` message a
/// v2 upload sends first), computed as `uploadFile` computes them.
///
/// Options: `seed` (16 hex digits, as a session's `seed`; default 0),
/// `blockSize` (1 MiB), `workers`, `sliceSize`, `readsInFlight`,
/// `onProgress(done, total)`, `signal`, as for `hashBlob`.
#[wasm_bindgen(js_name = deltaHashBlob, unchecked_return_type = "Uint8Array")]
pub async fn delta_hash_blob(
    blob: Blob,
    #[wasm_bindgen(unchecked_optional_param_type = "DeltaHashOptions")] options: Option<Object>,
) -> Result<JsValue, JsValue> {
    let options = Options::new(options);
    let config = HashConfig::from_options(&options)?;
    let seed = match options.string("seed")? {
        Some(hex) => u64::from_str_radix(&hex, 16)
            .map_err(|_| WebError::new(ErrorCode::InvalidOption, "option `seed` must be 16 hex digits"))?,
        None => 0,
    };
    let params = super::params(blob_size(&blob), config.block_size, seed)?;
    let progress = Progress::new(options.function("onProgress")?);
    let signal = options.signal()?;
    let total = blob_size(&blob);
    progress.report(None, 0, total, true);
    let mut on_bytes = |done| progress.report(None, done, total, false);
    let (hashes, _) = block_hashes(&blob, params, &config, signal.as_ref(), &mut on_bytes).await?;
    Ok(Uint8Array::from(hashes.encode().as_slice()).into())
}

//! The download's search, which runs in a Web Worker: the core's
//! [`Matcher`] reads the user's old file at random offsets, and only a
//! worker can read a `Blob` synchronously (`FileReaderSync`). The page's
//! thread drives it through [`SearchWorker`]; the worker holds one
//! [`DeltaSearch`] (exported for it, as `DeltaBlockHasher` is for the
//! hashing workers).

use diffcopy_core::delta::{BlockHashes, MatchError, Matcher, Need, PieceHashes, ReadAt};
use js_sys::{Reflect, Uint8Array};
use wasm_bindgen::prelude::wasm_bindgen;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::Blob;

use crate::error::{ErrorCode, WebError};
use crate::hash_workers::Workers;
use crate::read::{blob_size, slice};

/// Bytes of the old file read at once. Every `FileReaderSync` read copies
/// from the browser's process at about 350 MB/s (Chromium 156, two cores);
/// the search reads pieces near each other (a round's candidates around each
/// parent, then again a level finer), so it reads aligned 64 KiB units, a
/// missed read with what follows it, and keeps them for the next rounds.
/// Measured on 1 GiB with 103 edited blocks: the first round of finer
/// hashes reads 139 MB in 0.46 s, the later rounds take 5 ms from the cache
/// (1 MiB units with 16 kept: 450 ms and 400 ms a round on 256 MiB; large
/// reads read ahead too: 795 MB and 1.5 s a round on 1 GiB).
const UNIT: u64 = 64 << 10;
/// How far past a missed small read (within one unit) the file is read, in units.
const READ_AHEAD: u64 = 16;
/// Units kept: 64 MiB.
const UNITS_KEPT: usize = 1024;

/// The old file, read synchronously (in a worker only), through a cache of
/// aligned units.
struct SyncBlob {
    blob: Blob,
    len: u64,
    reader: JsValue,
    /// Units kept: (index, last use, bytes), unordered (a scan of a
    /// thousand is nothing beside a read, and a map costs the package 2-4 KiB).
    units: Vec<(u64, u64, Vec<u8>)>,
    uses: u64,
}

impl SyncBlob {
    /// Bytes `start..end` of the file, read now.
    fn read(&self, start: u64, end: u64) -> Result<Uint8Array, WebError> {
        let part = slice(&self.blob, start, end)?;
        let read = Reflect::get(&self.reader, &"readAsArrayBuffer".into())
            .ok()
            .and_then(|f| f.dyn_into::<js_sys::Function>().ok())
            .ok_or_else(|| WebError::new(ErrorCode::ReadFailed, "FileReaderSync is missing"))?;
        let bytes = read
            .call1(&self.reader, &part)
            .map_err(|e| WebError::from_js(ErrorCode::ReadFailed, "reading the local file", &e))?;
        let bytes = Uint8Array::new(&bytes);
        if u64::from(bytes.length()) != end - start {
            return Err(WebError::new(ErrorCode::ReadFailed, "the local file changed while it was read"));
        }
        Ok(bytes)
    }

    /// Where unit `index` is kept.
    fn slot(&self, index: u64) -> Option<usize> {
        self.units.iter().position(|(i, _, _)| *i == index)
    }

    /// Units `first..=last`, read now where not kept (runs of missing
    /// units in one read each).
    fn fetch(&mut self, first: u64, last: u64) -> Result<(), WebError> {
        let mut index = first;
        while index <= last {
            if self.slot(index).is_some() {
                index += 1;
                continue;
            }
            // A small read's missing run is read together with what follows
            // it, up to 16 times the read's length (the siblings the search
            // checks next), stopping at a unit already kept or the file's
            // end. A larger read (a rolling window's span) reads only itself.
            let ahead = if last == first { last + READ_AHEAD } else { last };
            let mut end = index;
            while end < ahead && (end + 1) * UNIT < self.len && self.slot(end + 1).is_none() {
                end += 1;
            }
            let bytes = self.read(index * UNIT, ((end + 1) * UNIT).min(self.len))?.to_vec();
            while self.units.len() + (end - index + 1) as usize > UNITS_KEPT {
                let oldest = (0..self.units.len()).min_by_key(|&k| self.units[k].1);
                oldest.map(|k| self.units.swap_remove(k));
            }
            for (k, unit) in bytes.chunks(UNIT as usize).enumerate() {
                self.units.push((index + k as u64, self.uses, unit.to_vec()));
            }
            index = end + 1;
        }
        Ok(())
    }
}

impl ReadAt for SyncBlob {
    type Error = WebError;

    fn len(&self) -> u64 {
        self.len
    }

    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> Result<(), WebError> {
        let end = offset + buf.len() as u64;
        if buf.len() as u64 > (UNITS_KEPT as u64 / 4) * UNIT {
            // A long read (a rolling pass's chunk) would only flush the cache.
            self.read(offset, end)?.copy_to(buf);
            return Ok(());
        }
        if buf.is_empty() {
            return Ok(());
        }
        let (first, last) = (offset / UNIT, (end - 1) / UNIT);
        self.fetch(first, last)?;
        self.uses += 1;
        for index in first..=last {
            let slot = self
                .slot(index)
                .ok_or_else(|| WebError::new(ErrorCode::ReadFailed, "a read past the local file's end"))?;
            let uses = self.uses;
            let (_, used, unit) = &mut self.units[slot];
            *used = uses;
            let unit_start = index * UNIT;
            let (from, to) = (offset.max(unit_start), end.min(unit_start + unit.len() as u64));
            let at = (from - offset) as usize;
            buf[at..at + (to - from) as usize]
                .copy_from_slice(&unit[(from - unit_start) as usize..(to - unit_start) as usize]);
        }
        Ok(())
    }
}

fn matched<T>(result: Result<T, MatchError<WebError>>) -> Result<T, JsValue> {
    result.map_err(|e| match e {
        MatchError::Read(e) => e.into(),
        MatchError::Delta(e) => WebError::new(ErrorCode::BadResponse, e.to_string()).into(),
    })
}

/// The search of one download, in a worker: the old file against the
/// server's block hashes. Internal to `downloadFile`'s worker.
#[wasm_bindgen(js_name = DeltaSearch)]
pub struct DeltaSearch {
    hashes: BlockHashes,
    matcher: Matcher,
    old: SyncBlob,
}

#[wasm_bindgen(js_class = DeltaSearch)]
impl DeltaSearch {
    /// A search of `old` for the new version whose block hashes (the
    /// server's signature) are `hashes`.
    #[wasm_bindgen(constructor)]
    pub fn new(hashes: &[u8], old: Blob) -> Result<DeltaSearch, JsValue> {
        let hashes = BlockHashes::decode(hashes)
            .map_err(|e| WebError::new(ErrorCode::BadResponse, format!("bad block hashes: {e}")))?;
        let global = js_sys::global();
        let constructor = Reflect::get(&global, &"FileReaderSync".into())
            .ok()
            .and_then(|f| f.dyn_into::<js_sys::Function>().ok())
            .ok_or_else(|| WebError::new(ErrorCode::WorkersUnavailable, "no FileReaderSync here"))?;
        let reader = Reflect::construct(&constructor, &js_sys::Array::new())?;
        let len = blob_size(&old);
        let matcher = Matcher::new(*hashes.params(), len);
        Ok(Self { hashes, matcher, old: SyncBlob { blob: old, len, reader, units: Vec::new(), uses: 0 } })
    }

    /// Level 0: `aligned` holds the old file's aligned block hashes (16
    /// bytes each, little-endian), or nothing. The need, encoded.
    pub fn blocks(&mut self, aligned: &[u8]) -> Result<Vec<u8>, JsValue> {
        let aligned: Vec<u128> =
            aligned.chunks_exact(16).map(|c| u128::from_le_bytes(c.try_into().unwrap_or_default())).collect();
        let aligned = (!aligned.is_empty()).then_some(aligned.as_slice());
        Ok(matched(self.matcher.blocks(&self.hashes, &mut self.old, aligned))?.encode())
    }

    /// A finer level: the server's piece hashes (`DCP2`). The need, encoded.
    pub fn pieces(&mut self, hashes: &[u8]) -> Result<Vec<u8>, JsValue> {
        let hashes = PieceHashes::decode(hashes)
            .map_err(|e| WebError::new(ErrorCode::BadResponse, format!("bad piece hashes: {e}")))?;
        Ok(matched(self.matcher.pieces(&hashes, &mut self.old))?.encode())
    }

    /// The plan, encoded, once the search is over.
    pub fn plan(&self) -> Result<Vec<u8>, JsValue> {
        let plan = self
            .matcher
            .plan()
            .ok_or_else(|| WebError::new(ErrorCode::BadResponse, "the search is not over"))?;
        Ok(plan.encode())
    }
}

/// A worker running one [`DeltaSearch`]; dropping it stops the worker.
pub(super) struct SearchWorker {
    worker: Workers,
    file_size: u64,
}

impl SearchWorker {
    /// Starts a worker searching `old` for the version of `hashes`.
    pub(super) async fn start(old: &Blob, hashes: &BlockHashes) -> Result<Self, WebError> {
        let worker = Workers::start_search(old, &hashes.encode()).await?;
        Ok(Self { worker, file_size: hashes.params().file_size })
    }

    async fn call(&self, op: &str, bytes: &[u8]) -> Result<Vec<u8>, WebError> {
        let answer = JsFuture::from(self.worker.request(op, &Uint8Array::from(bytes)))
            .await
            .map_err(|e| WebError::from_js(ErrorCode::ReadFailed, "searching the local file", &e))?;
        Ok(Uint8Array::new(&answer).to_vec())
    }

    fn need(&self, bytes: &[u8]) -> Result<Need, WebError> {
        Need::decode(bytes, self.file_size)
            .map_err(|e| WebError::new(ErrorCode::BadResponse, format!("the search's need: {e}")))
    }

    /// Level 0, with the old file's aligned block hashes.
    pub(super) async fn blocks(&self, aligned: &[u128]) -> Result<Need, WebError> {
        let bytes: Vec<u8> = aligned.iter().flat_map(|h| h.to_le_bytes()).collect();
        self.need(&self.call("blocks", &bytes).await?)
    }

    /// A finer level, with the server's piece hashes.
    pub(super) async fn pieces(&self, hashes: &[u8]) -> Result<Need, WebError> {
        self.need(&self.call("pieces", hashes).await?)
    }

    /// The plan, encoded.
    pub(super) async fn plan(&self) -> Result<Vec<u8>, WebError> {
        self.call("plan", &[]).await
    }
}

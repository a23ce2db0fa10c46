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

/// The old file, read synchronously (in a worker only).
struct SyncBlob {
    blob: Blob,
    len: u64,
    reader: JsValue,
}

impl ReadAt for SyncBlob {
    type Error = WebError;

    fn len(&self) -> u64 {
        self.len
    }

    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> Result<(), WebError> {
        let part = slice(&self.blob, offset, offset + buf.len() as u64)?;
        let read = Reflect::get(&self.reader, &"readAsArrayBuffer".into())
            .ok()
            .and_then(|f| f.dyn_into::<js_sys::Function>().ok())
            .ok_or_else(|| WebError::new(ErrorCode::ReadFailed, "FileReaderSync is missing"))?;
        let bytes = read
            .call1(&self.reader, &part)
            .map_err(|e| WebError::from_js(ErrorCode::ReadFailed, "reading the local file", &e))?;
        let bytes = Uint8Array::new(&bytes);
        if bytes.length() as usize != buf.len() {
            return Err(WebError::new(ErrorCode::ReadFailed, "the local file changed while it was read"));
        }
        bytes.copy_to(buf);
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
        Ok(Self { hashes, matcher, old: SyncBlob { blob: old, len, reader } })
    }

    /// Level 0: `aligned` holds the old file's aligned block hashes (16
    /// bytes each, little-endian), or nothing. The need, encoded.
    pub fn blocks(&mut self, aligned: &[u8]) -> Result<Vec<u8>, JsValue> {
        let aligned: Vec<u128> = aligned
            .chunks_exact(16)
            .map(|c| u128::from_le_bytes(c.try_into().unwrap_or_default()))
            .collect();
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

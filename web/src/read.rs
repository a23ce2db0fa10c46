//! Reading a `Blob` in slices, several reads in flight, delivered in order.
//!
//! Never the whole file at once: Chrome fails `arrayBuffer()` on a `File`
//! above about 4 GB, and memory stays `slice size x reads in flight`.

use std::collections::VecDeque;
use std::ops::Range;

use js_sys::{ArrayBuffer, Uint8Array};
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;
use web_sys::Blob;

use crate::error::{ErrorCode, WebError};

/// Reads `blob` front to back in slices of `slice` bytes, keeping up to
/// `depth` reads in flight.
pub(crate) struct SliceReader {
    blob: Blob,
    size: u64,
    slice: u64,
    depth: usize,
    next: u64,
    queue: VecDeque<(u64, JsFuture)>,
}

impl SliceReader {
    /// A reader over all of `blob`.
    pub(crate) fn new(blob: &Blob, slice: u32, depth: u32) -> Self {
        Self {
            blob: blob.clone(),
            size: blob_size(blob),
            slice: u64::from(slice.max(1)),
            depth: depth.max(1) as usize,
            next: 0,
            queue: VecDeque::new(),
        }
    }

    fn fill(&mut self) -> Result<(), WebError> {
        while self.queue.len() < self.depth && self.next < self.size {
            let end = self.size.min(self.next + self.slice);
            let promise = read_range(&self.blob, self.next, end)?;
            self.queue.push_back((self.next, JsFuture::from(promise)));
            self.next = end;
        }
        Ok(())
    }

    /// The next slice and its offset, or `None` at the end.
    pub(crate) async fn next(&mut self) -> Result<Option<(u64, ArrayBuffer)>, WebError> {
        self.fill()?;
        let Some((start, read)) = self.queue.pop_front() else { return Ok(None) };
        let buffer =
            read.await.map_err(|e| WebError::from_js(ErrorCode::ReadFailed, "reading the file", &e))?;
        // Start the next read before the caller works on this slice.
        self.fill()?;
        Ok(Some((start, buffer.unchecked_into())))
    }
}

/// Reads given ranges of a `Blob` in order, keeping up to `depth` reads in
/// flight; each as bytes.
pub(crate) struct RangeReader {
    blob: Blob,
    ranges: VecDeque<Range<u64>>,
    depth: usize,
    queue: VecDeque<(Range<u64>, JsFuture)>,
}

impl RangeReader {
    /// A reader of `ranges` of `blob`.
    pub(crate) fn new(blob: &Blob, ranges: Vec<Range<u64>>, depth: u32) -> Self {
        Self {
            blob: blob.clone(),
            ranges: ranges.into(),
            depth: depth.max(1) as usize,
            queue: VecDeque::new(),
        }
    }

    fn fill(&mut self) -> Result<(), WebError> {
        while self.queue.len() < self.depth {
            let Some(range) = self.ranges.pop_front() else { break };
            let promise = read_range(&self.blob, range.start, range.end)?;
            self.queue.push_back((range, JsFuture::from(promise)));
        }
        Ok(())
    }

    /// The next range and its bytes, or `None` after the last.
    pub(crate) async fn next(&mut self) -> Result<Option<(Range<u64>, Vec<u8>)>, WebError> {
        self.fill()?;
        let Some((range, read)) = self.queue.pop_front() else { return Ok(None) };
        let buffer =
            read.await.map_err(|e| WebError::from_js(ErrorCode::ReadFailed, "reading the file", &e))?;
        self.fill()?;
        let bytes = Uint8Array::new(&buffer).to_vec();
        if bytes.len() as u64 != range.end - range.start {
            return Err(WebError::new(ErrorCode::ReadFailed, "the file is shorter than when it was hashed"));
        }
        Ok(Some((range, bytes)))
    }
}

/// The size of `blob` in bytes.
pub(crate) fn blob_size(blob: &Blob) -> u64 {
    blob.size() as u64
}

/// Bytes `start..end` of `blob`, as a `Blob` (no read happens yet).
pub(crate) fn slice(blob: &Blob, start: u64, end: u64) -> Result<Blob, WebError> {
    blob.slice_with_f64_and_f64(start as f64, end as f64)
        .map_err(|e| WebError::from_js(ErrorCode::ReadFailed, "slicing the file", &e))
}

/// Starts reading bytes `start..end` of `blob`: a promise of an `ArrayBuffer`.
pub(crate) fn read_range(blob: &Blob, start: u64, end: u64) -> Result<js_sys::Promise, WebError> {
    Ok(slice(blob, start, end)?.array_buffer())
}

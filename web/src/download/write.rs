//! Writing the new version into the user's file, and checking it before it
//! counts.
//!
//! The file is opened with `createWritable({ keepExistingData: true })`:
//! the browser writes into a copy of it and swaps the copy in only when the
//! stream is closed, so [`Writable::abort`] leaves the user's file as it
//! was. Only what is not already in place is written: data the search
//! found at another offset, and the literal data the server sends.
//!
//! The writable cannot be read back, so each block is checked as it is
//! written: a block the search found whole at its own offset has the
//! aligned hash the old file's hashing gave; every other block is put
//! together here (its bytes in place, moved and received) and hashed. The
//! blocks' hashes make the file hash, which must be the server's before the
//! stream is closed.

use std::collections::VecDeque;
use std::ops::Range;

use diffcopy_core::delta::{Codec, DeltaParams, FileHasher, Plan, Source, block_hash, parse_frames};
use futures_util::{Stream, StreamExt};
use js_sys::{Array, Function, Object, Reflect, Uint8Array};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::Blob;

use crate::diff::set;
use crate::error::{ErrorCode, WebError};
use crate::read::read_range;

/// Calls `object.name(...args)`: the promise it returns, as a future.
fn start(object: &JsValue, name: &str, args: &[JsValue], what: &str) -> Result<JsFuture, WebError> {
    let method =
        Reflect::get(object, &name.into()).ok().and_then(|f| f.dyn_into::<Function>().ok()).ok_or_else(
            || WebError::new(ErrorCode::Unsupported, format!("{what}: this browser has no `{name}`")),
        )?;
    let args: Array = args.iter().collect();
    let promise =
        method.apply(object, &args).map_err(|e| WebError::from_js(ErrorCode::ReadFailed, what, &e))?;
    Ok(JsFuture::from(js_sys::Promise::resolve(&promise)))
}

/// Calls `object.name(...args)` and awaits the promise it returns.
pub(super) async fn call(
    object: &JsValue,
    name: &str,
    args: &[JsValue],
    what: &str,
) -> Result<JsValue, WebError> {
    start(object, name, args, what)?.await.map_err(|e| WebError::from_js(ErrorCode::WriteFailed, what, &e))
}

/// A writable being opened: `createWritable({ keepExistingData: true })`
/// has been called. Chromium copies the file into the writable's swap file
/// meanwhile (about 4 s per GiB here), so it is started before the search
/// and awaited after it.
pub(super) struct Opening(JsFuture);

impl Opening {
    /// Starts opening `handle`'s file for writing.
    pub(super) fn start(handle: &JsValue) -> Result<Self, WebError> {
        let options = Object::new();
        set(&options, "keepExistingData", true.into());
        Ok(Self(start(handle, "createWritable", &[options.into()], "opening the local file for writing")?))
    }

    /// The writable, once open.
    pub(super) async fn ready(self) -> Result<Writable, WebError> {
        let what = "opening the local file for writing";
        Ok(Writable(self.0.await.map_err(|e| WebError::from_js(ErrorCode::WriteFailed, what, &e))?))
    }
}

/// The user's file open for writing into a copy of itself.
pub(super) struct Writable(JsValue);

impl Writable {
    /// Writes `bytes` at `position`.
    async fn write(&self, position: u64, bytes: &[u8]) -> Result<(), WebError> {
        let params = Object::new();
        set(&params, "type", "write".into());
        set(&params, "position", (position as f64).into());
        set(&params, "data", Uint8Array::from(bytes).into());
        call(&self.0, "write", &[params.into()], "writing the local file").await.map(drop)
    }

    /// Cuts or extends the file to `size` bytes.
    pub(super) async fn truncate(&self, size: u64) -> Result<(), WebError> {
        call(&self.0, "truncate", &[(size as f64).into()], "resizing the local file").await.map(drop)
    }

    /// Closes the stream: the browser swaps the new version in.
    pub(super) async fn close(self) -> Result<(), WebError> {
        call(&self.0, "close", &[], "saving the local file").await.map(drop)
    }

    /// Drops what was written; the user's file stays as it was.
    pub(super) async fn abort(self) {
        let _ = call(&self.0, "abort", &[], "abandoning the write").await;
    }
}

/// The literal data as it arrives: the server's answers in order, each a
/// batch of ranges, consumed front to back.
pub(super) struct Feed<S> {
    answers: S,
    file_size: u64,
    /// Received bytes not yet used: offset, bytes, how many are used.
    have: VecDeque<(u64, Vec<u8>, usize)>,
}

impl<S: Stream<Item = Result<Vec<u8>, WebError>> + Unpin> Feed<S> {
    /// A feed over `answers`, the bodies of the data requests in order.
    pub(super) fn new(answers: S, file_size: u64) -> Self {
        Self { answers, file_size, have: VecDeque::new() }
    }

    /// Fills `out` with the literal bytes at `at..at + out.len()`.
    async fn take(&mut self, mut at: u64, mut out: &mut [u8]) -> Result<(), WebError> {
        while !out.is_empty() {
            let Some((offset, bytes, used)) = self.have.front_mut() else {
                let body = self.answers.next().await.ok_or_else(|| short("ended early"))??;
                self.push(&body)?;
                continue;
            };
            if *offset + *used as u64 != at {
                return Err(short("skipped a range"));
            }
            let n = out.len().min(bytes.len() - *used);
            out[..n].copy_from_slice(&bytes[*used..*used + n]);
            *used += n;
            if *used == bytes.len() {
                self.have.pop_front();
            }
            (at, out) = (at + n as u64, &mut out[n..]);
        }
        Ok(())
    }

    /// One answer's frames, decoded.
    fn push(&mut self, body: &[u8]) -> Result<(), WebError> {
        let frames = parse_frames(body, self.file_size)
            .map_err(|e| WebError::new(ErrorCode::BadResponse, format!("bad literal data: {e}")))?;
        for frame in frames {
            let bytes = match frame.codec {
                Codec::Raw => frame.stored.to_vec(),
                Codec::Lz4 => lz4_flex::block::decompress(frame.stored, frame.len as usize)
                    .ok()
                    .filter(|b| b.len() == frame.len as usize)
                    .ok_or_else(|| WebError::new(ErrorCode::BadResponse, "an LZ4 frame does not decode"))?,
                Codec::Zstd => {
                    return Err(WebError::new(ErrorCode::BadResponse, "a zstd frame, not asked for"));
                }
            };
            self.have.push_back((frame.offset, bytes, 0));
        }
        Ok(())
    }
}

fn short(what: &str) -> WebError {
    WebError::new(ErrorCode::BadResponse, format!("the server's literal data {what}"))
}

/// One piece of a new block and where its bytes come from.
struct Piece {
    new: Range<u64>,
    /// The old offset, or `None` for literal data.
    old: Option<u64>,
}

impl Piece {
    fn in_place(&self) -> bool {
        self.old == Some(self.new.start)
    }

    /// Where it is in the buffer of the block that starts at `block_start`.
    fn within(&self, block_start: u64) -> Range<usize> {
        (self.new.start - block_start) as usize..(self.new.end - block_start) as usize
    }
}

/// What writing the new version did.
#[derive(Debug, Default)]
pub(super) struct Written {
    /// Bytes moved from another offset of the old file.
    pub(super) moved: u64,
    /// Bytes not written yet, to be written at `pending_at`.
    pending: Vec<u8>,
    pending_at: u64,
}

/// The most bytes written at once.
const WRITE_MAX: usize = 8 << 20;

/// Writes every block of the new version that is not already in place,
/// hashing each; fails with `file_hash_mismatch` unless the blocks make
/// the server's `file_hash`. `on_block` hears each block's end.
#[allow(clippy::too_many_arguments)]
pub(super) async fn rebuild<S: Stream<Item = Result<Vec<u8>, WebError>> + Unpin>(
    writable: &Writable,
    plan: &Plan,
    params: &DeltaParams,
    file_hash: u128,
    old: &Blob,
    aligned: &[u128],
    feed: &mut Feed<S>,
    on_block: &mut dyn FnMut(u64) -> Result<(), WebError>,
) -> Result<Written, WebError> {
    let (size, block) = (params.file_size, u64::from(params.levels.block_size()));
    let old_len = old.size() as u64;
    let mut hasher = FileHasher::new(params.seed, size, params.levels.block_size());
    let mut written = Written::default();
    let segments = plan.segments();
    let mut next = 0;
    let mut buf = Vec::new();
    for index in 0..params.block_count() {
        let range = index * block..(index * block + block).min(size);
        // The segments that overlap this block, cut to it.
        while segments.get(next).is_some_and(|s| s.new.end <= range.start) {
            next += 1;
        }
        let pieces: Vec<Piece> = segments[next..]
            .iter()
            .take_while(|s| s.new.start < range.end)
            .map(|s| {
                let new = s.new.start.max(range.start)..s.new.end.min(range.end);
                let old = match s.source {
                    Source::Old(at) => Some(at + (new.start - s.new.start)),
                    Source::Literal => None,
                };
                Piece { new, old }
            })
            .collect();
        let whole_in_place = matches!(pieces.as_slice(), [only] if only.in_place() && only.new == range);
        if whole_in_place && let Some(&hash) = aligned.get(index as usize).filter(|_| range.end <= old_len) {
            // The old block's length is the new block's: its aligned hash is this block's.
            if range.end - range.start == block.min(old_len - range.start) {
                hasher.push(hash);
                on_block(range.end)?;
                continue;
            }
        }
        buf.resize((range.end - range.start) as usize, 0);
        for piece in &pieces {
            let out = &mut buf[piece.within(range.start)];
            match piece.old {
                Some(from) => read_old(old, from, out).await?,
                None => feed.take(piece.new.start, out).await?,
            }
        }
        hasher.push(block_hash(params.seed, &buf));
        // What is not in place; touching pieces are written together.
        for piece in pieces.iter().filter(|p| !p.in_place()) {
            if piece.old.is_some() {
                written.moved += piece.new.end - piece.new.start;
            }
            written.add(writable, &buf[piece.within(range.start)], piece.new.start).await?;
        }
        on_block(range.end)?;
    }
    written.flush(writable).await?;
    if hasher.finish() != file_hash {
        return Err(WebError::new(
            ErrorCode::FileHashMismatch,
            "the rebuilt file does not have the server's file hash (the local file changed while it was read?)",
        ));
    }
    Ok(written)
}

impl Written {
    /// Writes `bytes` at `at`, joined with the writes before while they
    /// touch, up to [`WRITE_MAX`]: each write is a round trip to the
    /// browser's process, and 1 MiB writes made a whole download 1.6x
    /// slower than one piped fetch.
    async fn add(&mut self, writable: &Writable, bytes: &[u8], at: u64) -> Result<(), WebError> {
        let joins = self.pending_at + self.pending.len() as u64 == at;
        if !joins || self.pending.len() + bytes.len() > WRITE_MAX {
            self.flush(writable).await?;
            self.pending_at = at;
        }
        self.pending.extend_from_slice(bytes);
        Ok(())
    }

    /// Writes what is pending.
    async fn flush(&mut self, writable: &Writable) -> Result<(), WebError> {
        if !self.pending.is_empty() {
            writable.write(self.pending_at, &self.pending).await?;
            self.pending.clear();
        }
        Ok(())
    }
}

/// Fills `out` with the old file's bytes at `from`.
async fn read_old(old: &Blob, from: u64, out: &mut [u8]) -> Result<(), WebError> {
    let end = from + out.len() as u64;
    let buffer = JsFuture::from(read_range(old, from, end)?)
        .await
        .map_err(|e| WebError::from_js(ErrorCode::ReadFailed, "reading the local file", &e))?;
    let bytes = Uint8Array::new(&buffer);
    if bytes.length() as usize != out.len() {
        return Err(WebError::new(ErrorCode::ReadFailed, "the local file changed while it was read"));
    }
    bytes.copy_to(out);
    Ok(())
}

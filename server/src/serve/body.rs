//! Streaming part of an open file as a response body.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::sync::Arc;

use axum::body::Body;
use bytes::Bytes;

use crate::serve::locks::{ReadHold, holding};

/// Bytes per read while streaming a file.
const CHUNK: u64 = 256 << 10;

/// A body with `len` bytes of `file` from `start`, read on blocking threads
/// in chunks as the client takes them. A file that ends early ends the body
/// with an error (the client sees a truncated response, never wrong bytes).
/// `hold` is kept until the body ends: no commit writes the file in place
/// meanwhile.
pub(crate) fn file_range(file: File, start: u64, len: u64, hold: ReadHold) -> Body {
    let file = Arc::new(file);
    let stream = futures_util::stream::unfold((file, start, start + len), |(file, pos, end)| async move {
        if pos >= end {
            return None;
        }
        let n = CHUNK.min(end - pos) as usize;
        let reader = file.clone();
        let read = tokio::task::spawn_blocking(move || {
            let mut buf = vec![0u8; n];
            reader.read_exact_at(&mut buf, pos).map(|()| Bytes::from(buf))
        })
        .await
        .unwrap_or_else(|e| Err(io::Error::other(e)));
        let next = if read.is_ok() { pos + n as u64 } else { end };
        Some((read, (file, next, end)))
    });
    Body::from_stream(holding(stream, hold))
}

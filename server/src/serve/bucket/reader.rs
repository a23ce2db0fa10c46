//! Reading a version from the bucket as the core's search and hashing
//! read a file: [`ObjectReader`] implements `ReadAt` (blocking, for the
//! blocking threads the search runs on) over ranged GETs of 1 MiB chunks,
//! the last eight kept; [`hash_blocks`] reads a whole object in parallel
//! stretches and hashes its blocks.

use std::ops::Range;

use bytes::Bytes;
use diffcopy_core::delta::ReadAt;
use futures_util::{Stream, StreamExt as _};
use tokio::runtime::Handle;

use crate::s3::{Bucket, S3Error};

/// The bytes fetched per GET: the search reads small pieces here and
/// there as well as whole stretches.
const CHUNK: u64 = 1 << 20;
/// The chunks kept.
const CHUNKS: usize = 8;

/// `range` of object `key`, checked to be that long.
pub(crate) async fn read_range(bucket: &Bucket, key: &str, range: Range<u64>) -> Result<Bytes, S3Error> {
    if range.is_empty() {
        return Ok(Bytes::new());
    }
    let want = range.end - range.start;
    let bytes =
        bucket.get(key, Some(range)).await?.ok_or_else(|| S3Error::Protocol(format!("{key} is gone")))?;
    if bytes.len() as u64 != want {
        return Err(S3Error::Protocol(format!("{key}: {} bytes read of {want}", bytes.len())));
    }
    Ok(bytes)
}

/// Object `key`'s blocks of `block_size` (`len` bytes in all) hashed with
/// `hash`, in order, a batch per stretch of about 4 MiB: four stretches
/// are read at a time, each hashed on a blocking thread.
pub(crate) fn hash_blocks<T: Send + 'static>(
    bucket: Bucket,
    key: String,
    len: u64,
    block_size: u32,
    hash: impl Fn(&[u8]) -> T + Clone + Send + 'static,
) -> impl Stream<Item = Result<Vec<T>, S3Error>> + Send {
    let block = u64::from(block_size);
    let span = ((4 << 20) / block).max(1) * block;
    futures_util::stream::iter((0..len).step_by(span as usize))
        .map(move |start| {
            let (bucket, key, hash) = (bucket.clone(), key.clone(), hash.clone());
            async move {
                let bytes = read_range(&bucket, &key, start..(start + span).min(len)).await?;
                tokio::task::spawn_blocking(move || bytes.chunks(block_size as usize).map(hash).collect())
                    .await
                    .map_err(|e| S3Error::Protocol(format!("hashing: {e}")))
            }
        })
        .buffered(4)
}

/// One object read by offset, from a blocking thread.
#[derive(Debug)]
pub(crate) struct ObjectReader {
    bucket: Bucket,
    key: String,
    len: u64,
    runtime: Handle,
    /// Chunks by index, the most recent last.
    chunks: Vec<(u64, Bytes)>,
}

impl ObjectReader {
    /// A reader of `key`, `len` bytes long (call inside the runtime).
    pub(crate) fn new(bucket: Bucket, key: String, len: u64) -> Self {
        Self { bucket, key, len, runtime: Handle::current(), chunks: Vec::with_capacity(CHUNKS) }
    }

    fn chunk(&mut self, index: u64) -> Result<&Bytes, S3Error> {
        if let Some(at) = self.chunks.iter().position(|(i, _)| *i == index) {
            let hit = self.chunks.remove(at);
            self.chunks.push(hit);
        } else {
            let start = index * CHUNK;
            let range = start..(start + CHUNK).min(self.len);
            let bytes = self.runtime.block_on(read_range(&self.bucket, &self.key, range))?;
            if self.chunks.len() == CHUNKS {
                self.chunks.remove(0);
            }
            self.chunks.push((index, bytes));
        }
        Ok(&self.chunks.last().expect("a chunk was just pushed").1)
    }
}

/// How many of `want` bytes a chunk of `len` bytes holds from `from` on:
/// none when `from` lies at or past its end (a read past the object's end).
fn within(len: usize, from: usize, want: usize) -> usize {
    len.saturating_sub(from).min(want)
}

impl ReadAt for ObjectReader {
    type Error = std::io::Error;

    fn len(&self) -> u64 {
        self.len
    }

    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> Result<(), Self::Error> {
        let mut done = 0usize;
        while done < buf.len() {
            let at = offset + done as u64;
            let chunk = self.chunk(at / CHUNK).map_err(std::io::Error::other)?;
            let n = within(chunk.len(), (at % CHUNK) as usize, buf.len() - done);
            let from = (at % CHUNK) as usize;
            if n == 0 {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    "read past the object's end",
                ));
            }
            buf[done..done + n].copy_from_slice(&chunk[from..from + n]);
            done += n;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::within;

    #[test]
    fn a_read_past_a_chunks_end_takes_nothing() {
        assert_eq!(within(10, 0, 4), 4);
        assert_eq!(within(10, 8, 4), 2);
        assert_eq!(within(10, 10, 4), 0);
        // In the middle of the last chunk, past the object's end: no
        // underflow (the caller answers UnexpectedEof).
        assert_eq!(within(10, 12, 4), 0);
        assert_eq!(within(0, 1 << 19, 1), 0);
    }
}

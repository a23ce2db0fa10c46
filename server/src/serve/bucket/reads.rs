//! What a bucket gives the read side (`serve/reads/`): a version is the
//! object a path's pointer names when the request reads it (versions are
//! immutable, so every read of it sees the same bytes), read by ranged
//! GETs; its digests are hashed from parallel ranged reads, and protocol
//! v2's block hashes are the ones stored beside it at commit when their
//! block size is the one asked for.

use std::io;
use std::ops::Range;
use std::sync::Arc;

use axum::body::{Body, Bytes};
use diffcopy_core::delta::{BlockHash, BlockHashes, BlockHashesBuilder, DeltaParams, Levels, ReadAt};
use diffcopy_core::{SignatureHeader, hash_block};
use futures_util::StreamExt as _;

use super::BucketState;
use super::head::Head;
use super::reader::{ObjectReader, hash_blocks, read_range};
use super::session::{store_error, store_read_error};
use crate::fs::RelPath;
use crate::s3::Bucket;
use crate::serve::error::{AppError, AppResult, ErrorKind};
use crate::serve::reads::{Digests, Entry, Page, Reads, Version};
use crate::serve::stats::Stats;

/// A version of a file: its object, as the pointer named it.
#[derive(Debug)]
pub(crate) struct Object {
    bucket: Bucket,
    key: String,
    head: Head,
}

impl Version for Object {
    fn size(&self) -> u64 {
        self.head.size
    }

    fn etag(&self) -> String {
        self.head.etag()
    }

    async fn body(self: Arc<Self>, start: u64, len: u64) -> AppResult<Body> {
        let spec = format!("bytes={start}-{}", start + len - 1);
        let response = self
            .bucket
            .get_response(&self.key, Some(&spec))
            .await
            .map_err(|e| store_error("reading a version", e))?
            .ok_or_else(|| {
                AppError::new(ErrorKind::StoreFailed, format!("the version {} is gone", self.key))
            })?;
        let chunks = futures_util::stream::unfold(Some(response), move |response| {
            let bucket = self.bucket.clone();
            async move {
                let mut response = response?;
                match response.chunk().await {
                    Ok(Some(bytes)) => {
                        bucket.count_downloaded(bytes.len() as u64);
                        Some((Ok(bytes), Some(response)))
                    }
                    Ok(None) => None,
                    Err(e) => Some((Err(io::Error::other(e)), None)),
                }
            }
        });
        Ok(Body::from_stream(chunks))
    }

    async fn read(self: Arc<Self>, range: Range<u64>) -> AppResult<Bytes> {
        read_range(&self.bucket, &self.key, range).await.map_err(|e| store_error("reading a version", e))
    }

    fn reader(self: Arc<Self>) -> impl ReadAt<Error = io::Error> + Send + 'static {
        ObjectReader::new(self.bucket.clone(), self.key.clone(), self.head.size)
    }

    fn read_failed(&self, what: &str, e: io::Error) -> AppError {
        store_read_error(what, e)
    }
}

impl Reads for BucketState {
    type Version = Object;

    async fn current(self: &Arc<Self>, path: &RelPath) -> AppResult<Option<Arc<Object>>> {
        let store = &self.store;
        let current = store.current(path.as_str()).await.map_err(|e| store_error("reading a pointer", e))?;
        Ok(current.map(|c| {
            let key = store.keys.version(&c.head.version);
            Arc::new(Object { bucket: store.bucket.clone(), key, head: c.head })
        }))
    }

    async fn digests(
        &self,
        version: Arc<Object>,
        header: SignatureHeader,
        _threads: Option<usize>,
    ) -> AppResult<Digests> {
        let algorithm = header.algorithm();
        let (bucket, key) = (version.bucket.clone(), version.key.clone());
        let digests = hash_blocks(bucket, key, header.file_size(), header.block_size(), move |b| {
            hash_block(algorithm, b)
        })
        .map(|digests| {
            let digests = digests.map_err(io::Error::other)?;
            Ok(Bytes::from(digests.iter().flat_map(|d| d.as_bytes().iter().copied()).collect::<Vec<u8>>()))
        });
        Ok(Box::pin(digests))
    }

    async fn block_hashes(&self, version: Arc<Object>, block_size: u32) -> AppResult<Bytes> {
        let store = &self.store;
        let stored = store
            .bucket
            .get(&store.keys.hashes(&version.head.version), None)
            .await
            .map_err(|e| store_error("reading block hashes", e))?;
        let size = version.head.size;
        if let Some(bytes) = stored
            && BlockHashes::decode(&bytes)
                .is_ok_and(|h| h.params().levels.block_size() == block_size && h.params().file_size == size)
        {
            return Ok(bytes);
        }
        let levels = Levels::for_block(block_size)
            .map_err(|e| AppError::new(ErrorKind::BadBlockSize, e.to_string()))?;
        let params = DeltaParams { file_size: size, seed: crate::random::random_seed()?, levels };
        let seed = params.seed;
        let mut stretches =
            hash_blocks(version.bucket.clone(), version.key.clone(), size, block_size, move |b| {
                BlockHash::of(seed, b)
            });
        let mut builder = BlockHashesBuilder::new(params);
        while let Some(stretch) = stretches.next().await {
            for hash in stretch.map_err(|e| store_error("reading a version", e))? {
                builder.push(hash);
            }
        }
        let hashes = builder.finish().map_err(|e| AppError::internal("hashing a version", e))?;
        Ok(Bytes::from(hashes.encode()))
    }

    async fn list(self: &Arc<Self>, prefix: String, after: Option<String>, limit: usize) -> AppResult<Page> {
        let store = &self.store;
        let heads = &store.keys.head("");
        let after = after.map(|a| store.keys.head(&a));
        let (listed, more) = store
            .bucket
            .list_page(&store.keys.head(&prefix), after.as_deref(), limit)
            .await
            .map_err(|e| store_error("listing pointers", e))?;
        let next = if more { listed.last().and_then(|l| l.key.strip_prefix(heads.as_str())).map(str::to_owned) } else { None };
        // A listing holds keys only: each pointer is read for its version,
        // POINTER_READS at once, in order. One gone since is left out.
        let entries = futures_util::stream::iter(listed)
            .map(|listed| async move {
                let Some(path) = listed.key.strip_prefix(heads.as_str()) else { return Ok(None) };
                let current = store.current(path).await.map_err(|e| store_error("reading a pointer", e))?;
                Ok(current.map(|c| Entry {
                    path: path.to_owned(),
                    size: c.head.size,
                    mtime: c.head.mtime.unwrap_or(i64::try_from(listed.modified).unwrap_or(0) * 1000),
                    etag: c.head.etag(),
                }))
            })
            .buffered(POINTER_READS)
            .collect::<Vec<AppResult<Option<Entry>>>>()
            .await;
        let entries = entries.into_iter().filter_map(Result::transpose).collect::<AppResult<Vec<Entry>>>()?;
        Ok(Page { entries, next })
    }

    fn counters(&self) -> &Arc<Stats> {
        &self.stats
    }
}

/// Pointers a listing reads at once.
const POINTER_READS: usize = 16;

//! What a bucket gives the read side (`serve/reads/`): a version is the
//! object a path's pointer names when the request reads it (versions are
//! immutable, so every read of it sees the same bytes), read by ranged
//! GETs; its digests are hashed from parallel ranged reads, and protocol
//! v2's block hashes are the ones stored beside it at commit when their
//! block size is the one asked for.

use std::collections::HashMap;
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
use crate::fs::listing::{listed_after, sort_for_popping, split_prefix};
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
        // Folder by folder, as a directory is walked (fs/listing.rs): a
        // bucket's own order need not be the bytes' (SeaweedFS lists a
        // folder's keys before a name that sorts below its `/`).
        let (folder, first) = split_prefix(&prefix);
        let after = after.as_deref();
        let mut top = self.folder(folder, after).await?;
        top.names.retain(|(name, _)| name.starts_with(first));
        let mut stack = vec![top];
        let mut found: Vec<(String, u64)> = Vec::new();
        let mut more = false;
        while let Some(level) = stack.last_mut() {
            let Some((name, is_dir)) = level.names.pop() else {
                stack.pop();
                continue;
            };
            let path = format!("{}{name}", level.folder);
            if is_dir {
                let next = self.folder(format!("{path}/"), after).await?;
                stack.push(next);
                continue;
            }
            if found.len() == limit {
                more = true;
                break;
            }
            let modified = level.modified.get(&name).copied().unwrap_or(0);
            found.push((path, modified));
        }
        let next = if more { found.last().map(|(path, _)| path.clone()) } else { None };
        // A listing holds keys only: each pointer is read for its version,
        // POINTER_READS at once, in order. One gone since is left out.
        let store = &self.store;
        let entries = futures_util::stream::iter(found)
            .map(|(path, modified)| async move {
                let current = store.current(&path).await.map_err(|e| store_error("reading a pointer", e))?;
                Ok(current.map(|c| Entry {
                    size: c.head.size,
                    mtime: c.head.mtime.unwrap_or(i64::try_from(modified).unwrap_or(0) * 1000),
                    etag: c.head.etag(),
                    path,
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

/// One folder of pointers on a listing's way: its path (empty or ending in
/// `/`), its names still to visit (the next last), and when each file's
/// pointer was written (unix seconds).
struct Folder {
    folder: String,
    names: Vec<(String, bool)>,
    modified: HashMap<String, u64>,
}

impl BucketState {
    /// The names of the pointers' folder `folder` that may hold paths after `after`.
    async fn folder(&self, folder: String, after: Option<&str>) -> AppResult<Folder> {
        let heads = self.store.keys.head(&folder);
        let (files, folders) =
            self.store.bucket.list_folder(&heads).await.map_err(|e| store_error("listing pointers", e))?;
        let mut names = Vec::with_capacity(files.len() + folders.len());
        let mut modified = HashMap::new();
        for file in files {
            if let Some(name) = file.key.strip_prefix(heads.as_str())
                && listed_after(&folder, name, false, after)
            {
                modified.insert(name.to_owned(), file.modified);
                names.push((name.to_owned(), false));
            }
        }
        for sub in folders {
            if let Some(name) = sub.strip_prefix(heads.as_str()).and_then(|n| n.strip_suffix('/'))
                && listed_after(&folder, name, true, after)
            {
                names.push((name.to_owned(), true));
            }
        }
        sort_for_popping(&mut names);
        Ok(Folder { folder, names, modified })
    }
}

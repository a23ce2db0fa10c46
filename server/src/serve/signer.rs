//! Producing file signatures (API v1's, streamed in block order while
//! hashed, and protocol v2's block hashes): from a cache, or hashed on all
//! cores, with a bound on the computations at once.

use std::fs::File;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use diffcopy_core::delta::{BlockHash, BlockHashesBuilder, DeltaParams, Levels};
use diffcopy_core::{Digest, HashAlgorithm, Signature, SignatureHeader, hash_block};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::fs::FileVersion;
use crate::fs::{HashReceiver, hash_file_blocks};
use crate::serve::error::{AppError, AppResult, ErrorKind};
use crate::serve::sigcache::{CacheKey, SignatureCache};
use crate::serve::stats::Stats;

/// How long a request waits for a free hashing slot before it hears 429.
const QUEUE_WAIT: Duration = Duration::from_secs(30);
/// The most digest bytes one streamed chunk carries.
const CHUNK_BYTES: usize = 64 << 10;

/// Computes and caches signatures, with a bound on concurrent hashing.
#[derive(Debug)]
pub(crate) struct Signer {
    cache: SignatureCache<CacheKey, Signature>,
    /// Protocol v2's encoded block hashes, per file version and block size.
    block_hashes: SignatureCache<(FileVersion, u32), Vec<u8>>,
    jobs: Arc<Semaphore>,
    threads: usize,
    stats: Arc<Stats>,
}

/// The digests of one file's signature, in block order.
#[derive(Debug)]
pub(crate) struct DigestStream {
    version: FileVersion,
    /// Digests delivered so far (all of them, for a cached signature).
    signature: Arc<Signature>,
    /// Bytes of `signature`'s digests already handed out.
    sent: usize,
    live: Option<Live>,
}

#[derive(Debug)]
struct Live {
    rx: HashReceiver<Digest>,
    file: Arc<File>,
    key: CacheKey,
    signer: Arc<Signer>,
    _permit: OwnedSemaphorePermit,
}

impl Signer {
    /// A signer running at most `jobs` computations at once, each on
    /// `threads` threads, caching up to `cache_bytes` of digests.
    pub(crate) fn new(jobs: usize, threads: usize, cache_bytes: usize, stats: Arc<Stats>) -> Self {
        Self {
            cache: SignatureCache::new(cache_bytes),
            block_hashes: SignatureCache::new(cache_bytes),
            jobs: Arc::new(Semaphore::new(jobs.max(1))),
            threads,
            stats,
        }
    }

    /// Waits for a hashing slot (429 `busy` after a while).
    async fn slot(&self) -> AppResult<OwnedSemaphorePermit> {
        tokio::time::timeout(QUEUE_WAIT, self.jobs.clone().acquire_owned())
            .await
            .map_err(|_| AppError::new(ErrorKind::Busy, "the server is busy hashing; try again shortly"))?
            .map_err(|e| AppError::internal("waiting for a hashing slot", e))
    }

    /// Protocol v2's block hashes of `file` in blocks of `block_size`, encoded:
    /// from the cache, or hashed on all cores with a seed picked now (after
    /// the content is fixed, so it cannot have been planted against it).
    pub(crate) async fn block_hashes(
        self: &Arc<Self>,
        file: File,
        block_size: u32,
    ) -> AppResult<(Arc<Vec<u8>>, FileVersion)> {
        let version = FileVersion::of(&file).map_err(|e| AppError::internal("reading file metadata", e))?;
        let key = (version, block_size);
        if let Some(hashes) = self.block_hashes.get(&key) {
            self.stats.signature_cache_hit();
            return Ok((hashes, version));
        }
        let levels = Levels::for_block(block_size)
            .map_err(|e| AppError::new(ErrorKind::BadBlockSize, e.to_string()))?;
        let header = SignatureHeader::new(HashAlgorithm::Sha1, block_size, version.size)
            .map_err(|e| AppError::new(ErrorKind::BadBlockSize, e.to_string()))?;
        crate::limits::check_block_count(&header)?;
        let _permit = self.slot().await?;
        self.stats.signature_computed();
        let seed = crate::random::random_seed()?;
        let params = DeltaParams { file_size: version.size, seed, levels };
        let file = Arc::new(file);
        let mut rx =
            hash_file_blocks(file.clone(), header.layout(), self.threads, move |b| BlockHash::of(seed, b));
        let mut builder = BlockHashesBuilder::new(params);
        while let Some(hash) = rx.recv().await {
            builder.push(hash.map_err(|e| AppError::internal("hashing a file", e))?);
        }
        if !FileVersion::of(&file).is_ok_and(|now| now.same_content(&version)) {
            return Err(AppError::new(ErrorKind::FileChanged, "the file changed while it was hashed"));
        }
        let encoded =
            Arc::new(builder.finish().map_err(|e| AppError::internal("hashing a file", e))?.encode());
        self.block_hashes.insert(key, encoded.clone());
        Ok((encoded, version))
    }

    /// Starts the signature of `file`. `threads` caps the hashing threads
    /// (pdiffcopy's `concurrency`); the server's own setting is the upper bound.
    pub(crate) async fn start(
        self: &Arc<Self>,
        file: File,
        algorithm: HashAlgorithm,
        block_size: u32,
        threads: Option<usize>,
    ) -> AppResult<DigestStream> {
        let version = FileVersion::of(&file).map_err(|e| AppError::internal("reading file metadata", e))?;
        let header = SignatureHeader::new(algorithm, block_size, version.size)
            .map_err(|e| AppError::new(ErrorKind::BadBlockSize, e.to_string()))?;
        crate::limits::check_block_count(&header)?;
        let key = CacheKey { version, algorithm, block_size };
        if let Some(signature) = self.cache.get(&key) {
            self.stats.signature_cache_hit();
            return Ok(DigestStream { version, signature, sent: 0, live: None });
        }
        let permit = self.slot().await?;
        self.stats.signature_computed();
        let file = Arc::new(file);
        let threads = threads.unwrap_or(self.threads).clamp(1, self.threads.max(1));
        let rx = hash_file_blocks(file.clone(), header.layout(), threads, move |b| hash_block(algorithm, b));
        let mut signature = Signature::new(header);
        signature.reserve_digests();
        Ok(DigestStream {
            version,
            signature: Arc::new(signature),
            sent: 0,
            live: Some(Live { rx, file, key, signer: self.clone(), _permit: permit }),
        })
    }
}

impl DigestStream {
    /// The file version being signed (its ETag).
    pub(crate) fn version(&self) -> FileVersion {
        self.version
    }

    /// The next digests in block order, back to back: at least one digest,
    /// more if they are ready. `None` at the end. An error means the file
    /// could not be read or changed while it was hashed.
    pub(super) async fn next_chunk(&mut self) -> Option<io::Result<Vec<u8>>> {
        if let Some(live) = &mut self.live {
            let first = live.rx.recv().await;
            let signature = Arc::make_mut(&mut self.signature);
            match first {
                Some(Ok(digest)) => {
                    if let Err(e) = push(signature, digest) {
                        return Some(Err(e));
                    }
                    while signature.digest_bytes().len() - self.sent < CHUNK_BYTES {
                        match live.rx.try_recv() {
                            Ok(Ok(digest)) => {
                                if let Err(e) = push(signature, digest) {
                                    return Some(Err(e));
                                }
                            }
                            Ok(Err(e)) => return Some(Err(e)),
                            Err(_) => break,
                        }
                    }
                }
                Some(Err(e)) => return Some(Err(e)),
                None => {}
            }
            // Finish (check and cache) as soon as the last digest is in: an
            // HTTP body with a known length is not polled past its end.
            if self.signature.is_complete()
                && let Err(e) = self.finish_live()
            {
                return Some(Err(e));
            }
        }
        let all = self.signature.digest_bytes();
        if self.sent == all.len() {
            return None;
        }
        let end = all.len().min(self.sent + CHUNK_BYTES);
        let chunk = all[self.sent..end].to_vec();
        self.sent = end;
        Some(Ok(chunk))
    }

    /// Checks the finished signature against the file and caches it.
    fn finish_live(&mut self) -> io::Result<()> {
        let Some(live) = self.live.take() else { return Ok(()) };
        if !self.signature.is_complete() {
            return Err(io::Error::other("hashing stopped before the last block"));
        }
        if !FileVersion::of(&live.file)?.same_content(&self.version) {
            return Err(io::Error::other("the file changed while it was hashed"));
        }
        live.signer.cache.insert(live.key, self.signature.clone());
        Ok(())
    }

    /// Waits for the whole signature.
    pub(crate) async fn collect(mut self) -> io::Result<Arc<Signature>> {
        while let Some(chunk) = self.next_chunk().await {
            chunk?;
        }
        Ok(self.signature)
    }
}

fn push(signature: &mut Signature, digest: Digest) -> io::Result<()> {
    signature.push_digest(digest.as_bytes()).map_err(io::Error::other)
}

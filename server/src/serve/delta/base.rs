//! The old version a protocol v2 upload is searched against: the target as
//! it was when the session opened, held open so the search reads one
//! consistent version, and its aligned block hashes, computed on all cores
//! while the client hashes.

use std::fs::File;
use std::sync::Arc;

use diffcopy_core::BlockLayout;
use diffcopy_core::delta::block_hash;
use tokio::sync::watch;

use crate::fs::{FileReader, FileVersion, hash_file_blocks};

/// The target's old version.
#[derive(Debug)]
pub(crate) struct BaseFile {
    pub(crate) file: File,
    pub(crate) version: FileVersion,
}

impl BaseFile {
    pub(crate) fn len(&self) -> u64 {
        self.version.size
    }
}

impl BaseFile {
    /// The base as the core's search reads it.
    pub(crate) fn reader(&self) -> FileReader<'_> {
        FileReader::with_len(&self.file, self.len())
    }
}

/// The base's block hashes under a session's seed, once computed; `None`
/// while they are (or when hashing failed: the search then reads the base).
pub(super) type Aligned = watch::Receiver<Option<Arc<Vec<u128>>>>;

/// Starts hashing `base`'s blocks of `block_size` with `seed` on `threads`
/// threads; the receiver holds the hashes once all are done.
pub(super) fn hash_aligned(
    base: &Arc<BaseFile>,
    block_size: u32,
    seed: u64,
    threads: usize,
) -> Option<Aligned> {
    let layout = BlockLayout::new(base.len(), block_size).ok()?;
    let file = Arc::new(base.file.try_clone().ok()?);
    let (tx, rx) = watch::channel(None);
    tokio::spawn(async move {
        let mut hashes = hash_file_blocks(file, layout, threads, move |b| block_hash(seed, b));
        let mut all = Vec::with_capacity(layout.block_count() as usize);
        while let Some(hash) = hashes.recv().await {
            match hash {
                Ok(hash) => all.push(hash),
                Err(e) => {
                    tracing::warn!("hashing the base failed: {e}");
                    return;
                }
            }
        }
        if all.len() as u64 == layout.block_count() {
            let _ = tx.send(Some(Arc::new(all)));
        }
    });
    Some(rx)
}

/// The aligned hashes, waiting for them if they are on their way; `None`
/// when they will not come.
pub(super) async fn aligned_hashes(aligned: Option<&Aligned>) -> Option<Arc<Vec<u128>>> {
    let mut rx = aligned?.clone();
    match rx.wait_for(Option::is_some).await {
        Ok(hashes) => hashes.clone(),
        Err(_) => None,
    }
}

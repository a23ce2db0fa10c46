//! Hashing a file's blocks on several threads: delivered in block order as
//! they are ready, or folded into a new version's file hash.

use std::collections::BTreeMap;
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use diffcopy_core::BlockLayout;
use diffcopy_core::delta::{FileHasher, block_hash};
use tokio::sync::mpsc;

/// Each block's hash, starting at block 0, as they are ready.
pub(crate) type HashReceiver<T> = mpsc::Receiver<io::Result<T>>;

/// Starts hashing every block of `file` (cut as `layout` says) with `hash`
/// on `threads` blocking threads. The receiver yields the hashes in block
/// order; dropping it stops the work after the blocks under way.
pub(crate) fn hash_file_blocks<T, H>(
    file: Arc<File>,
    layout: BlockLayout,
    threads: usize,
    hash: H,
) -> HashReceiver<T>
where
    T: Send + 'static,
    H: Fn(&[u8]) -> T + Send + Sync + 'static,
{
    let block_count = layout.block_count();
    let threads = threads.clamp(1, 64).min(usize::try_from(block_count).unwrap_or(usize::MAX).max(1));
    // Room for every thread to be a few blocks ahead; hashes are small.
    let (ordered_tx, ordered_rx) = mpsc::channel(256);
    let (done_tx, mut done_rx) = mpsc::unbounded_channel::<(u64, io::Result<T>)>();
    let next = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let hash = Arc::new(hash);

    for _ in 0..threads {
        let (file, next, stop, done_tx, hash) =
            (file.clone(), next.clone(), stop.clone(), done_tx.clone(), hash.clone());
        tokio::task::spawn_blocking(move || {
            let mut buf = vec![0u8; layout.block_size() as usize];
            while !stop.load(Ordering::Relaxed) {
                let index = next.fetch_add(1, Ordering::Relaxed);
                let Some(range) = layout.block_range(index) else { break };
                let block = &mut buf[..(range.end - range.start) as usize];
                let result = file.read_exact_at(block, range.start).map(|()| hash(block));
                if done_tx.send((index, result)).is_err() {
                    break;
                }
            }
        });
    }
    drop(done_tx);

    // Reorder: hashes leave in block order whatever order the threads finish.
    tokio::spawn(async move {
        let mut pending = BTreeMap::new();
        let mut expected = 0u64;
        while let Some((index, result)) = done_rx.recv().await {
            pending.insert(index, result);
            while let Some(result) = pending.remove(&expected) {
                let failed = result.is_err();
                if ordered_tx.send(result).await.is_err() || failed {
                    stop.store(true, Ordering::Relaxed);
                    return;
                }
                expected += 1;
            }
        }
    });
    ordered_rx
}
/// The file hash of the new version (`layout`'s blocks, read with `read`
/// and hashed with `seed` on up to four threads), taking block `i`'s hash
/// from `known[i]` where it is there.
pub(crate) fn rebuilt_file_hash(
    read: impl Fn(u64, &mut [u8]) -> io::Result<()> + Sync,
    layout: BlockLayout,
    seed: u64,
    known: &[Option<u128>],
) -> io::Result<u128> {
    let count = layout.block_count();
    let known = |i: u64| known.get(i as usize).copied().flatten();
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get()).min(4) as u64;
    let hashes: Vec<io::Result<Vec<u128>>> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|t| {
                let (known, read) = (&known, &read);
                scope.spawn(move || {
                    let mut buf = vec![0u8; layout.block_size() as usize];
                    let mut out = Vec::new();
                    for i in (t..count).step_by(threads as usize) {
                        if let Some(hash) = known(i) {
                            out.push(hash);
                            continue;
                        }
                        let range = layout.block_range(i).unwrap_or_default();
                        let block = &mut buf[..(range.end - range.start) as usize];
                        read(range.start, block)?;
                        out.push(block_hash(seed, block));
                    }
                    Ok(out)
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|w| w.join().unwrap_or_else(|_| Err(io::Error::other("hashing panicked"))))
            .collect()
    });
    let hashes = hashes.into_iter().collect::<Result<Vec<_>, _>>()?;
    let mut file_hash = FileHasher::new(seed, layout.file_size(), layout.block_size());
    for i in 0..count {
        let (thread, nth) = ((i % threads) as usize, (i / threads) as usize);
        file_hash.push(hashes[thread][nth]);
    }
    Ok(file_hash.finish())
}

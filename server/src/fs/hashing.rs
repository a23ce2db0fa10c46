//! Hashing a file's blocks on several threads, delivered in block order.

use std::collections::BTreeMap;
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use diffcopy_core::BlockLayout;
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

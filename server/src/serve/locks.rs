//! Per-path locks: commits to one path run one at a time, whichever
//! protocol they come from (`commit`), and a commit that writes the target
//! in place shuts out the server's own readers of that path (`exclusive`
//! against `shared`), so a journal applied in place is never seen half done.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::{OwnedMutexGuard, OwnedRwLockReadGuard, OwnedRwLockWriteGuard, RwLock};

use crate::fs::RelPath;

/// A reader's hold on a path: no commit writes it in place while it lives.
pub(super) type ReadHold = OwnedRwLockReadGuard<()>;

/// A commit's hold on a path: no reader reads it through the server while it lives.
pub(super) type WriteHold = OwnedRwLockWriteGuard<()>;

#[derive(Debug, Default)]
struct PathLock {
    commit: Arc<tokio::sync::Mutex<()>>,
    readers: Arc<RwLock<()>>,
}

/// The locks of every path in use.
#[derive(Debug, Default)]
pub(crate) struct PathLocks(Mutex<HashMap<String, PathLock>>);

impl PathLocks {
    fn with<T>(&self, path: &RelPath, f: impl FnOnce(&PathLock) -> T) -> T {
        let mut locks = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        locks.retain(|_, l| Arc::strong_count(&l.commit) > 1 || Arc::strong_count(&l.readers) > 1);
        f(locks.entry(path.as_str().to_owned()).or_default())
    }

    /// Waits for `path`'s commit lock.
    pub(crate) async fn commit(&self, path: &RelPath) -> OwnedMutexGuard<()> {
        self.with(path, |l| l.commit.clone()).lock_owned().await
    }

    /// Waits until no commit writes `path` in place; holds them off while kept.
    pub(crate) async fn shared(&self, path: &RelPath) -> ReadHold {
        self.with(path, |l| l.readers.clone()).read_owned().await
    }

    /// From a blocking thread of the runtime: waits up to `wait` until no
    /// reader reads `path` through the server (readers that come meanwhile
    /// queue behind); `None` if they did not finish in time.
    pub(super) fn exclusive_within(&self, path: &RelPath, wait: Duration) -> Option<WriteHold> {
        let lock = self.with(path, |l| l.readers.clone());
        let runtime = tokio::runtime::Handle::try_current().ok()?;
        runtime.block_on(tokio::time::timeout(wait, lock.write_owned())).ok()
    }
}

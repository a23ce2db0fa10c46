//! One lock per target path, so commits to one path run one at a time,
//! whichever protocol they come from.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::OwnedMutexGuard;

use crate::fs::RelPath;

/// The commit locks of every path being committed.
#[derive(Debug, Default)]
pub(crate) struct PathLocks(Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>);

impl PathLocks {
    /// Waits for `path`'s lock; released when the guard is dropped.
    pub(crate) async fn lock(&self, path: &RelPath) -> OwnedMutexGuard<()> {
        let lock = {
            let mut locks = self.0.lock().unwrap_or_else(PoisonError::into_inner);
            locks.retain(|_, l| Arc::strong_count(l) > 1);
            locks.entry(path.as_str().to_owned()).or_default().clone()
        };
        lock.lock_owned().await
    }
}

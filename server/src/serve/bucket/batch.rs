//! A batch of small files committed into the bucket (`serve/batch.rs`):
//! each file a new version object and a pointer swapped to it on the
//! pointer's own ETag, as a protocol v2 commit does, [`BATCH_WRITES`] files
//! at once. A version whose swap lost is removed again.

use std::sync::Arc;

use futures_util::StreamExt as _;

use super::head::Head;
use super::session::store_error;
use super::{BucketState, BucketStore};
use crate::s3::Condition;
use crate::serve::batch::{Batches, Incoming, Landed};
use crate::serve::commit::target_changed;
use crate::serve::error::{AppError, AppResult};
use crate::serve::hooks::Committed;

/// Files of a batch written to the store at once.
const BATCH_WRITES: usize = 16;

impl Batches for BucketState {
    async fn commit_batch(self: &Arc<Self>, files: Vec<Incoming>) -> Vec<AppResult<Landed>> {
        let store = &self.store;
        futures_util::stream::iter(files)
            .map(|file| async move { store.commit_small(&file).await })
            .buffered(BATCH_WRITES)
            .collect()
            .await
    }

    async fn report(self: &Arc<Self>, done: Committed, sub: Option<String>) {
        if let Some(hooks) = &self.hooks {
            hooks.committed(&done, sub.as_deref(), "batch", std::time::Instant::now()).await;
        }
    }
}

impl BucketStore {
    /// Commits one file of a batch: 412 `target_changed` unless the
    /// pointer is what the client expected, before and at the swap.
    async fn commit_small(&self, file: &Incoming) -> AppResult<Landed> {
        let path = &file.path;
        self.check_key(path)?;
        let current = self.current(path.as_str()).await.map_err(|e| store_error("reading a pointer", e))?;
        if !file.expected.holds(current.as_ref().map(|c| c.head.etag()).as_deref()) {
            return Err(target_changed(path));
        }
        let version =
            crate::random::random_hex(16).map_err(|e| AppError::internal("making a version id", e))?;
        let key = self.keys.version(&version);
        self.bucket
            .put(&key, file.bytes.clone(), Condition::None)
            .await
            .map_err(|e| store_error("writing a version", e))?;
        let head = Head { version, size: file.bytes.len() as u64, mtime: file.mtime };
        match self.swap(path.as_str(), &head, current.as_ref().map(|c| c.pointer_etag.as_str())).await {
            Ok(()) => {}
            Err(e) if e.is_precondition_failed() => {
                if let Err(e) = self.bucket.delete(&key).await {
                    tracing::warn!("removing the version of a lost swap: {e}");
                }
                return Err(target_changed(path));
            }
            Err(e) => return Err(store_error("swapping the pointer", e)),
        }
        if let Some(current) = current {
            self.supersede(&current.head.version).await;
        }
        Ok(Landed { etag: head.etag(), commit_mode: "s3" })
    }
}

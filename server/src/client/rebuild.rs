//! The new version of a local target, built beside it: unchanged data
//! copied from the old target in the kernel, changed data written as it
//! arrives, then renamed over the target atomically.

use std::fs::File;
use std::ops::Range;
use std::path::Path;
use std::sync::Arc;

use super::error::ClientError;
use super::local::Staged;
use crate::fs::copy_range;

/// A target being rebuilt.
#[derive(Debug)]
pub(super) struct Rebuild {
    staged: Arc<Staged>,
    existing: Option<Arc<File>>,
}

impl Rebuild {
    /// Starts the new version of `target` (`size` bytes); `existing` is the
    /// current target, if any, whose permission bits the new one keeps.
    pub(super) fn start(target: &Path, size: u64, existing: Option<Arc<File>>) -> Result<Self, ClientError> {
        Ok(Self { staged: Arc::new(Staged::create(target, size)?), existing })
    }

    /// Copies `runs` from the existing target to the same offsets, in the kernel.
    pub(super) async fn keep(&self, runs: Vec<Range<u64>>) -> Result<(), ClientError> {
        self.keep_moved(runs.into_iter().map(|r| (r.start, r)).collect()).await
    }

    /// Copies from the existing target, in the kernel: each `(from, to)`
    /// puts the bytes at `from` into the range `to` of the new version.
    pub(super) async fn keep_moved(&self, copies: Vec<(u64, Range<u64>)>) -> Result<(), ClientError> {
        match &self.existing {
            Some(existing) => self.copy(existing.clone(), copies, "copying unchanged data").await,
            None => Ok(()),
        }
    }

    /// Copies `runs` from `source` (a local file) to the same offsets, in the kernel.
    pub(super) async fn copy_from(
        &self,
        source: &Arc<File>,
        runs: Vec<Range<u64>>,
    ) -> Result<(), ClientError> {
        let copies = runs.into_iter().map(|r| (r.start, r)).collect();
        self.copy(source.clone(), copies, "copying changed blocks").await
    }

    async fn copy(
        &self,
        from: Arc<File>,
        copies: Vec<(u64, Range<u64>)>,
        what: &'static str,
    ) -> Result<(), ClientError> {
        let staged = self.staged.clone();
        tokio::task::spawn_blocking(move || {
            copies
                .iter()
                .try_for_each(|(at, to)| copy_range(&from, *at, &staged.file, to.start, to.end - to.start))
        })
        .await
        .map_err(|e| ClientError::Local(e.to_string()))?
        .map_err(|e| ClientError::io(what, e))
    }

    /// Writes `bytes` at `offset`.
    pub(super) fn write_at(&self, bytes: &[u8], offset: u64) -> Result<(), ClientError> {
        self.staged.write_at(bytes, offset)
    }

    /// The new version as written so far, to read back (to check it).
    pub(super) fn file(&self) -> &File {
        &self.staged.file
    }

    /// Gives the new version the old one's permission bits, makes it durable
    /// and renames it over the target.
    pub(super) async fn finish(self) -> Result<(), ClientError> {
        let staged = Arc::try_unwrap(self.staged)
            .map_err(|_| ClientError::Local("staged file still in use".into()))?;
        if let Some(meta) = self.existing.as_ref().and_then(|f| f.metadata().ok()) {
            let _ = staged.file.set_permissions(meta.permissions());
        }
        tokio::task::spawn_blocking(move || staged.commit())
            .await
            .map_err(|e| ClientError::Local(e.to_string()))?
    }
}

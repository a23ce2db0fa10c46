//! What a directory gives the read side (`serve/reads/`): a version is the
//! file opened under a read hold (no commit writes it in place while the
//! version lives), its digests and block hashes come from the signer's
//! threads and cache.

use std::fs::File;
use std::io;
use std::ops::Range;
use std::os::unix::fs::FileExt;
use std::sync::Arc;

use axum::body::{Body, Bytes};
use diffcopy_core::SignatureHeader;
use diffcopy_core::delta::ReadAt;

use super::blocking;
use crate::fs::{FileVersion, FsError, RelPath};
use crate::serve::error::{AppError, AppResult};
use crate::serve::locks::ReadHold;
use crate::serve::reads::{Digests, Entry, Page, Reads, Version, chunked};
use crate::serve::state::AppState;
use crate::serve::stats::Stats;

/// A file opened for reading, with its version and the hold that keeps
/// commits in place out.
#[derive(Debug)]
pub(crate) struct OpenFile {
    file: File,
    version: FileVersion,
    _hold: ReadHold,
}

impl Version for OpenFile {
    fn size(&self) -> u64 {
        self.version.size
    }

    fn etag(&self) -> String {
        self.version.etag()
    }

    async fn body(self: Arc<Self>, start: u64, len: u64) -> AppResult<Body> {
        Ok(chunked(self, start, len))
    }

    async fn read(self: Arc<Self>, range: Range<u64>) -> AppResult<Bytes> {
        blocking("reading a file", move || {
            let mut buf = vec![0u8; (range.end - range.start) as usize];
            self.file
                .read_exact_at(&mut buf, range.start)
                .map_err(|e| AppError::internal("reading a file", e))?;
            Ok(Bytes::from(buf))
        })
        .await
    }

    fn reader(self: Arc<Self>) -> impl ReadAt<Error = io::Error> + Send + 'static {
        OpenFileReader(self)
    }
}

/// [`OpenFile`] read by offset from a blocking thread.
struct OpenFileReader(Arc<OpenFile>);

impl ReadAt for OpenFileReader {
    type Error = io::Error;

    fn len(&self) -> u64 {
        self.0.version.size
    }

    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        self.0.file.read_exact_at(buf, offset)
    }
}

impl OpenFile {
    /// Another descriptor of the file, for the signer's threads.
    fn descriptor(&self) -> AppResult<File> {
        self.file.try_clone().map_err(|e| AppError::internal("opening a file", e))
    }
}

impl Reads for AppState {
    type Version = OpenFile;

    async fn current(self: &Arc<Self>, path: &RelPath) -> AppResult<Option<Arc<OpenFile>>> {
        let hold = self.read_hold(path).await?;
        let (state, path) = (self.clone(), path.clone());
        blocking("opening a file", move || {
            let file = match state.root.open_read(&path) {
                Ok(file) => file,
                Err(FsError::NotFound) => return Ok(None),
                Err(e) => return Err(AppError::from_fs(e, &path)),
            };
            let version = FileVersion::of(&file).map_err(|e| AppError::internal("reading metadata", e))?;
            Ok(Some(Arc::new(OpenFile { file, version, _hold: hold })))
        })
        .await
    }

    async fn digests(
        &self,
        version: Arc<OpenFile>,
        header: SignatureHeader,
        threads: Option<usize>,
    ) -> AppResult<Digests> {
        let stream = self
            .signer
            .start(version.descriptor()?, header.algorithm(), header.block_size(), threads)
            .await?;
        // The version (and its hold) lives as long as the stream.
        let digests = futures_util::stream::unfold((stream, version), |(mut stream, version)| async move {
            stream.next_chunk().await.map(|chunk| (chunk.map(Bytes::from), (stream, version)))
        });
        Ok(Box::pin(digests))
    }

    async fn block_hashes(&self, version: Arc<OpenFile>, block_size: u32) -> AppResult<Bytes> {
        let (hashes, _) = self.signer.block_hashes(version.descriptor()?, block_size).await?;
        Ok(Bytes::from_owner(VecBytes(hashes)))
    }

    async fn list(self: &Arc<Self>, prefix: String, after: Option<String>, limit: usize) -> AppResult<Page> {
        let state = self.clone();
        blocking("listing", move || {
            let (found, more) = state
                .root
                .list(&prefix, after.as_deref(), limit)
                .map_err(|e| AppError::internal("listing", e))?;
            let next = if more { found.last().map(|f| f.path.clone()) } else { None };
            let entries = found
                .into_iter()
                .map(|f| Entry {
                    size: f.version.size,
                    mtime: f.version.mtime_ms(),
                    etag: f.version.etag(),
                    path: f.path,
                })
                .collect();
            Ok(Page { entries, next })
        })
        .await
    }

    fn counters(&self) -> &Arc<Stats> {
        &self.stats
    }
}

/// The signer's cached hashes as a body, without a copy.
struct VecBytes(Arc<Vec<u8>>);

impl AsRef<[u8]> for VecBytes {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

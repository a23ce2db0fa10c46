//! The read side, written once for both stores: files with ranges, API v1's
//! signatures, protocol v2's download endpoints, listings and pdiffcopy's read
//! endpoints. A store says only how it finds a path's current version, how
//! it reads one and how it hashes one ([`Reads`], [`Version`]); the
//! directory's answer is `api/reads.rs`, the bucket's `bucket/reads.rs`.
//! Every rule a client can observe (ranges, ETags, `If-Match`, the
//! messages, the errors) lives here, once.

mod files;
mod list;
mod signatures;
mod v2;

use std::future::Future;
use std::io;
use std::ops::Range;
use std::sync::Arc;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::routing::{get, post};
use diffcopy_core::SignatureHeader;
use diffcopy_core::delta::ReadAt;
use futures_util::stream::BoxStream;

pub(crate) use list::{Entry, Page};
pub(crate) use signatures::{BlockQuery, query};

use crate::fs::RelPath;
use crate::serve::error::{AppError, AppResult};
use crate::serve::served::Served;
use crate::serve::stats::Stats;

/// One version of a file, opened: every read of it sees the same bytes,
/// and a store that must keep something while it is read (a directory's
/// read hold) keeps it as long as the version lives.
pub(crate) trait Version: Send + Sync + 'static {
    /// Its size in bytes.
    fn size(&self) -> u64;

    /// Its ETag, as the API shows it (quoted).
    fn etag(&self) -> String;

    /// `len` bytes from `start` (inside the version, `len` > 0), streamed as
    /// the client takes them. A store that fails before the first byte is
    /// an error answer; a read that fails later ends the body with an
    /// error, so the client sees a truncated answer, never wrong bytes.
    fn body(self: Arc<Self>, start: u64, len: u64) -> impl Future<Output = AppResult<Body>> + Send;

    /// The bytes of `range` (inside the version).
    fn read(self: Arc<Self>, range: Range<u64>) -> impl Future<Output = AppResult<Bytes>> + Send;

    /// A blocking reader of the version, for the core's piece hashes (made
    /// on the runtime, used on a blocking thread).
    fn reader(self: Arc<Self>) -> impl ReadAt<Error = io::Error> + Send + 'static;

    /// The answer to a read through [`Version::reader`] that failed.
    fn read_failed(&self, what: &str, e: io::Error) -> AppError {
        AppError::internal(what, e)
    }
}

/// Digests of a version's blocks, a chunk at a time, in block order.
pub(crate) type Digests = BoxStream<'static, io::Result<Bytes>>;

/// What a store gives the read side.
pub(crate) trait Reads: Served {
    /// Its versions.
    type Version: Version;

    /// The version `path` has now; `None` when it has none.
    fn current(
        self: &Arc<Self>,
        path: &RelPath,
    ) -> impl Future<Output = AppResult<Option<Arc<Self::Version>>>> + Send;

    /// The digests of `version`'s blocks as `header` says (its algorithm
    /// and block size). `threads` caps the hashing threads where the
    /// store hashes on the server's cores (pdiffcopy's `concurrency`).
    fn digests(
        &self,
        version: Arc<Self::Version>,
        header: SignatureHeader,
        threads: Option<usize>,
    ) -> impl Future<Output = AppResult<Digests>> + Send;

    /// Protocol v2's block hashes of `version` in blocks of `block_size`,
    /// encoded, with a seed picked after the version was written.
    fn block_hashes(
        &self,
        version: Arc<Self::Version>,
        block_size: u32,
    ) -> impl Future<Output = AppResult<Bytes>> + Send;

    /// Up to `limit` files whose paths start with `prefix` and sort after
    /// `after`, in the byte order of their paths.
    fn list(
        self: &Arc<Self>,
        prefix: String,
        after: Option<String>,
        limit: usize,
    ) -> impl Future<Output = AppResult<Page>> + Send;

    /// The server's counters.
    fn counters(&self) -> &Arc<Stats>;
}

/// The read routes, added to a store's `router` (before its layers).
pub(crate) fn routes<S: Reads>(router: Router<Arc<S>>) -> Router<Arc<S>> {
    router
        .route("/api/v1/files/{*path}", get(files::get_file::<S>))
        .route("/api/v1/signatures/{*path}", get(signatures::signature::<S>))
        .route("/api/v2/signatures/{*path}", get(v2::signature::<S>))
        .route("/api/v2/hashes/{*path}", post(v2::piece_hashes::<S>))
        .route("/api/v2/data/{*path}", post(v2::literal_data::<S>))
        .route("/api/v2/list", get(list::list::<S>))
        .route("/info", get(signatures::info::<S>))
        .route("/hashes", get(signatures::hashes::<S>))
        .route("/blocks", get(signatures::read_block::<S>))
}

/// The current version of `path`, or 404 `not_found`.
async fn current_or_404<S: Reads>(state: &Arc<S>, path: &RelPath) -> AppResult<Arc<S::Version>> {
    state.current(path).await?.ok_or_else(|| AppError::not_found(path))
}

/// Bytes per read while a version is streamed by [`chunked`].
const CHUNK: u64 = 256 << 10;

/// `len` bytes of `version` from `start` as a body, read a chunk at a time
/// as the client takes them, for a store whose reads are ranged anyway.
pub(crate) fn chunked<V: Version>(version: Arc<V>, start: u64, len: u64) -> Body {
    let chunks =
        futures_util::stream::unfold((version, start, start + len), |(version, pos, end)| async move {
            if pos >= end {
                return None;
            }
            let next = pos + CHUNK.min(end - pos);
            match version.clone().read(pos..next).await {
                Ok(bytes) => Some((Ok(bytes), (version, next, end))),
                Err(e) => Some((Err(io::Error::other(e.to_string())), (version, end, end))),
            }
        });
    Body::from_stream(chunks)
}

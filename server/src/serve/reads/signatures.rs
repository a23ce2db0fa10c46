//! Block digests and blocks, as API v1's signature and pdiffcopy 1.0.1's
//! read endpoints (`/info`, `/hashes`, `GET /blocks`) serve them.
//! pdiffcopy's `filename` is its absolute path, mapped below the root with
//! the same confinement as API v1.

use std::fmt::Write as _;
use std::sync::Arc;

use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use diffcopy_core::{HashAlgorithm, SignatureHeader};
use futures_util::StreamExt as _;
use serde::Deserialize;
use serde_json::json;

use super::{Reads, Version, current_or_404};
use crate::fs::RelPath;
use crate::limits::{DEFAULT_BLOCK_SIZE, MAX_BLOCK_SIZE, check_block_count, check_block_size};
use crate::serve::error::{AppError, AppResult, ErrorKind};

/// The media type of a binary signature.
const SIGNATURE_TYPE: &str = "application/vnd.diffcopy.signature";

#[derive(Debug, Deserialize)]
pub(super) struct SignatureQuery {
    block_size: Option<u32>,
    hash: Option<String>,
}

#[derive(Debug, Deserialize)]
pub(super) struct FileQuery {
    filename: String,
}

#[derive(Debug, Deserialize)]
pub(super) struct HashesQuery {
    filename: String,
    method: Option<String>,
    block_size: Option<u32>,
    /// The client's wish of hashing threads, capped by the server's own.
    concurrency: Option<usize>,
}

/// pdiffcopy's `/blocks` query (its writes take it too).
#[derive(Debug, Deserialize)]
pub(crate) struct BlockQuery {
    pub(crate) filename: String,
    pub(crate) offset: u64,
    pub(crate) size: Option<u64>,
}

/// A query, or 400 `bad_query`.
pub(crate) fn query<T>(q: Result<Query<T>, QueryRejection>) -> AppResult<T> {
    Ok(q?.0)
}

/// The signature header of a `size`-byte version at `block_size` with `algorithm`.
fn header_of(size: u64, algorithm: Option<&str>, block_size: Option<u32>) -> AppResult<SignatureHeader> {
    let block_size = block_size.unwrap_or(DEFAULT_BLOCK_SIZE);
    check_block_size(block_size)?;
    let algorithm: HashAlgorithm = algorithm.unwrap_or("sha1").parse()?;
    let header = SignatureHeader::new(algorithm, block_size, size)
        .map_err(|e| AppError::new(ErrorKind::BadBlockSize, e.to_string()))?;
    check_block_count(&header)?;
    Ok(header)
}

/// `GET /api/v1/signatures/{path}`: the header, then the digests in block
/// order as they are computed; `Content-Length` is known from the start.
pub(super) async fn signature<S: Reads>(
    State(state): State<Arc<S>>,
    Path(path): Path<String>,
    q: Result<Query<SignatureQuery>, QueryRejection>,
) -> AppResult<Response> {
    let q = query(q)?;
    let path = RelPath::parse(&path)?;
    let version = current_or_404(&state, &path).await?;
    let header = header_of(version.size(), q.hash.as_deref(), q.block_size)?;
    let etag = version.etag();
    let digests = state.digests(version, header, None).await?;
    let first = futures_util::stream::once(async move { Ok(Bytes::copy_from_slice(&header.encode())) });
    let mut response = Body::from_stream(first.chain(digests)).into_response();
    let h = response.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(SIGNATURE_TYPE));
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(header.encoded_len()));
    if let Ok(v) = HeaderValue::from_str(&etag) {
        h.insert(header::ETAG, v);
    }
    Ok(response)
}

/// pdiffcopy's `GET /info`: `{"size": N}`, or 404 with an empty body.
pub(super) async fn info<S: Reads>(
    State(state): State<Arc<S>>,
    q: Result<Query<FileQuery>, QueryRejection>,
) -> AppResult<Response> {
    let path = RelPath::from_pdiffcopy(&query(q)?.filename)?;
    Ok(match state.current(&path).await? {
        Some(version) => Json(json!({ "size": version.size() })).into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    })
}

/// pdiffcopy's `GET /hashes`: `"<offset>\t<hex>\n"` lines, streamed as the
/// digests are computed.
pub(super) async fn hashes<S: Reads>(
    State(state): State<Arc<S>>,
    q: Result<Query<HashesQuery>, QueryRejection>,
) -> AppResult<Response> {
    let q = query(q)?;
    let path = RelPath::from_pdiffcopy(&q.filename)?;
    let version = current_or_404(&state, &path).await?;
    let header = header_of(version.size(), q.method.as_deref(), q.block_size)?;
    let (digest_len, block_size) = (header.algorithm().digest_len(), header.block_size());
    let mut offset = 0u64;
    let lines = state
        .digests(version, header, q.concurrency)
        .await?
        .map(move |digests| digests.map(|d| hash_lines(&d, digest_len, block_size, &mut offset)));
    let mut response = Body::from_stream(lines).into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
    Ok(response)
}

/// pdiffcopy's `"<offset>\t<hex>\n"` lines for consecutive `digests` of
/// `digest_len` bytes, the first at `offset` (moved past them).
fn hash_lines(digests: &[u8], digest_len: usize, block_size: u32, offset: &mut u64) -> Bytes {
    let mut text = String::with_capacity(digests.len() / digest_len * (2 * digest_len + 14));
    for digest in digests.chunks_exact(digest_len) {
        let _ = write!(text, "{offset}");
        text.push('\t');
        let mut hex = [0u8; 2 * diffcopy_core::MAX_DIGEST_LEN];
        text.push_str(diffcopy_core::hex::encode_to_slice(digest, &mut hex));
        text.push('\n');
        *offset += u64::from(block_size);
    }
    Bytes::from(text)
}

/// pdiffcopy's `GET /blocks?filename=&offset=&size=`: raw bytes, short at
/// the end of the file; `size` defaults to 1 MiB and may be at most 64 MiB
/// (413 `block_too_large`).
pub(super) async fn read_block<S: Reads>(
    State(state): State<Arc<S>>,
    q: Result<Query<BlockQuery>, QueryRejection>,
) -> AppResult<Response> {
    let q = query(q)?;
    let path = RelPath::from_pdiffcopy(&q.filename)?;
    let size = q.size.unwrap_or(u64::from(DEFAULT_BLOCK_SIZE));
    if size > u64::from(MAX_BLOCK_SIZE) {
        return Err(AppError::new(
            ErrorKind::BlockTooLarge,
            format!("a block may be at most {MAX_BLOCK_SIZE} bytes"),
        ));
    }
    let version = current_or_404(&state, &path).await?;
    let end = version.size();
    let bytes = version.read(q.offset.min(end)..q.offset.saturating_add(size).min(end)).await?;
    let mut response = bytes.into_response();
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/octet-stream"));
    Ok(response)
}

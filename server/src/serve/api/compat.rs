//! pdiffcopy 1.0.1's endpoints, so its client works against this server.
//!
//! `filename` is pdiffcopy's absolute path, mapped below the root with the
//! same confinement as API v1. These endpoints write in place, as pdiffcopy
//! does: its protocol has no commit step.

use std::fmt::Write as _;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::sync::Arc;

use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

use super::blocking;
use super::signatures::start_signature;
use super::uploads::read_body_limited;
use crate::fs::FsError;
use crate::fs::RelPath;
use crate::limits::{DEFAULT_BLOCK_SIZE, MAX_BLOCK_SIZE};
use crate::serve::error::{AppError, AppResult, ErrorKind};
use crate::serve::locks::holding;
use crate::serve::state::AppState;

#[derive(Debug, Deserialize)]
pub(crate) struct FileQuery {
    pub(crate) filename: String,
}

#[derive(Debug, Deserialize)]
pub(crate) struct HashesQuery {
    pub(crate) filename: String,
    pub(crate) method: Option<String>,
    pub(crate) block_size: Option<u32>,
    concurrency: Option<usize>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct BlockQuery {
    pub(crate) filename: String,
    pub(crate) offset: u64,
    pub(crate) size: Option<u64>,
}

#[derive(Debug, Deserialize)]
pub(super) struct ResizeQuery {
    filename: String,
    size: u64,
}

pub(crate) fn query<T>(q: Result<Query<T>, QueryRejection>) -> AppResult<T> {
    Ok(q?.0)
}

fn check_size(state: &AppState, end: u64) -> AppResult<()> {
    if end > state.config.max_file_size {
        return Err(AppError::file_too_large(end, state.config.max_file_size));
    }
    Ok(())
}

/// `GET /info?filename=`: `{"size": N}`, or 404 with an empty body.
pub(super) async fn info(
    State(state): State<Arc<AppState>>,
    q: Result<Query<FileQuery>, QueryRejection>,
) -> AppResult<Response> {
    let path = RelPath::from_pdiffcopy(&query(q)?.filename)?;
    blocking("reading file info", move || match state.root.open_read(&path) {
        Ok(file) => {
            let size = file.metadata().map_err(|e| AppError::internal("reading metadata", e))?.len();
            Ok(Json(json!({ "size": size })).into_response())
        }
        Err(FsError::NotFound) => Ok(StatusCode::NOT_FOUND.into_response()),
        Err(e) => Err(AppError::from_fs(e, &path)),
    })
    .await
}

/// `GET /hashes`: `"<offset>\t<hex>\n"` lines, streamed as they are computed.
pub(super) async fn hashes(
    State(state): State<Arc<AppState>>,
    q: Result<Query<HashesQuery>, QueryRejection>,
) -> AppResult<Response> {
    let q = query(q)?;
    let path = RelPath::from_pdiffcopy(&q.filename)?;
    let block_size = q.block_size.unwrap_or(DEFAULT_BLOCK_SIZE);
    // The client's concurrency is a wish, capped by the server's own threads.
    let (stream, hold) =
        start_signature(&state, path, q.method.as_deref().unwrap_or("sha1"), block_size, q.concurrency)
            .await?;
    let digest_len = stream.header().algorithm().digest_len();
    let lines = futures_util::stream::unfold((stream, 0u64), move |(mut stream, mut offset)| async move {
        let chunk = stream.next_chunk().await?;
        let text = chunk.map(|digests| hash_lines(&digests, digest_len, block_size, &mut offset));
        Some((text, (stream, offset)))
    });
    Ok(text_response(Body::from_stream(holding(lines, hold))))
}

/// pdiffcopy's `"<offset>\t<hex>\n"` lines for consecutive `digests` of
/// `digest_len` bytes, the first at `offset` (moved past them).
pub(crate) fn hash_lines(digests: &[u8], digest_len: usize, block_size: u32, offset: &mut u64) -> Bytes {
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

/// `/hashes`' answer: plain text.
pub(crate) fn text_response(body: Body) -> Response {
    let mut response = body.into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
    response
}

/// `GET /blocks?filename=&offset=&size=`: raw bytes, short at the end of the file.
pub(super) async fn read_block(
    State(state): State<Arc<AppState>>,
    q: Result<Query<BlockQuery>, QueryRejection>,
) -> AppResult<Response> {
    let q = query(q)?;
    let path = RelPath::from_pdiffcopy(&q.filename)?;
    let size = block_request_size(&q)?;
    let hold = state.read_hold(&path).await?;
    let bytes = blocking("reading a block", move || {
        let _hold = hold;
        let file = state.root.open_read(&path).map_err(|e| AppError::from_fs(e, &path))?;
        read_at_most(&file, q.offset, size).map_err(|e| AppError::from_fs(e.into(), &path))
    })
    .await?;
    Ok(octets(bytes))
}

/// Raw bytes as a response.
pub(crate) fn octets(bytes: impl IntoResponse) -> Response {
    let mut response = bytes.into_response();
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/octet-stream"));
    response
}

/// The bytes a `GET /blocks` asks for: `size` (default 1 MiB), at most
/// 64 MiB (413 `block_too_large`).
pub(crate) fn block_request_size(q: &BlockQuery) -> AppResult<u64> {
    let size = q.size.unwrap_or(u64::from(DEFAULT_BLOCK_SIZE));
    if size > u64::from(MAX_BLOCK_SIZE) {
        return Err(AppError::new(
            ErrorKind::BlockTooLarge,
            format!("a block may be at most {MAX_BLOCK_SIZE} bytes"),
        ));
    }
    Ok(size)
}

fn read_at_most(file: &File, offset: u64, size: u64) -> std::io::Result<Vec<u8>> {
    let len = file.metadata()?.len();
    let n = size.min(len.saturating_sub(offset)) as usize;
    let mut buf = vec![0u8; n];
    file.read_exact_at(&mut buf, offset)?;
    Ok(buf)
}

/// `POST /blocks?filename=&offset=`: writes the body in place.
pub(super) async fn write_block(
    State(state): State<Arc<AppState>>,
    q: Result<Query<BlockQuery>, QueryRejection>,
    body: Body,
) -> AppResult<StatusCode> {
    let q = query(q)?;
    let path = RelPath::from_pdiffcopy(&q.filename)?;
    let bytes = read_body_limited(&state, body, u64::from(MAX_BLOCK_SIZE), "a block").await?;
    let end = q.offset.saturating_add(bytes.len() as u64);
    check_size(&state, end)?;
    let written = bytes.len() as u64;
    let stats = state.stats.clone();
    // In place, as pdiffcopy does, but never in the middle of a commit.
    let commit_lock = state.locks.commit(&path).await;
    blocking("writing a block", move || {
        let _commit_lock = commit_lock;
        let file = state.root.open_write(&path, false).map_err(|e| AppError::from_fs(e, &path))?;
        file.write_all_at(&bytes, q.offset).map_err(|e| AppError::from_fs(e.into(), &path))
    })
    .await?;
    stats.pdiffcopy_written(written);
    Ok(StatusCode::OK)
}

/// `POST /resize?filename=&size=`: creates parent directories and the file
/// when missing, then truncates or extends it.
pub(super) async fn resize(
    State(state): State<Arc<AppState>>,
    q: Result<Query<ResizeQuery>, QueryRejection>,
) -> AppResult<StatusCode> {
    let q = query(q)?;
    let path = RelPath::from_pdiffcopy(&q.filename)?;
    check_size(&state, q.size)?;
    let commit_lock = state.locks.commit(&path).await;
    blocking("resizing a file", move || {
        let _commit_lock = commit_lock;
        state.root.parent_dir(&path, true).map_err(|e| AppError::from_fs(e, &path))?;
        let file = state.root.open_write(&path, true).map_err(|e| AppError::from_fs(e, &path))?;
        file.set_len(q.size).map_err(|e| AppError::from_fs(e.into(), &path))
    })
    .await?;
    Ok(StatusCode::OK)
}

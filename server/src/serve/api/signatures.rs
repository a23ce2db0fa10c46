//! `GET /api/v1/signatures/{path}`: the binary signature, streamed.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use diffcopy_core::HashAlgorithm;
use serde::Deserialize;

use super::blocking;
use crate::fs::RelPath;
use crate::limits::{DEFAULT_BLOCK_SIZE, check_block_size};
use crate::serve::error::{AppError, AppResult};
use crate::serve::locks::{ReadHold, holding};
use crate::serve::signer::DigestStream;
use crate::serve::state::AppState;

/// The media type of a binary signature.
pub(crate) const SIGNATURE_TYPE: &str = "application/vnd.diffcopy.signature";

#[derive(Debug, Deserialize)]
pub(super) struct SignatureQuery {
    block_size: Option<u32>,
    hash: Option<String>,
}

/// Opens `path` and starts its signature (shared with pdiffcopy's `/hashes`);
/// the hold is to be kept until the digests are sent.
pub(super) async fn start_signature(
    state: &Arc<AppState>,
    path: RelPath,
    algorithm: &str,
    block_size: u32,
    threads: Option<usize>,
) -> AppResult<(DigestStream, ReadHold)> {
    check_block_size(block_size)?;
    let algorithm: HashAlgorithm = algorithm.parse()?;
    let hold = state.read_hold(&path).await?;
    let state2 = state.clone();
    let file = blocking("opening a file", move || {
        state2.root.open_read(&path).map_err(|e| AppError::from_fs(e, &path))
    })
    .await?;
    Ok((state.signer.start(file, algorithm, block_size, threads).await?, hold))
}

/// The signature of a file: header first, then digests in block order as
/// the threads finish them; `Content-Length` is known from the start.
pub(super) async fn get_signature(
    State(state): State<Arc<AppState>>,
    Path(path): Path<String>,
    query: Result<Query<SignatureQuery>, QueryRejection>,
) -> AppResult<Response> {
    let Query(query) = query?;
    let path = RelPath::parse(&path)?;
    let block_size = query.block_size.unwrap_or(DEFAULT_BLOCK_SIZE);
    let (stream, hold) =
        start_signature(&state, path, query.hash.as_deref().unwrap_or("sha1"), block_size, None).await?;
    let header = stream.header();
    let etag = stream.version().etag();
    let first = futures_util::stream::once(async move {
        Ok::<_, std::io::Error>(Bytes::copy_from_slice(&header.encode()))
    });
    let digests = futures_util::stream::unfold(stream, |mut stream| async move {
        stream.next_chunk().await.map(|chunk| (chunk.map(Bytes::from), stream))
    });
    let mut response =
        Body::from_stream(holding(futures_util::StreamExt::chain(first, digests), hold)).into_response();
    let h = response.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(SIGNATURE_TYPE));
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(header.encoded_len()));
    if let Ok(v) = HeaderValue::from_str(&etag) {
        h.insert(header::ETAG, v);
    }
    Ok(response)
}

//! What a bucket serves of API v1 and pdiffcopy's endpoints: the reading
//! side (signatures, file info, block hashes, blocks), so that downloads
//! work whatever the protocol. Their writes (API v1 uploads, pdiffcopy's
//! writes in place) answer 501: a block written in place would be a whole
//! new object.

use std::sync::Arc;

use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use diffcopy_core::{HashAlgorithm, SignatureHeader, hash_block};
use futures_util::{Stream, StreamExt as _};
use serde::Deserialize;
use serde_json::json;

use super::BucketState;
use super::head::Head;
use super::reader::{hash_blocks, read_range};
use super::session::store_error;
use crate::fs::RelPath;
use crate::limits::{DEFAULT_BLOCK_SIZE, check_block_count, check_block_size};
use crate::s3::Bucket;
use crate::serve::api::compat::{
    BlockQuery, FileQuery, HashesQuery, block_request_size, hash_lines, octets, query, text_response,
};
use crate::serve::api::signatures::SIGNATURE_TYPE;
use crate::serve::error::{AppError, AppResult, ErrorKind};

type Shared = State<Arc<BucketState>>;

/// The digests of object `key`'s blocks, in order, a chunk per stretch of
/// about 4 MiB ([`hash_blocks`]).
fn block_digests(
    bucket: Bucket,
    key: String,
    header: SignatureHeader,
) -> impl Stream<Item = std::io::Result<Bytes>> + Send {
    let algorithm = header.algorithm();
    hash_blocks(bucket, key, header.file_size(), header.block_size(), move |b| hash_block(algorithm, b)).map(
        |digests| {
            let digests = digests.map_err(std::io::Error::other)?;
            Ok(Bytes::from(digests.iter().flat_map(|d| d.as_bytes().iter().copied()).collect::<Vec<u8>>()))
        },
    )
}

/// The current version of `path`, if any.
async fn current(state: &BucketState, path: &RelPath) -> AppResult<Option<Head>> {
    let current =
        state.store.current(path.as_str()).await.map_err(|e| store_error("reading a pointer", e))?;
    Ok(current.map(|c| c.head))
}

/// The signature header of `head` at `block_size` with `algorithm`.
fn header_of(head: &Head, algorithm: &str, block_size: u32) -> AppResult<SignatureHeader> {
    check_block_size(block_size)?;
    let algorithm: HashAlgorithm = algorithm.parse()?;
    let header = SignatureHeader::new(algorithm, block_size, head.size)
        .map_err(|e| AppError::new(ErrorKind::BadBlockSize, e.to_string()))?;
    check_block_count(&header)?;
    Ok(header)
}

#[derive(Debug, Deserialize)]
pub(super) struct SignatureQuery {
    block_size: Option<u32>,
    hash: Option<String>,
}

/// `GET /api/v1/signatures/{path}`: the binary signature, streamed.
pub(super) async fn signature(
    State(state): Shared,
    Path(path): Path<String>,
    q: Result<Query<SignatureQuery>, QueryRejection>,
) -> AppResult<Response> {
    let q = query(q)?;
    let path = RelPath::parse(&path)?;
    let head = current(&state, &path).await?.ok_or_else(|| AppError::not_found(&path))?;
    let header =
        header_of(&head, q.hash.as_deref().unwrap_or("sha1"), q.block_size.unwrap_or(DEFAULT_BLOCK_SIZE))?;
    let key = state.store.keys.version(&head.version);
    let first = futures_util::stream::once(async move { Ok(Bytes::copy_from_slice(&header.encode())) });
    let body = Body::from_stream(first.chain(block_digests(state.store.bucket.clone(), key, header)));
    let mut response = body.into_response();
    let h = response.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(SIGNATURE_TYPE));
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(header.encoded_len()));
    if let Ok(v) = HeaderValue::from_str(&head.etag()) {
        h.insert(header::ETAG, v);
    }
    Ok(response)
}

/// pdiffcopy's `GET /info`: `{"size": N}`, or 404 with an empty body.
pub(super) async fn info(
    State(state): Shared,
    q: Result<Query<FileQuery>, QueryRejection>,
) -> AppResult<Response> {
    let path = RelPath::from_pdiffcopy(&query(q)?.filename)?;
    Ok(match current(&state, &path).await? {
        Some(head) => Json(json!({ "size": head.size })).into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    })
}

/// pdiffcopy's `GET /hashes`: `"<offset>\t<hex>\n"` lines, streamed.
pub(super) async fn hashes(
    State(state): Shared,
    q: Result<Query<HashesQuery>, QueryRejection>,
) -> AppResult<Response> {
    let q = query(q)?;
    let path = RelPath::from_pdiffcopy(&q.filename)?;
    let head = current(&state, &path).await?.ok_or_else(|| AppError::not_found(&path))?;
    let header =
        header_of(&head, q.method.as_deref().unwrap_or("sha1"), q.block_size.unwrap_or(DEFAULT_BLOCK_SIZE))?;
    let (digest_len, block_size) = (header.algorithm().digest_len(), header.block_size());
    let key = state.store.keys.version(&head.version);
    let mut offset = 0u64;
    let lines = block_digests(state.store.bucket.clone(), key, header)
        .map(move |digests| digests.map(|d| hash_lines(&d, digest_len, block_size, &mut offset)));
    Ok(text_response(Body::from_stream(lines)))
}

/// pdiffcopy's `GET /blocks`: raw bytes, short at the end of the file.
pub(super) async fn read_block(
    State(state): Shared,
    q: Result<Query<BlockQuery>, QueryRejection>,
) -> AppResult<Response> {
    let q = query(q)?;
    let path = RelPath::from_pdiffcopy(&q.filename)?;
    let size = block_request_size(&q)?;
    let head = current(&state, &path).await?.ok_or_else(|| AppError::not_found(&path))?;
    let range = q.offset.min(head.size)..q.offset.saturating_add(size).min(head.size);
    let bytes = read_range(&state.store.bucket, &state.store.keys.version(&head.version), range)
        .await
        .map_err(|e| store_error("reading a block", e))?;
    Ok(octets(bytes))
}

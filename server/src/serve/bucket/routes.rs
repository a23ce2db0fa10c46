//! The HTTP routes of a server over a bucket: the page, health and stats,
//! files with ranges, protocol v2 uploads and downloads, and the reading
//! side of API v1 and pdiffcopy's endpoints (`compat.rs`). API v1 uploads
//! and pdiffcopy's writes answer 501: their blocks-in-place model has no
//! object-store form worth having (docs/s3.md).

use std::ops::Range;
use std::sync::Arc;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::rejection::QueryRejection;
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use axum::{Extension, Json};
use diffcopy_core::delta::{
    BlockHash, BlockHashes, BlockHashesBuilder, FRAMES_HEADER, MAX_FRAME, Need, PieceHashes,
};
use futures_util::StreamExt as _;
use serde_json::json;

use super::head::Current;
use super::reader::{ObjectReader, hash_blocks, read_range};
use super::session::{store_error, store_read_error};
use super::{BucketState, compat};
use crate::frames::push_frame;
use crate::fs::RelPath;
use crate::limits::{DEFAULT_BLOCK_SIZE, check_block_size};
use crate::serve::access::{Access, authorize};
use crate::serve::api::cors::cors;
use crate::serve::api::delta::{
    BlockQuery, DOWNLOAD_FRAME, MAX_DATA_BODY, PieceQuery, binary, finer_need, if_match, params_of,
};
use crate::serve::api::files::{file_response, no_route, requested_range};
use crate::serve::api::uploads::read_body_within;
use crate::serve::commit::target_changed;
use crate::serve::error::{AppError, AppResult, ErrorKind};
use crate::serve::hooks::commit_and_report;
use crate::serve::memory;
use crate::serve::v2::{Created, NewDelta};

type Shared = State<Arc<BucketState>>;

/// The literal bytes a client is asked to put in one data request: each
/// request's contiguous data is one object, and one of 5 MiB or more
/// becomes a copy part of the commit instead of being uploaded again.
const DATA_BATCH: u64 = 6 << 20;

/// The whole application over a bucket, for `run_bucket` or oneshot tests.
pub fn bucket_app(state: Arc<BucketState>) -> Router {
    let api = Router::new()
        .route("/api/v1/health", get(health))
        .route("/api/v1/stats", get(stats))
        .route("/api/v1/files/{*path}", get(get_file))
        .route("/api/v1/signatures/{*path}", get(compat::signature))
        .route("/api/v1/uploads", any(not_supported))
        .route("/api/v1/uploads/{*rest}", any(not_supported))
        .route("/api/v2/uploads", post(create))
        .route("/api/v2/uploads/{id}", get(status).delete(abort))
        .route("/api/v2/uploads/{id}/hashes", post(hashes))
        .route("/api/v2/uploads/{id}/data", post(data))
        .route("/api/v2/uploads/{id}/commit", post(commit))
        .route("/api/v2/signatures/{*path}", get(signature))
        .route("/api/v2/hashes/{*path}", post(piece_hashes))
        .route("/api/v2/data/{*path}", post(literal_data))
        .route("/info", get(compat::info))
        .route("/hashes", get(compat::hashes))
        .route("/blocks", get(compat::read_block).post(not_supported))
        .route("/resize", any(not_supported))
        .layer(DefaultBodyLimit::disable())
        .route_layer(axum::middleware::from_fn_with_state(state.clone(), authorize::<BucketState>));
    api.merge(crate::serve::assets::routes())
        .fallback(no_route)
        .layer(axum::middleware::from_fn_with_state(state.clone(), cors::<BucketState>))
        .with_state(state)
}

async fn not_supported() -> AppError {
    AppError::new(
        ErrorKind::NotSupportedByStore,
        "this server keeps its files in an object store: it takes uploads over protocol v2 only; \
         API v1 uploads and pdiffcopy's writes need a directory (diffcopy serve --root)",
    )
}

/// `GET /api/v1/health`.
async fn health() -> impl IntoResponse {
    Json(json!({ "status": "ok", "version": env!("CARGO_PKG_VERSION"), "protocols": ["v2"], "store": "s3" }))
}

/// `GET /api/v1/stats`.
async fn stats(State(state): Shared) -> impl IntoResponse {
    Json(state.stats())
}

/// The current version of `path`, or 404.
async fn current(state: &BucketState, path: &RelPath) -> AppResult<Current> {
    state
        .store
        .current(path.as_str())
        .await
        .map_err(|e| store_error("reading a pointer", e))?
        .ok_or_else(|| AppError::not_found(path))
}

/// `GET`/`HEAD /api/v1/files/{path}` with an optional single `Range`.
async fn get_file(
    State(state): Shared,
    Path(path): Path<String>,
    method: Method,
    headers: HeaderMap,
) -> AppResult<Response> {
    let path = RelPath::parse(&path)?;
    let head = current(&state, &path).await?.head;
    let (status, start, len) = requested_range(&headers, head.size)?;
    let body = if method == Method::HEAD || len == 0 {
        Body::empty()
    } else {
        let key = state.store.keys.version(&head.version);
        let spec = format!("bytes={start}-{}", start + len - 1);
        let response = state
            .store
            .bucket
            .get_response(&key, Some(&spec))
            .await
            .map_err(|e| store_error("reading a version", e))?
            .ok_or_else(|| AppError::not_found(&path))?;
        let bucket = state.store.bucket.clone();
        let chunks = futures_util::stream::unfold(Some(response), move |response| {
            let bucket = bucket.clone();
            async move {
                let mut response = response?;
                match response.chunk().await {
                    Ok(Some(bytes)) => {
                        bucket.count_downloaded(bytes.len() as u64);
                        Some((Ok(bytes), Some(response)))
                    }
                    Ok(None) => None,
                    Err(e) => Some((Err(std::io::Error::other(e)), None)),
                }
            }
        });
        Body::from_stream(chunks)
    };
    Ok(file_response(status, body, start, len, head.size, &head.etag()))
}

/// `POST /api/v2/uploads`.
async fn create(
    State(state): Shared,
    Extension(access): Extension<Access>,
    body: Body,
) -> AppResult<impl IntoResponse> {
    let body = read_body_within(state.config.body_timeout, body, 64 << 10, "an upload request").await?;
    let request: NewDelta = serde_json::from_slice(&body)
        .map_err(|e| AppError::new(ErrorKind::BadJson, format!("the upload request is not valid: {e}")))?;
    access.may_upload(&request.path, request.size)?;
    let opened = state.store.open_upload(request, access.owner()).await?;
    state.stats.delta_upload_created();
    tracing::info!(id = %opened.id, path = %opened.path, size = opened.size, who = access.who(), "v2 upload opened in the bucket");
    let live = state.store.session(&opened.id).await?;
    let mut live = live.lock().await;
    let status = state.store.status(&mut live).await?;
    let params = live.params;
    let created = Created {
        id: opened.id,
        path: opened.path,
        size: opened.size,
        block_size: opened.block_size,
        levels: params.levels.sizes().to_vec(),
        seed: opened.seed,
        expires_in_secs: state.config.upload_ttl.as_secs(),
        data_batch: Some(DATA_BATCH),
        status,
    };
    Ok((StatusCode::CREATED, Json(created)))
}

/// `POST /api/v2/uploads/{id}/hashes`.
async fn hashes(State(state): Shared, Path(id): Path<String>, body: Body) -> AppResult<Response> {
    let live = state.store.session(&id).await?;
    let mut live = live.lock().await;
    let limit = state.store.next_hashes_len(&mut live).await?;
    let body = read_body_within(state.config.body_timeout, body, limit, "the hashes").await?;
    let (need, work) = state.store.round(&mut live, body).await?;
    state.stats.searched(work.rolled, work.hashed);
    Ok(binary(need.encode()))
}

/// `POST /api/v2/uploads/{id}/data`.
async fn data(State(state): Shared, Path(id): Path<String>, body: Body) -> AppResult<StatusCode> {
    let live = state.store.session(&id).await?;
    // Before the session's lock, which a commit at this instance holds.
    state.store.refuse_if_committing(&id).await?;
    let (params, searched) = {
        let mut live = live.lock().await;
        (live.params, state.store.searched(&mut live).await?)
    };
    let body = read_body_within(state.config.body_timeout, body, MAX_DATA_BODY, "literal data").await?;
    let stored = state.store.put_data(&id, &params, &searched, &body).await?;
    state.stats.literal_received(stored);
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /api/v2/uploads/{id}`.
async fn status(State(state): Shared, Path(id): Path<String>) -> AppResult<impl IntoResponse> {
    let live = state.store.session(&id).await?;
    let mut live = live.lock().await;
    Ok(Json(state.store.status(&mut live).await?))
}

/// `POST /api/v2/uploads/{id}/commit`.
async fn commit(State(state): Shared, Path(id): Path<String>) -> AppResult<impl IntoResponse> {
    let owner = state.store.session_scope(&id).await?.and_then(|s| s.owner);
    let (store, session) = (state.store.clone(), id.clone());
    let commit = async move { store.commit(&session).await };
    let outcome = commit_and_report(state.hooks.clone(), owner.clone(), "v2", commit).await?;
    state.stats.delta_upload_committed();
    tracing::info!(id = %id, sub = owner.as_deref().unwrap_or("-"), "v2 upload committed in the bucket");
    memory::release_freed().await;
    Ok(Json(outcome))
}

/// `DELETE /api/v2/uploads/{id}`.
async fn abort(State(state): Shared, Path(id): Path<String>) -> AppResult<StatusCode> {
    let live = state.store.session(&id).await?;
    let mut live = live.lock().await;
    state.store.end(&mut live).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /api/v2/signatures/{path}`: the block hashes stored beside the
/// version when their block size is the one asked for, else computed.
async fn signature(
    State(state): Shared,
    Path(path): Path<String>,
    query: Result<Query<BlockQuery>, QueryRejection>,
) -> AppResult<Response> {
    let Query(query) = query?;
    let path = RelPath::parse(&path)?;
    let block_size = query.block_size.unwrap_or(DEFAULT_BLOCK_SIZE);
    check_block_size(block_size)?;
    let head = current(&state, &path).await?.head;
    let store = &state.store;
    let stored = store
        .bucket
        .get(&store.keys.hashes(&head.version), None)
        .await
        .map_err(|e| store_error("reading block hashes", e))?;
    let fits = |b: &Bytes| {
        BlockHashes::decode(b)
            .is_ok_and(|h| h.params().levels.block_size() == block_size && h.params().file_size == head.size)
    };
    let hashes = match stored {
        Some(bytes) if fits(&bytes) => bytes,
        _ => {
            let params = params_of(head.size, Some(block_size), crate::random::random_seed()?)?;
            let key = store.keys.version(&head.version);
            let seed = params.seed;
            let mut stretches = hash_blocks(store.bucket.clone(), key, head.size, block_size, move |b| {
                BlockHash::of(seed, b)
            });
            let mut builder = BlockHashesBuilder::new(params);
            while let Some(stretch) = stretches.next().await {
                for hash in stretch.map_err(|e| store_error("reading a version", e))? {
                    builder.push(hash);
                }
            }
            let hashes = builder.finish().map_err(|e| AppError::internal("hashing a version", e))?;
            Bytes::from(hashes.encode())
        }
    };
    let mut response = binary(hashes);
    if let Ok(etag) = HeaderValue::from_str(&head.etag()) {
        response.headers_mut().insert(header::ETAG, etag);
    }
    Ok(response)
}

/// The current version of `path`, which must be the one `If-Match` names.
async fn version_matching(
    state: &BucketState,
    path: &RelPath,
    headers: &HeaderMap,
) -> AppResult<super::head::Head> {
    let wanted = if_match(headers)?;
    let head = current(state, path).await?.head;
    if head.etag() != wanted {
        return Err(target_changed(path));
    }
    Ok(head)
}

/// `POST /api/v2/hashes/{path}`: piece hashes of the ranges a need refines.
async fn piece_hashes(
    State(state): Shared,
    Path(path): Path<String>,
    query: Result<Query<PieceQuery>, QueryRejection>,
    headers: HeaderMap,
    body: Body,
) -> AppResult<Response> {
    let Query(query) = query?;
    let path = RelPath::parse(&path)?;
    let seed = query.seed()?;
    let head = version_matching(&state, &path, &headers).await?;
    let params = params_of(head.size, query.block_size, seed)?;
    let body = read_body_within(state.config.body_timeout, body, 16 << 20, "a need").await?;
    let need = finer_need(&body, &params)?;
    let mut reader =
        ObjectReader::new(state.store.bucket.clone(), state.store.keys.version(&head.version), head.size);
    let hashes = tokio::task::spawn_blocking(move || {
        PieceHashes::compute(&params, need.level, &need.refine, &mut reader)
            .map_err(|e| store_read_error("reading a version", e))
    })
    .await
    .map_err(|e| AppError::internal("hashing pieces", e))??;
    Ok(binary(hashes.encode()))
}

/// `POST /api/v2/data/{path}`: the literal ranges a need names, in frames.
async fn literal_data(
    State(state): Shared,
    Path(path): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> AppResult<Response> {
    let path = RelPath::parse(&path)?;
    let head = version_matching(&state, &path, &headers).await?;
    let body = read_body_within(state.config.body_timeout, body, 16 << 20, "a need").await?;
    let need = Need::decode(&body, head.size)
        .map_err(|e| AppError::new(ErrorKind::BadDeltaMessage, e.to_string()))?;
    let pieces: Vec<Range<u64>> = need
        .literal
        .iter()
        .flat_map(|r| {
            diffcopy_core::delta::pieces(r.clone(), DOWNLOAD_FRAME.min(u64::from(MAX_FRAME)) as u32)
        })
        .collect();
    let (bucket, key, stats) =
        (state.store.bucket.clone(), state.store.keys.version(&head.version), state.stats.clone());
    let head_frame =
        futures_util::stream::once(async { Ok::<_, std::io::Error>(Bytes::from_static(&FRAMES_HEADER)) });
    let frames = futures_util::stream::iter(pieces).then(move |range| {
        let (bucket, key, stats) = (bucket.clone(), key.clone(), stats.clone());
        async move {
            let bytes = read_range(&bucket, &key, range.clone()).await.map_err(std::io::Error::other)?;
            let mut frame = Vec::with_capacity(bytes.len() + 17);
            push_frame(&mut frame, range.start, &bytes);
            stats.literal_sent(frame.len() as u64);
            Ok::<_, std::io::Error>(Bytes::from(frame))
        }
    });
    Ok(binary(Body::from_stream(head_frame.chain(frames))))
}

//! Protocol v2 over HTTP (docs/api.md, "Protocol v2"): uploads searched by
//! the server, and what a downloading client's own search asks for.

use std::ops::Range;
use std::os::unix::fs::FileExt;
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use diffcopy_core::delta::{DeltaParams, FRAMES_HEADER, Levels, MAX_FRAME, Need, PieceHashes};
use futures_util::StreamExt as _;
use serde::Deserialize;

use super::blocking;
use super::uploads::read_body_limited;
use crate::frames::push_frame;
use crate::fs::{FileReader, FileVersion, RelPath};
use crate::limits::{DEFAULT_BLOCK_SIZE, check_block_size};
use crate::serve::access::Access;
use crate::serve::error::{AppError, AppResult, ErrorKind};
use crate::serve::hooks::commit_and_report;
use crate::serve::locks::{ReadHold, holding};
use crate::serve::memory;
use crate::serve::state::AppState;
use crate::serve::v2::{Created, NewDelta};

/// The media type of protocol v2's binary messages.
pub(crate) const DELTA_TYPE: &str = "application/vnd.diffcopy.delta";
/// The most bytes one data request may carry.
pub(crate) const MAX_DATA_BODY: u64 = 64 << 20;
/// The most bytes of literal data one download frame carries.
pub(crate) const DOWNLOAD_FRAME: u64 = 4 << 20;

/// A protocol v2 binary message as a response.
pub(crate) fn binary(bytes: impl Into<Body>) -> Response {
    ([(header::CONTENT_TYPE, HeaderValue::from_static(DELTA_TYPE))], bytes.into()).into_response()
}

/// `POST /api/v2/uploads`.
pub(super) async fn create(
    State(state): State<Arc<AppState>>,
    Extension(access): Extension<Access>,
    body: Body,
) -> AppResult<impl IntoResponse> {
    let body = read_body_limited(&state, body, 64 << 10, "an upload request").await?;
    let request: NewDelta = serde_json::from_slice(&body)
        .map_err(|e| AppError::new(ErrorKind::BadJson, format!("the upload request is not valid: {e}")))?;
    access.may_upload(&request.path, request.size)?;
    let state2 = state.clone();
    let owner = access.owner();
    let upload = blocking("opening an upload", move || {
        state2.admit_upload(|| state2.deltas.create(&state2.root, &state2.config, request, owner))
    })
    .await?;
    state.stats.delta_upload_created();
    tracing::info!(id = %upload.id, path = %upload.path, size = upload.params.file_size, who = access.who(), "v2 upload opened");
    let created = Created {
        id: upload.id.clone(),
        path: upload.path.to_string(),
        size: upload.params.file_size,
        block_size: upload.params.levels.block_size(),
        levels: upload.params.levels.sizes().to_vec(),
        seed: format!("{:016x}", upload.params.seed),
        expires_in_secs: state.config.upload_ttl.as_secs(),
        data_batch: None,
        status: upload.status(),
    };
    Ok((StatusCode::CREATED, Json(created)))
}

/// `POST /api/v2/uploads/{id}/hashes`: a level's hashes in, a need out.
pub(super) async fn hashes(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    body: Body,
) -> AppResult<Response> {
    let upload = state.deltas.get(&id)?;
    let limit = upload
        .next_hashes_len()
        .ok_or_else(|| AppError::new(ErrorKind::SearchOver, "this upload expects no hashes now"))?;
    let body = read_body_limited(&state, body, limit, "the hashes").await?;
    // The search reads the old version: never in the middle of a commit in place.
    let _hold = state.read_hold(&upload.path).await?;
    let (need, work) = state.deltas.hashes(&id, body).await?;
    state.stats.searched(work.rolled, work.hashed);
    Ok(binary(need.encode()))
}

/// `POST /api/v2/uploads/{id}/data`: literal frames.
pub(super) async fn data(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    body: Body,
) -> AppResult<StatusCode> {
    let upload = state.deltas.get(&id)?;
    let body = read_body_limited(&state, body, MAX_DATA_BODY, "literal data").await?;
    let faults = state.config.fault_hook.clone();
    let stored = blocking("storing literal data", move || upload.put_data(&body, faults.as_ref())).await?;
    state.stats.literal_received(stored);
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /api/v2/uploads/{id}`.
pub(super) async fn status(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
) -> AppResult<impl IntoResponse> {
    Ok(Json(state.deltas.get(&id)?.status()))
}

/// `POST /api/v2/uploads/{id}/commit`.
pub(super) async fn commit(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
) -> AppResult<impl IntoResponse> {
    let owner = state.deltas.get(&id)?.owner.clone();
    let (work, session) = (state.clone(), id.clone());
    let commit = async move { work.deltas.commit(&session, work.clone()).await };
    let outcome = commit_and_report(state.hooks.clone(), owner.clone(), "v2", commit).await?;
    state.stats.delta_upload_committed();
    tracing::info!(id = %id, sub = owner.as_deref().unwrap_or("-"), "v2 upload committed");
    memory::release_freed().await;
    Ok(Json(outcome))
}

/// `DELETE /api/v2/uploads/{id}`.
pub(super) async fn abort(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
) -> AppResult<StatusCode> {
    let state2 = state.clone();
    blocking("aborting an upload", move || state2.deltas.abort(&id)).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The query of `GET /api/v2/signatures/{path}`.
#[derive(Debug, Deserialize)]
pub(crate) struct BlockQuery {
    pub(crate) block_size: Option<u32>,
}

/// The query of `POST /api/v2/hashes/{path}`.
#[derive(Debug, Deserialize)]
pub(crate) struct PieceQuery {
    pub(crate) block_size: Option<u32>,
    /// The seed of the block hashes, 16 hex digits.
    seed: String,
}

impl PieceQuery {
    /// The seed; 400 `bad_query` unless it is 16 hex digits.
    pub(crate) fn seed(&self) -> AppResult<u64> {
        u64::from_str_radix(&self.seed, 16)
            .map_err(|_| AppError::new(ErrorKind::BadQuery, "seed must be 16 hex digits"))
    }
}

/// The version `If-Match` names: the one a download's hashes came from
/// (400 `missing_if_match` without it).
pub(crate) fn if_match(headers: &HeaderMap) -> AppResult<&str> {
    headers.get(header::IF_MATCH).and_then(|v| v.to_str().ok()).ok_or_else(|| {
        AppError::new(ErrorKind::MissingIfMatch, "If-Match must name the version the hashes came from")
    })
}

/// Opens `path` and checks it is still the version `If-Match` names; the
/// hold is to be kept while the file is read.
async fn open_version(
    state: &Arc<AppState>,
    path: RelPath,
    headers: &HeaderMap,
) -> AppResult<(std::fs::File, ReadHold)> {
    let wanted = if_match(headers)?.to_owned();
    let hold = state.read_hold(&path).await?;
    let state = state.clone();
    let file = blocking("opening a file", move || {
        let file = state.root.open_read(&path).map_err(|e| AppError::from_fs(e, &path))?;
        let version = FileVersion::of(&file).map_err(|e| AppError::internal("reading metadata", e))?;
        if version.etag() != wanted {
            return Err(crate::serve::commit::target_changed(&path));
        }
        Ok(file)
    })
    .await?;
    Ok((file, hold))
}

/// A downloading client's need of finer hashes, checked against `params`.
pub(crate) fn finer_need(body: &[u8], params: &DeltaParams) -> AppResult<Need> {
    let need = Need::decode(body, params.file_size)
        .map_err(|e| AppError::new(ErrorKind::BadDeltaMessage, e.to_string()))?;
    if params.levels.size(usize::from(need.level)).is_none() || need.level == 0 {
        return Err(AppError::new(
            ErrorKind::BadDeltaMessage,
            format!("level {} is not a finer level", need.level),
        ));
    }
    Ok(need)
}

/// The parameters of a `size`-byte file's hashes at `block_size` (default
/// 1 MiB) under `seed`.
pub(crate) fn params_of(size: u64, block_size: Option<u32>, seed: u64) -> AppResult<DeltaParams> {
    let block_size = block_size.unwrap_or(DEFAULT_BLOCK_SIZE);
    check_block_size(block_size)?;
    let levels =
        Levels::for_block(block_size).map_err(|e| AppError::new(ErrorKind::BadBlockSize, e.to_string()))?;
    Ok(DeltaParams { file_size: size, seed, levels })
}

/// `GET /api/v2/signatures/{path}`: the file's block hashes (cached per
/// version), its ETag beside them.
pub(super) async fn signature(
    State(state): State<Arc<AppState>>,
    Path(path): Path<String>,
    query: Result<Query<BlockQuery>, QueryRejection>,
) -> AppResult<Response> {
    let Query(query) = query?;
    let path = RelPath::parse(&path)?;
    let block_size = query.block_size.unwrap_or(DEFAULT_BLOCK_SIZE);
    check_block_size(block_size)?;
    let _hold = state.read_hold(&path).await?;
    let state2 = state.clone();
    let file = blocking("opening a file", move || {
        state2.root.open_read(&path).map_err(|e| AppError::from_fs(e, &path))
    })
    .await?;
    let (hashes, version) = state.signer.block_hashes(file, block_size).await?;
    let mut response = binary(hashes.to_vec());
    if let Ok(etag) = HeaderValue::from_str(&version.etag()) {
        response.headers_mut().insert(header::ETAG, etag);
    }
    Ok(response)
}

/// `POST /api/v2/hashes/{path}`: the piece hashes of the ranges a client's
/// need asks to refine, in the file version `If-Match` names.
pub(super) async fn piece_hashes(
    State(state): State<Arc<AppState>>,
    Path(path): Path<String>,
    query: Result<Query<PieceQuery>, QueryRejection>,
    headers: HeaderMap,
    body: Body,
) -> AppResult<Response> {
    let Query(query) = query?;
    let path = RelPath::parse(&path)?;
    let seed = query.seed()?;
    let (file, _hold) = open_version(&state, path, &headers).await?;
    let size = file.metadata().map_err(|e| AppError::internal("reading metadata", e))?.len();
    let params = params_of(size, query.block_size, seed)?;
    let body = read_body_limited(&state, body, 16 << 20, "a need").await?;
    let need = finer_need(&body, &params)?;
    let hashes = blocking("hashing pieces", move || {
        PieceHashes::compute(&params, need.level, &need.refine, &mut FileReader::with_len(&file, size))
            .map_err(|e| AppError::internal("reading a file", e))
    })
    .await?;
    Ok(binary(hashes.encode()))
}

/// `POST /api/v2/data/{path}`: the literal ranges a client's need names, in
/// frames (zstd where that is smaller), streamed from the file version
/// `If-Match` names.
pub(super) async fn literal_data(
    State(state): State<Arc<AppState>>,
    Path(path): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> AppResult<Response> {
    let path = RelPath::parse(&path)?;
    let (file, hold) = open_version(&state, path, &headers).await?;
    let file = Arc::new(file);
    let size = file.metadata().map_err(|e| AppError::internal("reading metadata", e))?.len();
    let body = read_body_limited(&state, body, 16 << 20, "a need").await?;
    let need =
        Need::decode(&body, size).map_err(|e| AppError::new(ErrorKind::BadDeltaMessage, e.to_string()))?;
    let pieces: Vec<Range<u64>> = need
        .literal
        .iter()
        .flat_map(|r| diffcopy_core::delta::pieces(r.clone(), DOWNLOAD_FRAME as u32))
        .collect();
    let stats = state.stats.clone();
    let head =
        futures_util::stream::once(async { Ok::<_, std::io::Error>(Bytes::from_static(&FRAMES_HEADER)) });
    let frames = futures_util::stream::iter(pieces).then(move |range| {
        let (file, stats) = (file.clone(), stats.clone());
        async move {
            let frame = tokio::task::spawn_blocking(move || encode_frame(&file, range))
                .await
                .map_err(std::io::Error::other)??;
            stats.literal_sent(frame.len() as u64);
            Ok::<_, std::io::Error>(Bytes::from(frame))
        }
    });
    let mut response =
        Body::from_stream(holding(futures_util::StreamExt::chain(head, frames), hold)).into_response();
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(DELTA_TYPE));
    Ok(response)
}

/// One frame of `range` (at most [`MAX_FRAME`] bytes).
fn encode_frame(file: &std::fs::File, range: Range<u64>) -> std::io::Result<Vec<u8>> {
    let len = (range.end - range.start).min(u64::from(MAX_FRAME)) as usize;
    let mut bytes = vec![0u8; len];
    file.read_exact_at(&mut bytes, range.start)?;
    let mut frame = Vec::with_capacity(len + 17);
    push_frame(&mut frame, range.start, &bytes);
    Ok(frame)
}

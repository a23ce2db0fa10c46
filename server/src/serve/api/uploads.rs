//! Upload sessions over HTTP.

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::{Extension, Json};
use serde_json::json;

use super::blocking;
use crate::serve::access::Access;
use crate::serve::body::read_body_within;
use crate::serve::error::{AppError, AppResult, ErrorKind};
use crate::serve::hooks::commit_and_report;
use crate::serve::memory;
use crate::serve::state::AppState;
use crate::serve::upload::NewUpload;

/// `POST /api/v1/uploads`.
pub(super) async fn create(
    State(state): State<Arc<AppState>>,
    Extension(access): Extension<Access>,
    body: Body,
) -> AppResult<impl IntoResponse> {
    let body = read_body_limited(&state, body, 64 << 10, "an upload request").await?;
    let request: NewUpload = serde_json::from_slice(&body)
        .map_err(|e| AppError::new(ErrorKind::BadJson, format!("the upload request is not valid: {e}")))?;
    access.may_upload(&request.path, request.size)?;
    let state2 = state.clone();
    let owner = access.owner();
    let upload = blocking("opening an upload", move || {
        state2.admit_upload(|| state2.uploads.create(&state2.root, &state2.config, request, owner))
    })
    .await?;
    state.stats.upload_created();
    tracing::info!(id = %upload.id, path = %upload.path, size = upload.header.file_size(), who = access.who(), "upload opened");
    let body = json!({
        "id": upload.id,
        "path": upload.path.as_str(),
        "size": upload.header.file_size(),
        "block_size": upload.header.block_size(),
        "hash": upload.header.algorithm().name(),
        "block_count": upload.header.block_count(),
        "expires_in_secs": state.config.upload_ttl.as_secs(),
    });
    Ok((StatusCode::CREATED, Json(body)))
}

/// `GET /api/v1/uploads/{id}`.
pub(super) async fn status(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
) -> AppResult<impl IntoResponse> {
    Ok(Json(state.uploads.get(&id)?.status()))
}

/// `DELETE /api/v1/uploads/{id}`.
pub(super) async fn abort(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
) -> AppResult<StatusCode> {
    let state2 = state.clone();
    blocking("aborting an upload", move || state2.uploads.abort(&id)).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Reads a body of at most `limit` bytes within the server's body timeout;
/// longer bodies are refused with 413 as soon as they pass the limit, without
/// reading the rest, and slower ones with 408.
pub(super) async fn read_body_limited(
    state: &AppState,
    body: Body,
    limit: u64,
    what: &str,
) -> AppResult<Bytes> {
    read_body_within(state.config.body_timeout, body, limit, what).await
}

/// `PUT /api/v1/uploads/{id}/blocks/{index}`.
pub(super) async fn put_block(
    State(state): State<Arc<AppState>>,
    Path((id, index)): Path<(String, String)>,
    headers: HeaderMap,
    body: Body,
) -> AppResult<StatusCode> {
    let index: u64 = index
        .parse()
        .map_err(|_| AppError::new(ErrorKind::BadIndex, format!("block index {index:?} is not a number")))?;
    let upload = state.uploads.get(&id)?;
    let digest = headers
        .get("x-block-digest")
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| AppError::new(ErrorKind::MissingDigest, "the X-Block-Digest header is required"))?
        .to_owned();
    let limit = u64::from(upload.header.block_size());
    let bytes = read_body_limited(&state, body, limit, "a block").await?;
    let len = bytes.len() as u64;
    let faults = state.config.fault_hook.clone();
    blocking("storing a block", move || upload.put_block(index, &digest, &bytes, faults.as_ref())).await?;
    state.stats.block_received(len);
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /api/v1/uploads/{id}/commit` with the source's binary signature.
pub(super) async fn commit(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    body: Body,
) -> AppResult<impl IntoResponse> {
    let upload = state.uploads.get(&id)?;
    let limit = upload.header.encoded_len();
    let signature = read_body_limited(&state, body, limit, "the signature").await?;
    let work = state.clone();
    let commit = async move { work.uploads.commit(&id, &work.signer, work.clone(), signature).await };
    let outcome = commit_and_report(state.hooks.clone(), upload.owner.clone(), "v1", commit).await?;
    state.stats.upload_committed();
    tracing::info!(id = %upload.id, path = %upload.path, sub = upload.owner.as_deref().unwrap_or("-"), "upload committed");
    drop(upload);
    memory::release_freed().await;
    Ok(Json(outcome))
}

//! Protocol v2's uploads to a directory over HTTP (docs/api.md, "Protocol
//! v2"); its downloads are the read side's (`serve/reads/v2.rs`).

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};

use super::blocking;
use super::uploads::read_body_limited;
use crate::serve::access::Access;
use crate::serve::error::{AppError, AppResult, ErrorKind};
use crate::serve::hooks::commit_and_report;
use crate::serve::memory;
use crate::serve::state::AppState;
use crate::serve::v2::{CommitRequest, Created, MAX_COMMIT_REQUEST, NewDelta, binary};

/// The most bytes one data request may carry.
pub(crate) const MAX_DATA_BODY: u64 = 64 << 20;

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
    body: Body,
) -> AppResult<impl IntoResponse> {
    let body = read_body_limited(&state, body, MAX_COMMIT_REQUEST, "a commit request").await?;
    let request = CommitRequest::parse(&body)?;
    let owner = state.deltas.get(&id)?.owner.clone();
    let (work, session) = (state.clone(), id.clone());
    let commit = async move { work.deltas.commit(&session, work.clone(), request.mtime()).await };
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

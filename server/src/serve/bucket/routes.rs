//! The HTTP routes of a server over a bucket: the page, health and stats,
//! protocol v2 uploads, and the read side (`serve/reads/`, over
//! `bucket/reads.rs`). API v1 uploads and pdiffcopy's writes answer 501:
//! their blocks-in-place model has no object-store form worth having
//! (docs/s3.md).

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use axum::{Extension, Json};
use serde_json::json;

use super::BucketState;
use crate::serve::access::{Access, authorize};
use crate::serve::api::cors::cors;
use crate::serve::api::delta::MAX_DATA_BODY;
use crate::serve::api::files::no_route;
use crate::serve::body::read_body_within;
use crate::serve::error::{AppError, AppResult, ErrorKind};
use crate::serve::hooks::commit_and_report;
use crate::serve::memory;
use crate::serve::reads;
use crate::serve::v2::{CommitRequest, Created, MAX_COMMIT_REQUEST, NewDelta, binary};

type Shared = State<Arc<BucketState>>;

/// The literal bytes a client is asked to put in one data request: each
/// request's contiguous data is one object, and one of 5 MiB or more
/// becomes a copy part of the commit instead of being uploaded again.
const DATA_BATCH: u64 = 6 << 20;

/// The whole application over a bucket, for `run_bucket` or oneshot tests.
pub fn bucket_app(state: Arc<BucketState>) -> Router {
    let api = crate::serve::remove::routes(reads::routes(Router::new()))
        .route("/api/v1/health", get(health))
        .route("/api/v1/stats", get(stats))
        .route("/api/v1/uploads", any(not_supported))
        .route("/api/v1/uploads/{*rest}", any(not_supported))
        .route("/api/v2/uploads", post(create))
        .route("/api/v2/uploads/{id}", get(status).delete(abort))
        .route("/api/v2/uploads/{id}/hashes", post(hashes))
        .route("/api/v2/uploads/{id}/data", post(data))
        .route("/api/v2/uploads/{id}/commit", post(commit))
        .route("/api/v2/batch", post(crate::serve::batch::batch::<BucketState>))
        .route("/blocks", post(not_supported))
        .route("/resize", any(not_supported))
        .layer(DefaultBodyLimit::disable())
        .route_layer(axum::middleware::from_fn_with_state(state.clone(), authorize::<BucketState>));
    let timeout = state.config.body_timeout;
    let app = api
        .merge(crate::serve::assets::routes())
        .fallback(no_route)
        .layer(axum::middleware::from_fn_with_state(state.clone(), cors::<BucketState>))
        .with_state(state);
    crate::serve::multi::with_multi(app, timeout)
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
async fn commit(State(state): Shared, Path(id): Path<String>, body: Body) -> AppResult<impl IntoResponse> {
    let body =
        read_body_within(state.config.body_timeout, body, MAX_COMMIT_REQUEST, "a commit request").await?;
    let request = CommitRequest::parse(&body)?;
    let owner = state.store.session_scope(&id).await?.and_then(|s| s.owner);
    let (store, session) = (state.store.clone(), id.clone());
    let commit = async move { store.commit(&session, request.mtime).await };
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

//! Health, counters, and the answer to a route that does not exist.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::Uri;
use axum::response::IntoResponse;
use serde_json::json;

use crate::serve::error::{AppError, ErrorKind};
use crate::serve::state::AppState;

/// `GET /api/v1/health`.
pub(super) async fn health() -> impl IntoResponse {
    Json(json!({ "status": "ok", "version": env!("CARGO_PKG_VERSION"), "protocols": ["v1", "v2"] }))
}

/// `GET /api/v1/stats`.
pub(super) async fn stats(State(state): State<Arc<AppState>>) -> impl IntoResponse {
    Json(state.stats.snapshot())
}

/// Anything else.
pub(crate) async fn no_route(uri: Uri) -> AppError {
    AppError::new(ErrorKind::NoRoute, format!("nothing is served at {}", uri.path()))
}

//! The HTTP routes of a server over a directory: API v1 and protocol v2
//! uploads, pdiffcopy's writes, the read side (`serve/reads/`, over
//! `reads.rs`) and the page.

mod batch;
pub(crate) mod compat;
pub(crate) mod cors;
pub(crate) mod delta;
pub(crate) mod files;
mod reads;
pub(crate) mod uploads;

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post, put};

use crate::serve::error::{AppError, AppResult};
use crate::serve::state::AppState;

/// Runs blocking file work off the async threads; `what` names it in errors.
pub(super) async fn blocking<T: Send + 'static>(
    what: &'static str,
    f: impl FnOnce() -> AppResult<T> + Send + 'static,
) -> AppResult<T> {
    tokio::task::spawn_blocking(f).await.map_err(|e| AppError::internal(what, e))?
}

/// The whole application as a router, for `run` or for oneshot tests.
pub fn app(state: Arc<AppState>) -> Router {
    let api = crate::serve::remove::routes(crate::serve::reads::routes(Router::new()))
        .route("/api/v1/health", get(files::health))
        .route("/api/v1/stats", get(files::stats))
        .route("/api/v1/uploads", post(uploads::create))
        .route("/api/v1/uploads/{id}", get(uploads::status).delete(uploads::abort))
        .route("/api/v1/uploads/{id}/blocks/{index}", put(uploads::put_block))
        .route("/api/v1/uploads/{id}/commit", post(uploads::commit))
        .route("/api/v2/uploads", post(delta::create))
        .route("/api/v2/uploads/{id}", get(delta::status).delete(delta::abort))
        .route("/api/v2/uploads/{id}/hashes", post(delta::hashes))
        .route("/api/v2/uploads/{id}/data", post(delta::data))
        .route("/api/v2/uploads/{id}/commit", post(delta::commit))
        .route("/api/v2/batch", post(crate::serve::batch::batch::<AppState>))
        .route("/blocks", post(compat::write_block))
        .route("/resize", post(compat::resize))
        // Block bodies are checked against their own limits in the handlers.
        .layer(DefaultBodyLimit::disable())
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            crate::serve::access::authorize::<AppState>,
        ));
    let timeout = state.config.body_timeout;
    let app = api
        .merge(crate::serve::assets::routes())
        .fallback(files::no_route)
        .layer(axum::middleware::from_fn_with_state(state.clone(), cors::cors::<AppState>))
        .with_state(state);
    crate::serve::multi::with_multi(app, timeout)
}

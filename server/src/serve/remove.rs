//! `DELETE /api/v2/files/{path}` (docs/api.md, "Removing a file"): a file
//! removed, as `diffcopy -r --delete` asks of a server. With `If-Match`,
//! only the version it names (else 412 `target_changed`). A scoped token
//! needs `delete` on the path. The directory removes the file under the
//! path's commit lock, so a commit and a removal never interleave; the
//! bucket removes the pointer and marks the version superseded, for the
//! sweep to remove after the grace period (a download that began on it
//! still finishes).

use std::future::Future;
use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::routing::delete;

use crate::fs::RelPath;
use crate::serve::error::AppResult;
use crate::serve::served::Served;

/// What a store does to remove a file.
pub(crate) trait Removes: Served {
    /// Removes `path` if it exists and, when `if_match` names one, is that
    /// version: 404 `not_found`, 412 `target_changed`.
    fn remove(
        self: &Arc<Self>,
        path: RelPath,
        if_match: Option<String>,
    ) -> impl Future<Output = AppResult<()>> + Send;
}

/// The route, added to a store's `router` (before its layers).
pub(crate) fn routes<S: Removes>(router: Router<Arc<S>>) -> Router<Arc<S>> {
    router.route("/api/v2/files/{*path}", delete(remove::<S>))
}

async fn remove<S: Removes>(
    State(state): State<Arc<S>>,
    Path(path): Path<String>,
    headers: HeaderMap,
) -> AppResult<StatusCode> {
    let path = RelPath::parse(&path)?;
    let if_match = headers.get(header::IF_MATCH).and_then(|v| v.to_str().ok()).map(str::to_owned);
    state.remove(path.clone(), if_match).await?;
    tracing::info!(path = %path, "file removed");
    Ok(StatusCode::NO_CONTENT)
}

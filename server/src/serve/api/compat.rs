//! pdiffcopy 1.0.1's writes (`POST /blocks`, `/resize`), so its client
//! uploads to a directory; its reads are the read side's
//! (`serve/reads/signatures.rs`), for both stores.
//!
//! `filename` is pdiffcopy's absolute path, mapped below the root with the
//! same confinement as API v1. These endpoints write in place, as pdiffcopy
//! does: its protocol has no commit step.

use std::os::unix::fs::FileExt;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use serde::Deserialize;

use super::blocking;
use super::uploads::read_body_limited;
use crate::fs::RelPath;
use crate::limits::MAX_BLOCK_SIZE;
use crate::serve::error::{AppError, AppResult};
use crate::serve::reads::{BlockQuery, query};
use crate::serve::state::AppState;

#[derive(Debug, Deserialize)]
pub(super) struct ResizeQuery {
    filename: String,
    size: u64,
}

fn check_size(state: &AppState, end: u64) -> AppResult<()> {
    if end > state.config.max_file_size {
        return Err(AppError::file_too_large(end, state.config.max_file_size));
    }
    Ok(())
}

/// `POST /blocks?filename=&offset=`: writes the body in place.
pub(super) async fn write_block(
    State(state): State<Arc<AppState>>,
    q: Result<Query<BlockQuery>, QueryRejection>,
    body: Body,
) -> AppResult<StatusCode> {
    let q = query(q)?;
    let path = RelPath::from_pdiffcopy(&q.filename)?;
    let bytes = read_body_limited(&state, body, u64::from(MAX_BLOCK_SIZE), "a block").await?;
    let end = q.offset.saturating_add(bytes.len() as u64);
    check_size(&state, end)?;
    let written = bytes.len() as u64;
    let stats = state.stats.clone();
    // In place, as pdiffcopy does, but never in the middle of a commit.
    let commit_lock = state.locks.commit(&path).await;
    blocking("writing a block", move || {
        let _commit_lock = commit_lock;
        let file = state.root.open_write(&path, false).map_err(|e| AppError::from_fs(e, &path))?;
        file.write_all_at(&bytes, q.offset).map_err(|e| AppError::from_fs(e.into(), &path))
    })
    .await?;
    stats.pdiffcopy_written(written);
    Ok(StatusCode::OK)
}

/// `POST /resize?filename=&size=`: creates parent directories and the file
/// when missing, then truncates or extends it.
pub(super) async fn resize(
    State(state): State<Arc<AppState>>,
    q: Result<Query<ResizeQuery>, QueryRejection>,
) -> AppResult<StatusCode> {
    let q = query(q)?;
    let path = RelPath::from_pdiffcopy(&q.filename)?;
    check_size(&state, q.size)?;
    let commit_lock = state.locks.commit(&path).await;
    blocking("resizing a file", move || {
        let _commit_lock = commit_lock;
        state.root.parent_dir(&path, true).map_err(|e| AppError::from_fs(e, &path))?;
        let file = state.root.open_write(&path, true).map_err(|e| AppError::from_fs(e, &path))?;
        file.set_len(q.size).map_err(|e| AppError::from_fs(e.into(), &path))
    })
    .await?;
    Ok(StatusCode::OK)
}

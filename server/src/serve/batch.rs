//! `POST /api/v2/batch` (docs/api.md, "Small files in a batch"): many small
//! files in one request, each committed atomically and verified on its own,
//! each with its own answer. A tree's new small files travel so, instead of
//! one protocol v2 upload (five round trips) each.
//!
//! The body is a 4-byte little-endian length, that many bytes of JSON
//! naming the files (path, size, SHA-256, mtime, what the target must be),
//! then the files' bytes one after the other. What is wrong with the whole
//! request is a 4xx; what is wrong with one file (its path, its token, its
//! hash, a changed target) is that file's answer, and the others land.
//! The stores commit the files that pass ([`Batches`]); a directory writes
//! them all, makes them durable with one `syncfs`, renames each under its
//! path's commit lock and makes the renames durable with a second.

use std::future::Future;
use std::sync::Arc;

use axum::Extension;
use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::response::IntoResponse;
use diffcopy_core::hex;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::fs::RelPath;
use crate::parts::next_part;
use crate::serve::access::Access;
use crate::serve::body::read_body_within;
use crate::serve::error::{AppError, AppResult, ErrorKind};
use crate::serve::hooks::Committed;
use crate::serve::served::Served;

/// The largest batch body.
pub(crate) const MAX_BATCH_BODY: u64 = 64 << 20;
/// The most files in one batch.
pub(crate) const MAX_BATCH_FILES: usize = 1000;
/// The largest manifest.
const MAX_MANIFEST: usize = 1 << 20;

/// What the target must be for a file of a batch to land.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Expected {
    /// Anything: the file replaces whatever is there.
    Any,
    /// Nothing: the file is new.
    Absent,
    /// The version with this ETag.
    Etag(String),
}

impl Expected {
    /// Whether a target whose ETag is `current` (`None`: absent) is what this expects.
    pub(crate) fn holds(&self, current: Option<&str>) -> bool {
        match self {
            Self::Any => true,
            Self::Absent => current.is_none(),
            Self::Etag(etag) => current == Some(etag.as_str()),
        }
    }
}

/// A file of a batch that passed the checks, for a store to commit.
#[derive(Clone, Debug)]
pub(crate) struct Incoming {
    pub(crate) path: RelPath,
    pub(crate) bytes: Bytes,
    /// Milliseconds since the epoch.
    pub(crate) mtime: Option<i64>,
    pub(crate) expected: Expected,
}

/// A committed file: its new ETag, and how it was installed.
#[derive(Debug)]
pub(crate) struct Landed {
    pub(crate) etag: String,
    /// `replace` or `s3`, as the webhook says.
    pub(crate) commit_mode: &'static str,
}

impl Incoming {
    /// What the webhook says of this file, once `landed`.
    fn committed(&self, landed: &Landed) -> Committed {
        Committed {
            path: self.path.to_string(),
            size: self.bytes.len() as u64,
            etag: landed.etag.clone(),
            bytes_received: self.bytes.len() as u64,
            commit_mode: landed.commit_mode,
        }
    }
}

/// What a store does with a batch.
pub(crate) trait Batches: Served {
    /// Commits each of `files`, each atomically: one outcome per file, in order.
    fn commit_batch(
        self: &Arc<Self>,
        files: Vec<Incoming>,
    ) -> impl Future<Output = Vec<AppResult<Landed>>> + Send;

    /// Queues the webhook of a file committed by `sub`.
    fn report(self: &Arc<Self>, done: Committed, sub: Option<String>) -> impl Future<Output = ()> + Send;
}

/// One file as the manifest names it.
#[derive(Debug, Deserialize)]
struct Named {
    path: String,
    size: u64,
    /// 64 hex digits.
    sha256: String,
    #[serde(default)]
    mtime: Option<i64>,
    /// The version the target must be.
    #[serde(default)]
    base_etag: Option<String>,
    /// The target must not exist.
    #[serde(default)]
    new: bool,
}

#[derive(Debug, Deserialize)]
struct Manifest {
    files: Vec<Named>,
}

/// One file's answer.
#[derive(Debug, Serialize)]
struct Answer {
    path: String,
    status: u16,
    #[serde(skip_serializing_if = "Option::is_none")]
    etag: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    message: Option<String>,
}

impl Answer {
    fn of(path: &str, outcome: &AppResult<Landed>) -> Self {
        match outcome {
            Ok(landed) => Self {
                path: path.to_owned(),
                status: 200,
                etag: Some(landed.etag.clone()),
                error: None,
                message: None,
            },
            Err(e) => Self {
                path: path.to_owned(),
                status: e.status().as_u16(),
                etag: None,
                error: Some(e.kind().code()),
                message: Some(e.message().to_owned()),
            },
        }
    }
}

fn bad_body(message: impl Into<String>) -> AppError {
    AppError::new(ErrorKind::BadBody, message)
}

/// Splits a batch body into its manifest and the bytes after it.
fn split(body: &Bytes) -> AppResult<(Manifest, Bytes)> {
    let mut end = 0;
    let json = next_part(body, &mut end).ok_or_else(|| bad_body("the body ends inside the manifest"))?;
    if json.len() > MAX_MANIFEST {
        return Err(bad_body(format!("the manifest is over {MAX_MANIFEST} bytes")));
    }
    let manifest: Manifest = serde_json::from_slice(&json)
        .map_err(|e| AppError::new(ErrorKind::BadJson, format!("the batch's manifest is not valid: {e}")))?;
    if manifest.files.len() > MAX_BATCH_FILES {
        return Err(bad_body(format!("a batch holds at most {MAX_BATCH_FILES} files")));
    }
    let data = body.slice(end..);
    let named: u64 = manifest.files.iter().map(|f| f.size).fold(0, u64::saturating_add);
    if named != data.len() as u64 {
        return Err(bad_body(format!(
            "the manifest names {named} bytes of files; the body holds {}",
            data.len()
        )));
    }
    Ok((manifest, data))
}

/// Checks one named file against its bytes and the token: an [`Incoming`].
fn check(named: &Named, bytes: Bytes, access: &Access, max_file_size: u64) -> AppResult<Incoming> {
    let path = RelPath::parse(&named.path)?;
    access.may_upload(path.as_str(), named.size)?;
    if named.size > max_file_size {
        return Err(AppError::file_too_large(named.size, max_file_size));
    }
    if !hex::encode(&Sha256::digest(&bytes)).eq_ignore_ascii_case(&named.sha256) {
        return Err(AppError::new(
            ErrorKind::DigestMismatch,
            format!("{path}: its bytes do not have the SHA-256 the manifest names"),
        ));
    }
    let expected = match (&named.base_etag, named.new) {
        (Some(_), true) => return Err(bad_body(format!("{path}: both new and base_etag"))),
        (Some(etag), false) => Expected::Etag(etag.clone()),
        (None, true) => Expected::Absent,
        (None, false) => Expected::Any,
    };
    Ok(Incoming { path, bytes, mtime: named.mtime, expected })
}

/// `POST /api/v2/batch`.
pub(crate) async fn batch<S: Batches>(
    State(state): State<Arc<S>>,
    Extension(access): Extension<Access>,
    body: Body,
) -> AppResult<impl IntoResponse> {
    let settings = state.settings();
    let body = read_body_within(settings.body_timeout, body, MAX_BATCH_BODY, "a batch").await?;
    let (manifest, data) = split(&body)?;
    let mut answers: Vec<Option<Answer>> = Vec::with_capacity(manifest.files.len());
    let mut incoming = Vec::new();
    let mut places = Vec::new();
    let mut seen = std::collections::HashSet::new();
    let mut at = 0usize;
    for named in &manifest.files {
        let bytes = data.slice(at..at + named.size as usize);
        at += named.size as usize;
        let checked = if seen.insert(named.path.as_str()) {
            check(named, bytes, &access, settings.max_file_size)
        } else {
            Err(AppError::new(ErrorKind::BadPath, format!("{} is named twice in one batch", named.path)))
        };
        match checked {
            Ok(file) => {
                places.push(answers.len());
                answers.push(None);
                incoming.push(file);
            }
            Err(e) => answers.push(Some(Answer::of(&named.path, &Err(e)))),
        }
    }
    // Committed on a task of its own: a client that goes away does not
    // stop a batch half done, and every file that lands is reported.
    let (store, sub) = (state.clone(), access.owner());
    let outcomes = tokio::spawn(async move {
        let outcomes = store.commit_batch(incoming.clone()).await;
        for (file, outcome) in incoming.iter().zip(&outcomes) {
            if let Ok(landed) = outcome {
                store.report(file.committed(landed), sub.clone()).await;
            }
        }
        incoming.into_iter().zip(outcomes).collect::<Vec<_>>()
    })
    .await
    .map_err(|e| AppError::internal("committing a batch", e))?;
    for (place, (file, outcome)) in places.into_iter().zip(outcomes) {
        answers[place] = Some(Answer::of(file.path.as_str(), &outcome));
    }
    let files: Vec<Answer> = answers.into_iter().flatten().collect();
    Ok(Json(serde_json::json!({ "files": files })))
}

//! The one error type handlers return: a status, a stable code and a message
//! for the client; anything internal goes to the log, not to the client.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use crate::fs::{FsError, PathError};
use crate::limits::LimitError;

/// An error answered as `{"error": code, "message": ..., ...extra}`.
#[derive(Debug)]
pub struct AppError {
    status: StatusCode,
    code: &'static str,
    message: String,
    extra: Map<String, Value>,
}

/// Shorthand for handler results.
pub type AppResult<T> = Result<T, AppError>;

impl AppError {
    /// An error with the given status, code and message.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self { status, code, message: message.into(), extra: Map::new() }
    }

    /// 400 with a code.
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    /// 404 for a file that does not exist.
    pub fn not_found(what: impl std::fmt::Display) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", format!("{what} does not exist"))
    }

    /// 500: the details are logged, the client hears only that it failed.
    pub fn internal(context: &str, err: impl std::fmt::Display) -> Self {
        tracing::error!("{context}: {err}");
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", format!("{context} failed on the server"))
    }

    /// Adds a field to the JSON body.
    pub fn with(mut self, key: &str, value: Value) -> Self {
        self.extra.insert(key.to_owned(), value);
        self
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The stable error code.
    pub fn code(&self) -> &'static str {
        self.code
    }

    /// Maps a file-system error on `path` to a client answer.
    pub(crate) fn from_fs(err: FsError, path: impl std::fmt::Display) -> Self {
        match err {
            FsError::NotFound => Self::not_found(path),
            FsError::OutsideRoot => Self::new(
                StatusCode::FORBIDDEN,
                "outside_root",
                format!("{path} resolves outside the served root"),
            ),
            FsError::NotAFile => Self::bad_request("not_a_file", format!("{path} is not a regular file")),
            FsError::Io(e) if e.kind() == std::io::ErrorKind::PermissionDenied => Self::new(
                StatusCode::FORBIDDEN,
                "permission_denied",
                format!("the server may not access {path}"),
            ),
            FsError::Io(e)
                if matches!(e.kind(), std::io::ErrorKind::StorageFull | std::io::ErrorKind::FileTooLarge) =>
            {
                tracing::warn!("{path}: {e}");
                Self::new(StatusCode::INSUFFICIENT_STORAGE, "no_space", "the server has no room for the file")
            }
            FsError::Io(e) => Self::internal(&format!("file operation on {path}"), e),
        }
    }
}

impl From<PathError> for AppError {
    fn from(err: PathError) -> Self {
        Self::bad_request("bad_path", err.to_string())
    }
}

impl From<LimitError> for AppError {
    fn from(err: LimitError) -> Self {
        let code = match err {
            LimitError::BlockSize { .. } => "bad_block_size",
            LimitError::TooManyBlocks { .. } => "too_many_blocks",
        };
        Self::bad_request(code, err.to_string())
    }
}

impl From<diffcopy_core::ParseAlgorithmError> for AppError {
    fn from(err: diffcopy_core::ParseAlgorithmError) -> Self {
        Self::bad_request("bad_hash", err.to_string())
    }
}

impl From<axum::extract::rejection::QueryRejection> for AppError {
    fn from(err: axum::extract::rejection::QueryRejection) -> Self {
        Self::bad_request("bad_query", err.body_text())
    }
}

impl std::fmt::Display for AppError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}: {}", self.status.as_u16(), self.code, self.message)
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let mut body = json!({ "error": self.code, "message": self.message });
        if let Value::Object(map) = &mut body {
            map.extend(self.extra);
        }
        (self.status, Json(body)).into_response()
    }
}

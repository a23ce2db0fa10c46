//! The one error type handlers return: a kind (which fixes the status and
//! the stable code the client sees) and a message; anything internal goes
//! to the log, not to the client.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use crate::fs::{FsError, PathError};
use crate::limits::LimitError;

/// Declares [`ErrorKind`]: each kind with its HTTP status and its code,
/// the one place either is written.
macro_rules! kinds {
    ($($kind:ident => $status:ident, $code:literal;)*) => {
        /// What went wrong, as the client can branch on it (docs/api.md,
        /// "Errors"): the status and the code follow from the kind.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum ErrorKind {
            $(
                #[doc = concat!("`", $code, "` (", stringify!($status), ")")]
                $kind,
            )*
        }

        impl ErrorKind {
            /// Every kind.
            #[cfg(test)]
            const ALL: &[ErrorKind] = &[$(Self::$kind,)*];

            /// The stable code in the answer's `error` field.
            pub fn code(self) -> &'static str {
                match self { $(Self::$kind => $code,)* }
            }

            /// The HTTP status answered.
            pub fn status(self) -> StatusCode {
                match self { $(Self::$kind => StatusCode::$status,)* }
            }
        }
    };
}

kinds! {
    BadBlockLength => BAD_REQUEST, "bad_block_length";
    BadBlockSize => BAD_REQUEST, "bad_block_size";
    BadBody => BAD_REQUEST, "bad_body";
    BadDeltaMessage => BAD_REQUEST, "bad_delta_message";
    BadDigest => BAD_REQUEST, "bad_digest";
    BadHash => BAD_REQUEST, "bad_hash";
    BadIndex => BAD_REQUEST, "bad_index";
    BadJson => BAD_REQUEST, "bad_json";
    BadPath => BAD_REQUEST, "bad_path";
    BadQuery => BAD_REQUEST, "bad_query";
    BadRange => RANGE_NOT_SATISFIABLE, "bad_range";
    BadSignature => BAD_REQUEST, "bad_signature";
    BlockOutOfRange => BAD_REQUEST, "block_out_of_range";
    BlockTooLarge => PAYLOAD_TOO_LARGE, "block_too_large";
    BodyTimeout => REQUEST_TIMEOUT, "body_timeout";
    BodyTooLarge => PAYLOAD_TOO_LARGE, "body_too_large";
    Busy => TOO_MANY_REQUESTS, "busy";
    CommitInProgress => CONFLICT, "commit_in_progress";
    CommitUnfinished => SERVICE_UNAVAILABLE, "commit_unfinished";
    DigestMismatch => CONFLICT, "digest_mismatch";
    FileChanged => CONFLICT, "file_changed";
    FileHashMismatch => UNPROCESSABLE_ENTITY, "file_hash_mismatch";
    FileTooLarge => PAYLOAD_TOO_LARGE, "file_too_large";
    Internal => INTERNAL_SERVER_ERROR, "internal";
    MissingBlocks => CONFLICT, "missing_blocks";
    MissingData => CONFLICT, "missing_data";
    MissingDigest => BAD_REQUEST, "missing_digest";
    MissingIfMatch => BAD_REQUEST, "missing_if_match";
    NoRoute => NOT_FOUND, "no_route";
    NoSpace => INSUFFICIENT_STORAGE, "no_space";
    NoSuchUpload => NOT_FOUND, "no_such_upload";
    NotAFile => BAD_REQUEST, "not_a_file";
    NotAllowed => FORBIDDEN, "not_allowed";
    NotFound => NOT_FOUND, "not_found";
    NotReceiving => CONFLICT, "not_receiving";
    NotSupportedByStore => NOT_IMPLEMENTED, "not_supported_by_store";
    OutsideRoot => FORBIDDEN, "outside_root";
    PermissionDenied => FORBIDDEN, "permission_denied";
    ReadOnly => FORBIDDEN, "read_only";
    RoundInProgress => CONFLICT, "round_in_progress";
    SearchNotOver => CONFLICT, "search_not_over";
    SearchOver => CONFLICT, "search_over";
    SignatureMismatch => BAD_REQUEST, "signature_mismatch";
    StoreFailed => BAD_GATEWAY, "store_failed";
    StoreUnavailable => SERVICE_UNAVAILABLE, "store_unavailable";
    TargetBusy => SERVICE_UNAVAILABLE, "target_busy";
    TargetChanged => PRECONDITION_FAILED, "target_changed";
    TokenExpired => UNAUTHORIZED, "token_expired";
    TokenInvalid => UNAUTHORIZED, "token_invalid";
    TooManyBlocks => BAD_REQUEST, "too_many_blocks";
    TooManyUploads => TOO_MANY_REQUESTS, "too_many_uploads";
    Unauthorized => UNAUTHORIZED, "unauthorized";
    UnexpectedData => BAD_REQUEST, "unexpected_data";
}

/// An error answered as `{"error": code, "message": ..., ...extra}`.
#[derive(Debug)]
pub struct AppError {
    kind: ErrorKind,
    message: String,
    extra: Map<String, Value>,
}

/// Shorthand for handler results.
pub type AppResult<T> = Result<T, AppError>;

impl AppError {
    /// An error of `kind` with a message for the client.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self { kind, message: message.into(), extra: Map::new() }
    }

    /// 404 for a file that does not exist.
    pub fn not_found(what: impl std::fmt::Display) -> Self {
        Self::new(ErrorKind::NotFound, format!("{what} does not exist"))
    }

    /// 404 `no_such_upload`: session `id` never existed, ended or expired.
    pub fn no_such_upload(id: &str) -> Self {
        Self::new(ErrorKind::NoSuchUpload, format!("upload {id} does not exist or has expired"))
    }

    /// 413 `file_too_large`: `size` bytes is over `--max-file-size` (`max`).
    pub fn file_too_large(size: u64, max: u64) -> Self {
        Self::new(ErrorKind::FileTooLarge, format!("{size} bytes is more than this server's limit of {max}"))
    }

    /// 500: the details are logged, the client hears only that it failed.
    pub fn internal(context: &str, err: impl std::fmt::Display) -> Self {
        tracing::error!("{context}: {err}");
        Self::new(ErrorKind::Internal, format!("{context} failed on the server"))
    }

    /// Adds a field to the JSON body.
    pub fn with(mut self, key: &str, value: Value) -> Self {
        self.extra.insert(key.to_owned(), value);
        self
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        self.kind.status()
    }

    /// What went wrong.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The stable error code.
    pub fn code(&self) -> &'static str {
        self.kind.code()
    }

    /// The message, for people.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// Maps a file-system error on `path` to a client answer.
    pub(super) fn from_fs(err: FsError, path: impl std::fmt::Display) -> Self {
        match err {
            FsError::NotFound => Self::not_found(path),
            FsError::OutsideRoot => {
                Self::new(ErrorKind::OutsideRoot, format!("{path} resolves outside the served root"))
            }
            FsError::NotAFile => Self::new(ErrorKind::NotAFile, format!("{path} is not a regular file")),
            FsError::Io(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
                Self::new(ErrorKind::PermissionDenied, format!("the server may not access {path}"))
            }
            FsError::Io(e)
                if matches!(e.kind(), std::io::ErrorKind::StorageFull | std::io::ErrorKind::FileTooLarge) =>
            {
                tracing::warn!("{path}: {e}");
                Self::new(ErrorKind::NoSpace, "the server has no room for the file")
            }
            FsError::Io(e) => Self::internal(&format!("file operation on {path}"), e),
        }
    }
}

impl From<PathError> for AppError {
    fn from(err: PathError) -> Self {
        Self::new(ErrorKind::BadPath, err.to_string())
    }
}

impl From<LimitError> for AppError {
    fn from(err: LimitError) -> Self {
        let kind = match err {
            LimitError::BlockSize { .. } => ErrorKind::BadBlockSize,
            LimitError::TooManyBlocks { .. } => ErrorKind::TooManyBlocks,
        };
        Self::new(kind, err.to_string())
    }
}

impl From<diffcopy_core::ParseAlgorithmError> for AppError {
    fn from(err: diffcopy_core::ParseAlgorithmError) -> Self {
        Self::new(ErrorKind::BadHash, err.to_string())
    }
}

impl From<axum::extract::rejection::QueryRejection> for AppError {
    fn from(err: axum::extract::rejection::QueryRejection) -> Self {
        Self::new(ErrorKind::BadQuery, err.body_text())
    }
}

impl std::fmt::Display for AppError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}: {}", self.status().as_u16(), self.code(), self.message)
    }
}

/// The `Retry-After` of a 503: a store that throttles or restarts, a
/// commit that holds the file, are usually over within seconds.
const RETRY_AFTER_SECS: u32 = 2;

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let status = self.status();
        let mut body = json!({ "error": self.code(), "message": self.message });
        if let Value::Object(map) = &mut body {
            map.extend(self.extra);
        }
        let mut response = (status, Json(body)).into_response();
        // A 503 passes: say when to try again (RFC 9110, 10.2.3).
        if status == StatusCode::SERVICE_UNAVAILABLE {
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(RETRY_AFTER_SECS));
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_has_its_own_code_and_an_error_status() {
        let mut codes = std::collections::HashSet::new();
        for kind in ErrorKind::ALL {
            let code = kind.code();
            assert!(codes.insert(code), "{code} is used twice");
            assert!(code.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'), "{code}");
            assert!(kind.status().is_client_error() || kind.status().is_server_error(), "{code}");
            let answered = AppError::new(*kind, "m");
            assert_eq!((answered.code(), answered.status()), (code, kind.status()));
        }
        assert_eq!(ErrorKind::StoreUnavailable.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(ErrorKind::FileHashMismatch.code(), "file_hash_mismatch");
    }
}

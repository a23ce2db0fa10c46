//! The one error type of the bindings, and its conversion into a JS `Error`.
//!
//! Every error that reaches JS is a real `Error` (with a stack) carrying a
//! `code` string to branch on. Codes made here are listed in [`ErrorCode`];
//! errors answered by the server keep the server's own code (`target_changed`,
//! `missing_blocks`, ...) and add the HTTP `status`.

use core::fmt;

use js_sys::{Error, Reflect};
use wasm_bindgen::{JsCast, JsValue};

/// The codes of errors raised in the browser rather than by the server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ErrorCode {
    /// An option has the wrong type or is out of range.
    InvalidOption,
    /// A hash name that is not sha1, sha256 or blake3.
    UnknownHash,
    /// Bytes that are not a valid binary signature.
    BadSignature,
    /// Two signatures that cannot be compared (algorithm or block size differ).
    SignatureMismatch,
    /// A `SignatureHasher` used after `finish()`.
    HasherFinished,
    /// Reading the `File` or `Blob` failed (moved, deleted, permission lost).
    ReadFailed,
    /// The `AbortSignal` fired.
    Aborted,
    /// WebCrypto was asked for but the page is not a secure context.
    WebCryptoUnavailable,
    /// Hashing workers were asked for but cannot start here.
    WorkersUnavailable,
    /// The request did not reach the server or its answer did not arrive.
    NetworkError,
    /// The server answered with an error that is not diffcopy's JSON.
    HttpError,
    /// The server answered 2xx with a body that is not what the API promises.
    BadResponse,
    /// `protocol: "v2"` was asked for, but the server has no protocol v2.
    NoProtocolV2,
    /// The `token` function threw, or returned no string.
    TokenUnavailable,
    /// Writing the local file failed (no permission, no space).
    #[cfg(feature = "download")]
    WriteFailed,
    /// A download's rebuilt file does not have the server's file hash.
    #[cfg(feature = "download")]
    FileHashMismatch,
    /// `downloadFile` is not available in this browser.
    #[cfg(feature = "download")]
    Unsupported,
}

impl ErrorCode {
    /// The string JS sees in `error.code`.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::InvalidOption => "invalid_option",
            Self::UnknownHash => "unknown_hash",
            Self::BadSignature => "bad_signature",
            Self::SignatureMismatch => "signature_mismatch",
            Self::HasherFinished => "hasher_finished",
            Self::ReadFailed => "read_failed",
            Self::Aborted => "aborted",
            Self::WebCryptoUnavailable => "webcrypto_unavailable",
            Self::WorkersUnavailable => "workers_unavailable",
            Self::NetworkError => "network_error",
            Self::HttpError => "http_error",
            Self::BadResponse => "bad_response",
            Self::NoProtocolV2 => "no_protocol_v2",
            Self::TokenUnavailable => "token_unavailable",
            #[cfg(feature = "download")]
            Self::WriteFailed => "write_failed",
            #[cfg(feature = "download")]
            Self::FileHashMismatch => "file_hash_mismatch",
            #[cfg(feature = "download")]
            Self::Unsupported => "unsupported",
        }
    }
}

/// An error on its way to JS: a code, a message for people, and for server
/// errors the HTTP status and any extra fields of the server's JSON body.
#[derive(Debug)]
pub(crate) struct WebError {
    code: String,
    message: String,
    status: Option<u16>,
    /// Extra fields to copy onto the JS error (e.g. `missing` runs).
    extra: Option<(&'static str, JsValue)>,
    /// Seconds a 503's `Retry-After` asks to wait before trying again.
    retry_after: Option<f64>,
}

impl WebError {
    /// An error raised in the browser.
    pub(crate) fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code: code.as_str().to_owned(),
            message: message.into(),
            status: None,
            extra: None,
            retry_after: None,
        }
    }

    /// An error answered by the server, with its own code.
    pub(crate) fn server(code: String, message: String, status: u16) -> Self {
        Self { code, message, status: Some(status), extra: None, retry_after: None }
    }

    /// Adds the seconds the server's `Retry-After` asks to wait.
    pub(crate) fn with_retry_after(mut self, seconds: Option<f64>) -> Self {
        self.retry_after = seconds;
        self
    }

    /// Seconds to wait before trying again, when the server said (a 503
    /// with `Retry-After`: its store down or throttling, the file busy).
    pub(crate) fn retry_after(&self) -> Option<f64> {
        self.retry_after
    }

    /// Adds a field to copy onto the JS error.
    pub(crate) fn with_extra(mut self, name: &'static str, value: JsValue) -> Self {
        self.extra = Some((name, value));
        self
    }

    /// Adds the HTTP status of the response that caused the error.
    pub(crate) fn with_status(mut self, status: u16) -> Self {
        self.status = Some(status);
        self
    }

    /// The `aborted` error.
    pub(crate) fn aborted() -> Self {
        Self::new(ErrorCode::Aborted, "cancelled")
    }

    /// The error's code.
    pub(crate) fn code(&self) -> &str {
        &self.code
    }

    /// The HTTP status, for errors answered by the server.
    pub(crate) fn status(&self) -> Option<u16> {
        self.status
    }

    /// Whether trying the same request again may succeed.
    pub(crate) fn is_transient(&self) -> bool {
        self.code() == ErrorCode::NetworkError.as_str() || self.status.is_some_and(|s| s >= 500 || s == 429)
    }

    /// The JS `Error` for this error: `name` "DiffcopyError", `message`,
    /// `code`, and `status` when the server answered.
    pub(crate) fn into_error(self) -> JsValue {
        let error = Error::new(&self.message);
        error.set_name("DiffcopyError");
        // Setting plain data properties on a fresh Error object cannot fail.
        let _ = Reflect::set(&error, &"code".into(), &self.code.as_str().into());
        if let Some(status) = self.status {
            let _ = Reflect::set(&error, &"status".into(), &status.into());
        }
        if let Some((name, value)) = &self.extra {
            let _ = Reflect::set(&error, &(*name).into(), value);
        }
        error.into()
    }

    /// Wraps a JS exception from a read or other browser call, keeping its text.
    pub(crate) fn from_js(code: ErrorCode, context: &str, value: &JsValue) -> Self {
        if is_abort(value) {
            return Self::aborted();
        }
        Self::new(code, format!("{context}: {}", describe(value)))
    }
}

impl fmt::Display for WebError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.message, self.code)
    }
}

impl From<WebError> for JsValue {
    fn from(error: WebError) -> Self {
        error.into_error()
    }
}

/// Whether a JS exception is the `AbortError` a fired `AbortSignal` causes.
pub(crate) fn is_abort(value: &JsValue) -> bool {
    Reflect::get(value, &"name".into()).ok().and_then(|n| n.as_string()).is_some_and(|n| n == "AbortError")
}

/// A short human description of a JS exception.
pub(crate) fn describe(value: &JsValue) -> String {
    match value.dyn_ref::<Error>() {
        Some(error) => String::from(error.message()),
        None => value.as_string().unwrap_or_else(|| format!("{value:?}")),
    }
}

//! Bearer-token authentication and read-only mode.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::serve::error::{AppError, ErrorKind};
use crate::serve::state::Served;

/// Refuses requests without the configured token (401) and, in read-only
/// mode, every write (403).
pub(crate) async fn require_token<S: Served>(
    State(state): State<Arc<S>>,
    request: Request,
    next: Next,
) -> Response {
    if let Some(token) = &state.settings().token {
        let given = request
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or("");
        if !constant_time_eq(given.as_bytes(), token.as_bytes()) {
            let mut response =
                AppError::new(ErrorKind::Unauthorized, "a valid bearer token is required").into_response();
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, header::HeaderValue::from_static("Bearer"));
            return response;
        }
    }
    if state.settings().read_only && writes(request.method(), request.uri().path()) {
        return AppError::new(ErrorKind::ReadOnly, "this server is read-only").into_response();
    }
    next.run(request).await
}

/// Whether a request may change what the server holds: every method but
/// `GET`, `HEAD` and `OPTIONS`, except the `POST`s of a protocol v2
/// download (`/api/v2/hashes/...`, `/api/v2/data/...`), which only read.
fn writes(method: &Method, path: &str) -> bool {
    let reads_by_post = ["/api/v2/hashes/", "/api/v2/data/"].iter().any(|p| path.starts_with(p));
    match *method {
        Method::GET | Method::HEAD | Method::OPTIONS => false,
        Method::POST => !reads_by_post,
        _ => true,
    }
}

/// Compares in time that depends only on the lengths, not on where they differ.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let mut diff = a.len() ^ b.len();
    for (i, &x) in a.iter().enumerate() {
        let y = b.get(i % b.len().max(1)).copied().unwrap_or(0);
        diff |= usize::from(x ^ y);
    }
    diff == 0
}

#[cfg(test)]
mod tests {
    use axum::http::Method;

    use super::{constant_time_eq, writes};

    #[test]
    fn downloads_read_and_uploads_write() {
        for (method, path) in [
            (Method::GET, "/api/v1/files/a"),
            (Method::HEAD, "/api/v1/files/a"),
            (Method::POST, "/api/v2/hashes/a/b.bin"),
            (Method::POST, "/api/v2/data/a"),
            (Method::GET, "/hashes"),
        ] {
            assert!(!writes(&method, path), "{method} {path}");
        }
        for (method, path) in [
            (Method::POST, "/api/v2/uploads"),
            (Method::POST, "/api/v2/uploads/x/data"),
            (Method::POST, "/api/v1/uploads"),
            (Method::PUT, "/api/v1/uploads/x/blocks/0"),
            (Method::DELETE, "/api/v2/uploads/x"),
            (Method::POST, "/blocks"),
            (Method::POST, "/resize"),
            (Method::PATCH, "/api/v2/data/a"),
        ] {
            assert!(writes(&method, path), "{method} {path}");
        }
    }

    #[test]
    fn equal_only_when_equal() {
        assert!(constant_time_eq(b"secret", b"secret"));
        assert!(!constant_time_eq(b"secret", b"secreT"));
        assert!(!constant_time_eq(b"secret", b"secret2"));
        assert!(!constant_time_eq(b"", b"x"));
        assert!(constant_time_eq(b"", b""));
    }
}

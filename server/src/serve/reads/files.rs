//! `GET`/`HEAD /api/v1/files/{path}`: a version's bytes, all or one
//! range, with its ETag.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::{Reads, Version, current_or_404};
use crate::fs::RelPath;
use crate::serve::error::{AppError, AppResult, ErrorKind};

/// `GET`/`HEAD /api/v1/files/{path}` with an optional single `Range`.
pub(super) async fn get_file<S: Reads>(
    State(state): State<Arc<S>>,
    Path(path): Path<String>,
    method: Method,
    headers: HeaderMap,
) -> AppResult<Response> {
    let path = RelPath::parse(&path)?;
    let version = current_or_404(&state, &path).await?;
    let (size, etag) = (version.size(), version.etag());
    let (status, start, len) = requested_range(&headers, size)?;
    let body =
        if method == Method::HEAD || len == 0 { Body::empty() } else { version.body(start, len).await? };
    Ok(file_response(status, body, start, len, size, &etag))
}

/// What a GET of a `size`-byte file asks for: 200 and all of it, or 206
/// and one range, as (status, first byte, length); 416 for a range outside.
fn requested_range(headers: &HeaderMap, size: u64) -> AppResult<(StatusCode, u64, u64)> {
    let range = match headers.get(header::RANGE).and_then(|v| v.to_str().ok()) {
        Some(spec) => parse_range(spec, size).map_err(|()| {
            AppError::new(ErrorKind::BadRange, format!("{spec} is outside the file ({size} bytes)"))
        })?,
        None => None,
    };
    Ok(match range {
        Some((start, end)) => (StatusCode::PARTIAL_CONTENT, start, end - start + 1),
        None => (StatusCode::OK, 0, size),
    })
}

/// `len` bytes of a file from `start` as the answer to a GET, with the
/// length, range and ETag headers.
fn file_response(status: StatusCode, body: Body, start: u64, len: u64, size: u64, etag: &str) -> Response {
    let mut response = (status, body).into_response();
    let h = response.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/octet-stream"));
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    if let Ok(etag) = HeaderValue::from_str(etag) {
        h.insert(header::ETAG, etag);
    }
    if status == StatusCode::PARTIAL_CONTENT
        && let Ok(v) = HeaderValue::from_str(&format!("bytes {}-{}/{size}", start, start + len - 1))
    {
        h.insert(header::CONTENT_RANGE, v);
    }
    response
}

/// Parses one `bytes=` range against `size` into inclusive `(first, last)`.
/// `Ok(None)`: no usable single range (serve the whole file, as RFC 9110
/// allows); `Err`: a well-formed range outside the file (416).
fn parse_range(spec: &str, size: u64) -> Result<Option<(u64, u64)>, ()> {
    let Some(spec) = spec.trim().strip_prefix("bytes=") else { return Ok(None) };
    if spec.contains(',') {
        return Ok(None);
    }
    let Some((first, last)) = spec.trim().split_once('-') else { return Ok(None) };
    let number = |s: &str| -> Option<u64> {
        (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())).then(|| s.parse().ok()).flatten()
    };
    match (number(first), number(last)) {
        (Some(first), _) if first >= size => Err(()),
        (Some(first), None) if last.is_empty() => Ok(Some((first, size - 1))),
        (Some(first), Some(last)) if first <= last => Ok(Some((first, last.min(size - 1)))),
        (None, Some(suffix)) if first.is_empty() => {
            if suffix == 0 || size == 0 {
                Err(())
            } else {
                Ok(Some((size - suffix.min(size), size - 1)))
            }
        }
        _ => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::parse_range;

    #[test]
    fn ranges() {
        assert_eq!(parse_range("bytes=0-9", 100), Ok(Some((0, 9))));
        assert_eq!(parse_range("bytes=90-", 100), Ok(Some((90, 99))));
        assert_eq!(parse_range("bytes=90-200", 100), Ok(Some((90, 99))));
        assert_eq!(parse_range("bytes=-10", 100), Ok(Some((90, 99))));
        assert_eq!(parse_range("bytes=-1000", 100), Ok(Some((0, 99))));
        assert_eq!(parse_range("bytes=100-", 100), Err(()));
        assert_eq!(parse_range("bytes=0-", 0), Err(()));
        assert_eq!(parse_range("bytes=-0", 100), Err(()));
        assert_eq!(parse_range("bytes=5-1", 100), Ok(None));
        assert_eq!(parse_range("bytes=0-1,5-6", 100), Ok(None));
        assert_eq!(parse_range("items=0-1", 100), Ok(None));
        assert_eq!(parse_range("bytes=a-b", 100), Ok(None));
    }
}

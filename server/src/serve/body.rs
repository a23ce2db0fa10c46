//! Request bodies, read whole within a limit and a time.

use std::time::Duration;

use axum::body::HttpBody as _;
use axum::body::{Body, Bytes};
use http_body_util::BodyExt;

use crate::serve::error::{AppError, AppResult, ErrorKind};

/// A request body of at most `limit` bytes that arrives within `timeout`:
/// 413 if longer, 408 if slower. Read into one buffer of the announced
/// length, so a large body is held once, not once in pieces and once joined.
pub(super) async fn read_body_within(
    timeout: Duration,
    body: Body,
    limit: u64,
    what: &str,
) -> AppResult<Bytes> {
    let capacity = body.size_hint().exact().unwrap_or(0).min(limit);
    let mut limited = http_body_util::Limited::new(body, usize::try_from(limit).unwrap_or(usize::MAX));
    let read_all = async move {
        let mut buf = bytes::BytesMut::with_capacity(capacity as usize);
        while let Some(frame) = limited.frame().await {
            if let Ok(data) = frame?.into_data() {
                buf.extend_from_slice(&data);
            }
        }
        Ok::<_, Box<dyn std::error::Error + Send + Sync>>(buf.freeze())
    };
    let Ok(collected) = tokio::time::timeout(timeout, read_all).await else {
        return Err(AppError::new(
            ErrorKind::BodyTimeout,
            format!("{what} did not arrive within {} s", timeout.as_secs_f64()),
        ));
    };
    match collected {
        Ok(bytes) => Ok(bytes),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => {
            Err(AppError::new(ErrorKind::BodyTooLarge, format!("{what} may be at most {limit} bytes")))
        }
        Err(e) => Err(AppError::new(ErrorKind::BadBody, format!("reading {what} failed: {e}"))),
    }
}

/// `body` as a 200 answer of `content_type`, compressed with zstd
/// (`Content-Encoding: zstd`) when the request's `headers` take it:
/// listings and multi answers, whose JSON repeats itself.
pub(crate) fn packed_if_taken(
    headers: &http::HeaderMap,
    content_type: &'static str,
    body: Vec<u8>,
) -> AppResult<axum::response::Response> {
    use axum::response::IntoResponse as _;
    let content_type = (http::header::CONTENT_TYPE, http::HeaderValue::from_static(content_type));
    if !takes_zstd(headers) {
        return Ok(([content_type], body).into_response());
    }
    let packed = crate::packed::pack(&body).map_err(|e| AppError::internal("compressing an answer", e))?;
    let headers = [
        content_type,
        (http::header::CONTENT_ENCODING, http::HeaderValue::from_static("zstd")),
        (http::header::VARY, http::HeaderValue::from_static("accept-encoding")),
    ];
    Ok((headers, packed).into_response())
}

/// Whether a request's `Accept-Encoding` names zstd.
fn takes_zstd(headers: &http::HeaderMap) -> bool {
    headers
        .get_all(http::header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|coding| coding.split(';').next().is_some_and(|c| c.trim().eq_ignore_ascii_case("zstd")))
}

//! CORS for the origins named with `--cors-origin`: browser pages served
//! elsewhere may call the API. Same-origin use (the embedded page) needs none.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::serve::served::Served;

/// Answers preflights and adds the CORS headers for allowed origins.
pub(crate) async fn cors<S: Served>(State(state): State<Arc<S>>, request: Request, next: Next) -> Response {
    let allowed = request
        .headers()
        .get(header::ORIGIN)
        .filter(|origin| {
            state.settings().cors_origins.iter().any(|a| a == "*" || origin.as_bytes() == a.as_bytes())
        })
        .cloned();
    let preflight = request.method() == Method::OPTIONS
        && request.headers().contains_key(header::ACCESS_CONTROL_REQUEST_METHOD);
    let mut response =
        if preflight { StatusCode::NO_CONTENT.into_response() } else { next.run(request).await };
    if let Some(origin) = allowed {
        let h = response.headers_mut();
        h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
        h.append(header::VARY, HeaderValue::from_static("origin"));
        if preflight {
            set(h, header::ACCESS_CONTROL_ALLOW_METHODS, "GET, HEAD, POST, PUT, DELETE, OPTIONS");
            set(
                h,
                header::ACCESS_CONTROL_ALLOW_HEADERS,
                "content-type, authorization, x-block-digest, range",
            );
            set(h, header::ACCESS_CONTROL_MAX_AGE, "600");
        } else {
            set(
                h,
                header::ACCESS_CONTROL_EXPOSE_HEADERS,
                "etag, content-length, content-range, retry-after, www-authenticate",
            );
        }
    }
    response
}

fn set(headers: &mut HeaderMap, name: header::HeaderName, value: &'static str) {
    headers.insert(name, HeaderValue::from_static(value));
}

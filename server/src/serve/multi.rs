//! `POST /api/v2/multi` (docs/api.md, "Many requests in one"): API requests
//! sent together in one HTTP exchange, answered together. `diffcopy -r`
//! uploads a tree's changed small files through it: the five steps of each
//! file's protocol v2 upload travel with the same step of the others, so a
//! hundred files cost five round trips, not five hundred.
//!
//! Each request inside is served by the same router as if it had come
//! alone: its own route, token check (the outer `Authorization` applies to
//! each unless it names its own), limits and answer. Nothing here knows
//! what they mean. They run at once, so a client puts in one exchange only
//! requests that do not wait on each other; a request for `/api/v2/multi`
//! itself is refused.
//!
//! The body is a sequence of parts, each a 4-byte little-endian length and
//! that much JSON (`{"method","uri","headers":{…}}`, the answer's
//! `{"status","headers":{…}}`), then a 4-byte length and that much body.
//! Either may be compressed with zstd (`Content-Encoding: zstd`; the answer
//! where the request's `Accept-Encoding` names it): the heads repeat
//! themselves, and are most of a small file's bytes.

use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, Request, header};
use axum::routing::post;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

use crate::packed::unpack;
use crate::parts::{next_part, push_part};
use crate::serve::body::{packed_if_taken, read_body_within};
use crate::serve::error::{AppError, AppResult, ErrorKind};

/// The largest body of a multi request, and of its answer.
pub(crate) const MAX_MULTI_BODY: u64 = 64 << 20;
/// The most requests in one.
pub(crate) const MAX_MULTI_PARTS: usize = 1000;
/// The endpoint.
const PATH: &str = "/api/v2/multi";

#[derive(Debug, Deserialize)]
struct Head {
    method: String,
    uri: String,
    #[serde(default)]
    headers: BTreeMap<String, String>,
}

#[derive(Debug, Serialize)]
struct AnswerHead {
    status: u16,
    headers: BTreeMap<String, String>,
}

fn bad_body(message: impl Into<String>) -> AppError {
    AppError::new(ErrorKind::BadBody, message)
}

/// Reads one part at `*at` of `body`.
fn part(body: &Bytes, at: &mut usize) -> AppResult<Bytes> {
    next_part(body, at).ok_or_else(|| bad_body("a multi request's part runs past the body"))
}

/// The requests in a multi request's body, checked.
fn requests(body: &Bytes, auth: Option<&HeaderValue>) -> AppResult<Vec<Request<Body>>> {
    let mut out = Vec::new();
    let mut at = 0;
    while at < body.len() {
        if out.len() == MAX_MULTI_PARTS {
            return Err(bad_body(format!("a multi request holds at most {MAX_MULTI_PARTS} requests")));
        }
        let head: Head = serde_json::from_slice(&part(body, &mut at)?)
            .map_err(|e| AppError::new(ErrorKind::BadJson, format!("a multi request's part: {e}")))?;
        let content = part(body, &mut at)?;
        if !head.uri.starts_with("/api/") || head.uri.starts_with(PATH) {
            return Err(bad_body(format!("{} cannot be sent inside a multi request", head.uri)));
        }
        let method = Method::from_bytes(head.method.as_bytes())
            .map_err(|_| bad_body("a part's method is not valid"))?;
        let mut request = Request::builder().method(method).uri(&head.uri);
        for (name, value) in &head.headers {
            let name = HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| bad_body("a part's header name is not valid"))?;
            if name == header::HOST || name == header::CONTENT_LENGTH {
                continue;
            }
            let value =
                HeaderValue::from_str(value).map_err(|_| bad_body("a part's header value is not valid"))?;
            request = request.header(name, value);
        }
        if let Some(auth) = auth
            && !head.headers.keys().any(|k| k.eq_ignore_ascii_case("authorization"))
        {
            request = request.header(header::AUTHORIZATION, auth.clone());
        }
        out.push(request.body(Body::from(content)).map_err(|e| bad_body(format!("a part: {e}")))?);
    }
    Ok(out)
}

/// Serves one request of a multi with `router`: its answer, encoded.
async fn served(mut router: Router, request: Request<Body>) -> AppResult<Vec<u8>> {
    let response = tower_service::Service::call(&mut router, request)
        .await
        .map_err(|e| AppError::internal("a request inside a multi request", e))?;
    let (parts, body) = response.into_parts();
    let body = axum::body::to_bytes(body, MAX_MULTI_BODY as usize)
        .await
        .map_err(|e| AppError::internal("reading an answer inside a multi request", e))?;
    let headers = parts
        .headers
        .iter()
        .filter(|(name, _)| *name != header::CONTENT_LENGTH && *name != header::DATE)
        .filter_map(|(name, value)| Some((name.as_str().to_owned(), value.to_str().ok()?.to_owned())))
        .collect();
    let head = serde_json::to_vec(&AnswerHead { status: parts.status.as_u16(), headers })
        .map_err(|e| AppError::internal("a multi answer", e))?;
    let mut out = Vec::with_capacity(8 + head.len() + body.len());
    push_part(&mut out, &head);
    push_part(&mut out, &body);
    Ok(out)
}

/// `router` with `POST /api/v2/multi` in front of it, dispatching to it.
pub(crate) fn with_multi(router: Router, body_timeout: Duration) -> Router {
    let inner = router.clone();
    let multi = move |headers: HeaderMap, body: Body| {
        let inner = inner.clone();
        async move {
            let mut body = read_body_within(body_timeout, body, MAX_MULTI_BODY, "a multi request").await?;
            if headers.get(header::CONTENT_ENCODING).is_some_and(|v| v == "zstd") {
                body = unpack(&body, MAX_MULTI_BODY)
                    .map(Bytes::from)
                    .map_err(|e| bad_body(format!("a multi request's zstd: {e}")))?;
            }
            let requests = requests(&body, headers.get(header::AUTHORIZATION))?;
            let answers =
                futures_util::future::join_all(requests.into_iter().map(|r| served(inner.clone(), r))).await;
            let mut out = Vec::new();
            for answer in answers {
                out.extend_from_slice(&answer?);
            }
            if out.len() as u64 > MAX_MULTI_BODY {
                return Err(AppError::new(
                    ErrorKind::BodyTooLarge,
                    "the answers are over 64 MiB: send fewer requests at once",
                ));
            }
            packed_if_taken(&headers, "application/vnd.diffcopy.multi", out)
        }
    };
    router.route(PATH, post(multi))
}

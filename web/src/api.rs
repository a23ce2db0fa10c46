//! The client side of the server's HTTP API v1 (docs/api.md), and what
//! protocol v2's endpoints (`delta/api.rs`) share with it: the base URL,
//! the token, the abort signal, and turning error answers into errors.

use std::rc::Rc;

use gloo_net::http::{Request, RequestBuilder, Response};
use js_sys::{Array, JSON, Object, Reflect, Uint8Array};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{AbortSignal, Blob, ReadableStreamDefaultReader};

use crate::diff::set;
use crate::error::{ErrorCode, WebError};
use crate::token::{Token, TokenSource, expired};

/// An API v1 endpoint set: base URL, bearer token, abort signal.
#[derive(Clone)]
pub(crate) struct Api {
    base: String,
    token: Rc<Token>,
    signal: Option<AbortSignal>,
}

/// An upload session as the server describes it.
#[derive(Clone, Debug)]
pub(crate) struct Session {
    pub(crate) id: String,
    pub(crate) size: u64,
    pub(crate) block_size: u32,
    pub(crate) hash: String,
    /// Runs of received block indexes.
    pub(crate) received: Vec<std::ops::Range<u64>>,
}

impl Api {
    /// Endpoints under `server` ("" for this page's origin).
    pub(crate) fn new(server: &str, token: TokenSource, signal: Option<AbortSignal>) -> Self {
        Self { base: server.trim_end_matches('/').to_owned(), token: Rc::new(Token::new(token)), signal }
    }

    /// The base URL ("" for this page's origin).
    pub(crate) fn base(&self) -> &str {
        &self.base
    }

    fn url(&self, rest: &str) -> String {
        self.endpoint(&format!("api/v1/{rest}"))
    }

    /// `rest` under the base URL.
    pub(crate) fn endpoint(&self, rest: &str) -> String {
        format!("{}/{rest}", self.base)
    }

    /// Adds the abort signal and the token.
    pub(crate) fn prepare(&self, builder: RequestBuilder) -> RequestBuilder {
        self.authorize(builder.abort_signal(self.signal.as_ref()))
    }

    /// Adds the token only: for a request that must go out after an abort.
    pub(crate) fn authorize(&self, builder: RequestBuilder) -> RequestBuilder {
        match self.token.current() {
            Some(token) => builder.header("Authorization", &format!("Bearer {token}")),
            None => builder,
        }
    }

    /// Sends the request `build` makes (with [`Self::prepare`] or
    /// [`Self::authorize`]); `what` names it in a network error. When the
    /// server says the token expired and the `token` option is a function,
    /// asks it for a new one and sends the request again, built anew.
    pub(crate) async fn send(
        &self,
        build: impl Fn() -> Result<Request, gloo_net::Error>,
        what: &str,
    ) -> Result<Response, WebError> {
        self.token.ensure().await?;
        let generation = self.token.generation();
        let response = send_once(build(), what).await?;
        if response.status() != 401
            || !self.token.renewable()
            || !expired(response.headers().get("www-authenticate").as_deref())
        {
            return Ok(response);
        }
        self.token.renew(generation).await?;
        send_once(build(), what).await
    }

    /// Starts `GET /signatures/{path}`: the response, with the body still
    /// streaming, and its ETag; `None` when the target does not exist.
    pub(crate) async fn signature(
        &self,
        path: &str,
        block_size: u32,
        hash: &str,
    ) -> Result<Option<(Response, Option<String>)>, WebError> {
        let url = self.url(&format!("signatures/{}?block_size={block_size}&hash={hash}", encode_path(path)));
        let response =
            self.send(|| self.prepare(Request::get(&url)).build(), "fetching the server's signature").await?;
        if response.status() == 404 {
            return Ok(None);
        }
        let response = check(response).await?;
        let etag = response.headers().get("ETag");
        Ok(Some((response, etag)))
    }

    /// `POST /uploads`: opens a session.
    pub(crate) async fn create_upload(
        &self,
        path: &str,
        size: u64,
        block_size: u32,
        hash: &str,
        base_etag: Option<&str>,
    ) -> Result<Session, WebError> {
        let body = Object::new();
        set(&body, "path", path.into());
        set(&body, "size", (size as f64).into());
        set(&body, "block_size", block_size.into());
        set(&body, "hash", hash.into());
        if let Some(etag) = base_etag {
            set(&body, "base_etag", etag.into());
        }
        let json = JSON::stringify(&body).map(String::from).unwrap_or_default();
        let request = || {
            self.prepare(Request::post(&self.url("uploads")))
                .header("Content-Type", "application/json")
                .body(json.clone())
        };
        let response = check(self.send(request, "opening the upload").await?).await?;
        parse_session(&json_body(response).await?)
    }

    /// `GET /uploads/{id}`: the session's state, `None` when it is gone.
    pub(crate) async fn get_upload(&self, id: &str) -> Result<Option<Session>, WebError> {
        let url = self.url(&format!("uploads/{}", encode(id)));
        let response =
            self.send(|| self.prepare(Request::get(&url)).build(), "checking the upload to resume").await?;
        if response.status() == 404 {
            return Ok(None);
        }
        parse_session(&json_body(check(response).await?).await?).map(Some)
    }

    /// `PUT /uploads/{id}/blocks/{index}` with the block's bytes and digest.
    pub(crate) async fn put_block(
        &self,
        id: &str,
        index: u64,
        bytes: &Blob,
        digest_hex: &str,
    ) -> Result<(), WebError> {
        let url = self.url(&format!("uploads/{}/blocks/{index}", encode(id)));
        let request = || {
            self.prepare(Request::put(&url))
                .header("X-Block-Digest", digest_hex)
                .header("Content-Type", "application/octet-stream")
                .body(JsValue::from(bytes.clone()))
        };
        check(self.send(request, "uploading a block").await?).await?;
        Ok(())
    }

    /// `POST /uploads/{id}/commit` with the source's binary signature.
    pub(crate) async fn commit(&self, id: &str, signature: &[u8]) -> Result<JsValue, WebError> {
        let url = self.url(&format!("uploads/{}/commit", encode(id)));
        let request = || {
            self.prepare(Request::post(&url))
                .header("Content-Type", "application/vnd.diffcopy.signature")
                .body(Uint8Array::from(signature))
        };
        json_body(check(self.send(request, "committing the upload").await?).await?).await
    }
}

/// Reads a streaming response body chunk by chunk.
pub(crate) struct BodyReader(Option<ReadableStreamDefaultReader>);

impl BodyReader {
    /// A reader over `response`'s body.
    pub(crate) fn new(response: &Response) -> Self {
        Self(response.body().map(|body| body.get_reader().unchecked_into()))
    }

    /// The next chunk, or `None` at the end of the body.
    pub(crate) async fn next(&mut self) -> Result<Option<Vec<u8>>, WebError> {
        let Some(reader) = &self.0 else { return Ok(None) };
        let what = "reading the server's signature";
        let result = JsFuture::from(reader.read())
            .await
            .map_err(|e| WebError::from_js(ErrorCode::NetworkError, what, &e))?;
        let done = Reflect::get(&result, &"done".into()).ok().and_then(|d| d.as_bool()).unwrap_or(true);
        if done {
            self.0 = None;
            return Ok(None);
        }
        let value = Reflect::get(&result, &"value".into()).unwrap_or(JsValue::UNDEFINED);
        Ok(Some(value.dyn_into::<Uint8Array>().map(|v| v.to_vec()).unwrap_or_default()))
    }
}

/// Percent-encodes each segment of a relative path (leading slashes dropped).
pub(crate) fn encode_path(path: &str) -> String {
    path.trim_start_matches('/').split('/').map(encode).collect::<Vec<_>>().join("/")
}

/// Percent-encodes one path segment (or an id).
pub(crate) fn encode(segment: &str) -> String {
    js_sys::encode_uri_component(segment).into()
}

async fn send_once(request: Result<Request, gloo_net::Error>, what: &str) -> Result<Response, WebError> {
    let request = request.map_err(|e| net_error(e, what))?;
    request.send().await.map_err(|e| net_error(e, what))
}

fn net_error(error: gloo_net::Error, what: &str) -> WebError {
    match error {
        gloo_net::Error::JsError(e) if e.name == "AbortError" => WebError::aborted(),
        gloo_net::Error::JsError(e) => {
            WebError::new(ErrorCode::NetworkError, format!("{what}: {}", e.message))
        }
        other => WebError::new(ErrorCode::NetworkError, format!("{what}: {other}")),
    }
}

/// Passes 2xx responses; turns the others into the server's error.
pub(crate) async fn check(response: Response) -> Result<Response, WebError> {
    if response.ok() {
        return Ok(response);
    }
    let status = response.status();
    let retry_after = (status == 503)
        .then(|| response.headers().get("retry-after"))
        .flatten()
        .and_then(|v| v.trim().parse::<f64>().ok())
        .filter(|s| s.is_finite() && *s >= 0.0);
    let text = response.text().await.unwrap_or_default();
    let body = JSON::parse(&text).ok().filter(|b| b.is_object());
    let field = |name: &str| body.as_ref().and_then(|b| Reflect::get(b, &name.into()).ok());
    let Some(code) = field("error").and_then(|c| c.as_string()) else {
        let url = response.url();
        let message = format!("{url} answered {status} {}", response.status_text());
        return Err(WebError::new(ErrorCode::HttpError, message).with_status(status));
    };
    let message = field("message").and_then(|m| m.as_string());
    let message = message.unwrap_or_else(|| format!("the server answered {status} {code}"));
    let error = WebError::server(code, message, status).with_retry_after(retry_after);
    Err(match field("missing").filter(Array::is_array) {
        Some(missing) => error.with_extra("missing", missing),
        None => error,
    })
}

/// The response's JSON body.
pub(crate) async fn json_body(response: Response) -> Result<JsValue, WebError> {
    let text = response.text().await.map_err(|e| net_error(e, "reading the server's answer"))?;
    JSON::parse(&text)
        .map_err(|_| WebError::new(ErrorCode::BadResponse, "the server's answer is not JSON".to_owned()))
}

fn parse_session(body: &JsValue) -> Result<Session, WebError> {
    let get = |name: &str| Reflect::get(body, &name.into()).unwrap_or(JsValue::UNDEFINED);
    let bad = |what: &str| {
        WebError::new(ErrorCode::BadResponse, format!("upload session without a valid `{what}`"))
    };
    let id = get("id").as_string().ok_or_else(|| bad("id"))?;
    let size = get("size").as_f64().ok_or_else(|| bad("size"))? as u64;
    let block_size = get("block_size").as_f64().ok_or_else(|| bad("block_size"))? as u32;
    let hash = get("hash").as_string().ok_or_else(|| bad("hash"))?;
    let mut received = Vec::new();
    let runs = get("received");
    if Array::is_array(&runs) {
        for run in Array::from(&runs).iter() {
            let run = Array::from(&run);
            match (run.get(0).as_f64(), run.get(1).as_f64()) {
                (Some(start), Some(end)) if start <= end => received.push(start as u64..end as u64),
                _ => return Err(bad("received")),
            }
        }
    }
    Ok(Session { id, size, block_size, hash, received })
}

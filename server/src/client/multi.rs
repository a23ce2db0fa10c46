//! Requests of many files' syncs sent together (`POST /api/v2/multi`,
//! docs/api.md "Many requests in one"). The syncs run as they always do;
//! their requests wait here until every sync taking part has one waiting
//! (or has finished), and then go in one exchange. A hundred small files'
//! protocol v2 uploads so take the round trips of one, and the bytes of
//! their HTTP and TCP framing shrink with them.
//!
//! A sync that is busy with local work (hashing) holds the others' requests
//! back until it sends its own or ends, never longer: each sync taking part
//! either waits on a request here, or is about to.

use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::oneshot;

use super::error::ClientError;
use crate::packed::{pack, unpack};
use crate::parts::{next_part, push_part};

/// The most a multi answer unpacks to (the server's own limit).
const MAX_ANSWERS: u64 = 64 << 20;

type Reply = oneshot::Sender<Result<reqwest::Response, ClientError>>;

/// Requests gathered for one exchange.
#[derive(Debug)]
pub(crate) struct Multi {
    http: reqwest::Client,
    /// The server's `scheme://host:port`.
    base: String,
    token: Option<String>,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    /// Syncs taking part.
    active: usize,
    waiting: Vec<(reqwest::Request, Reply)>,
}

/// A sync's part in a [`Multi`]: it leaves when this is dropped.
#[derive(Debug)]
pub(crate) struct Member(Arc<Multi>);

impl Drop for Member {
    fn drop(&mut self) {
        let ready = {
            let mut state = self.0.lock();
            state.active -= 1;
            state.ready()
        };
        if let Some(batch) = ready {
            tokio::spawn(self.0.clone().send_all(batch));
        }
    }
}

impl State {
    /// The requests to send now: all of them, once every sync has one waiting.
    fn ready(&mut self) -> Option<Vec<(reqwest::Request, Reply)>> {
        (!self.waiting.is_empty() && self.waiting.len() >= self.active)
            .then(|| std::mem::take(&mut self.waiting))
    }
}

impl Multi {
    /// Requests to `base` (`scheme://host:port`), with `token` for the exchange.
    pub(crate) fn new(http: reqwest::Client, base: &str, token: Option<String>) -> Arc<Self> {
        Arc::new(Self { http, base: base.to_owned(), token, state: Mutex::default() })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Takes a sync in; it is out again when the [`Member`] is dropped.
    pub(crate) fn join(self: &Arc<Self>) -> Member {
        self.lock().active += 1;
        Member(self.clone())
    }

    /// Sends `request` with the others: its answer.
    pub(crate) async fn send(
        self: &Arc<Self>,
        request: reqwest::Request,
    ) -> Result<reqwest::Response, ClientError> {
        let (reply, answer) = oneshot::channel();
        let ready = {
            let mut state = self.lock();
            state.waiting.push((request, reply));
            state.ready()
        };
        if let Some(batch) = ready {
            tokio::spawn(self.clone().send_all(batch));
        }
        answer.await.map_err(|_| ClientError::Local("a multi request was dropped".into()))?
    }

    /// Sends `batch` in one exchange and hands each its answer.
    async fn send_all(self: Arc<Self>, batch: Vec<(reqwest::Request, Reply)>) {
        let (requests, replies): (Vec<_>, Vec<_>) = batch.into_iter().unzip();
        match self.exchange(requests).await {
            Ok(answers) => {
                for (reply, answer) in replies.into_iter().zip(answers) {
                    let _ = reply.send(Ok(answer));
                }
            }
            Err(e) => {
                let text = e.to_string();
                for reply in replies {
                    let _ = reply
                        .send(Err(ClientError::Connect { url: self.base.clone(), detail: text.clone() }));
                }
            }
        }
    }

    async fn exchange(&self, requests: Vec<reqwest::Request>) -> Result<Vec<reqwest::Response>, ClientError> {
        let count = requests.len();
        let mut body = Vec::new();
        for request in requests {
            let url = request.url();
            let uri = match url.query() {
                Some(query) => format!("{}?{query}", url.path()),
                None => url.path().to_owned(),
            };
            let headers: serde_json::Map<String, serde_json::Value> = request
                .headers()
                .iter()
                .filter(|(name, _)| *name != reqwest::header::AUTHORIZATION)
                .filter_map(|(name, value)| Some((name.as_str().to_owned(), value.to_str().ok()?.into())))
                .collect();
            let head =
                serde_json::json!({ "method": request.method().as_str(), "uri": uri, "headers": headers });
            let head = serde_json::to_vec(&head).map_err(|e| ClientError::Local(e.to_string()))?;
            let content = request.body().and_then(reqwest::Body::as_bytes).unwrap_or_default();
            push_part(&mut body, &head);
            push_part(&mut body, content);
        }
        let packed =
            pack(&body).map_err(|e| ClientError::Local(format!("compressing a multi request: {e}")))?;
        let mut builder = self
            .http
            .post(format!("{}/api/v2/multi", self.base))
            .header(reqwest::header::CONTENT_ENCODING, "zstd")
            .header(reqwest::header::ACCEPT_ENCODING, "zstd")
            .body(packed);
        if let Some(token) = &self.token {
            builder = builder.bearer_auth(token);
        }
        let response = builder.send().await.map_err(|e| ClientError::unanswered(&self.base, &e))?;
        if !response.status().is_success() {
            let status = response.status().as_u16();
            let text = response.text().await.unwrap_or_default();
            return Err(ClientError::Protocol(format!("a multi request was answered {status}: {text}")));
        }
        let packed = response.headers().get(reqwest::header::CONTENT_ENCODING).is_some_and(|v| v == "zstd");
        let mut bytes = response.bytes().await.map_err(|e| ClientError::unanswered(&self.base, &e))?;
        if packed {
            bytes = unpack(&bytes, MAX_ANSWERS)
                .map(bytes::Bytes::from)
                .map_err(|e| ClientError::Protocol(format!("a multi answer's zstd: {e}")))?;
        }
        let answers = answers(&bytes)?;
        if answers.len() != count {
            return Err(ClientError::Protocol(format!(
                "{count} requests were answered {} times",
                answers.len()
            )));
        }
        Ok(answers)
    }
}

/// The answers in a multi answer's body.
fn answers(bytes: &bytes::Bytes) -> Result<Vec<reqwest::Response>, ClientError> {
    let bad = |what: &str| ClientError::Protocol(format!("a multi answer: {what}"));
    let mut at = 0;
    let mut out = Vec::new();
    while at < bytes.len() {
        let mut part = || next_part(bytes, &mut at).ok_or_else(|| bad("a part runs past the end"));
        let head: serde_json::Value = serde_json::from_slice(&part()?).map_err(|e| bad(&e.to_string()))?;
        let content = part()?;
        let status =
            head["status"].as_u64().and_then(|s| u16::try_from(s).ok()).ok_or_else(|| bad("no status"))?;
        let mut response = http::Response::builder().status(status);
        for (name, value) in head["headers"].as_object().into_iter().flatten() {
            if let Some(value) = value.as_str() {
                response = response.header(name.as_str(), value);
            }
        }
        let response = response.body(content).map_err(|e| bad(&e.to_string()))?;
        out.push(reqwest::Response::from(response));
    }
    Ok(out)
}

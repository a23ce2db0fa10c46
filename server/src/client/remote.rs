//! Talking to a server: diffcopy's API v1, or a pdiffcopy 1.0.1 server.

use std::ops::Range;
use std::sync::Arc;

use bytes::Bytes;
use diffcopy_core::delta::{BlockHashes, DeltaParams, Levels, Need, PieceHashes};
use diffcopy_core::{HashAlgorithm, Signature, parse_text};
use reqwest::{RequestBuilder, Response, StatusCode, header};
use serde_json::{Value, json};

use super::error::ClientError;
use super::multi::Multi;
use crate::packed::unpack;
use crate::parts::push_part;

/// Which protocol the server speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Protocol {
    /// diffcopy's protocol v2 (the old side searches; only what changed travels).
    V2,
    /// diffcopy's HTTP API v1 (atomic, verified uploads of whole blocks).
    V1,
    /// pdiffcopy 1.0.1's endpoints (in-place writes).
    Pdiffcopy,
}

/// A protocol v2 upload as the server opened it.
#[derive(Clone, Debug)]
pub(crate) struct DeltaSession {
    /// The session id.
    pub(crate) id: String,
    /// The new file's size, the server's seed and the levels.
    pub(crate) params: DeltaParams,
    /// The literal bytes to put in one data request: the server's
    /// `data_batch` (a server over a bucket asks for more, so that each
    /// request's data can be copied inside the store), else
    /// [`LITERAL_BATCH`](diffcopy_core::delta::LITERAL_BATCH).
    pub(crate) data_batch: u32,
}

/// A file in a server's listing.
#[derive(Clone, Debug, serde::Deserialize)]
pub(crate) struct Listed {
    /// Its path below the server's root.
    pub(crate) path: String,
    /// Its size.
    pub(crate) size: u64,
    /// Its modification time, milliseconds since the epoch.
    pub(crate) mtime: i64,
    /// Its ETag (empty when the listing was asked for none).
    #[serde(default)]
    pub(crate) etag: String,
}

/// A page of a listing as the server sends it.
#[derive(Debug, serde::Deserialize)]
struct ListPage {
    files: Vec<Listed>,
    #[serde(default)]
    cursor: Option<String>,
}

/// A file to send in a batch (`POST /api/v2/batch`).
#[derive(Debug)]
pub(crate) struct BatchFile {
    /// Its path on the server.
    pub(crate) path: String,
    pub(crate) bytes: Vec<u8>,
    /// Its SHA-256, 64 hex digits.
    pub(crate) sha256: String,
    /// Milliseconds since the epoch.
    pub(crate) mtime: i64,
    /// The target must not exist.
    pub(crate) new: bool,
}

/// The server's answer for one file of a batch.
#[derive(Debug, serde::Deserialize)]
pub(crate) struct BatchAnswer {
    pub(crate) status: u16,
    #[serde(default)]
    pub(crate) error: String,
    #[serde(default)]
    pub(crate) message: String,
}

#[derive(Debug, serde::Deserialize)]
struct BatchAnswers {
    files: Vec<BatchAnswer>,
}

/// One file on one server.
#[derive(Clone, Debug)]
pub(crate) struct Remote {
    http: reqwest::Client,
    base: String,
    path: String,
    token: Option<String>,
    /// Where its requests go together with other files' (a tree's small files).
    multi: Option<Arc<Multi>>,
}

impl Remote {
    /// A handle on `base`/`path`, sending `token` as a bearer token if set.
    pub(crate) fn new(http: reqwest::Client, base: &str, path: &str, token: Option<String>) -> Self {
        Self { http, base: base.to_owned(), path: path.to_owned(), token, multi: None }
    }

    /// The same, its requests sent together with others' through `multi`.
    pub(crate) fn with_multi(mut self, multi: Option<Arc<Multi>>) -> Self {
        self.multi = multi;
        self
    }

    /// The file's URL, for messages.
    pub(crate) fn url(&self) -> String {
        format!("{}/{}", self.base, self.path)
    }

    fn encoded_path(&self) -> String {
        self.path.split('/').map(percent_encode).collect::<Vec<_>>().join("/")
    }

    fn request(&self, method: reqwest::Method, url: String) -> RequestBuilder {
        let builder = self.http.request(method, url);
        match &self.token {
            Some(token) => builder.bearer_auth(token),
            None => builder,
        }
    }

    async fn send(&self, builder: RequestBuilder) -> Result<Response, ClientError> {
        match &self.multi {
            Some(multi) => {
                let request = builder.build().map_err(|e| ClientError::Local(format!("a request: {e}")))?;
                multi.send(request).await
            }
            None => builder.send().await.map_err(|e| ClientError::unanswered(&self.base, &e)),
        }
    }

    /// Asks the server which protocol it speaks: v2 if it says so, else v1;
    /// pdiffcopy when it has no `/api/v1/health`.
    pub(super) async fn detect(&self) -> Result<Protocol, ClientError> {
        let response =
            self.send(self.request(reqwest::Method::GET, format!("{}/api/v1/health", self.base))).await?;
        if response.status() == StatusCode::NOT_FOUND {
            return Ok(Protocol::Pdiffcopy);
        }
        let health: Value = check(response).await?.json().await.unwrap_or(Value::Null);
        let speaks_v2 = health["protocols"].as_array().is_some_and(|p| p.iter().any(|v| v == "v2"));
        Ok(if speaks_v2 { Protocol::V2 } else { Protocol::V1 })
    }

    /// The file's signature and ETag, or `None` if it does not exist.
    pub(crate) async fn signature(
        &self,
        algorithm: HashAlgorithm,
        block_size: u32,
    ) -> Result<Option<(Signature, String)>, ClientError> {
        let url = format!(
            "{}/api/v1/signatures/{}?block_size={block_size}&hash={algorithm}",
            self.base,
            self.encoded_path()
        );
        let response = self.send(self.request(reqwest::Method::GET, url)).await?;
        if response.status() == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        let response = check(response).await?;
        let etag = header_text(&response, header::ETAG);
        let bytes = response.bytes().await.map_err(|e| self.broken(e))?;
        let signature = Signature::decode(&bytes)
            .map_err(|e| ClientError::Protocol(format!("the server sent a bad signature: {e}")))?;
        Ok(Some((signature, etag)))
    }

    /// Opens an upload session for a file with signature `source`; returns its id.
    pub(super) async fn create_upload(
        &self,
        source: &Signature,
        base_etag: Option<&str>,
    ) -> Result<String, ClientError> {
        let body = json!({
            "path": self.path, "size": source.file_size(), "block_size": source.block_size(),
            "hash": source.algorithm().name(), "base_etag": base_etag,
        });
        let url = format!("{}/api/v1/uploads", self.base);
        let response = check(self.send(self.request(reqwest::Method::POST, url).json(&body)).await?).await?;
        let created: Value = response.json().await.map_err(|e| self.broken(e))?;
        created["id"]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| ClientError::Protocol("the server's upload answer has no id".into()))
    }

    /// Runs of the blocks an upload session already has, or `None` if it is gone.
    pub(super) async fn upload_status(&self, id: &str) -> Result<Option<Vec<Range<u64>>>, ClientError> {
        let url = format!("{}/api/v1/uploads/{id}", self.base);
        let response = self.send(self.request(reqwest::Method::GET, url)).await?;
        if response.status() == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        let status: Value = check(response).await?.json().await.map_err(|e| self.broken(e))?;
        let mut runs = Vec::new();
        for run in status["received"].as_array().into_iter().flatten() {
            match (run[0].as_u64(), run[1].as_u64()) {
                (Some(start), Some(end)) if start <= end => runs.push(start..end),
                _ => return Err(ClientError::Protocol(format!("bad run {run} in the upload status"))),
            }
        }
        runs.sort_by_key(|r| r.start);
        Ok(Some(runs))
    }

    /// Sends one block with its digest.
    pub(crate) async fn put_block(
        &self,
        id: &str,
        index: u64,
        bytes: Vec<u8>,
        digest: String,
    ) -> Result<(), ClientError> {
        let url = format!("{}/api/v1/uploads/{id}/blocks/{index}", self.base);
        let builder = self.request(reqwest::Method::PUT, url).header("x-block-digest", digest).body(bytes);
        check(self.send(builder).await?).await.map(drop)
    }

    /// Commits an upload with the source's signature.
    pub(crate) async fn commit(&self, id: &str, signature: Vec<u8>) -> Result<(), ClientError> {
        let url = format!("{}/api/v1/uploads/{id}/commit", self.base);
        check(self.send(self.request(reqwest::Method::POST, url).body(signature)).await?).await.map(drop)
    }

    /// Abandons an upload session (best effort).
    pub(crate) async fn abort(&self, id: &str) {
        let url = format!("{}/api/v1/uploads/{id}", self.base);
        let _ = self.send(self.request(reqwest::Method::DELETE, url)).await;
    }

    /// Bytes `start..end` of the file, refused if the file is no longer the
    /// version `etag` names.
    pub(super) async fn get_range(&self, start: u64, end: u64, etag: &str) -> Result<Bytes, ClientError> {
        let url = format!("{}/api/v1/files/{}", self.base, self.encoded_path());
        let builder = self
            .request(reqwest::Method::GET, url)
            .header(header::RANGE, format!("bytes={start}-{}", end - 1));
        let response = check(self.send(builder).await?).await?;
        if header_text(&response, header::ETAG) != etag {
            return Err(ClientError::Conflict(format!("{} changed during the download", self.url())));
        }
        let bytes = response.bytes().await.map_err(|e| self.broken(e))?;
        if bytes.len() as u64 != end - start {
            return Err(ClientError::Protocol(format!("{} sent a short range", self.url())));
        }
        Ok(bytes)
    }

    /// Protocol v2: opens an upload of a `size`-byte file; `whole` skips the search.
    pub(super) async fn delta_create(
        &self,
        size: u64,
        block_size: u32,
        whole: bool,
    ) -> Result<DeltaSession, ClientError> {
        let body = json!({ "path": self.path, "size": size, "block_size": block_size, "whole": whole });
        let url = format!("{}/api/v2/uploads", self.base);
        let response = check(self.send(self.request(reqwest::Method::POST, url).json(&body)).await?).await?;
        let created: Value = response.json().await.map_err(|e| self.broken(e))?;
        let bad =
            |what: &str| ClientError::Protocol(format!("the server's upload answer has no valid {what}"));
        let id = created["id"].as_str().ok_or_else(|| bad("id"))?.to_owned();
        let seed = created["seed"]
            .as_str()
            .and_then(|s| u64::from_str_radix(s, 16).ok())
            .ok_or_else(|| bad("seed"))?;
        let sizes: Vec<u32> = created["levels"]
            .as_array()
            .ok_or_else(|| bad("levels"))?
            .iter()
            .map(|v| v.as_u64().and_then(|n| u32::try_from(n).ok()))
            .collect::<Option<_>>()
            .ok_or_else(|| bad("levels"))?;
        let levels = Levels::new(&sizes).map_err(|_| bad("levels"))?;
        let data_batch = created["data_batch"]
            .as_u64()
            .map_or(diffcopy_core::delta::LITERAL_BATCH, |n| n.clamp(64 << 10, 32 << 20) as u32);
        Ok(DeltaSession { id, params: DeltaParams { file_size: size, seed, levels }, data_batch })
    }

    /// Protocol v2: one round of an upload's search.
    pub(super) async fn delta_hashes(
        &self,
        id: &str,
        hashes: Vec<u8>,
        size: u64,
    ) -> Result<Need, ClientError> {
        let url = format!("{}/api/v2/uploads/{id}/hashes", self.base);
        let response = check(self.send(self.request(reqwest::Method::POST, url).body(hashes)).await?).await?;
        let bytes = response.bytes().await.map_err(|e| self.broken(e))?;
        Need::decode(&bytes, size)
            .map_err(|e| ClientError::Protocol(format!("the server sent a bad need: {e}")))
    }

    /// Protocol v2: a body of literal frames.
    pub(super) async fn delta_data(&self, id: &str, frames: Vec<u8>) -> Result<(), ClientError> {
        let url = format!("{}/api/v2/uploads/{id}/data", self.base);
        check(self.send(self.request(reqwest::Method::POST, url).body(frames)).await?).await.map(drop)
    }

    /// Protocol v2: the literal ranges an upload still misses, or `None`
    /// when it is gone or not yet (or no longer) receiving data.
    pub(super) async fn delta_missing(&self, id: &str) -> Result<Option<Vec<Range<u64>>>, ClientError> {
        let url = format!("{}/api/v2/uploads/{id}", self.base);
        let response = self.send(self.request(reqwest::Method::GET, url)).await?;
        if response.status() == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        let status: Value = check(response).await?.json().await.map_err(|e| self.broken(e))?;
        if status["phase"] != "receiving" {
            return Ok(None);
        }
        let mut runs = Vec::new();
        for run in status["missing"].as_array().into_iter().flatten() {
            match (run[0].as_u64(), run[1].as_u64()) {
                (Some(start), Some(end)) if start < end => runs.push(start..end),
                _ => return Err(ClientError::Protocol(format!("bad range {run} in the upload status"))),
            }
        }
        Ok(Some(runs))
    }

    /// Protocol v2: commits an upload, giving the file's modification time
    /// (milliseconds since the epoch) when known; the answer's JSON.
    pub(super) async fn delta_commit(&self, id: &str, mtime: Option<i64>) -> Result<Value, ClientError> {
        let url = format!("{}/api/v2/uploads/{id}/commit", self.base);
        let mut request = self.request(reqwest::Method::POST, url);
        if let Some(mtime) = mtime {
            request = request.json(&serde_json::json!({ "mtime": mtime }));
        }
        let response = check(self.send(request).await?).await?;
        response.json().await.map_err(|e| self.broken(e))
    }

    /// One page of the server's files whose paths start with `prefix`, after
    /// `cursor`'s; the cursor of the next page, if any.
    pub(crate) async fn list_page(
        &self,
        prefix: &str,
        cursor: Option<&str>,
        etags: bool,
    ) -> Result<(Vec<Listed>, Option<String>), ClientError> {
        let mut url = format!("{}/api/v2/list?prefix={}&etags={etags}", self.base, percent_encode(prefix));
        if let Some(cursor) = cursor {
            url.push_str(&format!("&cursor={}", percent_encode(cursor)));
        }
        let request = self.request(reqwest::Method::GET, url).header(header::ACCEPT_ENCODING, "zstd");
        let response = check(self.send(request).await?).await?;
        let packed = response.headers().get(header::CONTENT_ENCODING).is_some_and(|v| v == "zstd");
        let mut body = response.bytes().await.map_err(|e| self.broken(e))?.to_vec();
        if packed {
            // A page of 1,000 files is some 120 KiB of JSON; a body that
            // unpacks to far more is not a listing.
            body = unpack(&body, 64 << 20)
                .map_err(|e| ClientError::Protocol(format!("a listing's zstd: {e}")))?;
        }
        let page: ListPage =
            serde_json::from_slice(&body).map_err(|e| ClientError::Protocol(format!("a listing: {e}")))?;
        Ok((page.files, page.cursor))
    }

    /// Sends `files` in one batch: one answer per file, in order, and the
    /// bytes of the request and its answer.
    pub(crate) async fn batch(&self, files: &[BatchFile]) -> Result<(Vec<BatchAnswer>, u64), ClientError> {
        let manifest: Vec<Value> = files
            .iter()
            .map(|f| {
                json!({ "path": f.path, "size": f.bytes.len(), "sha256": f.sha256, "mtime": f.mtime, "new": f.new })
            })
            .collect();
        let manifest = serde_json::to_vec(&json!({ "files": manifest }))
            .map_err(|e| ClientError::Local(e.to_string()))?;
        let mut body =
            Vec::with_capacity(4 + manifest.len() + files.iter().map(|f| f.bytes.len()).sum::<usize>());
        push_part(&mut body, &manifest);
        for file in files {
            body.extend_from_slice(&file.bytes);
        }
        let sent = body.len() as u64;
        let url = format!("{}/api/v2/batch", self.base);
        let request = self
            .request(reqwest::Method::POST, url)
            .header(header::CONTENT_TYPE, "application/vnd.diffcopy.batch");
        let response = check(self.send(request.body(body)).await?).await?;
        let text = response.bytes().await.map_err(|e| self.broken(e))?;
        let answers: BatchAnswers = serde_json::from_slice(&text)
            .map_err(|e| ClientError::Protocol(format!("a batch's answer: {e}")))?;
        if answers.files.len() != files.len() {
            return Err(ClientError::Protocol(format!(
                "a batch of {} files was answered for {}",
                files.len(),
                answers.files.len()
            )));
        }
        Ok((answers.files, sent + text.len() as u64))
    }

    /// Removes this file if it is still the version `etag` names; one
    /// already gone is no error.
    pub(crate) async fn remove(&self, etag: &str) -> Result<(), ClientError> {
        let url = format!("{}/api/v2/files/{}", self.base, self.encoded_path());
        let response =
            self.send(self.request(reqwest::Method::DELETE, url).header(header::IF_MATCH, etag)).await?;
        if response.status() == StatusCode::NOT_FOUND {
            return Ok(());
        }
        check(response).await.map(drop)
    }

    /// Protocol v2: abandons an upload (best effort).
    pub(super) async fn delta_abort(&self, id: &str) {
        let url = format!("{}/api/v2/uploads/{id}", self.base);
        let _ = self.send(self.request(reqwest::Method::DELETE, url)).await;
    }

    /// Protocol v2: the file's block hashes and ETag, or `None` if it does not exist.
    pub(super) async fn delta_signature(
        &self,
        block_size: u32,
    ) -> Result<Option<(BlockHashes, String)>, ClientError> {
        let url = format!("{}/api/v2/signatures/{}?block_size={block_size}", self.base, self.encoded_path());
        let response = self.send(self.request(reqwest::Method::GET, url)).await?;
        if response.status() == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        let response = check(response).await?;
        let etag = header_text(&response, header::ETAG);
        let bytes = response.bytes().await.map_err(|e| self.broken(e))?;
        let hashes = BlockHashes::decode(&bytes)
            .map_err(|e| ClientError::Protocol(format!("the server sent bad block hashes: {e}")))?;
        Ok(Some((hashes, etag)))
    }

    /// Protocol v2: the piece hashes of `need`'s refine ranges of version `etag`.
    pub(super) async fn delta_pieces(
        &self,
        etag: &str,
        params: &DeltaParams,
        need: &Need,
    ) -> Result<PieceHashes, ClientError> {
        let url = format!(
            "{}/api/v2/hashes/{}?block_size={}&seed={:016x}",
            self.base,
            self.encoded_path(),
            params.levels.block_size(),
            params.seed
        );
        let builder =
            self.request(reqwest::Method::POST, url).header(header::IF_MATCH, etag).body(need.encode());
        let bytes = self.checked_bytes(builder, etag).await?;
        let hashes = PieceHashes::decode(&bytes)
            .map_err(|e| ClientError::Protocol(format!("the server sent bad piece hashes: {e}")))?;
        Ok(hashes)
    }

    /// Protocol v2: `ranges` of version `etag` as literal frames.
    pub(super) async fn delta_fetch(
        &self,
        etag: &str,
        ranges: Vec<Range<u64>>,
    ) -> Result<Bytes, ClientError> {
        let url = format!("{}/api/v2/data/{}", self.base, self.encoded_path());
        let need = Need { level: 0, refine: Vec::new(), literal: ranges };
        let builder =
            self.request(reqwest::Method::POST, url).header(header::IF_MATCH, etag).body(need.encode());
        self.checked_bytes(builder, etag).await
    }

    /// The body of a request made against version `etag`; 412 is the file changing.
    async fn checked_bytes(&self, builder: RequestBuilder, etag: &str) -> Result<Bytes, ClientError> {
        let response = self.send(builder).await?;
        if response.status() == StatusCode::PRECONDITION_FAILED {
            return Err(ClientError::Conflict(format!(
                "{} changed during the download ({etag})",
                self.url()
            )));
        }
        check(response).await?.bytes().await.map_err(|e| self.broken(e))
    }

    fn pd_url(&self, endpoint: &str, params: &[(&str, String)]) -> String {
        let mut url =
            format!("{}/{endpoint}?filename={}", self.base, percent_encode(&format!("/{}", self.path)));
        for (k, v) in params {
            url.push_str(&format!("&{k}={}", percent_encode(v)));
        }
        url
    }

    /// pdiffcopy: the file's size, or `None` if it does not exist.
    pub(super) async fn pd_info(&self) -> Result<Option<u64>, ClientError> {
        let response = self.send(self.request(reqwest::Method::GET, self.pd_url("info", &[]))).await?;
        if response.status() == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        let info: Value = check(response).await?.json().await.map_err(|e| self.broken(e))?;
        info["size"]
            .as_u64()
            .map(Some)
            .ok_or_else(|| ClientError::Protocol("the server's info has no size".into()))
    }

    /// pdiffcopy: the signature of a file of `size` bytes from its text hashes.
    pub(super) async fn pd_hashes(
        &self,
        algorithm: HashAlgorithm,
        block_size: u32,
        size: u64,
        concurrency: usize,
    ) -> Result<Signature, ClientError> {
        let url = self.pd_url(
            "hashes",
            &[
                ("method", algorithm.name().to_owned()),
                ("block_size", block_size.to_string()),
                ("concurrency", concurrency.to_string()),
            ],
        );
        let text = check(self.send(self.request(reqwest::Method::GET, url)).await?)
            .await?
            .text()
            .await
            .map_err(|e| self.broken(e))?;
        parse_text(&text, algorithm, block_size, size)
            .map_err(|e| ClientError::Protocol(format!("the server sent bad hashes: {e}")))
    }

    /// pdiffcopy: creates or resizes the file.
    pub(super) async fn pd_resize(&self, size: u64) -> Result<(), ClientError> {
        let url = self.pd_url("resize", &[("size", size.to_string())]);
        check(self.send(self.request(reqwest::Method::POST, url)).await?).await.map(drop)
    }

    /// pdiffcopy: writes bytes in place.
    pub(super) async fn pd_write(&self, offset: u64, bytes: Vec<u8>) -> Result<(), ClientError> {
        let url = self.pd_url("blocks", &[("offset", offset.to_string())]);
        check(self.send(self.request(reqwest::Method::POST, url).body(bytes)).await?).await.map(drop)
    }

    /// pdiffcopy: reads up to `size` bytes at `offset`.
    pub(super) async fn pd_read(&self, offset: u64, size: u64) -> Result<Bytes, ClientError> {
        let url = self.pd_url("blocks", &[("offset", offset.to_string()), ("size", size.to_string())]);
        check(self.send(self.request(reqwest::Method::GET, url)).await?)
            .await?
            .bytes()
            .await
            .map_err(|e| self.broken(e))
    }

    fn broken(&self, err: reqwest::Error) -> ClientError {
        ClientError::Connect { url: self.base.clone(), detail: format!("the response broke off: {err}") }
    }
}

fn header_text(response: &Response, name: header::HeaderName) -> String {
    response.headers().get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned()
}

/// Turns an error status into a [`ClientError`] with the server's message.
async fn check(response: Response) -> Result<Response, ClientError> {
    let status = response.status();
    if status.is_success() {
        return Ok(response);
    }
    let retry_after = (status == StatusCode::SERVICE_UNAVAILABLE)
        .then(|| header_text(&response, header::RETRY_AFTER).trim().parse().ok())
        .flatten()
        .map(std::time::Duration::from_secs);
    let text = response.text().await.unwrap_or_default();
    let body: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
    let code = body["error"].as_str().unwrap_or("").to_owned();
    let message = body["message"].as_str().map(str::to_owned).unwrap_or_else(|| {
        if text.is_empty() { status.canonical_reason().unwrap_or("error").to_owned() } else { text.clone() }
    });
    Err(match status.as_u16() {
        401 | 403 => ClientError::Denied { message },
        409 | 412 => ClientError::Conflict(message),
        _ => ClientError::Server { status: status.as_u16(), code, message, retry_after },
    })
}

/// Percent-encodes everything but unreserved characters.
fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

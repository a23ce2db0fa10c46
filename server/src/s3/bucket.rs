//! One bucket, and the requests on its objects: each signed by reqsign
//! (`credentials.rs`), each body sent with its `Content-MD5` so that the
//! store refuses bytes damaged on the way, each answer read within a bound,
//! and each request tried again as AWS's standard mode would (`retry.rs`).

use std::ops::Range;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use base64::Engine as _;
use bytes::Bytes;
use md5::{Digest as _, Md5};
use reqsign_aws_v4::Credential;
use reqsign_core::Signer;
use reqwest::{Method, Response, Url};

use super::address::{Addressing, Place, query_text};
use super::credentials::{CHAIN_TIMEOUT, Credentials, describe, signer};
use super::error::S3Error;
use super::retry::{self, Budget, MAX_ATTEMPTS};
use super::xml;

/// Where the bucket is and who asks.
#[derive(Debug, Clone)]
pub(crate) struct BucketConfig {
    /// `http(s)://host[:port]` of an S3-compatible store; `None` for AWS
    /// (`https://s3.REGION.amazonaws.com`).
    pub(crate) endpoint: Option<String>,
    /// The signing region.
    pub(crate) region: String,
    /// The name of the bucket.
    pub(crate) bucket: String,
    /// Path-style or virtual-hosted; `None` for the endpoint's default.
    pub(crate) addressing: Option<Addressing>,
    /// Where the credentials come from.
    pub(crate) credentials: Credentials,
}

/// What a write requires of the object it replaces.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Condition<'a> {
    /// Nothing.
    None,
    /// That it is the version with this ETag (`If-Match`).
    IfMatch(&'a str),
    /// That there is none (`If-None-Match: *`).
    IfNoneMatch,
}

/// One object of a listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Listed {
    /// Its key.
    pub(crate) key: String,
    /// Its size in bytes.
    pub(crate) size: u64,
    /// When it was last written, unix seconds.
    pub(crate) modified: u64,
}

/// The store traffic since start, counted by the client.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Traffic {
    /// Requests made, retries included.
    pub(crate) requests: u64,
    /// Of those, the ones AWS prices as writes ("class A": PUT, POST,
    /// COPY, LIST); GET and HEAD of an object are the cheaper reads, DELETE
    /// is free.
    pub(crate) write_requests: u64,
    /// Of the requests, the retries.
    pub(crate) retries: u64,
    /// Bytes sent into the store (object and part bodies).
    pub(crate) bytes_uploaded: u64,
    /// Bytes the store copied inside itself (`UploadPartCopy` ranges).
    pub(crate) bytes_copied: u64,
    /// Bytes read from the store.
    pub(crate) bytes_downloaded: u64,
}

#[derive(Debug, Default)]
pub(super) struct Counters {
    requests: AtomicU64,
    write_requests: AtomicU64,
    retries: AtomicU64,
    uploaded: AtomicU64,
    pub(super) copied: AtomicU64,
    downloaded: AtomicU64,
}

/// The most of an answer read into memory whole: pointers, session
/// records, listings, block hashes. Ranged reads are bounded by their range.
const MAX_WHOLE_ANSWER: u64 = 256 << 20;
/// The most of an error answer read.
const MAX_ERROR_ANSWER: u64 = 64 << 10;

/// One request, sent as it is at each attempt.
#[derive(Debug)]
pub(super) struct Request<'a> {
    method: Method,
    key: Option<&'a str>,
    query: &'a [(&'a str, &'a str)],
    headers: &'a [(&'a str, &'a str)],
    body: Option<(Bytes, [u8; 16])>,
}

impl<'a> Request<'a> {
    /// `method` on object `key` (or the bucket, for `None`).
    pub(super) fn new(method: Method, key: Option<&'a str>) -> Self {
        Self { method, key, query: &[], headers: &[], body: None }
    }

    pub(super) fn query(self, query: &'a [(&'a str, &'a str)]) -> Self {
        Self { query, ..self }
    }

    pub(super) fn headers(self, headers: &'a [(&'a str, &'a str)]) -> Self {
        Self { headers, ..self }
    }

    /// The body, and its MD5 (computed once, sent at every attempt).
    pub(super) fn body(self, body: Bytes) -> Self {
        let md5 = Md5::digest(&body).into();
        Self { body: Some((body, md5)), ..self }
    }

    /// The ETag a store gives an object written whole with this body
    /// (its MD5, quoted), if it has one.
    fn etag_of_body(&self) -> Option<String> {
        self.body.as_ref().map(|(_, md5)| format!("\"{}\"", diffcopy_core::hex::encode(md5)))
    }
}

/// A request that failed, with whether it was sent more than once: a
/// write whose first answer was lost may have taken effect.
#[derive(Debug)]
pub(super) struct Failed {
    pub(super) error: S3Error,
    pub(super) retried: bool,
}

impl From<Failed> for S3Error {
    fn from(failed: Failed) -> Self {
        failed.error
    }
}

/// A bucket of an S3-compatible store; cheap to clone.
#[derive(Debug, Clone)]
pub(crate) struct Bucket {
    http: reqwest::Client,
    place: Place,
    name: String,
    region: String,
    signer: Signer<Credential>,
    budget: Arc<Budget>,
    pub(super) counters: Arc<Counters>,
}

impl Bucket {
    /// A client for the bucket `config` names (no request is made).
    pub(crate) fn new(config: BucketConfig) -> Result<Self, String> {
        let endpoint = match &config.endpoint {
            Some(endpoint) => {
                let url = Url::parse(endpoint).map_err(|e| format!("the S3 endpoint {endpoint}: {e}"))?;
                if !matches!(url.scheme(), "http" | "https") || url.path() != "/" || url.host_str().is_none()
                {
                    return Err(format!("the S3 endpoint {endpoint} must be http(s)://host[:port]"));
                }
                Some(url)
            }
            None => None,
        };
        let addressing =
            config.addressing.unwrap_or_else(|| Addressing::default_for(endpoint.as_ref(), &config.bucket));
        let endpoint = match endpoint {
            Some(url) => url,
            None => Url::parse(&format!("https://s3.{}.amazonaws.com", config.region))
                .map_err(|e| format!("the region {:?}: {e}", config.region))?,
        };
        let place = Place::new(&endpoint, &config.bucket, addressing)?;
        let client = |connect: Duration| {
            crate::http::client_builder()
                .connect_timeout(connect)
                .read_timeout(Duration::from_secs(120))
                .pool_max_idle_per_host(16)
                .tcp_nodelay(true)
        };
        let http = client(Duration::from_secs(10)).build().map_err(|e| format!("the S3 HTTP client: {e}"))?;
        // The credential sources' own requests: IMDS and the container
        // endpoint answer at once where they exist.
        let chain_http = client(Duration::from_secs(2))
            .timeout(CHAIN_TIMEOUT)
            .build()
            .map_err(|e| format!("the credential HTTP client: {e}"))?;
        Ok(Self {
            http,
            place,
            name: config.bucket,
            signer: signer(&config.credentials, &config.region, chain_http),
            region: config.region,
            budget: Arc::default(),
            counters: Arc::default(),
        })
    }

    /// The bucket's name.
    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    /// The traffic so far.
    pub(crate) fn traffic(&self) -> Traffic {
        let c = &self.counters;
        Traffic {
            requests: c.requests.load(Ordering::Relaxed),
            write_requests: c.write_requests.load(Ordering::Relaxed),
            retries: c.retries.load(Ordering::Relaxed),
            bytes_uploaded: c.uploaded.load(Ordering::Relaxed),
            bytes_copied: c.copied.load(Ordering::Relaxed),
            bytes_downloaded: c.downloaded.load(Ordering::Relaxed),
        }
    }

    /// Sends `request` once, signed; an error status becomes [`S3Error::Status`].
    async fn send_once(&self, request: &Request<'_>) -> Result<Response, S3Error> {
        let url = self.place.url(request.key, &query_text(request.query));
        let mut head = http::Request::builder().method(request.method.clone()).uri(url.as_str());
        for (name, value) in request.headers {
            head = head.header(*name, *value);
        }
        if let Some((_, md5)) = &request.body {
            head = head.header("content-md5", base64::engine::general_purpose::STANDARD.encode(md5));
        }
        let (mut head, ()) =
            head.body(()).map_err(|e| S3Error::Protocol(format!("a request to {url}: {e}")))?.into_parts();
        self.signer.sign(&mut head, None).await.map_err(|e| S3Error::Credentials(describe(&e)))?;
        let body = request.body.as_ref().map_or_else(Bytes::new, |(body, _)| body.clone());
        let sent = body.len() as u64;
        let outgoing = reqwest::Request::try_from(http::Request::from_parts(head, body))?;
        let method = &request.method;
        if method == Method::PUT || method == Method::POST || (method == Method::GET && request.key.is_none())
        {
            self.counters.write_requests.fetch_add(1, Ordering::Relaxed);
        }
        self.counters.requests.fetch_add(1, Ordering::Relaxed);
        self.counters.uploaded.fetch_add(sent, Ordering::Relaxed);
        let response = self.http.execute(outgoing).await?;
        if response.status().is_success() {
            return Ok(response);
        }
        let status = response.status();
        let region =
            response.headers().get("x-amz-bucket-region").and_then(|v| v.to_str().ok()).map(str::to_owned);
        let text = String::from_utf8_lossy(&self.read(response, MAX_ERROR_ANSWER).await.unwrap_or_default())
            .into_owned();
        let code = xml::text(&text, "Code")
            .unwrap_or_else(|| status.canonical_reason().unwrap_or("error").replace(' ', ""));
        // A bucket in another region: AWS answers 301 (or 400 naming it).
        if let Some(right) = region.or_else(|| xml::text(&text, "Region")).filter(|r| *r != self.region) {
            return Err(S3Error::Status {
                status: status.as_u16(),
                code,
                message: format!(
                    "bucket {} is in region {right}, not {}: give --s3-region {right}",
                    self.name, self.region
                ),
            });
        }
        Err(S3Error::Status {
            status: status.as_u16(),
            code,
            message: xml::text(&text, "Message").unwrap_or_default(),
        })
    }

    /// Sends `request` and reads its answer with `read`, trying again
    /// (the answer's reading included, for errors S3 puts in a 200) as
    /// [`retry`] says.
    pub(super) async fn call<T, F, Fut>(&self, request: &Request<'_>, read: F) -> Result<T, Failed>
    where
        F: Fn(Response) -> Fut,
        Fut: Future<Output = Result<T, S3Error>>,
    {
        let mut held = 0;
        for attempt in 1.. {
            let result = match self.send_once(request).await {
                Ok(response) => read(response).await,
                Err(e) => Err(e),
            };
            let error = match result {
                Ok(value) => {
                    self.budget.succeeded(held);
                    return Ok(value);
                }
                Err(error) => error,
            };
            let retried = attempt > 1;
            let Some(why) = retry::retryable(&error).filter(|_| attempt < MAX_ATTEMPTS) else {
                return Err(Failed { error, retried });
            };
            let Some(cost) = self.budget.take(why) else {
                tracing::warn!("the store's retry budget is spent: {error}");
                return Err(Failed { error, retried });
            };
            held = cost;
            let delay = retry::delay(why, attempt, retry::unit());
            tracing::debug!(?why, ?delay, attempt, "retrying a store request: {error}");
            self.counters.retries.fetch_add(1, Ordering::Relaxed);
            tokio::time::sleep(delay).await;
        }
        unreachable!("the attempts are bounded by MAX_ATTEMPTS")
    }

    /// Reads an answer's body whole, counting it: into one buffer of the
    /// announced length, so a large body is held once, not once in pieces
    /// and once joined; more than `limit` bytes is an error.
    async fn read(&self, mut response: Response, limit: u64) -> Result<Bytes, S3Error> {
        let announced = response.content_length().unwrap_or(0);
        if announced > limit {
            return Err(S3Error::Protocol(format!("an answer of {announced} bytes, over {limit}")));
        }
        let mut out = bytes::BytesMut::with_capacity(announced as usize);
        while let Some(chunk) = response.chunk().await? {
            if (out.len() + chunk.len()) as u64 > limit {
                return Err(S3Error::Protocol(format!("an answer of more than {limit} bytes")));
            }
            out.extend_from_slice(&chunk);
        }
        self.counters.downloaded.fetch_add(out.len() as u64, Ordering::Relaxed);
        Ok(out.freeze())
    }

    /// Reads a small whole answer (a listing, an XML reply) as text.
    pub(super) async fn text(&self, response: Response) -> Result<String, S3Error> {
        Ok(String::from_utf8_lossy(&self.read(response, MAX_WHOLE_ANSWER).await?).into_owned())
    }

    /// Object `key`, or its `range`; `None` if it does not exist.
    pub(crate) async fn get(&self, key: &str, range: Option<Range<u64>>) -> Result<Option<Bytes>, S3Error> {
        let limit = range.as_ref().map_or(MAX_WHOLE_ANSWER, |r| r.end.saturating_sub(r.start));
        let header = range.map(|r| format!("bytes={}-{}", r.start, r.end.saturating_sub(1)));
        let headers: Vec<(&str, &str)> = header.as_deref().map(|r| ("range", r)).into_iter().collect();
        let request = Request::new(Method::GET, Some(key)).headers(&headers);
        found(self.call(&request, |response| self.read(response, limit)).await)
    }

    /// The answer to a GET of `key` with this `Range` header, to stream;
    /// `None` if it does not exist. Only the request is retried: a stream
    /// that breaks is the reader's to handle.
    pub(crate) async fn get_response(
        &self,
        key: &str,
        range: Option<&str>,
    ) -> Result<Option<Response>, S3Error> {
        let headers: Vec<(&str, &str)> = range.map(|r| ("range", r)).into_iter().collect();
        let request = Request::new(Method::GET, Some(key)).headers(&headers);
        found(self.call(&request, |response| async { Ok(response) }).await)
    }

    /// Appends `range` of object `key` to `out` as it arrives, with no
    /// second copy; the bytes appended (`None` if the object does not
    /// exist). An attempt that breaks off is undone before the next.
    pub(crate) async fn get_into(
        &self,
        key: &str,
        range: Range<u64>,
        out: &mut bytes::BytesMut,
    ) -> Result<Option<u64>, S3Error> {
        let limit = range.end.saturating_sub(range.start);
        let header = format!("bytes={}-{}", range.start, range.end.saturating_sub(1));
        let headers = [("range", header.as_str())];
        let request = Request::new(Method::GET, Some(key)).headers(&headers);
        let start = out.len();
        // Each attempt's reading borrows `out` in turn; never across an await.
        let out = std::sync::Mutex::new(out);
        let append = |chunk: &[u8]| {
            let mut out = out.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            if (out.len() - start + chunk.len()) as u64 > limit {
                return Err(S3Error::Protocol(format!("more than the {limit} bytes asked for")));
            }
            out.extend_from_slice(chunk);
            Ok(())
        };
        let (out, append) = (&out, &append);
        let appended = found(
            self.call(&request, |mut response| async move {
                out.lock().unwrap_or_else(std::sync::PoisonError::into_inner).truncate(start);
                let mut appended = 0u64;
                while let Some(chunk) = response.chunk().await? {
                    append(&chunk)?;
                    appended += chunk.len() as u64;
                }
                Ok(appended)
            })
            .await,
        )?;
        if let Some(n) = appended {
            self.counters.downloaded.fetch_add(n, Ordering::Relaxed);
        }
        Ok(appended)
    }

    /// Object `key` whole with its ETag; `None` if it does not exist.
    pub(crate) async fn get_with_etag(&self, key: &str) -> Result<Option<(Bytes, String)>, S3Error> {
        let request = Request::new(Method::GET, Some(key));
        found(
            self.call(&request, |response| async move {
                let etag = etag_of(&response)?;
                Ok((self.read(response, MAX_WHOLE_ANSWER).await?, etag))
            })
            .await,
        )
    }

    /// Counts bytes of a streamed answer as read.
    pub(crate) fn count_downloaded(&self, bytes: u64) {
        self.counters.downloaded.fetch_add(bytes, Ordering::Relaxed);
    }

    /// Object `key`'s ETag; `None` if it does not exist.
    pub(super) async fn etag(&self, key: &str) -> Result<Option<String>, S3Error> {
        let request = Request::new(Method::HEAD, Some(key));
        found(self.call(&request, |response| async move { etag_of(&response) }).await)
    }

    /// Writes `key` whole if `condition` holds; its new ETag. A lost
    /// condition is [`S3Error::is_precondition_failed`].
    ///
    /// A write whose answer was lost is sent again, and may then find its
    /// own earlier attempt in the way (412): the object's ETag, the MD5 of
    /// what it holds, tells that success from a lost race.
    pub(crate) async fn put(
        &self,
        key: &str,
        body: Bytes,
        condition: Condition<'_>,
    ) -> Result<String, S3Error> {
        let headers: Vec<(&str, &str)> = match condition {
            Condition::None => vec![],
            Condition::IfMatch(etag) => vec![("if-match", etag)],
            Condition::IfNoneMatch => vec![("if-none-match", "*")],
        };
        let request = Request::new(Method::PUT, Some(key)).headers(&headers).body(body);
        match self.call(&request, |response| async move { etag_of(&response) }).await {
            Ok(etag) => Ok(etag),
            Err(Failed { error, retried: true }) if error.is_precondition_failed() => {
                let ours = request.etag_of_body();
                match self.etag(key).await? {
                    Some(etag) if Some(&etag) == ours.as_ref() => {
                        tracing::debug!(key, "a write's answer was lost; the object is ours");
                        Ok(etag)
                    }
                    _ => Err(error),
                }
            }
            Err(failed) => Err(failed.error),
        }
    }

    /// Removes `key` (no error if it is gone already).
    pub(crate) async fn delete(&self, key: &str) -> Result<(), S3Error> {
        let request = Request::new(Method::DELETE, Some(key));
        found(self.call(&request, |_| async { Ok(()) }).await).map(drop)
    }

    /// Removes `key` if its ETag is still `etag` (a store that cannot
    /// delete on a condition removes it anyway); a lost race is
    /// [`S3Error::is_precondition_failed`]. No error if it is gone.
    pub(crate) async fn delete_if_match(&self, key: &str, etag: &str) -> Result<(), S3Error> {
        let headers = [("if-match", etag)];
        let request = Request::new(Method::DELETE, Some(key)).headers(&headers);
        found(self.call(&request, |_| async { Ok(()) }).await).map(drop)
    }

    /// Every object whose key starts with `prefix`, in key order.
    pub(crate) async fn list(&self, prefix: &str) -> Result<Vec<Listed>, S3Error> {
        Ok(self.list_under(prefix, false).await?.0)
    }

    /// One folder of keys: the objects whose keys start with `prefix` and
    /// hold no `/` after it, and the folders below it (their prefixes,
    /// ending in `/`), each in the store's order.
    pub(crate) async fn list_folder(&self, prefix: &str) -> Result<(Vec<Listed>, Vec<String>), S3Error> {
        self.list_under(prefix, true).await
    }

    /// Every page of a listing of `prefix`, with `/` as the delimiter or none.
    async fn list_under(&self, prefix: &str, folder: bool) -> Result<(Vec<Listed>, Vec<String>), S3Error> {
        let (mut files, mut folders) = (Vec::new(), Vec::new());
        let mut token: Option<String> = None;
        loop {
            let mut query = vec![("list-type", "2"), ("prefix", prefix)];
            if folder {
                query.push(("delimiter", "/"));
            }
            if let Some(token) = &token {
                query.push(("continuation-token", token));
            }
            let request = Request::new(Method::GET, None).query(&query);
            let text = self.call(&request, |response| self.text(response)).await?;
            files.extend(listed(&text)?);
            for common in xml::blocks(&text, "CommonPrefixes") {
                folders.extend(xml::text(common, "Prefix"));
            }
            token = xml::text(&text, "NextContinuationToken");
            if xml::text(&text, "IsTruncated").as_deref() != Some("true") || token.is_none() {
                return Ok((files, folders));
            }
        }
    }

    /// Lists one key: what `diffcopy serve` does at start, so missing
    /// credentials, wrong keys, a wrong region and a missing bucket stop it
    /// with the reason.
    pub(crate) async fn check(&self) -> Result<(), S3Error> {
        let request = Request::new(Method::GET, None).query(&[("list-type", "2"), ("max-keys", "1")]);
        self.call(&request, |_| async { Ok(()) }).await.map_err(S3Error::from)
    }

    /// Creates the bucket (for tests and set-up scripts).
    pub(crate) async fn create(&self) -> Result<(), S3Error> {
        self.call(&Request::new(Method::PUT, None), |_| async { Ok(()) }).await.map_err(S3Error::from)
    }
}

/// The objects of a listing's answer.
fn listed(text: &str) -> Result<Vec<Listed>, S3Error> {
    let mut out = Vec::new();
    for entry in xml::blocks(text, "Contents") {
        let key =
            xml::text(entry, "Key").ok_or_else(|| S3Error::Protocol("a listed object has no key".into()))?;
        let size = xml::text(entry, "Size").and_then(|s| s.parse().ok()).unwrap_or(0);
        let modified = xml::text(entry, "LastModified")
            .and_then(|t| t.parse::<jiff::Timestamp>().ok())
            .map_or(0, |t| u64::try_from(t.as_second()).unwrap_or(0));
        out.push(Listed { key, size, modified });
    }
    Ok(out)
}

/// `None` for a 404.
fn found<T>(result: Result<T, Failed>) -> Result<Option<T>, S3Error> {
    match result {
        Ok(value) => Ok(Some(value)),
        Err(failed) if failed.error.is_not_found() => Ok(None),
        Err(failed) => Err(failed.error),
    }
}

pub(super) fn etag_of(response: &Response) -> Result<String, S3Error> {
    response
        .headers()
        .get("etag")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .ok_or_else(|| S3Error::Protocol("a write was answered without an ETag".into()))
}

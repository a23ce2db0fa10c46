//! One bucket, and the requests on its objects.

use std::ops::Range;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use reqwest::{Method, Response, Url};

use super::credentials::Credentials;
use super::error::S3Error;
use super::sigv4::{ToSign, UNSIGNED_PAYLOAD, amz_date, authorization, parse_timestamp, uri_encode};
use super::xml;

/// Where the bucket is and who asks.
#[derive(Debug, Clone)]
pub(crate) struct BucketConfig {
    /// `http(s)://host[:port]` of an S3-compatible store; `None` for AWS
    /// (`https://s3.REGION.amazonaws.com`).
    pub(crate) endpoint: Option<String>,
    /// The signing region.
    pub(crate) region: String,
    /// The bucket's name.
    pub(crate) bucket: String,
    /// The keys.
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
    /// Requests made.
    pub(crate) requests: u64,
    /// Of those, the ones AWS prices as writes ("class A": PUT, POST,
    /// COPY, LIST); GET and HEAD of an object are the cheaper reads, DELETE
    /// is free.
    pub(crate) write_requests: u64,
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
    uploaded: AtomicU64,
    pub(super) copied: AtomicU64,
    downloaded: AtomicU64,
}

/// A bucket of an S3-compatible store; cheap to clone.
#[derive(Debug, Clone)]
pub(crate) struct Bucket {
    http: reqwest::Client,
    endpoint: Url,
    /// The `Host` header reqwest sends, which is signed.
    host: String,
    name: String,
    region: String,
    credentials: Credentials,
    pub(super) counters: Arc<Counters>,
}

impl Bucket {
    /// A client for the bucket `config` names (no request is made).
    pub(crate) fn new(config: BucketConfig) -> Result<Self, String> {
        let endpoint =
            config.endpoint.unwrap_or_else(|| format!("https://s3.{}.amazonaws.com", config.region));
        let endpoint = Url::parse(&endpoint).map_err(|e| format!("the S3 endpoint {endpoint}: {e}"))?;
        if !matches!(endpoint.scheme(), "http" | "https") || endpoint.path() != "/" {
            return Err(format!("the S3 endpoint {endpoint} must be http(s)://host[:port]"));
        }
        let host = match (endpoint.host_str(), endpoint.port()) {
            (Some(host), Some(port)) => format!("{host}:{port}"),
            (Some(host), None) => host.to_owned(),
            (None, _) => return Err(format!("the S3 endpoint {endpoint} has no host")),
        };
        // reqwest is built without a crypto provider of its own; ring it is.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .read_timeout(Duration::from_secs(120))
            .pool_max_idle_per_host(16)
            .tcp_nodelay(true)
            .build()
            .map_err(|e| format!("the S3 HTTP client: {e}"))?;
        Ok(Self {
            http,
            endpoint,
            host,
            name: config.bucket,
            region: config.region,
            credentials: config.credentials,
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
            bytes_uploaded: c.uploaded.load(Ordering::Relaxed),
            bytes_copied: c.copied.load(Ordering::Relaxed),
            bytes_downloaded: c.downloaded.load(Ordering::Relaxed),
        }
    }

    /// `/bucket/key`, encoded.
    pub(super) fn path_of(&self, key: Option<&str>) -> String {
        match key {
            Some(key) => format!("/{}/{}", uri_encode(&self.name, false), uri_encode(key, true)),
            None => format!("/{}", uri_encode(&self.name, false)),
        }
    }

    /// Sends one signed request; an error status becomes [`S3Error::Status`].
    pub(super) async fn send(
        &self,
        method: Method,
        key: Option<&str>,
        query: &[(&str, &str)],
        headers: &[(&str, &str)],
        body: Option<Bytes>,
    ) -> Result<Response, S3Error> {
        let path = self.path_of(key);
        let mut pairs: Vec<(String, String)> =
            query.iter().map(|(k, v)| (uri_encode(k, false), uri_encode(v, false))).collect();
        pairs.sort();
        let query_text: Vec<String> = pairs.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let query_text = query_text.join("&");
        let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let date = amz_date(now);
        let mut signed: Vec<(String, String)> = vec![
            ("host".into(), self.host.clone()),
            ("x-amz-content-sha256".into(), UNSIGNED_PAYLOAD.into()),
            ("x-amz-date".into(), date.clone()),
        ];
        if let Some(token) = &self.credentials.session_token {
            signed.push(("x-amz-security-token".into(), token.clone()));
        }
        signed.extend(headers.iter().map(|(k, v)| (k.to_ascii_lowercase(), (*v).to_owned())));
        signed.sort();
        let auth = authorization(
            &self.credentials,
            &ToSign {
                method: method.as_str(),
                path: &path,
                query: &query_text,
                headers: &signed,
                amz_date: &date,
                region: &self.region,
            },
        );
        let mut url = self.endpoint.clone();
        url.set_path(&path);
        url.set_query((!query_text.is_empty()).then_some(query_text.as_str()));
        if method == Method::PUT || method == Method::POST || (method == Method::GET && key.is_none()) {
            self.counters.write_requests.fetch_add(1, Ordering::Relaxed);
        }
        let mut request = self.http.request(method, url).header("authorization", auth);
        for (name, value) in signed.iter().filter(|(name, _)| name != "host") {
            request = request.header(name.as_str(), value.as_str());
        }
        if let Some(body) = body {
            self.counters.uploaded.fetch_add(body.len() as u64, Ordering::Relaxed);
            request = request.body(body);
        }
        self.counters.requests.fetch_add(1, Ordering::Relaxed);
        let response = request.send().await?;
        if response.status().is_success() {
            return Ok(response);
        }
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        Err(S3Error::Status {
            status: status.as_u16(),
            code: xml::text(&text, "Code")
                .unwrap_or_else(|| status.canonical_reason().unwrap_or("error").replace(' ', "")),
            message: xml::text(&text, "Message").unwrap_or_default(),
        })
    }

    /// Reads a whole answer's body, counting it: into one buffer of the
    /// announced length, so a large body is held once, not once in pieces
    /// and once joined.
    pub(super) async fn body(&self, mut response: Response) -> Result<Bytes, S3Error> {
        let mut out =
            bytes::BytesMut::with_capacity(response.content_length().unwrap_or(0).min(64 << 20) as usize);
        while let Some(chunk) = response.chunk().await? {
            out.extend_from_slice(&chunk);
        }
        self.counters.downloaded.fetch_add(out.len() as u64, Ordering::Relaxed);
        Ok(out.freeze())
    }

    /// Object `key`, or its `range`; `None` if it does not exist.
    pub(crate) async fn get(&self, key: &str, range: Option<Range<u64>>) -> Result<Option<Bytes>, S3Error> {
        let header = range.map(|r| format!("bytes={}-{}", r.start, r.end.saturating_sub(1)));
        match self.get_response(key, header.as_deref()).await? {
            Some(response) => Ok(Some(self.body(response).await?)),
            None => Ok(None),
        }
    }

    /// The answer to a GET of `key` with this `Range` header, to stream;
    /// `None` if it does not exist.
    pub(crate) async fn get_response(
        &self,
        key: &str,
        range: Option<&str>,
    ) -> Result<Option<Response>, S3Error> {
        let headers: Vec<(&str, &str)> = range.map(|r| ("range", r)).into_iter().collect();
        match self.send(Method::GET, Some(key), &[], &headers, None).await {
            Ok(response) => Ok(Some(response)),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Appends `range` of object `key` to `out` as it arrives; the bytes
    /// appended (`None` if the object does not exist).
    pub(crate) async fn get_into(
        &self,
        key: &str,
        range: Range<u64>,
        out: &mut bytes::BytesMut,
    ) -> Result<Option<u64>, S3Error> {
        let header = format!("bytes={}-{}", range.start, range.end.saturating_sub(1));
        let Some(mut response) = self.get_response(key, Some(&header)).await? else { return Ok(None) };
        let start = out.len();
        while let Some(chunk) = response.chunk().await? {
            out.extend_from_slice(&chunk);
        }
        let appended = (out.len() - start) as u64;
        self.counters.downloaded.fetch_add(appended, Ordering::Relaxed);
        Ok(Some(appended))
    }

    /// Counts bytes of a streamed answer as read.
    pub(crate) fn count_downloaded(&self, bytes: u64) {
        self.counters.downloaded.fetch_add(bytes, Ordering::Relaxed);
    }

    /// Writes `key` whole if `condition` holds; its new ETag. A lost
    /// condition is [`S3Error::is_precondition_failed`].
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
        let response = self.send(Method::PUT, Some(key), &[], &headers, Some(body)).await?;
        etag_of(&response)
    }

    /// Removes `key` (no error if it is gone already).
    pub(crate) async fn delete(&self, key: &str) -> Result<(), S3Error> {
        match self.send(Method::DELETE, Some(key), &[], &[], None).await {
            Ok(_) => Ok(()),
            Err(e) if e.is_not_found() => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Every object whose key starts with `prefix`, in key order.
    pub(crate) async fn list(&self, prefix: &str) -> Result<Vec<Listed>, S3Error> {
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let mut query = vec![("list-type", "2"), ("prefix", prefix)];
            if let Some(token) = &token {
                query.push(("continuation-token", token));
            }
            let response = self.send(Method::GET, None, &query, &[], None).await?;
            let text = String::from_utf8_lossy(&self.body(response).await?).into_owned();
            for entry in xml::blocks(&text, "Contents") {
                let key = xml::text(entry, "Key")
                    .ok_or_else(|| S3Error::Protocol("a listed object has no key".into()))?;
                let size = xml::text(entry, "Size").and_then(|s| s.parse().ok()).unwrap_or(0);
                let modified =
                    xml::text(entry, "LastModified").and_then(|t| parse_timestamp(&t)).unwrap_or(0);
                out.push(Listed { key, size, modified });
            }
            token = xml::text(&text, "NextContinuationToken");
            if xml::text(&text, "IsTruncated").as_deref() != Some("true") || token.is_none() {
                return Ok(out);
            }
        }
    }

    /// Lists one key: what `diffcopy serve` does at start, so wrong keys
    /// and a missing bucket stop it with the store's own reason.
    pub(crate) async fn check(&self) -> Result<(), S3Error> {
        self.send(Method::GET, None, &[("list-type", "2"), ("max-keys", "1")], &[], None).await.map(drop)
    }

    /// Creates the bucket (for tests and set-up scripts).
    pub(crate) async fn create(&self) -> Result<(), S3Error> {
        self.send(Method::PUT, None, &[], &[], None).await.map(drop)
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

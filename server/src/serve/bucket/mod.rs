//! Serving from an S3-compatible bucket instead of a directory
//! (`diffcopy serve --store s3://BUCKET/PREFIX`): the same API, over
//! objects, so that several stateless instances can serve one bucket.
//!
//! * `keys.rs`: the bucket's layout;
//! * `head.rs`: a file's pointer, swapped with `If-Match`;
//! * `session.rs`: protocol v2 uploads kept in the store;
//! * `parts.rs` and `commit.rs`: a new version built inside the store,
//!   unchanged ranges copied (`UploadPartCopy`);
//! * `reader.rs`: a version read by offset, for the search and hashing;
//! * `reads.rs`: what the read side (`serve/reads/`) reads a version with;
//! * `routes.rs`: the HTTP routes; `sweep.rs`: removing superseded
//!   versions and abandoned uploads.

mod batch;
mod cache;
mod commit;
mod head;
mod keys;
mod outbox;
mod parts;
mod reader;
mod reads;
mod routes;
mod session;
mod sweep;

use std::sync::Arc;
use std::time::Duration;

pub use routes::bucket_app;
pub(crate) use sweep::sweep_now_and_then;

use crate::faults::FaultHook;
use crate::fs::RelPath;
pub use crate::s3::Addressing;
use crate::s3::{Bucket, BucketConfig, Credentials, S3Error, region_from_environment};
use crate::serve::config::ServerConfig;
use crate::serve::error::AppResult;
use crate::serve::hooks::Hooks;
use crate::serve::remove::Removes;
use crate::serve::served::{Served, SessionScope};
use crate::serve::stats::{Stats, StatsSnapshot};
use crate::serve::tls::Tls;
use cache::SessionCache;
use keys::Keys;
use outbox::BucketOutbox;
use session::Live;

/// Where the files are: `s3://BUCKET[/PREFIX]` and how to reach it.
#[derive(Debug, Clone)]
pub struct StoreUrl {
    /// The bucket.
    pub bucket: String,
    /// The key prefix, without slashes at either end ("" for none).
    pub prefix: String,
    /// `http(s)://host[:port]` of an S3-compatible store; AWS if `None`.
    pub endpoint: Option<String>,
    /// The region; from the AWS environment if `None`.
    pub region: Option<String>,
    /// Path-style or virtual-hosted; `None` for the endpoint's default.
    pub addressing: Option<Addressing>,
}

impl StoreUrl {
    /// Parses `s3://BUCKET[/PREFIX]`.
    pub fn parse(text: &str) -> Result<Self, String> {
        let rest =
            text.strip_prefix("s3://").ok_or_else(|| format!("{text}: a store is s3://BUCKET[/PREFIX]"))?;
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        let valid = (3..=63).contains(&bucket.len())
            && bucket.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.');
        if !valid {
            return Err(format!("{text}: {bucket:?} is not a bucket name (3-63 of a-z 0-9 . -)"));
        }
        Ok(Self {
            bucket: bucket.to_owned(),
            prefix: prefix.trim_matches('/').to_owned(),
            endpoint: None,
            region: None,
            addressing: None,
        })
    }
}

/// The bucket and what this instance remembers of its uploads.
#[derive(Debug, Clone)]
pub(crate) struct BucketStore {
    pub(crate) bucket: Bucket,
    pub(crate) keys: Keys,
    /// What this instance remembers of the sessions it served.
    cache: Arc<SessionCache<Live>>,
    max_file_size: u64,
    faults: Option<FaultHook>,
    /// How long superseded versions and idle uploads are kept.
    pub(crate) grace: Duration,
}

/// The state of a server over a bucket.
#[derive(Debug)]
pub struct BucketState {
    pub(crate) config: ServerConfig,
    pub(crate) store: BucketStore,
    pub(crate) stats: Arc<Stats>,
    pub(crate) tls: Option<Tls>,
    /// The webhook after each commit, when configured.
    pub(crate) hooks: Option<Arc<Hooks<BucketOutbox>>>,
}

impl Removes for BucketState {
    async fn remove(self: &Arc<Self>, path: RelPath, if_match: Option<String>) -> AppResult<()> {
        self.store.remove(&path, if_match.as_deref()).await
    }
}

impl Served for BucketState {
    fn settings(&self) -> &ServerConfig {
        &self.config
    }

    async fn session_scope(&self, id: &str) -> AppResult<Option<SessionScope>> {
        self.store.session_scope(id).await
    }
}

impl BucketState {
    /// Connects to the bucket and checks it answers: wrong keys, a
    /// missing bucket or an unreachable endpoint are errors here, with the
    /// store's reason.
    pub async fn connect(config: ServerConfig, url: &StoreUrl) -> Result<Arc<Self>, String> {
        let region = url.region.clone().unwrap_or_else(region_from_environment);
        let bucket = Bucket::new(BucketConfig {
            endpoint: url.endpoint.clone(),
            region,
            bucket: url.bucket.clone(),
            addressing: url.addressing,
            credentials: Credentials::Chain,
        })?;
        bucket.check().await.map_err(|e| match &e {
            S3Error::Status { code, .. } if code == "NoSuchBucket" => {
                format!("the bucket {} does not exist: {e}", url.bucket)
            }
            S3Error::Credentials(_) => e.to_string(),
            S3Error::Status { status: 403, .. } => {
                format!("the store refused the credentials for bucket {}: {e}", url.bucket)
            }
            _ => format!("cannot reach bucket {}: {e}", url.bucket),
        })?;
        let tls = config.tls.as_ref().map(Tls::new).transpose().map_err(|e| e.to_string())?;
        let store = BucketStore {
            bucket,
            keys: Keys::new(&url.prefix),
            cache: Arc::default(),
            max_file_size: config.max_file_size,
            faults: config.fault_hook.clone(),
            grace: config.upload_ttl,
        };
        let stats: Arc<Stats> = Arc::default();
        let hooks = match &config.hook {
            Some(target) => {
                let outbox = BucketOutbox { bucket: store.bucket.clone(), keys: store.keys.clone() };
                Some(Arc::new(Hooks::new(target.clone(), outbox, stats.clone())?))
            }
            None => None,
        };
        Ok(Arc::new(Self { config, store, stats, tls, hooks }))
    }

    /// The counters now, the store's traffic included.
    pub fn stats(&self) -> StatsSnapshot {
        let mut snapshot = self.stats.snapshot();
        let traffic = self.store.bucket.traffic();
        snapshot.store_requests = traffic.requests;
        snapshot.store_write_requests = traffic.write_requests;
        snapshot.store_retries = traffic.retries;
        snapshot.store_bytes_uploaded = traffic.bytes_uploaded;
        snapshot.store_bytes_copied = traffic.bytes_copied;
        snapshot.store_bytes_downloaded = traffic.bytes_downloaded;
        let (sessions, hashes) = self.store.cache.counts();
        (snapshot.cached_sessions, snapshot.cached_block_hashes) = (sessions as u64, hashes as u64);
        snapshot
    }

    /// The URL scheme served.
    pub fn scheme(&self) -> &'static str {
        if self.tls.is_some() { "https" } else { "http" }
    }
}

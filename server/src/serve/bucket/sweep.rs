//! Removing what no one needs any more: versions superseded longer ago
//! than the grace period (a download that started on one still has that
//! long to finish), and uploads idle for longer. Every instance sweeps; a
//! delete of what another instance deleted first is no error. Abandoned
//! multipart uploads (an instance killed mid-commit) are the store's to
//! expire: docs/s3.md gives the lifecycle rule.

use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;

use super::BucketStore;
use crate::s3::{Condition, S3Error};

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

impl BucketStore {
    /// Marks `version` as replaced now.
    pub(super) async fn supersede(&self, version: &str) {
        let marker = self.keys.superseded(version);
        if let Err(e) = self.bucket.put(&marker, Bytes::from(now().to_string()), Condition::None).await {
            tracing::warn!("marking version {version} superseded: {e}");
        }
    }

    /// One sweep; returns (versions removed, uploads removed).
    pub(super) async fn sweep(&self) -> Result<(usize, usize), S3Error> {
        let deadline = now().saturating_sub(self.grace.as_secs());
        let mut versions = 0;
        let prefix = self.keys.superseded_prefix();
        for marker in self.bucket.list(&prefix).await? {
            let Some(version) = marker.key.strip_prefix(&prefix) else { continue };
            if marker.modified > deadline {
                continue;
            }
            self.bucket.delete(&self.keys.version(version)).await?;
            self.bucket.delete(&self.keys.hashes(version)).await?;
            self.bucket.delete(&marker.key).await?;
            versions += 1;
        }
        let prefix = self.keys.sessions();
        let mut sessions: HashMap<String, (u64, Vec<String>)> = HashMap::new();
        for object in self.bucket.list(&prefix).await? {
            let Some((id, _)) = object.key.strip_prefix(&prefix).and_then(|rest| rest.split_once('/')) else {
                continue;
            };
            let entry = sessions.entry(id.to_owned()).or_default();
            entry.0 = entry.0.max(object.modified);
            entry.1.push(object.key);
        }
        let mut uploads = 0;
        for (id, (newest, keys)) in sessions {
            if newest > deadline {
                continue;
            }
            self.forget(&id);
            for key in keys {
                self.bucket.delete(&key).await?;
            }
            tracing::info!(id = %id, "upload expired in the bucket");
            uploads += 1;
        }
        Ok((versions, uploads))
    }
}

/// Sweeps every quarter of the grace period (between 1 s and 60 s), and
/// forgets the sessions this instance has not served for that long.
pub(crate) async fn sweep_now_and_then(store: BucketStore) {
    let period = (store.grace / 4).clamp(Duration::from_secs(1), Duration::from_secs(60));
    let mut tick = tokio::time::interval(period);
    loop {
        tick.tick().await;
        let evicted = store.cache.evict_idle(period);
        if evicted > 0 {
            tracing::debug!("forgot {evicted} idle sessions");
        }
        match store.sweep().await {
            Ok((0, 0)) => {}
            Ok((versions, uploads)) => {
                tracing::info!("swept {versions} superseded versions, {uploads} idle uploads")
            }
            Err(e) => tracing::warn!("sweeping the bucket: {e}"),
        }
    }
}

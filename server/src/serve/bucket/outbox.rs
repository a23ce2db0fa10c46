//! The bucket's webhook outbox: `hooks/<id>`, one object per delivery.
//! Instances claim a delivery by replacing it with `If-Match`, so only one
//! sends it at a time.

use bytes::Bytes;

use super::keys::Keys;
use crate::s3::{Bucket, Condition};
use crate::serve::hooks::{Outbox, Stored};

#[derive(Debug, Clone)]
pub(crate) struct BucketOutbox {
    pub(super) bucket: Bucket,
    pub(super) keys: Keys,
}

impl Outbox for BucketOutbox {
    async fn add(&self, id: &str, entry: Bytes) -> Result<(), String> {
        self.bucket
            .put(&self.keys.hook(id), entry, Condition::IfNoneMatch)
            .await
            .map(drop)
            .map_err(|e| e.to_string())
    }

    async fn pending(&self, most: usize, after: Option<&str>) -> Result<Vec<Stored>, String> {
        let prefix = self.keys.hooks();
        let mut listed = self.bucket.list(&prefix).await.map_err(|e| e.to_string())?;
        if let Some(after) = after {
            let after = self.keys.hook(after);
            listed.retain(|object| object.key > after);
        }
        listed.sort_by(|a, b| a.key.cmp(&b.key));
        let mut stored = Vec::new();
        for object in listed.into_iter().take(most) {
            // Gone since the listing: another instance delivered it.
            let Some((entry, version)) =
                self.bucket.get_with_etag(&object.key).await.map_err(|e| e.to_string())?
            else {
                continue;
            };
            let id = object.key.strip_prefix(&prefix).unwrap_or(&object.key).to_owned();
            stored.push(Stored { id, entry, version });
        }
        Ok(stored)
    }

    async fn replace(&self, stored: &Stored, entry: Bytes) -> Result<Option<String>, String> {
        match self.bucket.put(&self.keys.hook(&stored.id), entry, Condition::IfMatch(&stored.version)).await {
            Ok(version) => Ok(Some(version)),
            Err(e) if e.is_precondition_failed() || e.is_not_found() => Ok(None),
            Err(e) => Err(e.to_string()),
        }
    }

    async fn remove(&self, id: &str) -> Result<(), String> {
        self.bucket.delete(&self.keys.hook(id)).await.map_err(|e| e.to_string())
    }
}

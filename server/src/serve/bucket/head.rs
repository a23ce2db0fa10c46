//! A file's pointer: the one small object per path that names its current
//! version. Versions are immutable objects; a commit writes a new one and
//! then swaps the pointer with `If-Match` on the pointer's own ETag (or
//! `If-None-Match: *` for a new path), so of two commits from the same base
//! exactly one wins and the loser gets 412.

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use super::BucketStore;
use crate::fs::RelPath;
use crate::s3::{Condition, S3Error};
use crate::serve::error::{AppError, AppResult, ErrorKind};

/// What a pointer says.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub(crate) struct Head {
    /// The version's id (32 hex digits): its object is `versions/<version>`.
    pub(crate) version: String,
    /// Its size in bytes.
    pub(crate) size: u64,
    /// The modification time its uploader gave, milliseconds since the
    /// Unix epoch (listings show it; `None` for a pointer written before
    /// there was one, or by an upload that gave none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) mtime: Option<i64>,
}

/// A path's pointer as read, with the store's ETag of it.
#[derive(Debug, Clone)]
pub(crate) struct Current {
    pub(crate) head: Head,
    pub(crate) pointer_etag: String,
}

impl Head {
    /// The ETag the API shows for this version.
    pub(crate) fn etag(&self) -> String {
        format!("\"{}\"", self.version)
    }
}

/// The longest key S3 takes: AWS's limit. Some stores take longer keys
/// (moto), some refuse them (SeaweedFS); every bucket is held to this one.
const MAX_KEY: usize = 1024;

impl BucketStore {
    /// 400 `bad_path` for a path whose pointer's key would be longer than S3 takes.
    pub(crate) fn check_key(&self, path: &RelPath) -> AppResult<()> {
        let key = self.keys.head(path.as_str()).len();
        if key > MAX_KEY {
            return Err(AppError::new(
                ErrorKind::BadPath,
                format!(
                    "this server keeps its files in an object store, whose keys are at most {MAX_KEY} bytes: \
                     this path makes one of {key}"
                ),
            ));
        }
        Ok(())
    }

    /// The current version of `path`, or `None` when there is none.
    pub(crate) async fn current(&self, path: &str) -> Result<Option<Current>, S3Error> {
        let Some((body, pointer_etag)) = self.bucket.get_with_etag(&self.keys.head(path)).await? else {
            return Ok(None);
        };
        let head = serde_json::from_slice(&body)
            .map_err(|e| S3Error::Protocol(format!("the pointer of {path} is not valid: {e}")))?;
        Ok(Some(Current { head, pointer_etag }))
    }

    /// Points `path` at `head` if its pointer is still `expected` (`None`:
    /// there was none). A lost race is [`S3Error::is_precondition_failed`].
    pub(crate) async fn swap(&self, path: &str, head: &Head, expected: Option<&str>) -> Result<(), S3Error> {
        let body =
            serde_json::to_vec(head).map_err(|e| S3Error::Protocol(format!("writing a pointer: {e}")))?;
        let body = Bytes::from(body);
        let condition = expected.map_or(Condition::IfNoneMatch, Condition::IfMatch);
        self.bucket.put(&self.keys.head(path), body, condition).await.map(drop)
    }
}

//! A narrow door for the end-to-end tests into what the server keeps in a
//! bucket: create the bucket, read an object, list keys, with the
//! server's own S3 client, so that a test checks what landed without going
//! through diffcopy's API. The client itself (`s3`) stays private.

use crate::s3::{Addressing, Bucket, BucketConfig, Credentials};

/// A bucket of an S3-compatible store, reached with static keys.
#[derive(Debug, Clone)]
pub struct StoreProbe {
    bucket: Bucket,
}

impl StoreProbe {
    /// Bucket `name` at `endpoint` (`http://HOST:PORT`, path-style) with
    /// these keys, in region us-east-1.
    pub fn new(endpoint: &str, name: &str, access_key: &str, secret_key: &str) -> Result<Self, String> {
        let bucket = Bucket::new(BucketConfig {
            endpoint: Some(endpoint.to_owned()),
            region: "us-east-1".into(),
            bucket: name.to_owned(),
            addressing: Some(Addressing::Path),
            credentials: Credentials::Static { access_key: access_key.into(), secret_key: secret_key.into() },
        })?;
        Ok(Self { bucket })
    }

    /// Creates the bucket.
    pub async fn create(&self) -> Result<(), String> {
        self.bucket.create().await.map_err(|e| e.to_string())
    }

    /// Object `key`, whole; `None` if there is none.
    pub async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, String> {
        self.bucket.get(key, None).await.map(|b| b.map(|b| b.to_vec())).map_err(|e| e.to_string())
    }

    /// Every key below `prefix`.
    pub async fn keys(&self, prefix: &str) -> Result<Vec<String>, String> {
        let listed = self.bucket.list(prefix).await.map_err(|e| e.to_string())?;
        Ok(listed.into_iter().map(|o| o.key).collect())
    }
}
